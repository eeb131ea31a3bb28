r"""Recommenders that read text with a pretrained BERT-family encoder (notebook 07).

Every film gets a short text — title, year, genres and its most frequent tags (:func:`item_texts`) — and every
user a text made of the titles of the films they recently liked *in the training data*
(:func:`user_history_texts`). A sentence encoder (by default the packaged all-MiniLM-L6-v2, a 6-layer BERT;
:func:`recsys_course.text.load_text_encoder`) turns each text into a unit vector; the vectors are cached on
disk, so a text is encoded once per machine.

* :class:`TextProfile` — no training at all: a user's profile is the weighted mean of the text vectors of
  the films they liked, films are ranked by cosine. It scores any film that has a text, so it can rank
  films nobody has rated (cold-start items).
* :class:`BERTBasedCF` — the seed's *BERT-based collaborative filtering* done right: the encoder reads the
  user's history text, an item embedding table stands for the films, a head turns the pair into a rating.
  The encoder is frozen (``finetune_layers=0``: the text vectors are computed once) or its top layers are
  fine-tuned with the rest.
* :class:`BERTOffsetCF` — :math:`u = \mathrm{BERT}(U) + u_0`, :math:`i = \mathrm{BERT}(I) + i_0`,
  :math:`\hat r = \mathrm{MLP}(u, i)`: text vectors of both sides plus learnable per-id offsets. A film
  unseen in training keeps offset 0 and is scored from its text alone.

Both rating models add the fixed baseline :math:`\mu + b_u + b_i` of
:class:`~recsys_course.models.BiasBaseline` (fitted on the same training frame) and learn the residual, like
:class:`~recsys_course.models.BiasedMF`; they train through :func:`recsys_course.models.torch_train.train`
with early stopping on each user's most recent training ratings, then a refit on all of train
(:func:`~recsys_course.models.torch_train.fit_early_stopped`).
"""
from __future__ import annotations

import copy
import time
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..config import GENRES, ITEM, RATING, TAG, TIME, TITLE, USER, YEAR
from .base import Recommender, _as_array
from .baselines import BiasBaseline
from .torch_train import fit_early_stopped

__all__ = ["item_texts", "user_history_texts", "movie_labels", "embed_texts", "default_encoder", "TextProfile",
           "BERTBasedCF", "BERTOffsetCF"]


# --------------------------------------------------------------------------------------------
# texts
# --------------------------------------------------------------------------------------------
def movie_labels(movies: pd.DataFrame) -> pd.Series:
    """``"Title (year)"`` per movieId (just the title where the year is unknown)."""
    year = movies[YEAR] if YEAR in movies.columns else pd.Series(pd.NA, index=movies.index)
    labels = [f"{t} ({int(y)})" if pd.notna(y) else str(t) for t, y in zip(movies[TITLE], year)]
    return pd.Series(labels, index=movies[ITEM].to_numpy(), name="label")


def item_texts(movies: pd.DataFrame, tags: pd.DataFrame | None = None, n_tags: int = 3) -> pd.Series:
    """One text per film: ``"Toy Story (1995) genres: Adventure, Animation, ...; tags: pixar, fun"``.

    The wording is a modelling choice, made on validation splits of films (never test films): with
    :class:`TextProfile`, this terse labelled line ranked held-out films better than full sentences
    (``"Toy Story (1995). Genres: ... . Tags: ... ."``) and much better than the same line without the
    ``genres:`` label; it is also shorter, and encoding cost grows with the number of tokens.

    The tags are the film's ``n_tags`` most frequent ones (lower-cased; ties alphabetical); ``tags=None`` or
    ``n_tags=0`` leaves them out — the honest setting for a brand-new film, which nobody has tagged yet.
    Tags are metadata, not ratings; pass only the tags a model may know (e.g. those before a cut in time).
    Returns a Series indexed by movieId (the order of ``movies``).
    """
    if isinstance(n_tags, bool) or not isinstance(n_tags, (int, np.integer)) or n_tags < 0:
        raise ValueError(f"n_tags must be an integer >= 0, got {n_tags!r}")
    labels = movie_labels(movies)
    genres = movies[GENRES].map(lambda g: ", ".join(g) if isinstance(g, (list, tuple)) and len(g) else "")
    top = {}
    if tags is not None and n_tags > 0 and len(tags):
        t = pd.DataFrame({ITEM: tags[ITEM].to_numpy(), TAG: tags[TAG].astype(str).str.strip().str.lower()})
        t = t[t[TAG] != ""]
        counts = t.groupby([ITEM, TAG]).size().rename("n").reset_index()
        counts = counts.sort_values([ITEM, "n", TAG], ascending=[True, False, True], kind="stable")
        top = counts.groupby(ITEM).head(n_tags).groupby(ITEM)[TAG].agg(", ".join).to_dict()
    texts = []
    for movie, label, genre in zip(movies[ITEM].to_numpy(), labels.to_numpy(), genres.to_numpy()):
        text = f"{label} genres: {genre}" if genre else label
        if movie in top:
            text += f"; tags: {top[movie]}"
        texts.append(text)
    return pd.Series(texts, index=movies[ITEM].to_numpy(), name="text")


def user_history_texts(ratings: pd.DataFrame, movies: pd.DataFrame, n_titles: int = 5,
                       min_rating: float = 4.0) -> pd.Series:
    """One text per user of ``ratings``: the titles of their ``n_titles`` most recent *liked* films, newest first,
    joined by ``"; "`` — e.g. ``"Heat (1995); Toy Story (1995)"``.

    Liked = rated at least ``min_rating``; a user who liked nothing that much gets their highest-rated films
    instead. Only the rows of ``ratings`` are read — pass the **training** frame, never test. Without a
    ``timestamp`` column the highest ratings come first. Returns a Series indexed by userId (sorted).
    """
    if isinstance(n_titles, bool) or not isinstance(n_titles, (int, np.integer)) or n_titles < 1:
        raise ValueError(f"n_titles must be a positive integer, got {n_titles!r}")
    labels = movie_labels(movies)
    df = ratings[ratings[ITEM].isin(labels.index)]
    best = df.groupby(USER)[RATING].transform("max")
    liked = df[(df[RATING] >= min_rating) | ((best < min_rating) & (df[RATING] == best))]
    if TIME in liked.columns:
        liked = liked.sort_values([USER, TIME, ITEM], ascending=[True, False, False], kind="stable")
    else:
        liked = liked.sort_values([USER, RATING, ITEM], ascending=[True, False, True], kind="stable")
    top = liked.groupby(USER).head(n_titles)
    texts = pd.Series(labels.reindex(top[ITEM]).to_numpy(), index=top[USER].to_numpy()).groupby(level=0).agg("; ".join)
    users = np.sort(ratings[USER].unique())
    return texts.reindex(users, fill_value="").rename("text").rename_axis(USER)


@lru_cache(maxsize=2)
def default_encoder(name: str | None = None, device: str | None = None):
    """The course's text encoder, loaded once per process (:func:`recsys_course.text.load_text_encoder`)."""
    from ..text import load_text_encoder

    return load_text_encoder(name, device=device)


def embed_texts(texts: pd.Series, encoder=None, batch_size: int = 64) -> np.ndarray:
    """``encoder.encode`` of a Series of texts: (len, dim) float32 unit rows, in the Series' order (cached on disk)."""
    encoder = encoder or default_encoder()
    return encoder.encode(list(texts.astype(str)), batch_size=batch_size)


@lru_cache(maxsize=1)
def _default_catalogue():
    from ..data import load_movielens

    ml = load_movielens()
    return ml.movies, item_texts(ml.movies, ml.tags)


class _TextCatalogue:
    """Shared plumbing: the films' text vectors for the *whole* catalogue (so films absent from train can be
    scored), looked up by movieId."""

    def _catalogue(self):
        movies = self.movies if self.movies is not None else _default_catalogue()[0]
        texts = self.item_text if self.item_text is not None else (
            _default_catalogue()[1] if self.movies is None else item_texts(self.movies))
        if not isinstance(texts, pd.Series):
            raise TypeError(f"item_text must be a pandas Series movieId -> text (see item_texts), got "
                            f"{type(texts).__name__}")
        return movies, texts

    def _encoder(self):
        return self.encoder if self.encoder is not None else default_encoder()

    def _text_rows(self, items: np.ndarray) -> np.ndarray:
        """Row of each movieId in ``item_vectors_`` (-1 where a film has no text)."""
        return self._text_index.get_indexer(items)


# --------------------------------------------------------------------------------------------
# TextProfile
# --------------------------------------------------------------------------------------------
class TextProfile(_TextCatalogue, Recommender):
    r"""Rank films by the cosine between a user's text profile and each film's text vector.

    With :math:`e_i = \mathrm{BERT}(\text{text}_i)` the unit text vector of film :math:`i`, :math:`\bar r_u` the
    user's mean training rating and :math:`d_{ui} = \max(r_{ui} - \bar r_u, 0)` (with ``negative=True``:
    :math:`r_{ui} - \bar r_u`, so disliked films push the profile away):

    .. math:: p_u = \frac{\sum_{i \in R(u)} d_{ui}\, e_i}{\sum_{i \in R(u)} |d_{ui}|}, \qquad
              s(u, i) = \cos(p_u, e_i).

    A user whose weights are all 0 (every rating equal) gets the plain mean of their films' vectors.
    Nothing is trained: the cost is encoding the texts once (cached) and one users × films product.
    Scores are similarities, not ratings. Fallbacks: a film without a text, or a user unknown to the model,
    scores 0 in ``predict``; ``recommend`` refuses unknown users. Any film with a text can be scored, also one
    absent from train (a cold-start item).
    """

    def __init__(self, negative: bool = False, item_text: pd.Series | None = None,
                 movies: pd.DataFrame | None = None, encoder=None):
        self.negative = negative
        self.item_text = item_text
        self.movies = movies
        self.encoder = encoder

    def _fit(self, train, users, items):
        if not isinstance(self.negative, (bool, np.bool_)):
            raise ValueError(f"negative must be True or False, got {self.negative!r}")
        _, texts = self._catalogue()
        self._text_index = pd.Index(texts.index)
        self.item_vectors_ = embed_texts(texts, self._encoder()).astype(np.float64)
        rows = self._text_rows(self.item_ids_)
        cat = np.vstack([self.item_vectors_, np.zeros((1, self.item_vectors_.shape[1]))])
        self.catalogue_vectors_ = cat[np.where(rows >= 0, rows, -1)]
        r = train[RATING].to_numpy(np.float64)
        mean = np.bincount(users, r, self.n_users) / np.bincount(users, minlength=self.n_users)
        d = r - mean[users]
        if not self.negative:
            d = np.maximum(d, 0.0)
        total = np.bincount(users, np.abs(d), self.n_users)
        flat = total[users] == 0  # a user with no signal: plain mean of their films
        w = np.where(flat, 1.0, d) / np.where(flat, np.bincount(users, minlength=self.n_users)[users], total[users])
        # p_u = sum_i w_ui e_i for every user at once: a sparse (users x films) weight matrix times the vectors
        weights = sp.csr_matrix((w, (users, items)), shape=(self.n_users, self.n_items))
        prof = np.asarray(weights @ self.catalogue_vectors_)
        norm = np.linalg.norm(prof, axis=1, keepdims=True)
        self.profiles_ = np.divide(prof, norm, out=np.zeros_like(prof), where=norm > 0)

    def predict(self, users, items) -> np.ndarray:
        self._check_fitted()
        users, items = _as_array(users, "users"), _as_array(items, "items")
        if users.shape != items.shape:
            raise ValueError(f"users and items must pair up: got {users.size} users and {items.size} items")
        u, f = self._user_index.get_indexer(users), self._text_rows(items)
        ok = (u >= 0) & (f >= 0)
        out = np.zeros(len(users))
        out[ok] = np.einsum("nd,nd->n", self.profiles_[u[ok]], self.item_vectors_[f[ok]])
        return out

    def _score_users(self, users):
        return self.profiles_[users] @ self.catalogue_vectors_.T


# --------------------------------------------------------------------------------------------
# the torch rating models
# --------------------------------------------------------------------------------------------
def _check_int(model, name, low=1, allow_none=False):
    value = getattr(model, name)
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{type(model).__name__}: {name} must be an integer >= {low}, got {value!r}")


def _check_num(model, name, positive=False):
    value = getattr(model, name)
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.number)) and np.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise ValueError(f"{type(model).__name__}: {name} must be a finite number {'> 0' if positive else '>= 0'}, "
                         f"got {value!r}")


def _text_cf_module(spec: dict):
    """Build the torch module of :class:`BERTBasedCF` / :class:`BERTOffsetCF` (see their docstrings)."""
    import torch

    class TextCFModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            k, h = spec["k"], spec["h"]
            gen = spec["generator"]
            self.user_proj = torch.nn.Linear(h, k)
            self.top = spec.get("top")  # ModuleList of fine-tuned transformer layers, or None (frozen)
            if spec["item_table"]:
                self.Q = torch.nn.Parameter(torch.randn(spec["n_items"], k, generator=gen) * spec["init_std"])
            else:
                self.item_proj = torch.nn.Linear(spec["h_item"], k)
                self.i0 = torch.nn.Parameter(torch.zeros(spec["n_items"], k))
            if spec["user_offsets"]:
                self.u0 = torch.nn.Parameter(torch.zeros(spec["n_users"], k))
            if spec["head"] == "mlp":
                self.head = torch.nn.Sequential(torch.nn.Linear(3 * k, spec["hidden"]), torch.nn.ReLU(),
                                                torch.nn.Linear(spec["hidden"], 1))
            self.register_buffer("mu", torch.tensor(float(spec["mu"])))
            self.register_buffer("bu", torch.as_tensor(spec["bu"], dtype=torch.float32))
            self.register_buffer("bi", torch.as_tensor(spec["bi"], dtype=torch.float32))
            # inputs, not parameters (kept out of state_dict): text vectors, or hidden states below the top layers
            self.z = spec.get("z")
            self.hidden_in, self.mask = spec.get("hidden_in"), spec.get("mask")
            self.y = spec.get("y")

        def user_text(self, uu):
            """The user's text vector: precomputed (frozen), or the fine-tuned top layers over cached states."""
            if self.top is None:
                return self.z[uu]
            from ..text import mean_pool

            uniq, inv = torch.unique(uu, return_inverse=True)
            h, mask = self.hidden_in[uniq], self.mask[uniq]
            ext = (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
            for layer in self.top:
                h = layer(h, attention_mask=ext)
                h = h[0] if isinstance(h, tuple) else h
            return mean_pool(h, mask)[inv]

        def user_vec(self, uu):
            p = self.user_proj(self.user_text(uu))
            return p + self.u0[uu] if hasattr(self, "u0") else p

        def item_vec(self, ii):
            if hasattr(self, "Q"):
                return self.Q[ii]
            return self.item_proj(self.y[ii]) + self.i0[ii]

        def interact(self, p, q):
            if spec["head"] == "dot":
                return (p * q).sum(-1)
            return self.head(torch.cat([p, q, p * q], -1)).squeeze(-1)

        def forward(self, uu, ii):
            return self.mu + self.bu[uu] + self.bi[ii] + self.interact(self.user_vec(uu), self.item_vec(ii))

    return TextCFModule()


class _TextRatingModel(_TextCatalogue, Recommender):
    """Shared fit/predict of the two torch rating models."""

    predicts_ratings = True
    _item_table = True
    _user_offsets = False
    finetune_layers = 0

    # ---- checks ------------------------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("n_factors", "hidden", "n_titles", "max_length", "n_epochs", "batch_size", "patience"):
            _check_int(self, name)
        _check_int(self, "finetune_layers", low=0)
        _check_int(self, "seed", low=0)
        _check_num(self, "lr", positive=True)
        _check_num(self, "reg")
        if self.head not in ("mlp", "dot"):
            raise ValueError(f"{type(self).__name__}: head must be 'mlp' or 'dot', got {self.head!r}")
        if self.val_share is not None and not (isinstance(self.val_share, float) and 0 < self.val_share < 1):
            raise ValueError(f"{type(self).__name__}: val_share must be a share in (0, 1) or None, got "
                             f"{self.val_share!r}")

    # ---- training ----------------------------------------------------------------------------
    def _fit(self, train, users, items):
        self._check_params()
        start = time.perf_counter()
        self.encoder_ = self._encoder()
        n_layers = int(self.encoder_.model.config.num_hidden_layers)
        if self.finetune_layers > n_layers:
            raise ValueError(f"{type(self).__name__}: finetune_layers={self.finetune_layers} but the encoder has "
                             f"only {n_layers} layers")
        self.movies_, texts = self._catalogue()
        self._text_index = pd.Index(texts.index)
        if not self._item_table:
            self.item_vectors_ = embed_texts(texts, self.encoder_)
        (module, _), frame = fit_early_stopped(self, train, "share", self.val_share, type(self).__name__)
        self.user_text_ = user_history_texts(frame, self.movies_, self.n_titles, self.min_rating)
        self._store(module)
        self.fit_seconds_ = time.perf_counter() - start

    def _user_inputs(self, frame: pd.DataFrame, device) -> dict:
        """Text vectors of every user's history text (frozen), or the hidden states below the fine-tuned layers."""
        import torch

        texts = user_history_texts(frame, self.movies_, self.n_titles, self.min_rating)
        texts = texts.reindex(self.user_ids_, fill_value="")
        enc = self.encoder_
        if self.finetune_layers == 0:
            old = enc.max_length
            enc.max_length = self.max_length
            try:
                z = enc.encode(list(texts), batch_size=64)
            finally:
                enc.max_length = old
            return {"z": torch.as_tensor(z, device=device)}
        n_layers = int(enc.model.config.num_hidden_layers)
        below = n_layers - self.finetune_layers
        batch = enc.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt")
        states = []
        enc.model.eval()
        with torch.no_grad():
            for s in range(0, len(texts), 64):
                part = {k: v[s:s + 64].to(enc.device) for k, v in batch.items()}
                states.append(enc.model(**part, output_hidden_states=True).hidden_states[below].to(device))
        top = copy.deepcopy(enc.model.encoder.layer[below:]).to(device)
        for p in top.parameters():
            p.requires_grad_(True)
        return {"hidden_in": torch.cat(states), "mask": batch["attention_mask"].to(device), "top": top}

    def _train_on(self, frame: pd.DataFrame, epochs: int, validation: pd.DataFrame | None, desc: str):
        import torch

        from .torch_train import resolve_device, train

        device = resolve_device(self.device)
        u = self._user_index.get_indexer(frame[USER])
        i = self._item_index.get_indexer(frame[ITEM])
        r = frame[RATING].to_numpy(np.float32)
        base = BiasBaseline().fit(frame)
        bu, bi = np.zeros(self.n_users), np.zeros(self.n_items)
        bu[self._user_index.get_indexer(base.user_ids_)] = base.user_bias_
        bi[self._item_index.get_indexer(base.item_ids_)] = base.item_bias_
        torch.manual_seed(self.seed)  # the Linear layers' initialisation
        spec = {"k": int(self.n_factors), "hidden": int(self.hidden), "head": self.head, "n_users": self.n_users,
                "n_items": self.n_items, "mu": base.mu_, "bu": bu, "bi": bi, "init_std": 0.01,
                "generator": torch.Generator().manual_seed(self.seed), "item_table": self._item_table,
                "user_offsets": self._user_offsets, "h": int(self.encoder_.dim)}
        spec.update(self._user_inputs(frame, device))
        if not self._item_table:
            rows = self._text_rows(self.item_ids_)
            cat = np.vstack([self.item_vectors_, np.zeros((1, self.item_vectors_.shape[1]), np.float32)])
            spec["y"] = torch.as_tensor(cat[np.where(rows >= 0, rows, -1)], device=device)
            spec["h_item"] = self.item_vectors_.shape[1]
        module = _text_cf_module(spec).to(device)
        ids = [name for name in ("Q", "u0", "i0") if hasattr(module, name)]
        reg = float(self.reg)

        def loss_fn(m, uu, ii, rr):
            loss = ((m(uu, ii) - rr) ** 2).mean()
            if reg:
                pen = 0.0
                for name in ids:
                    rows_ = getattr(m, name)[uu if name == "u0" else ii]
                    pen = pen + (rows_ ** 2).sum(1).mean()
                loss = loss + reg * pen
            return loss

        top_params = list(module.top.parameters()) if module.top is not None else []
        top_ids = {id(p) for p in top_params}
        rest = [p for p in module.parameters() if p.requires_grad and id(p) not in top_ids]
        groups = [{"params": rest, "lr": float(self.lr)}]
        if top_params:
            groups.append({"params": top_params, "lr": float(self.encoder_lr)})
        optimizer = torch.optim.Adam(groups)

        validate = None
        if validation is not None:
            vu = torch.as_tensor(self._user_index.get_indexer(validation[USER]), device=device)
            vi = torch.as_tensor(self._item_index.get_indexer(validation[ITEM]), device=device)
            vr = torch.as_tensor(validation[RATING].to_numpy(np.float32), device=device)
            known = vi >= 0
            lo, hi = self.rating_range_

            def validate(m):
                pred = torch.full_like(vr, 0.0)
                pred[known] = torch.clamp(m(vu[known], vi[known]), lo, hi)
                # films absent from the fit part: the fallback mu + b_u
                pred[~known] = torch.clamp(m.mu + m.bu[vu[~known]], lo, hi)
                return float(torch.sqrt(((pred - vr) ** 2).mean()))

        hist = train(module, loss_fn, (u, i, r), epochs=epochs, batch_size=self.batch_size, optimizer=optimizer,
                     validate=validate, mode="min", patience=self.patience, seed=self.seed, device=device,
                     metric_name="val_rmse", desc=desc, verbose=self.verbose)
        return module, hist

    def _store(self, module) -> None:
        """Keep everything prediction needs as NumPy (user and item vectors) plus the small head."""
        import torch

        with torch.no_grad():
            all_users = torch.arange(self.n_users, device=module.mu.device)
            texts = [module.user_text(all_users[s:s + 256]) for s in range(0, self.n_users, 256)]
            self.user_text_vectors_ = torch.cat(texts).cpu().numpy()
            self.user_vectors_ = torch.cat([module.user_vec(all_users[s:s + 256])
                                            for s in range(0, self.n_users, 256)]).cpu().numpy()
            all_items = torch.arange(self.n_items, device=module.mu.device)
            self.item_vectors_train_ = module.item_vec(all_items).cpu().numpy()
            if not self._item_table:  # text-only vectors of every catalogue film (offset 0): for cold films
                y = torch.as_tensor(self.item_vectors_, device=module.mu.device)
                self.item_vectors_text_ = module.item_proj(y).cpu().numpy()
        self.mu_ = float(module.mu)
        self.user_bias_ = module.bu.cpu().numpy().astype(np.float64)
        self.item_bias_ = module.bi.cpu().numpy().astype(np.float64)
        self.head_ = copy.deepcopy(module.head).cpu().eval() if self.head == "mlp" else None
        self.n_trainable_ = int(sum(p.numel() for p in module.parameters() if p.requires_grad))
        #: the fine-tuned copies of the encoder's top layers (None with a frozen encoder)
        self.top_layers_ = copy.deepcopy(module.top).cpu().eval() if module.top is not None else None
        module.top = module.z = module.hidden_in = module.mask = module.y = None  # free the cached states

    def _interact(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        if self.head_ is None:
            return np.einsum("...k,...k->...", p, q)
        import torch

        with torch.no_grad():
            pt = torch.as_tensor(np.array(p, np.float32))
            qt = torch.as_tensor(np.array(q, np.float32))
            return self.head_(torch.cat([pt, qt, pt * qt], -1)).squeeze(-1).double().numpy()

    # ---- prediction --------------------------------------------------------------------------
    def _item_vectors_for(self, items: np.ndarray):
        """(vectors, has_vector, item bias) for movieIds: trained vectors for training films, the text-only
        vector for other films with a text (BERTOffsetCF), nothing otherwise."""
        pos = self._item_index.get_indexer(items)
        k = self.item_vectors_train_.shape[1]
        vec = np.zeros((len(items), k), np.float32)
        has = pos >= 0
        vec[has] = self.item_vectors_train_[pos[has]]
        bias = np.where(has, self.item_bias_[np.maximum(pos, 0)], 0.0)
        if not self._item_table:
            rows = self._text_rows(items)
            cold = ~has & (rows >= 0)
            vec[cold] = self.item_vectors_text_[rows[cold]]
            has = has | cold
        return vec, has, bias

    def predict(self, users, items) -> np.ndarray:
        self._check_fitted()
        users, items = _as_array(users, "users"), _as_array(items, "items")
        if users.shape != items.shape:
            raise ValueError(f"users and items must pair up: got {users.size} users and {items.size} items")
        u = self._user_index.get_indexer(users)
        q, has_item, bi = self._item_vectors_for(items)
        known_u = u >= 0
        out = self.mu_ + np.where(known_u, self.user_bias_[np.maximum(u, 0)], 0.0) + bi
        both = known_u & has_item
        for s in range(0, int(both.sum()), 65536):
            idx = np.flatnonzero(both)[s:s + 65536]
            out[idx] += self._interact(self.user_vectors_[u[idx]], q[idx])
        return np.clip(out, *self.rating_range_)

    def _predict(self, users, items):  # positions (used by nothing but kept for the protocol)
        return self.predict(self.user_ids_[users], self.item_ids_[items])

    def _score_users(self, users):
        base = self.mu_ + self.user_bias_[users][:, None] + self.item_bias_[None, :]
        if self.head_ is None:
            return base + self.user_vectors_[users] @ self.item_vectors_train_.T
        import torch

        # W1 [p; q; p*q] = W_p p + W_q q + W_pq (p*q): the first two parts are computed once per user / item
        first, second = self.head_[0], self.head_[2]
        k = self.user_vectors_.shape[1]
        w_p, w_q, w_pq = first.weight[:, :k], first.weight[:, k:2 * k], first.weight[:, 2 * k:]
        out = np.empty_like(base)
        with torch.no_grad():
            P = torch.as_tensor(self.user_vectors_[users], dtype=torch.float32)
            Q = torch.as_tensor(self.item_vectors_train_, dtype=torch.float32)
            a = P @ w_p.T + first.bias          # users x hidden
            b = Q @ w_q.T                        # items x hidden
            w_pq_t, w2 = w_pq.T.contiguous(), second.weight[0]
            for s in range(0, len(users), 16):
                n = len(P[s:s + 16])
                pq = (P[s:s + 16, None, :] * Q[None]).reshape(-1, k)          # (block * items) x k
                h = (pq @ w_pq_t).view(n, len(Q), -1)                           # in place from here on
                h += b
                h += a[s:s + 16, None, :]
                h.relu_()
                out[s:s + 16] = base[s:s + 16] + (h @ w2 + second.bias[0]).double().numpy()
        return out


class BERTBasedCF(_TextRatingModel):
    r"""The seed's BERT-based collaborative filtering, done right: a BERT encoder reads the user's history.

    For user :math:`u` with history text :math:`U_u` (:func:`user_history_texts` of the training frame: the
    titles of their most recent liked films) and film :math:`i` with a learned embedding :math:`q_i`:

    .. math:: z_u = \mathrm{MeanPool}(\mathrm{BERT}(U_u)) \in \mathbb R^h, \qquad p_u = W z_u + c \in \mathbb R^k,

    .. math:: \hat r_{ui} = \mu + b_u + b_i + f(p_u, q_i), \qquad
              f(p, q) = w_2^\top \mathrm{ReLU}(W_1 [p; q; p \odot q] + c_1) + c_2 \ (\texttt{head="mlp"})
              \quad\text{or}\quad p^\top q \ (\texttt{head="dot"}).

    :math:`\mu, b_u, b_i` are fixed, from :class:`~recsys_course.models.BiasBaseline` on the same frame. The
    user has **no id embedding**: everything personal comes from the text. Loss: mean squared error plus
    ``reg`` :math:`\cdot \lVert q_i\rVert^2` per rating; Adam with ``lr`` (``encoder_lr`` for fine-tuned layers).

    * ``finetune_layers=0`` — frozen encoder: :math:`z_u` is encoded once (and cached on disk); training only
      touches :math:`W, c, q, f` — fast on a CPU.
    * ``finetune_layers=L`` — the top ``L`` transformer layers are copied and trained too (the token
      embeddings and lower layers stay frozen; their output for each history text is computed once). The
      shared encoder itself is never modified, so its embedding cache stays valid.

    Early stopping: each user's most recent ``val_share`` of training ratings is held out (their history text
    is rebuilt from the rest), then with ``refit`` the model is trained again on all of train for the best
    number of epochs. ``val_share=None``: ``n_epochs`` epochs on everything.

    Fallbacks: a film absent from train has no embedding → :math:`\mu + b_u` (this model **cannot** rank
    cold films); a user unknown to the model → :math:`\mu + b_i`; ``recommend`` refuses unknown users.
    Predictions are clipped to the training rating range. Cost per epoch: :math:`O(|\mathcal R|\,k\,h')`
    with :math:`h'` the head width, plus the fine-tuned layers' forward and backward pass over the users of
    each batch. ``n_trainable_`` counts the trainable parameters, ``fit_seconds_`` the fit time.
    """

    _item_table = True
    _user_offsets = False

    def __init__(self, n_factors: int = 32, hidden: int = 64, head: str = "mlp", finetune_layers: int = 0,
                 n_titles: int = 5, min_rating: float = 4.0, max_length: int = 64, lr: float = 0.003,
                 encoder_lr: float = 1e-4, reg: float = 0.02, n_epochs: int = 20, batch_size: int = 1024,
                 patience: int = 2, val_share: float | None = 0.2, refit: bool = True, encoder=None,
                 movies: pd.DataFrame | None = None, item_text: pd.Series | None = None, device=None,
                 seed: int = 0, verbose: bool = True):
        self.n_factors = n_factors
        self.hidden = hidden
        self.head = head
        self.finetune_layers = finetune_layers
        self.n_titles = n_titles
        self.min_rating = min_rating
        self.max_length = max_length
        self.lr = lr
        self.encoder_lr = encoder_lr
        self.reg = reg
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_share = val_share
        self.refit = refit
        self.encoder = encoder
        self.movies = movies
        self.item_text = item_text
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        _check_num(self, "encoder_lr", positive=True)


class BERTOffsetCF(_TextRatingModel):
    r"""Text vectors on both sides plus learnable id offsets: :math:`u = \mathrm{BERT}(U) + u_0`,
    :math:`i = \mathrm{BERT}(I) + i_0`, :math:`\hat r = \mathrm{MLP}(u, i)`.

    With :math:`z_u` the text vector of the user's history text, :math:`y_i` that of the film's text
    (:func:`item_texts`), both from the frozen encoder, and learned maps :math:`A, B` from the text space
    (:math:`h` dims) to :math:`k` dims:

    .. math:: u = A z_u + u_0, \qquad i = B y_i + i_0, \qquad
              \hat r_{ui} = \mu + b_u + b_i + w_2^\top \mathrm{ReLU}(W_1 [u; i; u \odot i] + c_1) + c_2 .

    (The seed's :math:`u = \mathrm{BERT}(U) + u_0` is the case :math:`A = I`, :math:`k = h`; the maps let the
    offsets live in a small space.) The offsets start at 0 and are penalised by ``reg``
    :math:`\cdot(\lVert u_0\rVert^2 + \lVert i_0\rVert^2)` per rating, so an id learns an offset only as far as
    its ratings justify one. :math:`\mu, b_u, b_i` are fixed, from :class:`~recsys_course.models.BiasBaseline`.
    The encoder stays frozen (all text vectors are computed once and cached); ``head="dot"`` replaces the
    MLP by :math:`u^\top i`.

    Fallbacks: a film absent from train but with a text gets :math:`i = B y_i` (offset 0, bias 0) — so this
    model **can** score cold films; a film without a text → :math:`\mu + b_u`; an unknown user →
    :math:`\mu + b_i`; ``recommend`` refuses unknown users. Early stopping and refit as in
    :class:`BERTBasedCF`. Predictions are clipped to the training rating range.
    """

    _item_table = False
    _user_offsets = True

    def __init__(self, n_factors: int = 32, hidden: int = 64, head: str = "mlp", n_titles: int = 5,
                 min_rating: float = 4.0, max_length: int = 64, lr: float = 0.003, reg: float = 0.02,
                 n_epochs: int = 20, batch_size: int = 1024, patience: int = 2, val_share: float | None = 0.2,
                 refit: bool = True, encoder=None, movies: pd.DataFrame | None = None,
                 item_text: pd.Series | None = None, device=None, seed: int = 0, verbose: bool = True):
        self.n_factors = n_factors
        self.hidden = hidden
        self.head = head
        self.n_titles = n_titles
        self.min_rating = min_rating
        self.max_length = max_length
        self.lr = lr
        self.reg = reg
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_share = val_share
        self.refit = refit
        self.encoder = encoder
        self.movies = movies
        self.item_text = item_text
        self.device = device
        self.seed = seed
        self.verbose = verbose

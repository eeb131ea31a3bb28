r"""Recommenders that read text with a pretrained BERT-family encoder (notebook 07).

Every film gets a short text — title, year, genres and its most frequent tags
(:func:`recsys_course.text.item_texts`) — and every user a text made of the titles of the films they recently
liked *in the training data* (:func:`recsys_course.text.user_history_texts`). A sentence encoder (by default the
packaged all-MiniLM-L6-v2, a 6-layer BERT; :func:`recsys_course.text.load_text_encoder`) turns each text into a
unit vector; the vectors are cached on disk, so a text is encoded once per machine.

The models never load a dataset themselves: the films' texts (``item_text``) and titles (``movies``) are
arguments::

    from recsys_course.text import item_texts
    TextProfile(item_text=item_texts(ml.movies, ml.tags))
    BERTOffsetCF(movies=ml.movies, item_text=item_texts(ml.movies, ml.tags))

* :class:`TextProfile` — no training at all: a user's profile is the weighted mean of the text vectors of
  the films they liked, films are ranked by cosine. It scores any film that has a text, so it can rank
  films nobody has rated (cold-start items).
* :class:`BERTBasedCF` — *BERT-based collaborative filtering* done right (notebook 07, section 1, shows the
  naive version fail): the encoder reads the user's history text, an item embedding table stands for the
  films, a head turns the pair into a rating. The encoder is frozen (``finetune_layers=0``: the text vectors are computed once) or its top layers are
  fine-tuned with the rest.
* :class:`BERTOffsetCF` — :math:`u = \mathrm{BERT}(U) + u_0`, :math:`i = \mathrm{BERT}(I) + i_0`,
  :math:`\hat r = \mathrm{MLP}(u, i)`: text vectors of both sides plus learnable per-id offsets. A film
  unseen in training keeps offset 0 and is scored from its text alone.

Both rating models add the fixed baseline :math:`\mu + b_u + b_i` of
:class:`~recsys_course.models.BiasBaseline` (fitted on the same training frame) and learn the residual, like
:class:`~recsys_course.models.BiasedMF`. Their network is :class:`recsys_course.networks.text.TextCFNet`; they
train with the protocol of :class:`~recsys_course.models.torch_train.TorchRecommender` (early stopping on a
validation slice of train, then a refit on all of train).
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..checks import check_bool, check_choice, check_int, check_number, check_sizes
from ..config import ITEM, RATING, USER
from ..text import default_encoder, embed_texts, user_history_texts
from .base import Recommender, _as_array
from .baselines import BiasBaseline
from .torch_train import TorchRecommender, TrainingSetup

__all__ = ["TextProfile", "BERTBasedCF", "BERTOffsetCF"]

_ITEM_TEXT_FIX = "pass item_text=item_texts(ml.movies, ml.tags) (from recsys_course.text import item_texts)"
_MOVIES_FIX = "pass movies=ml.movies (columns movieId, title, year), whose titles make the users' history texts"


def _require(model, name: str, kind: type, fix: str) -> None:
    """``model.<name>`` is a ``kind`` (a pandas Series / DataFrame the caller must pass)."""
    value = getattr(model, name)
    if value is None:
        raise TypeError(f"{type(model).__name__} needs {name}: {fix}")
    if not isinstance(value, kind):
        raise TypeError(f"{type(model).__name__}: {name} must be a pandas {kind.__name__}, got "
                        f"{type(value).__name__}; {fix}")


def _pairs(model, users, items) -> tuple[np.ndarray, np.ndarray]:
    """``predict``'s input checks, for the models whose ``predict`` reads ids (films absent from train)."""
    model._check_fitted()
    users, items = _as_array(users, "users"), _as_array(items, "items")
    if users.shape != items.shape:
        raise ValueError(f"users and items must pair up: got {users.size} users and {items.size} items")
    return users, items


class _FilmTexts:
    """Shared plumbing: the text vector of every film of ``item_text`` (also films absent from train)."""

    def _encoder(self):
        return self.encoder if self.encoder is not None else default_encoder()

    def _embed_films(self, encoder) -> np.ndarray:
        """Encode ``item_text``; remember which row belongs to which movieId. Returns (n_texts, dim) float32."""
        self._text_index = pd.Index(self.item_text.index)
        return embed_texts(self.item_text, encoder)

    def _text_rows(self, items: np.ndarray) -> np.ndarray:
        """Row of each movieId in ``item_vectors_`` (-1 where a film has no text)."""
        return self._text_index.get_indexer(items)

    def _catalogue_rows(self, vectors: np.ndarray) -> np.ndarray:
        """``vectors``' rows of the training catalogue ``item_ids_``, zeros for films without a text."""
        rows = self._text_rows(self.item_ids_)
        padded = np.vstack([vectors, np.zeros((1, vectors.shape[1]), vectors.dtype)])
        return padded[np.where(rows >= 0, rows, -1)]


# --------------------------------------------------------------------------------------------
# TextProfile
# --------------------------------------------------------------------------------------------
def profile_weights(users: np.ndarray, ratings: np.ndarray, n_users: int, *, negative: bool = False) -> np.ndarray:
    r""":class:`TextProfile`'s weight of every rating, :math:`d_{ui} = \max(r_{ui} - \bar r_u, 0)` (with
    ``negative``: :math:`r_{ui} - \bar r_u`), where :math:`\bar r_u` is the mean of ``u``'s ratings given here.

    ``users`` are the ratings' user positions (``0 .. n_users - 1``), ``ratings`` their values. A user whose
    weights are all 0 (every rating equal) gets weight 1 on each film: the plain mean of their films. Returns one
    float64 per rating. Used by ``TextProfile.fit`` and by the group profiles of :mod:`recsys_course.group`.
    """
    count = np.bincount(users, minlength=n_users)
    d = ratings - (np.bincount(users, ratings, n_users) / np.maximum(count, 1))[users]
    if not negative:
        d = np.maximum(d, 0.0)
    flat = np.bincount(users, np.abs(d), n_users)[users] == 0  # a user with no signal: plain mean of their films
    return np.where(flat, 1.0, d)


def unit_profiles(weights, vectors: np.ndarray) -> np.ndarray:
    r"""Unit text profiles :math:`p / \lVert p \rVert` with :math:`p = \sum_i d_{i}\, e_i`: one per row of the sparse
    ``weights`` (rows × films, the :math:`d` of :func:`profile_weights`) over the film ``vectors`` (films × dim).

    Dividing by :math:`\sum_i |d_i|` (the formula of :class:`TextProfile`) only rescales a profile, so it is skipped:
    the cosine does not change. A row without weight stays 0.
    """
    prof = np.asarray(weights @ vectors)
    norm = np.linalg.norm(prof, axis=1, keepdims=True)
    return np.divide(prof, norm, out=np.zeros_like(prof), where=norm > 0)


class TextProfile(_FilmTexts, Recommender):
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

    Parameters
    ----------
    item_text : Series movieId -> text
        The films' texts, required: ``item_texts(ml.movies, ml.tags)`` (:func:`recsys_course.text.item_texts`).
    negative : bool
        Let films rated below the user's mean push the profile away.
    encoder : TextEncoder or None
        ``None``: the packaged encoder (:func:`recsys_course.text.default_encoder`).

    After ``fit``: ``item_vectors_`` (a row per film of ``item_text``), ``catalogue_vectors_`` (a row per
    film of ``item_ids_``), ``weights_`` (users × films CSR of the :math:`d_{ui}`, :func:`profile_weights`),
    ``profiles_`` (a unit row per user of ``user_ids_``, :func:`unit_profiles`).

    Raises
    ------
    TypeError (in ``fit``)
        Without ``item_text``, or if it is not a Series.
    """

    def __init__(self, item_text: pd.Series | None = None, negative: bool = False, encoder=None):
        self.item_text = item_text
        self.negative = negative
        self.encoder = encoder

    def _fit(self, train, users, items):
        check_bool(self, "negative", self.negative)
        _require(self, "item_text", pd.Series, _ITEM_TEXT_FIX)
        self.item_vectors_ = self._embed_films(self._encoder()).astype(np.float64)
        self.catalogue_vectors_ = self._catalogue_rows(self.item_vectors_)
        d = profile_weights(users, train[RATING].to_numpy(np.float64), self.n_users, negative=self.negative)
        self.weights_ = sp.csr_matrix((d, (users, items)), shape=(self.n_users, self.n_items))
        self.profiles_ = unit_profiles(self.weights_, self.catalogue_vectors_)

    def predict(self, users, items) -> np.ndarray:
        """Cosine of each (user, film) pair; any film of ``item_text`` can be scored, also one absent from train.

        Returns float64, one per pair; 0 for a user unknown to the model or a film without a text.
        """
        users, items = _pairs(self, users, items)
        u, f = self.user_positions(users), self._text_rows(items)
        ok = (u >= 0) & (f >= 0)
        out = np.zeros(len(users))
        out[ok] = np.einsum("nd,nd->n", self.profiles_[u[ok]], self.item_vectors_[f[ok]])
        return out

    def _score_users(self, users):
        return self.profiles_[users] @ self.catalogue_vectors_.T


# --------------------------------------------------------------------------------------------
# the torch rating models
# --------------------------------------------------------------------------------------------
class _TextRatingModel(_FilmTexts, TorchRecommender):
    """Shared training and prediction of the two torch rating models (their network: ``TextCFNet``)."""

    predicts_ratings = True
    #: BERTBasedCF: an item embedding table; BERTOffsetCF: the films' text vectors plus offsets
    _item_table = True
    _user_offsets = False
    finetune_layers = 0

    # ---- checks ------------------------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("n_factors", "n_titles", "max_length"):
            check_int(self, name, getattr(self, name))
        check_int(self, "finetune_layers", self.finetune_layers, low=0)
        check_number(self, "reg", self.reg)
        check_number(self, "min_rating", self.min_rating)
        check_choice(self, "head", self.head, ("mlp", "dot"))
        check_sizes(self, "hidden", self.hidden)
        _require(self, "movies", pd.DataFrame, _MOVIES_FIX)

    # ---- the protocol's hooks ----------------------------------------------------------------
    def _prepare(self, train) -> None:
        self.encoder_ = self._encoder()
        n_layers = int(self.encoder_.model.config.num_hidden_layers)
        if self.finetune_layers > n_layers:
            raise ValueError(f"{type(self).__name__}: finetune_layers={self.finetune_layers} but the encoder has "
                             f"only {n_layers} layers")
        if not self._item_table:
            self.item_vectors_ = self._embed_films(self.encoder_)

    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        """The network over ``frame`` (history texts and biases from ``frame`` only), its loss and parameter
        groups (``lr`` for the heads, ``encoder_lr`` for fine-tuned encoder layers)."""
        import torch

        from ..networks.text import TextCFNet

        base = BiasBaseline().fit(frame)
        bu, bi = np.zeros(self.n_users), np.zeros(self.n_items)
        bu[self.user_positions(base.user_ids_)] = base.user_bias_
        bi[self.item_positions(base.item_ids_)] = base.item_bias_
        item_text = None
        if not self._item_table:
            item_text = torch.as_tensor(self._catalogue_rows(self.item_vectors_), device=self.device_)
        network = TextCFNet(self.n_users, self.n_items, int(self.encoder_.dim), self.n_factors, mu=base.mu_,
                            user_bias=bu, item_bias=bi, generator=generator, item_text=item_text,
                            user_offsets=self._user_offsets, head=self.head, hidden=self.hidden,
                            **self._user_inputs(frame, self.device_))
        top = list(network.top.parameters()) if network.top is not None else []
        top_ids = {id(p) for p in top}
        groups = [{"params": [p for p in network.parameters() if p.requires_grad and id(p) not in top_ids],
                   "lr": float(self.lr)}]
        if top:
            groups.append({"params": top, "lr": float(self.encoder_lr)})
        data = (self.user_positions(frame[USER]), self.item_positions(frame[ITEM]), frame[RATING].to_numpy(np.float32))
        return TrainingSetup(network, self._loss(network), data, parameters=groups)

    def _loss(self, network):
        """Mean squared error plus ``reg`` × the mean squared norm of the id rows (Q, u0, i0) a batch touches."""
        ids = [name for name in ("Q", "u0", "i0") if hasattr(network, name)]
        reg = float(self.reg)

        def loss(net, users, items, ratings):
            value = ((net(users, items) - ratings) ** 2).mean()
            if reg:
                penalty = 0.0
                for name in ids:
                    rows = getattr(net, name)[users if name == "u0" else items]
                    penalty = penalty + (rows ** 2).sum(1).mean()
                value = value + reg * penalty
            return value

        return loss

    def _validation_predictions(self, setup, network, users, items):
        """The network's ratings of the held-out pairs (a torch tensor; the protocol clips and takes the RMSE).

        Every held-out film is in the training catalogue: one absent from the fit part is scored with bias 0
        and its untrained item row (BERTBasedCF: its initialisation; BERTOffsetCF: its text vector, offset 0).
        """
        import torch

        device = network.mu.device
        return network(torch.as_tensor(users, device=device), torch.as_tensor(items, device=device))

    def _user_inputs(self, frame: pd.DataFrame, device) -> dict:
        """Text vectors of every user's history text (frozen), or the hidden states below the fine-tuned
        layers and a trainable copy of those layers."""
        import torch

        texts = user_history_texts(frame, self.movies, self.n_titles, self.min_rating)
        texts = texts.reindex(self.user_ids_, fill_value="")
        enc = self.encoder_
        if self.finetune_layers == 0:
            old = enc.max_length
            enc.max_length = self.max_length
            try:
                z = enc.encode(list(texts))
            finally:
                enc.max_length = old
            return {"user_text": torch.as_tensor(z, device=device)}
        below = int(enc.model.config.num_hidden_layers) - self.finetune_layers
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
        return {"hidden_states": torch.cat(states), "attention_mask": batch["attention_mask"].to(device),
                "top_layers": top}

    def _store(self, setup: TrainingSetup, frame: pd.DataFrame) -> None:
        """Keep everything prediction needs as NumPy (user and item vectors) plus the small head."""
        import torch

        net = setup.network
        self.user_text_ = user_history_texts(frame, self.movies, self.n_titles, self.min_rating)
        with torch.no_grad():
            all_users = torch.arange(self.n_users, device=net.mu.device)
            texts = [net.user_text(all_users[s:s + 256]) for s in range(0, self.n_users, 256)]
            self.user_text_vectors_ = torch.cat(texts).cpu().numpy()
            self.user_vectors_ = torch.cat([net.user_vec(all_users[s:s + 256])
                                            for s in range(0, self.n_users, 256)]).cpu().numpy()
            self.item_vectors_train_ = net.item_vec(torch.arange(self.n_items, device=net.mu.device)).cpu().numpy()
            if not self._item_table:  # text-only vectors of every film of item_text (offset 0): for cold films
                y = torch.as_tensor(self.item_vectors_, device=net.mu.device)
                self.item_vectors_text_ = net.item_proj(y).cpu().numpy()
        self.mu_ = float(net.mu)
        self.user_bias_ = net.bu.cpu().numpy().astype(np.float64)
        self.item_bias_ = net.bi.cpu().numpy().astype(np.float64)
        self.head_ = copy.deepcopy(net.head).cpu().eval() if self.head == "mlp" else None
        self.n_trainable_ = int(sum(p.numel() for p in net.parameters() if p.requires_grad))
        #: the fine-tuned copies of the encoder's top layers (None with a frozen encoder)
        self.top_layers_ = copy.deepcopy(net.top).cpu().eval() if net.top is not None else None

    # ---- prediction --------------------------------------------------------------------------
    def _interact(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        if self.head_ is None:
            return np.einsum("...k,...k->...", p, q)
        import torch

        with torch.no_grad():
            pt = torch.as_tensor(np.array(p, np.float32))
            qt = torch.as_tensor(np.array(q, np.float32))
            return self.head_(torch.cat([pt, qt, pt * qt], -1)).squeeze(-1).double().numpy()

    def _item_vectors_for(self, items: np.ndarray):
        """(vectors, has_vector, item bias) for movieIds: trained vectors for training films, the text-only
        vector for other films with a text (BERTOffsetCF), nothing otherwise."""
        pos = self.item_positions(items)
        vec = np.zeros((len(items), self.item_vectors_train_.shape[1]), np.float32)
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
        """Predicted ratings of (user, film) pairs, clipped to the training rating range.

        Fallbacks: a user unknown to the model gets :math:`\\mu + b_i`; a film without a vector (BERTBasedCF:
        absent from train; BERTOffsetCF: absent from train and from ``item_text``) gets :math:`\\mu + b_u`.
        """
        users, items = _pairs(self, users, items)
        return np.clip(self._unclipped(self.user_positions(users), items), *self.rating_range_)

    def _unclipped(self, u: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``predict`` before clipping: user positions (``-1`` = unknown), film ids."""
        q, has_item, bi = self._item_vectors_for(items)
        known_u = u >= 0
        out = self.mu_ + np.where(known_u, self.user_bias_[np.maximum(u, 0)], 0.0) + bi
        both = known_u & has_item
        for s in range(0, int(both.sum()), 65536):
            idx = np.flatnonzero(both)[s:s + 65536]
            out[idx] += self._interact(self.user_vectors_[u[idx]], q[idx])
        return out

    def _pair_values(self, users, items):
        return self._unclipped(users, self.item_ids_[items])

    def _score_users(self, users):
        base = self.mu_ + self.user_bias_[users][:, None] + self.item_bias_[None, :]
        if self.head_ is None:
            return base + self.user_vectors_[users] @ self.item_vectors_train_.T
        import torch

        from ..networks.text import head_scores

        out = head_scores(self.head_, torch.as_tensor(self.user_vectors_[users], dtype=torch.float32),
                          torch.as_tensor(self.item_vectors_train_, dtype=torch.float32))
        return base + out.double().numpy()




class BERTBasedCF(_TextRatingModel):
    r"""BERT-based collaborative filtering, done right: a BERT encoder reads the user's history.

    For user :math:`u` with history text :math:`U_u` (:func:`~recsys_course.text.user_history_texts` of the
    training frame: the titles of their most recent liked films) and film :math:`i` with a learned embedding
    :math:`q_i`:

    .. math:: z_u = \mathrm{MeanPool}(\mathrm{BERT}(U_u)) \in \mathbb R^h, \qquad p_u = W z_u + c \in \mathbb R^k,

    .. math:: \hat r_{ui} = \mu + b_u + b_i + f(p_u, q_i), \qquad
              f(p, q) = \mathrm{MLP}([p; q; p \odot q]) \ (\texttt{head="mlp"})
              \quad\text{or}\quad p^\top q \ (\texttt{head="dot"}),

    the MLP having one ReLU layer per width of ``hidden`` (default one of 64:
    :math:`w_2^\top \mathrm{ReLU}(W_1 [p; q; p \odot q] + c_1) + c_2`).
    :math:`\mu, b_u, b_i` are fixed, from :class:`~recsys_course.models.BiasBaseline` on the same frame. The
    user has **no id embedding**: everything personal comes from the text. Loss: mean squared error plus
    ``reg`` :math:`\cdot \lVert q_i\rVert^2` per rating; Adam with ``lr`` (``encoder_lr`` for fine-tuned layers).

    * ``finetune_layers=0`` — frozen encoder: :math:`z_u` is encoded once (and cached on disk); training only
      touches :math:`W, c, q, f` — fast on a CPU.
    * ``finetune_layers=L`` — the top ``L`` transformer layers are copied and trained too (the token
      embeddings and lower layers stay frozen; their output for each history text is computed once). The
      shared encoder itself is never modified, so its embedding cache stays valid.

    Parameters
    ----------
    movies : DataFrame
        Required: the films' titles for the history texts (``ml.movies``: ``movieId, title, year``).
    n_factors : int
        :math:`k`, the size of :math:`p_u` and :math:`q_i`.
    hidden : tuple of int
        Widths of the MLP head's hidden layers.
    n_titles, min_rating
        The history text: the ``n_titles`` most recent films rated at least ``min_rating``.
    max_length : int
        Tokens read from a history text.
    encoder : TextEncoder or None
        ``None``: the packaged encoder (:func:`recsys_course.text.default_encoder`).

    Fallbacks: a film absent from train has no embedding → :math:`\mu + b_u` (this model **cannot** rank
    cold films); a user unknown to the model → :math:`\mu + b_i`; ``recommend`` refuses unknown users.
    Predictions are clipped to the training rating range (``recommend``'s scores are not). Cost per epoch:
    :math:`O(|\mathcal R|\,k\,h')` with :math:`h'` the head width, plus the fine-tuned layers' forward and
    backward pass over the users of each batch.

    Training (the protocol of :class:`~recsys_course.models.torch_train.TorchRecommender`): with ``val_size``
    (default 0.2, a share per user; an integer holds out that many ratings per user), ``val_split="last"`` holds
    out each user's most recent training ratings (``"random"``: random ones) — their history texts are rebuilt
    from the rest — and training stops when the validation RMSE has not improved for ``patience`` epochs; then,
    with ``refit``, the model is trained again on all of train for the best number of epochs. ``val_size=None``:
    ``n_epochs`` epochs on everything. Adam with ``lr`` and ``weight_decay`` (the optimiser's L2 term, on every
    trainable parameter; ``reg`` is the penalty inside the loss).

    After ``fit``: ``user_vectors_`` (:math:`p_u`, users × ``n_factors``), ``item_vectors_train_`` (:math:`q_i`,
    films of ``item_ids_`` × ``n_factors``), ``user_text_vectors_`` (:math:`z_u`), ``user_text_`` (each user's
    history text), ``mu_``, ``user_bias_``, ``item_bias_``, ``head_`` (the MLP, or None), ``n_trainable_`` (the
    trainable parameters), ``top_layers_`` (fine-tuned encoder layers, or None), ``history_``, ``best_epoch_``,
    ``loss_``, ``fit_seconds_``.

    Raises
    ------
    TypeError (in ``fit``)
        Without ``movies`` (or ``item_text`` for BERTOffsetCF), or if they are not pandas objects.
    ValueError (in ``fit``)
        A hyper-parameter out of range (the message names it), or ``finetune_layers`` above the encoder's depth.
    """

    _item_table = True
    _user_offsets = False

    def __init__(self, n_factors: int = 32, hidden: tuple = (64,), head: str = "mlp", finetune_layers: int = 0,
                 n_titles: int = 5, min_rating: float = 4.0, max_length: int = 64, lr: float = 0.003,
                 encoder_lr: float = 1e-4, reg: float = 0.02, weight_decay: float = 0.0, n_epochs: int = 20,
                 batch_size: int = 1024, patience: int | None = 2, val_size: int | float | None = 0.2,
                 val_split: str = "last", refit: bool = True, movies: pd.DataFrame | None = None, encoder=None,
                 device=None, seed: int = 0, verbose: bool = True):
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
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.movies = movies
        self.encoder = encoder
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        check_number(self, "encoder_lr", self.encoder_lr, positive=True)


class BERTOffsetCF(_TextRatingModel):
    r"""Text vectors on both sides plus learnable id offsets: :math:`u = \mathrm{BERT}(U) + u_0`,
    :math:`i = \mathrm{BERT}(I) + i_0`, :math:`\hat r = \mathrm{MLP}(u, i)`.

    With :math:`z_u` the text vector of the user's history text, :math:`y_i` that of the film's text
    (``item_text``), both from the frozen encoder, and learned maps :math:`A, B` from the text space
    (:math:`h` dims) to :math:`k` dims:

    .. math:: u = A z_u + u_0, \qquad i = B y_i + i_0, \qquad
              \hat r_{ui} = \mu + b_u + b_i + \mathrm{MLP}([u; i; u \odot i])

    (one ReLU layer per width of ``hidden``; by default
    :math:`w_2^\top \mathrm{ReLU}(W_1 [u; i; u \odot i] + c_1) + c_2`). (The formula as it is often first written,
    :math:`u = \mathrm{BERT}(U) + u_0` is the case :math:`A = I`, :math:`k = h`; the maps let the offsets live in
    a small space.) The offsets start at 0 and are penalised by ``reg``
    :math:`\cdot(\lVert u_0\rVert^2 + \lVert i_0\rVert^2)` per rating, so an id learns an offset only as far as
    its ratings justify one. :math:`\mu, b_u, b_i` are fixed, from :class:`~recsys_course.models.BiasBaseline`.
    The encoder stays frozen (all text vectors are computed once and cached); ``head="dot"`` replaces the
    MLP by :math:`u^\top i`.

    Parameters
    ----------
    movies : DataFrame
        Required: the films' titles for the history texts (``ml.movies``).
    item_text : Series movieId -> text
        Required: the films' texts, ``item_texts(ml.movies, ml.tags)`` (:func:`recsys_course.text.item_texts`).
        Every film with a text can be scored, also one absent from train.
    Others as in :class:`BERTBasedCF` (there is no ``finetune_layers`` / ``encoder_lr``).

    Fallbacks: a film absent from train but with a text gets :math:`i = B y_i` (offset 0, bias 0) — so this
    model **can** score cold films; a film without a text → :math:`\mu + b_u`; an unknown user →
    :math:`\mu + b_i`; ``recommend`` refuses unknown users. Predictions are clipped to the training rating
    range. Training, fitted attributes and errors as in :class:`BERTBasedCF`; ``item_vectors_`` also holds the
    text vector of every film of ``item_text``.
    """

    _item_table = False
    _user_offsets = True

    def __init__(self, n_factors: int = 32, hidden: tuple = (64,), head: str = "mlp", n_titles: int = 5,
                 min_rating: float = 4.0, max_length: int = 64, lr: float = 0.003, reg: float = 0.02,
                 weight_decay: float = 0.0, n_epochs: int = 20, batch_size: int = 1024, patience: int | None = 2,
                 val_size: int | float | None = 0.2, val_split: str = "last", refit: bool = True,
                 movies: pd.DataFrame | None = None, item_text: pd.Series | None = None, encoder=None,
                 device=None, seed: int = 0, verbose: bool = True):
        self.n_factors = n_factors
        self.hidden = hidden
        self.head = head
        self.n_titles = n_titles
        self.min_rating = min_rating
        self.max_length = max_length
        self.lr = lr
        self.reg = reg
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.movies = movies
        self.item_text = item_text
        self.encoder = encoder
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        _require(self, "item_text", pd.Series, _ITEM_TEXT_FIX)

r"""Several modalities of a film in one recommender (notebook 13, section 3): early fusion, late fusion, modality
dropout.

A film is described by several *modalities*, each a matrix with one row per film (:class:`FilmModalities`, built by
:func:`film_modalities` for every film of ``movies``, rated or not):

* ``text`` — the sentence encoder's unit vector of the film's text (``embed_texts(item_texts(movies, tags))``);
* ``genres`` — the multi-hot genres scaled to unit length (the genre block of :func:`recsys_course.features.item_features`);
* ``tags`` — the films' TF-IDF tag rows reduced by a seeded truncated SVD to ``tag_dim`` columns
  (:func:`recsys_course.models.content.reduce_features`), rows scaled to unit length; absent without tags (ml-1m);
* ``year`` — the release year as Gaussian bumps on decade centres, :math:`\phi_c(y) = e^{-(y - c)^2 / 2\sigma^2}`
  (:math:`\sigma` = 10 years), scaled to unit length: neighbouring years get similar rows;
* ``cf`` — collaborative factors: the item factors :math:`V_k` of a :class:`~recsys_course.models.PureSVD` fitted on
  the training ratings (:func:`collaborative_factors`), scaled so that the mean row length is 1 (a row's length
  grows with the film's popularity and is kept). A film absent from train — a cold film — has none.

Every modality also has a **presence** flag per film (a film without tags, without a year, without factors): its
row is all zeros and the flag says it is missing, not small.

Two ways to combine them, both :class:`~recsys_course.models.base.Recommender` s that can score films never rated in
train (what :func:`recsys_course.evaluate.evaluate_cold_items` asks):

* :class:`EarlyFusion` — concatenate the modalities (and the presence flags) into one input and learn one item
  tower, an MLP :math:`z_i = f([x_i^{(1)}; \dots; x_i^{(M)}; a_i])`; a user is the mean of the tower vectors of the
  films they liked, :math:`p_u = \frac{1}{|L_u|}\sum_{j \in L_u} z_j`, and :math:`s(u, i) = p_u^\top z_i`.
  **Modality dropout**: during training each modality of each film is zeroed (and flagged missing) with
  probability ``modality_dropout``, so the tower learns to score a film that lacks one — the cold films' factors.
* :class:`LateFusion` — one score per modality, :math:`s_m(u, i) = \hat p_u^{(m)\top} x_i^{(m)}` with
  :math:`\hat p_u^{(m)}` the user's unit profile in that modality, blended by the weights of a logistic regression
  fitted on a validation slice of train (held-out liked films against sampled films),
  :math:`s(u, i) = b_a + \sum_{m \in a} w_{a,m}\, s_m(u, i)`, with one blend per availability pattern :math:`a` (the
  set of modalities a film has), each fitted on the same pairs with the missing modalities left out.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from .checks import check_bool, check_int, check_number, check_sizes
from .config import ITEM, RATING, USER, YEAR
from .models.base import Recommender, UnknownIdError
from .models.torch_train import TorchRecommender, TrainingSetup
from .networks.layers import seeded_init

__all__ = ["MODALITIES", "FilmModalities", "film_modalities", "collaborative_factors", "modality_scores", "fit_blend",
           "FusionTower", "EarlyFusion", "LateFusion"]

#: The modalities :func:`film_modalities` and the models know, in the order their blocks are concatenated.
MODALITIES = ("text", "genres", "tags", "year", "cf")
#: Width (years) of the Gaussian bumps of the ``year`` modality, one bump per decade.
YEAR_WIDTH = 10.0

_MODALITIES_FIX = ("build them with recsys_course.fusion.film_modalities(movies, tags, text=embed_texts(item_texts("
                   "movies, tags)))")


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; all-zero rows stay zero."""
    norm = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norm, out=np.zeros_like(matrix), where=norm > 0)


# --------------------------------------------------------------------------------------------
# the modalities
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False, eq=False)
class FilmModalities:
    """Per-modality film matrices aligned on ``item_ids`` (sorted movieIds).

    ``blocks[name]`` is a float32 array ``(n_films, d_name)``; ``present[name]`` a bool array ``(n_films,)``, False
    where the film lacks that modality (its row is zeros). Build it with :func:`film_modalities`.
    """

    item_ids: np.ndarray
    blocks: dict
    present: dict

    def __post_init__(self):
        n = len(self.item_ids)
        if set(self.blocks) != set(self.present):
            raise ValueError(f"blocks {list(self.blocks)} and present {list(self.present)} must name the same "
                             "modalities")
        for name, block in self.blocks.items():
            if block.ndim != 2 or block.shape[0] != n:
                raise ValueError(f"modality {name!r} has shape {block.shape} but there are {n} films: give it one "
                                 "row per film of movies, in the order of movies")
            if self.present[name].shape != (n,):
                raise ValueError(f"present[{name!r}] must hold one flag per film ({n}), got shape "
                                 f"{self.present[name].shape}")

    @property
    def names(self) -> tuple:
        """The modalities, in concatenation order."""
        return tuple(self.blocks)

    @property
    def dims(self) -> dict:
        """Columns of each modality."""
        return {name: block.shape[1] for name, block in self.blocks.items()}

    def positions(self, item_ids) -> np.ndarray:
        """Row of each movieId (``-1`` for a film these modalities do not cover)."""
        return pd.Index(self.item_ids).get_indexer(np.asarray(item_ids))

    def rows(self, name: str, item_ids) -> tuple[np.ndarray, np.ndarray]:
        """``(matrix, present)`` of modality ``name`` for ``item_ids`` in that order; zeros and False for a film
        these modalities do not cover."""
        self._check_names([name])
        pos = self.positions(item_ids)
        ok = pos >= 0
        out = np.zeros((len(pos), self.blocks[name].shape[1]), np.float32)
        out[ok] = self.blocks[name][pos[ok]]
        flag = np.zeros(len(pos), bool)
        flag[ok] = self.present[name][pos[ok]]
        return out, flag

    def select(self, names) -> FilmModalities:
        """Only the modalities ``names`` (in this object's order); raises for an unknown name or an empty list."""
        names = self._check_names(names)
        if not names:
            raise ValueError(f"no modality selected: keep at least one of {list(self.names)}")
        return FilmModalities(self.item_ids, {n: self.blocks[n] for n in self.names if n in names},
                              {n: self.present[n] for n in self.names if n in names})

    def _check_names(self, names) -> list:
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in self.blocks]
        if unknown:
            raise ValueError(f"unknown modality {unknown[0]!r}; these modalities are {list(self.names)}")
        return names

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {d} dims, {int(self.present[n].sum())} films" for n, d in self.dims.items())
        return f"FilmModalities({len(self.item_ids)} films; {parts})"


def _aligned(name: str, matrix, movies: pd.DataFrame) -> np.ndarray:
    """``matrix`` as float32 rows in ``movies``' order; refuses a wrong number of rows."""
    arr = np.asarray(matrix, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != len(movies):
        raise ValueError(f"modality {name!r} has shape {arr.shape} but movies has {len(movies)} films: pass one row "
                         "per film of movies, in the order of movies (embed_texts(item_texts(movies, tags)) is)")
    if not np.isfinite(arr).all():
        raise ValueError(f"modality {name!r} has NaN or infinite values; use zeros for a missing film")
    return arr


def _year_bumps(years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``year`` modality: Gaussian bumps on the decade centres spanning ``years``, unit rows; NaN → missing."""
    known = np.isfinite(years)
    if not known.any():
        return np.zeros((len(years), 0), np.float32), known
    lo, hi = np.floor(years[known].min() / 10) * 10, np.ceil(years[known].max() / 10) * 10
    centres = np.arange(lo, hi + 1, 10.0)
    bumps = np.exp(-0.5 * ((np.nan_to_num(years)[:, None] - centres[None, :]) / YEAR_WIDTH) ** 2)
    bumps[~known] = 0.0
    return _unit_rows(bumps).astype(np.float32), known


def _reduced(item_ids: np.ndarray, matrix, n_components: int, seed: int) -> np.ndarray:
    """Rows of ``matrix`` projected on its top ``n_components`` right singular vectors (the seeded truncated SVD of
    :func:`recsys_course.models.content.reduce_features`), scaled to unit length; all-zero rows stay zero."""
    from .features import ItemFeatures
    from .models.content import reduce_features

    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    names = np.array([f"c{j}" for j in range(matrix.shape[1])], dtype=object)
    wrapped = ItemFeatures(item_ids, matrix, names, {"all": slice(0, matrix.shape[1])}, {"all": 1.0})
    reduced, _ = reduce_features(wrapped, min(n_components, min(matrix.shape)), seed)
    return _unit_rows(np.asarray(reduced, dtype=np.float32))


def film_modalities(movies: pd.DataFrame, tags: pd.DataFrame | None = None, *, text=None, text_dim: int | None = 64,
                    tag_dim: int = 32, extra: dict | None = None, seed: int = 0) -> FilmModalities:
    r"""The per-modality matrices of every film of ``movies`` (see the module docstring), rows sorted by movieId.

    Parameters
    ----------
    movies : DataFrame
        ``movieId, title, genres`` (and ``year``), e.g. ``ml.movies``.
    tags : DataFrame or None
        ``movieId, tag``; ``None`` (ml-1m has no tags) or no usable tag leaves the ``tags`` modality out.
    text : array (len(movies), d) or None
        The films' text vectors in the order of ``movies``: ``embed_texts(item_texts(movies, tags))``.
    text_dim : int or None
        Columns kept by a seeded truncated SVD of the text vectors (``None``: all ``d``). 64 of MiniLM's 384 keep
        the ranking of both models within noise on ml-latest-small and make them about 4 times cheaper.
    tag_dim : int
        Columns kept by the seeded truncated SVD of the TF-IDF tag rows.
    extra : dict name -> array (len(movies), d), optional
        Further modalities (a poster's image vector, ...), in the order of ``movies``; an all-zero row is missing.
    seed : int
        The SVDs' start vectors.

    The ``cf`` modality is not built here: it depends on the training ratings, so the models compute it in ``fit``
    (:func:`collaborative_factors`). Cost: about a second on ml-latest-small (the TF-IDF and the SVDs).

    Raises
    ------
    ValueError
        A matrix whose row count differs from ``movies``' (misaligned), duplicated movieIds, a name clash.
    """
    from .features import item_features

    if not isinstance(movies, pd.DataFrame) or ITEM not in movies.columns:
        raise TypeError(f"movies must be a DataFrame with a {ITEM!r} column, e.g. ml.movies")
    if movies[ITEM].duplicated().any():
        raise ValueError("movies has duplicated movieIds; keep one row per film")
    check_int("film_modalities", "tag_dim", tag_dim)
    check_int("film_modalities", "text_dim", text_dim, allow_none=True)
    order = np.argsort(movies[ITEM].to_numpy(), kind="stable")
    item_ids = movies[ITEM].to_numpy()[order]
    blocks, present = {}, {}

    extra = dict(extra or {})
    clash = [n for n in extra if n in MODALITIES]
    if clash:
        raise ValueError(f"extra modality {clash[0]!r} clashes with a built-in one; rename it")
    if text is not None:
        arr = _aligned("text", text, movies)[order]
        has = np.abs(arr).sum(1) > 0
        if text_dim is not None and text_dim < arr.shape[1]:
            arr = _reduced(item_ids, arr, text_dim, seed)
        blocks["text"], present["text"] = arr, has

    base = item_features(movies, tags, weights={"genres": 1.0, "tags": 1.0, "title": 0.0, "year": 0.0})
    genres = base.block("genres").toarray().astype(np.float32)
    names = list(base.feature_names[base.blocks["genres"]])
    if "genre:(no genres listed)" in names:          # a label that says the genres are missing
        genres[:, names.index("genre:(no genres listed)")] = 0.0
    blocks["genres"], present["genres"] = _unit_rows(genres), genres.sum(1) > 0

    tag_block = base.block("tags") if "tags" in base.blocks else sp.csr_matrix((len(item_ids), 0))
    if tag_block.shape[1] > 0 and tag_block.nnz > 0:
        has = np.asarray(tag_block.getnnz(axis=1) > 0)
        reduced = _reduced(item_ids, tag_block, tag_dim, seed)
        reduced[~has] = 0.0
        blocks["tags"], present["tags"] = reduced, has
    # else: no tags (ml-1m) — the modality is left out, and the models work with the others

    years = (pd.to_numeric(movies[YEAR], errors="coerce").to_numpy(float)[order] if YEAR in movies.columns
             else np.full(len(item_ids), np.nan))
    year_rows, year_known = _year_bumps(years)
    if year_rows.shape[1]:
        blocks["year"], present["year"] = year_rows, year_known

    for name, matrix in extra.items():
        arr = _aligned(name, matrix, movies)[order]
        blocks[name], present[name] = arr, np.abs(arr).sum(1) > 0
    return FilmModalities(item_ids, blocks, present)


def collaborative_factors(train: pd.DataFrame, item_ids, n_factors: int = 32, seed: int = 0):
    r"""The ``cf`` modality: item factors of a :class:`~recsys_course.models.PureSVD` fitted on ``train``.

    Returns ``(matrix, present)`` for ``item_ids`` in that order: the rows of :math:`V_k` scaled by one number so
    that the mean length of the rows of the films of ``train`` is 1 (their lengths, which grow with popularity,
    are kept); zeros and ``present = False`` for a film absent from ``train``. ``n_factors`` is capped below
    ``min(n_users, n_items)`` (tiny data). Cost: one sparse SVD, a fraction of a second on ml-latest-small.
    """
    from .models import PureSVD

    n_users, n_items = train[USER].nunique(), train[ITEM].nunique()
    k = min(int(n_factors), min(n_users, n_items) - 1)
    if k < 1:
        raise ValueError(f"collaborative_factors: train has {n_users} users and {n_items} films, too few for "
                         "an SVD; use a larger train or leave the cf modality out")
    svd = PureSVD(n_factors=k, seed=seed).fit(train)
    V = svd.item_factors_
    V = V / np.linalg.norm(V, axis=1).mean()
    pos = svd.item_positions(np.asarray(item_ids))
    out = np.zeros((len(pos), k), np.float32)
    out[pos >= 0] = V[pos[pos >= 0]]
    return out, pos >= 0


def modality_scores(profiles: np.ndarray, films: np.ndarray) -> np.ndarray:
    r"""Late fusion's score of one modality, :math:`s_m(u, i) = \hat p_u^\top x_i`: users' unit profiles
    ``(n_users, d)`` against film rows ``(n_films, d)``, a ``(n_users, n_films)`` array. The content rows are unit
    vectors, so for them this is the cosine; a ``cf`` row keeps its length (popularity)."""
    return (np.asarray(profiles, np.float32) @ np.asarray(films, np.float32).T).astype(np.float64)


def fit_blend(features, labels, C: float = 1.0, n_iters: int = 50) -> tuple[np.ndarray, float]:
    r"""The logistic regression of :class:`LateFusion`'s blend: weights :math:`w` and intercept :math:`b` minimising

    .. math:: \tfrac12 \lVert w \rVert^2 + C \sum_n \big[\log(1 + e^{x_n^\top w + b}) - y_n (x_n^\top w + b)\big]

    (scikit-learn's ``LogisticRegression(C=C)``; the intercept is not penalised), by Newton's method: with
    :math:`p_n = \sigma(x_n^\top w + b)`, gradient :math:`C X^\top (p - y) + (w, 0)` and Hessian
    :math:`C X^\top \mathrm{diag}(p(1-p)) X + \mathrm{diag}(1, \dots, 1, 0)` (:math:`X` with a column of ones).
    A handful of columns, so each step is one small solve; stops when the step is below 1e-10.
    """
    X = np.asarray(features, np.float64)
    y = np.asarray(labels, np.float64)
    if X.ndim != 2 or len(X) != len(y) or not len(y):
        raise ValueError(f"fit_blend: features must be (n, m) and labels (n,), got {X.shape} and {y.shape}")
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise ValueError("fit_blend: labels must be 0 or 1")
    check_number("fit_blend", "C", C, positive=True)
    Xb = np.hstack([X, np.ones((len(X), 1))])
    ridge = np.ones(Xb.shape[1])
    ridge[-1] = 0.0
    theta = np.zeros(Xb.shape[1])
    for _ in range(n_iters):
        p = 1.0 / (1.0 + np.exp(-(Xb @ theta)))
        grad = C * (Xb.T @ (p - y)) + ridge * theta
        hess = C * (Xb.T * (p * (1 - p))) @ Xb + np.diag(ridge) + 1e-12 * np.eye(len(theta))
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return theta[:-1], float(theta[-1])


# --------------------------------------------------------------------------------------------
# shared plumbing of the two models
# --------------------------------------------------------------------------------------------
class _Fusion:
    """What both models share: which modalities, the catalogue's rows, cold films, user pools."""

    def _check_modalities(self) -> list:
        if not isinstance(self.modalities, FilmModalities):
            raise TypeError(f"{type(self).__name__}: modalities must be a FilmModalities, got "
                            f"{type(self.modalities).__name__}; {_MODALITIES_FIX}")
        check_int(self, "cf_factors", self.cf_factors, low=0)
        if "cf" in self.modalities.names:
            raise ValueError(f"{type(self).__name__}: the modalities already hold a 'cf' block; the model fits its "
                             "own collaborative factors on train (cf_factors), so leave it out of film_modalities")
        available = list(self.modalities.names) + (["cf"] if self.cf_factors else [])
        use = available if self.use is None else ([self.use] if isinstance(self.use, str) else list(self.use))
        unknown = [n for n in use if n not in available]
        if unknown:
            hint = " (cf needs cf_factors >= 1)" if unknown[0] == "cf" else ""
            raise ValueError(f"{type(self).__name__}: unknown modality {unknown[0]!r}{hint}; available: {available}")
        if not use:
            raise ValueError(f"{type(self).__name__}: every modality is dropped (use is empty); keep at least one of "
                             f"{available}")
        return [n for n in available if n in use]

    def _content_names(self) -> list:
        return [n for n in self.used_ if n != "cf"]

    def _film_rows(self, item_ids, cf=None) -> tuple[list, np.ndarray]:
        """Blocks (float32) and presence ``(n, M)`` of ``item_ids`` in ``used_`` order; ``cf`` = (matrix, present)
        of these films, or None (no factors: a cold film)."""
        blocks, flags = [], []
        for name in self.used_:
            if name == "cf":
                if cf is None:
                    m, f = np.zeros((len(item_ids), self.cf_dim_), np.float32), np.zeros(len(item_ids), bool)
                else:
                    m, f = cf
            else:
                m, f = self.modalities.rows(name, item_ids)
            blocks.append(m)
            flags.append(f)
        return blocks, np.stack(flags, axis=1)

    def _check_pairs(self, users, items) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``predict``'s checks: returns user positions (unknown users raise), catalogue positions, modality rows."""
        self._check_fitted()
        users, items = np.atleast_1d(np.asarray(users)), np.atleast_1d(np.asarray(items))
        if users.ndim != 1 or users.shape != items.shape:
            raise ValueError(f"users and items must be one-dimensional and pair up: got shapes {users.shape} and "
                             f"{items.shape}")
        u = self.user_positions(users)
        if (u < 0).any():
            raise UnknownIdError(
                f"{type(self).__name__} has no liked films for {int((u < 0).sum())} user(s) absent from its training "
                f"data (e.g. {list(users[u < 0][:5])}), so it has no profile to score with; refit on a frame that "
                "holds their ratings")
        return users, items, u, self.item_positions(items)


def _pools(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int,
           min_rating: float | None) -> sp.csr_matrix:
    """Users × films 0/1: the films each user liked (rating >= ``min_rating``), or every film they rated if they
    liked none (or ``min_rating`` is None)."""
    liked = np.ones(len(users), bool) if min_rating is None else ratings >= min_rating
    has = np.bincount(users[liked], minlength=n_users) > 0
    keep = liked | ~has[users]
    return sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (users[keep], items[keep])), shape=(n_users, n_items))


def _mean_rows(pools: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum 1 (the mean over a user's pool)."""
    count = np.asarray(pools.sum(1)).ravel()
    return sp.diags(1.0 / np.maximum(count, 1)) @ pools


# --------------------------------------------------------------------------------------------
# early fusion
# --------------------------------------------------------------------------------------------
class FusionTower(nn.Module):
    r"""The item tower of :class:`EarlyFusion`: an MLP over the concatenated modalities and presence flags,
    :math:`z = W_L\,\mathrm{ReLU}(\dots \mathrm{ReLU}(W_1 x + b_1) \dots) + b_L` (Linear-ReLU per width of ``hidden``,
    then a Linear to ``n_factors``), initialised from ``generator`` (:func:`recsys_course.networks.layers.seeded_init`).
    """

    def __init__(self, n_in: int, hidden: tuple, n_factors: int, generator: torch.Generator):
        super().__init__()
        widths = [n_in, *hidden, n_factors]
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*layers[:-1])
        seeded_init(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class EarlyFusion(_Fusion, TorchRecommender):
    r"""Early fusion: one item tower over the concatenated modalities, users as the mean of their liked films.

    With :math:`x_i^{(m)}` film :math:`i`'s row of modality :math:`m` and :math:`a_{im} \in \{0, 1\}` its presence,

    .. math:: z_i = f\big([a_{i1} x_i^{(1)}; \dots; a_{iM} x_i^{(M)}; a_{i1}, \dots, a_{iM}]\big), \qquad
              p_u = \frac{1}{|L_u|} \sum_{j \in L_u} z_j, \qquad s(u, i) = p_u^\top z_i,

    :math:`f` an MLP (``hidden`` widths, ReLU, ``n_factors`` outputs; the default ``hidden=()`` is one linear map,
    what a validation slice of ml-latest-small's train preferred to a hidden layer of 64 or 128), :math:`L_u` the films ``u`` rated
    ``>= min_rating`` in train (every film they rated, if none). A pooled profile instead of a learned user table:
    there is nothing per user to learn (the tower is shared by every film and every user), a user's profile follows
    their history without a refit, and a film nobody rated gets a vector from its modalities.

    **Training** (full softmax over the catalogue): every step takes ``batch_size`` users, splits each one's liked
    films at random into a held-out share ``target_share`` (at least one) and the rest (at least one), pools the rest
    into :math:`p_u` and maximises the log-likelihood of the held-out ones among every film not in the pool,

    .. math:: \mathcal L = -\frac{1}{|B|} \sum_{u \in B} \frac{1}{|T_u|} \sum_{i \in T_u}
              \log \frac{e^{s(u, i)}}{\sum_{j \notin P_u} e^{s(u, j)}},

    so the profile learns to predict films it has not seen, as the test asks. With ``n_negatives`` the denominator is
    estimated from that many films drawn uniformly at each step, :math:`\frac{n}{S}\sum_{j \in S} e^{s(u, j)}` (a
    sampled softmax for large catalogues; on ml-latest-small it ranked worse than the full one, the default ``None``). **Modality dropout**: at every step
    each modality of each film is zeroed and flagged missing (:math:`a_{im} = 0`) with probability
    ``modality_dropout`` — a film that really lacks a modality (a cold film's ``cf``) is then no stranger. An epoch is
    one pass over the users; early stopping (``val_size``) and ``refit`` follow
    :class:`~recsys_course.models.torch_train.TorchRecommender`.

    Parameters
    ----------
    modalities : FilmModalities
        The content modalities of every film (:func:`film_modalities`).
    use : tuple of names or None
        The modalities to use (``None``: all, plus ``cf`` when ``cf_factors``); e.g. an ablation leaves one out.
    cf_factors : int
        Columns of the ``cf`` modality (PureSVD fitted on the training frame, :func:`collaborative_factors`); 0: none.
    n_factors, hidden : the tower's output size and hidden widths.
    modality_dropout : float in [0, 1)
    target_share : float in (0, 1)
        Share of a user's liked films held out as targets at each step.
    n_negatives : int or None
        ``None``: full softmax over the catalogue; an integer: a sampled softmax over that many uniform films.
    min_rating : stars or None
        Liked films: rated at least this (``None``: every rated film).

    After ``fit``: ``used_`` (the modalities, in order), ``item_vectors_`` (``z`` of every catalogue film),
    ``user_vectors_`` (``p_u``), ``cf_dim_``, ``network_`` and what
    :class:`~recsys_course.models.torch_train.TorchRecommender` sets (``loss_``, ``history_``, ``fit_seconds_``).
    Fallbacks: ``predict`` scores any film of ``modalities`` (one absent from train without ``cf``), ``-inf`` for a
    film it has no row for; an unknown user raises :class:`UnknownIdError` (no history to pool). Cost per step: the
    tower over the whole catalogue, forward and backward (about ``n_items × (Σ d_m) × hidden[0]`` multiply-adds).
    """

    def __init__(self, modalities: FilmModalities | None = None, use=None, cf_factors: int = 32, n_factors: int = 32,
                 hidden: tuple = (), modality_dropout: float = 0.3, target_share: float = 0.2,
                 n_negatives: int | None = None, min_rating: float | None = 4.0, lr: float = 0.01,
                 weight_decay: float = 0.0, n_epochs: int = 20,
                 batch_size: int = 1024, patience: int | None = 3, val_size: int | float | None = None,
                 val_split: str = "last", refit: bool = True, seed: int = 0, device=None, verbose: bool = False):
        self.modalities = modalities
        self.use = use
        self.cf_factors = cf_factors
        self.n_factors = n_factors
        self.hidden = hidden
        self.modality_dropout = modality_dropout
        self.target_share = target_share
        self.n_negatives = n_negatives
        self.min_rating = min_rating
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.seed = seed
        self.device = device
        self.verbose = verbose

    # ---- the protocol's hooks ----------------------------------------------------------------
    def _check_params(self) -> None:
        self.used_ = self._check_modalities()
        check_int(self, "n_factors", self.n_factors)
        check_sizes(self, "hidden", self.hidden, allow_empty=True)
        check_number(self, "modality_dropout", self.modality_dropout, below=1.0)
        check_number(self, "target_share", self.target_share, positive=True, below=1.0)
        check_int(self, "n_negatives", self.n_negatives, allow_none=True)
        check_number(self, "min_rating", self.min_rating, allow_none=True)

    def _prepare(self, train) -> None:
        self.cf_dim_ = 0
        if "cf" in self.used_:
            self.cf_dim_ = min(int(self.cf_factors), min(self.n_users, self.n_items) - 1)

    def _inputs(self, blocks: list, flags: np.ndarray):
        """The tower's input as a torch tensor: the blocks, then the presence flags."""
        return torch.as_tensor(np.hstack([*blocks, flags.astype(np.float32)]), device=self.device_)

    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        cf = collaborative_factors(frame, self.item_ids_, self.cf_dim_, self.seed) if self.cf_dim_ else None
        blocks, flags = self._film_rows(self.item_ids_, cf)
        widths = [b.shape[1] for b in blocks]
        x = self._inputs(blocks, flags)
        network = FusionTower(x.shape[1], tuple(self.hidden), self.n_factors, generator)
        u, i = self.user_positions(frame[USER]), self.item_positions(frame[ITEM])
        pools = _pools(u, i, frame[RATING].to_numpy(np.float64), self.n_users, self.n_items, self.min_rating)
        counts = np.diff(pools.indptr)
        learners = np.flatnonzero(counts >= 2)      # a split needs one pooled and one held-out film
        if not len(learners):
            raise ValueError(f"{type(self).__name__}: no user has two liked films (rating >= {self.min_rating}) to "
                             "learn from; lower min_rating or pass more ratings")
        dev = self.device_
        state = {"x": x, "cf": cf, "pools": pools,
                 "indptr": torch.as_tensor(pools.indptr.astype(np.int64), device=dev),
                 "indices": torch.as_tensor(pools.indices.astype(np.int64), device=dev)}
        # the modality of each column of x (its block, then its flag), to zero a dropped modality
        col_mod = torch.as_tensor(np.concatenate([np.repeat(np.arange(len(widths)), widths), np.arange(len(widths))]),
                                  device=dev)
        n_mod, p, share = len(widths), float(self.modality_dropout), float(self.target_share)

        n_items, n_neg = self.n_items, self.n_negatives
        log_share = float(np.log(n_items / n_neg)) if n_neg else 0.0

        def loss(net, users):
            indptr, indices = state["indptr"], state["indices"]
            # each user's liked films, flattened: owner = the user's row in the batch
            starts_, counts_ = indptr[users], indptr[users + 1] - indptr[users]
            owner = torch.repeat_interleave(torch.arange(len(users), device=dev), counts_)
            entry = starts_[owner] + torch.arange(int(counts_.sum()), device=dev) - (torch.cumsum(counts_, 0)
                                                                                     - counts_)[owner]
            films = indices[entry]
            # the random split: held out with probability `share`, at least one held out and one pooled per user
            draw = torch.rand(len(entry), device=dev)
            low = torch.full((len(users),), 2.0, device=dev).scatter_reduce(0, owner, draw, "amin")
            high = torch.full((len(users),), -1.0, device=dev).scatter_reduce(0, owner, draw, "amax")
            target = ((draw < share) | (draw == low[owner])) & (draw != high[owner])
            negatives = None if n_neg is None else torch.randint(0, n_items, (n_neg,), device=dev)
            # the tower, over the films this step reads, each modality dropped with probability p
            needed = torch.arange(n_items, device=dev) if n_neg is None else torch.cat([films, negatives])
            needed, where = torch.unique(needed, return_inverse=True)
            inp = state["x"][needed]
            if p > 0:
                inp = inp * (torch.rand(len(needed), n_mod, device=dev) >= p).float()[:, col_mod]
            z = net(inp)
            z_films = z[where[films]] if n_neg is None else z[where[:len(films)]]
            pooled = (~target).float()
            n_pool = torch.zeros(len(users), device=dev).index_add_(0, owner, pooled)
            profile = torch.zeros(len(users), z.shape[1], device=dev).index_add_(
                0, owner, z_films * (pooled / n_pool[owner])[:, None])
            t_owner = owner[target]
            if n_neg is None:   # full softmax over the catalogue minus the pooled films
                logits = (profile @ z.T).index_put((owner[~target], films[~target]),
                                                   torch.tensor(-torch.inf, device=dev))
                log_lik = torch.log_softmax(logits, dim=1)[t_owner, films[target]]
            else:               # sampled: the target against n_neg uniform films standing for the catalogue
                positive = (profile[t_owner] * z_films[target]).sum(1)
                rest = torch.logsumexp(profile @ z[where[len(films):]].T, dim=1) + log_share
                log_lik = positive - torch.logaddexp(positive, rest[t_owner])
            n_t = torch.zeros(len(users), device=dev).index_add_(0, t_owner, torch.ones_like(log_lik))
            per_user = torch.zeros(len(users), device=dev).index_add_(0, t_owner, log_lik) / n_t
            return -per_user.mean()

        data = (torch.as_tensor(learners, dtype=torch.int64),)
        return TrainingSetup(network, loss, data, state=state)

    def _vectors(self, network, x, pools):
        """Tower vectors of the catalogue and the pooled user profiles (NumPy float64)."""
        with torch.no_grad():
            z = network(x).double().cpu().numpy()
        return z, np.asarray(_mean_rows(pools) @ z)

    def _validation_scores(self, setup, network, users):
        z, p = self._vectors(network, setup.state["x"], setup.state["pools"])
        return p[users] @ z.T

    def _store(self, setup, frame) -> None:
        self.network_ = setup.network.eval()
        self.item_vectors_, self.user_vectors_ = self._vectors(setup.network, setup.state["x"], setup.state["pools"])

    # ---- scoring -------------------------------------------------------------------------------
    def _score_users(self, users):
        return self.user_vectors_[users] @ self.item_vectors_.T

    def _predict(self, users, items):  # only reached through Recommender internals; predict is overridden
        return np.einsum("nd,nd->n", self.user_vectors_[users], self.item_vectors_[items])

    def film_vectors(self, item_ids) -> np.ndarray:
        """The tower vector :math:`z_i` of any film of ``modalities`` (a catalogue film: the stored one, with its
        ``cf``; any other film: from its content modalities, ``cf`` missing). NaN rows for films without rows."""
        self._check_fitted()
        item_ids = np.atleast_1d(np.asarray(item_ids))
        out = np.full((len(item_ids), self.n_factors), np.nan)
        cat = self.item_positions(item_ids)
        out[cat >= 0] = self.item_vectors_[cat[cat >= 0]]
        cold = (cat < 0) & (self.modalities.positions(item_ids) >= 0)
        if cold.any():
            blocks, flags = self._film_rows(item_ids[cold], None)
            with torch.no_grad():
                out[cold] = self.network_(self._inputs(blocks, flags)).double().cpu().numpy()
        return out

    def predict(self, users, items) -> np.ndarray:
        r""":math:`p_u^\top z_i` of each pair; any film of ``modalities`` can be scored, also one absent from train
        (its ``cf`` missing). ``-inf`` for a film without modality rows; an unknown user raises."""
        users, items, u, _ = self._check_pairs(users, items)
        films, inverse = np.unique(items, return_inverse=True)
        z = self.film_vectors(films)[inverse]
        out = np.einsum("nd,nd->n", self.user_vectors_[u], np.nan_to_num(z))
        out[np.isnan(z).any(1)] = -np.inf
        return out


# --------------------------------------------------------------------------------------------
# late fusion
# --------------------------------------------------------------------------------------------
class LateFusion(_Fusion, Recommender):
    r"""Late fusion: one score per modality, blended by weights learned on a validation slice of train.

    Per modality :math:`m`, the user's unit profile is :math:`\hat p_u^{(m)} = p / \lVert p \rVert` with
    :math:`p = \sum_{i} d_{ui}\, x_i^{(m)}` and :math:`d_{ui} = \max(r_{ui} - \bar r_u, 0)` (notebook 07's
    :func:`~recsys_course.models.text_models.profile_weights`), and the modality's score is
    :math:`s_m(u, i) = \hat p_u^{(m)\top} x_i^{(m)}` (:func:`modality_scores`; the cosine for the unit content rows,
    the factors keep their length). The blend, per availability pattern :math:`a` of the film (the modalities it
    has),

    .. math:: s(u, i) = b_a + \sum_{m \in a} w_{a, m}\, s_m(u, i),

    is a logistic regression (L2, strength ``1 / C``) fitted on a validation slice: each user's last ``val_size``
    training ratings are held out, profiles and ``cf`` come from the rest, and every held-out liked film (rating
    ``>= min_rating``) is a positive, with ``n_negatives`` films drawn uniformly from the catalogue per positive as
    negatives. Each pattern's blend is fitted on those same pairs restricted to its modalities, so a film without
    ``cf`` (a cold film) is ranked by weights learned without ``cf``. With ``refit`` the profiles and ``cf`` are then
    recomputed on all of train (the weights stay). Scores are log-odds, comparable across patterns.

    Parameters
    ----------
    modalities : FilmModalities
    use : tuple of names or None
        The modalities to blend (``None``: all, plus ``cf`` when ``cf_factors``); an ablation leaves one out: a
        re-blend, no training.
    cf_factors : int (0: no ``cf``)
    min_rating : stars
    val_size : int >= 1
        Ratings held out per user for the blend (users with fewer than ``val_size + 1`` hold nothing out).
    n_negatives : int
    C : float > 0
        Inverse L2 strength of the logistic regression.
    refit : bool
    seed : int
        The sampled negatives and the SVDs.

    After ``fit``: ``used_``, ``weights_`` (DataFrame: one row per pattern, a column per modality and
    ``intercept``; 0 where a pattern lacks the modality), ``profiles_`` and ``rows_`` (name → users × d, catalogue
    films × d), ``present_`` (catalogue films × modalities), ``blend_auc_`` (the
    AUC of the blend on the validation pairs it was fitted on), ``cf_dim_``. Fallbacks: like :class:`EarlyFusion`. Cost: a handful of
    ``users × films`` products per modality, a logistic regression per pattern.
    """

    def __init__(self, modalities: FilmModalities | None = None, use=None, cf_factors: int = 32,
                 min_rating: float = 4.0, val_size: int = 10, n_negatives: int = 4, C: float = 1.0,
                 refit: bool = True, seed: int = 0):
        self.modalities = modalities
        self.use = use
        self.cf_factors = cf_factors
        self.min_rating = min_rating
        self.val_size = val_size
        self.n_negatives = n_negatives
        self.C = C
        self.refit = refit
        self.seed = seed

    def _profiles(self, frame: pd.DataFrame, rows: dict) -> dict:
        """Unit profile of every catalogue user in each modality, from ``frame`` (rows: name → catalogue matrix)."""
        from .models.text_models import profile_weights, unit_profiles

        u, i = self.user_positions(frame[USER]), self.item_positions(frame[ITEM])
        d = profile_weights(u, frame[RATING].to_numpy(np.float64), self.n_users)
        weights = sp.csr_matrix((d, (u, i)), shape=(self.n_users, self.n_items))
        return {name: unit_profiles(weights, m).astype(np.float32) for name, m in rows.items()}

    def _catalogue(self, frame: pd.DataFrame):
        """Rows and presence of every modality for the catalogue, ``cf`` fitted on ``frame``."""
        cf = collaborative_factors(frame, self.item_ids_, self.cf_dim_, self.seed) if self.cf_dim_ else None
        blocks, flags = self._film_rows(self.item_ids_, cf)
        return dict(zip(self.used_, blocks)), flags

    def _fit(self, train, users, items):
        from .split import validation_split

        self.used_ = self._check_modalities()
        check_number(self, "min_rating", self.min_rating)
        check_int(self, "val_size", self.val_size)
        check_int(self, "n_negatives", self.n_negatives)
        check_number(self, "C", self.C, positive=True)
        check_bool(self, "refit", self.refit)
        check_int(self, "seed", self.seed, low=0)
        self.cf_dim_ = min(int(self.cf_factors), min(self.n_users, self.n_items) - 1) if "cf" in self.used_ else 0

        fit_part, val_part = validation_split(train, "last", self.val_size, seed=self.seed)
        rows, flags = self._catalogue(fit_part)
        profiles = self._profiles(fit_part, rows)
        pos = val_part[val_part[RATING] >= self.min_rating]
        pu, pi = self.user_positions(pos[USER]), self.item_positions(pos[ITEM])
        if not len(pu):
            raise ValueError(f"LateFusion: the validation slice holds no rating >= {self.min_rating} to learn the "
                             "blend from; lower min_rating or raise val_size")
        rng = np.random.default_rng(self.seed)
        nu = np.repeat(pu, self.n_negatives)
        ni = rng.integers(0, self.n_items, len(nu))
        pair_u, pair_i = np.concatenate([pu, nu]), np.concatenate([pi, ni])
        label = np.concatenate([np.ones(len(pu)), np.zeros(len(nu))])
        # a modality missing for the film scores 0; the film's pattern leaves it out of its blend anyway
        feats = np.stack([np.einsum("nd,nd->n", profiles[n][pair_u], rows[n][pair_i]) for n in self.used_], axis=1)
        self._validation = (feats, label, flags[pair_i])
        if self.refit:
            rows, flags = self._catalogue(train)
            profiles = self._profiles(train, rows)
        self.rows_, self.profiles_, self.present_ = rows, profiles, flags
        self._blend()

    def _blend(self) -> None:
        """Fit one blend per availability pattern on the stored validation pairs; precompute the scoring arrays."""
        from sklearn.metrics import roc_auc_score

        feats, label, pair_flags = self._validation
        patterns = self._patterns(self.present_)
        table = []
        for pattern in patterns:
            cols = np.flatnonzero(pattern)
            w, b = np.zeros(len(self.used_)), 0.0
            if len(cols):
                w[cols], b = fit_blend(feats[:, cols], label, float(self.C))
            table.append([*w, b])
        index = pd.Index(["+".join(n for n, on in zip(self.used_, p) if on) or "(none)" for p in patterns],
                         name="pattern")
        self.weights_ = pd.DataFrame(table, columns=[*self.used_, "intercept"], index=index)
        code = patterns.astype(np.int64) @ (1 << np.arange(len(self.used_)))
        self._pattern_row = np.full(1 << len(self.used_), len(patterns) - 1)   # unseen → the empty pattern
        self._pattern_row[code] = np.arange(len(patterns))
        w, b = self._weights_of(pair_flags)
        self.blend_auc_ = float(roc_auc_score(label, (feats * w).sum(1) + b))
        # s(u, i) = b_i + [p_u^(1); ...; p_u^(M)] · [w_i1 x_i^(1); ...; w_iM x_i^(M)]: one product scores a user
        self.film_weights_, self.film_bias_ = self._weights_of(self.present_)
        self._user_stack = np.hstack([self.profiles_[n] for n in self.used_]).astype(np.float32)
        self._film_stack = self._weighted(self.film_weights_, [self.rows_[n] for n in self.used_])

    @staticmethod
    def _weighted(weights: np.ndarray, blocks: list) -> np.ndarray:
        return np.hstack([b * weights[:, [m]] for m, b in enumerate(blocks)]).astype(np.float32)

    def reblend(self, use) -> LateFusion:
        """A copy that blends only the modalities ``use`` (a subset of ``used_``): the blends are refitted on the
        stored validation pairs, the profiles are kept — an ablation without refitting anything else."""
        self._check_fitted()
        use = [use] if isinstance(use, str) else list(use)
        unknown = [n for n in use if n not in self.used_]
        if unknown:
            raise ValueError(f"LateFusion.reblend: unknown modality {unknown[0]!r}; this model blends {self.used_}")
        if not use:
            raise ValueError(f"LateFusion.reblend: every modality is dropped; keep at least one of {self.used_}")
        keep = [m for m, n in enumerate(self.used_) if n in use]
        twin = copy.copy(self)
        twin.use = tuple(self.used_[m] for m in keep)
        twin.used_ = list(twin.use)
        feats, label, pair_flags = self._validation
        twin._validation = (feats[:, keep], label, pair_flags[:, keep])
        twin.rows_ = {n: self.rows_[n] for n in twin.used_}
        twin.profiles_ = {n: self.profiles_[n] for n in twin.used_}
        twin.present_ = self.present_[:, keep]
        twin._blend()
        return twin

    def _patterns(self, catalogue_flags: np.ndarray) -> np.ndarray:
        """Every availability pattern of the catalogue and of the modalities' films without ``cf`` (cold films), and
        the empty one (a film with no modality: weights 0); the fullest first."""
        _, cold_flags = self._film_rows(self.modalities.item_ids, None)
        both = np.vstack([catalogue_flags, cold_flags, np.zeros((1, len(self.used_)), bool)])
        return np.unique(both, axis=0)[::-1]

    def _weights_of(self, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each film's blend weights ``(n, M)`` and intercept from its availability pattern (a pattern unseen in
        ``fit`` gets the empty one's: weights 0)."""
        table = self.weights_.to_numpy()
        code = flags.astype(np.int64) @ (1 << np.arange(flags.shape[1]))
        j = self._pattern_row[code]
        return table[j, :-1], table[j, -1]

    def _score_users(self, users):
        return (self._user_stack[users] @ self._film_stack.T).astype(np.float64) + self.film_bias_

    def _predict(self, users, items):  # only reached through Recommender internals; predict is overridden
        return np.einsum("nd,nd->n", self._user_stack[users], self._film_stack[items]) + self.film_bias_[items]

    def _pair_rows(self, items: np.ndarray, cat: np.ndarray) -> tuple[list, np.ndarray]:
        """Modality rows and presence of ``items``: the stored rows for catalogue films, the modalities' (no
        ``cf``) for the others."""
        blocks, flags = self._film_rows(items, None)
        known = cat >= 0
        if known.any():
            for m, name in enumerate(self.used_):
                blocks[m][known] = self.rows_[name][cat[known]]
            flags[known] = self.present_[cat[known]]
        return blocks, flags

    def modality_table(self, users, items) -> pd.DataFrame:
        """The per-modality scores :math:`s_m(u, i)` of each pair and the blend (a column per modality, then
        ``blend``): what late fusion adds up. Films absent from train are scored without ``cf``."""
        users, items, u, cat = self._check_pairs(users, items)
        blocks, flags = self._pair_rows(items, cat)
        cols = {n: np.einsum("nd,nd->n", self.profiles_[n][u], b).astype(np.float64)
                for n, b in zip(self.used_, blocks)}
        return pd.DataFrame({USER: users, ITEM: items, **cols, "blend": self.predict(users, items)})

    def predict(self, users, items) -> np.ndarray:
        r"""The blend :math:`b_a + \sum_m w_{a,m} s_m(u, i)` of each pair; any film of ``modalities`` can be scored,
        also one absent from train (without ``cf``). ``-inf`` for a film without rows; an unknown user raises."""
        users, items, u, _ = self._check_pairs(users, items)
        films, inverse = np.unique(items, return_inverse=True)
        fcat = self.item_positions(films)
        blocks, flags = self._pair_rows(films, fcat)
        w, b = self._weights_of(flags)
        stack = self._weighted(w, blocks)
        out = np.einsum("nd,nd->n", self._user_stack[u], stack[inverse]).astype(np.float64) + b[inverse]
        covered = (fcat >= 0) | (self.modalities.positions(films) >= 0)
        out[~covered[inverse]] = -np.inf
        return out

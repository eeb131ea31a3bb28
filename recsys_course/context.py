r"""Context (notebook 13): what the moment of a rating adds to who rated what.

MovieLens' only context is **time**: a rating's ``timestamp`` is when it was *entered* on the website (not when the
film was watched), in UTC seconds, with no time zone of the user — so "hour of day" is the server's hour, not the
user's. Every context column is a small integer code (``-1`` = unknown), built by :func:`add_context`:

========================  ============================================================================
column                    code
========================  ============================================================================
``hour``                  the UTC hour, 0–23: :math:`\lfloor t / 3600 \rfloor \bmod 24`
``daypart``               the UTC hour in four bins: 0 night (0–5 h), 1 morning (6–11), 2 afternoon, 3 evening
``weekday``               0 = Monday … 6 = Sunday: :math:`(\lfloor t / 86400 \rfloor + 3) \bmod 7` (1970-01-01 was
                          a Thursday)
``weekend``               1 on Saturday and Sunday (UTC), else 0
``session_position``      the rating's place in its sitting (a user's ratings less than 30 minutes apart, one
                          session of :func:`recsys_course.stream.sessions`), binned: 1–4, 5–19, 20–49, 50–99, 100+
``film_age``              rating year − release year, binned: ≤ 0, 1, 2–4, 5–9, 10–19, 20–39, 40+ (−1 when the
                          title has no year)
========================  ============================================================================

``film_age`` depends on the film as well as on the moment (:data:`ITEM_CONTEXTS`); the others are properties of
the request alone (:data:`REQUEST_CONTEXTS`).

**Does context shift behaviour?** (:func:`context_shift`) For a context column with values :math:`c`, let
:math:`p_c` be the genre distribution of the ratings made in context :math:`c` and :math:`p` the overall one
(:func:`recsys_course.drift.item_genre_matrix`: a film with n genres gives 1/n to each). The statistic is the
weighted mean Jensen–Shannon divergence

.. math:: D = \sum_c \frac{n_c}{N}\, \mathrm{JS}(p_c \,\|\, p),

:math:`n_c` the genre mass of context :math:`c`. Even a context with no effect shows :math:`D > 0` (each
:math:`p_c` is a finite sample), so the same statistic is recomputed with the context column shuffled (seeded):
across all ratings (``within="all"``: is context tied to genre at all?) or among each user's own ratings
(``within="user"``: does the same user choose differently in another context, or is it only *who* rates when?).

**Context-aware models** follow the course's protocol and add a ``context`` argument:
``predict(users, items, context=None)`` and ``score(users, context=None)``, ``context`` a frame with one row per
pair (``predict``) or per user (``score``) holding the context columns and/or ``timestamp`` (from which the time
columns and ``film_age`` are derived; ``session_position`` cannot be, it must be given). ``context=None``, a
missing column, a NaN and a value never seen in training all mean *unknown*: the model's context-free answer.

* :class:`PreFilter` — Adomavicius & Tuzhilin's contextual pre-filtering: one model per context value, fitted only on
  the training ratings of that value (a value with fewer than ``min_ratings`` ratings falls back to the model of
  all ratings).
* :class:`PostFilter` — post-filtering: the model of all ratings, its answer shifted by the film's shrunk mean
  residual in the request's context.
* :class:`InContext` — carries the requests' contexts so that :func:`recsys_course.evaluate.evaluate`, which calls
  ``predict(users, items)`` and ``recommend(users)`` with no context, scores a context-aware model unchanged.
  The factorisation machine is :class:`recsys_course.models.fm.FM`.

References: Adomavicius & Tuzhilin (2011), *Context-aware recommender systems*, Recommender Systems Handbook;
Panniello, Tuzhilin, Gorgoglione, Palmisano & Pedone (2009), *Experimental comparison of pre- vs. post-filtering
approaches in context-aware recommender systems*, RecSys; Rendle (2010), *Factorization machines*, ICDM.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import check_int, check_number
from .config import ITEM, RATING, TIME, USER, YEAR
from .data import check_ratings
from .drift import item_genre_matrix, js_divergence
from .models.base import Recommender, _as_array, _clone

__all__ = ["CONTEXTS", "REQUEST_CONTEXTS", "ITEM_CONTEXTS", "TIME_CONTEXTS", "check_context", "context_labels",
           "time_context", "session_positions", "film_age_codes", "add_context", "context_codes", "context_shift",
           "context_ratings", "PreFilter", "PostFilter", "InContext"]

#: Every context column, in the order of the table above.
CONTEXTS = ("hour", "daypart", "weekday", "weekend", "session_position", "film_age")
#: The columns computed from a timestamp alone.
TIME_CONTEXTS = ("hour", "daypart", "weekday", "weekend")
#: Properties of the request alone (one value per request, the same for every film).
REQUEST_CONTEXTS = ("hour", "daypart", "weekday", "weekend", "session_position")
#: Properties of the (film, moment) pair.
ITEM_CONTEXTS = ("film_age",)

_SESSION_EDGES = np.array([5, 20, 50, 100])          # positions 1-4 | 5-19 | 20-49 | 50-99 | 100+
_AGE_EDGES = np.array([1, 2, 5, 10, 20, 40])         # years <=0 | 1 | 2-4 | 5-9 | 10-19 | 20-39 | 40+
_LABELS = {
    "hour": [f"{h:02d} h" for h in range(24)],
    "daypart": ["night 0-5", "morning 6-11", "afternoon 12-17", "evening 18-23"],
    "weekday": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "weekend": ["weekday", "weekend"],
    "session_position": ["1-4", "5-19", "20-49", "50-99", "100+"],
    "film_age": ["<=0 y", "1 y", "2-4 y", "5-9 y", "10-19 y", "20-39 y", "40+ y"],
}


def check_context(columns, owner=None) -> tuple:
    """``columns`` (a name or a sequence of names) as a tuple, each one of :data:`CONTEXTS`, no repeats.

    Raises ValueError naming the unknown column and the known ones."""
    cols = (columns,) if isinstance(columns, str) else tuple(columns)
    prefix = f"{owner}: " if isinstance(owner, str) else (f"{type(owner).__name__}: " if owner is not None else "")
    for c in cols:
        if c not in CONTEXTS:
            raise ValueError(f"{prefix}unknown context column {c!r}; the known ones are {list(CONTEXTS)} "
                             "(recsys_course.context.CONTEXTS)")
    if len(set(cols)) != len(cols):
        raise ValueError(f"{prefix}context columns repeat: {list(cols)}; name each once")
    return cols


def context_labels(column: str) -> list[str]:
    """The readable name of each code of ``column`` (code ``j`` is ``context_labels(column)[j]``)."""
    check_context(column)
    return list(_LABELS[column])


def time_context(timestamps, column: str) -> np.ndarray:
    """The code of a time column (``hour``, ``daypart``, ``weekday``, ``weekend``) for each Unix timestamp (UTC);
    ``-1`` where a timestamp is NaN."""
    check_context(column)
    if column not in TIME_CONTEXTS:
        raise ValueError(f"{column!r} is not computed from a timestamp alone; time_context knows {list(TIME_CONTEXTS)}")
    t = np.asarray(timestamps, dtype=float)
    known = np.isfinite(t)
    s = np.where(known, t, 0).astype(np.int64)
    hour = (s // 3600) % 24
    weekday = (s // 86400 + 3) % 7
    code = {"hour": hour, "daypart": hour // 6, "weekday": weekday, "weekend": (weekday >= 5).astype(np.int64)}[column]
    return np.where(known, code, -1).astype(np.int64)


def session_positions(ratings: pd.DataFrame, gap="30min") -> np.ndarray:
    """Each rating's 1-based place in its session (:func:`recsys_course.stream.sessions`, ``gap`` apart), in the
    frame's row order; ties in time keep the frame's order. Pass every earlier rating of the users (e.g. the whole
    data set before splitting): a rating's place depends only on the ratings before it."""
    from .stream import sessions

    label = sessions(ratings, gap).to_numpy()
    order = np.lexsort((np.arange(len(ratings)), ratings[TIME].to_numpy(), label))
    first = np.r_[True, label[order][1:] != label[order][:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    out = np.empty(len(order), dtype=np.int64)
    out[order] = np.arange(len(order)) - start + 1
    return out


def _release_years(movies: pd.DataFrame | None, items) -> np.ndarray:
    """Release year of each film of ``items`` (float, NaN when unknown or ``movies`` is None)."""
    items = np.asarray(items)
    if movies is None:
        return np.full(items.shape, np.nan)
    if ITEM not in movies.columns or YEAR not in movies.columns:
        raise ValueError(f"movies needs the columns '{ITEM}' and '{YEAR}' (as load_dataset() gives them) for "
                         "film_age")
    years = pd.to_numeric(movies.set_index(ITEM)[YEAR], errors="coerce").astype(float)
    return years.reindex(items.ravel()).to_numpy().reshape(items.shape)


def _rating_years(timestamps) -> np.ndarray:
    """The UTC calendar year of each timestamp (seconds) as a float; NaN stays NaN."""
    t = np.asarray(timestamps, dtype=float)
    known = np.isfinite(t)
    years = np.where(known, t, 0).astype(np.int64).astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64)
    return np.where(known, 1970.0 + years, np.nan)


def film_age_codes(timestamps, release_years) -> np.ndarray:
    """``film_age`` codes from rating times (seconds) and release years, broadcast together (e.g. a column of
    request times against a row of films' years); ``-1`` where either is unknown.

    The age is the rating's UTC calendar year minus the release year, binned as in the module's table."""
    year = _rating_years(timestamps)
    release = np.asarray(release_years, dtype=float)
    age = year - release
    known = np.isfinite(age)
    return np.where(known, np.searchsorted(_AGE_EDGES, np.where(known, age, 0), side="right"), -1).astype(np.int64)


def add_context(ratings: pd.DataFrame, movies: pd.DataFrame | None = None, columns=CONTEXTS,
                gap="30min") -> pd.DataFrame:
    """A copy of ``ratings`` with the context columns added (codes, see the module's table; ``-1`` = unknown).

    ``film_age`` needs ``movies`` (the release years). ``session_position`` is computed on ``ratings`` as given,
    so pass every rating of the users up to the moments you need (the whole data set, then split: a rating's
    place depends only on the ratings before it, never on what comes after).

    Raises DataError for a bad ratings frame (NaN timestamps included) and ValueError for an unknown column.
    """
    cols = check_context(columns, "add_context")
    check_ratings(ratings, require_time=True)
    if "film_age" in cols and movies is None:
        raise ValueError("add_context: film_age needs the release years: pass movies=ml.movies, or leave "
                         "'film_age' out of columns")
    out = ratings.copy()
    for c in cols:
        if c in TIME_CONTEXTS:
            out[c] = time_context(ratings[TIME].to_numpy(), c)
        elif c == "session_position":
            out[c] = np.searchsorted(_SESSION_EDGES, session_positions(ratings, gap), side="right")
        else:
            out[c] = film_age_codes(ratings[TIME].to_numpy(), _release_years(movies, ratings[ITEM].to_numpy()))
    return out


def context_codes(frame: pd.DataFrame | None, column: str, n: int) -> np.ndarray:
    """The codes of a *request* column for ``n`` requests from a context frame: the column itself when present,
    else derived from ``timestamp`` (time columns only); ``-1`` (unknown) for NaN, a missing column, or
    ``frame=None``. (``film_age`` depends on the film: the models compute it with :func:`film_age_codes`.)"""
    check_context(column)
    if frame is None:
        return np.full(n, -1, dtype=np.int64)
    if len(frame) != n:
        raise ValueError(f"the context frame has {len(frame)} rows for {n} requests: give one row per pair "
                         "(predict) or per user (score), in the same order")
    if column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        return np.where(np.isfinite(values), values, -1).astype(np.int64)
    if column in TIME_CONTEXTS and TIME in frame.columns:
        return time_context(pd.to_numeric(frame[TIME], errors="coerce").to_numpy(dtype=float), column)
    return np.full(n, -1, dtype=np.int64)


def _request_times(frame: pd.DataFrame | None, n: int) -> np.ndarray:
    """The requests' timestamps as floats (NaN when unknown)."""
    if frame is None or TIME not in frame.columns:
        return np.full(n, np.nan)
    return pd.to_numeric(frame[TIME], errors="coerce").to_numpy(dtype=float)


# ---- does context shift behaviour? ----------------------------------------------------------------------
def context_shift(ratings: pd.DataFrame, movies: pd.DataFrame, columns=CONTEXTS, n_shuffles: int = 30,
                  within: str = "all", seed: int = 0) -> pd.DataFrame:
    r"""Observed weighted-mean JS divergence :math:`D` (bits) of each context column against its shuffled null.

    ``ratings`` must hold the context columns (:func:`add_context`). For each column: ``observed`` :math:`D`, and
    over ``n_shuffles`` shuffles of the column (``within="all"``: across all ratings; ``"user"``: among each
    user's own ratings) the null's ``null_mean``, ``null_p95`` (95th percentile) and ``null_sd``; ``z`` =
    (observed − null mean) / null sd; ``n_values`` = context values present. Ratings with an unknown code (−1)
    are left out. Seeded: the same call gives the same numbers.
    """
    cols = check_context(columns, "context_shift")
    check_int("context_shift", "n_shuffles", n_shuffles)
    if within not in ("all", "user"):
        raise ValueError(f"context_shift: within must be 'all' or 'user', got {within!r}")
    missing = [c for c in cols if c not in ratings.columns]
    if missing:
        raise ValueError(f"context_shift: ratings lack the context column(s) {missing}; add them with "
                         "recsys_course.context.add_context(ratings, movies)")
    G, ids, _ = item_genre_matrix(movies)
    pos = pd.Index(ids).get_indexer(ratings[ITEM])
    if (pos < 0).any():
        raise ValueError("context_shift: some ratings are on films missing from movies; pass the movies table of "
                         "the same data set")
    rows = G[pos]
    users = pd.factorize(ratings[USER])[0]
    rng = np.random.default_rng(seed)
    out = {}
    for c in cols:
        codes = ratings[c].to_numpy().astype(np.int64)
        keep = codes >= 0
        r, u, k = rows[keep], users[keep], codes[keep]
        observed = _weighted_js(r, k)
        null = np.empty(n_shuffles)
        for s in range(n_shuffles):
            if within == "all":
                shuffled = rng.permutation(k)
            else:  # a random order inside each user's block of ratings
                shuffled = np.empty_like(k)       # rows grouped by user, then a random order inside each user
                shuffled[np.argsort(u, kind="stable")] = k[np.argsort(u + rng.random(len(k)), kind="stable")]
            null[s] = _weighted_js(r, shuffled)
        sd = null.std(ddof=1) if n_shuffles > 1 else np.nan
        out[c] = {"observed": observed, "null_mean": null.mean(), "null_p95": np.percentile(null, 95),
                  "null_sd": sd, "z": (observed - null.mean()) / sd if sd and sd > 0 else np.nan,
                  "n_values": float(len(np.unique(k)))}
    return pd.DataFrame(out).T.rename_axis("context")


def _weighted_js(rows: sp.csr_matrix, codes: np.ndarray) -> float:
    r""":math:`\sum_c (n_c/N)\,\mathrm{JS}(p_c\|p)`: ``rows`` the genre shares of each rating, ``codes`` its
    context value (≥ 0)."""
    n_values = int(codes.max()) + 1
    ind = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_values, len(codes)))
    mass_by = (ind @ rows).toarray()
    mass = mass_by.sum(1)
    present = mass > 0
    overall = mass_by.sum(0)
    js = js_divergence(mass_by[present], np.broadcast_to(overall, mass_by[present].shape))
    return float(np.sum(mass[present] / mass.sum() * js))


def context_ratings(ratings: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per value of ``column`` (already in ``ratings``, see :func:`add_context`): ``label``, ``n`` ratings,
    ``share`` of all, ``mean_rating`` and its standard error ``se`` (sd / √n). Unknown codes (−1) left out."""
    check_context(column)
    if column not in ratings.columns:
        raise ValueError(f"ratings lack the context column {column!r}; add it with add_context(ratings, movies)")
    known = ratings[ratings[column] >= 0]
    g = known.groupby(column)[RATING]
    out = pd.DataFrame({"n": g.size(), "mean_rating": g.mean(), "se": g.std(ddof=1) / np.sqrt(g.size())})
    out.insert(0, "label", [context_labels(column)[int(v)] for v in out.index])
    out.insert(2, "share", out["n"] / out["n"].sum())
    return out


# ---- context-aware models ---------------------------------------------------------------------------------
def _need_column(owner, train: pd.DataFrame, column: str) -> None:
    if column not in train.columns:
        raise ValueError(f"{type(owner).__name__}: train has no {column!r} column; add the context first: "
                         f"train = recsys_course.context.add_context(train, movies, columns=[{column!r}]), or merge "
                         "the columns of add_context(ratings, movies) into it")


class _ContextModel(Recommender):
    """Shared by the filters: a base model of all ratings, the context column, ``predict``/``score`` with context."""

    def __init__(self, model, column: str = "weekend"):
        self.model = model
        self.column = column

    def _check(self, train: pd.DataFrame) -> None:
        if not isinstance(self.model, Recommender):
            raise TypeError(f"{type(self).__name__}: model must be a course model (a Recommender), got "
                            f"{type(self.model).__name__}")
        check_context(self.column, self)
        if self.column in ITEM_CONTEXTS:
            raise ValueError(f"{type(self).__name__}: {self.column!r} depends on the film, not only on the request; "
                             f"filter on one of {list(REQUEST_CONTEXTS)}")
        _need_column(self, train, self.column)
        self.predicts_ratings = self.model.predicts_ratings
        self.handles_unknown_users = self.model.handles_unknown_users

    def predict(self, users, items, context: pd.DataFrame | None = None) -> np.ndarray:
        """One score per pair in its request's context (``context``: one row per pair; None = unknown)."""
        self._check_fitted()
        users, items = _as_array(users, "users"), _as_array(items, "items")
        if users.shape != items.shape:
            raise ValueError(f"users and items must pair up: got {users.size} users and {items.size} items")
        codes = context_codes(context, self.column, len(users))
        return self._in_context(users, items, codes)

    def score(self, users, context: pd.DataFrame | None = None) -> np.ndarray:
        """Every film's score for each user in their request's context (``context``: one row per user)."""
        self._check_fitted()
        users = _as_array(users, "users")
        self._known_user_positions(users)
        codes = context_codes(context, self.column, len(users))
        return self._scores_in_context(users, codes)

    def _predict(self, users, items):  # not reached: predict is overridden (no context = every code unknown)
        raise NotImplementedError

    def _score_users(self, users):  # recommend: no context, the model of all ratings
        return self.global_.score(self.user_ids_[users])


class PreFilter(_ContextModel):
    r"""Contextual pre-filtering: for a request in context :math:`c`, the model fitted only on the training
    ratings made in :math:`c`,

    .. math:: \hat r(u, i \mid c) = f_{R_c}(u, i), \qquad R_c = \{(u, i, r, t) \in R : \mathrm{context}(t) = c\}.

    ``model`` is the base model (fitted once per context value, on an unfitted copy) and ``column`` the context
    column (a request column, already in ``train``: :func:`add_context`). **Fallbacks:** a value with fewer than
    ``min_ratings`` training ratings, a value never seen, an unknown context, and every pair whose user or film
    the slice's model never saw, get the model of all ratings (fitted too). ``score`` takes the slice model's
    scores for the films of its catalogue and the model of all ratings' for the others.

    After ``fit``: ``global_`` (the model of all ratings), ``slices_`` (value → fitted model), ``slice_sizes_``
    (value → ratings). Cost: one fit of the base model per value, on its share of the ratings.
    """

    def __init__(self, model, column: str = "weekend", min_ratings: int = 1000):
        super().__init__(model, column)
        self.min_ratings = min_ratings

    def _fit(self, train, users, items):
        self._check(train)
        check_int(self, "min_ratings", self.min_ratings)
        self.global_ = _clone(self.model).fit(train)
        codes = train[self.column].to_numpy()
        self.slice_sizes_ = {int(v): int(n) for v, n in zip(*np.unique(codes[codes >= 0], return_counts=True))}
        self.slices_ = {v: _clone(self.model).fit(train[codes == v]) for v, n in self.slice_sizes_.items()
                        if n >= self.min_ratings}

    def _in_context(self, users, items, codes):
        out = self.global_.predict(users, items)
        for v, m in self.slices_.items():
            rows = np.flatnonzero(codes == v)
            known = rows[(m.user_positions(users[rows]) >= 0) & (m.item_positions(items[rows]) >= 0)]
            if len(known):
                out[known] = m.predict(users[known], items[known])
        return out

    def _scores_in_context(self, users, codes):
        out = self.global_.score(users)
        for v, m in self.slices_.items():
            rows = np.flatnonzero((codes == v) & (m.user_positions(users) >= 0))
            if len(rows):
                cols = self.item_positions(m.item_ids_)
                out[np.ix_(rows, cols)] = m.score(users[rows])
        return out


class PostFilter(_ContextModel):
    r"""Contextual post-filtering: the model of all ratings, then each answer shifted by how the film is rated in
    the request's context beyond what the model expects,

    .. math:: \hat r(u, i \mid c) = f_R(u, i) + \delta_{ic}, \qquad
              \delta_{ic} = \frac{\sum_{(u, i, r) \in R_{ic}} \big(r - f_R(u, i)\big)}{|R_{ic}| + \alpha},

    :math:`R_{ic}` the training ratings of film :math:`i` in context :math:`c` and ``alpha`` :math:`\alpha` a
    shrinkage (a film rated a few times in :math:`c` keeps :math:`\delta \approx 0`). The base ``model`` must
    predict ratings (the residual is in stars). Unknown contexts, values never seen and films unseen in :math:`c`
    get :math:`\delta = 0`; ``predict`` is clipped to the rating range like the base model. After ``fit``:
    ``global_``, ``delta_`` (films × context values, dense: ``item_ids_`` rows). Cost: one base fit and one
    ``predict`` over train.
    """

    def __init__(self, model, column: str = "weekend", alpha: float = 20.0):
        super().__init__(model, column)
        self.alpha = alpha

    def _fit(self, train, users, items):
        self._check(train)
        check_number(self, "alpha", self.alpha)
        if not self.model.predicts_ratings:
            raise ValueError(f"PostFilter shifts predicted ratings by residuals in stars, so its model must predict "
                             f"ratings (BiasBaseline, BiasedMF, ...); {type(self.model).__name__} ranks only")
        self.global_ = _clone(self.model).fit(train)
        codes = train[self.column].to_numpy().astype(np.int64)
        keep = codes >= 0
        resid = train[RATING].to_numpy(float) - self.global_.predict(train[USER], train[ITEM])
        n_values = int(codes.max()) + 1 if keep.any() else 1
        shape = (self.n_items, n_values)
        total = sp.coo_matrix((resid[keep], (items[keep], codes[keep])), shape=shape).toarray()
        count = sp.coo_matrix((np.ones(int(keep.sum())), (items[keep], codes[keep])), shape=shape).toarray()
        self.delta_ = total / (count + self.alpha) if self.alpha > 0 else np.divide(
            total, count, out=np.zeros(shape), where=count > 0)

    def _delta(self, item_pos: np.ndarray, codes: np.ndarray) -> np.ndarray:
        ok = (item_pos >= 0) & (codes >= 0) & (codes < self.delta_.shape[1])
        out = np.zeros(np.broadcast(item_pos, codes).shape)
        ip, cc = np.broadcast_arrays(item_pos, codes)
        out[ok] = self.delta_[ip[ok], cc[ok]]
        return out

    def _in_context(self, users, items, codes):
        raw = self.global_.predict(users, items) + self._delta(self.item_positions(items), codes)
        return np.clip(raw, *self.rating_range_)

    def _scores_in_context(self, users, codes):
        return self.global_.score(users) + self._delta(np.arange(self.n_items)[None, :], codes[:, None])


class InContext(Recommender):
    r"""A context-aware model seen through the requests it will be asked, so that the course's unchanged
    :func:`recsys_course.evaluate.evaluate` can score it.

    ``evaluate`` calls ``predict(users, items)`` and ``recommend(users)`` with no context: the context of a request
    is data *of the request*. This wrapper holds ``requests``, a frame with ``userId``, ``timestamp``, optionally
    ``movieId`` and any context columns (:func:`add_context`), and hands the model each call's context:

    * ``predict(users, items)``: each pair's own request row, matched on (userId, movieId) — on the rating track,
      the test rating's own moment; pairs without a row get an unknown context;
    * ``score(users)`` / ``recommend(users)``: one request per user, the user's **earliest** row of ``requests``
      (on the ranking track, the moment they came back: their first test timestamp); users without one get an
      unknown context.

    ``model`` must take ``context=`` in ``predict`` and ``score`` (:class:`~recsys_course.models.fm.FM`,
    :class:`PreFilter`, :class:`PostFilter`). ``fit(train)`` fits it, unless it is already fitted on this very
    train (same number of ratings, same users and films), so one fit serves the model with and without the
    wrapper. Only a request's moment and context are used, never its rating: building ``requests`` from the test
    frame does not leak (``requests`` may drop the rating column; it is ignored).
    """

    def __init__(self, model, requests: pd.DataFrame):
        self.model = model
        self.requests = requests

    def _fit(self, train, users, items):
        from .retrieval.candidates import fitted_on

        if not isinstance(self.model, Recommender):
            raise TypeError(f"InContext: model must be a course model, got {type(self.model).__name__}")
        req = self.requests
        if not isinstance(req, pd.DataFrame) or USER not in req.columns or TIME not in req.columns:
            raise ValueError(f"InContext: requests must be a DataFrame with at least '{USER}' and '{TIME}' (and "
                             f"'{ITEM}' for one request per pair), e.g. the test frame with add_context's columns")
        if req[TIME].isna().any():
            raise ValueError(f"InContext: requests has {int(req[TIME].isna().sum())} NaN timestamps; a request "
                             "happens at a moment — drop those rows or fill them")
        if not fitted_on(self.model, train):
            self.model.fit(train)
        self.predicts_ratings = self.model.predicts_ratings
        self.handles_unknown_users = self.model.handles_unknown_users
        cols = [c for c in req.columns if c != RATING]
        self.user_requests_ = (req.sort_values([USER, TIME], kind="stable").drop_duplicates(USER)
                               .set_index(USER)[[c for c in cols if c not in (USER, ITEM)]])
        self.pair_requests_ = (req[cols].drop_duplicates([USER, ITEM]).set_index([USER, ITEM]) if ITEM in req.columns
                               else None)

    def predict(self, users, items) -> np.ndarray:
        """The model's ``predict`` with each pair's request context (see the class)."""
        self._check_fitted()
        users, items = _as_array(users, "users"), _as_array(items, "items")
        if self.pair_requests_ is None:
            ctx = self.user_requests_.reindex(users).reset_index(drop=True)
        else:
            ctx = self.pair_requests_.reindex(pd.MultiIndex.from_arrays([users, items])).reset_index(drop=True)
        return self.model.predict(users, items, context=ctx)

    def _score_users(self, users):
        ids = self.user_ids_[users]
        ctx = self.user_requests_.reindex(ids).reset_index(drop=True)
        return self.model.score(ids, context=ctx)

    def _predict(self, users, items):  # not reached: predict is overridden
        raise NotImplementedError

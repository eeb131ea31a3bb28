r"""Strategies for a stream: how a recommender keeps up with the ratings that arrive after it was trained.

Every strategy follows one small protocol, which :func:`recsys_course.stream.prequential` drives:

* ``fit(history) -> self`` — train on the ratings before the warm-up cut;
* ``known(user) -> bool`` — whether it can recommend to ``user`` now;
* ``scores(user) -> ndarray`` — every film's score, columns in ``item_ids_`` order (``positions(movieIds)`` maps
  films to columns, ``-1`` for a film the strategy cannot rank); ``recommend(user, k, exclude)`` — the top k;
* ``learn(user, movie, rating, timestamp)`` — one event; ``learn_user(user, movies, ratings, timestamps)`` — a
  run of one user's events (a session), in order; ``learn_many(events)`` — a frame of events, in row order;
* ``advance(timestamp) -> seconds`` — stream time moves on (only :class:`Periodic` acts: it retrains);
* costs: ``fit_seconds_``, ``retrains_`` (one row per retrain: ``boundary, at, n_ratings, seconds``),
  ``n_learned_`` (events learned), ``n_skipped_`` (events it could not use, e.g. a film with no item vector).

The strategies:

=========================  ===========================================================================================
:class:`Static`            any course model, fitted once at the warm-up cut; never learns (new users stay unknown)
:class:`Periodic`          the same model refitted on everything seen so far each time stream time passes a boundary
                           (``every="7D"``: weekly); between retrains it is static
:class:`OnlineFoldInStrategy` a factor model's user vector re-solved with the item side fixed
                           (:class:`~recsys_course.stream.OnlineFoldIn`: the per-user fold-in, exact)
:class:`OnlineItemKNN`     item–item co-occurrence counts updated at every event; cosine similarity, top-k
                           neighbours, scored from the user's films (equals a batch ItemKNN on the same data)
:class:`SequenceStrategy`  a fitted SASRec / GRU4Rec continues each user's grown sequence (``continue``-style: the
                           network is not retrained, the input grows)
=========================  ===========================================================================================
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..checks import check_int, check_number
from ..config import ITEM, RANK, RATING, RATING_COLUMNS, SCORE, TIME, USER
from ..data import DataError, check_ratings
from ..metrics import top_k
from ..models.base import NotFittedError, UnknownIdError
from ..similarity import prune_top_k

__all__ = ["Strategy", "Static", "Periodic", "OnlineFoldInStrategy", "OnlineItemKNN", "SequenceStrategy",
           "as_seconds"]


def as_seconds(value, name: str = "every") -> int:
    """A duration as whole seconds: an integer number of seconds, a ``pd.Timedelta`` or a string pandas reads
    (``"7D"``, ``"30min"``, ``"12h"``). Raises ValueError for anything else, or a duration ≤ 0."""
    if isinstance(value, (bool, np.bool_)):
        seconds = None
    elif isinstance(value, (int, np.integer)):
        seconds = int(value)
    else:
        try:
            seconds = int(pd.Timedelta(value).total_seconds())
        except (ValueError, TypeError):
            seconds = None
    if seconds is None or seconds <= 0:
        raise ValueError(f"{name} must be a positive duration: seconds (an integer), a pd.Timedelta or a string "
                         f"such as '7D', '30D', '30min'; got {value!r}")
    return seconds


class Strategy:
    """The protocol (see the module docstring) and the bookkeeping every strategy shares."""

    name = "strategy"

    # ---- fitting ----------------------------------------------------------------------------------
    def fit(self, history: pd.DataFrame) -> Strategy:
        """Train on ``history`` (ratings ``userId, movieId, rating, timestamp``, before the warm-up cut);
        forget everything learned before. Returns ``self``. Raises DataError for a bad ratings frame."""
        check_ratings(history, name="history", require_time=True)
        self.n_learned_ = 0
        self.n_skipped_ = 0
        self.retrains_ = []
        start = time.perf_counter()
        self._fit(history)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "fit_seconds_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{self.name} is not fitted yet: call .fit(history) first (history = the ratings "
                                 "before the warm-up cut, from warmup_split)")

    # ---- learning ---------------------------------------------------------------------------------
    def learn(self, user, movie, rating, timestamp) -> None:
        """Learn one event."""
        self.learn_user(user, np.array([movie]), np.array([rating], dtype=np.float64), np.array([timestamp]))

    def learn_user(self, user, movies, ratings, timestamps) -> None:
        """Learn a run of one user's events (arrays of the same length, in time order)."""
        self._check_fitted()
        movies = np.asarray(movies)
        self._learn_user(user, movies, np.asarray(ratings, dtype=np.float64), np.asarray(timestamps))
        self.n_learned_ += len(movies)

    def learn_many(self, events: pd.DataFrame) -> None:
        """Learn a frame of events ``userId, movieId, rating, timestamp`` in row order (runs of one user's
        consecutive rows are learned together, which gives the same state as one at a time)."""
        self._check_fitted()
        missing = [c for c in RATING_COLUMNS if c not in getattr(events, "columns", ())]
        if missing:
            raise DataError(f"events must be a DataFrame with columns {list(RATING_COLUMNS)}; missing {missing}")
        users = events[USER].to_numpy()
        movies, ratings, times = events[ITEM].to_numpy(), events[RATING].to_numpy(np.float64), events[TIME].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0, dtype=int)
        for s, e in zip(starts, np.r_[starts[1:], len(users)]):
            self.learn_user(users[s].item(), movies[s:e], ratings[s:e], times[s:e])

    def advance(self, timestamp) -> float:
        """Stream time is now ``timestamp``: seconds spent retraining because of it (0 except :class:`Periodic`)."""
        return 0.0

    # ---- reading ----------------------------------------------------------------------------------
    def positions(self, movies) -> np.ndarray:
        """Column of each movieId in ``scores``; ``-1`` for a film the strategy cannot rank."""
        self._check_fitted()
        ids = self.item_ids_
        movies = np.asarray(movies)
        at = np.minimum(np.searchsorted(ids, movies), len(ids) - 1)
        return np.where(ids[at] == movies, at, -1)

    def recommend(self, user, k: int = 10, exclude=()) -> pd.DataFrame:
        """The user's top ``k`` films, best first, without the movieIds in ``exclude``: ``movieId, score, rank``
        (ties to the lower column, as :func:`recsys_course.metrics.top_k`)."""
        check_int(self.name, "k", k)
        s = np.array(self.scores(user), dtype=np.float64)
        pos = self.positions(np.asarray(list(exclude)))
        s[pos[pos >= 0]] = -np.inf
        top = top_k(s[None], k)[0]
        top = top[np.isfinite(s[top])]
        return pd.DataFrame({ITEM: self.item_ids_[top], SCORE: s[top], RANK: np.arange(1, len(top) + 1)})

    def _unknown(self, user):
        return UnknownIdError(f"{self.name} cannot recommend to user {user} yet (no rating of theirs it has "
                              "learned); check .known(user) first")

    def __repr__(self) -> str:
        return self.name


def _model_name(model) -> str:
    return type(model).__name__


def _fit_model(strategy, history) -> None:
    """Fit ``strategy.model`` on ``history``, or, with ``strategy.refit`` false, check it is fitted already (a
    model fitted once can then back several strategies, e.g. a sequence model with and without continuation)."""
    if strategy.refit:
        strategy.model.fit(history)
    elif not getattr(strategy.model, "is_fitted", False):
        raise NotFittedError(f"{strategy.name}: refit=False needs a model fitted on history; fit it first or pass "
                             "refit=True")


class Static(Strategy):
    """A model fitted once at the warm-up cut that never learns: the baseline every stream comparison needs.

    ``model``: any course model, fitted on ``history`` in :meth:`fit`; ``refit=False`` uses it as fitted (it must
    have been fitted on that history). Users absent from ``history`` stay unknown to it; films first rated in the
    stream are not in its catalogue (an event on one counts as a miss).
    """

    def __init__(self, model, refit: bool = True):
        self.model = model
        self.refit = refit
        self.name = f"Static({_model_name(model)})"

    def _fit(self, history):
        _fit_model(self, history)
        self.item_ids_ = self.model.item_ids_

    def known(self, user) -> bool:
        self._check_fitted()
        return bool(self.model.user_positions([user])[0] >= 0)

    def scores(self, user) -> np.ndarray:
        self._check_fitted()
        return self.model.score([user])[0]

    def _learn_user(self, user, movies, ratings, times) -> None:
        pass


class Periodic(Static):
    r"""The model refitted, from scratch, on every rating seen so far each time stream time passes a boundary.

    Boundaries are :math:`t_0 + n \cdot \text{every}` (:math:`t_0` = the last timestamp of ``history``,
    :math:`n = 1, 2, \dots`). Before the first event at or after a boundary, :meth:`advance` refits on history
    plus every event learned so far (a re-rating: the later rating wins); a quiet spell that spans several
    boundaries costs one retrain. Between retrains it is a :class:`Static`. ``retrains_`` records each one:
    ``boundary`` (the last boundary passed), ``at`` (the event's timestamp that triggered it), ``n_ratings`` (fitted
    on), ``seconds``.

    ``every``: seconds, a ``pd.Timedelta`` or a string (``"7D"`` weekly, ``"30D"`` monthly).
    """

    def __init__(self, model, every="7D"):
        super().__init__(model)
        self.every = every
        self.name = f"Periodic({_model_name(model)}, {every})"

    def _fit(self, history):
        self._every_s = as_seconds(self.every)
        super()._fit(history)
        self._history = history[list(RATING_COLUMNS)]
        self._seen: list = []
        self._origin = int(history[TIME].max())
        self.next_boundary_ = self._origin + self._every_s

    def _learn_user(self, user, movies, ratings, times) -> None:
        self._seen.append((np.full(len(movies), user), movies, ratings, times))

    def advance(self, timestamp) -> float:
        self._check_fitted()
        if timestamp < self.next_boundary_:
            return 0.0
        start = time.perf_counter()
        seen = [pd.DataFrame(dict(zip(RATING_COLUMNS, (np.concatenate(x) for x in zip(*self._seen)))))] \
            if self._seen else []
        data = pd.concat([self._history, *seen], ignore_index=True)
        data = data.drop_duplicates([USER, ITEM], keep="last")
        self._history, self._seen = data, []
        self.model.fit(data)
        self.item_ids_ = self.model.item_ids_
        seconds = time.perf_counter() - start
        passed = (int(timestamp) - self._origin) // self._every_s
        boundary = self._origin + passed * self._every_s  # the last boundary passed
        self.next_boundary_ = self._origin + (passed + 1) * self._every_s
        self.retrains_.append({"boundary": boundary, "at": int(timestamp), "n_ratings": len(data),
                               "seconds": seconds})
        return seconds


class OnlineFoldInStrategy(Strategy):
    r"""Per-event fold-in: the factor model's item side stays fixed and each user's vector is re-solved from
    their whole grown history (:class:`~recsys_course.stream.OnlineFoldIn`; formulas in
    :mod:`recsys_course.retrieval.foldin`). A new user is known from their first event on a catalogue film.
    Events on films the model was not trained on cannot be used (no item vector): they are skipped and counted
    in ``n_skipped_``.

    ``lazy=True`` (default): a user's events are buffered and folded in together when the user is next served —
    the same state as folding them in one by one (:meth:`OnlineFoldIn.update_many`), because a user's fold-in
    depends on their own history only; it saves the solves nobody reads. ``lazy=False`` folds every event in at
    once (what the service does), so the per-event cost is the real one.
    ``online`` is the :class:`~recsys_course.stream.OnlineFoldIn` (after ``fit``).
    """

    def __init__(self, model=None, lazy: bool = True):
        self.model = model
        self.lazy = lazy
        self.name = f"OnlineFoldIn({_model_name(model) if model is not None else 'ALS'})"

    def _fit(self, history):
        from .online import OnlineFoldIn

        self.online = OnlineFoldIn(self.model).fit(history[list(RATING_COLUMNS)])
        self.model = self.online.model
        self.item_ids_ = self.online.item_ids_
        self._pending: dict = {}

    def known(self, user) -> bool:
        self._check_fitted()
        return user in self._pending or self.online.is_known(user)

    def _learn_user(self, user, movies, ratings, times) -> None:
        ok = self.positions(movies) >= 0
        self.n_skipped_ += int((~ok).sum())
        if not ok.any():
            return
        part = (movies[ok], ratings[ok], times[ok])
        if self.lazy:
            self._pending.setdefault(user, []).append(part)
        else:
            self._apply(user, [part])

    def _apply(self, user, parts) -> None:
        movies, ratings, times = (np.concatenate(x) for x in zip(*parts))
        self.online.update_many(pd.DataFrame({USER: np.full(len(movies), user, dtype=np.int64),
                                              ITEM: movies.astype(np.int64), RATING: ratings,
                                              TIME: times.astype(np.int64)}))

    def scores(self, user) -> np.ndarray:
        self._check_fitted()
        parts = self._pending.pop(user, None)
        if parts:
            self._apply(user, parts)
        if not self.online.is_known(user):
            raise self._unknown(user)
        return self.online.score([user])[0]


class OnlineItemKNN(Strategy):
    r"""Item-based CF whose co-occurrence counts are updated at every event.

    State: :math:`n_i` (users who rated film :math:`i`) and :math:`n_{ij} = |U_i \cap U_j|` (users who rated
    both). When user :math:`u` rates a film :math:`i` for the first time, :math:`n_i \mathrel{+}= 1` and
    :math:`n_{ij} \mathrel{+}= 1` for every film :math:`j` the user rated before (:math:`O(|R(u)|)`; a re-rating
    changes nothing: only *which* films a user rated counts). A film first rated in the stream joins the
    catalogue at once. The similarity is the cosine of the binary user sets, shrunk:

    .. math:: s_{ij} = \frac{n_{ij}}{\sqrt{n_i\,n_j}} \cdot \frac{n_{ij}}{n_{ij} + \lambda}, \qquad
              \mathrm{score}(u, i) = \sum_{j \in R(u)} s_{ji}\,\mathbb 1[i \in N_k(j)]

    with :math:`N_k(j)` the ``k_neighbours`` films most similar to :math:`j` (ties → the lower column;
    ``None``: every film with :math:`n_{ij} > 0`) and :math:`\lambda` = ``shrinkage``. That is exactly
    ``ItemKNN(mode="ranking", similarity="cosine", k=k_neighbours, shrinkage=λ)`` fitted on the same ratings with
    every rating set to 1 (tested; similarities rounded to float32 before the cut, as ItemKNN stores them).

    Memory: the counts are kept sparse — a CSR matrix (built at ``fit`` as :math:`X^\top X`, int32) plus a
    buffer of the increments since, merged into it whenever it holds ``flush_at`` entries. A dense
    :math:`n_{\text{items}}^2` table would be 380 MB in float32 for ml-latest-small's 9.7k films (190 MB even
    as uint16); the sparse one holds only the pairs someone co-rated (about 18 M on all of ml-latest-small,
    ~150 MB at 8 bytes an entry). Scoring a user reads only the rows of their films: :math:`\sum_{j \in R(u)}
    \mathrm{nnz}(\text{row } j)` entries, then a per-row top-k — milliseconds for a typical user, more for one
    with thousands of films.
    """

    def __init__(self, k_neighbours: int | None = 10, shrinkage: float = 0.0, flush_at: int = 2_000_000):
        self.k_neighbours = k_neighbours
        self.shrinkage = shrinkage
        self.flush_at = flush_at
        self.name = f"OnlineItemKNN(k={k_neighbours})"

    def _fit(self, history):
        check_int(self.name, "k_neighbours", self.k_neighbours, allow_none=True)
        check_number(self.name, "shrinkage", self.shrinkage)
        check_int(self.name, "flush_at", self.flush_at)
        ids = np.sort(history[ITEM].unique())
        self._col = {int(m): c for c, m in enumerate(ids)}
        self._ids = list(ids)
        users = history[USER].to_numpy()
        cols = np.searchsorted(ids, history[ITEM].to_numpy())
        order = np.lexsort((history[TIME].to_numpy(), users))  # each user's films in time order
        self._rated: dict = {}
        for u, c in zip(users[order], cols[order]):
            self._rated.setdefault(int(u), []).append(int(c))
        self._sets = {u: set(cs) for u, cs in self._rated.items()}
        uids, urow = np.unique(users, return_inverse=True)
        X = sp.csr_matrix((np.ones(len(cols), dtype=np.int32), (urow, cols)), shape=(len(uids), len(ids)))
        C = (X.T @ X).tocsr()
        self._n = np.asarray(C.diagonal(), dtype=np.int64)
        C.setdiag(0)
        C.eliminate_zeros()
        C.sort_indices()
        self._base = C
        self._buf_r = np.empty(max(self.flush_at, 16), dtype=np.int32)
        self._buf_c = np.empty_like(self._buf_r)
        self._fill = 0
        self.n_flushes_ = 0

    @property
    def item_ids_(self) -> np.ndarray:
        """The catalogue: the history's films (sorted), then the films first rated in the stream, in order."""
        return np.asarray(self._ids)

    def positions(self, movies) -> np.ndarray:
        self._check_fitted()
        return np.fromiter((self._col.get(int(m), -1) for m in np.asarray(movies).ravel()), dtype=np.int64,
                           count=np.asarray(movies).size)

    def known(self, user) -> bool:
        self._check_fitted()
        return bool(self._rated.get(user))

    def _learn_user(self, user, movies, ratings, times) -> None:
        rated = self._rated.setdefault(int(user), [])
        seen = self._sets.setdefault(int(user), set())
        for m in movies:
            c = self._col.get(int(m))
            if c is None:  # a film first rated now joins the catalogue
                c = len(self._ids)
                self._col[int(m)] = c
                self._ids.append(int(m))
                self._n = np.append(self._n, 0)
                self._grow()
            if c in seen:  # a re-rating: the set of raters is unchanged
                continue
            self._n[c] += 1
            if rated:
                self._add_pairs(c, np.asarray(rated, dtype=np.int32))
            rated.append(c)
            seen.add(c)

    def _add_pairs(self, c: int, others: np.ndarray) -> None:
        m = len(others)
        if self._fill + 2 * m > len(self._buf_r):
            self._flush()
            if 2 * m > len(self._buf_r):
                self._buf_r = np.empty(2 * m, dtype=np.int32)
                self._buf_c = np.empty_like(self._buf_r)
        f = self._fill
        self._buf_r[f:f + m] = c
        self._buf_c[f:f + m] = others
        self._buf_r[f + m:f + 2 * m] = others
        self._buf_c[f + m:f + 2 * m] = c
        self._fill = f + 2 * m

    def _grow(self) -> None:
        """One more (empty) row and column in the counts: a film first rated in the stream."""
        base, n = self._base, len(self._ids)
        grown = sp.csr_matrix((base.data, base.indices, np.append(base.indptr, base.indptr[-1])), shape=(n, n))
        grown.has_sorted_indices = True
        self._base = grown

    def _flush(self) -> None:
        """Merge the buffered increments into the CSR counts."""
        n = len(self._ids)
        base = self._base
        if self._fill:
            f = self._fill
            delta = sp.csr_matrix((np.ones(f, dtype=np.int32), (self._buf_r[:f], self._buf_c[:f])), shape=(n, n))
            base = (base + delta).tocsr()
            base.sort_indices()
            self.n_flushes_ += 1
        self._base, self._fill = base, 0

    def counts(self) -> sp.csr_matrix:
        """:math:`n_{ij}` for every pair (CSR, int32, diagonal 0) — merges the buffer first."""
        self._check_fitted()
        self._flush()
        return self._base.copy()

    def item_counts(self) -> np.ndarray:
        """:math:`n_i`, users who rated each film (catalogue order)."""
        self._check_fitted()
        return self._n.copy()

    def _similarity_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        """:math:`s_{jc}` for the films ``rows`` (one row each) against the catalogue, float32, top-k cut."""
        counts = self._base[rows]
        if self._fill:
            where = np.full(len(self._ids), -1, dtype=np.int64)
            where[rows] = np.arange(len(rows))
            br, bc = self._buf_r[:self._fill], self._buf_c[:self._fill]
            mine = where[br] >= 0
            delta = sp.csr_matrix((np.ones(int(mine.sum()), dtype=np.int32), (where[br[mine]], bc[mine])),
                                  shape=counts.shape)
            counts = (counts + delta).tocsr()
        n_ij = counts.data.astype(np.float64)
        r_of = np.repeat(rows, np.diff(counts.indptr))
        s = n_ij / np.sqrt((self._n[r_of] * self._n[counts.indices]).astype(np.float64))
        if self.shrinkage > 0:
            s *= n_ij / (n_ij + self.shrinkage)
        S = sp.csr_matrix((s.astype(np.float32), counts.indices, counts.indptr), shape=counts.shape)
        S.has_sorted_indices = True
        return S if self.k_neighbours is None else prune_top_k(S, int(self.k_neighbours))

    def similarity(self) -> sp.csr_matrix:
        """The whole item × item similarity :math:`s_{ij}` (float32, top-k cut per row, catalogue order)."""
        self._check_fitted()
        self._flush()
        return self._similarity_rows(np.arange(len(self._ids)))

    def scores(self, user) -> np.ndarray:
        self._check_fitted()
        rated = self._rated.get(user)
        if not rated:
            raise self._unknown(user)
        S = self._similarity_rows(np.asarray(rated, dtype=np.int64))
        return np.bincount(S.indices, weights=S.data.astype(np.float64), minlength=len(self._ids))


class SequenceStrategy(Strategy):
    """A fitted next-item model (SASRec, GRU4Rec) continuing each user's sequence as it grows — the
    ``continue_sequence`` update of notebook 06: no retraining; the user's next list is the network's output
    after their last ``max_len`` films (history, then every stream event, in time order; films the model was
    not trained on are dropped from the input and counted in ``n_skipped_``).

    ``refit=True`` fits the model on ``history`` in :meth:`fit`; ``refit=False`` uses it as fitted (it must
    have been fitted on that history). A user is known from their first catalogue film.
    Cost per event: an append; per recommendation: one forward pass over ``max_len`` positions.
    """

    def __init__(self, model, refit: bool = True):
        self.model = model
        self.refit = refit
        self.name = f"Sequence({_model_name(model)})"

    def _fit(self, history):
        _fit_model(self, history)
        self.item_ids_ = self.model.item_ids_
        ordered = history.sort_values([USER, TIME, ITEM], kind="stable")
        known = self.model.item_positions(ordered[ITEM]) >= 0
        self._seq = {int(u): list(part) for u, part in ordered[known].groupby(USER)[ITEM]}

    def known(self, user) -> bool:
        self._check_fitted()
        return bool(self._seq.get(user))

    def _learn_user(self, user, movies, ratings, times) -> None:
        ok = self.model.item_positions(movies) >= 0
        self.n_skipped_ += int((~ok).sum())
        if ok.any():
            self._seq.setdefault(int(user), []).extend(int(m) for m in movies[ok])

    def scores(self, user) -> np.ndarray:
        self._check_fitted()
        seq = self._seq.get(user)
        if not seq:
            raise self._unknown(user)
        return self.model.next_item_scores(seq[-self.model.max_len:])[-1]

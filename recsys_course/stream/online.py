r"""Learning from a stream, one event at a time: the per-user online fold-in of a factor model.

A factor model trained once knows each user through a vector :math:`p_u` (and a bias :math:`b_u`). When that user
rates one more film, nothing about the films has changed much — so keep the item side fixed and re-solve only
this user's own parameters from their whole history, training ratings plus every event since:

.. math:: p_u = (Q_u^\top Q_u + \lambda I)^{-1} Q_u^\top e_u \qquad\text{(ALS; the other models: their own rule)}

— exactly :func:`recsys_course.retrieval.fold_in` of the grown history (its module docstring has every model's
formula). :class:`OnlineFoldIn` keeps that history per user and re-solves at every event, so the very next
``recommend`` for the user reflects the event; the other users are untouched.

* **Cost per event**: gathering the user's history (a sorted insert into two small arrays), one
  :math:`k \times k` solve (ALS: :math:`O(|R(u)|\,k^2 + k^3)`), and the user's new score row
  :math:`O(n_{\text{items}}\,k)`, kept so that ``recommend`` is a lookup and a top-k. ``benchmarks/load.py``
  prints the measured µs per event.
* **What it does not do**: the item factors never move, and a film unknown at training time cannot be rated (it
  has no :math:`q_i`): that needs a retrain — ``fit`` again, on the data so far (periodic retraining).
* **A training user's first event** switches them from the model's trained vector to the fold-in of their training
  ratings plus the event: the two agree closely (a fold-in is one more ALS half-step), not to the last digit.
* **A new user** (not in training) becomes known with their first event: their history is just their events.
* **A film rated twice** (a re-rating): the newer rating replaces the older one in the user's history, as if the
  user had changed their mind — one rating per (user, film), as in the training data.

Deterministic: the same model, training data and events (in the same order) give the same scores, bit for bit.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..checks import check_bool, check_int, is_int, is_number
from ..config import ITEM, RANK, RATING, RATING_COLUMNS, SCORE, TIME, USER
from ..data import DataError, check_ratings
from ..metrics import top_k
from ..models.base import NotFittedError, UnknownIdError, _as_array
from ..retrieval.foldin import _FOLD, _kind  # the one fold-in implementation: the same solve, without pandas

__all__ = ["OnlineFoldIn", "UnknownFilmError"]


class UnknownFilmError(UnknownIdError):
    """An event rates a film the model was not trained on (it has no item vector: it needs a retrain)."""


@dataclass(frozen=True)
class _UserState:
    """One user's history (catalogue columns, sorted, and their ratings), their fold-in score row and their
    number of events. Replaced as a whole at every update, so a reader always sees one consistent state."""

    cols: np.ndarray
    ratings: np.ndarray
    scores: np.ndarray
    n_events: int


class OnlineFoldIn:
    r"""A fitted factor model plus a per-user fold-in at every event: ``update`` then ``recommend``.

    Parameters
    ----------
    model : a model of :data:`recsys_course.retrieval.FOLD_IN_MODELS`, or None
        ``None``: :class:`~recsys_course.models.ALS` with its defaults (the course's default online model).

    Use::

        online = OnlineFoldIn(ALS()).fit(train)          # fits the model, keeps the training ratings
        online.update(user=1, movie=296, rating=5.0, timestamp=1_700_000_000)
        online.recommend([1], k=10)                      # already reflects the event

    A model fitted elsewhere: ``OnlineFoldIn(model).fit(train, refit=False)`` (``train`` must be the frame it was
    fitted on: the training ratings start each user's history).

    After ``fit``: ``model`` (fitted), ``item_ids_`` (the catalogue, the columns of ``score``), ``rating_range_``
    (the training ratings' lowest and highest: the scale an event must respect) and ``n_events_`` (events applied).

    ``update`` / ``update_many`` are thread-safe: one lock per user, so events of different users are folded in
    at the same time and those of one user one after the other; ``score`` / ``recommend`` read each user's state
    without a lock (it is replaced whole), so they never wait for an update.
    """

    def __init__(self, model=None):
        if model is None:
            from ..models.factorization import ALS

            model = ALS()
        self.model = model
        self._lock = threading.Lock()  # guards the per-user locks' table and the event counter
        self._user_locks: dict = {}

    # ---- fitting --------------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, *, refit: bool = True) -> OnlineFoldIn:
        """Fit the model on ``train`` (``refit=False``: keep it as fitted) and start every user's history from
        their training ratings; forget all events. Returns ``self``.

        Raises TypeError for a model without a fold-in (the message lists :data:`FOLD_IN_MODELS`), DataError for a
        bad ratings frame, ValueError when ``refit=False`` and ``train`` is not what the model was fitted on.
        """
        check_bool("OnlineFoldIn.fit", "refit", refit)
        check_ratings(train, name="train")
        if refit:
            _kind_of_unfitted(self.model)
            self.model.fit(train)
        self._kind = _kind(self.model)
        m = self.model
        if not refit and (m.n_train_ != len(train) or not np.array_equal(m.user_ids_, np.sort(train[USER].unique()))
                          or not np.array_equal(m.item_ids_, np.sort(train[ITEM].unique()))):
            raise ValueError(f"OnlineFoldIn.fit(refit=False): train ({len(train)} ratings) is not the frame the "
                             f"{type(m).__name__} was fitted on ({m.n_train_} ratings): pass that frame, or "
                             "refit=True to fit the model on this one")
        rows, cols = m.user_positions(train[USER]), m.item_positions(train[ITEM])
        self._train = sp.csr_matrix((train[RATING].to_numpy(np.float64), (rows, cols)), shape=(m.n_users, m.n_items))
        self._train.sort_indices()
        self._states: dict = {}
        self._user_locks = {}
        self.item_ids_ = m.item_ids_
        self.rating_range_ = m.rating_range_
        self.n_events_ = 0
        return self

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "_states")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError("OnlineFoldIn is not fitted yet: call .fit(train) first")

    @property
    def n_items(self) -> int:
        """Films in the catalogue (columns of ``score``)."""
        self._check_fitted()
        return len(self.item_ids_)

    # ---- events ---------------------------------------------------------------------------------
    def check_event(self, user, movie, rating, timestamp) -> tuple[int, int, float, int]:
        """The event as ``(userId, catalogue column, rating, timestamp)``, or an error saying what is wrong.

        Raises
        ------
        UnknownFilmError
            ``movie`` is not in the catalogue (a film needs a retrain before it can be rated).
        ValueError
            A userId, movieId or timestamp that is not an integer (timestamp: seconds since 1970, ≥ 0), or a
            rating that is not a number within ``rating_range_``.
        """
        self._check_fitted()
        for name, value in (("userId", user), ("movieId", movie), ("timestamp", timestamp)):
            if not is_int(value):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if timestamp < 0:
            raise ValueError(f"timestamp must be seconds since 1970-01-01 (≥ 0), got {timestamp!r}")
        low, high = self.rating_range_
        if not is_number(rating):
            raise ValueError(f"rating must be a number from {low:g} to {high:g}, got {rating!r}")
        if not low <= rating <= high:
            raise ValueError(f"rating {rating:g} is outside the rating scale {low:g} to {high:g} (the training "
                             "ratings' range): send a rating on that scale")
        col = int(self.model.item_positions([movie])[0])
        if col < 0:
            raise UnknownFilmError(f"film {movie} is not in the model's catalogue of {self.n_items} films: an event "
                                   "can only rate a film the model was trained on (a new film needs a retrain)")
        return int(user), col, float(rating), int(timestamp)

    def update(self, user, movie, rating, timestamp) -> None:
        """Fold one event in: the user's history gains (or re-rates) ``movie``, their vector is re-solved with the
        item side fixed, and their next ``recommend`` reflects it. A new user becomes known here.

        Raises as :meth:`check_event` (and then changes nothing).
        """
        user, col, rating, _ = self.check_event(user, movie, rating, timestamp)
        with self._user_lock(user):
            state = self._history(user)
            cols, ratings = _merge(state[0], state[1], np.array([col]), np.array([rating]))
            self._solve(user, cols, ratings, state[2] + 1)
        with self._lock:
            self.n_events_ += 1

    def _user_lock(self, user: int) -> threading.Lock:
        with self._lock:
            return self._user_locks.setdefault(user, threading.Lock())

    def update_many(self, events: pd.DataFrame) -> None:
        """Fold in a frame of events ``userId, movieId, rating, timestamp``, in row order (later rows win a
        re-rating), with one solve per user: the final state equals that of ``update`` row by row.

        All or nothing: every row is checked before any is applied. Raises DataError for missing columns or NaN,
        UnknownFilmError / ValueError as :meth:`check_event` (naming the first bad row).
        """
        self._check_fitted()
        missing = [c for c in RATING_COLUMNS if c not in getattr(events, "columns", ())]
        if missing:
            raise DataError(f"events must be a DataFrame with columns {list(RATING_COLUMNS)}; missing {missing}")
        if len(events) == 0:
            return
        check_ratings(events.drop_duplicates([USER, ITEM], keep="last"), name="events", require_time=True)
        not_int = [c for c in (USER, ITEM, TIME) if not pd.api.types.is_integer_dtype(events[c])]
        if not_int:
            raise DataError(f"events columns {not_int} must hold integers (ids; timestamps in seconds), got dtypes "
                            f"{[str(events[c].dtype) for c in not_int]}")
        users, items = events[USER].to_numpy(), events[ITEM].to_numpy()
        r, t = events[RATING].to_numpy(np.float64), events[TIME].to_numpy()
        cols = self.model.item_positions(items)
        low, high = self.rating_range_
        bad = np.flatnonzero((cols < 0) | (r < low) | (r > high) | (t < 0))
        if len(bad):
            i = bad[0]
            try:
                self.check_event(users[i].item(), items[i].item(), r[i].item(), t[i].item())
            except (ValueError, UnknownIdError) as exc:
                raise type(exc)(f"events row {i} (of {len(events)}; nothing was applied): {exc}") from None
        for user in pd.unique(users):
            mine = np.flatnonzero(users == user)
            last = {}  # column -> the user's last rating of it, in row order
            for c, rating in zip(cols[mine], r[mine]):
                last[int(c)] = float(rating)
            new_cols = np.fromiter(last, dtype=np.int64, count=len(last))
            new_r = np.fromiter(last.values(), dtype=np.float64, count=len(last))
            order = np.argsort(new_cols)
            with self._user_lock(int(user)):
                state = self._history(int(user))
                merged = _merge(state[0], state[1], new_cols[order], new_r[order])
                self._solve(int(user), *merged, state[2] + len(mine))
        with self._lock:
            self.n_events_ += len(events)

    def _history(self, user: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The user's (sorted columns, ratings, number of events): their state if they have events, else their
        training ratings (nothing for a new user)."""
        state = self._states.get(user)
        if state is not None:
            return state.cols, state.ratings, state.n_events
        pos = self.model.user_positions([user])[0]
        if pos < 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0), 0
        lo, hi = self._train.indptr[pos], self._train.indptr[pos + 1]
        return self._train.indices[lo:hi].astype(np.int64), self._train.data[lo:hi], 0

    def _solve(self, user: int, cols: np.ndarray, ratings: np.ndarray, n_events: int) -> None:
        """The fold-in of one user from their whole history (retrieval.fold_in's own solve), stored whole."""
        scores = _FOLD[self._kind](self.model, np.zeros(len(cols), dtype=np.int64), cols, ratings,
                                   (1, self.n_items))[0]
        self._states[user] = _UserState(cols, ratings, scores, n_events)

    # ---- reading --------------------------------------------------------------------------------
    def is_known(self, user) -> bool:
        """Whether ``user`` can be recommended to: a training user, or one with at least one event."""
        self._check_fitted()
        return user in self._states or bool(self.model.user_positions([user])[0] >= 0)

    def history(self, user) -> pd.DataFrame:
        """The user's current history, ``movieId, rating`` (training ratings and events, one per film), sorted by
        movieId — what their fold-in is solved from. Empty for an unknown user."""
        self._check_fitted()
        cols, ratings, _ = self._history(user)
        return pd.DataFrame({ITEM: self.item_ids_[cols], RATING: ratings})

    def n_events(self, user) -> int:
        """Events folded in for ``user`` since ``fit`` (0 for a user without events)."""
        self._check_fitted()
        state = self._states.get(user)
        return 0 if state is None else state.n_events

    def score(self, users) -> np.ndarray:
        """Every film's score for each user, ``(len(users), n_items)`` float64, columns in ``item_ids_`` order:
        the fold-in for users with events, the model's own ``score`` for the other training users.

        Raises UnknownIdError for a user that is neither in training nor in an event (the message says how a new
        user becomes known).
        """
        self._check_fitted()
        users = _as_array(users, "users")
        states = [self._states.get(u) for u in users]
        rest = [u for u, s in zip(users, states) if s is None]
        self._check_known(rest)
        trained = iter(self.model.score(rest) if rest else ())
        return np.array([s.scores if s is not None else next(trained) for s in states], dtype=np.float64).reshape(
            len(users), self.n_items)

    def seen(self, user) -> np.ndarray:
        """Catalogue columns the user has rated (training ratings and events), sorted."""
        self._check_fitted()
        return self._history(user)[0]

    def recommend(self, users, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Each user's top ``k`` films, best first: a DataFrame ``userId, movieId, score, rank`` (rank from 1; ties
        to the smaller movieId; never a ``-inf`` film), like every course model's ``recommend``.

        ``exclude_seen`` leaves out the films in the user's history: training ratings and events.
        Raises UnknownIdError for unknown users (see :meth:`score`), ValueError for a bad ``k``.
        """
        check_int("OnlineFoldIn.recommend", "k", k)
        check_bool("OnlineFoldIn.recommend", "exclude_seen", exclude_seen)
        users = _as_array(users, "users")
        scores = self.score(users)
        if exclude_seen:
            for row, user in enumerate(users):
                scores[row, self.seen(user)] = -np.inf
        top = top_k(scores, k)
        best = np.take_along_axis(scores, top, 1)
        frame = pd.DataFrame({USER: np.repeat(users, top.shape[1]), ITEM: self.item_ids_[top.ravel()],
                              SCORE: best.ravel(), RANK: np.tile(np.arange(1, top.shape[1] + 1), len(users))})
        return frame[np.isfinite(frame[SCORE].to_numpy())].reset_index(drop=True)

    def _check_known(self, users) -> None:
        pos = self.model.user_positions(users) if len(users) else np.zeros(0, dtype=int)
        unknown = [u for u, p in zip(users, pos) if p < 0]
        if unknown:
            raise UnknownIdError(
                f"OnlineFoldIn knows no rating of {len(unknown)} user(s) (e.g. {unknown[:5]}): a new user becomes "
                "known with their first event, update(user, movie, rating, timestamp); until then recommend to them "
                "with a model that handles new users (Popularity), or search by text alone")

    def __repr__(self) -> str:
        return f"OnlineFoldIn({self.model!r})"


def _kind_of_unfitted(model) -> None:
    """TypeError now, not after a long fit, for a model without a fold-in."""
    from ..retrieval import FOLD_IN_MODELS

    if not any(cls.__name__ in FOLD_IN_MODELS for cls in type(model).__mro__):
        raise TypeError(f"OnlineFoldIn: {type(model).__name__} has no closed-form fold-in; the supported models are "
                        f"{list(FOLD_IN_MODELS)}")


def _merge(cols: np.ndarray, ratings: np.ndarray, new_cols: np.ndarray, new_ratings: np.ndarray):
    """Sorted ``cols`` with ``new_cols`` (sorted, distinct) merged in; a column in both takes the new rating.
    New arrays (the old ones may still be read by ``recommend``)."""
    at = np.searchsorted(cols, new_cols)
    present = (at < len(cols)) & (cols[np.minimum(at, len(cols) - 1)] == new_cols) if len(cols) else \
        np.zeros(len(new_cols), dtype=bool)
    ratings = ratings.copy()
    ratings[at[present]] = new_ratings[present]
    add = ~present
    return np.insert(cols, at[add], new_cols[add]), np.insert(ratings, at[add], new_ratings[add])

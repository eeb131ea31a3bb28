"""The one protocol every model of the course follows.

* ``fit(train) -> self`` — ``train`` has columns ``userId, movieId, rating`` (and usually ``timestamp``).
* ``predict(users, items) -> np.ndarray`` — one score per (user, item) pair; a rating for models with
  ``predicts_ratings = True``.
* ``recommend(users, k=10, exclude_seen=True) -> DataFrame[userId, movieId, score, rank]`` — the top k of the
  whole training catalogue for each user, best first, rank starting at 1.

Subclasses implement ``_fit(train, users, items)`` (integer positions into ``user_ids_`` / ``item_ids_``),
``_predict(users, items)`` and ``_score_users(users) -> (len(users), n_items)``; position ``-1`` stands for a
user or item unseen in training.

Unknown users and items (not in the training data):

* ``predict``: every model answers with its documented fallback (the baselines use the global mean and the
  item/user bias they do know). A model with nothing sensible to say raises :class:`UnknownIdError`.
* ``recommend``: models with ``handles_unknown_users = True`` (GlobalMean, BiasBaseline, Popularity) rank
  the catalogue for a new user with what they know; the others raise :class:`UnknownIdError` naming the
  users. Unknown items can never be recommended: the catalogue is what the model was trained on.

Ties in score are broken by catalogue position (ascending movieId), so results are deterministic.
"""
from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..config import ITEM, RANK, RATING, SCORE, USER
from ..data import check_ratings


class NotFittedError(RuntimeError):
    """The model is used before ``fit``."""


class UnknownIdError(KeyError):
    """A user or item the model has never seen, where the model has no sensible fallback."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


def _as_array(values, name: str) -> np.ndarray:
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the k largest scores per row, best first; ties go to the lower position.

    ``-inf`` marks excluded entries; they sort last (callers drop them).
    """
    n = scores.shape[1]
    k = min(k, n)
    if k == n:
        return np.argsort(-scores, axis=1, kind="stable")
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, part, 1).min(1)
    # Rows where the k-th score is tied with scores left outside the partition need a full stable sort.
    ambiguous = (scores >= kth[:, None]).sum(1) > k
    part_scores = np.take_along_axis(scores, part, 1)
    order = np.lexsort((part, -part_scores), axis=1)
    out = np.take_along_axis(part, order, 1)
    if ambiguous.any():
        out[ambiguous] = np.argsort(-scores[ambiguous], axis=1, kind="stable")[:, :k]
    return out


class Recommender:
    """Base class: id bookkeeping, input checks, ``predict`` and batched ``recommend``."""

    predicts_ratings = False
    handles_unknown_users = False

    # ---- the protocol ------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame) -> "Recommender":
        check_ratings(train, name="train")
        self.user_ids_ = np.sort(train[USER].unique())
        self.item_ids_ = np.sort(train[ITEM].unique())
        self._user_index = pd.Index(self.user_ids_)
        self._item_index = pd.Index(self.item_ids_)
        u = self._user_index.get_indexer(train[USER])
        i = self._item_index.get_indexer(train[ITEM])
        self.seen_ = sp.csr_matrix((np.ones(len(train), dtype=np.float32), (u, i)),
                                   shape=(len(self.user_ids_), len(self.item_ids_)))
        self.n_train_ = len(train)
        self.rating_range_ = (float(train[RATING].min()), float(train[RATING].max()))
        self._fit(train, u, i)
        return self

    def predict(self, users, items) -> np.ndarray:
        self._check_fitted()
        users, items = _as_array(users, "users"), _as_array(items, "items")
        if users.shape != items.shape:
            raise ValueError(f"users and items must pair up: got {users.size} users and {items.size} items")
        out = np.asarray(self._predict(self._user_index.get_indexer(users), self._item_index.get_indexer(items)),
                         dtype=np.float64)
        if np.isnan(out).any():
            raise FloatingPointError(f"{type(self).__name__}.predict produced NaN scores; the model diverged or "
                                     "saw bad input — refit with a smaller learning rate or check the data")
        return out

    def recommend(self, users, k: int = 10, exclude_seen: bool = True, batch_size: int = 1024) -> pd.DataFrame:
        self._check_fitted()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        users = _as_array(users, "users")
        pos = self._user_index.get_indexer(users)
        if (pos < 0).any() and not self.handles_unknown_users:
            unknown = users[pos < 0]
            raise UnknownIdError(
                f"{type(self).__name__} cannot rank for {len(unknown)} user(s) absent from its training data "
                f"(e.g. {list(unknown[:5])}). Recommend to them with a model that handles new users (Popularity, "
                "BiasBaseline), or drop them with recsys_course.split.known_only(test, train).")
        frames = []
        for start in range(0, len(users), batch_size):
            p = pos[start:start + batch_size]
            scores = np.array(self._score_users(p), dtype=np.float64, copy=True)
            if np.isnan(scores).any():
                raise FloatingPointError(f"{type(self).__name__} produced NaN scores; refit it")
            if exclude_seen:
                known = p >= 0
                seen = self.seen_[p[known]].toarray().astype(bool)
                block = scores[known]
                block[seen] = -np.inf
                scores[known] = block
            top = top_k(scores, k)
            top_scores = np.take_along_axis(scores, top, 1)
            kk = top.shape[1]
            frame = pd.DataFrame({
                USER: np.repeat(users[start:start + batch_size], kk),
                ITEM: self.item_ids_[top.ravel()],
                SCORE: top_scores.ravel(),
                RANK: np.tile(np.arange(1, kk + 1), len(p)),
            })
            frames.append(frame[np.isfinite(frame[SCORE].to_numpy())])
        return pd.concat(frames, ignore_index=True)

    # ---- for subclasses -----------------------------------------------------------------------
    def _fit(self, train: pd.DataFrame, users: np.ndarray, items: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ---- helpers ------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        self._check_fitted()
        return len(self.user_ids_)

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.item_ids_)

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "seen_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call .fit(train) first")

    def get_params(self) -> dict:
        sig = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in sig.parameters if name != "self" and hasattr(self, name)}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

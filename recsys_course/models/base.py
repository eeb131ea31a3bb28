"""The one protocol every model of the course follows.

* ``fit(train) -> self`` — ``train`` has columns ``userId, movieId, rating`` (and usually ``timestamp``).
* ``predict(users, items) -> np.ndarray`` — one score per (user, item) pair; a rating for models with
  ``predicts_ratings = True``.
* ``recommend(users, k=10, exclude_seen=True) -> DataFrame[userId, movieId, score, rank]`` — the top k of the
  whole training catalogue for each user, best first, rank starting at 1.

* ``score(users) -> ndarray (len(users), n_items)`` — every catalogue item's score, columns in ``item_ids_`` order.
* ``user_positions(ids)`` / ``item_positions(ids)`` — rows / columns of those ids in every score matrix.

Subclasses implement ``_fit(train, users, items)`` (integer positions into ``user_ids_`` / ``item_ids_``),
``_predict(users, items)`` and ``_score_users(users) -> (len(users), n_items)``; position ``-1`` stands for a
user or item unseen in training. Torch models subclass :class:`recsys_course.models.torch_train.TorchRecommender`,
which runs the one early-stopping protocol.

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

from ..checks import check_int
from ..config import ITEM, RANK, RATING, SCORE, USER
from ..data import check_ratings
from ..metrics import mask_seen, top_k

#: Users scored at once by ``score`` (memory: this many × n_items floats).
_SCORE_BATCH = 1024


class NotFittedError(RuntimeError):
    """The model is used before ``fit``."""


class UnknownIdError(KeyError):
    """A user or item the model has never seen, where the model has no sensible fallback."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


def _clone(model: Recommender) -> Recommender:
    """An unfitted twin of ``model``: ``type(model)(**get_params())`` on a copy of the parameters."""
    return type(model)(**dict(model.get_params()))


def _as_array(values, name: str) -> np.ndarray:
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


class Recommender:
    """Base class of every model: id bookkeeping, input checks, ``predict``, ``score`` and batched ``recommend``.

    After ``fit``: ``user_ids_`` and ``item_ids_`` (sorted ids seen in train: the rows and columns of every
    score matrix), ``seen_`` (users × items CSR, 1 where the user rated the item in train), ``n_train_`` and
    ``rating_range_``. A subclass implements three hooks on integer positions (``-1`` = an id unseen in
    training): ``_fit(train, users, items)``, ``_predict(users, items)`` and ``_score_users(users)``.
    """

    predicts_ratings = False
    handles_unknown_users = False

    # ---- the protocol ------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame) -> Recommender:
        """Learn from ``train`` and return the model itself.

        Parameters
        ----------
        train : DataFrame
            Columns ``userId, movieId, rating`` (and ``timestamp`` for models that read time), one row per rating.

        Returns
        -------
        self, fitted, so ``model = ItemKNN().fit(train)`` works.

        Raises
        ------
        DataError
            If ``train`` is not a well-formed ratings frame (missing columns, NaN, duplicates).
        ValueError
            If a hyper-parameter is out of range; the message names the parameter.
        """
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
        """One score per (user, item) pair: a predicted rating if ``predicts_ratings``, else a ranking score.

        Parameters
        ----------
        users, items : array-like of ids, the same length
            ``userId`` and ``movieId`` values (pairs up position by position).

        Returns
        -------
        ndarray of float64, one value per pair. Ids unseen in training get the model's documented fallback.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        UnknownIdError
            For an unknown id, where the model has no sensible fallback (its docstring says which).
        FloatingPointError
            If the model produced NaN (it diverged).
        """
        self._check_fitted()
        users, items = _as_array(users, "users"), _as_array(items, "items")
        if users.shape != items.shape:
            raise ValueError(f"users and items must pair up: got {users.size} users and {items.size} items")
        out = np.asarray(self._predict(self.user_positions(users), self.item_positions(items)), dtype=np.float64)
        if np.isnan(out).any():
            raise FloatingPointError(f"{type(self).__name__}.predict produced NaN scores; the model diverged or "
                                     "saw bad input — refit with a smaller learning rate or check the data")
        return out

    def score(self, users) -> np.ndarray:
        """Every catalogue item's score for each user: the numbers ``recommend`` ranks, before seen items go.

        Parameters
        ----------
        users : array-like of ids

        Returns
        -------
        ndarray of float64, shape ``(len(users), n_items)``; column ``j`` is item ``item_ids_[j]``. Items the
        model cannot score are ``-inf``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        UnknownIdError
            For users absent from training, unless ``handles_unknown_users``.
        FloatingPointError
            If the model produced NaN scores.
        """
        self._check_fitted()
        users = _as_array(users, "users")
        pos = self._known_user_positions(users)
        parts = [self._checked_scores(pos[s:s + _SCORE_BATCH]) for s in range(0, len(pos), _SCORE_BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0, self.n_items))

    def recommend(self, users, k: int = 10, exclude_seen: bool = True, batch_size: int = 1024) -> pd.DataFrame:
        """Each user's top ``k`` items of the training catalogue, best first.

        Parameters
        ----------
        users : array-like of ids
        k : int
            How many items per user (fewer if fewer can be recommended).
        exclude_seen : bool
            Leave out the items the user rated in train (what evaluation and a real product want).
        batch_size : int
            Users scored at once (memory: ``batch_size × n_items`` floats).

        Returns
        -------
        DataFrame with columns ``userId, movieId, score, rank`` (rank 1 = best). Ties in score go to the
        smaller movieId, so the result is deterministic.

        Raises
        ------
        NotFittedError, UnknownIdError (users absent from training, unless ``handles_unknown_users``),
        ValueError (``k`` not a positive integer), FloatingPointError (NaN scores).
        """
        self._check_fitted()
        check_int(None, "k", k)
        check_int(None, "batch_size", batch_size)
        users = _as_array(users, "users")
        pos = self._known_user_positions(users)
        frames = []
        for start in range(0, len(users), batch_size):
            p = pos[start:start + batch_size]
            scores = self._checked_scores(p)
            if exclude_seen:
                known = np.flatnonzero(p >= 0)
                mask_seen(scores, self.seen_[p[known]], rows=known)
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

    # ---- ids and positions -------------------------------------------------------------------
    def user_positions(self, users) -> np.ndarray:
        """Row of each user id in every score matrix (its index in ``user_ids_``); ``-1`` for unknown ids."""
        self._check_fitted()
        return self._user_index.get_indexer(_as_array(users, "users"))

    def item_positions(self, items) -> np.ndarray:
        """Column of each movieId in every score matrix (its index in ``item_ids_``); ``-1`` for unknown ids."""
        self._check_fitted()
        return self._item_index.get_indexer(_as_array(items, "items"))

    # ---- for subclasses -----------------------------------------------------------------------
    def _fit(self, train: pd.DataFrame, users: np.ndarray, items: np.ndarray) -> None:
        """Learn from ``train``; ``users``/``items`` are its rows' positions in ``user_ids_``/``item_ids_``."""
        raise NotImplementedError

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of position pairs (``-1`` = unknown id: the model's fallback)."""
        raise NotImplementedError

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        """Scores ``(len(users), n_items)`` of user positions (``-1`` only if ``handles_unknown_users``)."""
        raise NotImplementedError

    def _pair_values(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The numbers ``score`` gives these known (user, item) position pairs, without scoring whole rows.

        The same as ``_predict``, except where ``predict`` clips to the rating scale and ``score`` does not (the
        films above the top of the scale would tie): BiasBaseline, BiasedMF, ALS and the text models return the
        unclipped values; any other rating model falls back to its clipped ``predict``. A two-stage system
        (:class:`recsys_course.retrieval.TwoStage`) ranks candidates with it, so it ranks like ``score``.
        """
        return self._predict(users, items)

    def _known_user_positions(self, users: np.ndarray) -> np.ndarray:
        pos = self._user_index.get_indexer(users)
        if (pos < 0).any() and not self.handles_unknown_users:
            unknown = users[pos < 0]
            raise UnknownIdError(
                f"{type(self).__name__} cannot rank for {len(unknown)} user(s) absent from its training data "
                f"(e.g. {list(unknown[:5])}). Recommend to them with a model that handles new users (Popularity, "
                "BiasBaseline), or drop them with recsys_course.split.known_only(test, train).")
        return pos

    def _checked_scores(self, pos: np.ndarray) -> np.ndarray:
        scores = np.array(self._score_users(pos), dtype=np.float64, copy=True)
        if scores.shape != (len(pos), self.n_items):
            raise RuntimeError(f"{type(self).__name__}._score_users returned shape {scores.shape}, expected "
                               f"{(len(pos), self.n_items)}")
        if np.isnan(scores).any():
            raise FloatingPointError(f"{type(self).__name__} produced NaN scores; the model diverged or saw bad "
                                     "input — refit it with a smaller learning rate or check the data")
        return scores

    # ---- helpers ------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        """Number of users seen in training (rows of ``score``)."""
        self._check_fitted()
        return len(self.user_ids_)

    @property
    def n_items(self) -> int:
        """Number of items seen in training (columns of ``score``): the catalogue ``recommend`` ranks."""
        self._check_fitted()
        return len(self.item_ids_)

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run."""
        return hasattr(self, "seen_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call .fit(train) first")

    def get_params(self) -> dict:
        """The constructor's arguments as a dict: ``type(model)(**model.get_params())`` builds an unfitted twin."""
        sig = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in sig.parameters if name != "self" and hasattr(self, name)}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

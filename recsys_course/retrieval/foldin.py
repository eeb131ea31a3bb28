r"""Users with no history in the model: fold them in from a few ratings, no retraining.

A new user rates a few films; the model's item side stays fixed and only the user's own parameters are solved
for, in closed form, by the same rule the model used in training — so a user who was in the training data, folded
in from their own training ratings, gets back (nearly) the scores the model gives them.

=============  ==================================================================================================
model          the fold-in of a new user :math:`u` with ratings :math:`r_{ui}, i \in R(u)` (known films only)
=============  ==================================================================================================
ALS            :math:`b_u = \sum_{R(u)} (r_{ui} - \mu - b_i) / (\lambda_u + |R(u)|)` (BiasBaseline's last update),
               then :math:`p_u = (Q_u^\top Q_u + \lambda I)^{-1} Q_u^\top e_u`, :math:`e_{ui} = r_{ui} - \mu - b_u
               - b_i` (one user half-step of ALS, :func:`~recsys_course.models.factorization.als_half_step`);
               score :math:`\mu + b_u + b_i + p_u^\top q_i`
BiasedMF       the same, with BiasedMF's per-rating penalty: :math:`\min_p \sum_{R(u)} (e_{ui} - p^\top q_i)^2 +
               \lambda |R(u)|\,\lVert p\rVert^2`, i.e. :math:`p_u = (Q_u^\top Q_u + \lambda |R(u)| I)^{-1} Q_u^\top e_u`
ImplicitALS    :math:`x_u = (Y^\top Y + Y^\top (C_u - I) Y + \lambda I)^{-1} Y^\top C_u p_u`, the confidence-weighted
               normal equations (:func:`~recsys_course.models.factorization.implicit_als_half_step`, exact solve)
PureSVD        :math:`s_u = r_u V_k V_k^\top` (the user's rating row projected, exactly as PureSVD scores)
EASE           :math:`s_u = x_u B`
TextProfile    the unit profile of the ratings' weights :math:`d_{ui}` (:func:`~recsys_course.models.text_models.
               profile_weights`, :func:`~recsys_course.models.text_models.unit_profiles`); :math:`s_{ui} =
               \cos(p_u, e_i)`
=============  ==================================================================================================

The ALS/BiasedMF fold-in is stagewise, like the models' own fit (biases first, then factors on the residuals),
rather than one joint ridge solve for :math:`[p_u, b_u]`: that is what makes a training user's fold-in *equal*
one more ALS half-step, and :math:`b_u` is a per-user constant that does not change the user's ranking anyway.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..checks import check_int
from ..config import ITEM, RANK, RATING, SCORE, USER
from ..data import check_ratings
from ..metrics import top_k
from ..models.base import NotFittedError, Recommender

__all__ = ["FOLD_IN_MODELS", "FoldIn", "fold_in", "fold_in_recommend"]

#: the models :func:`fold_in` supports
FOLD_IN_MODELS = ("ALS", "BiasedMF", "ImplicitALS", "PureSVD", "EASE", "TextProfile")


class FoldIn(tuple):
    """What :func:`fold_in` returns: unpacks as ``(user_ids, scores)``; also carries ``n_used`` (Series userId ->
    ratings on films the model knows, the ones used) and ``n_dropped`` (Series userId -> ratings on films it does
    not know, left out), so nothing is lost silently."""

    def __new__(cls, user_ids, scores, n_used, n_dropped):
        out = super().__new__(cls, (user_ids, scores))
        out.n_used, out.n_dropped = n_used, n_dropped
        return out

    @property
    def user_ids(self) -> np.ndarray:
        return self[0]

    @property
    def scores(self) -> np.ndarray:
        return self[1]


def _kind(model) -> str:
    from ..models.factorization import ALS, EASE, BiasedMF, ImplicitALS, PureSVD
    from ..models.text_models import TextProfile

    if not isinstance(model, Recommender):
        raise TypeError(f"fold_in needs a fitted course model, got {type(model).__name__}")
    for kind in (ALS, BiasedMF, ImplicitALS, PureSVD, EASE, TextProfile):
        if isinstance(model, kind):
            if not model.is_fitted:
                raise NotFittedError(f"{type(model).__name__} is not fitted yet: call .fit(train) before fold_in")
            return kind.__name__
    raise TypeError(f"fold_in: {type(model).__name__} has no closed-form fold-in here; the supported models are "
                    f"{list(FOLD_IN_MODELS)}. For another model, refit it with the new users' ratings")


def fold_in(model, history: pd.DataFrame) -> FoldIn:
    r"""Scores of new users from their ratings, with the model's item side fixed (no retraining).

    Parameters
    ----------
    model : a fitted model of :data:`FOLD_IN_MODELS` (formulas in the module docstring)
    history : ratings frame ``userId, movieId, rating``
        The new users' ratings. Every userId here is treated as a **new** user, even if the model has a training
        user of that id (only these rows are used). Ratings of films the model does not know are dropped and
        counted in ``n_dropped``.

    Returns
    -------
    :class:`FoldIn` ``(user_ids, scores)``: the sorted userIds of ``history`` and a float64 array
    (n_users, model.n_items), columns in ``model.item_ids_`` order (films EASE does not model: ``-inf``). Also
    ``n_used`` / ``n_dropped`` per user. A user with no known film gets the model's cold fallback: ALS / BiasedMF
    :math:`\mu + b_i` (the biases' order), the others the films' training popularity (number of ratings).

    Raises
    ------
    TypeError
        An unsupported model (the message lists the supported ones).
    NotFittedError, DataError
        The model is not fitted; ``history`` is not a ratings frame (missing columns, NaN, duplicates).
    """
    kind = _kind(model)
    check_ratings(history, name="history")
    users = np.sort(history[USER].unique())
    rows = np.searchsorted(users, history[USER].to_numpy())
    cols = model.item_positions(history[ITEM])
    known = cols >= 0
    n_used = pd.Series(np.bincount(rows[known], minlength=len(users)), index=pd.Index(users, name=USER), name="n_used")
    n_dropped = pd.Series(np.bincount(rows[~known], minlength=len(users)), index=n_used.index, name="n_dropped")
    rows, cols = rows[known], cols[known]
    r = history[RATING].to_numpy(np.float64)[known]
    shape = (len(users), model.n_items)
    scores = _FOLD[kind](model, rows, cols, r, shape)
    cold = n_used.to_numpy() == 0
    if cold.any() and kind not in ("ALS", "BiasedMF"):
        popularity = np.asarray(model.seen_.sum(0), dtype=np.float64).ravel()
        scores[cold] = np.where(np.isfinite(scores[cold]), popularity[None, :], -np.inf)
    return FoldIn(users, scores, n_used, n_dropped)


def _biased(model, rows, cols, r, shape, per_rating: bool) -> np.ndarray:
    from ..models.baselines import BiasBaseline
    from ..models.factorization import als_half_step

    counts = np.bincount(rows, minlength=shape[0])
    b_u = np.bincount(rows, r - model.mu_ - model.item_bias_[cols], shape[0]) / (BiasBaseline().reg_user + counts)
    resid = r - model.mu_ - b_u[rows] - model.item_bias_[cols]
    Q, reg = model.item_factors_, float(model.reg)
    if not per_rating:
        P = als_half_step(sp.csr_matrix((resid, (rows, cols)), shape=shape), Q, reg)
    else:
        P = np.zeros((shape[0], Q.shape[1]))
        for u in np.flatnonzero(counts):
            mine = rows == u
            Qu = Q[cols[mine]]
            P[u] = np.linalg.solve(Qu.T @ Qu + reg * counts[u] * np.eye(Q.shape[1]), Qu.T @ resid[mine])
    return model.mu_ + b_u[:, None] + model.item_bias_[None, :] + P @ Q.T


def _implicit(model, rows, cols, r, shape) -> np.ndarray:
    from ..models.factorization import implicit_als_half_step

    strength = r if model.use_ratings else np.ones_like(r)
    X = implicit_als_half_step(sp.csr_matrix((strength, (rows, cols)), shape=shape), model.item_factors_,
                               float(model.reg), float(model.alpha))
    return X @ model.item_factors_.T


def _puresvd(model, rows, cols, r, shape) -> np.ndarray:
    R = sp.csr_matrix((np.ones_like(r) if model.binary else r, (rows, cols)), shape=shape)
    V = model.item_factors_
    return np.asarray(R @ V) @ V.T


def _ease(model, rows, cols, r, shape) -> np.ndarray:
    X = sp.csr_matrix((np.ones_like(r) if model.binary else r, (rows, cols)), shape=shape)
    out = np.full(shape, -np.inf)
    out[:, model.modelled_] = np.asarray(X[:, model.modelled_].astype(model.B_.dtype) @ model.B_, dtype=np.float64)
    return out


def _text(model, rows, cols, r, shape) -> np.ndarray:
    from ..models.text_models import profile_weights, unit_profiles

    d = profile_weights(rows, r, shape[0], negative=model.negative)
    W = sp.csr_matrix((d, (rows, cols)), shape=shape)
    vectors = model.catalogue_vectors_
    return unit_profiles(W, vectors) @ vectors.T


_FOLD = {
    "ALS": lambda m, rows, cols, r, shape: _biased(m, rows, cols, r, shape, per_rating=False),
    "BiasedMF": lambda m, rows, cols, r, shape: _biased(m, rows, cols, r, shape, per_rating=True),
    "ImplicitALS": _implicit,
    "PureSVD": _puresvd,
    "EASE": _ease,
    "TextProfile": _text,
}


def fold_in_recommend(model, history: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """Each new user's top ``k`` films from :func:`fold_in`, leaving out the films in their ``history``.

    Returns a DataFrame ``userId, movieId, score, rank`` (rank from 1, ties to the smaller movieId; ``-inf`` films
    never listed), like ``recommend``. Raises as :func:`fold_in`, and ValueError for a bad ``k``.
    """
    check_int("fold_in_recommend", "k", k)
    users, scores = fold_in(model, history)
    rows = np.searchsorted(users, history[USER].to_numpy())
    cols = model.item_positions(history[ITEM])
    scores[rows[cols >= 0], cols[cols >= 0]] = -np.inf
    top = top_k(scores, k)
    best = np.take_along_axis(scores, top, 1)
    frame = pd.DataFrame({USER: np.repeat(users, top.shape[1]), ITEM: model.item_ids_[top.ravel()],
                          SCORE: best.ravel(), RANK: np.tile(np.arange(1, top.shape[1] + 1), len(users))})
    return frame[np.isfinite(frame[SCORE].to_numpy())].reset_index(drop=True)

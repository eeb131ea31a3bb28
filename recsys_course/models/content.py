r"""Content-based models (notebook 03): they score a film by what it *is* — genres, tags, title words, decade —
so they can score films nobody has rated yet.

* :class:`CosineProfile` — a user profile is the weighted mean of the feature vectors of the films the user
  rated, weighted by the rating centred on the user's mean; films are ranked by cosine similarity to it.
* :class:`ContentBased` — a per-user linear model :math:`\hat r_{ui} = w_u^\top c_i + b_u` fitted by ridge
  regression in closed form.
* :class:`Hybrid` — a weighted blend of a collaborative-filtering model and a content model; content alone
  where the CF model does not know the film.

Item features come from :func:`recsys_course.features.item_features` (an :class:`ItemFeatures`), and every
content model takes them as its ``features`` argument — a model never loads a data set by itself::

    ml = load_movielens()
    features = item_features(ml.movies, ml.tags)
    model = ContentBased(features).fit(train)

They cover the whole MovieLens catalogue, not only the films of the training ratings: that is what lets a
content model predict a rating for a film that is absent from train (a *cold-start item*). ``recommend``
still ranks only the training catalogue, like every model of the course;
:func:`recsys_course.evaluate.evaluate_cold_items` ranks a set of cold films instead, and
:func:`recsys_course.split.item_cold_start_split` builds a split whose test films never occur in train.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ..checks import check_bool, check_int, check_number
from ..config import RATING
from ..features import ItemFeatures
from .base import Recommender, _as_array, _clone

__all__ = ["CosineProfile", "ContentBased", "Hybrid"]

#: Above this many features, ``ContentBased(n_components=None)`` refuses: a d × d solve per user gets slow.
MAX_DENSE_FEATURES = 1024
#: ``CosineProfile.predict`` scores a dense users × films block (one sparse product) when it has at most
#: 4 × (number of pairs) + this many cells; otherwise it scores the pairs one by one.
BLOCK_SLACK = 1_000_000


@lru_cache(maxsize=8)
def reduce_features(features: ItemFeatures, n_components: int, seed: int = 0):
    r"""Truncated SVD of the feature matrix, :math:`C \approx U_k \Sigma_k V_k^\top`: returns the dense
    reduced rows :math:`C V_k` (films × ``n_components``) and :math:`V_k^\top` (``n_components`` × features).

    The top ``n_components`` singular vectors are computed exactly (ARPACK's Lanczos iteration), not by a randomized
    sketch, so the result does not depend on a seed beyond the last digits (``seed`` only fixes ARPACK's start
    vector, for bit-for-bit repeatability). Cached (the last 8 calls), so a sweep over ``reg`` does not repeat the
    SVD. The arrays are shared: do not modify them.
    """
    from sklearn.decomposition import TruncatedSVD  # imported here: sklearn is slow to import

    matrix = features.matrix
    with threadpool_limits(1, user_api="blas"):  # small dense steps: one thread is faster, and deterministic
        if n_components < min(matrix.shape):
            svd = TruncatedSVD(n_components=n_components, algorithm="arpack", random_state=seed)
            reduced, components = svd.fit_transform(matrix), svd.components_
        else:  # as many components as the matrix has (tiny examples): the full SVD of the dense matrix
            u, sigma, vt = np.linalg.svd(matrix.toarray() if sp.issparse(matrix) else matrix, full_matrices=False)
            reduced, components = u[:, :n_components] * sigma[:n_components], vt[:n_components]
    reduced.setflags(write=False)
    components.setflags(write=False)
    return reduced, components


def _check_features(model, features) -> ItemFeatures:
    if not isinstance(features, ItemFeatures):
        raise TypeError(f"{type(model).__name__}: features must be an ItemFeatures, got {type(features).__name__}; "
                        "build them once with recsys_course.features.item_features(ml.movies, ml.tags) "
                        "(ml = load_movielens()) and pass them: "
                        f"{type(model).__name__}(features=features)")
    return features


def _pairs(model: Recommender, users, items) -> tuple[np.ndarray, np.ndarray]:
    """``predict``'s input checks: the model is fitted and ``users`` / ``items`` are 1-d and pair up."""
    model._check_fitted()
    users, items = _as_array(users, "users"), _as_array(items, "items")
    if users.shape != items.shape:
        raise ValueError(f"users and items must pair up: got {users.size} users and {items.size} items")
    return users, items


def _user_means(ratings: np.ndarray, users: np.ndarray, n_users: int) -> np.ndarray:
    return np.bincount(users, ratings, minlength=n_users) / np.bincount(users, minlength=n_users)


class _ContentModel(Recommender):
    """Shared plumbing: ``predict`` looks films up in the feature catalogue, so films absent from train can
    be scored as long as they have features."""

    def predict(self, users, items) -> np.ndarray:
        """One score per (user, item) pair, like :meth:`Recommender.predict`, except that a film absent from
        train but present in ``features`` is scored from its features (a cold-start film); the fallbacks are
        in the class docstring."""
        users, items = _pairs(self, users, items)
        out = np.asarray(self._predict_rows(self.user_positions(users), self.features_.positions(items)),
                         dtype=np.float64)
        if np.isnan(out).any():
            raise FloatingPointError(f"{type(self).__name__}.predict produced NaN scores; check the features")
        return out

    def _catalogue_rows(self) -> np.ndarray:
        """Feature row of each training-catalogue film (-1 where a film has no features)."""
        return self.features_.positions(self.item_ids_)

    def _user_position(self, user_id) -> int:
        """The row of one known user (``profile`` / ``feature_weights``); KeyError for an unknown one."""
        pos = self.user_positions([user_id])[0]
        if pos < 0:
            raise KeyError(f"user {user_id!r} is not in the training data")
        return int(pos)


class CosineProfile(_ContentModel):
    r"""Rank films by the cosine between a user profile and the film's feature vector.

    With :math:`c_i` the feature row of film :math:`i` scaled to unit length, :math:`\bar r_u` the user's
    mean training rating and :math:`d_{ui} = r_{ui} - \bar r_u`:

    .. math:: p_u = \frac{\sum_{i \in R(u)} d_{ui}\, c_i}{\sum_{i \in R(u)} |d_{ui}|}, \qquad
              s(u, i) = \cos(p_u, c_i) = \frac{p_u^\top c_i}{\lVert p_u\rVert\,\lVert c_i\rVert}.

    Films rated above the user's mean pull the profile towards their features; with ``negative=False`` (the
    default, better on validation in notebook 03) films rated below it are ignored (:math:`d_{ui}` clipped at
    0), with ``negative=True`` they push the profile away.
    The scores are similarities in [-1, 1], not ratings (``predicts_ratings = False``).

    Fallbacks: a film without features, a user with a zero profile (all ratings equal) and a user unknown to
    the model score 0 in ``predict``; ``recommend`` refuses unknown users (:class:`UnknownIdError`).
    Cost: one sparse product users × films × features for the profiles; scoring is a sparse product too.
    """

    def __init__(self, features: ItemFeatures, negative: bool = False):
        self.features = features
        self.negative = negative

    def _fit(self, train, users, items):
        check_bool(self, "negative", self.negative)
        from sklearn.preprocessing import normalize

        self.features_ = _check_features(self, self.features)
        self.unit_features_ = normalize(self.features_.matrix, norm="l2", axis=1).tocsr()
        r = train[RATING].to_numpy(dtype=np.float64)
        self.user_mean_ = _user_means(r, users, self.n_users)
        d = r - self.user_mean_[users]
        if not self.negative:
            d = np.maximum(d, 0.0)
        weights = sp.csr_matrix((d, (users, items)), shape=(self.n_users, self.n_items))
        total = np.asarray(abs(weights).sum(1)).ravel()
        weights = sp.diags(np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)) @ weights
        self.catalogue_features_ = self._rows(self._catalogue_rows())
        self.profiles_ = (weights @ self.catalogue_features_).tocsr()
        self.unit_profiles_ = normalize(self.profiles_, norm="l2", axis=1).tocsr()

    def _rows(self, rows: np.ndarray) -> sp.csr_matrix:
        padded = sp.vstack([self.unit_features_, sp.csr_matrix((1, self.unit_features_.shape[1]))], format="csr")
        return padded[np.where(rows >= 0, rows, padded.shape[0] - 1)]

    def _predict_rows(self, users, rows):
        known = users >= 0
        out = np.zeros(len(users))
        if known.any():
            uu, ui = np.unique(users[known], return_inverse=True)
            ff, fi = np.unique(rows[known], return_inverse=True)
            if len(uu) * len(ff) <= 4 * int(known.sum()) + BLOCK_SLACK:  # e.g. a cross product: one product
                out[known] = (self.unit_profiles_[uu] @ self._rows(ff).T).toarray()[ui, fi]
            else:  # a few scattered pairs: row by row
                p = self.unit_profiles_[users[known]]
                out[known] = np.asarray(p.multiply(self._rows(rows[known])).sum(1)).ravel()
        return out

    def _score_users(self, users):
        return (self.unit_profiles_[users] @ self.catalogue_features_.T).toarray()

    def profile(self, user_id, top: int = 10) -> pd.Series:
        """The largest entries of a user's profile :math:`p_u` (before scaling to unit length)."""
        pos = self._user_position(user_id)
        row = self.profiles_[pos]
        order = np.lexsort((row.indices, -row.data))[:top]
        return pd.Series(row.data[order], index=self.features_.feature_names[row.indices[order]], name=user_id)


class ContentBased(_ContentModel):
    r"""A per-user linear model on item features, fitted by ridge regression in closed form.

    .. math:: \hat r_{ui} = b_u + w_u^\top c_i, \qquad
              w_u = (C_u^\top C_u + \lambda I)^{-1} C_u^\top (r_u - b_u \mathbf 1),

    where :math:`C_u` stacks the feature rows of the films user :math:`u` rated, :math:`r_u` their ratings and
    :math:`\lambda` = ``reg``. **The bias** :math:`b_u` is the user's mean training rating, estimated first
    and never penalised; the ridge then fits the centred ratings, so :math:`\lambda` shrinks the user's
    *taste* :math:`w_u` towards "no preference" (predict the mean), not the mean towards 0.

    **Features.** The sparse TF-IDF matrix (thousands of columns) is first reduced to ``n_components`` dense
    dimensions by a truncated SVD, :math:`c_i \mapsto V_k^\top c_i` (fitted on the features of the whole
    catalogue — item metadata only, no ratings). Every user's system is then only ``n_components`` wide, and
    all users are solved in one batched ``numpy.linalg.solve``. ``n_components=None`` skips the reduction
    (only for small feature sets). Ridge is invariant to rotations, so keeping every component gives the same
    predictions as no reduction.

    Fallbacks: a film absent from train but present in the features is scored normally (the point of a
    content model); a film with no features gets :math:`b_u`; a user unknown to the model gets the global
    mean training rating in ``predict`` and is refused by ``recommend``. Predictions are clipped to the
    training rating range. Cost: :math:`O(\sum_u |R(u)|\,k^2 + |U|\,k^3)` for ``n_components`` = k, plus the SVD.
    Defaults were tuned on a validation slice of the rating-track train split (notebook 03).
    """

    predicts_ratings = True

    def __init__(self, features: ItemFeatures, reg: float = 3.0, n_components: int | None = 64, seed: int = 0):
        self.features = features
        self.reg = reg
        self.n_components = n_components
        self.seed = seed

    def _check_params(self, n_features: int) -> None:
        check_number(self, "reg", self.reg, positive=True)  # the ridge λ
        check_int(self, "seed", self.seed, low=0)  # it fixes the SVD's start vector
        k = check_int(self, "n_components", self.n_components, allow_none=True)
        if k is None and n_features > MAX_DENSE_FEATURES:
            raise ValueError(f"ContentBased: n_components=None keeps all {n_features:,} features, more than "
                             f"{MAX_DENSE_FEATURES:,}: each user's solve would be {n_features}×{n_features}. "
                             "Reduce them, e.g. n_components=64.")
        if k is not None and k > n_features:
            raise ValueError(f"ContentBased: n_components must be at most the number of features "
                             f"({n_features:,}), or None for no reduction; got {k!r}")

    def _fit(self, train, users, items):
        self.features_ = _check_features(self, self.features)
        self._check_params(self.features_.shape[1])
        if self.n_components is None:
            self.components_ = None
            dense = self.features_.matrix.toarray()
        else:
            dense, self.components_ = reduce_features(self.features_, int(self.n_components), self.seed)
        k = dense.shape[1]
        self.item_factors_all_ = np.vstack([dense, np.zeros((1, k))])  # last row: films without features
        rows = self._catalogue_rows()
        self.item_factors_ = self.item_factors_all_[np.where(rows >= 0, rows, -1)]

        r = train[RATING].to_numpy(dtype=np.float64)
        self.mu_ = float(r.mean())
        self.user_bias_ = _user_means(r, users, self.n_users)
        y = r - self.user_bias_[users]
        self.user_weights_ = ridge_per_user(self.item_factors_, users, items, y, self.reg, self.n_users)

    def _predict_rows(self, users, rows):
        known = users >= 0
        out = np.full(len(users), self.mu_)
        if known.any():
            u, f = users[known], rows[known]
            feats = self.item_factors_all_[np.where(f >= 0, f, -1)]
            out[known] = self.user_bias_[u] + np.einsum("nk,nk->n", self.user_weights_[u], feats)
        return np.clip(out, *self.rating_range_)

    def _score_users(self, users):
        return self.user_bias_[users][:, None] + self.user_weights_[users] @ self.item_factors_.T

    def feature_weights(self, user_id, top: int = 10) -> pd.Series:
        r"""The user's weights in the original feature space, :math:`V_k w_u` (or :math:`w_u` itself without
        a reduction), largest magnitude first: which genres, tags, words and decades move their predictions."""
        pos = self._user_position(user_id)
        w = self.user_weights_[pos]
        full = w if self.components_ is None else self.components_.T @ w
        order = np.lexsort((np.arange(len(full)), -np.abs(full)))[:top]
        return pd.Series(full[order], index=self.features_.feature_names[order], name=user_id)


def ridge_per_user(item_factors: np.ndarray, users: np.ndarray, items: np.ndarray, y: np.ndarray,
                   reg: float, n_users: int) -> np.ndarray:
    r"""Solve every user's ridge regression at once: row u of the result is
    :math:`w_u = (C_u^\top C_u + \lambda I)^{-1} C_u^\top y_u` (:math:`\lambda` = ``reg``), with :math:`C_u` = ``item_factors[items]`` of u's
    ratings and :math:`y_u` their targets. A user without ratings gets :math:`w_u = 0`.

    The Gram matrices :math:`C_u^\top C_u` are summed per user (one BLAS product each), then all
    :math:`|U|` systems of size k × k go to one batched ``numpy.linalg.solve``.
    """
    k = item_factors.shape[1]
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    gram = np.empty((n_users, k, k))
    rhs = np.empty((n_users, k))
    # Thousands of tiny products: a multi-threaded BLAS only adds overhead here (20x slower on a busy 2-core box).
    with threadpool_limits(1, user_api="blas"):
        for u in range(n_users):
            sel = order[bounds[u]:bounds[u + 1]]
            c = item_factors[items[sel]]
            gram[u] = c.T @ c
            rhs[u] = c.T @ y[sel]
        gram += reg * np.eye(k)
        return np.linalg.solve(gram, rhs[..., None])[..., 0]


def _default_cf() -> Recommender:
    from .neighbors import ItemKNN  # imported here: neighbors and content import each other's package

    return ItemKNN()


class Hybrid(Recommender):
    r"""A weighted blend of a collaborative-filtering model and a content model:

    .. math:: \hat r_{ui} = \begin{cases}
              \alpha\, \hat r^{\mathrm{CF}}_{ui} + (1 - \alpha)\, \hat r^{\mathrm{content}}_{ui}
              & \text{if the CF model knows user } u \text{ and film } i,\\
              \hat r^{\mathrm{content}}_{ui} & \text{otherwise (e.g. a film nobody rated in train).} \end{cases}

    ``cf`` and ``content`` are any two models of the course (``cf`` defaults to ``ItemKNN()``; ``content`` has
    no default, since a content model needs item features: pass e.g.
    ``ContentBased(item_features(ml.movies, ml.tags))``); they serve as templates: ``fit`` fits fresh copies (``cf_``, ``content_``) on the same training data, so
    both share the catalogue and ``recommend`` blends their score matrices. ``weight`` is :math:`\alpha`:
    1 = CF only, 0 = content only; the default was tuned on a validation slice of the rating-track train split
    (notebook 03). Blending only makes sense when the two scores share a scale — both rating predictors
    (then the hybrid predicts ratings too) or both similarities.

    Unknown users: ``predict`` answers with the content model's fallback; ``recommend`` refuses them.
    Cost: the sum of both models'.
    """

    def __init__(self, cf: Recommender | None = None, content: Recommender | None = None, weight: float = 0.7):
        self.cf = cf
        self.content = content
        self.weight = weight

    @property
    def predicts_ratings(self) -> bool:
        """True when both parts predict ratings (the blend is then a rating too)."""
        parts = (getattr(self, "cf_", None), getattr(self, "content_", None))
        if parts[0] is None:
            parts = (self.cf or _default_cf(), self.content or ContentBased)  # the class: no features needed
        return all(p.predicts_ratings for p in parts)

    def _fit(self, train, users, items):
        w = check_number(self, "weight", self.weight)
        if w > 1:
            raise ValueError(f"Hybrid: weight must be a finite number >= 0 and <= 1 (1 = CF only, 0 = content "
                             f"only), got {w!r}")
        for name in ("cf", "content"):
            part = getattr(self, name)
            if part is not None and not isinstance(part, Recommender):
                raise TypeError(f"Hybrid: {name} must be a model of the course (a Recommender), got "
                                f"{type(part).__name__}")
        if self.content is None:
            raise ValueError("Hybrid needs a content model, built on item features: Hybrid(content=ContentBased("
                             "item_features(ml.movies, ml.tags))) with ml = load_movielens()")
        self.cf_ = _clone(self.cf) if self.cf is not None else _default_cf()
        self.content_ = _clone(self.content)
        self.cf_.fit(train)
        self.content_.fit(train)

    def predict(self, users, items) -> np.ndarray:
        """The blend of both models' predictions where the CF model knows the user and the film, the content
        model's prediction elsewhere (a cold-start film, an unknown user)."""
        users, items = _pairs(self, users, items)
        out = self.content_.predict(users, items)
        both = (self.cf_.user_positions(users) >= 0) & (self.cf_.item_positions(items) >= 0)
        if both.any() and self.weight > 0:
            out[both] = self.weight * self.cf_.predict(users[both], items[both]) + (1 - self.weight) * out[both]
        return out

    def _score_users(self, users):
        # The components do many small NumPy/BLAS steps per user; on a busy machine a multi-threaded BLAS makes
        # them several times slower (measured 2.5x for rating-mode ItemKNN on 2 cores), so use one thread.
        with threadpool_limits(1, user_api="blas"):
            return self._blend_scores(users)

    def _blend_scores(self, users):
        if self.weight == 1:
            return np.asarray(self.cf_._score_users(users), dtype=np.float64)
        content = np.asarray(self.content_._score_users(users), dtype=np.float64)
        if self.weight == 0:
            return content
        return self.weight * np.asarray(self.cf_._score_users(users), dtype=np.float64) + (1 - self.weight) * content

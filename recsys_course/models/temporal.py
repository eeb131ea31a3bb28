r"""Time-aware models (notebook 09): interests drift, so recent behaviour should count more.

* :class:`TimeAwareBias` — the baseline predictor of timeSVD (Koren 2009), simplified:

  .. math:: \hat r_{ui}(t) = \mu + b_u + \alpha_u\,\mathrm{dev}_u(t) + b_i + b_{i,\mathrm{Bin}(t)}, \qquad
            \mathrm{dev}_u(t) = \mathrm{sign}(t - \bar t_u)\,|t - \bar t_u|^{\beta}

  with t in days, :math:`\bar t_u` the mean date of u's training ratings, β = 0.4 (Koren's value), and
  ``n_bins`` equal-width time bins over the training period for the items' drifting popularity. Fitted by
  alternating closed-form ridge updates, as :class:`~recsys_course.models.BiasBaseline`.
* :class:`DecayedItemKNN` — ranking-mode ItemKNN whose user side forgets: film j contributes to the score of
  i with weight :math:`w_{uj} = 2^{-(t_u^{\max} - t_{uj})/h}` (half-life h in days, age counted from the
  user's latest training rating), :math:`s_{ui} = \sum_{j \in R(u)} w_{uj}\,s_{ij}` over the k nearest
  neighbours of each j (Ding & Li 2005 weight a user's past ratings the same way).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..checks import check_int, check_number
from ..config import RATING, TIME
from ..drift import DAY, rating_decay_weights
from .base import Recommender
from .neighbors import ItemKNN

__all__ = ["TimeAwareBias", "DecayedItemKNN"]


def _need_time(model, train: pd.DataFrame) -> None:
    if TIME not in train.columns:
        raise ValueError(f"{type(model).__name__} models time, so train needs a '{TIME}' column (seconds since "
                         "1970, as in MovieLens)")


class TimeAwareBias(Recommender):
    r"""Time-dependent user and item biases (see the module docstring for the formula).

    ``predict(users, items)`` predicts at each user's *latest training time* — the best guess of "now" when the
    request time is unknown (that is how :func:`~recsys_course.evaluate.evaluate` calls it);
    :meth:`predict_at` takes the times explicitly (the time of a request is known when it is served, so using
    the test timestamps is not a leak). A time after the training period falls in the last bin. Unknown users
    or items get 0 for their terms. Predictions are clipped to the training rating range.
    """

    predicts_ratings = True
    handles_unknown_users = True

    def __init__(self, n_bins: int = 30, beta: float = 0.4, reg_user: float = 10.0, reg_item: float = 3.0,
                 reg_bin: float = 25.0, reg_alpha: float = 50.0, n_iters: int = 10):
        self.n_bins = n_bins
        self.beta = beta
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.reg_bin = reg_bin
        self.reg_alpha = reg_alpha
        self.n_iters = n_iters

    def _check_params(self) -> None:
        check_int(self, "n_bins", self.n_bins)
        check_int(self, "n_iters", self.n_iters)
        for name in ["beta", "reg_user", "reg_item", "reg_bin", "reg_alpha"]:
            check_number(self, name, getattr(self, name))

    # ---- time features ---------------------------------------------------------------------------
    def _dev(self, users: np.ndarray, t: np.ndarray) -> np.ndarray:
        known = users >= 0
        mean_day = np.where(known, self.user_mean_day_[np.maximum(users, 0)], 0.0)
        diff = t / DAY - mean_day
        return np.where(known, np.sign(diff) * np.abs(diff) ** self.beta, 0.0)

    def _bin(self, t: np.ndarray) -> np.ndarray:
        frac = (t - self.t_min_) / max(self.t_max_ - self.t_min_, 1.0)
        return np.clip((frac * self.n_bins).astype(int), 0, self.n_bins - 1)

    def _fit(self, train, users, items):
        self._check_params()
        _need_time(self, train)
        t = train[TIME].to_numpy(dtype=np.float64)
        r = train[RATING].to_numpy(dtype=np.float64)
        self.t_min_, self.t_max_ = float(t.min()), float(t.max())
        self.user_mean_day_ = np.bincount(users, t / DAY, self.n_users) / np.bincount(users, minlength=self.n_users)
        self.user_last_time_ = np.full(self.n_users, -np.inf)
        np.maximum.at(self.user_last_time_, users, t)
        dev = self._dev(users, t)
        bins = self._bin(t)
        cell = items * self.n_bins + bins
        n_u, n_i = np.bincount(users, minlength=self.n_users), np.bincount(items, minlength=self.n_items)
        n_cell = np.bincount(cell, minlength=self.n_items * self.n_bins)
        dev2 = np.bincount(users, dev ** 2, self.n_users)
        self.mu_ = float(r.mean())
        b_u, b_i = np.zeros(self.n_users), np.zeros(self.n_items)
        a_u, b_ib = np.zeros(self.n_users), np.zeros(self.n_items * self.n_bins)
        for _ in range(self.n_iters):
            base = r - self.mu_
            b_i = np.bincount(items, base - b_u[users] - a_u[users] * dev - b_ib[cell], self.n_items) \
                / (self.reg_item + n_i)
            b_ib = np.bincount(cell, base - b_u[users] - a_u[users] * dev - b_i[items], self.n_items * self.n_bins) \
                / (self.reg_bin + n_cell)
            b_u = np.bincount(users, base - b_i[items] - b_ib[cell] - a_u[users] * dev, self.n_users) \
                / (self.reg_user + n_u)
            a_u = np.bincount(users, dev * (base - b_i[items] - b_ib[cell] - b_u[users]), self.n_users) \
                / (self.reg_alpha + dev2)
        self.user_bias_, self.item_bias_, self.user_alpha_ = b_u, b_i, a_u
        self.item_bin_bias_ = b_ib.reshape(self.n_items, self.n_bins)
        self.train_rmse_ = float(np.sqrt(np.mean(
            (r - self.mu_ - b_u[users] - a_u[users] * dev - b_i[items] - b_ib[cell]) ** 2)))

    def _raw(self, users: np.ndarray, items: np.ndarray, t: np.ndarray) -> np.ndarray:
        ku, ki = users >= 0, items >= 0
        u, i = np.maximum(users, 0), np.maximum(items, 0)
        bins = self._bin(t)
        return (self.mu_ + np.where(ku, self.user_bias_[u] + self.user_alpha_[u] * self._dev(users, t), 0.0)
                + np.where(ki, self.item_bias_[i] + self.item_bin_bias_[i, bins], 0.0))

    def _now(self, users: np.ndarray) -> np.ndarray:
        return np.where(users >= 0, self.user_last_time_[np.maximum(users, 0)], self.t_max_)

    def _predict(self, users, items):
        return np.clip(self._raw(users, items, self._now(users)), *self.rating_range_)

    def predict_at(self, users, items, times) -> np.ndarray:
        """Predicted ratings at the given times (seconds since 1970), one per (user, item) pair."""
        self._check_fitted()
        users, items = np.asarray(users), np.asarray(items)
        times = np.asarray(times, dtype=np.float64)
        if not (users.shape == items.shape == times.shape):
            raise ValueError(f"users, items and times must pair up: got {users.size}, {items.size}, {times.size}")
        if not np.isfinite(times).all():
            raise ValueError("times must be finite numbers of seconds since 1970")
        raw = self._raw(self.user_positions(users), self.item_positions(items), times)
        return np.clip(raw, *self.rating_range_)

    def _score_users(self, users):
        t = self._now(users)
        bins = self._bin(t)
        user_part = np.where(users >= 0, self.user_bias_[np.maximum(users, 0)]
                             + self.user_alpha_[np.maximum(users, 0)] * self._dev(users, t), 0.0)
        return self.mu_ + user_part[:, None] + self.item_bias_[None, :] + self.item_bin_bias_[:, bins].T


class DecayedItemKNN(ItemKNN):
    r"""Ranking-mode ItemKNN with time-decayed user histories (formula in the module docstring).

    ``half_life_days=None`` switches the decay off and gives exactly ``ItemKNN(mode="ranking")``.
    """

    def __init__(self, half_life_days: float | None = 365.0, k: int | None = None, similarity: str | None = None,
                 shrinkage: float | None = None):
        super().__init__(k=k, similarity=similarity, shrinkage=shrinkage, mode="ranking")
        self.half_life_days = half_life_days

    def _fit(self, train, users, items):
        h = check_number(self, "half_life_days", self.half_life_days, positive=True, allow_none=True)
        super()._fit(train, users, items)
        if h is None:
            self.weighted_seen_ = self.seen_
            return
        _need_time(self, train)
        w = rating_decay_weights(train, half_life_days=h, reference="user")  # 1 for each user's newest rating
        self.weighted_seen_ = sp.csr_matrix((w, (users, items)), shape=(self.n_users, self.n_items))

    def _ranking_history(self):
        return self.weighted_seen_  # the votes of ItemKNN's ranking score, each weighted by its age

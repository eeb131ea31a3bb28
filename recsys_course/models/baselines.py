r"""The three baselines every later model must beat.

* :class:`GlobalMean` — :math:`\hat r_{ui} = \mu`. The floor for rating error; as a ranker it has no
  preference at all (every item ties, so the order is just the catalogue order).
* :class:`BiasBaseline` — :math:`\hat r_{ui} = \mu + b_u + b_i` with regularised biases.
* :class:`Popularity` — score = number of training ratings of the item, the same for every user.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..checks import check_int, check_number
from ..config import RATING
from .base import Recommender

__all__ = ["GlobalMean", "BiasBaseline", "Popularity"]


def _bias(biases: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``biases[pos]``, 0 where ``pos == -1`` (an id unseen in training)."""
    return np.where(pos >= 0, biases[np.maximum(pos, 0)], 0.0)


class GlobalMean(Recommender):
    r""":math:`\hat r_{ui} = \mu`, the mean training rating, for every user and item (known or not)."""

    predicts_ratings = True
    handles_unknown_users = True

    def _fit(self, train, users, items):
        self.mu_ = float(train[RATING].mean())

    def _predict(self, users, items):
        return np.full(len(users), self.mu_)

    def _score_users(self, users):
        return np.full((len(users), self.n_items), self.mu_)


class BiasBaseline(Recommender):
    r"""User and item biases around the global mean, :math:`\hat r_{ui} = \mu + b_u + b_i`.

    Fitted by alternating closed-form ridge updates of the objective
    :math:`\sum_{(u,i)} (r_{ui} - \mu - b_u - b_i)^2 + \lambda_u \sum_u b_u^2 + \lambda_i \sum_i b_i^2`:

    .. math:: b_i = \frac{\sum_{u \in R(i)} (r_{ui} - \mu - b_u)}{\lambda_i + |R(i)|}, \qquad
              b_u = \frac{\sum_{i \in R(u)} (r_{ui} - \mu - b_i)}{\lambda_u + |R(u)|}

    The regularisation shrinks the bias of a movie with few ratings towards 0 (towards the global mean).
    Defaults were tuned on a validation slice of the rating-track train split (notebook 01).
    Unknown users or items get bias 0. Predictions are clipped to the training rating range.
    """

    predicts_ratings = True
    handles_unknown_users = True

    def __init__(self, reg_user: float = 10.0, reg_item: float = 3.0, n_iters: int = 10):
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.n_iters = n_iters

    def _fit(self, train, users, items):
        check_number(self, "reg_user", self.reg_user)
        check_number(self, "reg_item", self.reg_item)
        check_int(self, "n_iters", self.n_iters)
        r = train[RATING].to_numpy(dtype=np.float64)
        self.mu_ = float(r.mean())
        n_u = np.bincount(users, minlength=self.n_users)
        n_i = np.bincount(items, minlength=self.n_items)
        b_u = np.zeros(self.n_users)
        b_i = np.zeros(self.n_items)
        for _ in range(self.n_iters):
            b_i = np.bincount(items, r - self.mu_ - b_u[users], minlength=self.n_items) / (self.reg_item + n_i)
            b_u = np.bincount(users, r - self.mu_ - b_i[items], minlength=self.n_users) / (self.reg_user + n_u)
        self.user_bias_, self.item_bias_ = b_u, b_i

    def _raw(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        r""":math:`\mu + b_u + b_i` of position pairs, unclipped (bias 0 for position -1)."""
        return self.mu_ + _bias(self.user_bias_, users) + _bias(self.item_bias_, items)

    def _predict(self, users, items):
        return np.clip(self._raw(users, items), *self.rating_range_)

    def _pair_values(self, users, items):
        return self._raw(users, items)

    def _score_users(self, users):
        return self.mu_ + _bias(self.user_bias_, users)[:, None] + self.item_bias_[None, :]

    def biases(self) -> pd.DataFrame:
        """The item biases as a frame (movieId, bias), most positive first."""
        return (pd.DataFrame({"movieId": self.item_ids_, "bias": self.item_bias_})
                .sort_values("bias", ascending=False, kind="stable").reset_index(drop=True))


class Popularity(Recommender):
    """Recommend the most-rated movies: score(u, i) = number of training ratings of i, for every u.

    Not a rating predictor (``predict`` returns counts). Unknown items score 0; unknown users get the same
    list as everyone else.
    """

    handles_unknown_users = True

    def _fit(self, train, users, items):
        self.counts_ = np.bincount(items, minlength=self.n_items).astype(np.float64)

    def _predict(self, users, items):
        return np.where(items >= 0, self.counts_[np.maximum(items, 0)], 0.0)

    def _score_users(self, users):
        return np.broadcast_to(self.counts_, (len(users), self.n_items))

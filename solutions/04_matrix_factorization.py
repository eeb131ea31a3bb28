"""Solutions to the exercises of notebook 04 (matrix factorisation).

* ``als_user_step`` — take the rows of the rated films, ``Q_u = item_factors[rated_items]``, and solve the
  ridge normal equations ``(Q_uᵀQ_u + λI) p = Q_uᵀ e_u`` with ``np.linalg.solve`` (never an explicit inverse).
  With no ratings the right-hand side is 0, and so is the solution.
* ``ease_from_gram`` — ``P = inv(G + λI)``; dividing every column j by ``-P_jj`` gives ``B_ij = -P_ij / P_jj``,
  which is ``I - P diagMat(1/diag(P))`` off the diagonal; the diagonal is set to 0 (it would be 1 - 1).
* ``bpr_pair_loss`` — ``-ln σ(d) = ln(1 + e^{-d})`` with ``d = x_pos - x_neg``; ``np.logaddexp(0, -d)`` evaluates it
  without overflow for any d. Average over the pairs.
"""
from __future__ import annotations

import numpy as np


def als_user_step(item_factors, rated_items, residuals, reg):
    Q_u = np.asarray(item_factors, dtype=float)[np.asarray(rated_items, dtype=int)]
    k = Q_u.shape[1]
    return np.linalg.solve(Q_u.T @ Q_u + reg * np.eye(k), Q_u.T @ np.asarray(residuals, dtype=float))


def ease_from_gram(G, reg):
    P = np.linalg.inv(np.asarray(G, dtype=float) + reg * np.eye(len(G)))
    B = P / (-np.diag(P))[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def bpr_pair_loss(x_pos, x_neg):
    d = np.asarray(x_pos, dtype=float) - np.asarray(x_neg, dtype=float)
    return float(np.mean(np.logaddexp(0.0, -d)))


SOLUTIONS = {
    "04.als_user_step": als_user_step,
    "04.ease_from_gram": ease_from_gram,
    "04.bpr_pair_loss": bpr_pair_loss,
}

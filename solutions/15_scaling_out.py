"""Solutions to the exercises of notebook 15 (scaling out).

* ``factor_and_rating_bytes`` — the factors are ``8 · k · (n_users + n_items)`` bytes (float64); ALS keeps the
  ratings twice as CSR, R for the user step and Rᵀ for the item step, each ``(8 + 4)`` bytes per rating (a float64
  value and an int32 column index) plus ``4 · (n_rows + 1)`` bytes of row pointers. On ml-latest-small at k = 32:
  8 · 32 · 10,334 = 2,645,504 bytes of factors and 2 · 12 · 100,836 + 4 · 10,336 = 2,461,408 bytes of ratings,
  5,106,912 bytes (4.87 MiB) in all. Factors grow with users and films, the ratings with the number of ratings:
  for ml-25m the factors are 8 · 32 · 221,588 ≈ 54 MiB and the ratings about 575 MiB. The k² terms are the Gram
  solves' working memory, not stored data.
* ``als_wr_user_step`` — ``np.linalg.solve(Q_u.T @ Q_u + reg * n_u * I, Q_u.T @ r_u)`` with ``n_u`` the number of
  ratings; a user with none gets zeros. On the prompt's example the Gram matrix is [[2, 1], [1, 1]], plus 2 on the
  diagonal (λ = 1, n_u = 2): [[4, 1], [1, 3]], determinant 11; Q_uᵀ r = (3, 2), so p = (9 − 2, −3 + 8) / 11 =
  (7/11, 5/11) ≈ (0.6364, 0.4545) — shrunk more than the course's (0.8, 0.6) because λ counts twice. A user with
  many ratings is penalised more in absolute terms but not relative to her data (the Gram matrix grows with n_u
  too), so the penalty per rating is the same for everybody: the reason Zhou et al. chose it, and the reason one
  regParam works across data sizes. Films with one rating get almost no penalty.
* ``peak_memory`` (experiment) — ``measure_als(train, n_factors=n_factors)["peak_bytes"] / 2**20``. At k = 64 the
  peak roughly doubles against k = 32: the dominant term, the training-RMSE pass, is 2 · 8 · k bytes per rating,
  linear in k; the sparse ratings do not depend on k at all.
* ``quiz`` — the reasons are printed by ``show_solution("15.quiz")``.
"""
from __future__ import annotations

import numpy as np

from recsys_course.scaling import measure_als


def factor_and_rating_bytes(n_users, n_items, n_ratings, k):
    factors = 8 * k * (n_users + n_items)                        # P and Q, float64
    ratings = 2 * (8 + 4) * n_ratings + 4 * (n_users + 1) + 4 * (n_items + 1)   # R and Rᵀ as CSR
    return float(factors + ratings)


def als_wr_user_step(item_factors, rated_items, ratings, reg):
    Q_u = np.asarray(item_factors, dtype=float)[np.asarray(rated_items, dtype=int)]
    n_u = len(Q_u)
    if n_u == 0:
        return np.zeros(np.shape(item_factors)[1])
    A = Q_u.T @ Q_u + reg * n_u * np.eye(Q_u.shape[1])             # λ scaled by the user's number of ratings
    return np.linalg.solve(A, Q_u.T @ np.asarray(ratings, dtype=float))


def als_peak_mib(train, n_factors):
    return measure_als(train, n_factors=n_factors)["peak_bytes"] / 2 ** 20


SOLUTIONS = {
    "15.factor_and_rating_bytes": factor_and_rating_bytes,
    "15.als_wr_user_step": als_wr_user_step,
    "15.peak_memory": als_peak_mib,
    "15.quiz": {1: "a", 2: "a", 3: "a", 4: 8 * 32 * 110e6 / 2 ** 30, 5: "a"},
}

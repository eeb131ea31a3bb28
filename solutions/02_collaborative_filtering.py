"""Solutions to the exercises of notebook 02 (collaborative filtering).

* ``knn_item_scores`` — the cosine between the film *columns* of X, on the rating values: ``XᵀX`` divided by
  the outer product of the column norms (a film nobody rated has norm 0: give it similarity 0 instead of
  dividing by zero), with a zero diagonal so that no film is its own neighbour. Then cut every **row** j to its
  k largest positive entries — N_k(j), the films j votes for — breaking a tie by the lower column (a stable
  sort of the negated row). The score adds, over the films the user rated (a 0/1 indicator, not the rating),
  the similarities of the kept entries: ``(X > 0) @ S_k``; the rated films become ``-inf``. Cutting the rows,
  not the columns, is the point: the result is no longer symmetric. On the two-shopper example with k = 2,
  i2's row has a tie between i1 and i4 (both 1/√2) that goes to i1, and so does i3's: v's i1 scores √2 while
  u's i4 scores 0 — the tie rule decides who gets a recommendation. With k = 3 both get √2, as in section 2.
* ``shrunk_pearson`` — keep the entries both vectors rated; with fewer than two, or a constant vector there,
  the correlation is undefined: return 0. Otherwise centre both on their means *over those entries*, take
  the normalised dot product, and multiply by ``n / (n + shrinkage)``. Centring on each vector's mean over all
  of its ratings gives a different number (closer to the centred cosine).
* ``mean_centred_predict`` — section 3's user-based formula with the simplest baseline, each user's mean over
  all of their ratings (Resnick et al., 1994): among the users who rated i (other than u), keep those with a
  positive similarity to u, sort them by decreasing similarity (a stable sort keeps the lower index first on a
  tie), keep k, and return ``r̄_u + Σ s_uv (r_vi − r̄_v) / Σ |s_uv|`` — ``r̄_u`` alone when nobody is left. Each
  neighbour's deviation is from the neighbour's own mean: Bob's 2 is half a star below his 2.5, and Alice gets
  14/3 − 0.5 ≈ 4.1667.
* ``well_rated_films`` (experiment) — fit ``BiasBaseline()`` and ``UserKNN()`` on all of ``rating_train``,
  predict every test pair, and compute the RMSE over the test pairs whose film has at least 20 ratings in
  ``rating_train`` (counted in train: the test ratings are unknown when predicting). On ml-latest-small (lesson
  profile) that keeps 48.9 % of the test pairs, and there UserKNN beats the baseline: RMSE 0.8762 vs 0.8811,
  where on every test pair it loses (0.9153 vs 0.8947). This supports the reading of section 6.3: user-based
  CF is weak where a film has few raters to choose neighbours from. It is a diagnostic, not a leaderboard
  number — a model cannot choose the pairs it is scored on — but it suggests a hybrid that falls back to the
  baseline (or to ItemKNN) for films with few raters.
* ``quiz`` — the reasons are printed by ``show_solution("02.quiz")``.
"""
from __future__ import annotations

import numpy as np

from recsys_course.metrics import rmse
from recsys_course.models import BiasBaseline, UserKNN


def knn_item_scores(X, k):
    X = np.asarray(X, dtype=float)
    norms = np.linalg.norm(X, axis=0)
    denom = np.outer(norms, norms)
    S = np.divide(X.T @ X, denom, out=np.zeros((X.shape[1], X.shape[1])), where=denom > 0)
    np.fill_diagonal(S, 0.0)
    S_k = np.zeros_like(S)
    for j in range(len(S)):
        top = np.argsort(-S[j], kind="stable")[:k]  # the k largest, ties → the lower column
        top = top[S[j, top] > 0]
        S_k[j, top] = S[j, top]
    rated = X > 0
    return np.where(rated, -np.inf, rated.astype(float) @ S_k)


def shrunk_pearson(x, y, shrinkage):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    both = ~np.isnan(x) & ~np.isnan(y)
    n = int(both.sum())
    if n < 2:
        return 0.0
    xc, yc = x[both] - x[both].mean(), y[both] - y[both].mean()
    denom = np.sqrt((xc ** 2).sum() * (yc ** 2).sum())
    if denom == 0:
        return 0.0
    return float(xc @ yc / denom * n / (n + shrinkage))


def mean_centred_predict(R, S, u, i, k):
    R, S = np.asarray(R, dtype=float), np.asarray(S, dtype=float)
    means = np.array([np.mean(row[~np.isnan(row)]) if (~np.isnan(row)).any() else 0.0 for row in R])
    raters = np.array([v for v in np.flatnonzero(~np.isnan(R[:, i])) if v != u and S[u, v] > 0], dtype=int)
    top = raters[np.argsort(-S[u, raters], kind="stable")][:k]
    if top.size == 0:
        return float(means[u])
    s = S[u, top]
    return float(means[u] + s @ (R[top, i] - means[top]) / np.abs(s).sum())


def well_rated_films(rating_train, rating_test):
    raters = rating_train.groupby("movieId").size()
    keep = (raters.reindex(rating_test["movieId"]).fillna(0) >= 20).to_numpy()
    out = {}
    for name, model in [("BiasBaseline", BiasBaseline()), ("UserKNN", UserKNN())]:
        pred = model.fit(rating_train).predict(rating_test["userId"], rating_test["movieId"])
        out[name] = rmse(rating_test["rating"].to_numpy()[keep], pred[keep])
    return out


SOLUTIONS = {
    "02.knn_item_scores": knn_item_scores,
    "02.shrunk_pearson": shrunk_pearson,
    "02.mean_centred_predict": mean_centred_predict,
    "02.well_rated_films": well_rated_films,
    "02.quiz": {1: "a", 2: "c", 3: "b", 4: "d", 5: 400},
}

"""Solutions to the exercises of notebook 02 (collaborative filtering).

* ``item_scores`` — cosine between the item columns: ``X.T @ X`` divided by the outer product of the column
  norms (an item nobody bought has norm 0: give it similarity 0 instead of dividing by zero); zero the diagonal
  so no item is its own neighbour; the scores are ``X @ S`` — for each user the plain (unnormalised) sum of the
  similarities of a candidate to the items they have — and the items they have become ``-inf``.
* ``shrunk_pearson`` — keep the entries both vectors rated; with fewer than two, or a constant vector there,
  the correlation is undefined: return 0. Otherwise centre both on their means *over those entries*, take
  the normalised dot product, and multiply by ``n / (n + shrinkage)``.
* ``knn_predict`` — drop non-positive similarities, sort the rest by decreasing similarity (a stable sort
  keeps the earlier candidate first on a tie), keep k, return ``b_ui`` plus the similarity-weighted mean of
  their residuals (``b_ui`` alone when nothing is left).
"""
from __future__ import annotations

import numpy as np


def item_scores(X):
    X = np.asarray(X, dtype=float)
    norms = np.linalg.norm(X, axis=0)
    denom = np.outer(norms, norms)
    S = np.divide(X.T @ X, denom, out=np.zeros((X.shape[1], X.shape[1])), where=denom > 0)
    np.fill_diagonal(S, 0.0)
    return np.where(X > 0, -np.inf, X @ S)


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


def knn_predict(b_ui, sims, residuals, k):
    sims, residuals = np.asarray(sims, dtype=float), np.asarray(residuals, dtype=float)
    positive = np.flatnonzero(sims > 0)
    top = positive[np.argsort(-sims[positive], kind="stable")][:k]
    if top.size == 0:
        return float(b_ui)
    return float(b_ui + sims[top] @ residuals[top] / np.abs(sims[top]).sum())


SOLUTIONS = {
    "02.item_scores": item_scores,
    "02.shrunk_pearson": shrunk_pearson,
    "02.knn_predict": knn_predict,
}

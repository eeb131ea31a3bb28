"""Checks of notebook 02 (collaborative filtering): item-based top-N scores, shrunk Pearson, one kNN prediction.

Each check compares the student's function with a reference built on the package (``recsys_course.similarity``)
on small hand-made cases and random ones, and raises AssertionError with a hint when they differ.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..similarity import cosine, pearson
from . import exercise


def _reference_item_scores(X: np.ndarray) -> np.ndarray:
    S = cosine(sp.csr_matrix(X.T)).toarray().astype(np.float64)  # item × item, zero diagonal (float32 values)
    scores = X @ S
    return np.where(X > 0, -np.inf, scores)


@exercise("02.item_scores")
def check_item_scores(answer) -> None:
    two_shoppers = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], dtype=float)
    rng = np.random.default_rng(0)
    cases = [(two_shoppers, "the two-shopper example (u: i1 i2 i3, v: i2 i3 i4)")]
    for seed in range(3):
        X = (np.random.default_rng(seed).random((7, 9)) < 0.35).astype(float)
        X[:, 4] = 0  # an item nobody bought
        X[rng.integers(0, 7), :] = 0  # a user with no purchases
        cases.append((X, f"random 7 × 9 purchases (seed {seed}), with an item nobody bought and an empty user"))
    for X, what in cases:
        got = np.asarray(answer(X.copy()), dtype=float)
        want = _reference_item_scores(X)
        assert got.shape == want.shape, f"item_scores returned shape {got.shape}, expected {want.shape} — case: {what}."
        seen = X > 0
        assert np.all(np.isneginf(got[seen])), (
            f"items the user already has must score -inf — case: {what}. Did you forget to exclude them?")
        if not np.allclose(got[~seen], want[~seen], rtol=1e-5, atol=1e-6):  # the reference is float32
            u, i = np.argwhere(~np.isclose(got, want, rtol=1e-5, atol=1e-6) & ~seen)[0]
            hint = ""
            if np.isclose(got[u, i], 1.0):
                hint = " A score of exactly 1 suggests a normalised average: use the plain sum of similarities."
            raise AssertionError(f"score(user {u}, item {i}) = {got[u, i]:.6g}, expected {want[u, i]:.6g} — case: "
                                 f"{what}.{hint}")


def _reference_pearson(x, y, shrinkage) -> float:
    X = np.vstack([x, y])
    stored = ~np.isnan(X)
    rows, cols = np.nonzero(stored)
    M = sp.csr_matrix((X[rows, cols], (rows, cols)), shape=X.shape)
    return float(pearson(M, shrinkage=shrinkage)[0, 1])


@exercise("02.shrunk_pearson")
def check_shrunk_pearson(answer) -> None:
    nan = np.nan
    cases = [
        ([5, 3, 4, nan, 1], [4, nan, 5, 2, 1], 0.0, "the notebook's pair, no shrinkage (69/78)"),
        ([5, 3, 4, nan, 1], [4, nan, 5, 2, 1], 10.0, "the notebook's pair, shrinkage 10 (× 3/13)"),
        ([1, 2, nan, 4], [2, 4, 6, nan], 0.0, "perfectly correlated on two co-rated entries"),
        ([5, nan, 1], [nan, 2, 3], 0.0, "no co-rated entry at all: the answer is 0.0"),
        ([5, 4, nan], [1, nan, 3], 0.0, "one co-rated entry: a correlation needs at least two, answer 0.0"),
        ([3, 3, 3, 1], [1, 2, 5, nan], 0.0, "x is constant on the co-rated entries: answer 0.0"),
        ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], 2.0, "perfectly anti-correlated, shrinkage 2 (negative results stay)"),
    ]
    rng = np.random.default_rng(1)
    for seed in range(4):
        x = rng.integers(1, 11, 12) / 2
        y = rng.integers(1, 11, 12) / 2
        x[rng.random(12) < 0.3] = nan
        y[rng.random(12) < 0.3] = nan
        cases.append((list(x), list(y), float(rng.choice([0, 1, 5])), f"random vectors (seed {seed})"))
    for x, y, lam, what in cases:
        x, y = np.array(x, dtype=float), np.array(y, dtype=float)
        want = _reference_pearson(x, y, lam)
        got = answer(x.copy(), y.copy(), lam)
        try:
            ok = math.isclose(float(got), want, rel_tol=1e-5, abs_tol=1e-6)
        except (TypeError, ValueError):
            ok = False
        assert ok, f"shrunk_pearson(x={list(x)}, y={list(y)}, shrinkage={lam}) returned {got!r}, expected " \
                   f"{want:.6g} — case: {what}."


def _reference_knn_predict(b_ui, sims, residuals, k) -> float:
    sims, residuals = np.asarray(sims, dtype=float), np.asarray(residuals, dtype=float)
    cand = np.flatnonzero(sims > 0)
    top = cand[np.lexsort((cand, -sims[cand]))][:k]
    if top.size == 0:
        return float(b_ui)
    return float(b_ui + sims[top] @ residuals[top] / np.abs(sims[top]).sum())


@exercise("02.knn_predict")
def check_knn_predict(answer) -> None:
    cases = [
        (4.667, [1.0], [-0.5], 5, "the Alice/Bob example: one neighbour copies its deviation (4.167)"),
        (3.0, [0.9, 0.5, 0.1], [1.0, -1.0, 2.0], 2, "k = 2: only the two most similar count"),
        (3.0, [0.2, -0.9, 0.4], [1.0, 3.0, -1.0], 5, "a negative similarity is not a neighbour"),
        (3.5, [0.0, -0.2], [1.0, 1.0], 3, "no positive similarity: return the baseline"),
        (3.5, [], [], 3, "no candidates at all: return the baseline"),
        (2.0, [0.5, 0.5, 0.5], [1.0, -1.0, 3.0], 2, "a tie: keep the candidates that come first"),
    ]
    rng = np.random.default_rng(2)
    for seed in range(3):
        n = 15
        cases.append((float(rng.uniform(2, 4)), list(np.round(rng.uniform(-0.5, 1, n), 2)),
                      list(np.round(rng.normal(0, 1, n), 2)), int(rng.integers(1, 8)), f"random (seed {seed})"))
    for b_ui, sims, residuals, k, what in cases:
        want = _reference_knn_predict(b_ui, sims, residuals, k)
        got = answer(b_ui, np.array(sims, dtype=float), np.array(residuals, dtype=float), k)
        try:
            ok = math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-9)
        except (TypeError, ValueError):
            ok = False
        assert ok, f"knn_predict(b_ui={b_ui}, sims={sims}, residuals={residuals}, k={k}) returned {got!r}, " \
                   f"expected {want:.6g} — case: {what}."

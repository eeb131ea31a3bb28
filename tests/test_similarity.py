"""recsys_course.similarity against brute-force NumPy on small random sparse matrices."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_course import similarity as sim


def _random(seed: int, n_rows: int = 9, n_cols: int = 14, density: float = 0.45):
    """A sparse 'rating' matrix (half stars 0.5–5) and its boolean pattern; every row has >= 1 entry."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < density
    mask[np.arange(n_rows), rng.integers(0, n_cols, n_rows)] = True
    values = rng.integers(1, 11, (n_rows, n_cols)) / 2.0
    rows, cols = np.nonzero(mask)
    X = sp.csr_matrix((values[rows, cols], (rows, cols)), shape=mask.shape)
    return X, mask, np.where(mask, values, 0.0)


def _brute(mask, values, kind: str) -> np.ndarray:
    n = mask.shape[0]
    out = np.zeros((n, n))
    col_mean = np.array([values[mask[:, c], c].mean() if mask[:, c].any() else 0.0 for c in range(mask.shape[1])])
    row_mean = np.array([values[a, mask[a]].mean() for a in range(n)])
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            co = mask[a] & mask[b]
            if kind == "jaccard":
                union = (mask[a] | mask[b]).sum()
                out[a, b] = co.sum() / union if union else 0.0
                continue
            if kind == "pearson":
                if co.sum() < 2:
                    continue
                x, y = values[a, co], values[b, co]
                if np.ptp(x) == 0 or np.ptp(y) == 0:
                    continue
                out[a, b] = np.corrcoef(x, y)[0, 1]
                continue
            if kind == "cosine":
                xa, xb = values[a], values[b]
            elif kind == "adjusted_cosine":
                xa, xb = np.where(mask[a], values[a] - col_mean, 0), np.where(mask[b], values[b] - col_mean, 0)
            elif kind == "centered_cosine":
                xa, xb = np.where(mask[a], values[a] - row_mean[a], 0), np.where(mask[b], values[b] - row_mean[b], 0)
            norm = np.linalg.norm(xa) * np.linalg.norm(xb)
            out[a, b] = (xa[co] * xb[co]).sum() / norm if norm > 0 else 0.0
    return out


KINDS = ["cosine", "adjusted_cosine", "centered_cosine", "pearson", "jaccard"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force(kind, seed):
    X, mask, values = _random(seed)
    got = sim.SIMILARITIES[kind](X).toarray()
    assert got.shape == (mask.shape[0],) * 2
    np.testing.assert_allclose(got, _brute(mask, values, kind), atol=1e-6)
    np.testing.assert_allclose(got, got.T, atol=1e-7)
    assert np.all(np.diag(got) == 0), "an entity must not be its own neighbour"


@pytest.mark.parametrize("kind", KINDS)
def test_shrinkage_and_min_value(kind):
    X, mask, values = _random(3)
    lam = 2.5
    n_co = mask.astype(float) @ mask.T.astype(float)
    want = _brute(mask, values, kind) * n_co / (n_co + lam)
    np.testing.assert_allclose(sim.SIMILARITIES[kind](X, shrinkage=lam).toarray(), want, atol=1e-6)
    positive = sim.SIMILARITIES[kind](X, shrinkage=lam, min_value=0.0)
    assert positive.data.min() > 0
    np.testing.assert_allclose(positive.toarray(), np.where(want > 0, want, 0), atol=1e-6)
    # the standalone helpers agree
    np.testing.assert_allclose(sim.co_counts(X).toarray(), n_co)
    np.testing.assert_allclose(sim.shrink(_brute(mask, values, kind), n_co, lam), want, atol=1e-12)
    shrunk_sparse = sim.shrink(sim.SIMILARITIES[kind](X), sim.co_counts(X), lam)
    assert sp.issparse(shrunk_sparse)
    np.testing.assert_allclose(shrunk_sparse.toarray(), want, atol=1e-6)


def test_shrinkage_by_hand():
    # two items rated by the same single user: cosine 1, shrunk to 1/(1+100)
    X = sp.csr_matrix(np.array([[4.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 3.0, 2.0]]))  # 3 items × 3 users
    assert np.isclose(sim.cosine(X)[0, 1], 1.0)
    assert np.isclose(sim.cosine(X, shrinkage=100)[0, 1], 1 / 101)


def test_stored_zero_counts_as_observed():
    X = sp.csr_matrix((np.array([0.0, 1.0, 1.0]), (np.array([0, 0, 1]), np.array([0, 1, 0]))), shape=(2, 2))
    assert X.nnz == 3
    assert np.isclose(sim.jaccard(X)[0, 1], 1 / 2)  # row 0 = {0, 1}, row 1 = {0}


def test_pearson_differs_from_centred_cosine_on_partial_overlap():
    X = sp.csr_matrix(np.array([[5.0, 3.0, 4.0, 1.0, 0.0], [4.0, 2.0, 0.0, 0.0, 5.0]]))
    # co-rated: columns 0, 1 → the two users agree perfectly there: Pearson 1, the approximation much less
    assert np.isclose(sim.pearson(X)[0, 1], 1.0)
    assert sim.centered_cosine(X)[0, 1] < 0.5


def test_dense_input_and_bad_options():
    dense = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert np.isclose(sim.cosine(dense)[0, 1], 0.5)
    with pytest.raises(ValueError, match="shrinkage"):
        sim.cosine(dense, shrinkage=-1)
    with pytest.raises(ValueError, match="NaN"):
        sim.cosine(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        sim.cosine(np.ones(3))


def _brute_prune(S: np.ndarray, stored: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros_like(S)
    for a in range(S.shape[0]):
        cols = np.flatnonzero(stored[a])
        order = cols[np.lexsort((cols, -S[a, cols]))][:k]
        out[a, order] = S[a, order]
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 5, 50])
def test_prune_top_k_breaks_ties_by_column(k):
    rng = np.random.default_rng(k)
    S = rng.integers(-3, 4, (12, 12)).astype(float)  # many ties, negative values too
    stored = S != 0
    got = sim.prune_top_k(sp.csr_matrix(S), k)
    np.testing.assert_array_equal(got.toarray(), _brute_prune(S, stored, k))
    assert np.all(np.diff(got.indptr) == np.minimum(stored.sum(1), k))


def test_prune_top_k_dense_path_matches():
    # a matrix dense enough to take the block-wise pre-cut path
    rng = np.random.default_rng(7)
    S = np.round(rng.random((40, 60)), 2)  # ties from rounding
    S[S < 0.1] = 0
    got = sim.prune_top_k(sp.csr_matrix(S), 3)
    np.testing.assert_array_equal(got.toarray(), _brute_prune(S, S != 0, 3))
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        sim.prune_top_k(sp.csr_matrix(S), 0)

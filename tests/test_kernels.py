"""recsys_course.kernels: the compiled loops against plain NumPy on random data with many ties."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_course import kernels


def _random_nonnegative(n_rows, n_cols, density, seed, levels=None):
    rng = np.random.default_rng(seed)
    S = sp.random(n_rows, n_cols, density=density, random_state=rng, format="csr", dtype=np.float64)
    if levels:  # coarse values: many ties inside a row
        S.data = np.ceil(S.data * levels) / levels
    S = S.astype(np.float32)
    S.sum_duplicates()
    return S


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("levels", [None, 3])
def test_sorted_rows_fast_equals_a_lexsort(seed, levels):
    S = _random_nonnegative(50, 300, 0.2, seed, levels)
    S.data[:5] = 0.0  # stored zeros sort last in their row
    S.data[5:8] = np.float32(3e-39)  # subnormal values order like their bits too
    cols, vals = kernels.sorted_rows_fast(S, n_threads=2)
    rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
    order = np.lexsort((S.indices, -S.data, rows))
    assert cols.tolist() == S.indices[order].tolist()
    assert vals.tolist() == S.data[order].tolist()


def test_sorted_rows_fast_rejects_what_it_cannot_sort():
    with pytest.raises(TypeError, match="float32"):
        kernels.sorted_rows_fast(sp.csr_matrix(np.eye(3)))


def _brute_first_k(S, V, targets, k):
    """Per target and voter: the k most similar neighbours (ties → lower column) among those with a vote."""
    S, V = S.toarray(), V.tocsr()
    stored = sp.csr_matrix((np.ones(V.nnz), V.indices, V.indptr), shape=V.shape).toarray() > 0  # zeros too
    V = V.toarray()
    num = np.zeros((len(targets), V.shape[1]))
    den = np.zeros_like(num)
    for t, a in enumerate(targets):
        nbrs = np.flatnonzero(S[a])
        nbrs = nbrs[np.lexsort((nbrs, -S[a, nbrs]))]  # most similar first
        for b in range(V.shape[1]):
            voters_of = [n for n in nbrs if stored[n, b]][:k]
            num[t, b] = sum(float(S[a, n]) * V[n, b] for n in voters_of)
            den[t, b] = sum(float(S[a, n]) for n in voters_of)
    return num, den


@pytest.mark.parametrize("k", [1, 3, 50])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_first_k_sums_equals_brute_force(k, n_threads):
    S = _random_nonnegative(30, 30, 0.4, 7, levels=4)
    V = sp.random(30, 12, density=0.3, random_state=np.random.default_rng(3), format="csr")
    V.data -= 0.5  # signed votes, like residuals
    V.data[:3] = 0.0  # a stored zero is still a vote (a rating equal to its baseline)
    targets = np.array([0, 5, 5, 29, 17])
    cols, vals = kernels.sorted_rows_fast(S)
    num, den = kernels.neighbour_sums(S.indptr, cols, vals, V, targets, k, n_threads=n_threads)
    exp_num, exp_den = _brute_first_k(S, V, targets, k)
    np.testing.assert_allclose(num, exp_num, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(den, exp_den, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("transposed", [False, True])
def test_neighbour_predictions_finish_the_sums(transposed):
    """The fused pass = baseline + num/den (0 where no neighbour voted), clipped — bit for bit, either layout."""
    S = _random_nonnegative(30, 30, 0.15, 11, levels=4)
    V = sp.random(30, 12, density=0.15, random_state=np.random.default_rng(4), format="csr")
    V.data = (V.data - 0.5) * 8  # large residuals: some predictions leave the range and are clipped
    targets = np.array([3, 0, 29, 7])
    rng = np.random.default_rng(9)
    t_base, v_base = rng.normal(3, 1, 30), rng.normal(0, 0.5, 12)
    cols, vals = kernels.sorted_rows_fast(S)
    num, den = kernels.neighbour_sums(S.indptr, cols, vals, V, targets, 2)
    assert (den == 0).any()  # some (target, voter) pairs have no neighbour: the baseline alone
    expected = t_base[targets][:, None] + v_base[None, :]
    expected += np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    expected = np.clip(expected, 0.5, 5.0)
    got = kernels.neighbour_predictions(S.indptr, cols, vals, V, targets, 2, t_base, v_base, 0.5, 5.0,
                                        transposed=transposed)
    assert got.flags.c_contiguous
    assert np.array_equal(got.T if transposed else got, expected)
    assert {0.5, 5.0} <= set(np.unique(got))


@pytest.mark.parametrize("min_value", [None, 0.0, -0.5])
@pytest.mark.parametrize("start", [0, 3])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_block_to_csr_rows_equals_a_mask(min_value, start, n_threads):
    """The compiled extraction = the NumPy mask it replaced (diagonal read as 0, stored zeros where
    min_value < 0, NaN kept only without a threshold), values rounded to float32 the same way; the rows split
    over threads land in the same places."""
    rng = np.random.default_rng(start)
    sim = np.round(rng.normal(size=(5, 12)), 1)
    sim[1, 4] = np.nan
    counts, cols, vals = kernels.block_to_csr_rows(sim, start, min_value, np.float32, n_threads=n_threads)
    ref = sim.copy()
    local = np.arange(5)
    ref[local, local + start] = 0
    flat = np.flatnonzero((ref > min_value) if min_value is not None else (ref != 0))
    assert counts.tolist() == np.bincount(flat // 12, minlength=5).tolist()
    assert cols.tolist() == (flat % 12).tolist()
    np.testing.assert_array_equal(vals, ref.ravel()[flat].astype(np.float32))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_threads", [1, 2])
def test_dense_products_equal_scipys_product_bit_for_bit(seed, n_threads):
    """The compiled dense rows of A @ B.T = SciPy's sparse product then toarray, to the last bit (the same sums
    in the same order): empty rows, stored zeros and int64 indices included."""
    rng = np.random.default_rng(seed)
    A = sp.random(40, 30, density=0.3, random_state=rng, format="csr")
    B = sp.random(25, 30, density=0.3, random_state=rng, format="csr")
    A.data = rng.normal(size=A.nnz)  # signed values: cancellations would show a different order
    B.data[:3] = 0.0
    A = sp.csr_matrix(A.toarray() * (np.arange(40) % 7 != 3)[:, None])  # some empty rows
    BT = B.T.tocsr()
    BT.indices, BT.indptr = BT.indices.astype(np.int64), BT.indptr.astype(np.int64)
    start, stop = 5, 33
    out = np.full((stop - start, 25), np.nan)  # every entry must be written, zeros included
    kernels.dense_products(A, BT, start, out, n_threads=n_threads)
    ref = (A[start:stop] @ B.T.tocsr()).toarray()
    np.testing.assert_array_equal(out.view(np.int64), ref.view(np.int64))

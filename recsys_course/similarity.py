r"""Similarity measures between the rows of a sparse matrix, for neighbourhood models (notebook 02).

Every function compares the **rows** of ``X`` (a SciPy sparse matrix, or anything ``scipy.sparse.csr_matrix``
accepts) and returns an ``n × n`` CSR matrix of similarities. Pass the user × item rating matrix ``R`` to
compare users, ``R.T`` to compare items. A *stored* entry of ``X`` is an observation (a rating, a purchase);
an entry that is not stored is unknown — not a zero rating. Stored entries equal to 0 still count as observed.

Notation: for rows :math:`a, b`, :math:`I_a` is the set of columns stored in row :math:`a`,
:math:`I_{ab} = I_a \cap I_b` the co-rated columns and :math:`n_{ab} = |I_{ab}|` their number.

* :func:`cosine` — :math:`s_{ab} = \frac{\sum_{c \in I_{ab}} x_{ac} x_{bc}}{\sqrt{\sum_{c\in I_a} x_{ac}^2}\,
  \sqrt{\sum_{c\in I_b} x_{bc}^2}}`. The norms run over *all* stored entries of each row, so two rows that
  agree on one column but each have many others are not very similar.
* :func:`adjusted_cosine` — the cosine after subtracting from every stored entry the mean of its **column**:
  :math:`x_{ac} \to x_{ac} - \bar x_{\cdot c}`. With ``X = R.T`` (items × users) that removes each user's mean
  rating before comparing items: Sarwar et al. (2001)'s adjusted cosine, so a harsh and a generous rater
  who rank two films the same way count as agreeing.
* :func:`centered_cosine` — the cosine after subtracting each **row**'s own mean over its stored entries.
  This is the cheap, common approximation of Pearson's correlation (see :func:`pearson`).
* :func:`pearson` — the sample correlation over the co-rated columns only,
  :math:`s_{ab} = \frac{\sum_{c\in I_{ab}}(x_{ac}-\bar x_a^{(ab)})(x_{bc}-\bar x_b^{(ab)})}
  {\sqrt{\sum_{c\in I_{ab}}(x_{ac}-\bar x_a^{(ab)})^2}\sqrt{\sum_{c\in I_{ab}}(x_{bc}-\bar x_b^{(ab)})^2}}`,
  with the means :math:`\bar x_a^{(ab)}` taken over :math:`I_{ab}` too; 0 when :math:`n_{ab} < 2` or a row is
  constant on :math:`I_{ab}`. :func:`centered_cosine` differs in two ways: it centres on each row's mean over
  *all* its entries, and its norms run over all entries, not only the co-rated ones — so it is smaller in
  magnitude for pairs with few co-ratings (a built-in damping), and it costs one sparse product instead of four.
* :func:`jaccard` — for implicit data (only *which* entries are stored matters):
  :math:`s_{ab} = \frac{|I_a \cap I_b|}{|I_a \cup I_b|}`.

Options shared by all of them:

* ``shrinkage`` :math:`\lambda \ge 0` — significance weighting of similarities computed from few co-ratings
  (Koren, 2008; Desrosiers & Karypis, 2011): :math:`s'_{ab} = \frac{n_{ab}}{n_{ab} + \lambda}\, s_{ab}`.
  Two films rated by the same single user have cosine 1; with :math:`\lambda = 100` that becomes 0.0099.
* ``min_value`` — keep only entries strictly above it (``0.0`` keeps positive similarities); ``None`` keeps
  every non-zero entry, negative ones included.
* The diagonal is always 0: an item (or user) is never its own neighbour.

:func:`prune_top_k` keeps each row's ``k`` largest entries (a row's *k nearest neighbours*).

Cost: the pairs are computed in blocks of rows (each product's rows written densely by a compiled loop,
:func:`recsys_course.kernels.dense_products` — the same sums as SciPy's sparse product — then dense arithmetic
on a few MB at a time), so memory stays at one dense block per product plus the result. On ml-latest-small
(9.7k films, 610 users) the item × item cosine takes 0.3–0.6 s; :func:`pearson` needs four products instead of
one. Values are computed in float64 and stored as float32.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from .kernels import block_to_csr_rows, dense_products, sorted_rows_fast

__all__ = ["cosine", "adjusted_cosine", "centered_cosine", "pearson", "jaccard", "co_counts", "shrink",
           "prune_top_k", "sorted_rows", "SIMILARITIES"]

#: floats per dense block of the pairwise computation (~16 MB in float64)
_BLOCK_FLOATS = 1 << 21


def _as_csr(X, name: str = "X") -> sp.csr_matrix:
    if not sp.issparse(X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix, got shape {X.shape}")
    X = sp.csr_matrix(X, dtype=np.float64)
    X.sum_duplicates()
    if not np.isfinite(X.data).all():
        raise ValueError(f"{name} has NaN or infinite entries; fill or drop them first")
    return X


def _pattern(X: sp.csr_matrix) -> sp.csr_matrix:
    """1.0 at every stored entry (stored zeros included)."""
    P = X.copy()
    P.data = np.ones_like(P.data)
    return P


def _check_options(shrinkage: float, min_value) -> None:
    if not np.isfinite(shrinkage) or shrinkage < 0:
        raise ValueError(f"shrinkage must be a finite number >= 0, got {shrinkage!r}")
    if min_value is not None and not np.isfinite(min_value):
        raise ValueError(f"min_value must be a finite number or None, got {min_value!r}")


def _pairwise(n: int, products: dict[str, tuple[sp.csr_matrix, sp.csr_matrix]],
              combine: Callable[[dict, slice], np.ndarray], *, min_value=None,
              dtype=np.float32) -> sp.csr_matrix:
    """The engine: ``combine(blocks, rows)`` turns dense blocks ``A[rows] @ B.T`` into similarities.

    Rows are processed in blocks (a few MB of dense floats each), so memory stays small; the blocks come out
    in row order with sorted columns, so the CSR result is assembled without any sorting. The diagonal is 0.
    """
    rows_per_block = max(1, min(n, _BLOCK_FLOATS // max(n, 1)))
    counts, out_c, out_v = [], [], []
    transposed = {name: b.T.tocsr() for name, (_, b) in products.items()}  # (m × n)
    buffers = {name: np.empty((rows_per_block, n)) for name in products}  # reused by every block
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        rows = slice(start, stop)
        # each product's rows as a dense block: a compiled loop, the same sums as SciPy's A[rows] @ B.T
        blocks = {name: dense_products(a, transposed[name], start, buffers[name][:stop - start])
                  for name, (a, _) in products.items()}
        sim = combine(blocks, rows)
        # the kept entries, the diagonal read as 0 (an entity is not its own neighbour): one compiled pass
        c, cols, vals = block_to_csr_rows(sim, start, min_value, dtype)
        counts.append(c)
        out_c.append(cols)
        out_v.append(vals)
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]) if counts else np.zeros(1, dtype=np.int64)
    indices = np.concatenate(out_c) if out_c else np.zeros(0, dtype=np.int32)
    data = np.concatenate(out_v) if out_v else np.zeros(0, dtype=dtype)
    S = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    S.has_sorted_indices = True
    return S


def _shrink_factor(n_co: np.ndarray, shrinkage: float) -> np.ndarray:
    if shrinkage == 0:
        return np.ones_like(n_co)
    return n_co / (n_co + shrinkage)


def _cosine_of(V: sp.csr_matrix, P: sp.csr_matrix, shrinkage: float, min_value) -> sp.csr_matrix:
    """Cosine between the rows of V (values); P (pattern) only for the co-rating counts of the shrinkage."""
    norms = np.sqrt(np.asarray(V.multiply(V).sum(1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    products = {"dot": (V, V)}
    if shrinkage > 0:
        products["n"] = (P, P)

    def combine(b, rows):
        sim = b["dot"]
        sim *= inv[rows, None]
        sim *= inv[None, :]
        if shrinkage > 0:
            sim *= _shrink_factor(b["n"], shrinkage)
        return sim

    return _pairwise(V.shape[0], products, combine, min_value=min_value)


def cosine(X, *, shrinkage: float = 0.0, min_value: float | None = None) -> sp.csr_matrix:
    r"""Cosine similarity between the rows of ``X`` (see the module docstring for the formula).

    On 0/1 data this is :math:`|I_a \cap I_b| / \sqrt{|I_a|\,|I_b|}`. Rows with no non-zero entry have
    similarity 0 with everything.
    """
    _check_options(shrinkage, min_value)
    X = _as_csr(X)
    return _cosine_of(X, _pattern(X), shrinkage, min_value)


def _centre(X: sp.csr_matrix, axis: int) -> sp.csr_matrix:
    """Subtract from every stored entry the mean of its row (axis=1) or column (axis=0) over stored entries."""
    counts = np.diff(X.indptr) if axis == 1 else np.bincount(X.indices, minlength=X.shape[1])
    sums = np.asarray(X.sum(axis)).ravel()
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    C = X.copy()
    if axis == 1:
        C.data = C.data - np.repeat(means, np.diff(X.indptr))
    else:
        C.data = C.data - means[X.indices]
    return C


def adjusted_cosine(X, *, shrinkage: float = 0.0, min_value: float | None = None) -> sp.csr_matrix:
    r"""Cosine between rows after centring every stored entry on its **column** mean.

    :math:`s_{ab} = \frac{\sum_{c\in I_{ab}} (x_{ac}-\bar x_{\cdot c})(x_{bc}-\bar x_{\cdot c})}
    {\sqrt{\sum_{c\in I_a}(x_{ac}-\bar x_{\cdot c})^2}\sqrt{\sum_{c\in I_b}(x_{bc}-\bar x_{\cdot c})^2}}`.
    Called with ``R.T`` (items × users) it is the item–item adjusted cosine of Sarwar et al. (2001): each
    user's mean rating is removed first.
    """
    _check_options(shrinkage, min_value)
    X = _as_csr(X)
    return _cosine_of(_centre(X, axis=0), _pattern(X), shrinkage, min_value)


def centered_cosine(X, *, shrinkage: float = 0.0, min_value: float | None = None) -> sp.csr_matrix:
    r"""Cosine between rows after centring every stored entry on its **row** mean (Pearson's approximation).

    :math:`s_{ab} = \frac{\sum_{c\in I_{ab}} (x_{ac}-\bar x_a)(x_{bc}-\bar x_b)}
    {\sqrt{\sum_{c\in I_a}(x_{ac}-\bar x_a)^2}\sqrt{\sum_{c\in I_b}(x_{bc}-\bar x_b)^2}}` with
    :math:`\bar x_a` the mean of all of row :math:`a`'s entries. Equals :func:`pearson` only when both rows are
    stored on the same columns.
    """
    _check_options(shrinkage, min_value)
    X = _as_csr(X)
    return _cosine_of(_centre(X, axis=1), _pattern(X), shrinkage, min_value)


def pearson(X, *, shrinkage: float = 0.0, min_value: float | None = None) -> sp.csr_matrix:
    r"""Pearson correlation between rows over their co-rated columns only (the exact form).

    With :math:`n = n_{ab}`, :math:`S_a = \sum_{I_{ab}} x_{ac}`, :math:`S_{aa} = \sum_{I_{ab}} x_{ac}^2` and
    :math:`S_{ab} = \sum_{I_{ab}} x_{ac}x_{bc}`:
    :math:`s_{ab} = \frac{S_{ab} - S_a S_b / n}{\sqrt{(S_{aa} - S_a^2/n)(S_{bb} - S_b^2/n)}}`, four sparse
    products (:math:`XX^\top`, :math:`XP^\top`, :math:`X^{2}P^\top`, :math:`PP^\top` with :math:`P` the
    pattern). 0 when :math:`n_{ab} < 2` or either row is constant on the co-rated columns.
    """
    _check_options(shrinkage, min_value)
    X = _as_csr(X)
    X = _centre(X, axis=1)  # the correlation is unchanged; centring first avoids cancellation
    P = _pattern(X)
    X2 = X.multiply(X).tocsr()
    products = {"xy": (X, X), "sa": (X, P), "sb": (P, X), "saa": (X2, P), "sbb": (P, X2), "n": (P, P)}

    def combine(b, rows):
        n = b["n"]
        with np.errstate(divide="ignore", invalid="ignore"):
            cov = b["xy"] - b["sa"] * b["sb"] / n
            var_a = b["saa"] - b["sa"] ** 2 / n
            var_b = b["sbb"] - b["sb"] ** 2 / n
            tol = 1e-9 * (b["saa"] + b["sbb"] + 1.0)  # rounding: a constant row has variance ~1e-16, not 0
            ok = (n >= 2) & (var_a > tol) & (var_b > tol)
            sim = np.where(ok, cov / np.sqrt(np.where(ok, var_a * var_b, 1.0)), 0.0)
        sim = np.clip(sim, -1.0, 1.0)
        return sim * _shrink_factor(n, shrinkage)

    return _pairwise(X.shape[0], products, combine, min_value=min_value)


def jaccard(X, *, shrinkage: float = 0.0, min_value: float | None = None) -> sp.csr_matrix:
    r"""Jaccard similarity of the rows' stored columns: :math:`|I_a \cap I_b| / |I_a \cup I_b|`.

    Values are ignored: only whether an entry is stored matters (implicit feedback: bought, clicked, rated).
    """
    _check_options(shrinkage, min_value)
    P = _pattern(_as_csr(X))
    size = np.diff(P.indptr).astype(np.float64)

    def combine(b, rows):
        inter = b["n"]
        union = size[rows, None] + size[None, :] - inter
        sim = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        return sim * _shrink_factor(inter, shrinkage)

    return _pairwise(P.shape[0], {"n": (P, P)}, combine, min_value=min_value)


#: the similarity measures by name (the ``similarity=`` argument of UserKNN / ItemKNN)
SIMILARITIES: dict[str, Callable] = {"cosine": cosine, "adjusted_cosine": adjusted_cosine,
                                     "centered_cosine": centered_cosine, "pearson": pearson, "jaccard": jaccard}


def co_counts(X) -> sp.csr_matrix:
    r""":math:`n_{ab} = |I_a \cap I_b|`, the number of columns stored in both rows (diagonal included)."""
    P = _pattern(_as_csr(X))
    return (P @ P.T).tocsr()


def shrink(S, n_co, shrinkage: float):
    r"""Significance weighting :math:`s'_{ab} = \frac{n_{ab}}{n_{ab} + \lambda}\, s_{ab}` (elementwise).

    ``S`` and ``n_co`` are arrays or sparse matrices of the same shape; returns the same kind as ``S``.
    """
    _check_options(shrinkage, None)
    if sp.issparse(S):
        factor = sp.csr_matrix(n_co, dtype=np.float64).copy()
        factor.data = _shrink_factor(factor.data, shrinkage)
        return sp.csr_matrix(S).multiply(factor).tocsr()
    n_co = np.asarray(n_co.toarray() if sp.issparse(n_co) else n_co, dtype=np.float64)
    return np.asarray(S, dtype=np.float64) * _shrink_factor(n_co, shrinkage)


def _rank_in_rows(S: sp.csr_matrix) -> np.ndarray:
    """Rank of every stored entry within its row: 0 for the largest value, ties → the lower column.

    ``S`` must have sorted indices: lexsort is stable, so equal values keep their column order."""
    rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
    order = np.lexsort((-S.data, rows))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - S.indptr[rows[order]]
    return rank


def _keep(S: sp.csr_matrix, mask: np.ndarray) -> sp.csr_matrix:
    """The stored entries of S where ``mask`` (one bool per stored entry) is True, as a canonical CSR."""
    rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[mask], minlength=S.shape[0]))])
    return sp.csr_matrix((S.data[mask], S.indices[mask], indptr), shape=S.shape)


def _prune_with_ranks(S, k: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """:func:`prune_top_k`, plus the rank of every kept entry in its row (to cut to a smaller k later)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    S = sp.csr_matrix(S)
    S.sum_duplicates()
    S.sort_indices()
    n_rows, n_cols = S.shape
    counts = np.diff(S.indptr)
    if S.nnz > 4 * k * n_rows and n_cols > k:  # pre-cut each row to its entries >= its k-th largest value
        candidate = np.ones(S.nnz, dtype=bool)
        rows_per_block = max(1, _BLOCK_FLOATS // n_cols)
        for start in range(0, n_rows, rows_per_block):
            stop = min(start + rows_per_block, n_rows)
            lo, hi = S.indptr[start], S.indptr[stop]
            local_rows = np.repeat(np.arange(stop - start), counts[start:stop])
            dense = np.full((stop - start, n_cols), -np.inf, dtype=S.dtype)  # float32 partitions faster
            dense[local_rows, S.indices[lo:hi]] = S.data[lo:hi]
            kth = np.partition(dense, n_cols - k, axis=1)[:, n_cols - k]
            candidate[lo:hi] = S.data[lo:hi] >= kth[local_rows]
        S = _keep(S, candidate)
    ranks = _rank_in_rows(S)
    return _keep(S, ranks < k), ranks[ranks < k]


def sorted_rows(S) -> tuple[np.ndarray, np.ndarray]:
    r"""Every row's stored entries ordered from the largest value down, ties → the lower column: ``(columns,
    values)``, aligned with ``S.indptr`` of the canonical CSR form of ``S`` (row ``a``'s neighbours, most
    similar first, are ``columns[S.indptr[a]:S.indptr[a + 1]]``).

    With this order a row's :math:`k` nearest neighbours, for any :math:`k`, are its first :math:`k` entries.
    Cost: one sort of the stored entries. For non-negative float32 values (every similarity the neighbourhood
    models keep) a compiled radix sort of each row (:func:`recsys_course.kernels.sort_rows_by_value`, rows in
    parallel threads: about 0.2–0.5 s for the 26 M entries of ml-latest-small's item cosine); otherwise a
    lexsort (several times slower).
    """
    S = sp.csr_matrix(S)
    S.sum_duplicates()
    if S.dtype == np.float32 and S.nnz and (S.data.view(np.int32) >= 0).all():
        # non-negative float32 (every similarity the neighbourhood models keep): a compiled radix sort per row
        return sorted_rows_fast(S)
    rows = np.repeat(np.arange(S.shape[0], dtype=np.int64), np.diff(S.indptr))
    order = np.lexsort((S.indices, -S.data, rows))
    return S.indices[order], S.data[order]


def prune_top_k(S, k: int) -> sp.csr_matrix:
    r"""Keep each row's ``k`` largest stored entries (its *k nearest neighbours*); drop the rest.

    :math:`N_k(a) = \operatorname{top-}k_{b}\; s_{ab}` over the stored entries of row :math:`a`. Ties are
    broken by the lower column index, so the result is deterministic. The result is generally **not**
    symmetric: :math:`b \in N_k(a)` does not imply :math:`a \in N_k(b)`.

    Cost: a sort of the stored entries; for a large, dense-ish matrix the rows are first cut, block by block,
    to the entries at or above their k-th largest value, so only about ``k`` entries per row get sorted.
    """
    return _prune_with_ranks(S, k)[0]

r"""Compiled loops for the neighbourhood models (issue 21): two small functions that NumPy cannot express as
whole-array operations without doing far more work.

They are compiled by `numba <https://numba.pydata.org>`_, the established just-in-time compiler for numeric
Python (LensKit's item-item kNN used it for the same job): the code below is ordinary Python over NumPy
arrays, read top to bottom like the from-scratch loops of notebook 02, and numba turns it into machine code on
first use (about a second; the result is cached on disk next to this file, so later processes load it at once).
``nogil=True`` lets callers run several calls in parallel threads.

* :func:`sort_rows_by_value` — every row of a CSR matrix with non-negative float32 values, ordered from the
  largest value down, ties → the lower column. A stable radix sort on the value's bits (a non-negative float32
  orders like its bit pattern read as an unsigned integer), three passes of 11 bits; rows arrive sorted by
  column, and a stable sort keeps that order among equal values.
* :func:`first_k_sums` — the neighbourhood sums of the rating mode, for many targets at once:

  .. math:: \mathrm{num}_{t,b} = \sum_{n \in \mathrm{first}_k(t, b)} s_{tn}\, x_{nb}, \qquad
            \mathrm{den}_{t,b} = \sum_{n \in \mathrm{first}_k(t, b)} s_{tn},

  where target :math:`t`'s neighbours :math:`n` are visited most similar first and
  :math:`\mathrm{first}_k(t, b)` is the first :math:`k` of them that have an entry :math:`x_{nb}` for voter
  :math:`b`. Because the neighbours come sorted, the first :math:`k` that qualify **are** the :math:`k`
  most similar — no heap, no partition. ItemKNN: targets = films, neighbours = similar films, voters = the
  users who rated them (x = residual :math:`r - b`), i.e. :math:`N_k(i;u)` for every user at once. UserKNN:
  targets = users, neighbours = similar users, voters = the films they rated, i.e. :math:`N_k(u;i)`.

Indices are converted to unsigned integers inside the loops (numba then skips its check for negative,
wrap-around indices), the vote is branch-free and the two sums sit side by side: together about a third off the
inner loop's time on ml-latest-small (2.5 → 1.6 ms per user, one thread).

:func:`neighbour_sums` and :func:`sorted_rows_fast` are the Python entry points: they check and convert the
arrays and split the work over threads.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from numba import njit

__all__ = ["sort_rows_by_value", "first_k_sums", "sorted_rows_fast", "neighbour_sums"]

#: pieces of work per thread: small enough to balance rows of very different lengths
_CHUNKS_PER_THREAD = 16


def _striped(n: int, n_threads: int) -> list[np.ndarray]:
    """0..n-1 dealt into interleaved chunks (long and short rows mix: the threads finish together)."""
    parts = max(1, min(n, n_threads * _CHUNKS_PER_THREAD))
    return [np.arange(i, n, parts) for i in range(parts)]


def _in_threads(fn, chunks: list, n_threads: int) -> None:
    if n_threads <= 1 or len(chunks) <= 1:
        for c in chunks:
            fn(c)
        return
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        list(pool.map(fn, chunks))


def sorted_rows_fast(S: sp.csr_matrix, n_threads: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of every row of a canonical CSR matrix with float32 values ≥ 0, largest first, ties →
    lower column, aligned with ``S.indptr`` (:func:`recsys_course.similarity.sorted_rows` calls it)."""
    if S.dtype != np.float32 or not S.has_canonical_format:
        raise TypeError("sorted_rows_fast needs a canonical CSR matrix of float32 (call sum_duplicates and "
                        f"astype(np.float32) first), got {S.dtype} canonical={S.has_canonical_format}")
    cols, vals = np.empty_like(S.indices), np.empty_like(S.data)
    indptr = S.indptr.astype(np.int64)
    _in_threads(lambda rows: sort_rows_by_value(indptr, S.indices, S.data, rows, cols, vals),
                _striped(S.shape[0], n_threads), n_threads)
    return cols, vals


def neighbour_sums(indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, voters: sp.csr_matrix,
                   targets: np.ndarray, k: int, n_threads: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """:func:`first_k_sums` for ``targets`` (row positions of the sorted neighbour lists ``indptr``/``cols``/
    ``vals``); ``voters`` has one row per neighbour (its voters as columns, the values as data). Returns
    ``num, den`` of shape ``(len(targets), voters.shape[1])``."""
    targets = np.asarray(targets, dtype=np.int64)
    num = np.empty((len(targets), voters.shape[1]))
    den = np.empty_like(num)
    args = (np.asarray(indptr, dtype=np.int64), cols, vals,  # the long arrays as they are (no copy)
            voters.indptr.astype(np.int64), voters.indices.astype(np.uint32), voters.data.astype(np.float64))

    def run(rows: np.ndarray) -> None:
        first_k_sums(*args, targets[rows], rows, int(k), num, den)

    _in_threads(run, _striped(len(targets), n_threads), n_threads)
    return num, den


@njit(nogil=True, cache=True, boundscheck=False)
def sort_rows_by_value(indptr, indices, data, rows, cols_out, vals_out):  # pragma: no cover - compiled
    """Write rows ``rows`` of the CSR matrix (``indptr``, ``indices``, ``data``: float32 ≥ 0, columns ascending
    in each row) into ``cols_out``/``vals_out`` at the same positions, largest value first, ties → lower column."""
    bits = data.view(np.uint32)
    out_bits = vals_out.view(np.uint32)
    longest = 0
    for a in rows:
        longest = max(longest, indptr[a + 1] - indptr[a])
    key, key_tmp = np.empty(longest, np.uint32), np.empty(longest, np.uint32)
    col, col_tmp = np.empty(longest, indices.dtype), np.empty(longest, indices.dtype)
    count = np.empty(2048, np.int64)
    top = np.uint32(0x7FFFFFFF)  # largest bit pattern of a non-negative float32 (NaN excluded)
    for a in rows:
        lo = indptr[a]
        n = indptr[a + 1] - lo
        for t in range(n):
            key[t] = top - bits[lo + t]  # ascending key = descending value
            col[t] = indices[lo + t]
        for shift in (0, 11, 22):  # least significant digit first; each pass is stable
            count[:] = 0
            for t in range(n):
                count[(key[t] >> shift) & 2047] += 1
            total = 0
            for digit in range(2048):
                c = count[digit]
                count[digit] = total
                total += c
            for t in range(n):
                digit = (key[t] >> shift) & 2047
                pos = count[digit]
                count[digit] = pos + 1
                key_tmp[pos] = key[t]
                col_tmp[pos] = col[t]
            key, key_tmp = key_tmp, key
            col, col_tmp = col_tmp, col
        for t in range(n):
            out_bits[lo + t] = top - key[t]
            cols_out[lo + t] = col[t]


@njit(nogil=True, cache=True, boundscheck=False)
def first_k_sums(indptr, cols, vals, v_indptr, v_rows, v_values, targets, out_rows, k, num, den):  # pragma: no cover
    """For target ``targets[t]``: walk its neighbours (``cols``/``vals`` from ``indptr``, most similar first);
    neighbour ``n`` votes for each voter ``b`` in ``v_rows[v_indptr[n]:v_indptr[n + 1]]`` with value
    ``v_values`` while ``b`` has fewer than ``k`` votes. Writes ``num[out_rows[t], b]`` and ``den[out_rows[t], b]``
    (float64)."""
    n_voters = num.shape[1]
    votes = np.zeros(n_voters, np.uint32)
    acc = np.zeros(2 * n_voters)  # (sum of s·x, sum of s) per voter, side by side
    kk = np.uint32(k)
    one = np.uint64(1)
    for t in range(targets.shape[0]):
        votes[:] = 0
        acc[:] = 0.0
        a = targets[t]
        for p in range(indptr[a], indptr[a + 1]):
            n = np.uint64(cols[p])
            s = np.float64(vals[p])
            for q in range(np.uint64(v_indptr[n]), np.uint64(v_indptr[n + one])):
                b = np.uint64(v_rows[q])
                c = votes[b]
                take = c < kk
                votes[b] = c + take  # branch-free: a full voter is touched but unchanged
                w = s if take else 0.0
                acc[2 * b] += w * v_values[q]
                acc[2 * b + one] += w
        r = out_rows[t]
        for b in range(n_voters):
            num[r, b] = acc[2 * b]
            den[r, b] = acc[2 * b + 1]

r"""Compiled loops (issue 21): a few small functions that NumPy cannot express as whole-array operations without
doing far more work — the neighbourhood models' sort and walk, and the top-k every ranking ends with.

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
* :func:`first_k_predictions` — the same walk (:func:`_vote`, shared), finished as the rating mode's prediction
  in the same pass: baseline + num/den, clipped. Scoring all 610 users of ml-latest-small then allocates one
  users × films matrix instead of five (num, den, baseline, ratio, clipped copy): about 0.2 ms per user less.
* :func:`gram_rows` — rows of a product of two sparse matrices, :math:`A B^\top`, written straight into a dense
  block: what the similarities (:mod:`recsys_course.similarity`) compute block by block. SciPy's sparse product
  followed by ``toarray`` does the same sums in the same order (so the values are equal bit for bit), but first
  builds the sparse result, and on one core: the item × item cosine of ml-latest-small went from 0.9–1.4 s to
  0.3–0.6 s.
* :func:`top_k_rows` — each row's k largest values, best first, ties → the lower position, in one pass that keeps
  the best k so far (a value that does not beat the k-th costs one comparison): 5–10× faster than NumPy's
  partition followed by a sort of the k, on every model's ``recommend`` and in every evaluation.

Indices are converted to unsigned integers inside the loops (numba then skips its check for negative,
wrap-around indices), the vote is branch-free and the two sums sit side by side: together about a third off the
inner loop's time on ml-latest-small (2.5 → 1.6 ms per user, one thread).

:func:`neighbour_sums`, :func:`neighbour_predictions`, :func:`sorted_rows_fast`, :func:`top_k_fast`,
:func:`dense_products` and :func:`block_to_csr_rows` are the Python entry points: they check and convert the
arrays and split the work over threads (:func:`in_threads`).

Measured and not kept (ml-latest-small, all users): dropping a group of heavy users from the walk once all of
them have their k votes for a film — it halves the (film, neighbour, user) triples touched (535 M → about
270 M), but the bookkeeping on every touch made the walk slower (0.6 → 0.7–0.9 s); a branch instead of the
branch-free vote, a count kept beside the two sums, 16-bit counts: no faster.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from numba import njit

__all__ = ["sort_rows_by_value", "first_k_sums", "first_k_predictions", "sorted_rows_fast", "neighbour_sums",
           "neighbour_predictions", "top_k_rows", "top_k_fast", "in_threads",
           "block_to_csr_rows", "gram_rows", "dense_products"]

#: largest k for the compiled top-k (an insertion costs up to k moves; larger k → a partition in NumPy)
TOP_K_MAX = 32

#: pieces of work per thread: small enough to balance rows of very different lengths
_CHUNKS_PER_THREAD = 16


def _striped(n: int, n_threads: int) -> list[np.ndarray]:
    """0..n-1 dealt into interleaved chunks (long and short rows mix: the threads finish together)."""
    parts = max(1, min(n, n_threads * _CHUNKS_PER_THREAD))
    return [np.arange(i, n, parts) for i in range(parts)]


def _blocks(n: int, n_threads: int) -> list[np.ndarray]:
    """0..n-1 cut into contiguous blocks, as many as :func:`_striped` deals."""
    parts = max(1, min(n, n_threads * _CHUNKS_PER_THREAD))
    return [np.arange(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


def in_threads(fn, chunks: list, n_threads: int) -> None:
    """``fn(chunk)`` for every chunk, in ``n_threads`` threads (in order on one thread). The chunks must write
    to separate places; the compiled loops release the GIL, so the threads run at once."""
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
    in_threads(lambda rows: sort_rows_by_value(indptr, S.indices, S.data, rows, cols, vals),
                _striped(S.shape[0], n_threads), n_threads)
    return cols, vals


def top_k_fast(scores: np.ndarray, k: int) -> np.ndarray | None:
    """:func:`top_k_rows` of a float matrix without NaN for 1 ≤ ``k`` ≤ :data:`TOP_K_MAX` (k < columns), rows in
    threads when there are many; ``None`` where it does not apply (the caller falls back to NumPy)."""
    if (scores.ndim != 2 or scores.dtype not in (np.float32, np.float64) or not 1 <= k <= TOP_K_MAX
            or k >= scores.shape[1] or np.isnan(scores).any()):
        return None
    out = np.empty((scores.shape[0], k), dtype=np.intp)
    n_threads = 2 if scores.size >= 1 << 22 else 1
    in_threads(lambda rows: top_k_rows(scores[rows[0]:rows[-1] + 1], k, out[rows[0]:rows[-1] + 1]),
                _blocks(scores.shape[0], n_threads), n_threads)
    return out


def block_to_csr_rows(sim: np.ndarray, start: int, min_value: float | None, dtype, n_threads: int = 2) -> tuple:
    """A dense block of similarity rows (``start`` = its first row's number, whose diagonal is not stored) as CSR
    pieces ``(counts per row, int32 columns, values as dtype)``: the entries > ``min_value`` (≠ 0 without one),
    in two compiled passes instead of a mask, a flatnonzero and three gathers over the whole block."""
    sim = np.ascontiguousarray(sim, dtype=np.float64)
    has_min = min_value is not None
    threshold = float(min_value) if has_min else 0.0
    counts = np.empty(sim.shape[0], dtype=np.int64)
    halves = [h for h in np.array_split(np.arange(sim.shape[0]), max(1, n_threads)) if len(h)]  # rows per thread
    in_threads(lambda h: block_row_counts(sim[h[0]:h[-1] + 1], int(start + h[0]), has_min, threshold,
                                          counts[h[0]:h[-1] + 1]), halves, n_threads)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    cols = np.empty(int(offsets[-1]), dtype=np.int32)
    vals = np.empty(len(cols), dtype=dtype)

    def fill(h: np.ndarray) -> None:
        lo, hi = offsets[h[0]], offsets[h[-1] + 1]
        block_rows_fill(sim[h[0]:h[-1] + 1], int(start + h[0]), has_min, threshold, cols[lo:hi], vals[lo:hi])

    in_threads(fill, halves, n_threads)
    return counts, cols, vals


def dense_products(A: sp.csr_matrix, BT: sp.csr_matrix, start: int, out: np.ndarray, n_threads: int = 2) -> np.ndarray:
    """Rows ``start … start + len(out) - 1`` of the product :math:`A B^\top` written densely into ``out``
    (float64), given ``BT`` = :math:`B^\top` as CSR: :func:`gram_rows` in threads. The same sums in the same
    order as SciPy's sparse product followed by ``toarray`` (bit for bit), without the sparse result between."""
    n_rows = out.shape[0]
    a_ptr, bt_ptr = A.indptr.astype(np.int64), BT.indptr.astype(np.int64)
    a_val, bt_val = A.data.astype(np.float64, copy=False), BT.data.astype(np.float64, copy=False)
    in_threads(lambda rows: gram_rows(a_ptr, A.indices, a_val, bt_ptr, BT.indices, bt_val, int(start), rows, out),
               _striped(n_rows, n_threads), n_threads)
    return out


def _walk_args(indptr, cols, vals, voters: sp.csr_matrix) -> tuple:
    """The walk's arrays in the types the compiled loop takes (the long sorted lists as they are, no copy)."""
    return (np.asarray(indptr, dtype=np.int64), cols, vals,
            voters.indptr.astype(np.int64), voters.indices.astype(np.uint32), voters.data.astype(np.float64))


def neighbour_sums(indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, voters: sp.csr_matrix,
                   targets: np.ndarray, k: int, n_threads: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """:func:`first_k_sums` for ``targets`` (row positions of the sorted neighbour lists ``indptr``/``cols``/
    ``vals``); ``voters`` has one row per neighbour (its voters as columns, the values as data). Returns
    ``num, den`` of shape ``(len(targets), voters.shape[1])``."""
    targets = np.asarray(targets, dtype=np.int64)
    num = np.empty((len(targets), voters.shape[1]))
    den = np.empty_like(num)
    args = _walk_args(indptr, cols, vals, voters)

    def run(rows: np.ndarray) -> None:
        first_k_sums(*args, targets[rows], rows, int(k), num, den)

    in_threads(run, _striped(len(targets), n_threads), n_threads)
    return num, den


def neighbour_predictions(indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, voters: sp.csr_matrix,
                          targets: np.ndarray, k: int, target_base: np.ndarray, voter_base: np.ndarray,
                          low: float, high: float, transposed: bool = False, n_threads: int = 2) -> np.ndarray:
    r"""The rating mode's predictions in one pass (:func:`first_k_predictions`):
    :math:`\mathrm{clip}(\mathrm{target\_base}_t + \mathrm{voter\_base}_b + \mathrm{num}/\mathrm{den})`, the
    ratio left out where no neighbour voted — no ``num``/``den`` matrices in memory. Shape
    ``(len(targets), n_voters)``, or ``(n_voters, len(targets))`` with ``transposed`` (C-contiguous either way:
    ItemKNN's targets are films and its voters users, and a score matrix is users × films)."""
    targets = np.asarray(targets, dtype=np.int64)
    shape = (voters.shape[1], len(targets)) if transposed else (len(targets), voters.shape[1])
    out = np.empty(shape)
    view = out.T if transposed else out
    args = _walk_args(indptr, cols, vals, voters)
    t_base = np.ascontiguousarray(target_base, dtype=np.float64)
    v_base = np.ascontiguousarray(voter_base, dtype=np.float64)

    def run(rows: np.ndarray) -> None:
        first_k_predictions(*args, targets[rows], rows, int(k), t_base, v_base, float(low), float(high), view)

    # transposed: each thread fills neighbouring columns (whole cache lines), so it takes contiguous blocks
    chunks = _blocks(len(targets), n_threads) if transposed else _striped(len(targets), n_threads)
    in_threads(run, chunks, n_threads)
    return out


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
def _vote(indptr, cols, vals, v_indptr, v_rows, v_values, a, kk, votes, acc):  # pragma: no cover - compiled
    """The walk for one target ``a``: ``acc[2b]``, ``acc[2b + 1]`` = (sum of s·x, sum of s) over voter ``b``'s
    first ``kk`` votes; ``votes`` and ``acc`` are the caller's scratch arrays (reset here)."""
    votes[:] = 0
    acc[:] = 0.0
    one = np.uint64(1)
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


@njit(nogil=True, cache=True, boundscheck=False)
def first_k_sums(indptr, cols, vals, v_indptr, v_rows, v_values, targets, out_rows, k, num, den):  # pragma: no cover
    """For target ``targets[t]``: walk its neighbours (``cols``/``vals`` from ``indptr``, most similar first);
    neighbour ``n`` votes for each voter ``b`` in ``v_rows[v_indptr[n]:v_indptr[n + 1]]`` with value
    ``v_values`` while ``b`` has fewer than ``k`` votes. Writes ``num[out_rows[t], b]`` and ``den[out_rows[t], b]``
    (float64)."""
    n_voters = num.shape[1]
    votes = np.zeros(n_voters, np.uint32)
    acc = np.zeros(2 * n_voters)  # (sum of s·x, sum of s) per voter, side by side
    for t in range(targets.shape[0]):
        _vote(indptr, cols, vals, v_indptr, v_rows, v_values, targets[t], np.uint32(k), votes, acc)
        r = out_rows[t]
        for b in range(n_voters):
            num[r, b] = acc[2 * b]
            den[r, b] = acc[2 * b + 1]


@njit(nogil=True, cache=True, boundscheck=False)
def first_k_predictions(indptr, cols, vals, v_indptr, v_rows, v_values, targets, out_rows, k,
                        t_base, v_base, low, high, out):  # pragma: no cover - compiled
    """The same walk, finished as a prediction: ``out[out_rows[t], b] = clip(t_base[targets[t]] + v_base[b]
    + num / den, low, high)``, the ratio left out where ``den = 0`` (no neighbour). ``out`` may be a transposed
    view (ItemKNN writes users × films through its transpose)."""
    n_voters = out.shape[1]
    votes = np.zeros(n_voters, np.uint32)
    acc = np.zeros(2 * n_voters)
    for t in range(targets.shape[0]):
        a = targets[t]
        _vote(indptr, cols, vals, v_indptr, v_rows, v_values, a, np.uint32(k), votes, acc)
        r = out_rows[t]
        tb = t_base[a]
        for b in range(n_voters):
            x = tb + v_base[b]
            d = acc[2 * b + 1]
            if d > 0.0:
                x += acc[2 * b] / d
            out[r, b] = min(max(x, low), high)


@njit(nogil=True, cache=True, boundscheck=False)
def _insert(best, pos, t, v, j):  # pragma: no cover - compiled
    """Put value ``v`` (column ``j``) into the descending list ``best``/``pos`` at slot ``t`` or above it, past
    every value ≥ ``v`` (a stable insertion: an equal value already there keeps its place)."""
    while t > 0 and best[t - 1] < v:
        best[t] = best[t - 1]
        pos[t] = pos[t - 1]
        t -= 1
    best[t] = v
    pos[t] = j


@njit(nogil=True, cache=True, boundscheck=False)
def top_k_rows(scores, k, out):  # pragma: no cover - compiled
    """Column positions of the ``k`` largest values of every row of ``scores`` (no NaN), best first, ties → the
    lower position: one pass per row that keeps the best ``k`` so far in order (an insertion when a value beats
    the k-th; most values do not and cost one comparison)."""
    best = np.empty(k, scores.dtype)
    pos = np.empty(k, np.int64)
    for r in range(scores.shape[0]):
        for j in range(k):  # the first k entries, in order
            _insert(best, pos, j, scores[r, j], j)
        for j in range(k, scores.shape[1]):
            if scores[r, j] > best[k - 1]:  # strictly: an equal value at a higher position loses
                _insert(best, pos, k - 1, scores[r, j], j)
        for j in range(k):
            out[r, j] = pos[j]


@njit(nogil=True, cache=True, boundscheck=False)
def gram_rows(a_indptr, a_indices, a_data, bt_indptr, bt_indices, bt_data, start, rows, out):  # pragma: no cover
    """``out[r] = A[start + r] @ B.T`` for each local row ``r`` in ``rows`` (``out`` dense float64, ``B.T`` given
    as CSR): every stored ``(c, x)`` of A's row adds ``x`` times row ``c`` of ``B.T`` — the order in which SciPy's
    sparse product sums, so the same values bit for bit."""
    for r in rows:
        row = out[r]
        row[:] = 0.0
        a = start + r
        for p in range(a_indptr[a], a_indptr[a + 1]):
            c = a_indices[p]
            x = a_data[p]
            for q in range(bt_indptr[c], bt_indptr[c + 1]):
                row[bt_indices[q]] += x * bt_data[q]


@njit(nogil=True, cache=True, boundscheck=False)
def block_row_counts(sim, start, has_min, min_value, counts):  # pragma: no cover - compiled
    """Entries each row of a dense similarity block keeps: > ``min_value`` (or ≠ 0 without one), the diagonal
    (column ``start + row``) read as 0."""
    for r in range(sim.shape[0]):
        c = 0
        for j in range(sim.shape[1]):
            v = 0.0 if j == start + r else sim[r, j]
            c += (v > min_value) if has_min else (v != 0.0)
        counts[r] = c


@njit(nogil=True, cache=True, boundscheck=False)
def block_rows_fill(sim, start, has_min, min_value, cols, vals):  # pragma: no cover - compiled
    """The kept entries of the block (see :func:`block_row_counts`), row by row, columns ascending."""
    t = 0
    for r in range(sim.shape[0]):
        for j in range(sim.shape[1]):
            v = 0.0 if j == start + r else sim[r, j]
            if (v > min_value) if has_min else (v != 0.0):
                cols[t] = j
                vals[t] = v
                t += 1

r"""Nearest-neighbour search over item vectors: exact by hand in NumPy, exact and approximate with faiss.

**Maximum inner-product search (MIPS).** Given item vectors :math:`v_1 \dots v_n` and a query :math:`q`, find
the :math:`k` items with the largest :math:`q^\top v_i` — what a factor model's score is
(:math:`\hat s_{ui} = p_u^\top q_i`), so "the best k films for user u" *is* a nearest-neighbour query.

**Cosine = inner product after normalising.** :math:`\cos(q, v) = q^\top v / (\lVert q\rVert \lVert v\rVert)`;
with unit vectors (:math:`\lVert q\rVert = \lVert v\rVert = 1`) the denominators are 1, so ranking by cosine is
ranking by inner product on :func:`normalise`\ d vectors. And for unit vectors
:math:`\lVert q - v\rVert^2 = 2 - 2\,q^\top v`: the nearest in Euclidean distance is the best in inner product,
which is why indexes built for distances work on normalised embeddings.

* :func:`exact_search` — the from-scratch version: one matrix product per batch of queries, then the top k
  (:func:`recsys_course.metrics.top_k`: ``argpartition`` + a sort). Cost :math:`O(n_q\, n\, d)`.
* :func:`build_index` → :class:`VectorIndex` — one small interface over ``"numpy"`` (the function above),
  ``"exact"`` (``faiss.IndexFlatIP``), ``"hnsw"`` (``faiss.IndexHNSWFlat``) and ``"ivf"`` (``faiss.IndexIVFFlat``);
  :func:`load_index` reads what :meth:`VectorIndex.save` wrote.
* :func:`recall_at_k` (approximate vs exact), :func:`query_latency` and :func:`latency_summary` (p50 / p99).

faiss (``pip install faiss-cpu``; ``faiss-gpu`` is the instructor's option on a GPU machine) is imported only
when an index that needs it is built or loaded: importing this module never imports it.
"""
from __future__ import annotations

import io
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..checks import check_choice, is_int
from ..metrics import top_k

__all__ = ["KINDS", "METRICS", "INDEX_PARAMS", "SEARCH_PARAMS", "normalise", "exact_search", "build_index",
           "VectorIndex", "load_index", "recall_at_k", "query_latency", "latency_summary", "one_faiss_thread"]

#: the kinds of index :func:`build_index` builds
KINDS = ("numpy", "exact", "hnsw", "ivf")
METRICS = ("ip", "cosine")
#: each kind's parameters and their defaults (``nlist=None``: chosen from the number of vectors)
INDEX_PARAMS = {
    "numpy": {},
    "exact": {},
    "hnsw": {"M": 32, "ef_construction": 40, "ef_search": 16},
    "ivf": {"nlist": None, "nprobe": 8, "seed": 0},
}
#: the parameters :meth:`VectorIndex.set_params` may change after the build (search-time only)
SEARCH_PARAMS = {"hnsw": ("ef_search",), "ivf": ("nprobe",)}
#: queries scored at once by :func:`exact_search` (memory: this many × n floats)
_CELLS = 1 << 24
_FORMAT = "recsys_course.VectorIndex/1"


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise ImportError("this index needs faiss: pip install faiss-cpu (or faiss-gpu on a GPU machine); "
                          "kind='numpy' searches exactly without it") from exc
    return faiss


@contextmanager
def one_faiss_thread():
    """``with one_faiss_thread(): ...`` runs faiss on one OpenMP thread inside the block (single-threaded timings,
    reproducible HNSW builds); the previous thread count comes back afterwards."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _rows(name: str, values, *, dim: int | None = None) -> np.ndarray:
    """``values`` as a float32 C-contiguous 2-D array (a 1-d vector becomes one row), checked for NaN / inf."""
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, dim), or one 1-d vector, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}): an index needs at least one vector of at least one "
                         "dimension; check the array you built")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} have dimension {arr.shape[1]} but the index was built on vectors of dimension "
                         f"{dim}: embed the {name} with the same model as the indexed vectors")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr).all(1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{name} contain NaN or inf in {len(rows)} row(s) (e.g. rows {rows[:5].tolist()}): a model "
                         "or the data produced a missing value; drop or fix those rows first")
    return arr


def _check_k(k, n: int) -> int:
    if not is_int(k) or k <= 0:
        raise ValueError(f"k must be a positive integer (how many neighbours per query), got {k!r}")
    if k > n:
        raise ValueError(f"k={k} is larger than the number of indexed vectors ({n}): ask for at most {n}")
    return int(k)


def normalise(vectors, *, zero: str = "raise") -> np.ndarray:
    r"""Unit rows :math:`v / \lVert v\rVert_2`, float32 and C-contiguous (what faiss wants).

    After normalising, the inner product of two rows is their cosine (see the module docstring), so an
    inner-product index answers cosine queries.

    Parameters
    ----------
    vectors : array (n, dim), or one 1-d vector
    zero : "raise" or "keep"
        A zero row has no direction, so :math:`v / \lVert v\rVert` would be NaN. ``"raise"`` refuses it (the
        message counts them and names the first); ``"keep"`` leaves it zero: its cosine with anything is then 0,
        never NaN.

    Raises
    ------
    ValueError
        Zero rows with ``zero="raise"``; NaN or inf anywhere (the rows are named); an empty or non-2-D array.
    """
    check_choice("normalise", "zero", zero, ("raise", "keep"))
    arr = _rows("vectors", vectors).copy()
    norms = np.linalg.norm(arr, axis=1)
    empty = norms == 0
    if empty.any() and zero == "raise":
        rows = np.flatnonzero(empty)
        raise ValueError(f"{len(rows)} row(s) are zero vectors (e.g. rows {rows[:5].tolist()}): a zero vector has no "
                         "direction, so its cosine is undefined; drop those rows, or pass zero='keep' to leave them "
                         "zero (cosine 0 with everything)")
    arr[~empty] /= norms[~empty, None]
    return arr


def exact_search(vectors, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact maximum inner-product search, by hand: the k rows of ``vectors`` with the largest
    :math:`q^\top v_i` for every query :math:`q`.

    For a batch of queries :math:`Q_b`: the scores :math:`S = Q_b V^\top` (one matrix product), then each row's
    top k with :func:`recsys_course.metrics.top_k` (``argpartition`` finds the k largest in :math:`O(n)`, a sort
    orders only those k). Queries go in batches so memory stays about :math:`2^{24}` floats whatever the
    number of queries. Ties go to the smaller position, so the result is deterministic.

    Parameters
    ----------
    vectors : array (n, dim)
    queries : array (n_queries, dim), or one 1-d query
    k : int, 1..n

    Returns
    -------
    (scores, positions): float32 and int64 arrays of shape (n_queries, k), best first.

    Raises
    ------
    ValueError
        Empty vectors, NaN / inf, queries of another dimension, k not a positive integer or larger than n.
    """
    V = _rows("vectors", vectors)
    Q = _rows("queries", queries, dim=V.shape[1])
    k = _check_k(k, len(V))
    batch = max(1, _CELLS // len(V))
    scores = np.empty((len(Q), k), dtype=np.float32)
    positions = np.empty((len(Q), k), dtype=np.int64)
    for start in range(0, len(Q), batch):
        S = Q[start:start + batch] @ V.T                       # (batch, n): every inner product
        top = top_k(S, k)                                      # the k best per row, best first
        positions[start:start + batch] = top
        scores[start:start + batch] = np.take_along_axis(S, top, 1)
    return scores, positions


def _default_nlist(n: int) -> int:
    r"""About :math:`4\sqrt n` lists, at most :math:`n / 39` (faiss' k-means wants ≥ 39 training points per list)."""
    return int(np.clip(round(4 * np.sqrt(n)), 1, max(1, n // 39)))


def _check_params(kind: str, params: dict, n: int) -> dict:
    allowed = INDEX_PARAMS[kind]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        valid = list(allowed) or "none"
        raise ValueError(f"unknown parameter(s) {unknown} for kind={kind!r}; its parameters are: {valid}")
    out = {**allowed, **params}
    if kind == "ivf" and out["nlist"] is None:
        out["nlist"] = _default_nlist(n)
    for name, value in out.items():
        low = 0 if name == "seed" else 1
        if not is_int(value) or value < low:
            raise ValueError(f"{kind}: {name} must be an integer >= {low}, got {value!r}")
        out[name] = int(value)
    if kind == "ivf" and out["nlist"] > n:
        raise ValueError(f"ivf: nlist={out['nlist']} lists for {n} vectors; use at most {n} (about 4·√n is usual)")
    return out


def build_index(vectors, kind: str = "exact", *, metric: str = "ip", **params) -> VectorIndex:
    r"""Index ``vectors`` for top-k inner-product (or cosine) search.

    Parameters
    ----------
    vectors : array (n, dim)
        The item vectors (float; copied to float32). Row ``i`` is answered as position ``i``.
    kind : str
        * ``"numpy"`` — exact, :func:`exact_search` (no faiss needed).
        * ``"exact"`` — exact, ``faiss.IndexFlatIP``: the same brute force in faiss' optimised kernels.
        * ``"hnsw"`` — approximate, ``faiss.IndexHNSWFlat`` (inner product): a layered graph in which every
          vector links to about ``M`` neighbours; a search walks the graph greedily from the top layer down.
        * ``"ivf"`` — approximate, ``faiss.IndexIVFFlat`` over an ``IndexFlatIP`` quantiser: k-means cuts the
          vectors into ``nlist`` cells; a search scans only the ``nprobe`` cells whose centres score best.
    metric : "ip" or "cosine"
        ``"cosine"`` :func:`normalise`\ s the vectors at build time and every query at search time.
    M : int (hnsw, default 32)
        Links per vector in the graph: more links give higher recall and cost memory (about ``2·M`` ints per
        vector) and build time.
    ef_construction : int (hnsw, default 40)
        How many candidates the build keeps while linking a new vector: higher gives a better graph, a slower build.
    ef_search : int (hnsw, default 16)
        How many candidates a search keeps (at least k are used): the recall ↔ latency knob, changeable after the
        build with :meth:`VectorIndex.set_params`.
    nlist : int (ivf, default about :math:`4\sqrt n`, at most :math:`n/39`)
        Number of k-means cells: more cells make each cell smaller (a faster scan) but a neighbour is more often
        in a cell not probed.
    nprobe : int (ivf, default 8)
        Cells scanned per query: the recall ↔ latency knob (``nprobe = nlist`` is exact search); changeable
        after the build.
    seed : int (ivf, default 0)
        The k-means seed, so the same vectors give the same cells.

    HNSW on raw inner products is a heuristic (the inner product is not a distance); on normalised vectors
    (``metric="cosine"``) it is the well-behaved case. The HNSW graph is built on one OpenMP thread (with
    several, the order of insertions and so the graph can change from run to run); the previous thread count is
    restored. Build time is kept in ``build_seconds_``.

    Raises
    ------
    ValueError
        Unknown kind / metric / parameter (the message lists the valid ones), a parameter out of range, empty
        vectors, NaN / inf, zero rows with ``metric="cosine"``.
    ImportError
        A faiss kind without faiss installed (``pip install faiss-cpu``).
    """
    check_choice("build_index", "kind", kind, KINDS)
    check_choice("build_index", "metric", metric, METRICS)
    V = normalise(vectors) if metric == "cosine" else _rows("vectors", vectors)
    params = _check_params(kind, params, len(V))
    start = time.perf_counter()
    if kind == "numpy":
        index = V
    else:
        faiss = _faiss()
        d = V.shape[1]
        if kind == "exact":
            index = faiss.IndexFlatIP(d)
            index.add(V)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, params["M"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params["ef_construction"]
            with one_faiss_thread():
                index.add(V)
        else:
            quantiser = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantiser, d, params["nlist"], faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = params["seed"]
            index.train(V)
            index.add(V)
    out = VectorIndex(kind, metric, index, len(V), V.shape[1], params)
    out.set_params(**{name: params[name] for name in SEARCH_PARAMS.get(kind, ())})
    out.build_seconds_ = time.perf_counter() - start
    return out


class VectorIndex:
    """An index over ``ntotal`` vectors of dimension ``dim``: ``search(queries, k) -> (scores, positions)``.

    Built by :func:`build_index` (read its parameters there) or :func:`load_index`. Attributes: ``kind``,
    ``metric``, ``dim``, ``ntotal``, ``params`` (every parameter, defaults filled in), ``build_seconds_``.
    """

    def __init__(self, kind: str, metric: str, index, ntotal: int, dim: int, params: dict):
        self.kind = kind
        self.metric = metric
        self.ntotal = int(ntotal)
        self.dim = int(dim)
        self.params = dict(params)
        self.build_seconds_ = 0.0
        self._index = index

    def __repr__(self) -> str:
        params = "".join(f", {k}={v}" for k, v in self.params.items())
        return f"VectorIndex(kind={self.kind!r}, metric={self.metric!r}, ntotal={self.ntotal}, dim={self.dim}{params})"

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best indexed vectors for every query, best first.

        Parameters
        ----------
        queries : array (n_queries, dim), or one 1-d query (answered as one row)
        k : int, 1..ntotal

        Returns
        -------
        (scores, positions): float32 and int64 arrays (n_queries, k); ``positions`` are rows of the indexed
        vectors. An approximate index may find fewer than k (an IVF search whose probed cells hold fewer than k
        vectors): the missing places are position ``-1`` with score ``-inf``.

        Raises
        ------
        ValueError
            k not a positive integer or larger than ``ntotal`` (both numbers named); queries of another
            dimension (both dimensions named); NaN / inf in the queries; zero queries with ``metric="cosine"``.
        """
        k = _check_k(k, self.ntotal)
        Q = normalise(queries) if self.metric == "cosine" else _rows("queries", queries)
        if Q.shape[1] != self.dim:
            _rows("queries", Q, dim=self.dim)
        if self.kind == "numpy":
            return exact_search(self._index, Q, k)
        scores, positions = self._index.search(Q, k)
        missing = positions < 0
        if missing.any():
            scores[missing] = -np.inf
        return scores.astype(np.float32, copy=False), positions.astype(np.int64, copy=False)

    def set_params(self, **params) -> VectorIndex:
        """Change search-time parameters without rebuilding: ``ef_search`` (hnsw) or ``nprobe`` (ivf).

        Returns the index itself. Raises ValueError for a parameter this kind has not, or a value below 1.
        """
        allowed = SEARCH_PARAMS.get(self.kind, ())
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"set_params: {unknown} cannot be changed on a {self.kind!r} index; its search-time "
                             f"parameters are: {list(allowed) or 'none'} (the others need build_index again)")
        for name, value in params.items():
            if not is_int(value) or value < 1:
                raise ValueError(f"{self.kind}: {name} must be an integer >= 1, got {value!r}")
            self.params[name] = int(value)
            if name == "ef_search":
                self._index.hnsw.efSearch = int(value)
            else:
                self._index.nprobe = min(int(value), self.params["nlist"])
        return self

    def save(self, path) -> Path:
        """Write the index to one ``.npz`` file (the faiss index serialised, or the vectors for ``"numpy"``,
        plus kind, metric and parameters as JSON). Returns the path. Read it back with :func:`load_index`."""
        path = Path(path)
        meta = {"format": _FORMAT, "kind": self.kind, "metric": self.metric, "dim": self.dim,
                "ntotal": self.ntotal, "params": self.params}
        data = self._index if self.kind == "numpy" else _faiss().serialize_index(self._index)
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), data=data)
        path.write_bytes(buffer.getvalue())
        return path


def load_index(path) -> VectorIndex:
    """Read an index written by :meth:`VectorIndex.save`; it answers exactly as the saved one did.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not an index saved by :meth:`VectorIndex.save` (the message says so and how to make one).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no index file at {path}")
    fix = "build one with build_index(vectors, kind=...) and write it with index.save(path)"
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(stored["meta"].tobytes().decode())
            data = stored["data"]
    except (ValueError, KeyError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a saved VectorIndex ({type(exc).__name__}: {exc}); {fix}") from exc
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a saved VectorIndex (no {_FORMAT!r} header); {fix}")
    index = data if meta["kind"] == "numpy" else _faiss().deserialize_index(data)
    out = VectorIndex(meta["kind"], meta["metric"], index, meta["ntotal"], meta["dim"], meta["params"])
    out.set_params(**{name: meta["params"][name] for name in SEARCH_PARAMS.get(meta["kind"], ())})
    return out


# --------------------------------------------------------------------------------------------
# measuring an index
# --------------------------------------------------------------------------------------------
def recall_at_k(found_positions, true_positions) -> float:
    r"""Recall of an approximate search against the exact one:
    :math:`\frac{1}{n_q}\sum_q \frac{|\mathrm{found}_q \cap \mathrm{true}_q|}{k}`, with k = the width of
    ``true_positions`` (the exact top k). ``found_positions`` may be wider (its first k count) or padded with -1.

    Raises ValueError if the two have a different number of queries or ``found`` is narrower than ``true``.
    """
    found, true = np.atleast_2d(np.asarray(found_positions)), np.atleast_2d(np.asarray(true_positions))
    if len(found) != len(true) or found.shape[1] < true.shape[1] or true.size == 0:
        raise ValueError(f"found_positions {found.shape} and true_positions {true.shape} must have the same queries "
                         "(rows), and found at least as many columns as true (k)")
    k = true.shape[1]
    hits = [len(set(f[:k][f[:k] >= 0].tolist()) & set(t.tolist())) for f, t in zip(found, true)]
    return float(np.mean(hits) / k)


def query_latency(index: VectorIndex, queries, k: int, *, repeats: int = 1) -> np.ndarray:
    """Seconds per query, one query per ``search`` call (the way a service answers one request at a time).

    Each query is answered ``repeats`` times and its fastest time kept (the others mostly measure the machine's
    other work). Timings use whatever thread count faiss has; wrap the call in :func:`one_faiss_thread` (or
    ``faiss.omp_set_num_threads(1)``) for single-threaded numbers (the exact ``"numpy"`` kind: BLAS threads,
    ``threadpoolctl.threadpool_limits(1)``). Returns an array (n_queries,).
    """
    if not is_int(repeats) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    Q = _rows("queries", queries, dim=index.dim)
    index.search(Q[:1], k)  # warm-up (and the checks of k)
    times = np.empty(len(Q))
    for j in range(len(Q)):
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            index.search(Q[j:j + 1], k)
            best = min(best, time.perf_counter() - start)
        times[j] = best
    return times


def latency_summary(times) -> dict:
    """``{"p50_ms", "p99_ms", "mean_ms"}`` of per-query times in seconds (the median, the 99th percentile — the
    slow tail a user notices — and the mean), in milliseconds."""
    t = np.asarray(times, dtype=np.float64) * 1000.0
    if t.size == 0:
        raise ValueError("no timings to summarise")
    return {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99)), "mean_ms": float(t.mean())}

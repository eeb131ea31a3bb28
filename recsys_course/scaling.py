r"""Where one machine ends (notebook 15): the memory of the course's :class:`~recsys_course.models.ALS` as formulas,
measured, and extrapolated.

The course's ALS (notebook 04) keeps, for ``n_u`` users, ``n_i`` items, ``N`` ratings and ``k`` factors (8-byte
floats; sparse indices of ``b`` bytes, 4 while SciPy can use int32, else 8):

* **factors** — :math:`P` and :math:`Q`, :math:`8k(n_u + n_i)` bytes, plus the new side's matrix while a half-step
  builds it, :math:`8k\max(n_u, n_i)`;
* **ratings in sparse form** — the residuals as CSR twice (:math:`E` for the user step, :math:`E^\top` for the item
  step): :math:`2(8 + b)N + b(n_u + n_i + 2)`;
* **bookkeeping** — what ``fit`` derives from the frame once per model: row positions of users and items (8 bytes
  each), the seen-matrix (4-byte values, ``b``-byte indices), the residual vector, twice (ALS fits its bias
  baseline through the same protocol): :math:`2(16 + 4 + b + 8)N` bytes;
* **Gram solves** — a half-step solves its rows in blocks of ``block`` rows: ``block`` systems
  :math:`k \times k` and their right-hand sides, :math:`8\,\text{block}(k^2 + k)`, plus each rating of the block
  gathered with its factor row, :math:`8(k + 4)` bytes per rating (on average :math:`N\,\text{block}/n` of them
  for a side of ``n`` rows);
* **the training-RMSE pass** — after each iteration ``(P[users] * Q[items]).sum(1)`` gathers two
  :math:`N \times k` arrays (NumPy multiplies into the first temporary instead of allocating a third):
  :math:`2 \cdot 8kN`. At ``k = 32`` that is 512 bytes per rating, more than everything else together.

The solves and the RMSE pass never coexist, so the peak is the persistent part (factors, sparse ratings,
bookkeeping) plus the larger of the two transients: :func:`als_memory` returns the breakdown.
:func:`measure_als` measures the real thing (``tracemalloc`` sees NumPy's allocations) and :func:`fit_growth` fits
:math:`y = a\,n^b` in log-log space to extrapolate.
"""
from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .checks import check_int, check_number

__all__ = ["als_memory", "human_bytes", "measure_als", "fit_growth", "Growth", "synthetic_ratings",
           "CATALOGUES", "GIB"]

GIB = 2 ** 30
_INT32_MAX = 2 ** 31 - 1

#: Sizes (users, items, ratings) of the catalogues section 1 evaluates; ml-25m from GroupLens' README
#: (162,541 users, 59,047 rated films, 25,000,095 ratings) and a made-up large service.
CATALOGUES = {
    "ml-latest-small": (610, 9_724, 100_836),
    "ml-1m": (6_040, 3_706, 1_000_209),
    "ml-25m": (162_541, 59_047, 25_000_095),
    "100M users × 10M items × 10B": (100_000_000, 10_000_000, 10_000_000_000),
}

#: The rows of :func:`als_memory`'s breakdown, in order; the last is the peak.
COMPONENTS = ("factors", "ratings (sparse)", "bookkeeping", "Gram solves", "training-RMSE pass", "peak")


def _index_bytes(n_rows: int, n_cols: int, n_ratings: int) -> int:
    """SciPy's CSR indices: int32 while every index and count fits, else int64."""
    return 4 if max(n_rows, n_cols, n_ratings) <= _INT32_MAX else 8


def als_memory(n_users: int, n_items: int, n_ratings: int, n_factors: int = 32, *, block: int = 2048) -> pd.Series:
    """Bytes the course's ALS needs for a problem of this size, by component (see the module docstring).

    Returns a Series indexed by :data:`COMPONENTS` (floats, bytes): ``factors``, ``ratings (sparse)``,
    ``bookkeeping`` (persistent), ``Gram solves`` and ``training-RMSE pass`` (transients of one half-step and of
    the end of an iteration), and ``peak`` = persistent + the larger transient.

    >>> als_memory(2, 3, 4, 1)["factors"]   # P (2 × 1) and Q (3 × 1), plus the new P while it is built: 8 · 7
    56.0
    """
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_ratings", n_ratings),
                        ("n_factors", n_factors), ("block", block)):
        check_int("als_memory", name, value)
    u, i, n, k = float(n_users), float(n_items), float(n_ratings), float(n_factors)
    b = _index_bytes(n_users, n_items, n_ratings)
    factors = 8 * k * (u + i) + 8 * k * max(u, i)
    sparse = 2 * (8 + b) * n + b * (u + i + 2)
    bookkeeping = 2 * (16 + 4 + b + 8) * n
    per_block = max(min(1.0, block / u), min(1.0, block / i)) * n   # ratings in one block of the larger share
    gram = 8 * min(block, max(u, i)) * (k * k + k) + 8 * (k + 4) * per_block
    rmse_pass = 2 * 8 * k * n
    peak = factors + sparse + bookkeeping + max(gram, rmse_pass)
    return pd.Series([factors, sparse, bookkeeping, gram, rmse_pass, peak], index=list(COMPONENTS), dtype=float,
                     name=f"{n_users:,} × {n_items:,}, {n_ratings:,} ratings, k={n_factors}")


def human_bytes(n: float) -> str:
    """``n`` bytes in binary units, three significant digits: ``human_bytes(3 * 2**30) == "3 GiB"``, ``"1.5 KiB"``."""
    check_number("human_bytes", "n", n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}" if n < 1000 else f"{n:,.0f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def synthetic_ratings(n_ratings: int, *, per_user: int = 100, items_per_user: float = 0.4, seed: int = 0):
    """A ratings frame of about ``n_ratings`` ratings from the course's generator
    (:func:`recsys_course.synthetic.make_synthetic`): ``n_ratings // per_user`` users with MovieLens' long-tailed
    activity around ``per_user`` ratings each, and ``items_per_user`` films per user (at least ``2 · per_user``)."""
    from .synthetic import Shape, activity, make_synthetic

    check_int("synthetic_ratings", "n_ratings", n_ratings, low=100)
    check_int("synthetic_ratings", "per_user", per_user, low=20)
    check_number("synthetic_ratings", "items_per_user", items_per_user, positive=True)
    n_users = max(2, n_ratings // per_user)
    n_items = max(2 * per_user, int(items_per_user * n_users))
    counts = activity(Shape(n_users, n_items, n_users * per_user, 20, min(n_items, 20 * per_user)), seed)
    return make_synthetic(n_users=n_users, n_items=n_items, n_factors=16, ratings_per_user=counts, n_genres=18,
                          seed=seed).ratings


def measure_als(train: pd.DataFrame, n_factors: int = 32, n_iters: int = 2, **params) -> dict:
    """Fit the course's ``ALS(n_factors, n_iters, **params)`` on ``train`` once and measure it.

    Returns ``n_users``, ``n_items``, ``n_ratings``, ``peak_bytes`` (the largest memory NumPy and Python held
    at once during ``fit``, by ``tracemalloc``: the input frame, made before, does not count), ``seconds_per_iter``
    and ``cpu_seconds_per_iter`` (wall and process CPU time of ``fit`` divided by ``n_iters``; the bias baseline and
    the sparse matrices, built once, are included, so a fit of few iterations overstates the per-iteration cost a
    little). Tracing slows allocation-heavy Python code slightly; the timing comes from the same run.
    """
    from .models import ALS

    check_int("measure_als", "n_iters", n_iters)
    model = ALS(n_factors=n_factors, n_iters=n_iters, **params)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(train)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] - base
    if not was_tracing:
        tracemalloc.stop()
    return {"n_users": model.n_users, "n_items": model.n_items, "n_ratings": len(train), "peak_bytes": peak,
            "seconds_per_iter": wall / n_iters, "cpu_seconds_per_iter": cpu / n_iters}


@dataclass(frozen=True)
class Growth:
    r"""A power law :math:`y = a\,n^b` fitted to measurements (:func:`fit_growth`)."""

    a: float
    b: float

    def predict(self, n) -> np.ndarray | float:
        """:math:`a\\,n^b` (an array for an array)."""
        out = self.a * np.asarray(n, dtype=float) ** self.b
        return float(out) if out.ndim == 0 else out

    def solve(self, y: float) -> float:
        """The size ``n`` at which the curve reaches ``y``: :math:`(y / a)^{1/b}`."""
        check_number("Growth.solve", "y", y, positive=True)
        return float((y / self.a) ** (1.0 / self.b))

    def __str__(self) -> str:
        return f"{self.a:.4g} · n^{self.b:.3f}"


def fit_growth(sizes, values) -> Growth:
    r"""Least-squares line through :math:`(\log n, \log y)`: :math:`\log y = \log a + b \log n`.

    ``sizes`` and ``values`` are positive, at least two distinct sizes. An exponent ``b`` near 1 is linear growth
    (memory in the number of ratings), above 1 faster than linear.
    """
    n = np.asarray(sizes, dtype=float)
    y = np.asarray(values, dtype=float)
    if n.shape != y.shape or n.ndim != 1:
        raise ValueError(f"fit_growth: sizes and values must be two 1-D sequences of the same length, got shapes "
                         f"{n.shape} and {y.shape}")
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(y)) and np.all(n > 0) and np.all(y > 0)):
        raise ValueError("fit_growth: sizes and values must be finite and > 0 (a log-log fit)")
    if len(np.unique(n)) < 2:
        raise ValueError("fit_growth: needs at least two distinct sizes to fit a slope")
    b, log_a = np.polyfit(np.log(n), np.log(y), 1)
    return Growth(float(np.exp(log_a)), float(b))

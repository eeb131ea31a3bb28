"""Plausible wrong answers to the exercises of notebook 15; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import tracemalloc

from recsys_course.exercises.nb15 import _bytes, _peak_mib, _wr_step
from recsys_course.models import ALS


# ------------------------------------------------------------------------------------------------ 15.factor_and_rating_bytes
def _bytes_one_orientation(n_users, n_items, n_ratings, k):
    return _bytes(n_users, n_items, n_ratings, k, orientations=1)


def _bytes_float32_values(n_users, n_items, n_ratings, k):
    return _bytes(n_users, n_items, n_ratings, k, value=4)


def _bytes_no_pointers(n_users, n_items, n_ratings, k):
    return _bytes(n_users, n_items, n_ratings, k, indptr=False)


def _bytes_k_squared(n_users, n_items, n_ratings, k):
    return _bytes(n_users, n_items, n_ratings, k, k_power=2)


def _bytes_factors_only(n_users, n_items, n_ratings, k):
    return float(8 * k * (n_users + n_items))


# ------------------------------------------------------------------------------------------------ 15.als_wr_user_step
def _wr_unscaled(item_factors, rated_items, ratings, reg):
    return _wr_step(item_factors, rated_items, ratings, reg, scale="one")


def _wr_catalogue(item_factors, rated_items, ratings, reg):
    return _wr_step(item_factors, rated_items, ratings, reg, scale="n_items")


def _wr_squared(item_factors, rated_items, ratings, reg):
    return _wr_step(item_factors, rated_items, ratings, reg, scale="n_u2")


# ------------------------------------------------------------------------------------------------ 15.peak_memory
def _peak_bytes(train, n_factors):
    return _peak_mib(train, n_factors) * 2 ** 20


def _peak_default_k(train, n_factors):
    return _peak_mib(train, 32)


def _peak_current(train, n_factors):
    tracemalloc.start()
    ALS(n_factors=n_factors, n_iters=2).fit(train)
    current = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return current / 2 ** 20


WRONG = {
    "15.factor_and_rating_bytes": [
        ("one CSR orientation", _bytes_one_orientation),
        ("float32 rating values", _bytes_float32_values),
        ("no row pointers", _bytes_no_pointers),
        ("k² per row", _bytes_k_squared),
        ("factors only", _bytes_factors_only),
    ],
    "15.als_wr_user_step": [
        ("λ not scaled", _wr_unscaled),
        ("scaled by the catalogue", _wr_catalogue),
        ("scaled by n_u²", _wr_squared),
    ],
    "15.peak_memory": [
        ("bytes, not MiB", _peak_bytes),
        ("the default k", _peak_default_k),
        ("the memory after the fit", _peak_current),
    ],
    "15.quiz": [
        ("the factors dominate", {1: "b", 2: "a", 3: "a", 4: 8 * 32 * 110e6 / 2 ** 30, 5: "a"}),
        ("float32", {1: "a", 2: "b", 3: "a", 4: 8 * 32 * 110e6 / 2 ** 30, 5: "a"}),
        ("drop improves predictions", {1: "a", 2: "a", 3: "c", 4: 8 * 32 * 110e6 / 2 ** 30, 5: "a"}),
        ("GB instead of GiB", {1: "a", 2: "a", 3: "a", 4: 28.2, 5: "a"}),
        ("a worse algorithm", {1: "a", 2: "a", 3: "a", 4: 8 * 32 * 110e6 / 2 ** 30, 5: "b"}),
    ],
}

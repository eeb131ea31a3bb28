"""Plausible wrong answers to the exercises of notebook 12; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import numpy as np

from recsys_course.exercises.nb12 import _decayed, _gini, factor_model
from recsys_course.models import ALS, Popularity
from recsys_course.stream import feedback_loop


# ------------------------------------------------------------------------------------------------ 12.decayed_popularity
def _decay_exp(movie_ids, timestamps, half_life, now):
    return _decayed(movie_ids, timestamps, half_life, now, base=np.exp(-1))


def _decay_counts(movie_ids, timestamps, half_life, now):
    return _decayed(movie_ids, timestamps, half_life, now, decay=False)


def _decay_not_to_now(movie_ids, timestamps, half_life, now):
    return _decayed(movie_ids, timestamps, half_life, now, final=False)


def _decay_growing(movie_ids, timestamps, half_life, now):
    out = {}
    for m, t in zip(movie_ids, timestamps):
        out[m] = out.get(m, 0.0) + 2.0 ** ((t - timestamps[0]) / half_life)
    return out


# ------------------------------------------------------------------------------------------------ 12.exposure_gini
def _gini_shown_only(shown, n_items):
    return _gini(shown, n_items, all_films=False)


def _gini_complement(shown, n_items):
    return 1 - _gini(shown, n_items)


def _gini_n_minus_one(shown, n_items):
    return _gini(shown, n_items) * n_items / max(n_items - 1, 1)


def _gini_unsorted(shown, n_items):
    x = np.bincount(np.asarray(shown), minlength=n_items).astype(float)
    n = x.size
    k = np.arange(1, n + 1)
    return float(np.sum((2 * k - n - 1) * x) / (n * x.sum()))


# ------------------------------------------------------------------------------------------------ 12.epsilon
def _greedy(world, epsilon, rounds):
    return feedback_loop(world, factor_model, rounds=rounds, epsilon=0.0, seed=0)


def _popularity(world, epsilon, rounds):
    return feedback_loop(world, Popularity, rounds=rounds, epsilon=epsilon, seed=0)


def _default_als(world, epsilon, rounds):
    return feedback_loop(world, ALS, rounds=rounds, epsilon=epsilon, seed=0)


def _last_row(world, epsilon, rounds):
    return feedback_loop(world, factor_model, rounds=rounds, epsilon=epsilon, seed=0).iloc[-1]


WRONG = {
    "12.decayed_popularity": [
        ("e-folding instead of half-life", _decay_exp),
        ("plain counts", _decay_counts),
        ("not decayed to now", _decay_not_to_now),
        ("weights growing in time", _decay_growing),
    ],
    "12.exposure_gini": [
        ("films never shown left out", _gini_shown_only),
        ("1 − Gini", _gini_complement),
        ("divided by n − 1", _gini_n_minus_one),
        ("counts not sorted", _gini_unsorted),
    ],
    "12.epsilon": [
        ("ε ignored (greedy)", _greedy),
        ("Popularity's loop", _popularity),
        ("ALS with its defaults", _default_als),
        ("the last row only", _last_row),
    ],
    "12.quiz": [
        ("learn first", {1: "c", 2: 0.011, 3: "a", 4: "a"}),
        ("variance instead of standard error", {1: "a", 2: 0.000119, 3: "a", 4: "a"}),
        ("users dislike films", {1: "a", 2: 0.011, 3: "b", 4: "a"}),
        ("durability for speed", {1: "a", 2: 0.011, 3: "a", 4: "b"}),
    ],
}

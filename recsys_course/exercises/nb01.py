"""Checks of notebook 01 (evaluation): average precision, the future-leak share, reciprocal rank.

Each check compares the student's function with the package's reference on small hand-made cases and a few
edge cases, and raises AssertionError with a hint when they differ.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..metrics import map_at_k, mrr_at_k
from ..split import future_in_train, leave_last_n, random_split
from . import exercise

# (recommended, relevant, k, what the case tests)
_RANKING_CASES = [
    (["a", "b", "c", "d", "e"], {"b", "e", "f"}, 5, "the worked example of the notebook"),
    (["b", "e", "f", "a", "c"], {"b", "e", "f"}, 5, "a perfect list"),
    (["a", "c", "d"], {"x", "y"}, 3, "no hits at all (the answer is 0.0)"),
    (["x", "a", "y", "b", "z"], {"x", "y", "z", "w", "v", "u", "t"}, 3,
     "more relevant items (7) than k (3): normalise by min(|relevant|, k)"),
    (["a", "b", "c", "x"], {"x"}, 3, "the only relevant item is just outside the top k"),
    (["a", "x"], {"x", "y"}, 5, "a list shorter than k"),
    (["x", "a", "b", "c"], {"x"}, 1, "k = 1"),
]


def _close(got, want, tol=1e-9) -> bool:
    try:
        return math.isclose(float(got), float(want), rel_tol=tol, abs_tol=tol)
    except (TypeError, ValueError):
        return False


def _check_ranking(answer, reference, name: str) -> None:
    for recommended, relevant, k, what in _RANKING_CASES:
        want = reference(recommended, relevant, k)
        got = answer(list(recommended), set(relevant), k)
        assert _close(got, want), (
            f"{name}({recommended}, {sorted(relevant)}, k={k}) returned {got!r}, expected {want:.6g} — "
            f"case: {what}.")


@exercise("01.average_precision")
def check_average_precision(answer) -> None:
    _check_ranking(answer, map_at_k, "average_precision_at_k")


@exercise("01.reciprocal_rank")
def check_reciprocal_rank(answer) -> None:
    _check_ranking(answer, mrr_at_k, "reciprocal_rank_at_k")


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])


def _synthetic(seed: int = 0, n_users: int = 12, n_items: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        items = rng.choice(n_items, size=rng.integers(3, 15), replace=False)
        times = rng.integers(0, 50, size=len(items))  # few distinct seconds: ties happen
        rows += [(u, int(i), float(rng.integers(1, 6)), int(t)) for i, t in zip(items, times)]
    return _frame(rows)


@exercise("01.future_leak_share")
def check_future_leak_share(answer) -> None:
    train = _frame([(1, 10, 4.0, 100), (1, 11, 3.0, 300), (2, 10, 5.0, 200), (2, 12, 2.0, 250)])
    cases = [
        (_frame([(1, 12, 4.0, 200)]), 1.0, "user 1 rated this at t=200 but has a train rating at t=300"),
        (_frame([(2, 11, 3.0, 400)]), 0.0, "user 2's test rating is after all of their train ratings"),
        (_frame([(1, 13, 5.0, 300)]), 0.0,
         "a tie in time (t=300 in both) is not a leak: use a strict <, not <="),
        (_frame([(3, 10, 4.0, 50)]), 0.0,
         "user 3 has no train ratings, so nothing of their future can be in train (count the row, as no leak)"),
        (_frame([(1, 12, 4.0, 200), (1, 13, 5.0, 300), (2, 11, 3.0, 400), (3, 10, 4.0, 50)]), 0.25,
         "one leaking row out of four: the share is over all test rows, unseen users included"),
    ]
    for test, want, what in cases:
        got = answer(train.copy(), test.copy())
        assert _close(got, want), f"on the hand-built frame got {got!r}, expected {want} — {what}."
    data = _synthetic()
    for name, (tr, te) in {"random_split": random_split(data, 0.3, seed=3),
                           "leave_last_n(n=2)": leave_last_n(data, 2)}.items():
        want = float(future_in_train(tr, te).mean())
        got = answer(tr.copy(), te.copy())
        assert _close(got, want), (f"on a {name} of a small synthetic frame got {got!r}, expected {want:.6g}. "
                                   "Compare each test timestamp with the newest train timestamp of the same user.")

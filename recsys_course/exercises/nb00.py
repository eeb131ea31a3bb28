"""Checks for the exercises of notebook 00 (setup and data).

Each check calls the student's function on small hand-made frames, on edge cases and on MovieLens
latest-small, and compares with a reference written here; a wrong answer raises AssertionError with a hint.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from ..config import ITEM, RATING, TIME, USER
from ..data import load_movielens, toy_purchases, toy_ratings
from . import exercise

YEAR_2000 = 946_684_800  # 2000-01-01 00:00:00 UTC
YEAR_S = 365 * 24 * 3600


@lru_cache(maxsize=1)
def _movielens_ratings() -> pd.DataFrame:
    return load_movielens().ratings


def _frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME])
    df[TIME] = df[TIME].astype(np.int64)
    return df


def _call(fn, ratings, *args):
    """Call the student's function on a copy, so a function that edits its input cannot spoil the next case."""
    return fn(ratings.copy(), *args)


def _number(value, what: str) -> float:
    if isinstance(value, (pd.Series, pd.DataFrame, np.ndarray, list, tuple)):
        raise AssertionError(f"{what} should be a single number, got a {type(value).__name__}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} should be a number, got {value!r}") from None


# --------------------------------------------------------------------------------------------
# 00.dense_core_density
# --------------------------------------------------------------------------------------------
def _dense_core_density(ratings: pd.DataFrame, min_user: int, min_item: int) -> float:
    n_u = ratings.groupby(USER).size()
    n_i = ratings.groupby(ITEM).size()
    users = n_u.index[n_u >= min_user]
    items = n_i.index[n_i >= min_item]
    if len(users) == 0 or len(items) == 0:
        return 0.0
    inside = ratings[USER].isin(users) & ratings[ITEM].isin(items)
    return float(inside.sum() / (len(users) * len(items)))


def _core_cases():
    # users 1-3 rate a lot; user 3 only rates rare items, so the block has a row of zeros; user 4 rates little
    rows = [(1, "a", 5, 0), (1, "b", 4, 1), (1, "c", 3, 2), (2, "a", 4, 3), (2, "b", 2, 4), (2, "x", 1, 5),
            (3, "x", 3, 6), (3, "y", 4, 7), (3, "z", 2, 8), (4, "a", 5, 9), (5, "b", 4, 10)]
    small = _frame(rows)
    return [
        ("the toy rating matrix, min_user=4, min_item=4", toy_ratings(), 4, 4),
        ("the toy rating matrix, min_user=1, min_item=1 (no filter: the plain density 19/30)", toy_ratings(), 1, 1),
        ("the toy purchases, min_user=3, min_item=2", toy_purchases(), 3, 2),
        ("a frame where a qualifying user has no rating on a qualifying movie (min_user=3, min_item=3)",
         small, 3, 3),
        ("a frame where a qualifying user has no rating on a qualifying movie (min_user=3, min_item=2)",
         small, 3, 2),
        ("thresholds nobody reaches (expected 0.0)", toy_ratings(), 100, 100),
    ]


@exercise("00.dense_core_density")
def check_dense_core_density(fn):
    for label, df, mu, mi in _core_cases():
        want = _dense_core_density(df, mu, mi)
        got = _number(_call(fn, df, mu, mi), "dense_core_density(...)")
        if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
            hint = ""
            if want == 0.0:
                hint = " When no user or no movie passes its threshold, the block is empty: return 0.0."
            else:
                hint = (" Count the users and the movies over the FULL frame, keep the users with >= min_user "
                        "ratings (rows) and the movies with >= min_item ratings (columns), then divide the "
                        "ratings inside that block by rows × columns — a qualifying user with no rating "
                        "in the block still counts as a row.")
            raise AssertionError(f"on {label}: expected {want:.6f}, got {got:.6f}.{hint}")
    ml = _movielens_ratings()
    want = _dense_core_density(ml, 100, 50)
    got = _number(_call(fn, ml, 100, 50), "dense_core_density(...)")
    assert math.isclose(got, want, rel_tol=1e-9), (
        f"on MovieLens with min_user=100, min_item=50: expected {want:.6f}, got {got:.6f}")


# --------------------------------------------------------------------------------------------
# 00.half_star_share
# --------------------------------------------------------------------------------------------
def _half_star_share(ratings: pd.DataFrame) -> float:
    return float(((ratings[RATING] * 2) % 2 == 1).mean())


@exercise("00.half_star_share")
def check_half_star_share(fn):
    cases = [
        ("the toy rating matrix (whole stars only)", toy_ratings()),
        ("a frame with 0.5, 1.0, 2.5, 3.0, 4.5 stars",
         _frame([(1, 1, 0.5, 0), (1, 2, 1.0, 1), (2, 1, 2.5, 2), (2, 2, 3.0, 3), (3, 1, 4.5, 4)])),
        ("a frame with only half stars", _frame([(1, 1, 3.5, 0), (2, 1, 1.5, 1)])),
        ("MovieLens latest-small", _movielens_ratings()),
    ]
    for label, df in cases:
        want = _half_star_share(df)
        got = _number(_call(fn, df), "half_star_share(...)")
        if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
            hint = ""
            if math.isclose(got, 1 - want, abs_tol=1e-12):
                hint = " That is the share of WHOLE stars — flip the condition."
            elif math.isclose(got, 100 * want, rel_tol=1e-9):
                hint = " Return a share between 0 and 1, not a percentage."
            else:
                hint = " A half star is a rating r with 2·r odd (0.5, 1.5, …, 4.5)."
            raise AssertionError(f"on {label}: expected {want:.6f}, got {got:.6f}.{hint}")


# --------------------------------------------------------------------------------------------
# 00.busiest_year
# --------------------------------------------------------------------------------------------
def _busiest_year(ratings: pd.DataFrame) -> int:
    years = pd.to_datetime(ratings[TIME], unit="s", utc=True).dt.year
    counts = years.value_counts()
    return int(counts[counts == counts.max()].index.min())


@exercise("00.busiest_year")
def check_busiest_year(fn):
    y = YEAR_2000
    cases = [
        ("a frame with 2 ratings in 2000 and 3 in 2001",
         _frame([(1, 1, 4, y + 10), (1, 2, 3, y + 20), (2, 1, 5, y + YEAR_S + 86_400),
                 (2, 2, 2, y + YEAR_S + 2 * 86_400), (3, 1, 1, y + YEAR_S + 3 * 86_400)])),
        ("a tie: 2 ratings in 2000 and 2 in 2001 (expected the earlier year, 2000)",
         _frame([(1, 1, 4, y + YEAR_S + 86_400), (1, 2, 3, y + 20), (2, 1, 5, y + 5),
                 (2, 2, 2, y + YEAR_S + 2 * 86_400)])),
        ("a frame where the busiest year is 1970 (timestamps near 0)",
         _frame([(1, 1, 4, 0), (1, 2, 3, 1), (2, 1, 5, y)])),
        ("MovieLens latest-small", _movielens_ratings()),
    ]
    for label, df in cases:
        want = _busiest_year(df)
        got = _call(fn, df)
        if isinstance(got, (pd.Series, pd.Index, np.ndarray, list, tuple)):
            raise AssertionError(f"on {label}: return one year as an int, got a {type(got).__name__}")
        if isinstance(got, (float, np.floating)) and float(got).is_integer():
            got = int(got)
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            raise AssertionError(f"on {label}: return the year as an int (like 2000), got {got!r}")
        if int(got) != want:
            hint = (" Timestamps are seconds since 1970-01-01 UTC: pd.to_datetime(ratings['timestamp'], unit='s')"
                    ".dt.year gives the year; count ratings per year and pick the largest count (on a tie, the "
                    "earliest year).")
            raise AssertionError(f"on {label}: expected {want}, got {int(got)}.{hint}")

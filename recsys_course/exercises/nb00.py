"""Checks of notebook 00 (setup and data): the dense core's density, the half-star share averaged over users,
the share of a year's ratings given by its most active user, an experiment (how strongly the synthetic users'
choice of what to rate lifts their average rating) and the questionnaire.

Each function check calls the student's function on every case first (hand-made frames, edge cases and
MovieLens latest-small) and compares with a reference written here. A hint that names a mistake is shown only
when the student's numbers equal that mistake's numbers on every case; otherwise the hint points to the idea.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from ..config import ITEM, RATING, TIME, USER
from ..data import toy_purchases, toy_ratings
from . import exercise
from .answers import Wrong, call, close, fmt, keyed_numbers, numbers_on, recognised
from .quiz import Choice, Numeric, register_quiz

YEAR_2000 = 946_684_800  # 2000-01-01 00:00:00 UTC
DAY = 86_400


@cache
def _movielens_ratings() -> pd.DataFrame:
    from ..data import load_movielens

    return load_movielens().ratings


def _frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME])
    df[RATING] = df[RATING].astype(float)
    df[TIME] = df[TIME].astype(np.int64)
    return df


# --------------------------------------------------------------------------------------------- 00.dense_core_density
def _qualifying(ratings: pd.DataFrame, min_user: int, min_item: int):
    n_u = ratings.groupby(USER).size()
    n_i = ratings.groupby(ITEM).size()
    return n_u.index[n_u >= min_user], n_i.index[n_i >= min_item]


def _dense_core_density(ratings: pd.DataFrame, min_user: int, min_item: int) -> float:
    users, items = _qualifying(ratings, min_user, min_item)
    if len(users) == 0 or len(items) == 0:
        return 0.0
    inside = ratings[USER].isin(users) & ratings[ITEM].isin(items)
    return float(inside.sum() / (len(users) * len(items)))


def _core_without_empty_rows(ratings, min_user, min_item) -> float:
    """The mistake: the density of the filtered frame, whose rows and columns are only those with a rating."""
    users, items = _qualifying(ratings, min_user, min_item)
    inside = ratings[ratings[USER].isin(users) & ratings[ITEM].isin(items)]
    if inside.empty:
        return 0.0
    return float(len(inside) / (inside[USER].nunique() * inside[ITEM].nunique()))


def _core_counted_after_user_filter(ratings, min_user, min_item) -> float:
    """The mistake: movies counted on the frame already filtered to the qualifying users."""
    n_u = ratings.groupby(USER).size()
    kept = ratings[ratings[USER].isin(n_u.index[n_u >= min_user])]
    return _dense_core_density(kept, 1, min_item) if not kept.empty else 0.0


def _core_strict(ratings, min_user, min_item) -> float:
    return _dense_core_density(ratings, min_user + 1, min_item + 1)


def _core_cases():
    # users 1-3 rate a lot; user 3 rates only rare movies, so the block has an empty row; users 4, 5 rate little
    rows = [(1, "a", 5, 0), (1, "b", 4, 1), (1, "c", 3, 2), (2, "a", 4, 3), (2, "b", 2, 4), (2, "x", 1, 5),
            (3, "x", 3, 6), (3, "y", 4, 7), (3, "z", 2, 8), (4, "a", 5, 9), (5, "b", 4, 10)]
    small = _frame(rows)
    return [
        ("the toy rating matrix, min_user=4, min_item=4", toy_ratings(), 4, 4),
        ("the toy rating matrix, min_user=1, min_item=1 (no filter: the plain density 19/30)", toy_ratings(), 1, 1),
        ("the toy purchases, min_user=3, min_item=2", toy_purchases(), 3, 2),
        ("a frame where a qualifying user has no rating on a qualifying movie (min_user=3, min_item=3)",
         small, 3, 3),
        ("the same frame with min_user=3, min_item=2", small, 3, 2),
        ("thresholds nobody reaches (min_user=100, min_item=100 on the toy matrix)", toy_ratings(), 100, 100),
        ("MovieLens with min_user=100, min_item=50", _movielens_ratings(), 100, 50),
    ]


@exercise("00.dense_core_density")
def check_dense_core_density(answer) -> str:
    cases = _core_cases()
    got = numbers_on(answer, cases, "dense_core_density(...)")
    want = [_dense_core_density(*args) for _, *args in cases]
    for (label, *_), g, w in zip(cases, got, want):
        if not np.isfinite(g):
            if w == 0.0:
                raise Wrong(f"on {label}: got {fmt(g)}. When no user or no movie qualifies, the block has no "
                            "cells — the exercise asks for 0.0 in that case, not a division by zero.")
            raise Wrong(f"on {label}: got {fmt(g)}, expected {fmt(w)} — a division by zero? The block here "
                        "has qualifying users and movies.")
    if all(close(g, w, rtol=1e-9, atol=1e-12) for g, w in zip(got, want)):
        ml = cases[-1][1]
        overall = len(ml) / (ml[USER].nunique() * ml[ITEM].nunique())
        return (f"on MovieLens (100, 50) the core is {fmt(want[-1])} full, {want[-1] / overall:.0f} times the whole "
                f"matrix's {fmt(overall)}.")
    hint = recognised(got, cases, [
        ("You measured the density of the filtered ratings, whose rows are only the users with a rating inside "
         "the block. A qualifying user with no rating on a qualifying movie is still a row of the block (an "
         "empty one), and likewise for the columns: divide by (qualifying users) × (qualifying movies).",
         _core_without_empty_rows),
        ("You counted the movies' ratings after keeping only the qualifying users. Both counts are taken on the "
         "full ratings frame, before any filtering.", _core_counted_after_user_filter),
        ("\"At least min_user ratings\" includes a user with exactly min_user; your numbers are those of a strict "
         "comparison.", _core_strict),
        ("Your numbers are 100 times too large: return a share between 0 and 1, not a percentage.",
         lambda *a: 100 * _dense_core_density(*a)),
    ])
    label, g, w = next((c[0], g, w) for c, g, w in zip(cases, got, want) if not close(g, w, rtol=1e-9, atol=1e-12))
    raise Wrong(f"on {label}: expected {fmt(w, 6)}, got {fmt(g, 6)}. " + (hint or (
        "Rows = users with at least min_user ratings, columns = movies with at least min_item ratings (both "
        "counted on the full frame); density = ratings inside the block / (rows × columns), as in section 3.")))


# --------------------------------------------------------------------------------------------- 00.half_stars_by_user
def _is_half(ratings: pd.DataFrame) -> pd.Series:
    return (ratings[RATING] * 2).round() % 2 == 1


def _half_share_by_user(ratings: pd.DataFrame) -> float:
    return float(_is_half(ratings).groupby(ratings[USER]).mean().mean())


def _half_share_over_ratings(ratings: pd.DataFrame) -> float:
    return float(_is_half(ratings).mean())


def _users_with_a_half_star(ratings: pd.DataFrame) -> float:
    return float(_is_half(ratings).groupby(ratings[USER]).any().mean())


def _half_cases():
    return [
        ("the toy rating matrix (whole stars only)", toy_ratings()),
        ("three users: 0.5, 1, 2.5, 3, 4.5 | 3.5 | 4, 5, 2, 1",
         _frame([(1, 1, 0.5, 0), (1, 2, 1.0, 1), (1, 3, 2.5, 2), (1, 4, 3.0, 3), (1, 5, 4.5, 4),
                 (2, 1, 3.5, 5),
                 (3, 1, 4.0, 6), (3, 2, 5.0, 7), (3, 3, 2.0, 8), (3, 4, 1.0, 9)])),
        ("two users: 4.5, 1.5 | 4, 4.5, 5, 3",
         _frame([(1, 1, 4.5, 0), (1, 2, 1.5, 1), (2, 1, 4.0, 2), (2, 2, 4.5, 3), (2, 3, 5.0, 4), (2, 4, 3.0, 5)])),
        ("MovieLens latest-small", _movielens_ratings()),
    ]


@exercise("00.half_stars_by_user")
def check_half_stars_by_user(answer) -> str:
    cases = _half_cases()
    got = numbers_on(answer, cases, "half_star_share_by_user(...)")
    want = [_half_share_by_user(df) for _, df in cases]
    if all(np.isfinite(g) and close(g, w, rtol=1e-9, atol=1e-12) for g, w in zip(got, want)):
        overall = _half_share_over_ratings(cases[-1][1])
        return (f"on MovieLens the average user gives {fmt(want[-1])} of their ratings as half stars; over all "
                f"ratings the share is {fmt(overall)}.")
    hint = recognised(got, cases, [
        ("That is the share over all ratings, in which a user with 2,000 ratings counts 100 times as much as one "
         "with 20. The exercise asks for each user's own share first, then the plain mean over the users.",
         _half_share_over_ratings),
        ("That is the share of users who gave at least one half star; the exercise asks for the mean, over the "
         "users, of the share of half stars among each user's ratings.", _users_with_a_half_star),
        ("Your numbers are 1 minus the expected ones on every case: the share of whole stars, not of half stars.",
         lambda df: 1 - _half_share_by_user(df)),
        ("Your numbers are 100 times too large: return a share between 0 and 1, not a percentage.",
         lambda df: 100 * _half_share_by_user(df)),
    ])
    label, g, w = next((c[0], g, w) for c, g, w in zip(cases, got, want)
                       if not (np.isfinite(g) and close(g, w, rtol=1e-9, atol=1e-12)))
    raise Wrong(f"on {label}: expected {fmt(w, 6)}, got {fmt(g, 6)}. " + (hint or (
        "A half star is a rating r for which 2r is odd — 0.5, 1.5, …, 4.5, both ends included. Compute each "
        "user's share of half stars among their own ratings, then average those shares over the users.")))


# --------------------------------------------------------------------------------------------- 00.top_rater_share
def _year_of(ratings: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(ratings[TIME], unit="s", utc=True).dt.year


def _top_rater_share(ratings: pd.DataFrame, year: int) -> float:
    in_year = ratings[_year_of(ratings) == year]
    if in_year.empty:
        return 0.0
    return float(in_year.groupby(USER).size().max() / len(in_year))


def _top_rater_count(ratings, year) -> float:
    in_year = ratings[_year_of(ratings) == year]
    return float(in_year.groupby(USER).size().max()) if len(in_year) else 0.0


def _top_rater_over_all(ratings, year) -> float:
    in_year = ratings[_year_of(ratings) == year]
    return float(in_year.groupby(USER).size().max() / len(ratings)) if len(in_year) else 0.0


def _overall_top_rater(ratings, year) -> float:
    """The mistake: the share, in that year, of the user with the most ratings over all years."""
    in_year = ratings[_year_of(ratings) == year]
    if in_year.empty:
        return 0.0
    top = ratings.groupby(USER).size().idxmax()
    return float((in_year[USER] == top).mean())


def _top_cases():
    y = YEAR_2000
    year_2001 = y + 366 * DAY  # 2000 is a leap year
    rows = [(1, 1, 4, y + 10), (1, 2, 3, y + 20), (1, 3, 5, y + 30),                       # 2000: user 1 × 3
            (2, 1, 2, y + 40), (2, 4, 4, year_2001 - 1800),                                   # 2000: user 2 × 2
            (2, 2, 5, year_2001 + DAY), (2, 3, 1, year_2001 + 2 * DAY),                       # 2001: user 2 × 2
            (3, 1, 3, year_2001 + 3 * DAY), (3, 2, 4, year_2001 + 4 * DAY), (3, 4, 2, year_2001 + 5 * DAY),
            (3, 5, 4, year_2001 + 6 * DAY), (3, 6, 5, year_2001 + 7 * DAY)]                   # 2001: user 3 × 5
    small = _frame(rows)
    ml = _movielens_ratings()
    return [
        ("the hand-made frame, year 2000 (one rating at 23:30 UTC on 31 December)", small, 2000),
        ("the hand-made frame, year 2001", small, 2001),
        ("a year without ratings (1999 in the hand-made frame)", small, 1999),
        ("MovieLens, 2017", ml, 2017),
        ("MovieLens, 1998", ml, 1998),
    ]


@exercise("00.top_rater_share")
def check_top_rater_share(answer) -> str:
    cases = _top_cases()
    got = numbers_on(answer, cases, "top_rater_share(...)")
    want = [_top_rater_share(*args) for _, *args in cases]
    for (label, *_), g, w in zip(cases, got, want):
        if not np.isfinite(g):
            if w == 0.0:
                raise Wrong(f"on {label}: got {fmt(g)}. A year without ratings has no top rater; the exercise "
                            "asks for 0.0 then.")
            raise Wrong(f"on {label}: got {fmt(g)}, expected {fmt(w)} — a division by zero? That year has ratings.")
    if all(close(g, w, rtol=1e-9, atol=1e-12) for g, w in zip(got, want)):
        return (f"one user gave {fmt(want[3])} of MovieLens' 2017 ratings and {fmt(want[4])} of 1998's: single "
                "heavy users shape the yearly counts.")
    hint = recognised(got, cases, [
        ("Your numbers are counts of ratings; the exercise asks for their share of the year's ratings.",
         _top_rater_count),
        ("You divided by all the ratings of the frame; the share is over the ratings of that year only.",
         _top_rater_over_all),
        ("You took the user with the most ratings over all years; the exercise asks for the most active user "
         "of that year.", _overall_top_rater),
    ])
    label, g, w = next((c[0], g, w) for c, g, w in zip(cases, got, want) if not close(g, w, rtol=1e-9, atol=1e-12))
    if hint is None and g == 0.0 and w > 0:
        hint = ("You found no rating in that year, but there are some: the timestamps are seconds since "
                "1970-01-01 UTC — check how you turn them into calendar years.")
    raise Wrong(f"on {label}: expected {fmt(w, 6)}, got {fmt(g, 6)}. " + (hint or (
        "Keep the ratings whose UTC calendar year is `year`, count them per user, and divide the largest "
        "count by the number of ratings in that year.")))


# --------------------------------------------------------------------------------------------- experiment
TEMPERATURES = (0.5, 2.0, 1000.0)
GAP_TOLERANCE = 0.002  # make_synthetic is deterministic for a seed; the slack only covers summation order
SYNTH_SEED = 0


def _synth_sizes() -> tuple[int, int, int]:
    """What notebook 00 passes in the lesson profile: cfg.synth_users, cfg.synth_items, cfg.synth_per_user."""
    return 500, 1000, 40


@cache
def _gaps(n_users: int, n_items: int, per_user: int, temperature: float) -> tuple[float, float, float]:
    """(mean observed − mean true of all pairs, mean observed − mean true of the rated pairs, mean observed)."""
    from ..synthetic import make_synthetic

    synth = make_synthetic(n_users=n_users, n_items=n_items, ratings_per_user=per_user, temperature=temperature,
                           seed=SYNTH_SEED)
    truth = synth.true_ratings()
    observed = synth.ratings[RATING].to_numpy()
    rated = truth[synth.ratings[USER].to_numpy() - 1, synth.ratings[ITEM].to_numpy() - 1]
    return float(observed.mean() - truth.mean()), float(observed.mean() - rated.mean()), float(observed.mean())


@exercise("00.selection_gap", kind="experiment", inputs=_synth_sizes)
def check_selection_gap(answer, n_users, n_items, per_user) -> str:
    got = call(answer, n_users, n_items, per_user)
    got = keyed_numbers(got, TEMPERATURES, "{T: gap}", lambda t: f"the gap at T = {fmt(t)}")
    n_users, n_items, per_user = int(n_users), int(n_items), int(per_user)
    ref = {t: _gaps(n_users, n_items, per_user, t) for t in TEMPERATURES}
    for t in TEMPERATURES:
        want, to_rated, observed = ref[t]
        if abs(got[t] - want) <= GAP_TOLERANCE:
            continue
        if abs(got[t] + want) <= GAP_TOLERANCE:
            hint = "your gap has the wrong sign: the mean observed rating minus the mean true rating, not the reverse."
        elif abs(got[t] - to_rated) <= GAP_TOLERANCE:
            hint = ("that is the gap to the true ratings of the rated pairs only, which leaves just the noise and "
                    "the rounding to half stars; the exercise compares with the true rating of ALL user–item pairs.")
        elif abs(got[t] - observed) <= GAP_TOLERANCE:
            hint = "that is the mean observed rating itself; subtract the mean true rating of all pairs."
        else:
            hint = (f"build the world as section 6 does (the sizes passed to the check, seed {SYNTH_SEED}) and "
                    "change only the temperature; the gap is the mean observed rating minus the mean of "
                    "true_ratings() over all pairs.")
        raise Wrong(f"at T = {fmt(t)} your gap is {fmt(got[t])}, the course's run gives {fmt(want)} (tolerance "
                    f"±{fmt(GAP_TOLERANCE)}): {hint}")
    at_one = _gaps(n_users, n_items, per_user, 1.0)[0]
    return (f"gap by temperature: {', '.join(f'T = {fmt(t)} → {fmt(got[t])}' for t in TEMPERATURES)} (the course's "
            f"run: {', '.join(fmt(ref[t][0]) for t in TEMPERATURES)}; section 6's T = 1 gives {fmt(at_one)}). "
            "The pickier the users, the more the observed ratings overstate the average taste; when they pick "
            "at random the gap is gone.")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("00", [
    Choice("In the sparsity picture of section 3, the block of the most active users × the most popular movies "
           "is about a third full, while a random block of the same size is under 2 % full. Why?",
           {"a": "the random block draws its columns from the whole catalogue, including movies nobody rated",
            "b": "ratings pile up on a few heavy users and a few popular movies, and the corner is where both meet",
            "c": "the most active users rated mostly recent movies, and the popular movies are recent",
            "d": "the image is drawn at a lower resolution, so the dots of the corner merge"},
           answer="b",
           why="the long tail of movies and the skewed activity of users (section 4) concentrate the known cells; "
               "the corner selects exactly those rows and columns.",
           hints={"a": "both blocks draw from the rated movies (the index of item_n), so every column has a rating "
                       "somewhere.",
                  "c": "the blocks are chosen by counts of ratings, not by dates.",
                  "d": "the densities in the titles are computed from the 0/1 matrix, not read off the image."}),
    Choice("Every half-star value is rarer than its whole-star neighbours. Which fact of section 4 explains part of "
           "that?",
           {"a": "the loader rounds some half stars to whole stars when it checks the files",
            "b": "the data hold no half star before 15 May 2003, so the ratings before that day are whole stars",
            "c": "half stars are only possible above 2.5 stars",
            "d": "GroupLens removed the half-star ratings of users with fewer than 20 ratings"},
           answer="b",
           why="the site evidently offered only whole stars until 2003: about 30,000 ratings are whole stars by "
               "construction; from that day on, 43 % of the ratings are half stars.",
           hints={"a": "the loader verifies checksums; it does not change a single value.",
                  "c": "0.5 and 1.5 stars appear in the table of ratings per star value.",
                  "d": "the 20-ratings rule selects users, not ratings, and it applies to every user in the data."}),
    Choice("334 of the 610 users gave all their ratings on a single day. What does that mean for a split that cuts "
           "all ratings at one date (notebook 01)?",
           {"a": "the test ratings would be older than the training ratings",
            "b": "nothing much: one day is short compared with 22 years of data",
            "c": "the cut mostly separates users: many test users would have no rating in train",
            "d": "the test set would hold only half-star ratings"},
           answer="c",
           why="a user whose ratings all fall on one day lands entirely on one side of the cut; the users after the "
               "cut are mostly newcomers (cold-start users).",
           hints={"a": "a cut in time puts every test rating after every training rating.",
                  "b": "if all of a user's ratings share one day, on how many sides of a cut can they lie?",
                  "d": "half stars exist since 2003, but the ratings after a recent cut mix whole and half stars."}),
    Numeric("A dense matrix for ml-25m (about 162,000 users × 59,000 movies) stored as float32 (4 bytes per cell) "
            "would take how many gigabytes (10⁹ bytes)?",
            answer=162_000 * 59_000 * 4 / 1e9, tol=1.0,
            why="162,000 × 59,000 cells × 4 bytes ≈ 38 GB — half of the 77 GB of float64 in section 3, and still "
                "far more than the few hundred MB of the (user, item, rating) triples.",
            hint="Multiply the number of cells by the bytes per cell; section 3's 77 GB is the same matrix in "
                 "float64 (8 bytes per cell)."),
    Numeric("Four movies: one has all 10 ratings, the other three have none. What is their Gini coefficient?",
            answer=0.75, tol=0.001,
            why="ascending counts 0, 0, 0, 10 with weights 2k − 5 = −3, −1, 1, 3: G = 3·10 / (4·10) = 0.75, which "
                "is (n − 1)/n, the largest value n counts can reach.",
            hint="Use the formula of section 4 with the counts sorted ascending, (0, 0, 0, 10), and n = 4."),
])

"""Checks of notebook 01 (evaluation): average precision from the positions of the hits, the hit rate of a random
list, the share of the training set that lies in a user's future, an experiment (the ranking track with a random
hold-out instead of each user's last 10 ratings) and the questionnaire.

Each function check calls the student's function on every case first (hand-made cases, edge cases, small
splits) and compares with a reference written here. A hint that names a mistake is shown only when the
student's numbers equal that mistake's numbers on every case; otherwise the hint points to the idea.
"""
from __future__ import annotations

import math
from functools import cache

import numpy as np
import pandas as pd

from ..config import ITEM, RATING, TIME, USER
from . import exercise
from .answers import Wrong, call, close, fmt, number, numbers_on, recognised
from .quiz import Choice, Numeric, register_quiz


def _first_wrong(cases, got, want):
    return next((c[0], g, w) for c, g, w in zip(cases, got, want)
                if not (np.isfinite(g) and close(g, w, rtol=1e-9, atol=1e-12)))


def _all_right(got, want) -> bool:
    return all(np.isfinite(g) and close(g, w, rtol=1e-9, atol=1e-12) for g, w in zip(got, want))


# --------------------------------------------------------------------------------------------- 01.average_precision
def _ap(positions, n_relevant, k, *, divisor="min", precision="hits so far", cut=True) -> float:
    total, hits = 0.0, 0
    for p in positions:
        if cut and p > k:
            break
        hits += 1
        total += hits / p if precision == "hits so far" else 1 / p
    if divisor == "min":
        d = min(n_relevant, k)
    elif divisor == "relevant":
        d = n_relevant
    elif divisor == "hits":
        d = hits
    else:
        d = k
    return total / d if d else 0.0


_AP_CASES = [
    ("the worked example of section 4.1: hits at positions 2 and 5, |Rel| = 3, k = 5", [2, 5], 3, 5),
    ("a perfect list: hits at 1, 2, 3, |Rel| = 3, k = 5", [1, 2, 3], 3, 5),
    ("no hit at all, |Rel| = 2, k = 10 (the answer is 0)", [], 2, 10),
    ("more relevant films than k: hits at 1 and 3, |Rel| = 7, k = 3", [1, 3], 7, 3),
    ("hits at 2, 4, 7 and 12 with k = 10 (the hit at 12 is outside the top 10), |Rel| = 6", [2, 4, 7, 12], 6, 10),
    ("k = 1 with a hit at position 1, |Rel| = 1", [1], 1, 1),
    ("hits at 3, 6, 9, 10, |Rel| = 4, k = 10", [3, 6, 9, 10], 4, 10),
]


@exercise("01.average_precision")
def check_average_precision(answer) -> str:
    got = numbers_on(answer, _AP_CASES, "average_precision_from_hits(...)")
    want = [_ap(*args) for _, *args in _AP_CASES]
    if _all_right(got, want):
        return ("AP adds (hits so far) / position at each hit, so the j-th hit at position p is worth j/p: an early "
                "hit lifts every later term too.")
    hint = recognised(got, _AP_CASES, [
        ("You divided by |Rel|. The course divides by min(|Rel|, k), the most hits a list of length k can hold, "
         "so a perfect list scores 1 even for a user with more relevant films than k.",
         lambda p, r, k: _ap(p, r, k, divisor="relevant")),
        ("You averaged the precisions over the hits found. Divide by min(|Rel|, k) instead: a list that finds "
         "one relevant film at the top and misses the others must not score 1.",
         lambda p, r, k: _ap(p, r, k, divisor="hits")),
        ("You divided by k; the course divides by min(|Rel|, k), the most hits a list of length k can hold.",
         lambda p, r, k: _ap(p, r, k, divisor="k")),
        ("At a hit, the precision of the list cut there is (hits so far) / position, not 1 / position — the "
         "sum of 1 / position is a reciprocal-rank idea, not average precision.",
         lambda p, r, k: _ap(p, r, k, precision="one")),
        ("A hit after position k is outside the top k and adds nothing.", lambda p, r, k: _ap(p, r, k, cut=False)),
    ])
    label, g, w = _first_wrong(_AP_CASES, got, want)
    raise Wrong(f"on {label}: expected {fmt(w, 6)}, got {fmt(g, 6)}. " + (hint or (
        "AP@k = (1 / min(|Rel|, k)) × the sum, over the hits within the first k positions, of the precision of "
        "the list cut at that hit (see the table of section 4.1).")))


# --------------------------------------------------------------------------------------------- 01.random_hit_rate
def _hit_rate(n, r, k) -> float:
    return 1.0 - math.comb(n - r, k) / math.comb(n, k)


_HIT_CASES = [
    ("10 candidates, 3 relevant, a list of 4", 10, 3, 4),
    ("100 candidates, 1 relevant, a list of 10", 100, 1, 10),
    ("50 candidates, 5 relevant, a list of 1", 50, 5, 1),
    ("20 candidates, none relevant, a list of 5 (the answer is 0)", 20, 0, 5),
    ("6 candidates, 2 relevant, a list of 5 (only 4 films are not relevant, so every list hits)", 6, 2, 5),
    ("the ranking track's typical user: 9,000 candidates, 6 relevant, a list of 10", 9000, 6, 10),
]


@exercise("01.random_hit_rate")
def check_random_hit_rate(answer) -> str:
    got = numbers_on(answer, _HIT_CASES, "random_hit_rate(...)")
    want = [_hit_rate(*args) for _, *args in _HIT_CASES]
    for (label, *_), g in zip(_HIT_CASES, got):
        if not np.isfinite(g):
            raise Wrong(f"on {label}: got {fmt(g)}. Factorials of thousands overflow floating point; write the "
                        "probability of missing every relevant film as a product of k fractions, or use exact "
                        "integer binomial coefficients.")
    if _all_right(got, want):
        return (f"a random list of 10 hits for {fmt(want[-1])} of such users; Popularity's hit rate of about 0.25 "
                f"(section 5.3) is about {0.2465 / want[-1]:.0f} times that.")
    hint = recognised(got, _HIT_CASES, [
        ("That is the probability of drawing with replacement (independent draws). A list never shows a film "
         "twice: each miss leaves one film fewer to draw from.", lambda n, r, k: 1 - (1 - r / n) ** k),
        ("That is the expected number of hits in the list, which can exceed 1; the hit rate is the probability "
         "of at least one hit.", lambda n, r, k: k * r / n),
        ("That is the probability that the list misses every relevant film; the hit rate is its complement.",
         lambda n, r, k: 1 - _hit_rate(n, r, k)),
        ("That is the chance that one film drawn at random is relevant; the list has k of them.",
         lambda n, r, k: r / n),
    ])
    label, g, w = _first_wrong(_HIT_CASES, got, want)
    raise Wrong(f"on {label}: expected {fmt(w, 6)}, got {fmt(g, 6)}. " + (hint or (
        "Count the lists of k distinct films that contain no relevant film, out of all lists of k distinct "
        "films; the hit rate is 1 minus that share.")))


# --------------------------------------------------------------------------------------------- 01.train_future_share
def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME]).astype({RATING: float, TIME: np.int64})


def _train_future(train, test, *, use="min", strict=True, over="train", only_test_users=False) -> float:
    edge = test.groupby(USER)[TIME].agg(use)
    limit = train[USER].map(edge)
    later = (train[TIME] > limit) if strict else (train[TIME] >= limit)
    if only_test_users:
        later = later[limit.notna()]
    if over == "test":
        return float(later.sum() / len(test))
    return float(later.mean()) if len(later) else 0.0


def _test_side(train, test) -> float:
    newest = test[USER].map(train.groupby(USER)[TIME].max())
    return float((test[TIME] < newest).mean())


def _synthetic(seed: int = 0, n_users: int = 12, n_items: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        items = rng.choice(n_items, size=rng.integers(3, 15), replace=False)
        times = rng.integers(0, 50, size=len(items))  # few distinct seconds: ties happen
        rows += [(u, int(i), float(rng.integers(1, 6)), int(t)) for i, t in zip(items, times)]
    return _frame(rows)


@cache
def _future_cases():
    from ..split import leave_last_n, random_split

    train = _frame([(1, 10, 4, 100), (1, 11, 3, 300), (2, 10, 5, 200), (2, 12, 2, 250), (4, 13, 4, 500)])
    data = _synthetic()
    return [
        ("user 1's training rating at t=300 comes after their test rating at t=200 (one row of five)",
         train, _frame([(1, 12, 4, 200), (2, 11, 3, 400)])),
        ("a tie in time: user 1's test rating is at t=300, like their newest training rating",
         train, _frame([(1, 12, 4, 300), (2, 11, 3, 400)])),
        ("user 1 has test ratings at t=50 and t=400: both their training ratings are after the first one",
         train, _frame([(1, 12, 4, 50), (1, 14, 2, 400), (2, 11, 3, 400)])),
        ("user 3 appears only in test (cold start) and user 4 only in train",
         train, _frame([(3, 10, 4, 50), (2, 11, 3, 210)])),
        ("a random_split of a small synthetic frame", *random_split(data, 0.3, seed=3)),
        ("a leave_last_n(n=2) split of the same frame (never any future)", *leave_last_n(data, 2)),
    ]


@exercise("01.train_future_share")
def check_train_future_share(answer) -> str:
    cases = _future_cases()
    got = numbers_on(answer, cases, "train_future_share(...)")
    want = [_train_future(tr, te) for _, tr, te in cases]
    if _all_right(got, want):
        return "apply it to section 2's splits: how much of the random split's train is the users' own future?"
    hint = recognised(got, cases, [
        ("That is section 2's user-future share, counted over the test rows. This exercise turns it around: the "
         "share of the TRAINING rows made after the same user's first test rating.", _test_side),
        ("A training rating made at the same second as the user's first test rating is not later than it: use a "
         "strict comparison.", lambda tr, te: _train_future(tr, te, strict=False)),
        ("You compared with the user's newest test rating. A training rating is already in the user's future "
         "once it is later than their OLDEST test rating.", lambda tr, te: _train_future(tr, te, use="max")),
        ("You divided by the number of test rows; the share is over the training rows.",
         lambda tr, te: _train_future(tr, te, over="test")),
        ("You left out the training rows of users who have no test rating. They belong to the training set too "
         "(and are not from anybody's future): count them, as not from the future.",
         lambda tr, te: _train_future(tr, te, only_test_users=True)),
    ])
    label, g, w = _first_wrong(cases, got, want)
    raise Wrong(f"on {label}: expected {fmt(w, 6)}, got {fmt(g, 6)}. " + (hint or (
        "For each training row, compare its timestamp with the oldest test timestamp of the same user; the "
        "answer is the share of training rows that are strictly later.")))


# --------------------------------------------------------------------------------------------- experiment
HOLDOUT_SIZE = 10
HOLDOUT_SEED = 0
HOLDOUT_TOLERANCE = 0.01  # NDCG@10; other seeds move the lesson run's value by about ±0.003


@cache
def _ratings():
    from ..data import load_movielens

    return (load_movielens().ratings,)


def _fingerprint(ratings) -> tuple:
    return len(ratings), int(ratings[USER].sum()), int(ratings[ITEM].sum()), int(ratings[TIME].sum())


_EVALUATIONS: dict[tuple, pd.Series] = {}


def _evaluation(ratings, how: str) -> pd.Series:
    """Popularity (or, for ``how="bias"``, BiasBaseline) fitted and scored the course's way on one split."""
    from ..evaluate import evaluate
    from ..models import BiasBaseline, Popularity
    from ..split import random_split, ranking_split, validation_split

    key = (_fingerprint(ratings), how)
    if key not in _EVALUATIONS:
        if how == "last 10":
            train, test = ranking_split(ratings)
        elif how == "random 20 %":
            train, test = random_split(ratings, test_size=0.2, seed=42)
        else:  # "random 10" and "bias": the random hold-out of the exercise
            train, test = validation_split(ratings, how="random", size=HOLDOUT_SIZE, seed=HOLDOUT_SEED)
        model = BiasBaseline() if how == "bias" else Popularity()
        _EVALUATIONS[key] = evaluate(model.fit(train), train, test)
    return _EVALUATIONS[key]


@exercise("01.random_holdout", kind="experiment", inputs=_ratings)
def check_random_holdout(answer, ratings) -> str:
    got = number(call(answer, ratings), "random_holdout_ndcg(...)")
    rows = {"random 10": _evaluation(ratings, "random 10")}
    want = float(rows["random 10"]["ndcg@10"])
    if abs(got - want) > HOLDOUT_TOLERANCE:
        rows["last 10"] = _evaluation(ratings, "last 10")
        suspects = [
            (float(rows["last 10"]["ndcg@10"]), "that is the leaderboard's number, with each user's LAST 10 ratings "
                                                "in test; the exercise draws each user's 10 test ratings at random."),
            (float(rows["random 10"]["hit@10"]), "that is Popularity's hit rate; the exercise asks for NDCG@10."),
        ]
        hint = next((h for value, h in suspects if abs(got - value) <= HOLDOUT_TOLERANCE), None)
        if hint is None:
            for how, h in [("random 20 %", "that is section 3's random 20 % of all ratings; the exercise holds out "
                                           "10 random ratings of every user, like the ranking track."),
                           ("bias", "that is BiasBaseline's NDCG@10; the exercise scores Popularity.")]:
                if abs(got - float(_evaluation(ratings, how)["ndcg@10"])) <= HOLDOUT_TOLERANCE:
                    hint = h
                    break
        raise Wrong(f"your NDCG@10 is {fmt(got)}, the course's run gives {fmt(want)} (tolerance "
                    f"±{fmt(HOLDOUT_TOLERANCE)}): " + (hint or (
                        f"hold out {HOLDOUT_SIZE} random ratings of every user with split.validation_split in its "
                        f"random mode (seed {HOLDOUT_SEED}), fit Popularity with its defaults on the rest, and score "
                        "it with evaluate, as section 5.3 does.")))
    last = float(_evaluation(ratings, "last 10")["ndcg@10"])
    return (f"Popularity's NDCG@10 with 10 random test ratings per user: yours {fmt(got)}, the course's {fmt(want)} "
            f"(hit rate {fmt(float(rows['random 10']['hit@10']))}); with each user's last 10 (the leaderboard): "
            f"{fmt(last)}. Same users, same number of test ratings — only which ratings are held out changed, and "
            f"the score is {want / last:.1f} times as high.")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("01", [
    Choice("In section 3, Popularity's NDCG@10 is more than twice as high on the random split as on the per-user "
           "temporal split. Why?",
           {"a": "the random split has more test users",
            "b": "Popularity is fitted on the test ratings under the random split",
            "c": "random test ratings look like the rest of a user's history, full of popular classics, while a "
                 "user's last ratings are more often newer or rarer films",
            "d": "the random split gives each user many more relevant test films"},
           answer="c",
           why="the random split tests a user on ratings spread over their whole history; the per-user split tests "
               "what they rated last, which popular counts from the past predict less well.",
           hints={"a": "both splits test the same 610 users (see the leakage table).",
                  "b": "Popularity is fitted on train only under every split; what differs is which ratings are in "
                       "test.",
                  "d": "the two splits have about 16 relevant test films per user each — far from enough to double "
                       "the score."}),
    Choice("The global temporal cut gives Popularity a higher NDCG@10 than the per-user temporal split. What does "
           "that show?",
           {"a": "that the global cut is the easier task, since it leaks the least",
            "b": "nothing about the model: only 28 known users remain, heavy raters with about twice as many "
                 "relevant test films, and a long relevant list is easier to hit",
            "c": "that cold-start users are easier to recommend to",
            "d": "that the per-user split leaks more of the future into train"},
           answer="b",
           why="the two numbers are averaged over different users: the global cut's score rests on 28 people with "
               "about 34 relevant test films each, not on the 610 of the per-user split.",
           hints={"a": "leaking makes scores higher, not lower; a split that leaks less scoring higher needs "
                       "another explanation.",
                  "c": "the cold-start users were dropped before scoring (known users only).",
                  "d": "the per-user split lets no user's own future into train (0 % in the leakage table)."}),
    Choice("Why are reg_user and reg_item chosen on a validation slice of train and not on the test set?",
           {"a": "a setting chosen to score well on the test set makes that score optimistic: it no longer "
                 "estimates how the model does on data it was not tuned on",
            "b": "the test set is too small to fit a BiasBaseline on",
            "c": "the validation slice has more ratings than the test set",
            "d": "the test users are not in train, so they cannot be scored during tuning"},
           answer="a",
           why="every choice made by looking at the test set is fitted to it; the test score is only an honest "
               "estimate if the test set played no part in building the model.",
           hints={"b": "no model is fitted on the test set either way; the question is what its score means after "
                       "choosing by it.",
                  "c": "the validation slice is smaller (about 16,000 ratings against about 20,000).",
                  "d": "the canonical splits keep every test user in train."}),
    Choice("GlobalMean's ranking row comes close to the bias model's NDCG@10. What does that say about GlobalMean?",
           {"a": "that it ranks almost as well as the bias model",
            "b": "nothing: every film gets the same score, the tie is broken by movieId, and what it scores is an "
                 "accident of how MovieLens numbered its films",
            "c": "that the global mean is a good estimate of every rating",
            "d": "that the test users mostly like films released in 1995"},
           answer="b",
           why="a model with no preference shows the lowest movieIds; that they include popular 1995 films is luck.",
           hints={"a": "a model that gives every film the same score has no ranking; look at how its ties are "
                       "broken.",
                  "c": "one score for every film cannot order them, whatever its accuracy as a rating.",
                  "d": "the list is the same for every user and comes from the catalogue's numbering, not from "
                       "the test users' tastes."}),
    Numeric("A recommended film carries 5 bits of novelty. What share of the training users rated it?",
            answer=2 ** -5, tol=0.001,
            why="novelty is −log₂ p, so p = 2⁻⁵ = 1/32 ≈ 0.031: about one user in 32.",
            hint="Novelty is −log₂ of the share of training users who rated the film; solve for the share."),
])

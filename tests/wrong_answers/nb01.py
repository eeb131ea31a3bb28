"""Plausible wrong answers to the exercises of notebook 01; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import math

from recsys_course import split
from recsys_course.evaluate import evaluate
from recsys_course.models import BiasBaseline, Popularity


# ------------------------------------------------------------------------------------------ average_precision
def _ap_sum(hit_positions, k):
    return sum(j / p for j, p in enumerate(hit_positions, start=1) if p <= k)


def _ap_over_relevant(hit_positions, n_relevant, k):
    return _ap_sum(hit_positions, k) / n_relevant


def _ap_over_hits(hit_positions, n_relevant, k):
    found = [p for p in hit_positions if p <= k]
    return _ap_sum(hit_positions, k) / len(found) if found else 0.0


def _ap_reciprocal(hit_positions, n_relevant, k):
    return sum(1 / p for p in hit_positions if p <= k) / min(n_relevant, k)


def _ap_no_cut(hit_positions, n_relevant, k):
    return sum(j / p for j, p in enumerate(hit_positions, start=1)) / min(n_relevant, k)


def _ap_over_k(hit_positions, n_relevant, k):
    return _ap_sum(hit_positions, k) / k


# ------------------------------------------------------------------------------------------ random_hit_rate
def _hit_with_replacement(n_candidates, n_relevant, k):
    return 1 - (1 - n_relevant / n_candidates) ** k


def _hit_expected_hits(n_candidates, n_relevant, k):
    return k * n_relevant / n_candidates


def _hit_miss_probability(n_candidates, n_relevant, k):
    return math.comb(n_candidates - n_relevant, k) / math.comb(n_candidates, k)


def _hit_float_factorials(n_candidates, n_relevant, k):
    def comb(a, b):
        return math.gamma(a + 1) / (math.gamma(b + 1) * math.gamma(a - b + 1)) if a >= b else 0.0
    try:
        return 1 - comb(n_candidates - n_relevant, k) / comb(n_candidates, k)
    except OverflowError:
        return float("nan")


# ------------------------------------------------------------------------------------------ train_future_share
def _test_side_share(train, test):
    return float(split.future_in_train(train, test).mean())


def _future_with_ties(train, test):
    oldest = train["userId"].map(test.groupby("userId")["timestamp"].min())
    return float((train["timestamp"] >= oldest).mean())


def _future_after_newest_test(train, test):
    newest = train["userId"].map(test.groupby("userId")["timestamp"].max())
    return float((train["timestamp"] > newest).mean())


def _future_over_test_rows(train, test):
    oldest = train["userId"].map(test.groupby("userId")["timestamp"].min())
    return float((train["timestamp"] > oldest).sum() / len(test))


def _future_test_users_only(train, test):
    oldest = train["userId"].map(test.groupby("userId")["timestamp"].min())
    known = oldest.notna()
    return float((train["timestamp"][known] > oldest[known]).mean())


# ------------------------------------------------------------------------------------------ random_holdout
def _holdout_last_10(ratings):
    train, test = split.ranking_split(ratings)
    return evaluate(Popularity().fit(train), train, test)["ndcg@10"]


def _holdout_hit_rate(ratings):
    train, test = split.validation_split(ratings, how="random", size=10, seed=0)
    return evaluate(Popularity().fit(train), train, test)["hit@10"]


def _holdout_random_20(ratings):
    train, test = split.random_split(ratings, test_size=0.2, seed=42)
    return evaluate(Popularity().fit(train), train, test)["ndcg@10"]


def _holdout_bias(ratings):
    train, test = split.validation_split(ratings, how="random", size=10, seed=0)
    return evaluate(BiasBaseline().fit(train), train, test)["ndcg@10"]


def _holdout_whole_row(ratings):
    train, test = split.validation_split(ratings, how="random", size=10, seed=0)
    return evaluate(Popularity().fit(train), train, test)


WRONG = {
    "01.average_precision": [
        ("divided by |Rel|", _ap_over_relevant),
        ("averaged over the hits found", _ap_over_hits),
        ("1/position instead of precision", _ap_reciprocal),
        ("hits after k counted", _ap_no_cut),
        ("divided by k", _ap_over_k),
    ],
    "01.random_hit_rate": [
        ("drawn with replacement", _hit_with_replacement),
        ("the expected number of hits", _hit_expected_hits),
        ("the probability of no hit", _hit_miss_probability),
        ("float factorials that overflow", _hit_float_factorials),
    ],
    "01.train_future_share": [
        ("the test-side share of section 2", _test_side_share),
        ("ties counted as future", _future_with_ties),
        ("compared with the newest test rating", _future_after_newest_test),
        ("divided by the test rows", _future_over_test_rows),
        ("only the training rows of test users", _future_test_users_only),
    ],
    "01.random_holdout": [
        ("each user's last 10 (the leaderboard)", _holdout_last_10),
        ("the hit rate instead of NDCG", _holdout_hit_rate),
        ("section 3's random 20 %", _holdout_random_20),
        ("BiasBaseline instead of Popularity", _holdout_bias),
        ("the whole evaluation row", _holdout_whole_row),
    ],
    "01.quiz": [
        ("the random split blamed on more test users", {1: "a", 2: "b", 3: "a", 4: "b", 5: 1 / 32}),
        ("the global cut read as an easier task", {1: "c", 2: "a", 3: "a", 4: "b", 5: 1 / 32}),
        ("bits read as a percentage", {1: "c", 2: "b", 3: "a", 4: "b", 5: 5}),
        ("a letter that is not an option", {1: "c", 2: "b", 3: "f", 4: "b", 5: 1 / 32}),
        ("a number where a letter is due", {1: "c", 2: "b", 3: "a", 4: 2, 5: 1 / 32}),
    ],
}

"""Plausible wrong answers to the exercises of notebook 10; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import numpy as np

from recsys_course import group as G
from recsys_course.exercises.nb10 import _copeland_wins_only, _copeland_with_excluded, _signs_summed


# ------------------------------------------------------------------------------------------------ 10.copeland
def _copeland_draws_as_wins(scores):
    s = np.asarray(scores, float)
    ok = np.isfinite(s).all(0)
    c = s[:, ok]
    above = (c[:, :, None] > c[:, None, :]).sum(0)
    wins = (above >= above.T) & ~np.eye(len(above), dtype=bool)
    out = np.full(s.shape[1], -np.inf)
    out[ok] = wins.sum(1) - (above < above.T).sum(1)
    return out


def _copeland_winner(scores):
    s = np.asarray(scores, float)
    above = (s[:, :, None] > s[:, None, :]).sum(0)
    return int(np.argmax(np.sign(above - above.T).sum(1)))


# ------------------------------------------------------------------------------------------------ 10.taking_turns
def _turns_no_removal(scores, k):
    s = np.asarray(scores, float)
    return [int(np.argmax(s[m % len(s)])) for m in range(k)]


def _turns_by_average(scores, k):
    s = np.asarray(scores, float)
    return np.argsort(-G.average(s), kind="stable")[:k].tolist()


def _turns_last_member_first(scores, k):
    s = np.asarray(scores, float)
    ok = np.isfinite(s).all(0)
    picks, m = [], len(s) - 1
    while len(picks) < min(k, int(ok.sum())):
        mine = np.where(ok, s[m], -np.inf)
        mine[picks] = -np.inf
        picks.append(int(np.argmax(mine)))
        m = (m + 1) % len(s)
    return picks


def _turns_own_minus_inf_only(scores, k):
    s = np.asarray(scores, float)
    picks, m = [], 0
    while len(picks) < min(k, s.shape[1]):
        mine = s[m].copy()
        mine[picks] = -np.inf
        if not np.isfinite(mine).any():
            break
        picks.append(int(np.argmax(mine)))
        m = (m + 1) % len(s)
    return picks


def _turns_padded(scores, k):
    s = np.asarray(scores, float)
    ok = np.isfinite(s).all(0)
    picks, m = [], 0
    while len(picks) < k:
        mine = np.where(ok, s[m], -np.inf)
        mine[picks] = -np.inf
        picks.append(int(np.argmax(mine)) if np.isfinite(mine).any() else -1)
        m = (m + 1) % len(s)
    return picks


# ------------------------------------------------------------------------------------------------ 10.least_misery_on_percentiles
def _summary(ease, groups, test, strategy, k=10, **params):
    recs = G.GroupRecommender(ease, strategy, **params).recommend(groups, k=k)
    s = G.summarise(G.evaluate_groups(recs, groups, test)[1])
    return {"mean_ndcg": s["mean_ndcg"], "min_ndcg": s["min_ndcg"], "nothing_relevant": s["nothing_relevant"]}


def _lm_raw(ease, groups, test):
    return _summary(ease, groups, test, "least_misery")


def _lm_top5(ease, groups, test):
    return _summary(ease, groups, test, "least_misery", k=5, normalise="rank")


def _average_on_percentiles(ease, groups, test):
    return _summary(ease, groups, test, "average", normalise="rank")


def _lm_list(ease, groups, test):
    return list(_summary(ease, groups, test, "least_misery", normalise="rank").values())


def _lm_missing_key(ease, groups, test):
    out = _summary(ease, groups, test, "least_misery", normalise="rank")
    del out["nothing_relevant"]
    return out


WRONG = {
    "10.copeland": [
        ("only the films it beats, not minus its losses", _copeland_wins_only),
        ("the ruled-out film votes and is scored", _copeland_with_excluded),
        ("every member's preferences summed, no majority per pair", _signs_summed),
        ("draws counted as wins", _copeland_draws_as_wins),
        ("the winner's position instead of the scores", _copeland_winner),
    ],
    "10.taking_turns": [
        ("chosen films not removed", _turns_no_removal),
        ("the average strategy's top k", _turns_by_average),
        ("the last member starts", _turns_last_member_first),
        ("only the current member's -inf rules a film out", _turns_own_minus_inf_only),
        ("padded with -1 to k films", _turns_padded),
    ],
    "10.least_misery_on_percentiles": [
        ("least misery on the raw scores", _lm_raw),
        ("lists of 5 films", _lm_top5),
        ("average on percentiles (Borda)", _average_on_percentiles),
        ("a list instead of a dict", _lm_list),
        ("a missing key", _lm_missing_key),
    ],
    "10.quiz": [
        ("the average's pick for Borda", {1: 0, 2: "b", 3: "c", 4: 0.0231, 5: "b", 6: "b"}),
        ("one member's chance instead of all four", {1: 3, 2: "b", 3: "c", 4: 0.39, 5: "b", 6: "b"}),
        ("opposite tastes on MovieLens", {1: 3, 2: "b", 3: "c", 4: 0.0231, 5: "d", 6: "b"}),
        ("a letter where a number is due", {1: "d", 2: "b", 3: "c", 4: 0.0231, 5: "b", 6: "b"}),
    ],
}

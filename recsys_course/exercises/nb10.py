"""Checks of notebook 10 (group recommendation): Copeland's rule, taking turns, an experiment (least misery on the
members' percentiles) and the questionnaire.

The function checks compare the student's strategy with a reference written here (the package has neither rule) on
the notebook's table, random tables with ties, and the edge cases the prompts name (``-inf`` films, one member, a
list longer than the candidates).
"""
from __future__ import annotations

from functools import cache

import numpy as np

from ..config import RATING, USER
from . import exercise
from .answers import Wrong, array, call, course_run, fmt, keyed_numbers
from .quiz import Choice, Numeric, register_quiz

#: section 1's table: Ann, Ben, Cat × Amélie, Brazil, Cars, Dune, Elf
TABLE = np.array([[3.5, 4.5, 1.0, 1.0, 4.0],
                  [4.0, 4.5, 1.5, 5.0, 2.0],
                  [3.0, 2.0, 2.5, 3.0, 3.5]])


# --------------------------------------------------------------------------------------------- Copeland
def _copeland(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    ok = np.isfinite(s).all(0)
    c = s[:, ok]
    above = (c[:, :, None] > c[:, None, :]).sum(0)      # above[i, j]: members who score i above j
    out = np.full(s.shape[1], -np.inf)
    out[ok] = np.sign(above - above.T).sum(1)
    return out


def _copeland_wins_only(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    ok = np.isfinite(s).all(0)
    c = s[:, ok]
    above = (c[:, :, None] > c[:, None, :]).sum(0)
    out = np.full(s.shape[1], -np.inf)
    out[ok] = (above > above.T).sum(1)
    return out


def _copeland_with_excluded(scores) -> np.ndarray:
    s = np.where(np.isfinite(scores), scores, -1e300)
    above = (s[:, :, None] > s[:, None, :]).sum(0)
    return np.sign(above - above.T).sum(1).astype(float)


def _signs_summed(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    ok = np.isfinite(s).all(0)
    c = s[:, ok]
    out = np.full(s.shape[1], -np.inf)
    out[ok] = np.sign(c[:, :, None] - c[:, None, :]).sum((0, 2))
    return out


def _copeland_cases():
    rng = np.random.default_rng(10)
    cases = [("section 1's table", TABLE)]
    for trial in range(6):
        cases.append((f"random table {trial} (whole stars, so ties)",
                      rng.integers(1, 6, (int(rng.integers(2, 6)), int(rng.integers(3, 8)))).astype(float)))
    cases.append(("one member", np.array([[2.0, 5.0, 3.0, 3.0]])))
    with_out = TABLE.copy()
    with_out[1, 2] = -np.inf   # Cars is not a candidate
    cases.append(("section 1's table with Cars ruled out (-inf for Ben)", with_out))
    return cases


@exercise("10.copeland")
def check_copeland(answer) -> None:
    for what, scores in _copeland_cases():
        want = _copeland(scores)
        got = array(call(answer, scores), "copeland(scores)", shape=(scores.shape[1],), finite=False)
        if np.isnan(got).any():
            raise Wrong(f"on {what}: got {fmt(got)} — a nan, from an infinite score in arithmetic? A film that is "
                        "not a candidate takes no part in any vote.")
        if np.array_equal(np.isneginf(got), np.isneginf(want)) and np.allclose(got[np.isfinite(want)],
                                                                               want[np.isfinite(want)]):
            continue
        hint = "a film's score is the films it beats MINUS the films that beat it."
        if np.allclose(np.nan_to_num(got, neginf=-1e9), np.nan_to_num(_copeland_wins_only(scores), neginf=-1e9)):
            hint = "you counted only the films each one beats; the films that beat it count against it."
        elif np.allclose(got, _copeland_with_excluded(scores)):
            hint = ("the film that is -inf for a member took part in the votes; a film that is not a candidate is "
                    "left out of every vote and scores -inf itself.")
        elif np.allclose(np.nan_to_num(got, neginf=-1e9), np.nan_to_num(_signs_summed(scores), neginf=-1e9)):
            hint = ("you added up every member's preference over all pairs (a Borda-like count); Copeland holds a "
                    "majority vote per pair first, and each pair counts once, as a win, a loss or a draw.")
        elif np.isfinite(got).all() and not np.isfinite(want).all():
            hint = "a film that is -inf for any member is not a candidate: return -inf for it."
        raise Wrong(f"on {what}: got {fmt(got)}, expected {fmt(want)}. {hint}")


# --------------------------------------------------------------------------------------------- taking turns
def _turns(scores, k, first: int = 0) -> list[int]:
    s = np.asarray(scores, dtype=float)
    ok = np.isfinite(s).all(0)
    n = min(int(k), int(ok.sum()))
    picks: list[int] = []
    m = first
    while len(picks) < n:
        value = np.where(ok, s[m], -np.inf)
        value[picks] = -np.inf
        picks.append(int(np.argmax(value)))
        m = (m + 1) % len(s)
    return picks


def _turns_cases():
    rng = np.random.default_rng(11)
    cases = [("section 1's table, k=5", TABLE, 5), ("section 1's table, k=3", TABLE, 3)]
    for trial in range(5):
        cases.append((f"random table {trial}", rng.integers(1, 6, (int(rng.integers(2, 5)), 12)).astype(float),
                      int(rng.integers(3, 9))))
    with_out = TABLE.copy()
    with_out[2, 1] = -np.inf   # Brazil is ruled out (-inf for Cat), although Ann would pick it first
    cases.append(("section 1's table with Brazil ruled out (-inf for Cat), k=3", with_out, 3))
    cases.append(("section 1's table, k=8 (more than the 5 films)", TABLE, 8))
    return cases


@exercise("10.taking_turns")
def check_taking_turns(answer) -> None:
    for what, scores, k in _turns_cases():
        want = _turns(scores, k)
        got = array(call(answer, scores, k), "taking_turns(scores, k)", ndim=1)
        if len(got) and not np.array_equal(got, np.round(got)):
            raise Wrong(f"on {what}: got {fmt(got)}; return the positions of the films (whole numbers), not scores")
        got = got.astype(int).tolist()
        if got == want:
            continue
        if len(got) != len(want):
            hint = (f"the list should have {len(want)} films: k, or fewer when fewer films are candidates — never "
                    "a film twice or a placeholder." if k > len(want) else
                    f"the list should have k = {k} films.")
        elif len(set(got)) < len(got):
            hint = "a film appears twice: each turn picks among the films not chosen yet."
        elif got == _turns(scores, k, first=len(scores) - 1):
            hint = "the first turn is member 0's (the first row), then member 1's, and so on."
        elif any(not np.isfinite(scores[:, j]).all() for j in got if 0 <= j < scores.shape[1]):
            hint = "a film that is -inf for ANY member is not a candidate, whoever's turn it is."
        else:
            hint = ("each turn belongs to ONE member, who picks their own favourite among the films left; ties go to "
                    "the lower position.")
        raise Wrong(f"on {what}: got {got}, expected {want}. {hint}")


# --------------------------------------------------------------------------------------------- experiment
TOLERANCE = 0.0005  # means over groups; the run is deterministic, the slack covers float summation order
KEYS = ("mean_ndcg", "min_ndcg", "nothing_relevant")


@cache
def _inputs():
    from ..data import load_movielens
    from ..group import make_groups
    from ..models import EASE
    from ..split import ranking_split

    train, test = ranking_split(load_movielens().ratings)
    pool = np.sort(test.loc[test[RATING] >= 4, USER].unique())
    groups = make_groups(train, 100, 4, "dissimilar", seed=0, users=pool)
    return EASE().fit(train), groups, test


def _least_misery_run(ease, groups, test, normalise="rank") -> dict:
    from ..group import GroupRecommender, evaluate_groups, summarise

    recs = GroupRecommender(ease, "least_misery", normalise=normalise).recommend(groups, k=10)
    summary = summarise(evaluate_groups(recs, groups, test)[1])
    return {key: float(summary[key]) for key in KEYS}


def _raw_least_misery(ease, groups, test) -> dict:
    return _least_misery_run(ease, groups, test, normalise=None)


@exercise("10.least_misery_on_percentiles", kind="experiment", inputs=_inputs)
def check_least_misery_on_percentiles(answer, ease, groups, test) -> str:
    got = call(answer, ease, groups, test)
    got = keyed_numbers(got, KEYS, '{"mean_ndcg": ..., "min_ndcg": ..., "nothing_relevant": ...}',
                        lambda key: f"the {key} of your run")
    want = course_run(_least_misery_run, ease, groups, test)
    if all(abs(got[key] - want[key]) <= TOLERANCE for key in KEYS):
        raw = course_run(_raw_least_misery, ease, groups, test)
        return (f"least misery on percentiles: mean NDCG@10 {fmt(got['mean_ndcg'])}, nothing relevant "
                f"{fmt(got['nothing_relevant'])} (the course's run: {fmt(want['mean_ndcg'])}, "
                f"{fmt(want['nothing_relevant'])}); on the raw scores it was {fmt(raw['mean_ndcg'])} and "
                f"{fmt(raw['nothing_relevant'])}.")
    raw = course_run(_raw_least_misery, ease, groups, test)
    if all(abs(got[key] - raw[key]) <= TOLERANCE for key in KEYS):
        hint = ("these are least misery's numbers on the RAW scores (section 4.1); the experiment puts each member's "
                "scores on one scale first.")
    else:
        hint = ("build the lists with least misery on the members' percentiles, 10 films per group, excluding the "
                "films any member has seen (the default), and average the per-group summaries over the groups.")
    key = next(k for k in KEYS if abs(got[k] - want[k]) > TOLERANCE)
    raise Wrong(f"your {key} is {fmt(got[key])}, the course's run gives {fmt(want[key])} (tolerance "
                f"±{fmt(TOLERANCE)}). {hint}")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("10", [
    Numeric("Three members score four films (numbered 0 to 3): Ann (5, 1, 2, 3), Ben (2, 3, 4, 5), Cat (5, 2, 1, 3). "
            "Which film does the Borda count pick? (Average picks film 0.)",
            answer=3, tol=0,
            why="places from 0 (worst) to 3 (best): Ann (3, 0, 1, 2), Ben (0, 1, 2, 3), Cat (3, 1, 0, 2); sums 6, 2, 3, "
                "7 → film 3. Ann's and Cat's 5 stars for film 0 count as one place each, no more.",
            hint="turn each member's stars into places in their own order first (0 for their worst film), then add "
                 "the places up; the size of a preference no longer counts."),
    Choice("Section 2 found EASE's profile aggregation and average aggregation give identical lists. Why?",
           {"a": "EASE excludes the films the members have seen, so both lists are drawn from the same films",
            "b": "EASE's score is linear in the user's row: the merged row's score is the sum of the members' scores",
            "c": "the groups were too small for the two to differ",
            "d": "EASE's weights were fitted on the merged histories"},
           answer="b",
           why="s_g = (Σ x_m) B = Σ x_m B = M × the average of the members' scores: the same order. ALS's ridge fold-in "
               "and TextProfile's cosine are not linear in the members' histories, so their lists differ.",
           hints={"a": "ALS and TextProfile exclude the same films, and their two lists differ.",
                  "c": "the lists were identical in every group of 4, and ALS's differed in the same groups.",
                  "d": "EASE is fitted once on the training split; the pseudo-user is only scored."}),
    Choice("For groups of 4 and 8, the worst-off member's NDCG@10 is 0 for almost every strategy and kind of group. "
           "What does that show?",
           {"a": "the strategies are all equally unfair",
            "b": "NDCG@10 is computed wrongly for groups",
            "c": "most groups contain a member with no relevant film in the list, so the minimum is 0 whatever the "
                 "strategy",
            "d": "EASE cannot recommend to groups"},
           answer="c",
           why="even EASE's own single-user lists hit a relevant film for only 39 % of users; with four members, a "
               "group where every member is served is rare. The minimum saturates at 0, so the share of members with "
               "nothing relevant and the spread are the usable fairness measures here.",
           hints={"a": "the minimum cannot tell strategies apart once it is 0 for all; look at the share of members "
                       "with nothing relevant instead.",
                  "b": "section 4 checks the package against a from-scratch NDCG for one group.",
                  "d": "the mean member NDCG@10 of groups of 4 is well above 0 for average."}),
    Numeric("If each member of a group of 4 independently found a relevant film in the list with EASE's single-user "
            "hit rate of 0.39, what share of groups would have every member served (a minimum NDCG@10 above 0)?",
            answer=0.39 ** 4, tol=0.003,
            why="0.39⁴ ≈ 0.023: about one group in forty — and a shared list serves each member worse than their own.",
            hint="every member must be served at once: independent events multiply."),
    Choice("Dissimilar MovieLens groups have a mean homogeneity of 0.000. What does that mean?",
           {"a": "the members rate the same films with opposite stars",
            "b": "the members have no rated film in common, and they are mostly light users, for whom that is easy",
            "c": "the greedy construction failed and drew random users",
            "d": "the members' tastes are exactly opposite"},
           answer="b",
           why="films a user did not rate count 0, so a cosine of two rating rows is never negative and is 0 exactly "
               "when two users share no film. The greedy choice of the lowest cosine finds such users first — the "
               "light ones (median 17 training ratings against 74 in random groups).",
           hints={"a": "opposite stars on shared films would still give a positive cosine: stars are all positive.",
                  "c": "random groups have a homogeneity near 0.09, not 0.",
                  "d": "a cosine of rating rows cannot be negative on MovieLens; in the synthetic world it can."}),
    Choice("Why can the attention aggregator learn the 'leader' rule but not 'least misery'?",
           {"a": "least misery needs more training choices",
            "b": "its attention weights depend on the members only, while least misery's decisive member changes "
                 "from film to film",
            "c": "the true film vectors are not informative enough",
            "d": "the model was trained on the wrong rule"},
           answer="b",
           why="a member's weight is the same for every candidate, so the group vector is a fixed blend of tastes; "
               "least misery follows whoever likes *this* film least, a different member for each film — no fixed "
               "blend can express a minimum.",
           hints={"a": "the leader rule was learned from the same number of choices; look at what the weights can "
                       "depend on.",
                  "c": "the same vectors suffice for the leader rule.",
                  "d": "each model was trained and tested on the choices of its own rule."}),
])

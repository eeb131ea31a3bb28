"""Plausible wrong answers to the exercises of notebook 14; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
from recsys_course.exercises.nb14 import _clipped_mean, _push, _push_all_users, _push_clean, _push_default_epochs, _ucb1


# ------------------------------------------------------------------------------------------------ 14.ucb1
def _ucb_greedy(counts, sums):
    return _ucb1(counts, sums, c=0.0)


def _ucb_half_bonus(counts, sums):
    return _ucb1(counts, sums, c=1.0)


def _ucb_counts_not_means(counts, sums):
    return _ucb1(counts, sums, means=False)


def _ucb_untried_ignored(counts, sums):
    return _ucb1(counts, sums, untried_first=False)


def _ucb_linear_bonus(counts, sums):
    return _ucb1(counts, sums, log=lambda t: t)


# ------------------------------------------------------------------------------------------------ 14.clipped_mean
def _clip_elementwise(updates, clip):
    return _clipped_mean(updates, clip, how="elementwise")


def _clip_rows(updates, clip):
    return _clipped_mean(updates, clip, how="rows")


def _clip_scale_up(updates, clip):
    return _clipped_mean(updates, clip, scale_up=True)


def _clip_sum(updates, clip):
    return _clipped_mean(updates, clip) * len(updates)    # the sum, not the mean


def _clip_the_mean(updates, clip):
    return _clipped_mean(updates, clip, how="after")


# ------------------------------------------------------------------------------------------------ 14.push
def _push_not_attacked(train, targets, kind, size):
    return _push_clean(train, targets, kind, size)


def _push_fakes_counted(train, targets, kind, size):
    return _push_all_users(train, targets, kind, size)


def _push_default(train, targets, kind, size):
    return _push_default_epochs(train, targets, kind, size)


def _push_one_target(train, targets, kind, size):
    return _push(train, targets[:1], kind, size)


WRONG = {
    "14.ucb1": [
        ("greedy", _ucb_greedy),
        ("√(ln t / n)", _ucb_half_bonus),
        ("click counts", _ucb_counts_not_means),
        ("untried arms ignored", _ucb_untried_ignored),
        ("bonus linear in t", _ucb_linear_bonus),
    ],
    "14.clipped_mean": [
        ("each number clipped", _clip_elementwise),
        ("each row clipped", _clip_rows),
        ("small updates scaled up", _clip_scale_up),
        ("the sum", _clip_sum),
        ("the mean clipped", _clip_the_mean),
    ],
    "14.push": [
        ("no attack", _push_not_attacked),
        ("fake users counted", _push_fakes_counted),
        ("default epochs", _push_default),
        ("one target only", _push_one_target),
    ],
    "14.quiz": [
        ("bad tuning", {1: "b", 2: 500, 3: "a", 4: "a", 5: "a"}),
        ("K events", {1: "a", 2: 50, 3: "a", 4: "a", 5: "a"}),
        ("always equal", {1: "a", 2: 500, 3: "d", 4: "a", 5: "a"}),
        ("the server too", {1: "a", 2: 500, 3: "a", 4: "b", 5: "a"}),
        ("fewer epochs", {1: "a", 2: 500, 3: "a", 4: "a", 5: "b"}),
    ],
}

"""Plausible wrong answers to the exercises of notebook 13; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""

from recsys_course.exercises.nb13 import _pairwise, _ppr, _walk


# ------------------------------------------------------------------------------------------------ 13.fm_pairwise
def _fm_twice(V, x):
    return _pairwise(V, x, half=False)


def _fm_with_diagonal(V, x):
    return _pairwise(V, x, diagonal=True)


def _fm_x_not_squared(V, x):
    return _pairwise(V, x, squares=False)


def _fm_all_pairs(V, x):
    G = V @ V.T
    return float(x @ G @ x / 2)                          # i = j included once: not a pair


# ------------------------------------------------------------------------------------------------ 13.personalised_pagerank
def _ppr_rows(A, start, alpha, n_iter):
    return _ppr(A, start, alpha, n_iter, by="row")


def _ppr_swapped(A, start, alpha, n_iter):
    return _ppr(A, start, alpha, n_iter, swap=True)


def _ppr_no_restart(A, start, alpha, n_iter):
    return _ppr(A, start, alpha, n_iter, restart=False)


def _ppr_dangling_lost(A, start, alpha, n_iter):
    return _ppr(A, start, alpha, n_iter, dangling="lost")


def _ppr_one_step_short(A, start, alpha, n_iter):
    return _ppr(A, start, alpha, max(n_iter - 1, 0))


# ------------------------------------------------------------------------------------------------ 13.restart
def _restart_default(train, test, movies, tags, restart):
    return _walk(train, test, movies, tags, 0.8)


def _restart_plain(train, test, movies, tags, restart):
    return _walk(train, test, movies, tags, restart, beta=0.0)


def _restart_no_tags(train, test, movies, tags, restart):
    return _walk(train, test, movies, tags, restart, with_tags=False)


def _restart_ndcg_only(train, test, movies, tags, restart):
    return _walk(train, test, movies, tags, restart)["ndcg@10"]


WRONG = {
    "13.fm_pairwise": [
        ("not halved", _fm_twice),
        ("the diagonal kept", _fm_with_diagonal),
        ("x instead of x²", _fm_x_not_squared),
        ("all pairs with i = j once", _fm_all_pairs),
    ],
    "13.personalised_pagerank": [
        ("rows normalised", _ppr_rows),
        ("α and 1 − α swapped", _ppr_swapped),
        ("restart only at the start", _ppr_no_restart),
        ("dangling mass lost", _ppr_dangling_lost),
        ("one step short", _ppr_one_step_short),
    ],
    "13.restart": [
        ("the default restart", _restart_default),
        ("no degree correction", _restart_plain),
        ("no tags", _restart_no_tags),
        ("a number instead of the row", _restart_ndcg_only),
    ],
    "13.quiz": [
        ("the hour is unrelated", {1: "b", 2: "a", 3: 7 / 12, 4: "a", 5: "a"}),
        ("a leak", {1: "a", 2: "b", 3: 7 / 12, 4: "a", 5: "a"}),
        ("p_b instead of p_a", {1: "a", 2: "a", 3: 1 / 3, 4: "a", 5: "a"}),
        ("rated edges of cold films", {1: "a", 2: "a", 3: 7 / 12, 4: "b", 5: "a"}),
        ("sparse means faithful", {1: "a", 2: "a", 3: 7 / 12, 4: "a", 5: "b"}),
    ],
}

"""Checks of notebook 15 (scaling out): the memory of ALS's factors and ratings, Spark's ALS-WR half-step, an
experiment on the peak memory of the course's ALS, and the questionnaire.

The function checks compare the student's function with the package (:func:`recsys_course.scaling.als_memory`'s
terms, :func:`recsys_course.spark.als_wr_half_step`) on the prompt's worked example, random cases and the edge cases
the prompts name (a user with no ratings, one factor). None of them needs Spark or Java.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import scipy.sparse as sp

from . import exercise
from .answers import Wrong, array, call, close, course_run, fmt, number
from .quiz import Choice, Numeric, register_quiz


# --------------------------------------------------------------------------------------------- memory formula
def _bytes(n_users, n_items, n_ratings, k, *, orientations=2, value=8, index=4, indptr=True, factor=8,
           k_power=1) -> float:
    """Reference (and its variants): P and Q in float64, the ratings as CSR in both orientations (8-byte values,
    4-byte column indices, 4-byte row pointers)."""
    factors = factor * k ** k_power * (n_users + n_items)
    per_orientation = (value + index) * n_ratings
    pointers = index * (n_users + n_items + 2) if indptr else 0
    if orientations == 1:
        pointers = index * (n_users + 1) if indptr else 0
    return float(factors + orientations * per_orientation + pointers)


#: the prompt's worked example: ml-latest-small (610 users, 9,724 films, 100,836 ratings) at k = 32
MEMORY_EXAMPLE = (610, 9_724, 100_836, 32)


@exercise("15.factor_and_rating_bytes")
def check_factor_and_rating_bytes(answer) -> None:
    rng = np.random.default_rng(15)
    cases = [("the prompt's example (ml-latest-small, k = 32)", *MEMORY_EXAMPLE),
             ("2 users, 3 films, 4 ratings, k = 1", 2, 3, 4, 1),
             ("ml-1m at k = 64", 6_040, 3_706, 1_000_209, 64)]
    cases += [(f"random size {t}", int(rng.integers(1, 10**6)), int(rng.integers(1, 10**5)),
               int(rng.integers(1, 10**7)), int(rng.integers(1, 200))) for t in range(3)]
    for what, u, i, n, k in cases:
        want = _bytes(u, i, n, k)
        got = number(call(answer, u, i, n, k), "factor_and_rating_bytes(...)")
        if close(got, want, rtol=1e-9, atol=0.5):
            continue
        variants = [
            (dict(orientations=1), "ALS keeps the ratings twice: R (rows = users) for the user step and Rᵀ (rows = "
                                   "films) for the item step."),
            (dict(value=4), "the ratings' values are float64 (8 bytes), like the factors."),
            (dict(factor=4), "the factors are float64: 8 bytes per number."),
            (dict(indptr=False), "a CSR matrix also stores its row pointers: n_rows + 1 of them per orientation."),
            (dict(k_power=2), "a factor matrix holds k numbers per row (n × k), not k²; the k × k Gram matrices "
                              "are the solves' working memory, not stored factors."),
            (dict(index=8), "SciPy uses 4-byte (int32) indices while they fit; the prompt asks for int32."),
        ]
        hint = next((h for kw, h in variants if close(got, _bytes(u, i, n, k, **kw), rtol=1e-9, atol=0.5)), None)
        if hint is None and close(got, 8 * k * (u + i), rtol=1e-9, atol=0.5):
            hint = "that is the factors alone; add the ratings in sparse form, in both orientations."
        if hint is None:
            hint = ("factors: 8 · k · (n_users + n_items); each CSR orientation: (8 + 4) bytes per rating plus "
                    "4 · (n_rows + 1) for the row pointers.")
        raise Wrong(f"on {what}: got {fmt(got)} bytes, expected {fmt(want)}. {hint}")


# --------------------------------------------------------------------------------------------- ALS-WR half-step
def _wr_step(item_factors, rated, ratings, reg, *, scale="n_u") -> np.ndarray:
    """Reference (and its variants): p_u = (Q_uᵀ Q_u + λ s I)⁻¹ Q_uᵀ r_u with s = n_u (Spark), or another scale."""
    Q = np.asarray(item_factors, dtype=float)
    rated = np.asarray(rated, dtype=int)
    ratings = np.asarray(ratings, dtype=float)
    k = Q.shape[1]
    if len(rated) == 0:
        return np.zeros(k)
    s = {"n_u": len(rated), "one": 1.0, "n_items": len(Q), "n_u2": len(rated) ** 2}[scale]
    Qu = Q[rated]
    return np.linalg.solve(Qu.T @ Qu + reg * s * np.eye(k), Qu.T @ ratings)


#: the prompt's worked example: films q_1 = (1, 0), q_2 = (1, 1), ratings (1, 2), λ = 1 → p = (7/11, 5/11)
WR_EXAMPLE = (np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([0, 1]), np.array([1.0, 2.0]), 1.0)


def _package_step(Q, rated, ratings, reg) -> np.ndarray:
    from ..spark import als_wr_half_step

    row = sp.csr_matrix((ratings, (np.zeros(len(rated), dtype=int), rated)), shape=(1, len(Q)))
    return als_wr_half_step(row, Q, reg)[0]


@exercise("15.als_wr_user_step")
def check_als_wr_user_step(answer) -> None:
    rng = np.random.default_rng(151)
    cases = [("the prompt's example", *WR_EXAMPLE)]
    for trial in range(5):
        n_items, k = int(rng.integers(6, 15)), int(rng.integers(1, 5))
        rated = np.sort(rng.choice(n_items, size=int(rng.integers(2, n_items)), replace=False))
        cases.append((f"random user {trial} ({len(rated)} ratings, k = {k})", rng.normal(size=(n_items, k)), rated,
                      rng.uniform(0.5, 5.0, len(rated)).round(1), float(rng.uniform(0.05, 2.0))))
    for what, Q, rated, ratings, reg in cases:
        want = _package_step(Q, rated, ratings, reg)
        assert close(want, _wr_step(Q, rated, ratings, reg), atol=1e-10)
        got = array(call(answer, Q, rated, ratings, reg), "als_wr_user_step(...)", shape=(Q.shape[1],))
        if close(got, want, atol=1e-8):
            continue
        if close(got, _wr_step(Q, rated, ratings, reg, scale="one"), atol=1e-8):
            hint = ("that is the course's ALS step (λ I); Spark scales the penalty by the user's number of ratings: "
                    "λ n_u I.")
        elif close(got, _wr_step(Q, rated, ratings, reg, scale="n_items"), atol=1e-8):
            hint = "n_u counts this user's ratings (the rated films), not every film of the catalogue."
        elif close(got, _wr_step(Q, rated, ratings, reg, scale="n_u2"), atol=1e-8):
            hint = "the penalty grows with n_u, not n_u²: λ n_u I."
        else:
            hint = "solve (Q_uᵀ Q_u + λ n_u I) p = Q_uᵀ r_u with Q_u the rows of the rated films."
        raise Wrong(f"on {what}: got {fmt(got)}, expected {fmt(want)}. {hint}")
    Q = WR_EXAMPLE[0]
    got = array(call(answer, Q, np.array([], dtype=int), np.array([]), 1.0), "als_wr_user_step(...)", shape=(2,))
    if not close(got, 0.0):
        raise Wrong(f"a user with no ratings has n_u = 0, so no penalty and no data: return a zero vector (Spark "
                    f"and the course do), got {fmt(got)}")


# --------------------------------------------------------------------------------------------- experiment
TOLERANCE = 0.10  # ±10 % of the course's measurement: tracemalloc counts Python's small allocations too


@cache
def _inputs():
    """A small synthetic set (about 50,000 ratings, from the course's generator) and k = 64."""
    from ..scaling import synthetic_ratings

    return synthetic_ratings(50_000), 64


def _peak_mib(train, n_factors) -> float:
    from ..scaling import measure_als

    return measure_als(train, n_factors=n_factors)["peak_bytes"] / 2 ** 20


def _peak_mib_default(train, n_factors) -> float:
    return _peak_mib(train, 32)


@exercise("15.peak_memory", kind="experiment", inputs=_inputs)
def check_peak_memory(answer, train, n_factors) -> str:
    got = number(call(answer, train, n_factors), "als_peak_mib(train, n_factors)")
    want = course_run(_peak_mib, train, n_factors)
    if abs(got - want) <= TOLERANCE * want:
        at_32 = course_run(_peak_mib_default, train, n_factors)
        return (f"k = {n_factors}: peak {fmt(got)} MiB, the course's run {fmt(want)} MiB (k = 32: {fmt(at_32)} "
                f"MiB).")
    if abs(got / 2 ** 20 - want) <= TOLERANCE * want:
        hint = "that looks like bytes: divide by 2**20 for MiB."
    elif n_factors != 32 and abs(got - course_run(_peak_mib_default, train, n_factors)) <= \
            TOLERANCE * course_run(_peak_mib_default, train, n_factors):
        hint = "that is the peak at k = 32: pass n_factors to ALS (or measure_als)."
    elif got < 0.5 * want:
        hint = ("too small: tracemalloc's *peak* (get_traced_memory()[1]) holds the transient arrays of the fit; the "
                "memory still held afterwards is only the fitted model.")
    else:
        hint = ("measure ALS(n_factors=n_factors).fit(train) between tracemalloc.reset_peak() and "
                "get_traced_memory()[1] (or call recsys_course.scaling.measure_als) and return MiB.")
    raise Wrong(f"you got {fmt(got)} MiB; the course's run gives {fmt(want)} MiB (±{TOLERANCE:.0%}). {hint}")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("15", [
    Choice("At k = 32, which part of the course's ALS needs the most memory for a large catalogue?",
           {"a": "the training-RMSE pass after each iteration: two arrays of N × k numbers",
            "b": "the factor matrices P and Q",
            "c": "the ratings in sparse form",
            "d": "the k × k Gram matrices of one block of users"},
           answer="a",
           why="2 · 8 · k bytes per rating (512 at k = 32) against 24 for the two CSR copies and 8k per user or film "
               "for the factors; computing the training RMSE in blocks would remove it.",
           hints={"b": "the factors grow with users + films, not with ratings; for ml-25m they are tens of MiB.",
                  "c": "two CSR copies cost about 24 bytes per rating: far less than 8k per rating.",
                  "d": "a block holds 2,048 systems of k × k: a few MiB whatever the catalogue."}),
    Choice("Spark's ALS reaches a worse RMSE than the course's ALS with the same k on the same split. Why?",
           {"a": "it optimises another objective: no biases, and a penalty λ·n_u scaled by each user's and film's "
                 "number of ratings (ALS-WR), which barely restrains films with one or two ratings",
            "b": "Spark computes in float32 and loses precision",
            "c": "a distributed solve is only approximate",
            "d": "Spark ran fewer iterations"},
           answer="a",
           why="the course's half-step with λ·n_u reproduces Spark's factors to float32 precision, and the same "
               "objective fitted in NumPy lands at Spark's RMSE: the engine is not the difference, the model is.",
           hints={"b": "float32 changes the factors in the 7th digit, not the RMSE in the 2nd.",
                  "c": "each block's solve is exact: the NumPy half-step reproduces Spark's factors.",
                  "d": "both ran five iterations (maxIter = n_iters = 5)."}),
    Choice("With coldStartStrategy='drop', Spark reports a lower RMSE than with the course's fallback. What happened?",
           {"a": "the test ratings of films unseen in training were removed from the metric, and they are the hard "
                 "ones",
            "b": "'drop' removes outliers from the training data",
            "c": "'drop' makes Spark predict better for new films",
            "d": "the two numbers are on different models"},
           answer="a",
           why="'drop' is meant for cross-validation inside Spark (no NaN in the evaluator); as a test metric it "
               "silently evaluates a different, easier test set. Report how many rows were scored.",
           hints={"b": "the strategy acts at prediction time (transform), not on the training data.",
                  "c": "a dropped row gets no prediction at all.",
                  "d": "it is the same fitted model; only the rows scored differ."}),
    Numeric("A service has 100 million users and 10 million films. How many GiB do the factor matrices P and Q alone "
            "take at k = 32 in float64 (to one decimal)?",
            answer=8 * 32 * 110e6 / 2 ** 30, tol=0.1,
            why="8 bytes × 32 × (10⁸ + 10⁷) = 28.2 · 10⁹ bytes ≈ 26.2 GiB: more than a 24 GiB machine before a "
                "single rating is loaded — the factors themselves must be partitioned.",
            hint="8 bytes per number, k numbers per user and per film; 1 GiB = 2³⁰ bytes."),
    Choice("On this machine Spark's ALS was slower than the course's at every size measured. What is the honest "
           "reason?",
           {"a": "fixed costs (starting the JVM, moving the data into Spark, scheduling stages and shuffles between "
                 "blocks) that a single process does not pay; the arithmetic per rating is the same",
            "b": "Spark's ALS is a worse algorithm",
            "c": "local[2] runs on one core only",
            "d": "Java cannot call a BLAS"},
           answer="a",
           why="Spark pays to be able to spread the work over machines; on one machine that buys nothing until the "
               "problem no longer fits in it.",
           hints={"b": "it is the same alternating least squares; the half-steps agree with NumPy's.",
                  "c": "local[2] runs two executor threads, one per core.",
                  "d": "Spark solves the k × k systems with its own (Java) BLAS; the time goes elsewhere."}),
])

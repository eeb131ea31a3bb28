"""Checks of notebook 09 (interest drift and transfer): invert a decay weight, the long-run interest of the Markov
model, a weighted Jensen–Shannon divergence, an experiment (which five ratings should a new user give?) and the
questionnaire.

Each function check compares the student's function with a reference built on :mod:`recsys_course.drift` on
the notebook's worked examples, small random cases and edge cases; a hint that names a mistake is shown only when
the student's number is that mistake's number.
"""
from __future__ import annotations

import copy
import math
from functools import cache

import numpy as np

from .. import drift
from ..config import ITEM, RATING, TIME, USER
from . import exercise
from .answers import Wrong, array, call, close, fmt, keyed_numbers, number
from .quiz import Choice, Numeric, register_quiz


# --------------------------------------------------------------------------------------------- half-life
def _half_life(age_days: float, weight: float) -> float:
    return math.inf if weight == 1.0 else age_days / math.log2(1.0 / weight)


@exercise("09.half_life_for_weight")
def check_half_life_for_weight(answer) -> None:
    rng = np.random.default_rng(0)
    cases = [(60.0, 0.25, "the example of section 3.1 read backwards (day 0 seen from day 60 weighs 0.25)"),
             (365.0, 0.5, "a rating one year old that weighs one half"),
             (10.0, 0.9, "a rating 10 days old that keeps 90 % of its weight")]
    cases += [(float(rng.uniform(1, 3000)), float(rng.uniform(0.01, 0.99)), f"random case {k}") for k in range(5)]
    for age, weight, what in cases:
        want = _half_life(age, weight)
        got = number(call(answer, age, weight), "half_life_for_weight(...)", finite=False)
        if not math.isfinite(got):
            raise Wrong(f"on {what} (age {fmt(age)} days, weight {fmt(weight)}): got {fmt(got)}; a weight below 1 "
                        "is reached after a finite number of halvings, so the half-life is finite.")
        if close(got, want, rtol=1e-6):
            continue
        halvings = math.log2(1.0 / weight)
        if close(got, -want, rtol=1e-6):
            hint = ("The sign is off: a half-life is positive, and the logarithm of a weight below 1 is negative.")
        elif close(got, age / math.log(1.0 / weight), rtol=1e-6):
            hint = ("That uses the natural logarithm. The weight halves once per half-life, so the number of "
                    "halvings is a logarithm in base 2.")
        elif close(got, age * halvings, rtol=1e-6):
            hint = (f"The weight went through {fmt(halvings)} halvings, so the age is {fmt(halvings)} half-lives "
                    "long: the half-life is the age divided by the number of halvings, not multiplied by it.")
        elif close(got, want * drift.DAY, rtol=1e-6):
            hint = "That is the half-life in seconds; the age is given in days, and so is the half-life."
        else:
            hint = ("Solve w = 2^(−age/h) for h: how many times must the weight halve to fall from 1 to w, and "
                    "how long is each halving?")
        raise Wrong(f"on {what}: expected {fmt(want)} days, got {fmt(got)}. {hint}")
    got = number(call(answer, 30.0, 1.0), "half_life_for_weight(...)", finite=False)
    if not (math.isinf(got) and got > 0):
        raise Wrong(f"a rating 30 days old that still weighs 1 (no forgetting at all): got {fmt(got)}. No finite "
                    "half-life leaves an old rating at full weight; return math.inf — section 3.1's sweep writes "
                    "it as `None`, plain ItemKNN.")


# --------------------------------------------------------------------------------------------- long-run interest
def _stationary(P: np.ndarray) -> np.ndarray:
    """The distribution π with π = πP (P row-stochastic, one closed class)."""
    n = len(P)
    A = np.vstack([P.T - np.eye(n), np.ones((1, n))])
    b = np.r_[np.zeros(n), 1.0]
    return np.linalg.lstsq(A, b, rcond=None)[0]


def _step(p: np.ndarray, P: np.ndarray, alpha: float) -> np.ndarray:
    """α·p + (1 − α)·pP without drift.markov_step's validation (the student's vector may not be a distribution)."""
    return alpha * p + (1 - alpha) * (p @ P)


def _random_chain(rng, n):
    P = rng.random((n, n)) + 0.05
    P /= P.sum(1, keepdims=True)
    p = rng.random(n)
    return p / p.sum(), P


@exercise("09.long_run_interest")
def check_long_run_interest(answer) -> None:
    P_seed = np.array([[0.7, 0.0, 0.3], [0.0, 0.3, 0.7], [0.0, 0.0, 1.0]])
    rng = np.random.default_rng(1)
    cases = [(np.array([0.6, 0.4, 0.0]), P_seed, 0.5, "the example of section 2 (C absorbing, α = 0.5)"),
             (np.array([0.0, 1.0]), np.array([[0.9, 0.1], [0.3, 0.7]]), 0.4,
              "two genres, P = [[0.9, 0.1], [0.3, 0.7]], α = 0.4, starting all on the second")]
    for k, alpha in enumerate([0.0, 0.3, 0.8]):
        p, P = _random_chain(rng, int(rng.integers(3, 7)))
        cases.append((p, P, alpha, f"random case {k} ({len(p)} genres, α = {fmt(alpha)})"))
    p, P = _random_chain(rng, 4)
    cases.append((rng.permutation(np.eye(4)[0]), P, 0.6, "the same transitions from another start"))
    cases.append((p, P, 0.6, "the same transitions from another start"))
    for p, P, alpha, what in cases:
        want = np.round(_stationary(P), 12) + 0.0  # no 1e-16 noise in the messages
        got = array(call(answer, p, P, alpha), "long_run_interest(...)", shape=p.shape)
        if close(got, want, atol=1e-6):
            continue
        n = len(p)
        if close(got, _step(p, P, alpha), atol=1e-9) and not close(want, _step(p, P, alpha), atol=1e-6):
            hint = "That is one step of the model; the question is where the steps lead when they are repeated."
        elif close(got, p, atol=1e-9):
            hint = ("That is the starting distribution. With α < 1 a part of the interest moves along the "
                    "transitions at every step, so it does not stay put.")
        elif close(got, np.full(n, 1 / n), atol=1e-6):
            hint = ("The uniform vector solves Pv = v (every row of P sums to 1), a column vector on the right. The "
                    "long-run interest is a row vector on the left: π = πP.")
        elif abs(got.sum()) > 1e-12 and close(got / got.sum(), want, atol=1e-6):
            hint = (f"The direction is right but the entries sum to {fmt(got.sum())}: an interest distribution sums "
                    "to 1 (an eigenvector is only defined up to a factor, possibly negative).")
        elif abs(got.sum() - 1) < 1e-6 and (got >= -1e-9).all() and not close(_step(got, P, alpha), got, atol=1e-6):
            moved = float(np.abs(_step(got, P, alpha) - got).max())
            hint = (f"Your answer is not a fixed point yet: one more step still moves an entry by {fmt(moved)}. "
                    "Iterate until nothing moves, or solve the fixed-point equation directly.")
        else:
            hint = ("At the limit one more step changes nothing: p = αp + (1 − α)pP. What does that equation say "
                    "about p and P once α < 1?")
        raise Wrong(f"on {what}: expected {fmt(want)}, got {fmt(got)}. {hint}")
    p, P = _random_chain(rng, 3)
    got = array(call(answer, p, P, 1.0), "long_run_interest(...)", shape=p.shape)
    if not close(got, p, atol=1e-9):
        raise Wrong(f"with α = 1 (\"no change\") the interest {fmt(p)} never moves, so the long run is where it "
                    f"started; got {fmt(got)}. The fixed-point argument divides by 1 − α: this edge case is the "
                    "one where it fails.")


# --------------------------------------------------------------------------------------------- weighted JS
def _kl(a: np.ndarray, b: np.ndarray, base=np.log2) -> float:
    nz = a > 0
    return float(np.sum(a[nz] * base(a[nz] / b[nz])))


def _weighted_js(p, q, w, *, base=np.log2, m_weights=None, kl_weights=None) -> float:
    mw = w if m_weights is None else m_weights
    kw = w if kl_weights is None else kl_weights
    m = mw * p + (1 - mw) * q
    out = 0.0
    if kw > 0:
        out += kw * _kl(p, m, base)
    if kw < 1:
        out += (1 - kw) * _kl(q, m, base)
    return out


@exercise("09.weighted_js")
def check_weighted_js(answer) -> None:
    rng = np.random.default_rng(2)
    cases = [(np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5]), 0.5,
              "the example of section 1.2 with equal weights (0.5 bits)"),
             (np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.3, 0.6]), 0.5, "equal weights"),
             (np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.25, "two distributions with nothing in common")]
    for k in range(4):
        n = int(rng.integers(2, 7))
        p, q = rng.random(n), rng.random(n)
        p[rng.random(n) < 0.3] = 0.0
        p[0] += 0.1
        q[-1] += 0.1
        cases.append((p / p.sum(), q / q.sum(), float(rng.uniform(0.05, 0.95)), f"random case {k}"))
    for p, q, w, what in cases:
        want = _weighted_js(p, q, w)
        if w == 0.5:
            assert close(want, drift.js_divergence(p, q), atol=1e-12)  # the course's JS is the w = 1/2 case
        got = number(call(answer, p, q, w), "weighted_js(...)", finite=False)
        where = f"on {what}, p = {fmt(p)}, q = {fmt(q)}, w = {fmt(w)}"
        if not math.isfinite(got):
            raise Wrong(f"{where}: got {fmt(got)}. An entry where p (or q) is 0 contributes 0·log 0 = 0 to its "
                        "KL term; the mixture M is positive wherever p or q is, so no term needs to divide by 0.")
        if close(got, want, atol=1e-9, rtol=1e-7):
            continue
        if close(got, _weighted_js(p, q, w, base=np.log), atol=1e-9, rtol=1e-7):
            hint = "That is in nats (natural logarithm); the course measures JS in bits, with log base 2."
        elif close(got, _weighted_js(p, q, 1 - w), atol=1e-9, rtol=1e-7):
            hint = "The weights are swapped: w belongs to p (in M and on KL(p‖M)), 1 − w to q."
        elif close(got, _weighted_js(p, q, w, kl_weights=0.5), atol=1e-9, rtol=1e-7):
            hint = ("M is weighted, but the two KL terms are still averaged with ½ each; they take the weights w "
                    "and 1 − w too.")
        elif close(got, _weighted_js(p, q, w, m_weights=0.5), atol=1e-9, rtol=1e-7):
            hint = ("The KL terms are weighted, but M is still the plain average (p + q)/2; the mixture takes the "
                    "same weights, M = w·p + (1 − w)·q.")
        else:
            hint = "JS_w = w·KL(p‖M) + (1 − w)·KL(q‖M) with M = w·p + (1 − w)·q, in bits."
        raise Wrong(f"{where}: expected {fmt(want)}, got {fmt(got)}. {hint}")
    if not close(_weighted_js(cases[0][0], cases[0][1], 0.3), number(call(answer, cases[0][1], cases[0][0], 0.7),
                                                                   "weighted_js(...)", finite=False), atol=1e-9):
        raise Wrong("swapping p and q together with w and 1 − w must give the same number: JS_w(p, q) = "
                    "JS_(1−w)(q, p).")
    p, q = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.5, 0.5])
    for w in (0.0, 1.0):
        got = number(call(answer, p, q, w), "weighted_js(...)", finite=False)
        if not (math.isfinite(got) and abs(got) < 1e-12):
            raise Wrong(f"with w = {fmt(w)} one distribution carries all the weight, so M is that distribution and "
                        f"the divergence is 0; got {fmt(got)} on p = {fmt(p)}, q = {fmt(q)}. A term whose weight is 0 "
                        "contributes 0, even where its KL is infinite (0·∞ must not become nan).")


# --------------------------------------------------------------------------------------------- experiment
SHOTS = 5
TRANSFER_TOLERANCE = 0.002  # test RMSE; BiasedMF is seeded (seed=0), the slack covers float summation order
APPROACHES = ("scratch", "freeze films")


@cache
def _transfer_inputs():
    """(pretrained, new_chron, new_test) as section 4.2 builds them in the lesson profile on ml-latest-small."""
    import pandas as pd

    from .. import split
    from ..data import load_movielens
    from ..models import BiasedMF

    ratings = load_movielens().ratings
    T = pd.Timestamp("2015-01-01").timestamp()
    old, new = ratings[ratings[TIME] < T], ratings[ratings[TIME] >= T]
    new_train, new_test = split.per_user_temporal_split(new, test_size=0.2)
    new_chron = new_train.sort_values([USER, TIME, ITEM], kind="stable")
    pretrained = BiasedMF(verbose=False).fit(old)
    return pretrained, new_chron, new_test


def _transfer_rmse(pretrained, data, new_test) -> dict[str, float]:
    from ..metrics import rmse
    from ..models import BiasedMF

    models = {"scratch": BiasedMF(verbose=False),
              "freeze films": BiasedMF(init_from=pretrained, freeze_items=True, verbose=False)}
    return {name: rmse(new_test[RATING], model.fit(data).predict(new_test[USER], new_test[ITEM]))
            for name, model in models.items()}


@exercise("09.recent_five", kind="experiment", inputs=_transfer_inputs)
def check_recent_five(answer, pretrained, new_chron, new_test) -> str:
    from ..metrics import rmse

    got = call(answer, copy.deepcopy(pretrained), new_chron, new_test)
    got = keyed_numbers(got, APPROACHES, "{approach: test RMSE} (the rows of section 4.2's table)",
                        lambda a: f"the test RMSE of {a!r}")
    chron = new_chron.sort_values([USER, TIME, ITEM], kind="stable")
    want = _transfer_rmse(pretrained, chron.groupby(USER).tail(SHOTS), new_test)
    if all(abs(got[a] - want[a]) <= TRANSFER_TOLERANCE for a in APPROACHES):
        first = _transfer_rmse(pretrained, chron.groupby(USER).head(SHOTS), new_test)
        nothing = rmse(new_test[RATING], pretrained.predict(new_test[USER], new_test[ITEM]))
        return (f"with each new user's last five ratings: scratch {fmt(got['scratch'])}, freeze films "
                f"{fmt(got['freeze films'])} (the course's run: {fmt(want['scratch'])}, {fmt(want['freeze films'])}). "
                f"With their first five (section 4.2): {fmt(first['scratch'])} and {fmt(first['freeze films'])}; "
                f"the pretrained model alone, knowing nothing about these users: {fmt(nothing)}. Same number of "
                "ratings, very different value: compare the two gaps between scratch and transfer.")
    swapped = all(abs(got[a] - want[b]) <= TRANSFER_TOLERANCE for a, b in zip(APPROACHES, APPROACHES[::-1]))
    if swapped:
        raise Wrong(f"your two numbers are the course's, swapped: scratch should be {fmt(want['scratch'])} and "
                    f"freeze films {fmt(want['freeze films'])}. Which model starts from `pretrained`?")
    first = _transfer_rmse(pretrained, chron.groupby(USER).head(SHOTS), new_test)
    if all(abs(got[a] - first[a]) <= TRANSFER_TOLERANCE for a in APPROACHES):
        raise Wrong(f"those are section 4.2's numbers ({fmt(first['scratch'])}, {fmt(first['freeze films'])}): each "
                    "user's FIRST five ratings. The exercise gives the models each user's five most recent "
                    "fine-tuning ratings instead.")
    bad = next(a for a in APPROACHES if abs(got[a] - want[a]) > TRANSFER_TOLERANCE)
    raise Wrong(f"for {bad!r} your test RMSE is {fmt(got[bad])}, the course's run gives {fmt(want[bad])} (tolerance "
                f"±{fmt(TRANSFER_TOLERANCE)}). Train on the last {SHOTS} rows of each user in new_chron (already "
                "in time order) and nothing else, use BiasedMF's defaults with verbose=False (\"freeze films\" "
                "starts from pretrained with its film side frozen), and score all of new_test.")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("09", [
    Choice("Section 1.2 compares each user's early-vs-late JS divergence with a shuffled-time null rather than "
           "with 0. Why?",
           {"a": "floating-point rounding makes JS slightly positive even for identical distributions",
            "b": "each half is a finite sample, so even a user whose taste never changes gets a positive JS; "
                 "shuffling keeps that part and removes only the order",
            "c": "shuffling the timestamps removes the population's drift over the calendar years",
            "d": "JS is not symmetric, and shuffling averages the two directions"},
           answer="b",
           why="two samples of the same taste still differ by chance; the null is the drift of the same users with "
               "their order destroyed, so only the excess over it is evidence of change.",
           hints={"a": "rounding errors are about 1e-16 bits; the null's mean is many orders of magnitude larger, "
                       "so something else makes an unchanging user look like they drift.",
                  "c": "each user's timestamps are shuffled among that user's own ratings; what is destroyed is "
                       "the order, and a user's early half is then a random half of the same sample.",
                  "d": "JS is symmetric by construction: M = (P + Q)/2 treats both sides alike."}),
    Choice("The users active for a year or more show a SMALLER mean drift than all users (less than half), "
           "although they had years to change. Why?",
           {"a": "long-span users have long histories: each half is a bigger sample, so less of their JS is noise",
            "b": "people who stay for years have stable tastes, so they do not drift",
            "c": "their ratings were shuffled by MovieLens before the data set was released",
            "d": "the JS divergence is capped at 1 bit, which compresses long histories"},
           answer="a",
           why="their null is smaller too; against their own null they still drift about twice as much as chance. "
               "Compare drift with the null of the same users, never across groups.",
           hints={"b": "their real drift is still about twice their own null: they do change. Look at what happens "
                       "to the null, not only to the real numbers.",
                  "c": "the real order drifts more than the shuffled order for these users too, so the order is "
                       "there.",
                  "d": "all these numbers are far below 1 bit; the cap plays no role."}),
    Choice("In section 2.1 a plain shrinkage towards the population average does almost as well as the Markov step "
           "on test. What explains it?",
           {"a": "the transitions were estimated on the A parts only, so they are out of date on B → C",
            "b": "one step along the fitted transitions lands close to the population's genre mix, so α·p + "
                 "(1 − α)·pP is nearly the shrinkage α·p + (1 − α)·population",
            "c": "the shrinkage λ was tuned on the test set",
            "d": "JS divergence cannot tell two predictions apart when both are mixtures"},
           answer="b",
           why="the long-run interest of the fitted P (exercise 2) is the population's genre mix, and P mixes fast, "
               "so pP is already near it: most of the Markov step's gain is smoothing towards the population.",
           hints={"a": "stale transitions would explain a weaker Markov step, not one that behaves like shrinkage; "
                       "look at where one step along the fitted P takes any distribution (exercise 2).",
                  "c": "λ was chosen on validation (A → B) exactly like α; the test (B → C) was not consulted.",
                  "d": "JS separates the competitors fine ('no change' is far behind both mixtures); the question is "
                       "why these two mixtures land so close."}),
    Choice("In section 3.2 TimeAwareBias predicts better at each user's latest training time than at the true test "
           "times, where it is worse than BiasBaseline. Why?",
           {"a": "using the test timestamps is a leak that the model is punished for",
            "b": "the test dates lie after each user's training span, so the drift term α_u·dev_u(t) extrapolates a "
                 "trend fitted inside it",
            "c": "the item bins are too noisy at the test times",
            "d": "predict_at ignores the user bias"},
           answer="b",
           why="dev_u(t) grows with the distance from the user's mean date; beyond the training span (years beyond, "
               "for users who came back) the fitted slope is a guess that rarely holds.",
           hints={"a": "the time of a request is known when it is served; a leak would make the score better, not "
                       "worse.",
                  "c": "a time after the training period falls in the last bin, the same for both predictions; the "
                       "item bins alone barely move RMSE.",
                  "d": "both predictions use the same biases; what differs is the time t fed to the drift term."}),
    Choice("In section 4.1 a top-100 list built from the last two years alone beats one retrained each year on all "
           "the history. Why?",
           {"a": "two years of ratings are a bigger sample than all the history",
            "b": "what people rate shifts with new releases and fashions; all-time counts are dominated by films "
                 "that were popular long ago",
            "c": "the retrained list is built with a leak from the future",
            "d": "the list from the last two years has more than 100 films"},
           answer="b",
           why="popularity drifts: the frozen list decays, and among lists retrained on time, the one that forgets "
               "the distant past keeps up best — recency beats volume.",
           hints={"a": "all the history contains the last two years, so it is the bigger sample.",
                  "c": "both lists use only ratings before the year they are scored on.",
                  "d": "every list has the same 100 films at most; they differ in which films."}),
    Numeric("A colleague fits the Markov model without the constraint and finds α = 0.6 and β = 0.6, then rescales "
            "each prediction to sum to 1 (drift.markov_step's normalize=True). Which weight does the rescaled model "
            "actually put on the user's own current mix (the α of a proper α + β = 1 model)?",
            answer=0.5, tol=0.001,
            why="dividing αp + βpP by α + β gives α/(α+β) = 0.6/1.2 = 0.5 on p and 0.5 on pP.",
            hint="Rescaling divides the whole right-hand side by its sum, which section 2 computed: α + β."),
])

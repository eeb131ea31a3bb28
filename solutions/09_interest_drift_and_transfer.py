"""Solutions to the exercises of notebook 09 (interest drift and transfer learning).

* ``half_life_for_weight`` — invert w = 2^(−a/h): a rating of age a went through log2(1/w) halvings, each one
  half-life long, so h = a / log2(1/w). Section 3.1's example read backwards: day 0
  seen from day 60 weighs 0.25, two halvings in 60 days, h = 30. A weight of 1 at a positive age is zero halvings:
  no finite half-life does it, the answer is ``math.inf`` (the sweep's ``None``, plain ItemKNN). The open
  question: a rating made a year before the user's newest counts one tenth with h = 365 / log2(10) ≈ 110 days,
  between the sweep's 90 and 365 days. The sweep's best, h = 365, keeps such a rating at one half — in the
  lesson run, forgetting that fast (90 days) already cost NDCG on validation.
* ``long_run_interest`` — at the limit one more step changes nothing: p = αp + (1 − α)pP, i.e.
  (1 − α)(pP − p) = 0. For α < 1 that is p = pP: the long run is the stationary distribution of P (a left
  eigenvector of P for the eigenvalue 1, or the solution of πP = π with Σπ = 1) — it does not depend on α (α only
  sets the speed) nor, when every genre can reach every other, on the start. For α = 1 the equation is empty:
  nothing moves, the answer is the start itself. Solving (Pᵀ − I)π = 0 together with Σπ = 1 by least squares
  handles every case with one closed class; iterating the step until it stops moving also works for α < 1.
  In section 2's example C is absorbing: all the interest ends in C, (0, 0, 1), whatever α < 1.
  The open question, on the fitted transitions: the long-run interest of ``P_genre`` is the population's genre
  mix of the A parts (``pop_val``) — JS divergence about 4e-6 bits, no genre off by more than 0.001. Transitions
  estimated from everybody's consecutive ratings lead, in the long run, to everybody's mix. And P mixes fast (its
  second-largest eigenvalue is about 0.17), so one step pP is already close to that mix: the Markov step
  α·p + (1 − α)·pP is nearly the shrinkage α·p + (1 − α)·population. That is why, in section 2.1, shrinkage
  gets almost all of the Markov step's gain.
* ``weighted_js`` — M = w·p + (1 − w)·q and JS_w = w·KL(p‖M) + (1 − w)·KL(q‖M), in bits, each KL summed over
  the entries where its distribution is positive (0·log 0 = 0). w = ½ is the notebook's JS. A term whose weight
  is 0 is dropped: with w = 0, M = q and KL(p‖q) may be infinite, but it carries no weight, and JS_0 = 0. The open
  question: the largest value is the binary entropy H(w) = −w·log2 w − (1 − w)·log2(1 − w), reached when p and q
  have nothing in common (M's two halves never overlap) — 1 bit at w = ½, about 0.811 bits at w = 0.25. With w
  the share of ratings of p's group (e.g. a small year against a big one), JS_w is the mutual information, in
  bits, between "which group" and "which genre".
* ``recent_five`` (experiment) — the same two models as section 4.2's cold-start row, trained on
  ``new_chron.groupby(userId).tail(5)`` instead of ``.head(5)``. Lesson run on ml-latest-small: scratch 1.0814,
  freeze films 1.0519, against 1.4057 and 1.1961 with the first five. Five recent ratings are worth far more than
  five early ones, and the gap between scratch and transfer shrinks from about 0.21 to 0.03. The first five are
  so unrepresentative (the inflated onboarding ratings of section 4.2's reading) that the pretrained model alone,
  which knows nothing about these users (μ + b_i), scores 1.1479: better than fine-tuning on their first five.
  With the last 20 ratings the two models reach 0.9887 and 0.9636, close to using all of them (0.9471, 0.9455).
  What a user's bias looks like depends on when you ask — drift within a user, again. (In production the first
  ratings are all a new user has; the lesson is to down-weight them, or to keep updating the user as ratings
  arrive.)
* ``quiz`` — the reasons are printed by ``show_solution("09.quiz")``.
"""
from __future__ import annotations

import math

import numpy as np

from recsys_course.metrics import rmse
from recsys_course.models import BiasedMF


def half_life_for_weight(age_days, weight):
    if weight == 1:
        return math.inf
    return age_days / math.log2(1 / weight)


def long_run_interest(p, P, alpha):
    p, P = np.asarray(p, dtype=float), np.asarray(P, dtype=float)
    if alpha == 1:
        return p
    n = len(P)
    A = np.vstack([P.T - np.eye(n), np.ones((1, n))])  # π(P − I) = 0 and Σπ = 1
    b = np.r_[np.zeros(n), 1.0]
    return np.linalg.lstsq(A, b, rcond=None)[0]


def weighted_js(p, q, w):
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    m = w * p + (1 - w) * q

    def kl(a, b):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / b[nz])))

    return (w * kl(p, m) if w > 0 else 0.0) + ((1 - w) * kl(q, m) if w < 1 else 0.0)


def recent_five(pretrained, new_chron, new_test):
    data = new_chron.groupby("userId").tail(5)  # new_chron is in time order: the five most recent of each user
    models = {"scratch": BiasedMF(verbose=False),
              "freeze films": BiasedMF(init_from=pretrained, freeze_items=True, verbose=False)}
    return {name: rmse(new_test["rating"], model.fit(data).predict(new_test["userId"], new_test["movieId"]))
            for name, model in models.items()}


SOLUTIONS = {
    "09.half_life_for_weight": half_life_for_weight,
    "09.long_run_interest": long_run_interest,
    "09.weighted_js": weighted_js,
    "09.recent_five": recent_five,
    "09.quiz": {1: "b", 2: "a", 3: "b", 4: "b", 5: "b", 6: 0.5},
}

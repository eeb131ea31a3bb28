"""Plausible wrong answers to the exercises of notebook 09; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import math

import numpy as np

from recsys_course.metrics import rmse
from recsys_course.models import BiasedMF

DAY = 86400.0


# ------------------------------------------------------------------------------------------ half_life_for_weight
def _half_life_ln(age_days, weight):
    return math.inf if weight == 1 else age_days / math.log(1 / weight)


def _half_life_sign(age_days, weight):
    return math.inf if weight == 1 else age_days / math.log2(weight)


def _half_life_times_halvings(age_days, weight):
    return math.inf if weight == 1 else age_days * math.log2(1 / weight)


def _half_life_seconds(age_days, weight):
    return math.inf if weight == 1 else age_days * DAY / math.log2(1 / weight)


def _half_life_no_edge_case(age_days, weight):
    return age_days / max(math.log2(1 / weight), 1e-12)  # a huge finite number instead of inf


def _half_life_weight_times_age(age_days, weight):
    return age_days * weight  # "the weight scales the age"


# ------------------------------------------------------------------------------------------ long_run_interest
def _one_step(p, P, alpha):
    p, P = np.asarray(p, float), np.asarray(P, float)
    return alpha * p + (1 - alpha) * p @ P


def _right_eigenvector(p, P, alpha):
    w, v = np.linalg.eig(np.asarray(P, float))
    vec = np.real(v[:, np.argmin(np.abs(w - 1))])
    return vec / vec.sum()


def _eigenvector_not_normalised(p, P, alpha):
    if alpha == 1:
        return np.asarray(p, float)
    w, v = np.linalg.eig(np.asarray(P, float).T)
    return np.real(v[:, np.argmin(np.abs(w - 1))])  # unit length, not unit sum


def _too_few_steps(p, P, alpha):
    p, P = np.asarray(p, float), np.asarray(P, float)
    for _ in range(3):
        p = alpha * p + (1 - alpha) * p @ P
    return p


def _stationary_even_at_alpha_one(p, P, alpha):
    P = np.asarray(P, float)
    n = len(P)
    A = np.vstack([P.T - np.eye(n), np.ones((1, n))])
    return np.linalg.lstsq(A, np.r_[np.zeros(n), 1.0], rcond=None)[0]


def _start_unchanged(p, P, alpha):
    return np.asarray(p, float)


# ------------------------------------------------------------------------------------------ weighted_js
def _kl(a, b, log=np.log2):
    nz = a > 0
    return float(np.sum(a[nz] * log(a[nz] / b[nz])))


def _js_nats(p, q, w):
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = w * p + (1 - w) * q
    return (w * _kl(p, m, np.log) if w > 0 else 0.0) + ((1 - w) * _kl(q, m, np.log) if w < 1 else 0.0)


def _js_swapped_weights(p, q, w):
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = (1 - w) * p + w * q
    return ((1 - w) * _kl(p, m) if w < 1 else 0.0) + (w * _kl(q, m) if w > 0 else 0.0)


def _js_halves_on_kl(p, q, w):
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = w * p + (1 - w) * q
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


def _js_plain_mixture(p, q, w):
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = (p + q) / 2
    return w * _kl(p, m) + (1 - w) * _kl(q, m)


def _js_zero_times_inf(p, q, w):
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = w * p + (1 - w) * q
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.sum(np.where(p > 0, p * np.log2(p / m), 0.0))
        kl_q = np.sum(np.where(q > 0, q * np.log2(q / m), 0.0))
    return float(w * kl_p + (1 - w) * kl_q)  # 0 · inf = nan when w is 0 or 1


def _js_no_zero_guard(p, q, w):
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = w * p + (1 - w) * q
    return float(w * np.sum(p * np.log2(p / m)) + (1 - w) * np.sum(q * np.log2(q / m)))  # 0·log 0 = nan


# ------------------------------------------------------------------------------------------ recent_five
def _fit_two(pretrained, data, new_test):
    models = {"scratch": BiasedMF(verbose=False),
              "freeze films": BiasedMF(init_from=pretrained, freeze_items=True, verbose=False)}
    return {name: rmse(new_test["rating"], m.fit(data).predict(new_test["userId"], new_test["movieId"]))
            for name, m in models.items()}


def _first_five(pretrained, new_chron, new_test):
    return _fit_two(pretrained, new_chron.groupby("userId").head(5), new_test)


def _all_ratings(pretrained, new_chron, new_test):
    return _fit_two(pretrained, new_chron, new_test)


def _swapped(pretrained, new_chron, new_test):
    out = _fit_two(pretrained, new_chron.groupby("userId").tail(5), new_test)
    return {"scratch": out["freeze films"], "freeze films": out["scratch"]}


def _a_list(pretrained, new_chron, new_test):
    return [1.08, 1.05]


def _other_keys(pretrained, new_chron, new_test):
    return {"scratch": 1.08, "frozen": 1.05}


WRONG = {
    "09.half_life_for_weight": [
        ("natural logarithm", _half_life_ln),
        ("sign flipped", _half_life_sign),
        ("multiplied by the number of halvings", _half_life_times_halvings),
        ("in seconds", _half_life_seconds),
        ("a huge finite number for weight 1", _half_life_no_edge_case),
        ("age times weight", _half_life_weight_times_age),
    ],
    "09.long_run_interest": [
        ("one step only", _one_step),
        ("the right eigenvector (uniform)", _right_eigenvector),
        ("eigenvector not normalised", _eigenvector_not_normalised),
        ("three steps: not converged", _too_few_steps),
        ("stationary even with alpha = 1", _stationary_even_at_alpha_one),
        ("the start, unchanged", _start_unchanged),
    ],
    "09.weighted_js": [
        ("in nats", _js_nats),
        ("weights swapped", _js_swapped_weights),
        ("KL terms still averaged with one half", _js_halves_on_kl),
        ("M still the plain average", _js_plain_mixture),
        ("0 · inf at w = 0 or 1", _js_zero_times_inf),
        ("no guard for 0 · log 0", _js_no_zero_guard),
    ],
    "09.recent_five": [
        ("the first five ratings (section 4.2's setup)", _first_five),
        ("all the fine-tuning ratings", _all_ratings),
        ("scratch and freeze films swapped", _swapped),
        ("a list instead of a dict", _a_list),
        ("a key that is not an approach's name", _other_keys),
    ],
    "09.quiz": [
        ("drift compared with 0 blamed on rounding", {1: "a", 2: "a", 3: "b", 4: "b", 5: "b", 6: 0.5}),
        ("the unnormalised alpha", {1: "b", 2: "a", 3: "b", 4: "b", 5: "b", 6: 0.6}),
        ("a letter that is not an option", {1: "b", 2: "a", 3: "e", 4: "b", 5: "b", 6: 0.5}),
        ("a number where a letter is due", {1: "b", 2: "a", 3: "b", 4: 2, 5: "b", 6: 0.5}),
        ("a letter where a number is due", {1: "b", 2: "a", 3: "b", 4: "b", 5: "b", 6: "b"}),
    ],
}

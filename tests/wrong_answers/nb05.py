"""Plausible wrong answers to the exercises of notebook 05; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
from functools import cache

import numpy as np

from recsys_course.models import AutoRec


# ------------------------------------------------------------------------------------ 05.masked_grad
def _grad_unmasked(pred, target, mask):
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    return 2 * (pred - target) / pred.size


def _grad_no_two(pred, target, mask):
    pred, target, mask = (np.asarray(a, float) for a in (pred, target, mask))
    return mask * (pred - target) / max(mask.sum(), 1.0)


def _grad_sign(pred, target, mask):
    pred, target, mask = (np.asarray(a, float) for a in (pred, target, mask))
    return 2 * mask * (target - pred) / max(mask.sum(), 1.0)


def _grad_all_cells(pred, target, mask):
    pred, target, mask = (np.asarray(a, float) for a in (pred, target, mask))
    return 2 * mask * (pred - target) / pred.size


def _grad_zero_division(pred, target, mask):
    pred, target, mask = (np.asarray(a, float) for a in (pred, target, mask))
    return 2 * mask * (pred - target) / mask.sum()


def _grad_loss_value(pred, target, mask):
    pred, target, mask = (np.asarray(a, float) for a in (pred, target, mask))
    return float(((pred - target) ** 2 * mask).sum() / max(mask.sum(), 1.0))


# ------------------------------------------------------------------------------------ 05.nll_floor
def _floor_uniform_catalogue(x):
    x = np.asarray(x, float)
    return x.sum(1) * np.log(x.shape[1])


def _floor_unnormalised(x):
    x = np.asarray(x, float)
    return -np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0).sum(1)


def _floor_naive_log(x):
    x = np.asarray(x, float)
    return -(x * np.log(x / x.sum(1, keepdims=True))).sum(1)


def _floor_even_split(x):
    x = np.asarray(x, float)
    k = (x > 0).sum(1)
    return np.where(k > 0, x.sum(1) * np.log(np.maximum(k, 1)), 0.0)


def _floor_log_likelihood(x):
    x = np.asarray(x, float)
    n = x.sum(1, keepdims=True)
    pi = np.divide(x, n, out=np.zeros_like(x), where=n > 0)
    return np.where(x > 0, x * np.log(np.where(pi > 0, pi, 1.0)), 0.0).sum(1)


def _floor_total(x):
    x = np.asarray(x, float)
    n = x.sum(1, keepdims=True)
    pi = np.divide(x, n, out=np.zeros_like(x), where=n > 0)
    return float(-np.where(x > 0, x * np.log(np.where(pi > 0, pi, 1.0)), 0.0).sum())


# ------------------------------------------------------------------------------------ 05.kl_to_prior
def _kl_reversed(mu, logvar, prior_mu, prior_logvar):
    # KL(p || q): the roles of the code and the prior swapped
    m, lv = np.asarray(prior_mu, float), np.asarray(prior_logvar, float)
    mu, logvar = np.asarray(mu, float), np.asarray(logvar, float)
    return 0.5 * (logvar - lv + (np.exp(lv) + (m - mu) ** 2) / np.exp(logvar) - 1).sum(-1)


def _kl_standard(mu, logvar, prior_mu, prior_logvar):
    mu, logvar = np.asarray(mu, float), np.asarray(logvar, float)
    return 0.5 * (mu ** 2 + np.exp(logvar) - logvar - 1).sum(-1)


def _kl_var_not_scaled(mu, logvar, prior_mu, prior_logvar):
    m, lv = np.asarray(prior_mu, float), np.asarray(prior_logvar, float)
    mu, logvar = np.asarray(mu, float), np.asarray(logvar, float)
    return 0.5 * (lv - logvar + np.exp(logvar) + (mu - m) ** 2 / np.exp(lv) - 1).sum(-1)


def _kl_summed_over_users(mu, logvar, prior_mu, prior_logvar):
    m, lv = np.asarray(prior_mu, float), np.asarray(prior_logvar, float)
    mu, logvar = np.asarray(mu, float), np.asarray(logvar, float)
    return float(0.5 * (lv - logvar + (np.exp(logvar) + (mu - m) ** 2) / np.exp(lv) - 1).sum())


def _kl_std_instead_of_var(mu, logvar, prior_mu, prior_logvar):
    # divides by s instead of s² (reads prior_logvar as a log standard deviation)
    m, lv = np.asarray(prior_mu, float), np.asarray(prior_logvar, float)
    mu, logvar = np.asarray(mu, float), np.asarray(logvar, float)
    return 0.5 * (lv - logvar + (np.exp(logvar) + (mu - m) ** 2) / np.exp(0.5 * lv) - 1).sum(-1)


# ------------------------------------------------------------------------------------ 05.unmasked_wide
@cache
def _fit(n_factors, masked):
    # the tests always pass the same rating_train; one fit per setting is enough for the wrong answers below
    from recsys_course.data import load_movielens
    from recsys_course.split import rating_split

    rating_train = rating_split(load_movielens().ratings)[0]
    return AutoRec(n_factors=n_factors, n_epochs=10, patience=None, refit=False, masked=masked, seed=0,
                   verbose=False).fit(rating_train)


def _wide_masked(rating_train):
    return _fit(128, True).history_.best_metric


def _wide_still_32(rating_train):
    return _fit(32, False).history_.best_metric


def _wide_mse(rating_train):
    return _fit(128, False).history_.best_metric ** 2


def _wide_the_model(rating_train):
    return _fit(128, False)


WRONG = {
    "05.masked_grad": [
        ("the gradient of the unmasked loss", _grad_unmasked),
        ("the factor 2 forgotten", _grad_no_two),
        ("the sign flipped", _grad_sign),
        ("divided by every cell, not the observed ones", _grad_all_cells),
        ("0/0 when nothing is observed", _grad_zero_division),
        ("the loss instead of its gradient", _grad_loss_value),
    ],
    "05.nll_floor": [
        ("an even spread over the whole catalogue", _floor_uniform_catalogue),
        ("π = x, not normalised", _floor_unnormalised),
        ("0·log 0 computed as nan", _floor_naive_log),
        ("an even split over the films taken (wrong for counts)", _floor_even_split),
        ("the log-likelihood instead of its negative", _floor_log_likelihood),
        ("one total for all users", _floor_total),
    ],
    "05.kl_to_prior": [
        ("KL(p‖q) instead of KL(q‖p)", _kl_reversed),
        ("the prior ignored: the KL to N(0, I)", _kl_standard),
        ("σ² not divided by s²", _kl_var_not_scaled),
        ("one number for all users", _kl_summed_over_users),
        ("divided by s instead of s²", _kl_std_instead_of_var),
    ],
    "05.unmasked_wide": [
        ("the masked loss at 128 units", _wide_masked),
        ("section 2's 32-unit network", _wide_still_32),
        ("the MSE instead of the RMSE", _wide_mse),
        ("the fitted model returned", _wide_the_model),
    ],
    "05.quiz": [
        ("the unmasked failure blamed on too few epochs", {1: "a", 2: "b", 3: "c", 4: 6046540, 5: 11}),
        ("the parameters without the biases", {1: "b", 2: "b", 3: "c", 4: 6040000, 5: 11}),
        ("β's cap reached in epoch 10 (t counted from 1)", {1: "b", 2: "b", 3: "c", 4: 6046540, 5: 10}),
        ("a letter that is not an option", {1: "b", 2: "e", 3: "c", 4: 6046540, 5: 11}),
        ("a number where a letter is due", {1: "b", 2: "b", 3: 3, 4: 6046540, 5: 11}),
    ],
}

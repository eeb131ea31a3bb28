"""Checks of notebook 05 (autoencoders): the masked reconstruction loss, the KL annealing schedule, the KL
divergence of a diagonal Gaussian.

Each check compares the student's NumPy function with a reference (the formulas of
:mod:`recsys_course.models.autoencoders`) on small hand-made cases and a few edge cases, and raises
AssertionError with a hint when they differ.
"""
from __future__ import annotations

import math

import numpy as np

from . import exercise


def _close(got, want, tol=1e-9) -> bool:
    try:
        return np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=tol, atol=tol)
    except (TypeError, ValueError):
        return False


def _masked_mse_reference(pred, target, mask) -> float:
    n = mask.sum()
    return float(((pred - target) ** 2 * mask).sum() / n) if n > 0 else 0.0


_R = np.array([[5.0, 0.0, 3.0], [0.0, 4.0, 0.0]])
_P = np.array([[4.0, 2.5, 3.0], [1.0, 5.0, 0.5]])
_MASKED_CASES = [
    (_P, _R, (_R > 0).astype(float), "the worked example of section 2 (three observed cells)"),
    (_P, _R, np.ones_like(_R), "an all-ones mask: the plain mean over every cell"),
    (np.array([[1.0, -50.0]]), np.array([[2.0, 0.0]]), np.array([[1.0, 0.0]]),
     "a wild prediction at an unobserved cell must not count"),
    (np.array([[3.0, 1.0]]), np.array([[0.0, 0.0]]), np.zeros((1, 2)), "no observed cell at all: return 0.0"),
    (np.arange(12.0).reshape(3, 4), np.ones((3, 4)), np.eye(3, 4), "a diagonal mask"),
]


@exercise("05.masked_mse")
def check_masked_mse(answer) -> None:
    for pred, target, mask, what in _MASKED_CASES:
        want = _masked_mse_reference(pred, target, mask)
        got = answer(pred.copy(), target.copy(), mask.copy())
        assert _close(got, want), (
            f"masked_mse returned {got!r}, expected {want:.6g} — case: {what}. Sum the squared errors of the "
            "observed cells only (multiply by the mask) and divide by the number of observed cells.")


def _kl_beta_reference(step, beta_max, anneal_steps) -> float:
    if anneal_steps == 0:
        return float(beta_max)
    return float(beta_max * min(1.0, step / anneal_steps))


_BETA_CASES = [
    (0, 0.2, 100, "the very first step: beta is 0"),
    (50, 0.2, 100, "half way: beta_max / 2"),
    (100, 0.2, 100, "step T: beta_max"),
    (5000, 0.2, 100, "long after T: beta stays at beta_max"),
    (7, 1.0, 10, "beta_max = 1"),
    (3, 0.5, 0, "anneal_steps = 0 means no annealing: beta_max from the start"),
    (0, 0.0, 10, "beta_max = 0: a plain (non-variational) autoencoder"),
]


@exercise("05.kl_beta")
def check_kl_beta(answer) -> None:
    for step, beta_max, anneal, what in _BETA_CASES:
        want = _kl_beta_reference(step, beta_max, anneal)
        got = answer(step, beta_max, anneal)
        assert _close(got, want), (f"kl_beta({step}, {beta_max}, {anneal}) returned {got!r}, expected {want:.6g} — "
                                   f"case: {what}.")


def _gaussian_kl_reference(mu, logvar) -> np.ndarray:
    return 0.5 * (mu ** 2 + np.exp(logvar) - logvar - 1.0).sum(-1)


_KL_CASES = [
    (np.zeros((1, 3)), np.zeros((1, 3)), "q = N(0, I) is the prior itself: KL = 0"),
    (np.array([[1.0, 0.0]]), np.array([[0.0, math.log(2.0)]]), "the worked example of section 5"),
    (np.array([[0.5, -1.0], [2.0, 0.0], [0.0, 0.0]]), np.array([[-1.0, 0.3], [0.0, 0.0], [2.0, -2.0]]),
     "three users at once: one KL per row"),
]


@exercise("05.gaussian_kl")
def check_gaussian_kl(answer) -> None:
    for mu, logvar, what in _KL_CASES:
        want = _gaussian_kl_reference(mu, logvar)
        got = np.asarray(answer(mu.copy(), logvar.copy()), dtype=float)
        assert got.shape == want.shape, (f"return one KL per row (shape {want.shape}), got shape {got.shape} — "
                                         f"case: {what}. Sum over the latent dimensions only (axis -1).")
        assert _close(got, want), (f"got {np.round(got, 6)}, expected {np.round(want, 6)} — case: {what}. Remember "
                                   "KL = 0.5 * sum(mu**2 + exp(logvar) - logvar - 1).")

"""Solutions to the exercises of notebook 05 (autoencoders).

* ``masked_mse`` — multiply the squared errors by the 0/1 mask so that unobserved cells contribute nothing,
  then divide by the number of observed cells (``mask.sum()``), returning 0.0 when there is none.
* ``kl_beta`` — the linear KL annealing schedule: ``beta_max * min(1, step / anneal_steps)``; with
  ``anneal_steps == 0`` there is no ramp and the weight is ``beta_max`` from the first step.
* ``gaussian_kl`` — the closed-form KL divergence of N(mu, diag(exp(logvar))) from N(0, I),
  ``0.5 * sum(mu**2 + exp(logvar) - logvar - 1)`` over the last axis: one number per user.
"""
from __future__ import annotations

import numpy as np


def masked_mse(pred, target, mask) -> float:
    pred, target, mask = (np.asarray(a, dtype=float) for a in (pred, target, mask))
    n = mask.sum()
    if n == 0:
        return 0.0
    return float((((pred - target) ** 2) * mask).sum() / n)


def kl_beta(step, beta_max, anneal_steps) -> float:
    if anneal_steps == 0:
        return float(beta_max)
    return float(beta_max * min(1.0, step / anneal_steps))


def gaussian_kl(mu, logvar) -> np.ndarray:
    mu, logvar = np.asarray(mu, dtype=float), np.asarray(logvar, dtype=float)
    return 0.5 * (mu ** 2 + np.exp(logvar) - logvar - 1.0).sum(-1)


SOLUTIONS = {
    "05.masked_mse": masked_mse,
    "05.kl_beta": kl_beta,
    "05.gaussian_kl": gaussian_kl,
}

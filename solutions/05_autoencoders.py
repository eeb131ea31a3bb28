"""Solutions to the exercises of notebook 05 (autoencoders).

* ``masked_grad`` — the denominator ``Σm`` does not depend on the predictions, so
  ``∂L/∂r̂_ui = 2 m_ui (r̂_ui − r_ui) / Σm``: exactly 0 wherever ``m_ui = 0`` (an unobserved cell is not in the
  loss), and 0 everywhere when nothing is observed (the package's loss is then the constant 0). On the example of
  section 2 only two cells get a gradient: (0, 0), predicted 4 for a 5, gets ``2·(4 − 5)/3 = −2/3`` — gradient
  descent moves its prediction *up* towards 5 — and (1, 1), predicted 5 for a 4, gets ``+2/3`` and is moved down.
  The cell (0, 2) is predicted exactly (gradient 0), and the three unobserved cells get 0 whatever is predicted
  there. Without the mask the unobserved cells get ``2 r̂ / 6``: every one of them is pushed towards 0.
* ``nll_floor`` — minimise ``−Σ x_i log π_i`` under ``Σ π_i = 1``: the Lagrangian gives ``x_i / π_i = const``,
  so ``π_i = x_i / N`` with ``N = Σ x_i`` (the empirical distribution of the history), and the floor is
  ``−Σ x_i log(x_i / N)`` with ``0·log 0 = 0`` (``scipy.special.xlogy``). For a 0/1 row of N films it is
  ``N ln N``: a softmax over the catalogue must split one unit of mass over N films, so the loss grows with the
  user's activity, and it is 0 only for a user with a single film (or none). On rank_train, over the 4,853 films
  Mult-VAE models (at least 3 interactions), the floor averages about 834 nats per user (median user: about
  246). The final Mult-VAE's training loss in 5.1 ends near 1,064 nats per user (its KL term and the input
  dropout included), so about four fifths of it is the floor that no decoder can remove: a perfect decoder could
  lower it by at most about 230 nats per user. A large multinomial loss says how active the users are, not how
  bad the model is.
* ``kl_to_prior`` — per dimension, ``log q(z) − log p(z) = log(s/σ) − (z − μ)²/(2σ²) + (z − m)²/(2s²)``; under
  q, ``E[(z − μ)²] = σ²`` and ``E[(z − m)²] = σ² + (μ − m)²``, so
  ``KL = ½ Σ_k [log s² − log σ² + (σ² + (μ − m)²)/s² − 1]``. With ``m = 0, s² = 1`` it is section 5's formula;
  with ``q = p`` every term is 0. For ``q = N(1, 1)``: 0.5 against ``N(0, 1)``, ½(ln 4 − ½) ≈ 0.4431 against the
  wider ``N(0, 4)``: a wider prior charges less for a code far from its centre and pulls the codes less; a prior
  with ``s² < 1`` pulls harder.
* ``unmasked_wide`` (experiment) — section 2's unmasked run with ``n_factors=128`` instead of 32, everything
  else unchanged (10 epochs, ``patience=None``, ``refit=False``, ``masked=False``, seed 0). On ml-latest-small
  the best validation RMSE is 2.9947 at epoch 3 against 3.0396 with 32 units (the masked 32-unit run: 0.8733);
  the wide network still reconstructs an unrated cell as 0.034 stars on average (32 units: 0.033). More capacity
  fits the loss's target better, and that target is 0 in every empty cell: the mask fixes the problem, the size
  does not.
* ``quiz`` — the reasons are printed by ``show_solution("05.quiz")``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from recsys_course.models import AutoRec


def masked_mse_grad(pred, target, mask):
    pred, target, mask = (np.asarray(a, dtype=float) for a in (pred, target, mask))
    n = mask.sum()
    if n == 0:
        return np.zeros_like(pred)
    return 2.0 * mask * (pred - target) / n


def nll_floor(x):
    x = np.asarray(x, dtype=float)
    n = x.sum(axis=1, keepdims=True)
    pi = np.divide(x, n, out=np.zeros_like(x), where=n > 0)  # the best π: the history's own proportions
    return -xlogy(x, pi).sum(axis=1)


def kl_to_prior(mu, logvar, prior_mu, prior_logvar):
    mu, logvar = np.asarray(mu, dtype=float), np.asarray(logvar, dtype=float)
    m, log_s2 = np.asarray(prior_mu, dtype=float), np.asarray(prior_logvar, dtype=float)
    per_dim = log_s2 - logvar + (np.exp(logvar) + (mu - m) ** 2) / np.exp(log_s2) - 1.0
    return 0.5 * per_dim.sum(axis=-1)


def unmasked_wide(rating_train):
    model = AutoRec(n_factors=128, n_epochs=10, patience=None, refit=False, masked=False, seed=0, verbose=False)
    return model.fit(rating_train).history_.best_metric


SOLUTIONS = {
    "05.masked_grad": masked_mse_grad,
    "05.nll_floor": nll_floor,
    "05.kl_to_prior": kl_to_prior,
    "05.unmasked_wide": unmasked_wide,
    "05.quiz": {1: "b", 2: "b", 3: "c", 4: 6046540, 5: 11},
}

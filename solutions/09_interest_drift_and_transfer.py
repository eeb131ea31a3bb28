"""Solutions to the exercises of notebook 09 (interest drift and transfer learning).

* ``decay_weight`` — the age of the rating in half-lives is ``(t_ref - t) / half_life``; each half-life halves
  the weight, so ``w = 2 ** (-age)``.
* ``markov_step`` — ``p @ P`` is Σ_j p(j) P(i | j) for every i (P's rows are the distributions P(· | j)); mixing
  it with p with weights α and 1 − α keeps the sum at 1.
* ``js_divergence`` — the mixture ``m = (p + q) / 2``; KL(p ‖ m) sums p·log2(p/m) over the entries with p > 0
  (0·log 0 = 0), and JS is the mean of the two KL terms.
"""
from __future__ import annotations

import numpy as np


def decay_weight(t, half_life, t_ref):
    return 2.0 ** (-(t_ref - t) / half_life)


def markov_step(p, P, alpha):
    p = np.asarray(p, dtype=float)
    return alpha * p + (1 - alpha) * (p @ np.asarray(P, dtype=float))


def js_divergence(p, q):
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    m = (p + q) / 2

    def kl(a, b):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / b[nz])))

    return (kl(p, m) + kl(q, m)) / 2


SOLUTIONS = {"09.decay_weight": decay_weight, "09.markov_step": markov_step, "09.js_divergence": js_divergence}

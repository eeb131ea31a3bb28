"""Solutions to the exercises of notebook 08 (pretraining and fine-tuning).

* ``mask_items`` — a position is masked when it is real (token > 0) and its draw is below ``mask_prob``; rows with
  real items but nothing masked get the real position with the smallest draw (``argmin`` over the draws, with
  padding set to +inf so it can never win). Inputs replace masked tokens by the [MASK] token; targets keep the
  original token there and 0 elsewhere, so the loss sees only masked positions.
* ``lora_parameter_count`` — A is r × d_in and B is d_out × r: r·(d_in + d_out) per adapted matrix, times
  the number of matrices. The frozen W is not counted.
* ``lora_forward`` — the frozen layer plus the scaled low-rank path, computed as (x Aᵀ) Bᵀ: the r-wide
  intermediate keeps the cost at O(r (d_in + d_out)) per row instead of forming B A (d_out × d_in).
"""
from __future__ import annotations

import numpy as np


def mask_items(tokens, u, mask_prob, mask_token):
    real = tokens > 0
    masked = real & (u < mask_prob)
    for w in range(len(tokens)):
        if real[w].any() and not masked[w].any():
            masked[w, np.argmin(np.where(real[w], u[w], np.inf))] = True
    inputs = np.where(masked, mask_token, tokens)
    targets = np.where(masked, tokens, 0)
    return inputs, targets


def lora_parameter_count(d_in, d_out, r, n_matrices):
    return n_matrices * r * (d_in + d_out)


def lora_forward(x, W, b, A, B, alpha):
    r = A.shape[0]
    return x @ W.T + b + (alpha / r) * ((x @ A.T) @ B.T)


SOLUTIONS = {
    "08.mask_items": mask_items,
    "08.lora_parameter_count": lora_parameter_count,
    "08.lora_forward": lora_forward,
}

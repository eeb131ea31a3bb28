"""Solutions to the exercises of notebook 06 (neural and sequential models).

* ``multi_head_attention`` — project to queries, keys and values once; head h owns columns
  h·d_h … (h+1)·d_h - 1 of each. Per head: scores :math:`q k^\\top/\\sqrt{d_h}`; :math:`-\\infty` above the
  diagonal (position t may not look at s > t); a numerically stable softmax per row (subtract the row maximum);
  weights times values. The heads' outputs are concatenated (a transformer would then apply one more linear
  map). The diagonal is never masked, so no row is all :math:`-\\infty`.
* ``sampled_hit_probability`` — among the M - 1 other candidates, r - 1 score higher than the target. Drawing N of
  them without replacement, the number of better ones drawn is hypergeometric; the target is in the sampled
  top k when at most k - 1 of them are drawn: :math:`\\sum_{x=0}^{k-1} \\binom{r-1}{x}\\binom{M-r}{N-x} /
  \\binom{M-1}{N}`. Written with ``math.comb`` (exact integers) — ``scipy.stats.hypergeom.cdf`` gives the same.
* ``next_item_windows`` — the pairs (x_j, x_{j+1}) cut into chunks of ``max_len`` from the end, so only the oldest
  chunk can be short; each chunk padded on the right with 0.
"""
from __future__ import annotations

import math

import numpy as np


def multi_head_attention(X, Wq, Wk, Wv, n_heads):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    dk, dv = Q.shape[1] // n_heads, V.shape[1] // n_heads
    future = np.triu(np.ones((len(X), len(X)), dtype=bool), k=1)
    heads = []
    for h in range(n_heads):
        q, k, v = Q[:, h * dk:(h + 1) * dk], K[:, h * dk:(h + 1) * dk], V[:, h * dv:(h + 1) * dv]
        scores = np.where(future, -np.inf, q @ k.T / np.sqrt(dk))
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        heads.append(weights / weights.sum(axis=1, keepdims=True) @ v)
    return np.concatenate(heads, axis=1)


def sampled_hit_probability(full_rank, n_candidates, n_negatives, k):
    better, others = full_rank - 1, n_candidates - 1
    total = math.comb(others, n_negatives)
    hit = sum(math.comb(better, x) * math.comb(others - better, n_negatives - x)
              for x in range(0, min(k - 1, better, n_negatives) + 1))
    return hit / total


def next_item_windows(sequence, max_len):
    pairs = list(zip(sequence[:-1], sequence[1:]))
    chunks = []
    end = len(pairs)
    while end > 0:
        chunks.append(pairs[max(0, end - max_len):end])
        end -= max_len
    chunks.reverse()
    inputs = np.zeros((len(chunks), max_len), dtype=np.int64)
    targets = np.zeros_like(inputs)
    for w, chunk in enumerate(chunks):
        for t, (a, b) in enumerate(chunk):
            inputs[w, t], targets[w, t] = a, b
    return inputs, targets


SOLUTIONS = {
    "06.multi_head_attention": multi_head_attention,
    "06.sampled_hit_probability": sampled_hit_probability,
    "06.next_item_windows": next_item_windows,
}

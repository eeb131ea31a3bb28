"""Solutions to the exercises of notebook 06 (neural and sequential models).

* ``multi_head_attention`` — project to queries, keys and values once; head h owns the contiguous columns
  h·d_h … (h+1)·d_h − 1 of each (d_h = d_k / n_heads for Q and K, d_v / n_heads for V). Per head: scores
  :math:`q k^\\top/\\sqrt{d_h}` — the width of one head, not of all of them; :math:`-\\infty` strictly above the
  diagonal (position t may not look at s > t, but it must see itself, or the first row of weights is 0/0); a
  softmax along each row with the row maximum subtracted first (inputs of size 30 give scores in the hundreds,
  and e^s overflows); weights times values. The heads' outputs go side by side into an (L, d_v) array (a
  transformer would then apply one more linear map). With one head it is the worked example of section 3.4.
* ``half_hit_rank`` — an inversion of the formula of section 6.1. Among the M − 1 other candidates, r − 1 score
  higher than a target at full rank r; N of them are drawn without replacement, and the target is in the
  sampled top k when at most k − 1 better ones are drawn:
  :math:`P_r = \\sum_{x=0}^{k-1} \\binom{r-1}{x}\\binom{M-r}{N-x} / \\binom{M-1}{N}`. Going one rank deeper
  turns one worse item into a better one, so :math:`P_r` never increases with r: a bisection over r finds the
  first rank with :math:`P_r < 1/2` (a scan works too). With N ≥ k the worst item (r = M) is a miss for sure,
  so such a rank always exists. Comparing :math:`2\\sum < \\binom{M-1}{N}` in whole numbers avoids any rounding.
  **The open question** — at which full rank does the probability drop below ½ for 100 negatives and the
  9,701 films of the lesson run? At **rank 936** (rank 935 is still a hit with probability 0.5007): a film on
  page 94 of a ten-per-page list is a sampled hit@10 half of the time, which is why the plot of section 6.1
  crosses one half near 1,000. The rank is close to :math:`(k - \\tfrac13)(M - 1)/N` (the median of the number
  of better films drawn is near its mean :math:`N(r-1)/(M-1)`): ten times more negatives, ten times shallower —
  95 with 1,000 negatives. When every other item is drawn (N = M − 1) the sampled rank is the full rank and the
  answer is k + 1 = 11.
* ``next_item_windows`` — the pairs (x_j, x_{j+1}) cut into chunks of ``max_len`` counted from the end, so that
  only the oldest chunk can be short; the chunks oldest first, each padded on the right with 0. One film gives
  no pair and so no window: an array of shape (0, max_len).
* ``sasrec_recent_films`` (experiment) — ``recommend`` reads each user's last ``max_len`` training films, so a
  copy of the fitted model with ``max_len`` set to n reads only the last n (the positional embeddings of
  positions 0..n−1 were trained on the short windows too). Evaluate each copy exactly as section 4 does
  (``relevance_threshold=None``: every target counts) and keep HR@10; work on copies, so the notebook's model
  still reads 20 films afterwards. **The open question** — does SASRec use more than the last film? In the lesson run
  (610 users), HR@10 is 0.0689 reading the last film only (42 users), 0.082 reading the last 5 (50 users), 0.0787
  reading the last 10 (48) and 0.0705 reading all 20 (43, section 4). The last film alone gets nearly as many hits as
  twenty (one fewer, though not for all the same users: 24 are hit both ways): as far as the hit rate can tell, what
  the model uses is at the end of the sequence — an item-to-next-item transition more than a long history. A short
  window does a little better than one film or twenty (5 films hit 8 more users than one and 7 more than twenty, 10
  films 6 and 5 more), but none of these gaps is larger than about one standard error of a difference (section 4:
  about 8 users), so the longer windows do not help measurably. That agrees with the reading of section 4: at this
  budget the order carries no measurable signal beyond "what did they just rate?".
* ``quiz`` — the reasons are printed by ``show_solution("06.quiz")``.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from recsys_course.evaluate import evaluate


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


def half_hit_rank(n_candidates, n_negatives, k):
    others, total = n_candidates - 1, math.comb(n_candidates - 1, n_negatives)

    def below_half(rank):  # P[at most k - 1 of the rank - 1 better items are drawn] < 1/2, in whole numbers
        better = rank - 1
        hits = sum(math.comb(better, x) * math.comb(others - better, n_negatives - x)
                   for x in range(min(k - 1, better, n_negatives) + 1))
        return 2 * hits < total

    lo, hi = 1, n_candidates  # below_half(n_candidates) holds when n_negatives >= k
    while lo < hi:
        mid = (lo + hi) // 2
        if below_half(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


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


def sasrec_recent_films(sasrec, ll_train, ll_test):
    hit_rate = {}
    for n_films in (1, 5, 10):
        model = copy.deepcopy(sasrec)  # the notebook's model keeps reading its 20 films
        model.max_len = n_films
        hit_rate[n_films] = evaluate(model, ll_train, ll_test, relevance_threshold=None)["hit@10"]
    return hit_rate


SOLUTIONS = {
    "06.multi_head_attention": multi_head_attention,
    "06.half_hit_rank": half_hit_rank,
    "06.next_item_windows": next_item_windows,
    "06.sasrec_recent_films": sasrec_recent_films,
    "06.quiz": {1: "b", 2: "c", 3: "c", 4: 19, 5: 10, 6: "d"},
}

"""Plausible wrong answers to the exercises of notebook 06; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import copy

import numpy as np
from scipy.stats import hypergeom

from recsys_course.evaluate import evaluate


# ------------------------------------------------------------------------------------------ multi-head attention
def _attention(X, Wq, Wk, Wv, n_heads, *, scale_all=False, mask=True, axis=1, interleaved=False,
               mask_diagonal=False, stable=True, one_head_only=False):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    dk, dv = Q.shape[1] // n_heads, V.shape[1] // n_heads
    L = len(X)
    heads = []
    for h in range(1 if one_head_only else n_heads):
        ck = np.arange(h, Q.shape[1], n_heads) if interleaved else np.arange(h * dk, (h + 1) * dk)
        cv = np.arange(h, V.shape[1], n_heads) if interleaved else np.arange(h * dv, (h + 1) * dv)
        s = Q[:, ck] @ K[:, ck].T / np.sqrt(Q.shape[1] if scale_all else dk)
        if mask:
            s = np.where(np.triu(np.ones((L, L), bool), k=0 if mask_diagonal else 1), -np.inf, s)
        w = np.exp(s - s.max(axis=axis, keepdims=True)) if stable else np.exp(s)
        heads.append(w / w.sum(axis=axis, keepdims=True) @ V[:, cv])
    return np.concatenate(heads, axis=1)


def _mha_scale_all(X, Wq, Wk, Wv, n_heads):
    return _attention(X, Wq, Wk, Wv, n_heads, scale_all=True)


def _mha_no_mask(X, Wq, Wk, Wv, n_heads):
    return _attention(X, Wq, Wk, Wv, n_heads, mask=False)


def _mha_column_softmax(X, Wq, Wk, Wv, n_heads):
    return _attention(X, Wq, Wk, Wv, n_heads, axis=0)


def _mha_interleaved(X, Wq, Wk, Wv, n_heads):
    return _attention(X, Wq, Wk, Wv, n_heads, interleaved=True)


def _mha_diagonal_hidden(X, Wq, Wk, Wv, n_heads):
    return _attention(X, Wq, Wk, Wv, n_heads, mask_diagonal=True)


def _mha_unstable(X, Wq, Wk, Wv, n_heads):
    return _attention(X, Wq, Wk, Wv, n_heads, stable=False)


def _mha_one_head(X, Wq, Wk, Wv, n_heads):
    return _attention(X, Wq, Wk, Wv, n_heads, one_head_only=True)


# ------------------------------------------------------------------------------------------ half-hit rank
def _first_below(n_candidates, n_negatives, k, *, hits_up_to):
    ranks = np.arange(1, n_candidates + 1)
    p = hypergeom.cdf(hits_up_to, n_candidates - 1, ranks - 1, n_negatives)
    return int(ranks[np.argmax(p < 0.5)]) if (p < 0.5).any() else n_candidates


def _half_last_still_hit(n_candidates, n_negatives, k):
    return _first_below(n_candidates, n_negatives, k, hits_up_to=k - 1) - 1


def _half_k_better_allowed(n_candidates, n_negatives, k):
    return _first_below(n_candidates, n_negatives, k, hits_up_to=k)


def _half_probability(n_candidates, n_negatives, k):
    return float(hypergeom.cdf(k - 1, n_candidates - 1, 499, n_negatives))


def _half_mean_approximation(n_candidates, n_negatives, k):
    return round(k * (n_candidates - 1) / n_negatives) + 1


# ------------------------------------------------------------------------------------------ windows
def _chunks(sequence, max_len, from_start=False):
    pairs = list(zip(sequence[:-1], sequence[1:]))
    if from_start:
        return [pairs[s:s + max_len] for s in range(0, len(pairs), max_len)]
    out, end = [], len(pairs)
    while end > 0:
        out.append(pairs[max(0, end - max_len):end])
        end -= max_len
    return out[::-1]


def _pad(chunks, max_len, left=False):
    inputs = np.zeros((len(chunks), max_len), dtype=np.int64)
    targets = np.zeros_like(inputs)
    for w, chunk in enumerate(chunks):
        start = max_len - len(chunk) if left else 0
        for t, (a, b) in enumerate(chunk):
            inputs[w, start + t], targets[w, start + t] = a, b
    return inputs, targets


def _windows_from_start(sequence, max_len):
    return _pad(_chunks(sequence, max_len, from_start=True), max_len)


def _windows_newest_first(sequence, max_len):
    return _pad(_chunks(sequence, max_len)[::-1], max_len)


def _windows_left_padded(sequence, max_len):
    return _pad(_chunks(sequence, max_len), max_len, left=True)


def _windows_swapped(sequence, max_len):
    inputs, targets = _pad(_chunks(sequence, max_len), max_len)
    return targets, inputs


def _windows_one_item_window(sequence, max_len):
    if len(sequence) < 2:
        return np.array([[sequence[0]] + [0] * (max_len - 1)]), np.zeros((1, max_len), dtype=np.int64)
    return _pad(_chunks(sequence, max_len), max_len)


def _windows_unpadded(sequence, max_len):
    chunks = _chunks(sequence, max_len)
    return [[a for a, _ in c] for c in chunks], [[b for _, b in c] for c in chunks]


# ------------------------------------------------------------------------------------------ experiment
def _recent(sasrec, ll_train, ll_test, metric="hit@10", threshold=None, change=True):
    out = {}
    for n in (1, 5, 10):
        model = copy.deepcopy(sasrec)
        if change:
            model.max_len = n
        out[n] = float(evaluate(model, ll_train, ll_test, relevance_threshold=threshold)[metric])
    return out


def _recent_unchanged(sasrec, ll_train, ll_test):
    return _recent(sasrec, ll_train, ll_test, change=False)


def _recent_ndcg(sasrec, ll_train, ll_test):
    return _recent(sasrec, ll_train, ll_test, metric="ndcg@10")


def _recent_liked_only(sasrec, ll_train, ll_test):
    return _recent(sasrec, ll_train, ll_test, threshold=4.0)


def _recent_list(sasrec, ll_train, ll_test):
    return [0.07, 0.08, 0.08]


def _recent_missing_key(sasrec, ll_train, ll_test):
    return {1: 0.0705, 5: 0.082}


WRONG = {
    "06.multi_head_attention": [
        ("scaled by the width of all heads", _mha_scale_all),
        ("no causal mask", _mha_no_mask),
        ("softmax down the columns", _mha_column_softmax),
        ("heads take every n_heads-th column", _mha_interleaved),
        ("the diagonal hidden too", _mha_diagonal_hidden),
        ("no row maximum subtracted", _mha_unstable),
        ("only the first head returned", _mha_one_head),
    ],
    "06.half_hit_rank": [
        ("the last rank still at least one half", _half_last_still_hit),
        ("k better items allowed instead of k - 1", _half_k_better_allowed),
        ("a probability instead of a rank", _half_probability),
        ("the mean-count approximation", _half_mean_approximation),
    ],
    "06.next_item_windows": [
        ("windows cut from the start", _windows_from_start),
        ("newest window first", _windows_newest_first),
        ("padding on the left", _windows_left_padded),
        ("inputs and targets swapped", _windows_swapped),
        ("a window for a single film", _windows_one_item_window),
        ("ragged lists, no padding", _windows_unpadded),
    ],
    "06.sasrec_recent_films": [
        ("the model unchanged (reads 20 films)", _recent_unchanged),
        ("NDCG@10 instead of HR@10", _recent_ndcg),
        ("only liked test films scored", _recent_liked_only),
        ("a list instead of a dict", _recent_list),
        ("a missing key", _recent_missing_key),
    ],
    "06.quiz": [
        ("sampled inflation blamed on popular negatives", {1: "c", 2: "c", 3: "c", 4: 19, 5: 10, 6: "d"}),
        ("padding counted with films instead of pairs", {1: "b", 2: "c", 3: "c", 4: 18, 5: 10, 6: "d"}),
        ("expected count from 1,001 better films", {1: "b", 2: "c", 3: "c", 4: 19, 5: 10.01, 6: "d"}),
        ("a letter that is not an option", {1: "b", 2: "e", 3: "c", 4: 19, 5: 10, 6: "d"}),
        ("a number where a letter is due", {1: "b", 2: "c", 3: "c", 4: 19, 5: 10, 6: 4}),
    ],
}

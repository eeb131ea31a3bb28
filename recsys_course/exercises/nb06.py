"""Checks of notebook 06 (neural and sequential models): multi-head causal self-attention, the probability that a sampled
metric counts an item as a hit, and cutting a sequence into next-item training windows.

Each check compares the student's function with a reference (the formula in NumPy, ``scipy.stats.hypergeom``,
or :func:`recsys_course.models.sequential.next_item_windows`) on small cases and edge cases, and raises
AssertionError with a hint when they differ.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import hypergeom

from ..models.sequential import next_item_windows
from . import exercise


def _reference_attention(X, Wq, Wk, Wv, n_heads=1):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    dk, dv = Q.shape[1] // n_heads, V.shape[1] // n_heads
    out = []
    for h in range(n_heads):
        q, k, v = Q[:, h * dk:(h + 1) * dk], K[:, h * dk:(h + 1) * dk], V[:, h * dv:(h + 1) * dv]
        s = q @ k.T / np.sqrt(dk)
        s = np.where(np.tril(np.ones_like(s, dtype=bool)), s, -np.inf)
        w = np.exp(s - s.max(1, keepdims=True))
        out.append((w / w.sum(1, keepdims=True)) @ v)
    return np.concatenate(out, axis=1)


@exercise("06.multi_head_attention")
def check_multi_head_attention(answer) -> None:
    rng = np.random.default_rng(0)
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    eye = np.eye(2)
    cases = [((X, eye, eye, eye, 1), "the worked example of section 3.4 (one head, W_Q = W_K = W_V = I)"),
             ((X, eye, eye, eye, 2), "the worked example with two heads of width 1")]
    for L, d, dk, dv, h in [(1, 3, 2, 2, 1), (4, 3, 2, 6, 2), (6, 4, 4, 4, 1), (5, 6, 6, 6, 3)]:
        cases.append(((rng.normal(size=(L, d)), rng.normal(size=(d, dk)), rng.normal(size=(d, dk)),
                       rng.normal(size=(d, dv)), h), f"random shapes L={L}, d={d}, d_k={dk}, d_v={dv}, {h} head(s)"))
    big = rng.normal(size=(3, 2)) * 30
    cases.append(((big, eye, eye, eye, 1), "large scores: subtract the row maximum before exp, or it overflows"))
    for (x, wq, wk, wv, h), what in cases:
        want = _reference_attention(x, wq, wk, wv, h)
        got = np.asarray(answer(x.copy(), wq.copy(), wk.copy(), wv.copy(), h), dtype=float)
        assert got.shape == want.shape, f"output shape {got.shape}, expected {want.shape} (L × d_v) — case: {what}."
        assert np.all(np.isfinite(got)), f"the output has NaN or inf — case: {what}."
        assert np.allclose(got, want, atol=1e-8), (
            f"got\n{np.round(got, 4)}\nexpected\n{np.round(want, 4)}\n— case: {what}. Give head h the columns "
            "h·d_h … (h+1)·d_h - 1 of Q, K and V, scale its scores by 1/sqrt(d_h) (the width of one head), set the "
            "scores of later positions (s > t) to -inf before the softmax, and concatenate the heads' outputs.")
    x, wq, wk, wv, h = cases[3][0]
    changed = x.copy()
    changed[2:] += 5.0
    out = np.asarray(answer(changed, wq, wk, wv, h), dtype=float)
    assert np.allclose(out[:2], _reference_attention(x, wq, wk, wv, h)[:2], atol=1e-8), (
        "changing positions 3 and 4 changed the output at positions 1–2: the mask must hide the future")


@exercise("06.sampled_hit_probability")
def check_sampled_hit_probability(answer) -> None:
    cases = [
        (1, 1000, 100, 10, "rank 1 is always a hit"),
        (10, 1000, 100, 10, "rank 10: at most 9 items can beat it, so it is always in the top 10"),
        (11, 1000, 100, 10, "rank 11: a miss only if all 10 better items are drawn"),
        (500, 9700, 100, 10, "the example of section 6.1"),
        (5000, 9700, 100, 10, "deep in the list"),
        (50, 101, 100, 10, "every other item is drawn: the sampled rank equals the full rank (a miss)"),
        (7, 101, 100, 10, "every other item is drawn and the full rank is 7 (a hit)"),
        (300, 2000, 20, 1, "k = 1: a hit only if no drawn item is better"),
    ]
    for r, M, N, k, what in cases:
        want = float(hypergeom.cdf(k - 1, M - 1, r - 1, N))
        got = answer(r, M, N, k)
        assert got is not None and np.isfinite(float(got)), f"return a number — case: {what}."
        assert abs(float(got) - want) < 1e-9, (
            f"sampled_hit_probability(full_rank={r}, n_candidates={M}, n_negatives={N}, k={k}) returned {got!r}, "
            f"expected {want:.6g} — case: {what}. The number of better items among the N drawn ones follows a "
            "hypergeometric law: population M - 1 (the other candidates), r - 1 of them better, N draws; the item "
            "is a hit when at most k - 1 better items are drawn.")


@exercise("06.next_item_windows")
def check_next_item_windows(answer) -> None:
    cases = [
        ([5, 2, 9], 3, "a sequence shorter than max_len: one window"),
        ([1, 2, 3, 4, 5, 6, 7], 3, "six pairs, max_len 3: two full windows"),
        ([1, 2, 3, 4, 5, 6], 4, "five pairs, max_len 4: the oldest window is the short one"),
        ([8, 3], 5, "one pair"),
        ([4], 3, "one item: no pair, so no window (an array of shape (0, max_len))"),
        ([3, 1, 4, 1, 5, 9, 2, 6], 1, "max_len 1: every pair is its own window"),
    ]
    for seq, max_len, what in cases:
        want_in, want_tg = next_item_windows(np.array([0, len(seq)]), np.asarray(seq) - 1, max_len)
        got = answer(list(seq), max_len)
        assert isinstance(got, tuple) and len(got) == 2, "return a tuple (inputs, targets)"
        g_in, g_tg = (np.asarray(g, dtype=np.int64) for g in got)
        if len(want_in) == 0 and g_in.size == 0:
            g_in, g_tg = g_in.reshape(0, max_len), g_tg.reshape(0, max_len)
        assert g_in.ndim == 2 and g_in.shape[1:] == (max_len,) and g_tg.shape == g_in.shape, (
            f"inputs and targets must both be arrays of shape (n_windows, max_len) = (…, {max_len}); got "
            f"{g_in.shape} and {g_tg.shape} for {seq} — case: {what}. Pad every window on the right with 0.")
        assert g_in.shape == want_in.shape, (f"{len(g_in)} window(s) for {seq} with max_len={max_len}, expected "
                                             f"{len(want_in)} — case: {what}.")
        assert np.array_equal(g_in, want_in) and np.array_equal(g_tg, want_tg), (
            f"for {seq}, max_len={max_len} got inputs {g_in.tolist()}, targets {g_tg.tolist()}; expected inputs "
            f"{want_in.tolist()}, targets {want_tg.tolist()} — case: {what}. Align the windows at the end (the most "
            "recent window is full), oldest window first, and pad on the right with 0.")

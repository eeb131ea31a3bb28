"""Checks of notebook 08 (pretraining and fine-tuning): the cloze masking of BERT4Rec, LoRA's parameter count, and a
LoRA forward pass in NumPy.

Each check compares the student's function with a reference (:func:`recsys_course.models.masked.mask_items`, the
formula r·(d_in + d_out), or the LoRA formula in NumPy) on small cases and edge cases, and raises AssertionError
with a hint when they differ.
"""
from __future__ import annotations

import numpy as np

from ..models.masked import mask_items
from . import exercise


@exercise("08.mask_items")
def check_mask_items(answer) -> None:
    rng = np.random.default_rng(0)
    tokens = np.array([[3, 5, 7, 0, 0], [2, 4, 6, 8, 9], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    u = np.array([[0.1, 0.9, 0.15, 0.05, 0.0], [0.5, 0.6, 0.7, 0.8, 0.9], [0.3, 0.1, 0.1, 0.1, 0.1],
                  [0.0, 0.0, 0.0, 0.0, 0.0]])
    cases = [((tokens, u, 0.2, 10), "the worked example of section 2.2")]
    for n, L, p in [(6, 8, 0.2), (10, 5, 0.5), (4, 12, 0.05)]:
        t = rng.integers(1, 30, size=(n, L))
        lengths = rng.integers(0, L + 1, size=n)
        t[np.arange(L)[None, :] >= lengths[:, None]] = 0
        cases.append(((t, rng.random((n, L)), p, 31), f"random windows {n}×{L}, mask_prob={p}"))
    for (t, uu, p, m), what in cases:
        want_in, want_tg = mask_items(t, uu, p, m)
        got = answer(t.copy(), uu.copy(), p, m)
        assert isinstance(got, tuple) and len(got) == 2, "return a pair (inputs, targets)"
        got_in, got_tg = (np.asarray(g) for g in got)
        assert got_in.shape == t.shape and got_tg.shape == t.shape, f"inputs and targets keep the shape {t.shape}"
        assert not (got_in[t == 0] != 0).any(), (f"a padding position (token 0) was changed — case: {what}. "
                                                 "Never mask padding.")
        assert np.array_equal(got_in, want_in), (
            f"inputs\n{got_in}\nexpected\n{want_in}\n— case: {what}. Mask a real position when u < mask_prob; a "
            "window with real items but no masked position gets its real position with the smallest u masked.")
        assert np.array_equal(got_tg, want_tg), (
            f"targets\n{got_tg}\nexpected\n{want_tg}\n— case: {what}. targets hold the ORIGINAL token at masked "
            "positions "
            "and 0 everywhere else (the loss is taken only there).")


@exercise("08.lora_parameter_count")
def check_lora_parameter_count(answer) -> None:
    cases = [(64, 64, 4, 2, "the notebook's q and v of one block"), (64, 64, 8, 1, "rank 8"),
             (768, 768, 8, 24, "BERT-base: q and v in 12 layers"), (10, 3, 1, 1, "a non-square matrix"),
             (4096, 11008, 16, 1, "a large non-square matrix")]
    for d_in, d_out, r, n, what in cases:
        want = n * r * (d_in + d_out)
        got = answer(d_in, d_out, r, n)
        assert got is not None and int(got) == want, (
            f"lora_parameter_count({d_in}, {d_out}, {r}, {n}) returned {got!r}, expected {want} — case: {what}. A is "
            "r × d_in and B is d_out × r; the frozen W (d_out × d_in) does not count.")


def _lora_reference(x, W, b, A, B, alpha):
    r = A.shape[0]
    return x @ W.T + b + (alpha / r) * (x @ A.T @ B.T)


@exercise("08.lora_forward")
def check_lora_forward(answer) -> None:
    rng = np.random.default_rng(1)
    x = np.array([[1.0, 2.0]])
    W, b = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.zeros(3)
    A, B = np.array([[1.0, -1.0]]), np.array([[1.0], [0.0], [2.0]])
    cases = [((x, W, b, A, B, 2.0), "the worked example of section 3.1"),
             ((x, W, b, A, np.zeros((3, 1)), 2.0), "B = 0: the output must equal W x + b exactly")]
    for n, d_in, d_out, r, alpha in [(5, 4, 6, 2, 4.0), (1, 8, 8, 8, 1.0), (3, 6, 2, 1, 16.0)]:
        cases.append(((rng.normal(size=(n, d_in)), rng.normal(size=(d_out, d_in)), rng.normal(size=d_out),
                       rng.normal(size=(r, d_in)), rng.normal(size=(d_out, r)), alpha),
                      f"random: {n} rows, d_in={d_in}, d_out={d_out}, r={r}, alpha={alpha}"))
    for args, what in cases:
        want = _lora_reference(*args)
        got = np.asarray(answer(*(a.copy() if isinstance(a, np.ndarray) else a for a in args)), dtype=float)
        assert got.shape == want.shape, (f"output shape {got.shape}, expected {want.shape} (rows × d_out) — "
                                         f"case: {what}.")
        assert np.allclose(got, want, atol=1e-9), (
            f"got\n{np.round(got, 4)}\nexpected\n{np.round(want, 4)}\n— case: {what}. y = x Wᵀ + b + "
            "(alpha / r) · x Aᵀ Bᵀ "
            "with r = the number of rows of A.")

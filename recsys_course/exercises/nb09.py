"""Checks of notebook 09 (interest drift and transfer): decay weights, one Markov interest step, JS divergence.

Each check compares the student's function with :mod:`recsys_course.drift` on the notebook's worked examples,
random cases and edge cases, and raises AssertionError with a hint when they differ.
"""
from __future__ import annotations

import numpy as np

from .. import drift
from . import exercise


@exercise("09.decay_weight")
def check_decay_weight(answer) -> None:
    day = 86400.0
    got = np.asarray([answer(t, 30 * day, 60 * day) for t in (60 * day, 30 * day, 0.0)], dtype=float)
    assert np.allclose(got, [1.0, 0.5, 0.25]), (
        f"half-life 30 days, reference day 60: ratings on days 60, 30, 0 should weigh 1, 0.5, 0.25; got "
        f"{got.round(4)} — w = 2 ** (-(t_ref - t) / half_life)")
    rng = np.random.default_rng(0)
    for _ in range(20):
        t_ref = rng.uniform(1e8, 2e9)
        t, h = t_ref - rng.uniform(0, 1e9), rng.uniform(1e3, 1e8)
        want = float(drift.decay_weights([t], h / day, t_ref)[0])  # h in seconds, the package takes days
        got = float(answer(t, h, t_ref))
        assert np.isclose(got, want, rtol=1e-9), f"decay_weight({t:.0f}, {h:.0f}, {t_ref:.0f}) = {got}, expected {want}"


@exercise("09.markov_step")
def check_markov_step(answer) -> None:
    P = np.array([[0.7, 0.0, 0.3], [0.0, 0.3, 0.7], [0.0, 0.0, 1.0]])
    p = np.array([0.6, 0.4, 0.0])
    got = np.asarray(answer(p, P, 0.5), dtype=float)
    assert got.shape == (3,), f"return one distribution of the same length as p, got shape {got.shape}"
    assert np.allclose(got, [0.51, 0.26, 0.23]), (
        f"the worked example with alpha = 0.5 gives (0.51, 0.26, 0.23), got {got.round(4)} — "
        "p_next = alpha * p + (1 - alpha) * (p @ P)")
    assert np.allclose(answer(p, P, 1.0), p), "alpha = 1 must leave the distribution unchanged"
    rng = np.random.default_rng(1)
    for _ in range(10):
        n = rng.integers(2, 8)
        P = rng.random((n, n))
        P /= P.sum(1, keepdims=True)
        p = rng.random(n)
        p /= p.sum()
        a = rng.random()
        got = np.asarray(answer(p, P, a), dtype=float)
        assert np.isclose(got.sum(), 1.0), f"the result must sum to 1, got {got.sum():.4f}"
        assert np.allclose(got, drift.markov_step(p, P, a)), "the result differs from alpha·p + (1 − alpha)·pP"


@exercise("09.js_divergence")
def check_js_divergence(answer) -> None:
    cases = [([0.5, 0.5], [0.5, 0.5]), ([1.0, 0.0], [0.0, 1.0]), ([0.7, 0.2, 0.1], [0.1, 0.3, 0.6]),
             ([0.25, 0.25, 0.5, 0.0], [0.0, 0.5, 0.25, 0.25])]
    for p, q in cases:
        got, want = float(answer(np.array(p), np.array(q))), float(drift.js_divergence(p, q))
        assert np.isclose(got, want, atol=1e-9), (
            f"JS({p}, {q}) = {got:.4f}, expected {want:.4f} (in bits: use log2; terms with p = 0 contribute 0)")
    got = float(answer(np.array([0.3, 0.7]), np.array([0.6, 0.4])))
    back = float(answer(np.array([0.6, 0.4]), np.array([0.3, 0.7])))
    assert np.isclose(got, back), "JS divergence is symmetric: JS(p, q) must equal JS(q, p)"

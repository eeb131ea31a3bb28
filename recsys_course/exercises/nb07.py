"""Checks of notebook 07 (BERT-based collaborative filtering): masked mean pooling, the offset model's forward
pass, a user's history text.

Each check compares the student's function with a reference (``recsys_course.text.mean_pool``, a NumPy forward
pass, ``recsys_course.text.user_history_texts``) on the notebook's worked example, small random
cases and edge cases, and raises AssertionError with a hint when they differ.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import exercise


def _reference_pool(hidden, mask):
    m = mask[..., None].astype(float)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    norm = np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.divide(pooled, norm, out=np.zeros_like(pooled), where=norm > 0)


@exercise("07.mean_pool")
def check_mean_pool(answer) -> None:
    hidden = np.array([[[1.0, 2.0], [3.0, 0.0], [100.0, 100.0]]])
    got = np.asarray(answer(hidden.copy(), np.array([[1, 1, 0]])), dtype=float)
    assert got.shape == (1, 2), f"one row per text: expected shape (1, 2), got {got.shape}"
    assert np.allclose(got, [[0.8944, 0.4472]], atol=1e-4), (
        f"on the worked example got {got.round(4)}, expected [[0.8944, 0.4472]] — average only the tokens whose "
        "mask is 1 (divide by the number of real tokens, not by T), then divide by the vector's length")
    rng = np.random.default_rng(0)
    for trial in range(4):
        n, T, d = 3, 6, 5
        hidden = rng.normal(size=(n, T, d))
        mask = (rng.random((n, T)) < 0.6).astype(int)
        mask[:, 0] = 1
        want = _reference_pool(hidden, mask)
        got = np.asarray(answer(hidden.copy(), mask.copy()), dtype=float)
        assert got.shape == want.shape, f"expected shape {want.shape}, got {got.shape}"
        assert np.allclose(got, want, atol=1e-8), f"random case {trial}: the rows differ from masked mean + L2 norm"
    with np.errstate(all="ignore"):
        got = np.asarray(answer(np.ones((1, 3, 2)), np.zeros((1, 3), dtype=int)), dtype=float)
    assert np.isfinite(got).all() and np.allclose(got, 0.0), \
        f"a text with no real token should give a zero row, not {got} — guard the divisions"


def _reference_forward(z, y, u0, i0, A, B, W1, c1, w2, c2):
    u = z @ A.T + u0
    i = y @ B.T + i0
    h = np.maximum(np.concatenate([u, i, u * i], 1) @ W1.T + c1, 0.0)
    return h @ w2 + c2


@exercise("07.offset_forward")
def check_offset_forward(answer) -> None:
    # hand-checkable: h = 2, k = 1, H = 1
    args = dict(z=np.array([[1.0, 0.0]]), y=np.array([[0.0, 1.0]]), u0=np.array([[0.5]]), i0=np.array([[-1.0]]),
                A=np.array([[2.0, 0.0]]), B=np.array([[0.0, 3.0]]), W1=np.array([[1.0, 1.0, 1.0]]),
                c1=np.array([0.0]), w2=np.array([2.0]), c2=0.5)
    # u = 2 + 0.5 = 2.5, i = 3 - 1 = 2, u*i = 5 -> h = relu(9.5) = 9.5 -> 2 * 9.5 + 0.5 = 19.5
    got = np.asarray(answer(**{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}),
                     dtype=float).ravel()
    assert got.shape == (1,), f"one number per pair: expected shape (1,), got {got.shape}"
    assert np.isclose(got[0], 19.5), (
        f"hand example: got {got[0]:.4g}, expected 19.5 (u = A z + u0 = 2.5, i = B y + i0 = 2, "
        "h = ReLU(W1 [u; i; u*i] + c1) = 9.5, output w2·h + c2)")
    rng = np.random.default_rng(1)
    for trial in range(4):
        n, h, k, H = 7, 6, 3, 5
        args = dict(z=rng.normal(size=(n, h)), y=rng.normal(size=(n, h)), u0=rng.normal(size=(n, k)),
                    i0=rng.normal(size=(n, k)), A=rng.normal(size=(k, h)), B=rng.normal(size=(k, h)),
                    W1=rng.normal(size=(H, 3 * k)), c1=rng.normal(size=H), w2=rng.normal(size=H),
                    c2=float(rng.normal()))
        want = _reference_forward(**args)
        got = np.asarray(answer(**{k_: (v.copy() if isinstance(v, np.ndarray) else v) for k_, v in args.items()}),
                         dtype=float).ravel()
        assert got.shape == want.shape, f"expected {want.shape[0]} outputs, got shape {got.shape}"
        assert np.allclose(got, want, atol=1e-8), (
            f"random case {trial}: outputs differ. Order of the concatenation: [u, i, u*i]; ReLU before w2; "
            "A and B are k × h, so u = z @ A.T + u0")


@exercise("07.history_text")
def check_history_text(answer) -> None:
    from ..text import user_history_texts

    labels = {1: "Toy Story (1995)", 2: "Heat (1995)", 3: "Fargo (1996)", 4: "Alien (1979)", 5: "Up (2009)"}
    movies = pd.DataFrame({"movieId": list(labels), "title": [v[:-7] for v in labels.values()],
                           "year": [int(v[-5:-1]) for v in labels.values()], "genres": [[]] * len(labels)})
    cases = [
        ("the notebook's rule", [1, 2, 3, 4], [5.0, 4.0, 3.0, 4.5], [10, 20, 30, 40], 5, 4.0),
        ("only the n most recent liked films", [1, 2, 3, 4, 5], [5, 5, 5, 5, 5], [1, 2, 3, 4, 5], 2, 4.0),
        ("no film reaches min_rating: the highest-rated ones", [1, 2, 3], [2.0, 3.0, 3.0], [5, 6, 7], 5, 4.0),
        ("ties in time: larger movieId first", [1, 2, 3], [4.0, 4.0, 4.0], [9, 9, 9], 5, 4.0),
        ("a film without a label is skipped", [1, 99, 2], [4.0, 5.0, 4.0], [1, 2, 3], 5, 4.0),
    ]
    for what, items, stars, times, n, lo in cases:
        frame = pd.DataFrame({"userId": 1, "movieId": items, "rating": np.asarray(stars, float), "timestamp": times})
        want = user_history_texts(frame, movies, n_titles=n, min_rating=lo).iloc[0]
        got = answer(frame.drop(columns="userId").copy(), dict(labels), n_titles=n, min_rating=lo)
        assert isinstance(got, str), f"return one string, got {type(got).__name__}"
        assert got == want, f"{what}: got {got!r}, expected {want!r}"

"""Checks of notebook 04 (matrix factorisation): one ALS user step, EASE from the Gram matrix, a stable BPR loss.

Each check compares the student's function with the package's reference (``als_half_step``, ``ease_weights``,
``numpy.logaddexp``) on the notebook's worked example, small random cases and edge cases, and raises
AssertionError with a hint when they differ.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..models.factorization import als_half_step, ease_weights
from . import exercise


def _vector(got, size: int, name: str) -> np.ndarray:
    arr = np.asarray(got, dtype=float)
    assert arr.shape == (size,), f"{name} should return a vector of length {size}, got shape {arr.shape}"
    return arr


@exercise("04.als_user_step")
def check_als_user_step(answer) -> None:
    Q = np.array([[1.0, 0.0], [1.0, 1.0]])
    got = _vector(answer(Q.copy(), np.array([0, 1]), np.array([1.0, 2.0]), 1.0), 2, "als_user_step")
    assert np.allclose(got, [0.8, 0.6]), (
        f"on the worked example of section 3 got {got.round(4)}, expected [0.8, 0.6] — solve "
        "(Q_uᵀQ_u + λI) p = Q_uᵀ e_u with Q_u = the rows of the rated films")
    rng = np.random.default_rng(0)
    for trial in range(5):
        n_items, k = 12, 3
        Q = rng.normal(size=(n_items, k))
        rated = np.sort(rng.choice(n_items, size=rng.integers(1, 8), replace=False))
        resid = rng.normal(size=len(rated))
        reg = float(rng.uniform(0.1, 5.0))
        row = sp.csr_matrix((resid, (np.zeros(len(rated), int), rated)), shape=(1, n_items))
        want = als_half_step(row, Q, reg)[0]
        got = _vector(answer(Q.copy(), rated.copy(), resid.copy(), reg), k, "als_user_step")
        assert np.allclose(got, want, atol=1e-8), (
            f"random case {trial}: got {got.round(4)}, expected {want.round(4)}. Use only the rows "
            "item_factors[rated_items], and add λ to the diagonal (λI), not to every entry.")
    got = _vector(answer(Q.copy(), np.array([], dtype=int), np.array([]), 1.0), 3, "als_user_step")
    assert np.allclose(got, 0.0), f"a user with no ratings should get a zero vector, got {got}"


@exercise("04.ease_from_gram")
def check_ease_from_gram(answer) -> None:
    rng = np.random.default_rng(1)
    for trial, (n_users, n_items, reg) in enumerate([(20, 5, 2.0), (40, 8, 10.0), (6, 10, 0.5)]):
        X = (rng.random((n_users, n_items)) < 0.4).astype(float)
        G = X.T @ X
        want = ease_weights(X, reg)
        got = np.asarray(answer(G.copy(), reg), dtype=float)
        assert got.shape == want.shape, f"B should be {want.shape} (items × items), got {got.shape}"
        assert np.allclose(np.diag(got), 0.0, atol=1e-10), \
            "the diagonal of B must be exactly 0 (no film may predict itself)"
        assert np.allclose(got, want, atol=1e-8), (
            f"case {trial}: B differs from the reference. P = inv(G + λI); B_ij = -P_ij / P_jj — divide each "
            "*column* j by P_jj — and then set the diagonal to 0.")


@exercise("04.bpr_pair_loss")
def check_bpr_pair_loss(answer) -> None:
    cases = [
        (np.array([2.0]), np.array([1.0]), "one pair"),
        (np.array([0.5, -1.0, 3.0]), np.array([0.5, 2.0, -4.0]), "three pairs (the mean, not the sum)"),
        (np.array([1000.0]), np.array([0.0]), "a difference of +1000: the loss is ~0, not nan"),
        (np.array([0.0]), np.array([1000.0]), "a difference of -1000: the loss is ~1000, not inf"),
    ]
    for pos, neg, what in cases:
        want = float(np.mean(np.logaddexp(0.0, -(pos - neg))))
        with np.errstate(all="ignore"):
            got = answer(pos.copy(), neg.copy())
        got = float(np.asarray(got))
        assert np.isfinite(got), f"{what}: got {got} — use log(1 + e^(-d)) = max(-d, 0) + log(1 + e^(-|d|))"
        assert np.isclose(got, want, rtol=1e-9, atol=1e-9), f"{what}: got {got:.6g}, expected {want:.6g}"

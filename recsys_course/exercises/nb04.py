"""Checks of notebook 04 (matrix factorisation): one ALS user step, EASE from the Gram matrix, a stable BPR loss,
an experiment (is the validation slice an honest judge of ALS's λ?) and the questionnaire.

Each function check compares the student's function with the package's reference (``als_half_step``,
``ease_weights``, ``numpy.logaddexp``) on the notebook's worked example, small random cases and edge cases.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import scipy.sparse as sp

from ..config import RATING
from ..models.factorization import ALS, als_half_step, ease_weights
from . import exercise
from .answers import Wrong, array, call, close, course_run, fmt, keyed_numbers, number
from .quiz import Choice, Numeric, register_quiz


@exercise("04.als_user_step")
def check_als_user_step(answer) -> None:
    Q = np.array([[1.0, 0.0], [1.0, 1.0]])
    got = array(call(answer, Q, np.array([0, 1]), np.array([1.0, 2.0]), 1.0), "als_user_step(...)", shape=(2,))
    if not close(got, [0.8, 0.6], atol=1e-8):
        raise Wrong(f"on the worked example of section 3 got {fmt(got)}, expected [0.8, 0.6]. The normal equations "
                    "use only the factor rows of the films this user rated (Q_u), with λ added on the diagonal.")
    rng = np.random.default_rng(0)
    for trial in range(5):
        n_items, k = 12, 3
        Q = rng.normal(size=(n_items, k))
        rated = np.sort(rng.choice(n_items, size=rng.integers(1, 8), replace=False))
        resid = rng.normal(size=len(rated))
        reg = float(rng.uniform(0.1, 5.0))
        row = sp.csr_matrix((resid, (np.zeros(len(rated), int), rated)), shape=(1, n_items))
        want = als_half_step(row, Q, reg)[0]
        got = array(call(answer, Q, rated, resid, reg), "als_user_step(...)", shape=(k,))
        if not close(got, want, atol=1e-8):
            hint = ("λ belongs on the diagonal only (λI), not on every entry of QᵀQ."
                    if close(got, np.linalg.solve(Q[rated].T @ Q[rated] + reg, Q[rated].T @ resid), atol=1e-8)
                    else "Which rows of the factor matrix enter the Gram matrix? Only the rated films'.")
            raise Wrong(f"random case {trial}: got {fmt(got)}, expected {fmt(want)}. {hint}")
    got = array(call(answer, Q, np.array([], dtype=int), np.array([]), 1.0), "als_user_step(...)", shape=(3,))
    if not close(got, 0.0):
        raise Wrong(f"a user with no ratings should get a zero vector (the ridge solution of an empty problem), "
                    f"got {fmt(got)}")


@exercise("04.ease_from_gram")
def check_ease_from_gram(answer) -> None:
    rng = np.random.default_rng(1)
    for trial, (n_users, n_items, reg) in enumerate([(20, 5, 2.0), (40, 8, 10.0), (6, 10, 0.5)]):
        X = (rng.random((n_users, n_items)) < 0.4).astype(float)
        want = ease_weights(X, reg)
        got = array(call(answer, X.T @ X, reg), "ease_from_gram(...)", shape=want.shape)
        if not close(np.diag(got), 0.0, atol=1e-10):
            raise Wrong("the diagonal of B must be exactly 0: the constraint says no film may predict itself, "
                        "so the formula's diagonal is replaced, not kept.")
        if not close(got, want, atol=1e-8):
            rows_instead = -np.linalg.inv(X.T @ X + reg * np.eye(n_items))
            rows_instead = rows_instead / np.diag(rows_instead)[:, None]
            np.fill_diagonal(rows_instead, 0.0)
            hint = ("you divided the rows; diagMat(1/diag(P)) multiplies from the right, so it scales columns."
                    if close(got, rows_instead, atol=1e-8) else
                    "B = I − P·diagMat(1/diag(P)) with P the inverse of G + λI; check the sign and where λ goes.")
            raise Wrong(f"case {trial} ({n_items} films, λ = {fmt(reg)}): B differs from the reference — {hint}")


@exercise("04.bpr_pair_loss")
def check_bpr_pair_loss(answer) -> None:
    cases = [
        (np.array([2.0]), np.array([1.0]), "one pair"),
        (np.array([0.5, -1.0, 3.0]), np.array([0.5, 2.0, -4.0]), "three pairs"),
        (np.array([1000.0]), np.array([0.0]), "a difference of +1000 (the loss is about 0)"),
        (np.array([0.0]), np.array([1000.0]), "a difference of −1000 (the loss is about 1000)"),
    ]
    for pos, neg, what in cases:
        want = float(np.mean(np.logaddexp(0.0, -(pos - neg))))
        got = call(answer, pos, neg)
        if isinstance(got, np.ndarray) and got.size == len(pos) > 1:
            raise Wrong(f"{what}: got one loss per pair, {fmt(got)}; the exercise asks for their mean.")
        got = number(got, "bpr_pair_loss(...)", finite=False)
        if not np.isfinite(got):
            raise Wrong(f"{what}: got {fmt(got)} — e^{{−d}} overflows for a large negative d; the identity in the "
                        "exercise never exponentiates a positive number.")
        if np.isclose(got, want * len(pos)) and len(pos) > 1:
            raise Wrong(f"{what}: got {fmt(got)}, the sum over the pairs; the exercise asks for the mean.")
        if not np.isclose(got, want, rtol=1e-9, atol=1e-9):
            raise Wrong(f"{what}: got {fmt(got)}, expected {fmt(want)}. The loss is −ln σ(x_pos − x_neg): mind the "
                        "sign of the difference.")


# --------------------------------------------------------------------------------------------- experiment
ALS_REGS = (5.0, 15.0, 50.0)
ALS_TOLERANCE = 0.002  # test RMSE; ALS is deterministic for a seed, the slack covers BLAS summation order


@cache
def _rating_split():
    from ..data import load_movielens
    from ..split import rating_split

    return rating_split(load_movielens().ratings)


def _als_test_rmse(train, test) -> dict[float, float]:
    from ..metrics import rmse

    return {reg: rmse(test[RATING], ALS(reg=reg).fit(train).predict(test["userId"], test["movieId"]))
            for reg in ALS_REGS}


@exercise("04.als_reg_on_test", kind="experiment", inputs=_rating_split)
def check_als_reg_on_test(answer, rating_train, rating_test) -> str:
    got = call(answer, rating_train, rating_test)
    got = keyed_numbers(got, ALS_REGS, "{λ: test RMSE}", lambda reg: f"the test RMSE at λ = {fmt(reg)}")
    want = course_run(_als_test_rmse, rating_train, rating_test)
    for reg in ALS_REGS:
        if abs(got[reg] - want[reg]) > ALS_TOLERANCE:
            raise Wrong(f"at λ = {fmt(reg)} your test RMSE is {fmt(got[reg])}, the course's run gives "
                        f"{fmt(want[reg])} (tolerance ±{fmt(ALS_TOLERANCE)}). Fit on all of rating_train (not the "
                        "fit part) with the other settings at their defaults, and score rating_test.")
    best = min(want, key=want.get)
    return (f"test RMSE by λ: {', '.join(f'{fmt(r)} → {fmt(got[r])}' for r in ALS_REGS)} (the course's run: "
            f"{', '.join(fmt(want[r]) for r in ALS_REGS)}); the test set's best λ is {fmt(best)}.")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("04", [
    Choice("In section 2.1 the training RMSE of unregularised MF keeps falling while the validation RMSE climbs "
           "after epoch 4. Why?",
           {"a": "the learning rate is too high, so Adam overshoots",
            "b": "with 32 free numbers per film, films with few ratings are fitted exactly, noise included",
            "c": "the validation slice holds other users than the fit part",
            "d": "the biases start at 0 instead of the baseline's values"},
           answer="b",
           why="the model memorises the few ratings of rare films and users (overfitting); the penalty λ and early "
               "stopping are the cures shown next.",
           hints={"a": "an overshooting optimiser makes the training loss jump too; here it falls smoothly.",
                  "c": "the validation slice is each user's most recent 20 %: the same users.",
                  "d": "section 2.2 starts the biases at the baseline's values and still needs λ to stop the climb."}),
    Choice("With λ = 50, ALS's validation RMSE equals BiasBaseline's. Why?",
           {"a": "ALS did not converge in 5 iterations",
            "b": "the penalty pushes every factor vector to 0, leaving only the biases",
            "c": "a large λ makes ALS identical to PureSVD",
            "d": "the validation slice is too small to tell them apart"},
           answer="b",
           why="a ridge penalty that outweighs the data shrinks p_u and q_i to 0, and μ + b_u + b_i is the bias model.",
           hints={"a": "every ALS step is an exact solve; more iterations do not move a model that λ pins at 0.",
                  "c": "PureSVD has no penalty and no biases; look at what the factors become as λ grows.",
                  "d": "the two numbers agree to four decimals, which chance would not give."}),
    Numeric("Fitting EASE costs O(n³) in the number of films n. If 3,541 films take 2 seconds, how many seconds "
            "would the whole 9,530-film catalogue take?",
            answer=2 * (9530 / 3541) ** 3, tol=1.0,
            why="time grows with the cube: 2 s × (9,530 / 3,541)³ ≈ 39 s.",
            hint="scale the time by the ratio of the sizes, raised to the power of the cost's exponent."),
    Choice("Why does a truncated SVD of the rating matrix with missing cells stored as 0 predict about half a star "
           "for the films a user did not rate?",
           {"a": "it reconstructs the zeros that were typed in for the missing cells",
            "b": "SVD cannot represent ratings above 2.5 with few factors",
            "c": "the singular values are sorted in decreasing order",
            "d": "the ratings were not centred on the user means first"},
           answer="a",
           why="for SVD a missing cell is a real 0-star rating; the low-rank fit reproduces the 98 % of zeros.",
           hints={"b": "the rank-1 example of section 4 reconstructs known 5-star cells fine.",
                  "c": "the order of the singular values does not change the reconstruction.",
                  "d": "centring helps (the residual SVD), but the cause is what the empty cells were set to."}),
])

"""Plausible wrong answers to the exercises of notebook 04; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import numpy as np

from recsys_course.metrics import rmse
from recsys_course.models import ALS


def _als_all_rows(item_factors, rated_items, residuals, reg):
    Q = np.asarray(item_factors, float)
    e = np.zeros(len(Q))
    e[np.asarray(rated_items, int)] = residuals
    return np.linalg.solve(Q.T @ Q + reg * np.eye(Q.shape[1]), Q.T @ e)


def _als_reg_everywhere(item_factors, rated_items, residuals, reg):
    Q = np.asarray(item_factors, float)[np.asarray(rated_items, int)]
    return np.linalg.solve(Q.T @ Q + reg, Q.T @ np.asarray(residuals, float))


def _als_no_reg(item_factors, rated_items, residuals, reg):
    Q = np.asarray(item_factors, float)[np.asarray(rated_items, int)]
    return np.linalg.lstsq(Q, np.asarray(residuals, float), rcond=None)[0] if len(Q) else np.zeros(Q.shape[1])


def _ease_rows(G, reg):
    P = np.linalg.inv(np.asarray(G, float) + reg * np.eye(len(G)))
    B = -P / np.diag(P)[:, None]
    np.fill_diagonal(B, 0.0)
    return B


def _ease_diagonal_kept(G, reg):
    P = np.linalg.inv(np.asarray(G, float) + reg * np.eye(len(G)))
    return -P / np.diag(P)[None, :]  # without the identity the diagonal is -1


def _ease_no_reg_sign(G, reg):
    P = np.linalg.inv(np.asarray(G, float) + reg * np.eye(len(G)))
    B = P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def _bpr_naive(x_pos, x_neg):
    d = np.asarray(x_pos, float) - np.asarray(x_neg, float)
    return float(np.mean(-np.log(1 / (1 + np.exp(-d)))))


def _bpr_no_mean(x_pos, x_neg):
    return np.logaddexp(0.0, -(np.asarray(x_pos, float) - np.asarray(x_neg, float)))


def _bpr_sum(x_pos, x_neg):
    return float(np.sum(np.logaddexp(0.0, -(np.asarray(x_pos, float) - np.asarray(x_neg, float)))))


def _bpr_sign(x_pos, x_neg):
    return float(np.mean(np.logaddexp(0.0, np.asarray(x_pos, float) - np.asarray(x_neg, float))))


def _als_on_train_scored_on_train(rating_train, rating_test):
    return {reg: rmse(rating_train["rating"], ALS(reg=reg).fit(rating_train).predict(rating_train["userId"],
                                                                                     rating_train["movieId"]))
            for reg in (5.0, 15.0, 50.0)}


def _als_list(rating_train, rating_test):
    return [0.91, 0.885, 0.895]


def _als_missing_key(rating_train, rating_test):
    return {5.0: 0.91, 15.0: 0.885}


WRONG = {
    "04.als_user_step": [
        ("every film's row, unrated ones as residual 0", _als_all_rows),
        ("λ added to every entry of QᵀQ", _als_reg_everywhere),
        ("no regularisation", _als_no_reg),
    ],
    "04.ease_from_gram": [
        ("rows divided instead of columns", _ease_rows),
        ("diagonal not zeroed", _ease_diagonal_kept),
        ("wrong sign", _ease_no_reg_sign),
    ],
    "04.bpr_pair_loss": [
        ("the naive formula that overflows", _bpr_naive),
        ("forgot the mean: one loss per pair", _bpr_no_mean),
        ("the sum instead of the mean", _bpr_sum),
        ("the sign of the difference flipped", _bpr_sign),
    ],
    "04.als_reg_on_test": [
        ("scored on the training ratings", _als_on_train_scored_on_train),
        ("a list instead of a dict", _als_list),
        ("a missing λ", _als_missing_key),
    ],
    "04.quiz": [
        ("overfitting blamed on the learning rate", {1: "a", 2: "b", 3: 39, 4: "a"}),
        ("a linear instead of cubic cost", {1: "b", 2: "b", 3: 2 * 9530 / 3541, 4: "a"}),
        ("a letter that is not an option", {1: "b", 2: "e", 3: 39, 4: "a"}),
        ("a number where a letter is due", {1: "b", 2: "b", 3: 39, 4: 1}),
    ],
}

"""Plausible wrong answers to the exercises of notebook 03; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import numpy as np

from recsys_course.config import ITEM
from recsys_course.evaluate import evaluate_cold_items
from recsys_course.features import item_features
from recsys_course.models import ContentBased


# ------------------------------------------------------------------------------------------------ 03.df_from_idf
def _df_textbook(idf, n_docs):
    return n_docs / np.exp(np.asarray(idf, float))


def _df_outer_one_kept(idf, n_docs):
    return (1 + n_docs) / np.exp(np.asarray(idf, float)) - 1


def _df_plus_one(idf, n_docs):
    return (1 + n_docs) * np.exp(1 - np.asarray(idf, float))


def _df_log10(idf, n_docs):
    return (1 + n_docs) / 10 ** (np.asarray(idf, float) - 1) - 1


def _df_rounded_down(idf, n_docs):
    return np.floor((1 + n_docs) * np.exp(1 - np.asarray(idf, float)) - 1)  # 0.9999999 becomes 0


# ------------------------------------------------------------------------------------------------ 03.ridge_towards
def _solve(C, rhs, lam):
    C = np.asarray(C, float)
    return np.linalg.solve(C.T @ C + lam * np.eye(C.shape[1]), rhs)


def _ridge_ignores_prior(C, r, lam, w0):
    return _solve(C, np.asarray(C, float).T @ (r - np.mean(r)), lam)


def _ridge_plus_prior(C, r, lam, w0):
    return _solve(C, np.asarray(C, float).T @ (r - np.mean(r)), lam) + w0


def _ridge_prior_sign(C, r, lam, w0):
    return _solve(C, np.asarray(C, float).T @ (r - np.mean(r)) - lam * np.asarray(w0, float), lam)


def _ridge_prior_without_lam(C, r, lam, w0):
    return _solve(C, np.asarray(C, float).T @ (r - np.mean(r)) + np.asarray(w0, float), lam)


def _ridge_not_centred(C, r, lam, w0):
    return _solve(C, np.asarray(C, float).T @ np.asarray(r, float) + lam * np.asarray(w0, float), lam)


# ------------------------------------------------------------------------------------------------ 03.blend_weight
def _alpha(ratings, cf, content, rows):
    e = np.asarray(ratings, float)[rows] - np.asarray(content, float)[rows]
    d = np.asarray(cf, float)[rows] - np.asarray(content, float)[rows]
    return e @ d / (d @ d)


def _blend_nan_leaks(ratings, cf_scores, content_scores, cf_knows):
    return float(np.clip(_alpha(ratings, cf_scores, content_scores, slice(None)), 0, 1))


def _blend_cold_rows_as_zero(ratings, cf_scores, content_scores, cf_knows):
    cf = np.where(np.isnan(cf_scores), 0.0, cf_scores)  # NaN handled, but the cold rows still count
    return float(np.clip(_alpha(ratings, cf, content_scores, slice(None)), 0, 1))


def _blend_not_clipped(ratings, cf_scores, content_scores, cf_knows):
    return float(_alpha(ratings, cf_scores, content_scores, np.asarray(cf_knows, bool)))


def _blend_content_weight(ratings, cf_scores, content_scores, cf_knows):
    return 1 - float(np.clip(_alpha(ratings, cf_scores, content_scores, np.asarray(cf_knows, bool)), 0, 1))


def _blend_grid(ratings, cf_scores, content_scores, cf_knows):
    known = np.asarray(cf_knows, bool)
    cf = np.where(known, cf_scores, 0.0)
    grid = [i / 10 for i in range(11)]
    errors = [np.mean((np.asarray(ratings) - np.where(known, w * cf + (1 - w) * content_scores, content_scores)) ** 2)
              for w in grid]
    return grid[int(np.argmin(errors))]


# ------------------------------------------------------------------------------------------------ experiment
def _cold_row(cold_train, cold_test, movies, tags):
    row = evaluate_cold_items(ContentBased(features=item_features(movies, tags)).fit(cold_train), cold_test)
    return {"rmse": row["rmse"], "ndcg@10": row["ndcg@10"]}


def _day_one_all_tags(cold_train, cold_test, movies, tags):
    return _cold_row(cold_train, cold_test, movies, tags)


def _day_one_no_tags(cold_train, cold_test, movies, tags):
    return _cold_row(cold_train, cold_test, movies, None)


def _day_one_wrong_films(cold_train, cold_test, movies, tags):
    return _cold_row(cold_train, cold_test, movies, tags[tags[ITEM].isin(cold_test[ITEM])])  # kept only the new ones


def _day_one_tuple(cold_train, cold_test, movies, tags):
    return (0.8839, 0.0309)


def _day_one_missing_key(cold_train, cold_test, movies, tags):
    return {"rmse": 0.8839}


WRONG = {
    "03.df_from_idf": [
        ("the textbook idf inverted", _df_textbook),
        ("the +1 outside the logarithm kept", _df_outer_one_kept),
        ("1 + df instead of df", _df_plus_one),
        ("a base-10 logarithm", _df_log10),
        ("rounded down: 0.9999999 becomes 0", _df_rounded_down),
    ],
    "03.ridge_towards": [
        ("the prior ignored (the ridge of 3.2)", _ridge_ignores_prior),
        ("w0 added after the solve", _ridge_plus_prior),
        ("the prior's sign flipped", _ridge_prior_sign),
        ("the prior without λ", _ridge_prior_without_lam),
        ("ratings not centred", _ridge_not_centred),
    ],
    "03.blend_weight": [
        ("the cold films' NaN leaks", _blend_nan_leaks),
        ("cold rows counted with CF = 0", _blend_cold_rows_as_zero),
        ("not clipped to [0, 1]", _blend_not_clipped),
        ("the content model's weight", _blend_content_weight),
        ("the best point of the 0.1 grid", _blend_grid),
    ],
    "03.day_one_tags": [
        ("every film keeps its tags", _day_one_all_tags),
        ("no film keeps its tags", _day_one_no_tags),
        ("only the held-out films keep their tags", _day_one_wrong_films),
        ("a tuple instead of a dict", _day_one_tuple),
        ("a missing key", _day_one_missing_key),
    ],
    "03.quiz": [
        ("tags blamed on their information", {1: "a", 2: "a", 3: "b", 4: 0.59, 5: "b"}),
        ("the cosine of 2.1 unchanged", {1: "b", 2: "a", 3: "b", 4: 0.66, 5: "b"}),
        ("the cosine without the new title weight in the norm", {1: "b", 2: "a", 3: "b", 4: 1.9288 / 2.5, 5: "b"}),
        ("a letter that is not an option", {1: "b", 2: "e", 3: "b", 4: 0.59, 5: "b"}),
        ("a number where a letter is due", {1: "b", 2: "a", 3: 2, 4: 0.59, 5: "b"}),
    ],
}

"""Plausible wrong answers to the exercises of notebook 02; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import numpy as np

from recsys_course.metrics import rmse
from recsys_course.models import BiasBaseline, UserKNN


# ------------------------------------------------------------------------------------------ knn_item_scores
def _cosine(X):
    X = np.asarray(X, float)
    norms = np.linalg.norm(X, axis=0)
    denom = np.outer(norms, norms)
    S = np.divide(X.T @ X, denom, out=np.zeros((X.shape[1], X.shape[1])), where=denom > 0)
    np.fill_diagonal(S, 0.0)
    return S


def _keep_k(S, k):
    out = np.zeros_like(S)
    for j in range(len(S)):
        top = np.argsort(-S[j], kind="stable")[:k]
        out[j, top] = S[j, top]
    return out


def _scores_no_exclusion(X, k):
    return (np.asarray(X) > 0).astype(float) @ _keep_k(_cosine(X), k)


def _scores_self_neighbour(X, k):
    S = _cosine(X)
    np.fill_diagonal(S, 1.0)
    rated = np.asarray(X) > 0
    return np.where(rated, -np.inf, rated.astype(float) @ _keep_k(S, k))


def _scores_columns_cut(X, k):
    rated = np.asarray(X) > 0
    return np.where(rated, -np.inf, rated.astype(float) @ _keep_k(_cosine(X), k).T)


def _scores_rating_weighted(X, k):
    X = np.asarray(X, float)
    return np.where(X > 0, -np.inf, X @ _keep_k(_cosine(X), k))


def _scores_jaccard(X, k):
    P = (np.asarray(X) > 0).astype(float)
    inter = P.T @ P
    size = P.sum(0)
    union = size[:, None] + size[None, :] - inter
    S = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    np.fill_diagonal(S, 0.0)
    return np.where(P > 0, -np.inf, P @ _keep_k(S, k))


def _scores_k_ignored(X, k):
    rated = np.asarray(X) > 0
    return np.where(rated, -np.inf, rated.astype(float) @ _cosine(X))


def _scores_nan_for_unrated_film(X, k):
    X = np.asarray(X, float)
    norms = np.linalg.norm(X, axis=0)
    S = (X.T @ X) / np.outer(norms, norms)  # 0/0 for a film nobody rated
    np.fill_diagonal(S, 0.0)
    rated = X > 0
    return np.where(rated, -np.inf, rated.astype(float) @ _keep_k(S, k))


# ------------------------------------------------------------------------------------------ shrunk_pearson
def _pearson_parts(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    both = ~np.isnan(x) & ~np.isnan(y)
    return x, y, both, int(both.sum())


def _pearson_nan_on_edge_cases(x, y, shrinkage):
    x, y, both, n = _pearson_parts(x, y)
    return float(np.corrcoef(x[both], y[both])[0, 1] * n / (n + shrinkage)) if n else float("nan")


def _pearson_not_shrunk(x, y, shrinkage):
    x, y, both, n = _pearson_parts(x, y)
    if n < 2 or np.ptp(x[both]) == 0 or np.ptp(y[both]) == 0:
        return 0.0
    return float(np.corrcoef(x[both], y[both])[0, 1])


def _pearson_own_means(x, y, shrinkage):
    x, y, both, n = _pearson_parts(x, y)
    if n < 2 or np.ptp(x[both]) == 0 or np.ptp(y[both]) == 0:
        return 0.0
    xc, yc = x[both] - np.nanmean(x), y[both] - np.nanmean(y)
    return float(xc @ yc / np.sqrt((xc ** 2).sum() * (yc ** 2).sum()) * n / (n + shrinkage))


def _pearson_wrong_factor(x, y, shrinkage):
    x, y, both, n = _pearson_parts(x, y)
    if n < 2 or np.ptp(x[both]) == 0 or np.ptp(y[both]) == 0:
        return 0.0
    return float(np.corrcoef(x[both], y[both])[0, 1] * shrinkage / (n + shrinkage))


def _pearson_all_entries(x, y, shrinkage):
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(np.corrcoef(x, y)[0, 1])  # NaN leaks into every sum


# ------------------------------------------------------------------------------------------ mean_centred_predict
def _means(R):
    return np.array([np.mean(r[~np.isnan(r)]) if (~np.isnan(r)).any() else 0.0 for r in np.asarray(R, float)])


def _neighbours(R, S, u, i, k):
    R, S = np.asarray(R, float), np.asarray(S, float)
    raters = np.array([v for v in np.flatnonzero(~np.isnan(R[:, i])) if v != u and S[u, v] > 0], dtype=int)
    return raters[np.argsort(-S[u, raters], kind="stable")][:k]


def _predict_plain(R, S, u, i, k):
    R, S = np.asarray(R, float), np.asarray(S, float)
    top = _neighbours(R, S, u, i, k)
    if top.size == 0:
        return float(_means(R)[u])
    return float(S[u, top] @ R[top, i] / np.abs(S[u, top]).sum())


def _predict_target_mean(R, S, u, i, k):
    R, S = np.asarray(R, float), np.asarray(S, float)
    m, top = _means(R), _neighbours(R, S, u, i, k)
    if top.size == 0:
        return float(m[u])
    return float(m[u] + S[u, top] @ (R[top, i] - m[u]) / np.abs(S[u, top]).sum())


def _predict_overall_neighbours(R, S, u, i, k):
    R, S = np.asarray(R, float), np.asarray(S, float)
    m = _means(R)
    others = np.array([v for v in np.argsort(-S[u], kind="stable") if v != u and S[u, v] > 0])[:k]
    top = np.array([v for v in others if not np.isnan(R[v, i])], dtype=int)
    if top.size == 0:
        return float(m[u])
    return float(m[u] + S[u, top] @ (R[top, i] - m[top]) / np.abs(S[u, top]).sum())


def _predict_negatives_kept(R, S, u, i, k):
    R, S = np.asarray(R, float), np.asarray(S, float)
    m = _means(R)
    raters = np.array([v for v in np.flatnonzero(~np.isnan(R[:, i])) if v != u], dtype=int)
    top = raters[np.argsort(-S[u, raters], kind="stable")][:k]
    if top.size == 0:
        return float(m[u])
    return float(m[u] + S[u, top] @ (R[top, i] - m[top]) / np.abs(S[u, top]).sum())


def _predict_nan_when_empty(R, S, u, i, k):
    R, S = np.asarray(R, float), np.asarray(S, float)
    m, top = _means(R), _neighbours(R, S, u, i, k)
    s = S[u, top]
    return float(m[u] + s @ (R[top, i] - m[top]) / np.abs(s).sum()) if top.size else float("nan")


# ------------------------------------------------------------------------------------------ experiment
def _well_rated(rating_train, rating_test, keep):
    out = {}
    for name, model in [("BiasBaseline", BiasBaseline()), ("UserKNN", UserKNN())]:
        pred = model.fit(rating_train).predict(rating_test["userId"], rating_test["movieId"])
        out[name] = rmse(rating_test["rating"].to_numpy()[keep], pred[keep])
    return out


def _every_pair(rating_train, rating_test):
    return _well_rated(rating_train, rating_test, np.ones(len(rating_test), dtype=bool))


def _raters_in_test(rating_train, rating_test):
    n = rating_test.groupby("movieId").size().reindex(rating_test["movieId"]).to_numpy()
    return _well_rated(rating_train, rating_test, n >= 20)


def _strictly_more(rating_train, rating_test):
    n = rating_train.groupby("movieId").size().reindex(rating_test["movieId"]).fillna(0).to_numpy()
    return _well_rated(rating_train, rating_test, n > 20)


def _a_list(rating_train, rating_test):
    return [0.8811, 0.8762]


def _other_names(rating_train, rating_test):
    return {"baseline": 0.8811, "userknn": 0.8762}


WRONG = {
    "02.knn_item_scores": [
        ("seen films not excluded", _scores_no_exclusion),
        ("a film is its own neighbour", _scores_self_neighbour),
        ("each candidate keeps its k nearest (columns cut)", _scores_columns_cut),
        ("votes weighted by the rating", _scores_rating_weighted),
        ("Jaccard instead of cosine", _scores_jaccard),
        ("k ignored", _scores_k_ignored),
        ("0/0 for a film nobody rated", _scores_nan_for_unrated_film),
    ],
    "02.shrunk_pearson": [
        ("nan on the edge cases", _pearson_nan_on_edge_cases),
        ("no shrinkage", _pearson_not_shrunk),
        ("centred on each vector's own mean", _pearson_own_means),
        ("λ/(n + λ) instead of n/(n + λ)", _pearson_wrong_factor),
        ("corrcoef over all entries, NaN included", _pearson_all_entries),
    ],
    "02.mean_centred_predict": [
        ("the plain weighted average", _predict_plain),
        ("deviations from the target user's mean", _predict_target_mean),
        ("the k most similar users overall", _predict_overall_neighbours),
        ("negative similarities kept", _predict_negatives_kept),
        ("nan with no neighbour", _predict_nan_when_empty),
    ],
    "02.well_rated_films": [
        ("every test pair scored", _every_pair),
        ("raters counted in the test set", _raters_in_test),
        ("more than 20 instead of at least 20", _strictly_more),
        ("a list instead of a dict", _a_list),
        ("other key names", _other_names),
    ],
    "02.quiz": [
        ("normalisation blamed on double normalising", {1: "b", 2: "c", 3: "b", 4: "d", 5: 400}),
        ("λ/(n + λ) = 0.8 solved instead", {1: "a", 2: "c", 3: "b", 4: "d", 5: 25}),
        ("a letter that is not an option", {1: "a", 2: "e", 3: "b", 4: "d", 5: 400}),
        ("a number where a letter is due", {1: "a", 2: "c", 3: 2, 4: "d", 5: 400}),
        ("the share as the answer", {1: "a", 2: "c", 3: "b", 4: "d", 5: "80 %"}),
    ],
}

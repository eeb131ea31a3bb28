"""Checks of notebook 02 (collaborative filtering): item-based top-N scores with k neighbours per film, a shrunk
Pearson correlation, a mean-centred user-based prediction, an experiment (does user-based CF beat the baseline
on films with many raters?) and the questionnaire.

Each function check compares the student's function with a reference built on the package
(``recsys_course.similarity``) on the notebook's worked examples, small random cases and edge cases. A hint that
names a mistake is shown only when the student's numbers equal that mistake's numbers on the failing case.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..config import ITEM, RATING, USER
from ..similarity import cosine, pearson, prune_top_k
from . import exercise
from .answers import NotAttempted, StudentCrash, Wrong, array, call, close, fmt, keyed_numbers, number
from .quiz import Choice, Numeric, register_quiz


def _outputs(answer, args_of_cases, read) -> list:
    """The student's answer on every case, read with ``read``; None where it could not be read (or raised)."""
    out = []
    for args in args_of_cases:
        try:
            out.append(read(call(answer, *args)))
        except (Wrong, NotAttempted, StudentCrash):
            out.append(None)
    return out


def _recognised(outputs: list, variants: list[list[tuple]], same) -> str:
    """The hint of the first suspected mistake whose numbers the student's answer reproduces on EVERY case it
    answered ('' if none): ``variants[c]`` lists (value, hint) for case c, in the same order for every case;
    ``same(c, got, value)`` compares on case c. A mistake is named only when it explains all the answers."""
    for v in range(len(variants[0])):
        if all(got is None or same(c, got, variants[c][v][0]) for c, got in enumerate(outputs)):
            hint = variants[0][v][1]
            return hint[0].upper() + hint[1:]
    return ""


# --------------------------------------------------------------------------------------------- exercise 1
def _package_knn_item_scores(X: np.ndarray, k: int) -> np.ndarray:
    """ItemKNN's ranking-mode score (section 5.2) with the package: cosine on the values, each row cut to k."""
    S_k = prune_top_k(cosine(sp.csr_matrix(X.T), min_value=0.0), k).toarray().astype(np.float64)
    return (X > 0).astype(np.float64) @ S_k


def _dense_cosine(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=0)
    denom = np.outer(norms, norms)
    return np.divide(X.T @ X, denom, out=np.zeros((X.shape[1], X.shape[1])), where=denom > 0)


def _dense_jaccard(X: np.ndarray) -> np.ndarray:
    P = (X > 0).astype(np.float64)
    inter = P.T @ P
    size = P.sum(0)
    union = size[:, None] + size[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _top_k_rows(S: np.ndarray, k: int, *, ties: str = "low") -> np.ndarray:
    """Each row keeps its k largest positive entries (ties → the lower column, or the higher one)."""
    n = S.shape[1]
    cols = np.arange(n) if ties == "low" else -np.arange(n)
    out = np.zeros_like(S)
    for j in range(S.shape[0]):
        order = np.lexsort((cols, -S[j]))[:k]
        order = order[S[j, order] > 0]
        out[j, order] = S[j, order]
    return out


def _item_score_variants(X: np.ndarray, k: int) -> list[tuple[np.ndarray, str]]:
    """Scores of the plausible mistakes, each with the hint that names it."""
    P = (X > 0).astype(np.float64)
    with_self = _dense_cosine(X)  # 1 on the diagonal of every film somebody rated
    S = with_self.copy()
    np.fill_diagonal(S, 0.0)
    jac, pattern_cos = _dense_jaccard(X), _dense_cosine(P)
    np.fill_diagonal(jac, 0.0)
    np.fill_diagonal(pattern_cos, 0.0)
    S_k = _top_k_rows(S, k)
    rating_mode = np.zeros_like(P)  # N_k(i;u): per (user, film), the k films of the user most similar to it
    for u in range(X.shape[0]):
        rated = np.flatnonzero(P[u])
        if rated.size:
            rating_mode[u] = _top_k_rows(S[:, rated], k).sum(1)
    return [
        (P @ _top_k_rows(with_self, k), "a film is not its own neighbour: with its similarity of 1 to itself on "
                                        "the diagonal, every film's nearest neighbour is itself (mistake 2 of "
                                        "section 2.1); set the diagonal to 0 before keeping the k nearest."),
        (P @ S_k.T, "you kept, for every candidate film i, its k nearest films; section 5.2 cuts the other "
                    "way: every film j the user rated keeps its k nearest films N_k(j), and votes only for them."),
        (rating_mode, "you took, for every (user, film) pair, the k films of the user most similar to the "
                      "candidate — that is the rating-mode neighbourhood N_k(i;u) of section 3. The top-N score "
                      "of section 5.2 cuts each rated film's own list to its k nearest films N_k(j)."),
        (X @ S_k, "you weighted each vote by the user's rating; in the top-N score every rated film counts "
                  "once (a 1-star rating is still a film the user chose to watch, section 5.2)."),
        (P @ _top_k_rows(jac, k), "these are Jaccard similarities (who rated both over who rated "
                                                "either); the exercise asks for the cosine between the columns."),
        (P @ _top_k_rows(pattern_cos, k), "you took the cosine of who rated what (0/1); the exercise asks "
                                               "for the cosine on the ratings themselves."),
        (P @ S, "every film voted for every film: k was not applied. Each rated film votes only for its k "
                "nearest films."),
        (P @ _top_k_rows(S, k, ties="high"), "on a tie at the k-th place keep the film with the lower column "
                                             "index (the package's rule, section 3)."),
    ]


def _random_rating_matrix(rng, n_users: int = 7, n_items: int = 9) -> np.ndarray:
    """Half-star ratings at random places, with a film nobody rated and a user who rated nothing; drawn again
    until no row of the cosine has two positive values that are equal or nearly so (no ties to break)."""
    while True:
        X = np.where(rng.random((n_users, n_items)) < 0.45, rng.integers(1, 11, (n_users, n_items)) / 2, 0.0)
        X[:, 4] = 0.0
        X[3, :] = 0.0
        S = _dense_cosine(X)
        gaps = [np.diff(np.sort(row[row > 0])) for row in S]
        if all(g.size == 0 or g.min() > 1e-6 for g in gaps):
            return X


@exercise("02.knn_item_scores")
def check_knn_item_scores(answer) -> None:
    two = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], dtype=float)
    cases = [(two, 3, "the two-shopper example with k = 3 (every film keeps all its neighbours: √2 for "
                      "(u, i4) and (v, i1), as in section 2)"),
             (two, 2, "the two-shopper example with k = 2 (i2's row has a tie between i1 and i4 at the 2nd place)"),
             (two, 1, "the two-shopper example with k = 1")]
    rng = np.random.default_rng(0)
    for trial, k in enumerate([2, 3, 4]):
        cases.append((_random_rating_matrix(rng), k, f"random 7 × 9 ratings {trial} with k = {k} (film 4 has no "
                                                     "rating, user 3 rated nothing; 0 = not rated)"))
    def read(got):
        return array(got, "knn_item_scores(...)", finite=False)

    for X, k, what in cases:
        got = array(call(answer, X, k), "knn_item_scores(...)", shape=X.shape, finite=False)
        if np.isnan(got).any():
            raise Wrong(f"on {what}: the scores contain nan — a film nobody rated has norm 0, and its cosine with "
                        "any film is 0 by convention, not 0/0.")
        seen = X > 0
        if not np.all(np.isneginf(got[seen])):
            raise Wrong(f"on {what}: the films a user already rated must score −inf, so that they are never "
                        "recommended (mistake 1 of section 2.1).")
        if not np.isfinite(got[~seen]).all():
            raise Wrong(f"on {what}: a film the user has not rated needs a finite score (0 when none of their "
                        "films votes for it); only the rated ones are −inf.")
        want = _package_knn_item_scores(X, k)
        if not close(got[~seen], want[~seen], rtol=1e-5, atol=1e-6):  # the package stores similarities in float32
            u, i = np.argwhere(~np.isclose(got, want, rtol=1e-5, atol=1e-6) & ~seen)[0]

            def same(c, a, b):
                unseen = cases[c][0] == 0
                return a.shape == b.shape and close(a[unseen], b[unseen], rtol=1e-5, atol=1e-6)

            hint = _recognised(_outputs(answer, [(c[0], c[1]) for c in cases], read),
                               [_item_score_variants(c[0], c[1]) for c in cases], same) or (
                "score(u, i) adds s_ji over the films j the user rated, but only for the films j that keep i "
                "among their k nearest (cosine on the ratings, zero diagonal, positive values, ties → lower "
                "column): the formula of section 5.2.")
            raise Wrong(f"on {what}: score(user {u}, film {i}) = {fmt(got[u, i])}, expected {fmt(want[u, i])}. "
                        f"{hint}")


# --------------------------------------------------------------------------------------------- exercise 2
def _package_pearson(x: np.ndarray, y: np.ndarray, shrinkage: float) -> float:
    X = np.vstack([x, y])
    rows, cols = np.nonzero(~np.isnan(X))
    M = sp.csr_matrix((X[rows, cols], (rows, cols)), shape=X.shape)
    return float(pearson(M, shrinkage=shrinkage)[0, 1])


def _pearson_variants(x: np.ndarray, y: np.ndarray, lam: float) -> list[tuple[float, str]]:
    both = ~np.isnan(x) & ~np.isnan(y)
    n, n_any, n_x = int(both.sum()), int((~np.isnan(x) | ~np.isnan(y)).sum()), int((~np.isnan(x)).sum())
    if n < 2:  # undefined: every variant answers the convention's 0 too
        n, both = 0, np.zeros_like(both)

    def corr(xc, yc):
        d = np.sqrt((xc ** 2).sum() * (yc ** 2).sum())
        return float(xc @ yc / d) if n >= 2 and d > 1e-12 else 0.0

    raw = corr(x[both] - x[both].mean(), y[both] - y[both].mean()) if n else 0.0
    own_means = corr(x[both] - np.nanmean(x), y[both] - np.nanmean(y))
    xa, ya = np.nan_to_num(x - np.nanmean(x)), np.nan_to_num(y - np.nanmean(y))
    centred_cosine = corr(xa, ya)
    plain_cosine = corr(x[both], y[both])

    def factor(count, shrink_by=None):  # count / (count + λ), 0 where the correlation is undefined anyway
        top = count if shrink_by is None else shrink_by
        return top / (count + lam) if n and count + lam > 0 else 0.0

    return [
        (raw, "the correlation is right but not shrunk: multiply by n/(n + λ), n = the number of co-rated "
              "entries (section 4.1)."),
        (raw * factor(n, lam), "the shrinkage factor is n/(n + λ): it keeps most of a similarity built on many "
                               "co-ratings, not λ/(n + λ)."),
        (raw * factor(n_any), "n in the shrinkage factor counts the entries BOTH vectors rated, not those either "
                              "rated."),
        (raw * factor(n_x), "n in the shrinkage factor counts the entries both vectors rated, not all of x's "
                            "ratings."),
        (own_means * factor(n), "you centred each vector on the mean of all its ratings; Pearson centres on the "
                                "means over the co-rated entries only (section 4's table)."),
        (centred_cosine * factor(n), "that is the centred cosine (means and norms over all of each vector's "
                                     "ratings); Pearson uses only the co-rated entries, for the means and for the "
                                     "norms."),
        (plain_cosine * factor(n), "that is a cosine on the co-rated entries: Pearson first subtracts each "
                                   "vector's mean over those entries."),
    ]


@exercise("02.shrunk_pearson")
def check_shrunk_pearson(answer) -> None:
    nan = np.nan
    cases = [
        ([5, 3, 4, nan, 1], [4, nan, 5, 2, 1], 0.0, "the pair of section 4 without shrinkage (69/78)", False),
        ([5, 3, 4, nan, 1], [4, nan, 5, 2, 1], 10.0, "the pair of section 4 with λ = 10 (69/78 × 3/13)", False),
        ([1, 2, nan, 4], [2, 4, 6, nan], 0.0, "a pair with two co-rated entries, perfectly correlated", False),
        ([5, nan, 1], [nan, 2, 3], 0.0, "a pair with no co-rated entry (the answer is 0)", True),
        ([5, 4, nan], [1, nan, 3], 0.0, "a pair with one co-rated entry (a correlation needs two: the answer "
                                        "is 0)", True),
        ([3, 3, 3, 1], [1, 2, 5, nan], 0.0, "a pair where x is constant on the co-rated entries (the answer is "
                                            "0)", True),
        ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], 2.0, "a perfectly anti-correlated pair with λ = 2 (a negative "
                                                "value stays negative)", False),
    ]
    rng = np.random.default_rng(1)
    for seed in range(4):
        x = rng.integers(1, 11, 12) / 2
        y = rng.integers(1, 11, 12) / 2
        x[rng.random(12) < 0.3] = nan
        y[rng.random(12) < 0.3] = nan
        cases.append((list(x), list(y), float(rng.choice([0, 1, 5])), f"random vectors {seed}", False))
    for x, y, lam, what, undefined in cases:
        x, y = np.array(x, dtype=float), np.array(y, dtype=float)
        where = f"on {what} — x = {fmt(x)}, y = {fmt(y)}, λ = {fmt(lam)}"
        got = number(call(answer, x, y, lam), "shrunk_pearson(...)", finite=False)
        want = _package_pearson(x, y, lam)
        if not np.isfinite(got):
            raise Wrong(f"{where}: got {fmt(got)}. " + (
                "Here the correlation is undefined (0/0); the exercise's convention is to return 0." if undefined
                else "Keep only the entries both vectors rated before computing anything: one NaN in a sum makes "
                     "it NaN."))
        if not np.isclose(got, want, rtol=1e-6, atol=1e-9):
            args = [(np.array(c[0], dtype=float), np.array(c[1], dtype=float), c[2]) for c in cases]
            hint = _recognised(_outputs(answer, args, lambda v: number(v, "shrunk_pearson(...)")),
                               [_pearson_variants(*a) for a in args],
                               lambda c, a, b: bool(np.isclose(a, b, rtol=1e-6, atol=1e-9))) or (
                "0 when fewer than two entries are co-rated or a vector is constant on them; otherwise the "
                "correlation over the co-rated entries (means over them too), times n/(n + λ).")
            raise Wrong(f"{where}: got {fmt(got)}, expected {fmt(want)}. {hint}")


# --------------------------------------------------------------------------------------------- exercise 3
def _user_means(R: np.ndarray) -> np.ndarray:
    """Each user's mean rating over the ratings they gave (0 for a user with none)."""
    rated = ~np.isnan(R)
    counts = rated.sum(1)
    return np.divide(np.where(rated, R, 0.0).sum(1), counts, out=np.zeros(len(R)), where=counts > 0)


def _reference_mean_centred(R, S, u, i, k, *, plain=False, positive=True, scope="raters", use_k=True,
                            ties="low", mean_without_target=False) -> float:
    """Section 3's user-based prediction with user means as the baseline; the keywords build the mistakes."""
    R, S = np.asarray(R, dtype=float), np.asarray(S, dtype=float)
    means = _user_means(R)
    raters = np.flatnonzero(~np.isnan(R[:, i]))
    raters = raters[raters != u]
    if scope == "raters":
        pool = raters[np.lexsort((raters if ties == "low" else -raters, -S[u, raters]))]
        if positive:
            pool = pool[S[u, pool] > 0]
        top = pool[:k] if use_k else pool
    else:  # the k most similar users overall, then those of them who rated i
        others = np.delete(np.arange(len(R)), u)
        overall = others[np.lexsort((others, -S[u, others]))]
        overall = overall[S[u, overall] > 0][:k]
        top = overall[np.isin(overall, raters)]
    if top.size == 0:
        return float(means[u])
    nb_means = _user_means(np.delete(R, i, axis=1))[top] if mean_without_target else means[top]
    s = S[u, top]
    if plain:
        return float(s @ R[top, i] / np.abs(s).sum())
    return float(means[u] + s @ (R[top, i] - nb_means) / np.abs(s).sum())


def _mean_centred_variants(R, S, u, i, k) -> list[tuple[float, str]]:
    return [
        (_reference_mean_centred(R, S, u, i, k, plain=True),
         "your number is the plain weighted average of section 1, Σ s·r / Σ|s| (subtracting the user's own mean "
         "from the neighbours' ratings and adding it back gives the same number): it ignores the neighbours' "
         "rating habits. Each neighbour's deviation is from the neighbour's own mean."),
        (_reference_mean_centred(R, S, u, i, k, mean_without_target=True),
         "a neighbour's mean is over all of their ratings, the rating of the film itself included (Bob's mean "
         "is 10/4 in section 3)."),
        (_reference_mean_centred(R, S, u, i, k, scope="overall"),
         "you took the k most similar users overall and then kept those who rated the film; N_k(u;i) is the k "
         "most similar among the users who rated it (section 3)."),
        (_reference_mean_centred(R, S, u, i, k, positive=False),
         "a user with a negative (or zero) similarity is not a neighbour: Carol is left out in section 3."),
        (_reference_mean_centred(R, S, u, i, k, use_k=False),
         "only the k most similar raters take part; you used all of them."),
        (_reference_mean_centred(R, S, u, i, k, ties="high"),
         "on a tie at the k-th place keep the user with the lower index."),
    ]


@exercise("02.mean_centred_predict")
def check_mean_centred_predict(answer) -> None:
    nan = np.nan
    alice = np.array([[5, 4, 5, nan], [3, 2, 3, 2], [2, 5, nan, 4]], dtype=float)
    alice_s = np.array([[0.0, 1.0, -1.0], [1.0, 0.0, -0.5], [-1.0, -0.5, 0.0]])
    small = np.array([[4, nan, 2, 3], [5, 4, 1, nan], [3, 2, nan, 4], [nan, 5, 4, 2], [1, 1, 2, nan]], dtype=float)
    small_s = np.array([[0, .5, .8, .5, .3], [.5, 0, .2, .1, .4], [.8, .2, 0, .6, .1], [.5, .1, .6, 0, .2],
                        [.3, .4, .1, .2, 0]])
    cases = [
        (alice, alice_s, 0, 3, 5, "the Alice/Bob/Carol example of section 3 (4.1667: Bob's deviation of −0.5 "
                                  "added to Alice's 14/3)"),
        (small, small_s, 0, 1, 2, "5 users × 4 films, k = 2: three users rated film 1 and two of them tie at 0.5"),
        (small, small_s, 0, 1, 1, "the same with k = 1"),
        (small, small_s, 1, 3, 2, "5 users × 4 films, k = 2: user 1's second most similar user, user 4, has not "
                                  "rated film 3"),
        (small, -small_s, 0, 1, 3, "a user whose similarities are all negative (no neighbour: the prediction is "
                                   "the user's mean)"),
        (np.column_stack([small, np.full(5, nan)]), small_s, 0, 4, 3,
         "a film nobody has rated yet (no neighbour: the prediction is the user's mean)"),
    ]
    rng = np.random.default_rng(2)
    for trial in range(3):
        R = np.where(rng.random((8, 10)) < 0.5, rng.integers(1, 11, (8, 10)) / 2, nan)
        R[0, 0], R[0, 1] = nan, 3.5  # user 0 rated something and not film 0
        S = np.round(rng.uniform(-0.5, 1.0, (8, 8)), 2)
        S = np.triu(S, 1) + np.triu(S, 1).T
        cases.append((R, S, 0, 0, int(rng.integers(1, 5)), f"random 8 × 10 ratings {trial}"))
    for R, S, u, i, k, what in cases:
        where = f"on {what} (u = {u}, i = {i}, k = {k})"
        got = number(call(answer, R, S, u, i, k), "mean_centred_predict(...)", finite=False)
        want = _reference_mean_centred(R, S, u, i, k)
        if not np.isfinite(got):
            empty = not np.any((S[u] > 0) & ~np.isnan(R[:, i]) & (np.arange(len(R)) != u))
            raise Wrong(f"{where}: got {fmt(got)}. " + (
                "With no neighbour the sums are empty (0/0): the prediction is then the user's own mean."
                if empty else "A mean or a sum took in the NaN of a missing rating: use only the ratings that "
                              "exist."))
        if not np.isclose(got, want, rtol=1e-9, atol=1e-9):
            args = [c[:5] for c in cases]
            hint = _recognised(_outputs(answer, args, lambda v: number(v, "mean_centred_predict(...)")),
                               [_mean_centred_variants(*a) for a in args],
                               lambda c, a, b: bool(np.isclose(a, b, rtol=1e-9, atol=1e-9))) or (
                "r̄_u + Σ s_uv (r_vi − r̄_v) / Σ |s_uv| over the (at most) k users with the largest positive "
                "similarity among those who rated i; r̄_u alone when there is none.")
            raise Wrong(f"{where}: got {fmt(got)}, expected {fmt(want)}. {hint}")


# --------------------------------------------------------------------------------------------- experiment
MIN_RATERS = 20
WELL_RATED_TOLERANCE = 0.0005  # RMSE; both models are deterministic, the slack covers float summation order
MODELS = ("BiasBaseline", "UserKNN")


def _rating_split():
    from ..data import load_movielens
    from ..split import rating_split

    return rating_split(load_movielens().ratings)


def _predictions(rating_train, rating_test) -> dict[str, np.ndarray]:
    from ..models import BiasBaseline, UserKNN

    return {name: model.fit(rating_train).predict(rating_test[USER], rating_test[ITEM])
            for name, model in [("BiasBaseline", BiasBaseline()), ("UserKNN", UserKNN())]}


def _rmse_on(rating_test, preds, mask) -> dict[str, float]:
    from ..metrics import rmse

    y = rating_test[RATING].to_numpy()
    return {name: rmse(y[mask], p[mask]) for name, p in preds.items()}


def _raters(frame, rating_test) -> np.ndarray:
    return frame.groupby(ITEM).size().reindex(rating_test[ITEM]).fillna(0).to_numpy()


@exercise("02.well_rated_films", kind="experiment", inputs=_rating_split)
def check_well_rated_films(answer, rating_train, rating_test) -> str:
    got = call(answer, rating_train, rating_test)
    got = keyed_numbers(got, MODELS, "{model name: RMSE}", lambda m: f"the RMSE of {m}")
    preds = _predictions(rating_train, rating_test)
    n_train = _raters(rating_train, rating_test)
    keep = n_train >= MIN_RATERS
    if not keep.any():
        raise Wrong(f"no test rating is of a film with at least {MIN_RATERS} raters in rating_train (a tiny "
                    "sample?); run the lesson profile")
    want = _rmse_on(rating_test, preds, keep)
    if all(abs(got[m] - want[m]) <= WELL_RATED_TOLERANCE for m in MODELS):
        everything = _rmse_on(rating_test, preds, np.ones(len(rating_test), dtype=bool))
        if want["UserKNN"] < want["BiasBaseline"] and everything["UserKNN"] > everything["BiasBaseline"]:
            reading = ("UserKNN beats the baseline on these films but loses on all test pairs: with enough raters "
                       "to choose neighbours from, user-based CF works — as section 6.3 explained.")
        elif want["UserKNN"] < want["BiasBaseline"]:
            reading = "UserKNN beats the baseline on these films, as it does on all test pairs of this data set."
        else:
            reading = "UserKNN does not beat the baseline even on these films: few raters are not the whole story."
        return (f"on the {100 * keep.mean():.1f} % of test pairs whose film has ≥ {MIN_RATERS} raters in "
                f"rating_train, RMSE BiasBaseline {fmt(got['BiasBaseline'])} / UserKNN {fmt(got['UserKNN'])} (the "
                f"course's run: {fmt(want['BiasBaseline'])} / {fmt(want['UserKNN'])}; on every test pair: "
                f"{fmt(everything['BiasBaseline'])} / {fmt(everything['UserKNN'])}). {reading}")
    n_test = rating_test.groupby(ITEM).size().reindex(rating_test[ITEM]).to_numpy()
    variants = [
        (np.ones(len(rating_test), dtype=bool), "you scored every test pair; keep only those whose film has at "
                                                f"least {MIN_RATERS} ratings in rating_train."),
        (n_train > MIN_RATERS, f"“at least {MIN_RATERS}” includes the films with exactly {MIN_RATERS} raters."),
        (n_test >= MIN_RATERS, "count a film's raters in rating_train, the data the models learn from, not in "
                               "rating_test."),
        (n_train + n_test >= MIN_RATERS, "count a film's raters in rating_train only: the test ratings are "
                                         "unknown when the prediction is made."),
    ]
    hint = ""
    for mask, text in variants:
        if mask.any() and not np.array_equal(mask, keep):
            alt = _rmse_on(rating_test, preds, mask)
            if all(abs(got[m] - alt[m]) <= WELL_RATED_TOLERANCE for m in MODELS):
                hint = text
                break
    if not hint and all(abs(got[a] - want[b]) <= WELL_RATED_TOLERANCE for a, b in zip(MODELS, MODELS[::-1])):
        hint = "the two numbers are swapped: check which model each key names."
    if not hint:
        hint = ("fit BiasBaseline() and UserKNN() with their defaults on all of rating_train, predict every test "
                "pair, and compute the RMSE over the pairs whose film has enough raters in rating_train.")
    raise Wrong(f"your RMSEs are BiasBaseline {fmt(got['BiasBaseline'])} / UserKNN {fmt(got['UserKNN'])}, the "
                f"course's run gives {fmt(want['BiasBaseline'])} / {fmt(want['UserKNN'])} (tolerance "
                f"±{fmt(WELL_RATED_TOLERANCE)}). {hint}")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("02", [
    Choice("Section 2.1, mistake 3: why can the normalised average Σ s·r / Σ|s| not rank films on purchase data?",
           {"a": "every neighbour's “rating” is 1, so the ratio is 1 for every film that has a neighbour",
            "b": "cosine similarities are already normalised, so dividing twice shrinks every score to 0",
            "c": "the normalisation favours the most popular films, so every list is the same",
            "d": "it lets a film be its own neighbour"},
           answer="a",
           why="with r = 1 the numerator and the denominator are the same sum: a constant 1, whatever the data "
               "(the random 50 × 40 matrix shows it). The unnormalised sum of similarities can rank.",
           hints={"b": "work the ratio for i4 by hand with the numbers of section 2: what are the numerator and "
                       "the denominator when every rating is 1?",
                  "c": "popular films would at least be ordered; look at the table of mistakes — what is left "
                       "to order?",
                  "d": "that is mistake 2, a different one; mistake 3 happens with a zero diagonal too."}),
    Choice("Section 4.2: shrinkage with λ = 100 helps UserKNN with Pearson but hurts it with the cosine. Why?",
           {"a": "Pearson similarities rest on more co-ratings than cosine similarities",
            "b": "shrinkage only acts on negative similarities, and only Pearson has them",
            "c": "the cosine divides by norms over all of each user's ratings, so a pair with few co-ratings "
                 "already gets a small similarity; Pearson's co-rated-only norms can give 1 from two ratings",
            "d": "the validation slice favours whichever similarity is computed last"},
           answer="c",
           why="the cosine is shrunk by construction; Pearson is not, so it needs the factor n/(n + λ) — the "
               "Toy Story neighbours of section 4.1 show the correlations of 1 from three co-raters.",
           hints={"a": "both are computed on the same pairs of users; n_ab does not depend on the measure.",
                  "b": "the factor n/(n + λ) multiplies every similarity, positive or negative.",
                  "d": "every configuration is fitted and scored on the same fit part and validation slice."}),
    Choice("Section 5.1: with k = 2 neighbours, item-based CF predicts ratings worse than the bias baseline. Why?",
           {"a": "with k = 2 most neighbours have a negative similarity",
            "b": "the prediction adds the similarity-weighted mean of only two deviations, which are copied "
                 "almost as they are — their noise goes straight into the prediction",
            "c": "with a small k the model no longer adds the baseline b_ui",
            "d": "two neighbours are too few to compute a cosine"},
           answer="b",
           why="the normalisation divides the similarity away (flaw 2 of section 3): one or two neighbours' "
               "deviations are copied; averaging over about 20 of them cancels their noise.",
           hints={"a": "only positive similarities are kept as neighbours, whatever k is.",
                  "c": "b_ui is always there; k only decides how many deviations are averaged on top of it.",
                  "d": "the similarities are computed in fit, between whole columns; k is read only when "
                       "predicting."}),
    Choice("Section 6.2: ranking by predicted rating (rating mode) scores an NDCG@10 below even the bias model's. "
           "Why?",
           {"a": "the rating-mode models recommend films the user has already rated",
            "b": "the films of the ranking track's test set are absent from its train set",
            "c": "rating-mode models are fitted on the rating track, not on the ranking track",
            "d": "the highest predicted ratings go to obscure films whose few raters loved them: a prediction says "
                 "how much you would like a film if you watched it, not whether you will"},
           answer="d",
           why="a large item bias nudged by a neighbour's deviation tops the predicted ratings; the sum of "
               "similarities instead rewards films tied to many of your films — the ones you watch next.",
           hints={"a": "evaluate removes the films a user rated in train from every top-10 list.",
                  "b": "most test films of the ranking track are in its train set; the ranking-mode models find "
                       "them.",
                  "c": "every model of section 6.2 is fitted on rank_train, the rating-mode ones included."}),
    Numeric("Shrinkage s' = n/(n + λ)·s with λ = 100: how many co-ratings n must a pair have to keep 80 % of its "
            "similarity?",
            answer=400, tol=0,
            why="n/(n + 100) = 0.8 gives n = 0.8 n + 80, so n = 400.",
            hint="set n/(n + λ) equal to the share to keep and solve for n."),
])

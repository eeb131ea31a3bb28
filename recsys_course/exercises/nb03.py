"""Checks of notebook 03 (content-based): reading document frequencies back from scikit-learn's idf, a ridge
that shrinks towards a prior taste, the exact best blend weight of the hybrid, an experiment (the cold films'
scores with day-one features: no tags for the new films only) and the questionnaire.

Each function check compares the student's function with the formula the exercise asks for (idf from
scikit-learn's ``TfidfVectorizer``, the stacked least-squares system, the minimiser of a quadratic) on the
notebook's worked examples, small random cases and edge cases; a hint that names a mistake is shown only when
the check has computed that mistake and found the student's answer equal to it.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from ..config import ITEM
from . import exercise
from .answers import Wrong, array, call, close, fmt, keyed_numbers, number
from .quiz import Choice, Numeric, register_quiz


# --------------------------------------------------------------------------------------------- 03.df_from_idf
def _sklearn_idf(docs) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's smoothed idf of every term of ``docs`` (token lists) and the true document frequencies."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=lambda d: d, lowercase=False).fit(docs)
    vocab = list(vec.get_feature_names_out())
    df = np.array([sum(t in d for d in docs) for t in vocab], dtype=float)
    return vec.idf_.copy(), df


def _idf_cases():
    rng = np.random.default_rng(30)
    words = [f"w{j}" for j in range(8)]
    cases = [(*_sklearn_idf([["space", "classic"], ["space", "space"], ["christmas"]]), 3,
              "the tags of the three films of section 2.1 (N = 3)")]
    for n_docs in (5, 12, 40):
        docs = [list(rng.choice(words, size=rng.integers(1, 6))) for _ in range(n_docs)]
        docs = [d + ["everywhere"] for d in docs]  # a term in every document: idf 1, df N
        cases.append((*_sklearn_idf(docs), n_docs, f"a random corpus of {n_docs} documents (one term in all)"))
    n, df = 9742, np.array([1.0, 2.0, 57.0, 9742.0])
    cases.append((np.log((1 + n) / (1 + df)) + 1, df, n, "the MovieLens catalogue, N = 9,742"))
    return cases


@exercise("03.df_from_idf")
def check_df_from_idf(answer) -> None:
    for idf, want, n_docs, what in _idf_cases():
        got = array(call(answer, idf, n_docs), "df_from_idf(...)", shape=(len(idf),))
        if close(got, want, rtol=0, atol=1e-6):
            continue
        variants = {
            "That inverts the textbook idf ln(N/df); scikit-learn's adds 1 inside the fraction and 1 outside "
            "the logarithm (section 2.1).": n_docs / np.exp(idf),
            "You undid the logarithm before taking away the +1 that sits outside it.":
                (1 + n_docs) / np.exp(idf) - 1,
            "That is 1 + df: the smoothing adds 1 to every document frequency, so take it away at the end.":
                (1 + n_docs) * np.exp(1 - idf),
            "That uses a base-10 logarithm; scikit-learn's idf uses the natural one, ln.":
                (1 + n_docs) / 10 ** (idf - 1) - 1,
            "The formula is right, but exp and ln leave tiny rounding errors, and rounding down turns a count such "
            "as 1.9999999 into 1: round to the nearest whole number, or return the floats.": np.floor((1 + n_docs) * np.exp(1 - idf) - 1),
        }
        hint = next((h for h, v in variants.items() if close(got, v, rtol=0, atol=1e-6)),
                    "Undo the formula idf = ln((1 + N)/(1 + df)) + 1 one step at a time, from the outside in.")
        raise Wrong(f"on {what}: got {fmt(got)}, expected {fmt(want)}. {hint}")


# --------------------------------------------------------------------------------------------- 03.ridge_towards
def _ridge_towards(C, r, lam, w0) -> np.ndarray:
    """Reference: least squares on the stacked system [C; √λ I] w = [r − b; √λ w0]."""
    k = C.shape[1]
    stacked = np.vstack([C, np.sqrt(lam) * np.eye(k)])
    return np.linalg.lstsq(stacked, np.concatenate([r - r.mean(), np.sqrt(lam) * w0]), rcond=None)[0]


def _ridge_variants(C, r, lam, w0) -> dict[str, np.ndarray]:
    """Plausible mistakes, each with the hint that is true for it."""
    k = C.shape[1]
    A = C.T @ C + lam * np.eye(k)
    y = r - r.mean()
    return {
        "That is the ridge of section 3.2, which shrinks towards 0: the prior w0 is ignored. Expand "
        "λ‖w − w0‖² and set the gradient to zero — w0 appears on the right-hand side.": np.linalg.solve(A, C.T @ y),
        "That is the ridge of section 3.2 plus w0. Adding w0 after the solve forgets that w0 already explains "
        "part of the centred ratings (C·w0): the data term must see it too.": np.linalg.solve(A, C.T @ y) + w0,
        "The sign of the prior's term is flipped: the penalty pulls w towards w0, not away from it.":
            np.linalg.solve(A, C.T @ y - lam * w0),
        "The prior's term is missing its factor λ: the gradient of λ‖w − w0‖² is 2λ(w − w0).":
            np.linalg.solve(A, C.T @ y + w0),
        "The ratings are not centred: b_u is the user's mean, taken off before the fit as in section 3.2.":
            np.linalg.solve(A, C.T @ r + lam * w0),
    }


@exercise("03.ridge_towards")
def check_ridge_towards(answer) -> None:
    rng = np.random.default_rng(31)
    C2, r2 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([5.0, 2.0, 4.0])
    cases = [
        (C2, r2, 1.0, np.zeros(2), "the worked example of section 3.2 with w0 = 0 (w = (0.7917, −0.7083))"),
        (C2, r2, 1.0, np.array([1.0, -1.0]), "the worked example of section 3.2 with w0 = (1, −1)"),
        (rng.random((12, 4)), rng.integers(1, 6, 12).astype(float), 3.0, rng.normal(size=4),
         "a user with 12 ratings and 4 features"),
        (rng.random((2, 5)), np.array([4.0, 1.5]), 0.5, rng.normal(size=5),
         "fewer ratings (2) than features (5)"),
        (rng.random((4, 3)), np.full(4, 3.5), 2.0, np.array([0.5, -0.2, 0.1]),
         "a user who gave every film 3.5 (the centred ratings are all 0)"),
        (rng.random((6, 3)), rng.integers(1, 6, 6).astype(float), 1e8, np.array([0.3, 0.0, -0.4]),
         "a huge λ = 1e8 (w must be w0, up to rounding)"),
    ]
    for C, r, lam, w0, what in cases:
        want = _ridge_towards(C, r, lam, w0)
        got = call(answer, C, r, lam, w0)
        if isinstance(got, tuple) and not all(np.isscalar(x) for x in got):
            raise Wrong(f"return w alone, a vector of length {C.shape[1]} (the number of features), not a tuple: "
                        "b_u is taken off the ratings inside the function, not returned.")
        got = array(got, "ridge_towards(...)", shape=(C.shape[1],))
        if close(got, want, rtol=1e-6, atol=1e-8):
            continue
        hint = next((h for h, v in _ridge_variants(C, r, lam, w0).items() if close(got, v, rtol=1e-6, atol=1e-8)),
                    "Minimise ‖r − b − Cw‖² + λ‖w − w0‖²: set its gradient to zero and solve the k × k system.")
        raise Wrong(f"on {what}: got w = {fmt(got)}, expected {fmt(want)}. {hint}")


# --------------------------------------------------------------------------------------------- 03.blend_weight
def _best_weight(r, cf, content, knows, clip=True) -> float:
    e = (r - content)[knows]
    d = (cf - content)[knows]
    alpha = float(e @ d / (d @ d))
    return min(max(alpha, 0.0), 1.0) if clip else alpha


def _blend_cases():
    rng = np.random.default_rng(32)
    cases = [(np.array([4.0, 3.0, 5.0, 2.0]), np.array([4.5, 3.5, np.nan, 2.0]), np.array([3.5, 2.5, 4.0, 3.0]),
              np.array([True, True, False, True]), "the small example of the exercise (one cold film, CF NaN)")]
    n = 300
    for trial, (true_alpha, cold_share, cold_cf) in enumerate([(0.7, 0.1, "nan"), (0.35, 0.3, "mean"),
                                                                (1.6, 0.1, "nan"), (-0.4, 0.2, "mean")]):
        truth = rng.uniform(1, 5, n)
        cf = truth + rng.normal(0, 0.6, n)
        content = truth + rng.normal(0, 0.9, n)
        r = content + true_alpha * (cf - content) + rng.normal(0, 0.3, n)
        knows = rng.random(n) >= cold_share
        # the CF score of a film it does not know: NaN, or a fallback such as the user's mean (ItemKNN's μ + b_u)
        cf[~knows] = np.nan if cold_cf == "nan" else rng.uniform(3, 4, (~knows).sum())
        where = {0.7: "random ratings, 10 % cold films (CF NaN there)",
                 0.35: "random ratings, 30 % cold films (CF gives a fallback there, not NaN)",
                 1.6: "ratings that favour CF more than any blend can (the minimum lies beyond α = 1)",
                 -0.4: "ratings where CF only hurts (the minimum lies below α = 0)"}[true_alpha]
        cases.append((r, cf, content, knows, f"case {trial + 2}: {where}"))
    return cases


@exercise("03.blend_weight")
def check_blend_weight(answer) -> None:
    for r, cf, content, knows, what in _blend_cases():
        want = _best_weight(r, cf, content, knows)
        got = number(call(answer, r, cf, content, knows), "best_blend_weight(...)", finite=False)
        if not np.isfinite(got):
            raise Wrong(f"on {what}: got {fmt(got)} — the CF score of a cold film is NaN and it leaked into your "
                        "sums. The prediction of a cold film does not depend on α, so those rows play no part.")
        if abs(got - want) <= 1e-6:
            continue
        unclipped = _best_weight(r, cf, content, knows, clip=False)
        all_rows = _best_weight(r, np.where(knows, cf, np.nan_to_num(cf)), content, np.ones_like(knows))
        hint = "The RMSE is a parabola in α: set its derivative to zero, over the rows where α changes the prediction."
        if abs(got - unclipped) <= 1e-6:
            hint = ("α is a weight in [0, 1]. Your number is the parabola's minimum; when it lies outside the interval, "
                    "the best allowed weight is the nearer end.")
        elif abs(got - (1 - want)) <= 1e-6:
            hint = "That is 1 − α, the weight of the content model; α weighs the CF model."
        elif abs(got - all_rows) <= 1e-6:
            hint = ("Your sums include the cold films, but their prediction is the content score whatever α is: "
                    "they do not enter the minimisation.")
        elif abs(got - want) < 0.05 + 1e-9 and abs(got * 10 - round(got * 10)) < 1e-9:
            hint = ("That is the best point of a grid with step 0.1, like the sweep of section 6; the exercise asks "
                    "for the exact minimiser, which a quadratic gives in closed form.")
        raise Wrong(f"on {what}: got α = {fmt(got)}, expected {fmt(want)}. {hint}")


# --------------------------------------------------------------------------------------------- experiment
DAY_ONE_TOLERANCE = 0.0005  # RMSE and NDCG@10; the same code on the same data agrees to ~1e-12
_DAY_ONE_CACHE: dict = {}


@cache
def _cold_split():
    from ..data import load_movielens
    from ..split import item_cold_start_split

    ml = load_movielens()
    cold_train, cold_test = item_cold_start_split(ml.ratings, share=0.1, seed=42)
    return cold_train, cold_test, ml.movies, ml.tags


def _fingerprint(*frames) -> tuple:
    """What identifies the inputs of one run (cheap: a hash of the frames' values)."""
    out = []
    for f in frames:
        if not isinstance(f, pd.DataFrame):
            out.append(id(f))
            continue
        try:
            digest = pd.util.hash_pandas_object(f, index=False)
        except TypeError:  # list-valued columns (the movies' genres)
            digest = pd.util.hash_pandas_object(f.astype(str), index=False)
        out.append((f.shape, int(digest.sum())))
    return tuple(out)


def _cold_scores(cold_train, cold_test, movies, tags, which: str) -> dict[str, float]:
    """ContentBased (default settings) on the item-cold-start split, with the tags of: every film ("all"), no
    film ("none"), or only the films of the training part ("train": the held-out films have none)."""
    key = (_fingerprint(cold_train, cold_test, movies, tags), which)
    if key not in _DAY_ONE_CACHE:
        from ..evaluate import evaluate_cold_items
        from ..features import item_features
        from ..models import ContentBased

        if which == "all" or tags is None or len(tags) == 0:
            kept = tags
        elif which == "none":
            kept = None
        else:
            kept = tags[~tags[ITEM].isin(cold_test[ITEM].unique())]
        row = evaluate_cold_items(ContentBased(features=item_features(movies, kept)).fit(cold_train), cold_test)
        _DAY_ONE_CACHE[key] = {"rmse": float(row["rmse"]), "ndcg@10": float(row["ndcg@10"])}
    return _DAY_ONE_CACHE[key]


def _near(got: dict, want: dict, tol: float = DAY_ONE_TOLERANCE) -> bool:
    return all(abs(got[m] - want[m]) <= tol for m in ("rmse", "ndcg@10"))


@exercise("03.day_one_tags", kind="experiment", inputs=_cold_split)
def check_day_one_tags(answer, cold_train, cold_test, movies, tags) -> str:
    got = call(answer, cold_train, cold_test, movies, tags)
    if isinstance(got, pd.Series):
        got = got.to_dict()
    got = keyed_numbers(got, ("rmse", "ndcg@10"), '{"rmse": …, "ndcg@10": …} (as evaluate_cold_items names them)',
                        lambda m: f"the value of {m!r}")
    want = _cold_scores(cold_train, cold_test, movies, tags, "train")
    if not _near(got, want):
        hint = ("Keep the tags of every film that is not held out, drop those of the films in cold_test, build the "
                "features from that, and fit ContentBased with its default settings on cold_train.")
        # a mistake is named only when the student's numbers are that variant's, not merely close to them
        if _near(got, _cold_scores(cold_train, cold_test, movies, tags, "all"), 1e-6):
            hint = ("These are the numbers of the ContentBased row of 5.2, which keeps every film's tags; the "
                    "held-out films must lose theirs.")
        elif _near(got, _cold_scores(cold_train, cold_test, movies, tags, "none"), 1e-6):
            hint = ("These are the numbers of the ContentBased (no tags) row of 5.2: you dropped the tags of "
                    "every film, and the exercise keeps those of the films in cold_train.")
        raise Wrong(f"your RMSE {fmt(got['rmse'])} and NDCG@10 {fmt(got['ndcg@10'])}; the course's run gives "
                    f"{fmt(want['rmse'])} and {fmt(want['ndcg@10'])} (tolerance ±{fmt(DAY_ONE_TOLERANCE)} on each). "
                    f"{hint}")
    return (f"day-one features (no tags for the held-out films): RMSE {fmt(got['rmse'])}, NDCG@10 "
            f"{fmt(got['ndcg@10'])} (the course's run: {fmt(want['rmse'])}, {fmt(want['ndcg@10'])}). Read them "
            "against the ContentBased and ContentBased (no tags) rows of 5.2: the closer they are to the no-tag "
            "row, the less the older films' tags help a new film, and the more of the tag block's lead came from "
            "the held-out films' own tags.")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("03", [
    Choice("On the item-cold-start split of 5.2, ContentBased ranks the held-out films far better with the tag "
           "block than without it. Why is the row without tags the honest number for a film released today?",
           {"a": "tags describe a film better than genres, so without them the model is handicapped for no reason",
            "b": "a held-out film's tags were written by people who watched it: how much it is tagged carries "
                 "a popularity signal that a brand-new film does not have yet",
            "c": "the tag block has the most non-empty rows, so the truncated SVD keeps mostly tag directions",
            "d": "tags are TF-IDF weighted and genres are not, so the two blocks are on different scales"},
           answer="b",
           why="a film nobody has watched has no tags; the tags of held-out films leak part of what the split "
               "hides (that people watched them). The experiment of exercise 4 removes them for those films only.",
           hints={"a": "a brand-new film has no tags at all, however informative tags are for older films.",
                  "c": "section 2.2 shows the opposite: only a small share of the films has any tag.",
                  "d": "every block is scaled to unit length before the block weights (section 2.1), so the scales "
                       "match."}),
    Choice("On the cold slice of the canonical rating split (5.1), BiasBaseline and ItemKNN have exactly the same "
           "RMSE. Why?",
           {"a": "for a film absent from train ItemKNN has no similarities and falls back to μ + b_u, which is "
                 "also the bias model's prediction when b_i = 0",
            "b": "ItemKNN predicts the bias model's rating for every film, warm or cold",
            "c": "the two models were tuned with the same λ on the same validation slice",
            "d": "the cold slice is too small for two different models to differ"},
           answer="a",
           why="neither model knows anything about a cold film; both predict the user's level μ + b_u.",
           hints={"b": "on the warm films the two differ (the warm RMSE column of 5.1).",
                  "c": "tuning does not give two different models identical predictions.",
                  "d": "two different predictions agreeing to every digit shown is no accident of a small "
                       "sample: the predictions themselves are the same."}),
    Choice("The hybrid beats ItemKNN on the warm test films too, although the content model alone is worse than "
           "ItemKNN there. Why?",
           {"a": "the content model is better than ItemKNN on the films with the most ratings",
            "b": "the two models make partly different errors, so a weighted average cancels part of each",
            "c": "α was tuned on the test set",
            "d": "on warm films without neighbours the hybrid switches to the content model"},
           answer="b",
           why="averaging two predictors whose errors are not perfectly correlated reduces the error, as long as "
               "neither is much worse (section 6's sweep: the best α is inside the interval).",
           hints={"a": "over all the warm test films content is worse than ItemKNN (the warm RMSE column of "
                       "section 6), yet the blend beats both there: the gain needs another explanation.",
                  "c": "α was chosen on the validation slice (section 6); the test set was not used.",
                  "d": "the switch depends on whether the CF model knows the film; every warm film is in train."}),
    Numeric("In the worked example of section 2.1, raise the title block's weight from 0.5 to 1 and keep the "
            "other weights (genres 1, tags 1, decade 0.5). What is the cosine of films A and B now? (Two decimals "
            "suffice.)",
            answer=(1 / np.sqrt(2) + 0.6053 + 0.6053 ** 2 + 0.25) / 3.25, tol=0.005,
            why="blocks add up: each contributes weight² × (dot product of the two films' unit rows) to the "
                "numerator and weight² to each squared norm: (0.7071 + 0.6053 + 0.6053² + 0.25) / 3.25 ≈ 0.59.",
            hint="each block adds weight² × (the dot product of the two films' unit rows for that block) to the "
                 "numerator and weight² to each film's squared length (every block of A and B is non-empty)."),
    Choice("In the sweep of section 6, the RMSE on the validation ratings of cold films is the same for every α. "
           "Why?",
           {"a": "the content model is perfectly calibrated on cold films",
            "b": "for a film the CF model does not know, the hybrid uses the content prediction alone, whatever α",
            "c": "there are too few cold validation ratings for α to make a difference",
            "d": "ItemKNN predicts the same rating as the content model for cold films"},
           answer="b",
           why="the switch of the hybrid's formula: α only enters where the CF model knows user and film.",
           hints={"a": "a flat line would need the prediction not to depend on α at all, calibrated or not.",
                  "c": "a line flat to every digit printed, across all the weights, is no accident of a small "
                       "sample: the predictions themselves do not change.",
                  "d": "ItemKNN predicts μ + b_u for a film it does not know (5.1), not the content model's "
                       "rating."}),
])

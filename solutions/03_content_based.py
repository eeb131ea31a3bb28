"""Solutions to the exercises of notebook 03 (content-based recommendation).

* ``df_from_idf`` — undo ``idf = ln((1 + N) / (1 + df)) + 1`` from the outside in: take away the 1,
  exponentiate, ``(1 + N) / (1 + df) = e^{idf - 1}``, so ``df = (1 + N) e^{1 - idf} - 1``. On the tags of
  section 2.1 (N = 3) the idf 1.6931 gives df = 4/2 - 1 = 1 and 1.2877 gives 4 × 0.75 - 1 = 2. A term in every
  document has idf exactly 1 and df = N. The result is a float that is a whole number up to rounding.
* ``ridge_towards`` — the objective ``‖y - Cw‖² + λ‖w - w0‖²`` with ``y = r - b`` (b the mean rating) has the
  gradient ``-2Cᵀ(y - Cw) + 2λ(w - w0)``; setting it to zero gives ``(CᵀC + λI) w = Cᵀy + λ w0``. With w0 = 0
  it is the ridge of section 3.2; as λ grows, w tends to w0 instead of 0. Equivalently, fit the ordinary ridge
  to what w0 leaves unexplained, ``y - C w0``, and add w0 back. A user whose ratings are all equal gets
  ``w = (CᵀC + λI)⁻¹ λ w0``: pulled towards w0, not all the way (the data say "no preference").
* ``best_blend_weight`` — only the rows where the CF model knows the film depend on α; with ``e = r - content``
  and ``d = cf - content`` there, the squared error is ``Σ (e - α d)²``, a parabola in α with its minimum at
  ``α* = Σ e d / Σ d²``. Cold rows (their CF score may be NaN or a fallback) are left out by selecting, and
  α* is clipped to [0, 1]: the parabola rises on both sides of its minimum, so the nearer end is the best
  allowed weight. On the validation slice of section 6 (``best_blend_weight(val_part[RATING], cf_pred,
  content_pred, val_known)``, lesson run on ml-latest-small) it gives α* = 0.721, validation RMSE 0.83807
  against 0.83812 at the grid's α = 0.7 — equal to four decimals: the grid's step of 0.1 was fine enough, and
  the exact weight gains nothing that matters (the RMSE is flat near its minimum).
* ``day_one_tags`` (experiment) — keep the tags of every film except the held-out ones, build the features
  from them, fit ``ContentBased(features=...)`` with its defaults on ``cold_train`` and score with
  ``evaluate_cold_items``. Lesson run: RMSE 0.8839 and NDCG@10 0.0309 — against 0.8750 / 0.0547 with every
  film's tags and 0.8821 / 0.0302 with no tags at all. The tags of the *training* films do not help a film
  that has none: the day-one numbers are those of the no-tag row (a hair worse on RMSE, a hair better on
  NDCG@10). So the no-tag row of 5.2 is the honest number for a new film, and the 0.0547 owes its lead to the
  held-out films' own tags — tags that only films people have watched can have.
* ``quiz`` — the reasons are printed by ``show_solution("03.quiz")``.
"""
from __future__ import annotations

import numpy as np

from recsys_course.config import ITEM
from recsys_course.evaluate import evaluate_cold_items
from recsys_course.features import item_features
from recsys_course.models import ContentBased


def df_from_idf(idf, n_docs):
    return (1 + n_docs) * np.exp(1 - np.asarray(idf, dtype=float)) - 1


def ridge_towards(C, r, lam, w0):
    C = np.asarray(C, dtype=float)
    r = np.asarray(r, dtype=float)
    w0 = np.asarray(w0, dtype=float)
    y = r - r.mean()
    return np.linalg.solve(C.T @ C + lam * np.eye(C.shape[1]), C.T @ y + lam * w0)


def best_blend_weight(ratings, cf_scores, content_scores, cf_knows):
    known = np.asarray(cf_knows, dtype=bool)
    content = np.asarray(content_scores, dtype=float)[known]
    e = np.asarray(ratings, dtype=float)[known] - content
    d = np.asarray(cf_scores, dtype=float)[known] - content
    return float(np.clip(e @ d / (d @ d), 0.0, 1.0))


def day_one_tags(cold_train, cold_test, movies, tags):
    old_tags = tags[~tags[ITEM].isin(cold_test[ITEM])]
    model = ContentBased(features=item_features(movies, old_tags)).fit(cold_train)
    row = evaluate_cold_items(model, cold_test)
    return {"rmse": row["rmse"], "ndcg@10": row["ndcg@10"]}


SOLUTIONS = {
    "03.df_from_idf": df_from_idf,
    "03.ridge_towards": ridge_towards,
    "03.blend_weight": best_blend_weight,
    "03.day_one_tags": day_one_tags,
    "03.quiz": {1: "b", 2: "a", 3: "b", 4: 0.59, 5: "b"},
}

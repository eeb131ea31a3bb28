"""One ``evaluate`` for every model of the course."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .config import ITEM, RANK, RATING, RELEVANCE_THRESHOLD, USER
from .data import DataError, check_ratings
from .metrics import RANKING_METRICS, mae, rmse
from .models.base import NotFittedError


def evaluate(model, train: pd.DataFrame, test: pd.DataFrame, k: int = 10, *,
             relevance_threshold: float | None = RELEVANCE_THRESHOLD, name: str | None = None) -> pd.Series:
    """Score a fitted model on ``test``; return one tidy row (a Series named after the model).

    * ``rmse``, ``mae`` — over every test rating, only for models that predict ratings.
    * ``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``, ``hit@k``, ``mrr@k`` — each test user with at
      least one relevant test item (rating ≥ ``relevance_threshold``; ``None`` makes every test item
      relevant, for implicit data) gets a top-k list over the **whole training catalogue minus the items
      they rated in train**; relevant items the model never saw count as misses.
    * ``coverage@k`` — share of the training catalogue that appears in any of those lists.

    ``model`` must already be fitted on ``train`` (the same frame, so "seen" means the same thing).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    check_fitted_on(model, train, test, "evaluate")
    overlap = test.merge(train[[USER, ITEM]], on=[USER, ITEM]).shape[0]
    if overlap:
        raise DataError(f"test shares {overlap:,} (userId, movieId) pairs with train: the split leaks; build "
                        "train and test with recsys_course.split")

    row: dict[str, float] = {}
    if model.predicts_ratings:
        pred = model.predict(test[USER], test[ITEM])
        row["rmse"] = rmse(test[RATING], pred)
        row["mae"] = mae(test[RATING], pred)

    relevant = test if relevance_threshold is None else test[test[RATING] >= relevance_threshold]
    if relevant.empty:
        raise DataError(f"no test rating is >= {relevance_threshold}, so no user has a relevant item to rank")
    users = np.sort(relevant[USER].unique())
    recs = model.recommend(users, k=k, exclude_seen=True)
    hits = recs.merge(relevant[[USER, ITEM]].assign(_hit=True), on=[USER, ITEM], how="left")
    hit_matrix = np.zeros((len(users), k), dtype=bool)
    rows = np.searchsorted(users, hits[USER].to_numpy())
    hit_matrix[rows, hits[RANK].to_numpy() - 1] = hits["_hit"].fillna(False).to_numpy(bool)
    n_relevant = relevant.groupby(USER).size().reindex(users).to_numpy()
    for metric, formula in RANKING_METRICS.items():
        row[f"{metric}@{k}"] = formula(hit_matrix, n_relevant)
    row[f"coverage@{k}"] = recs[ITEM].nunique() / model.n_items
    return pd.Series(row, name=name or type(model).__name__, dtype=float)


def check_fitted_on(model, train: pd.DataFrame, test: pd.DataFrame, caller: str) -> None:
    """What every evaluation checks first: both frames are well-formed ratings, and ``model`` is fitted on
    ``train`` itself (same number of rows), so that "items the user has seen" means the same thing to both."""
    check_ratings(train, name="train")
    check_ratings(test, name="test")
    if not getattr(model, "is_fitted", False):
        raise NotFittedError(f"{type(model).__name__} is not fitted: call model.fit(train) before {caller}")
    if model.n_train_ != len(train):
        raise DataError(f"{type(model).__name__} was fitted on {model.n_train_:,} ratings but {caller} got a train "
                        f"frame of {len(train):,}; pass the frame the model was fitted on")

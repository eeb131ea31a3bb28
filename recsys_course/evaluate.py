"""One ``evaluate`` for every model of the course."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import check_int
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
    check_int(None, "k", k)
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


def evaluate_cold_items(model, test: pd.DataFrame, k: int = 10, *,
                        relevance_threshold: float = RELEVANCE_THRESHOLD, tie_seed: int = 0,
                        batch_users: int = 64, name: str | None = None) -> pd.Series:
    r"""Score a fitted model on cold-start films: films of ``test`` that the model never saw in training
    (split with :func:`recsys_course.split.item_cold_start_split`).

    * ``rmse``, ``mae`` — over every row of ``test`` (only for models that predict ratings);
    * ranking among the cold films: the candidates are *all* films of ``test``; every user with at least one
      relevant test rating (≥ ``relevance_threshold``) gets the candidates ranked by ``model.predict`` and
      the usual P/R/NDCG/MAP/HR/MRR@k against their relevant test films; ``n_users`` and ``n_candidates``
      say how many.

    Ties in score are broken in a random order fixed by ``tie_seed`` (the same for every user and model), not
    by movieId: MovieLens numbered the classics first, so movieId order is a hidden popularity ranking. A
    model that cannot tell cold films apart (a constant score per user) therefore gets the numbers of a random
    list. Raises if a test film is in the model's training data.
    """
    from .metrics import top_k

    check_int(None, "k", k)
    check_ratings(test, name="test")
    if not getattr(model, "is_fitted", False):
        raise NotFittedError(f"{type(model).__name__} is not fitted: call model.fit(train) before "
                             "evaluate_cold_items")
    candidates = np.sort(test[ITEM].unique())
    warm = np.isin(candidates, model.item_ids_)
    if warm.any():
        raise DataError(f"{int(warm.sum())} test film(s) occur in the model's training data (e.g. "
                        f"{list(candidates[warm][:5])}); this evaluation is for cold-start films only")
    row: dict[str, float] = {}
    if model.predicts_ratings:
        pred = model.predict(test[USER], test[ITEM])
        row["rmse"], row["mae"] = rmse(test[RATING], pred), mae(test[RATING], pred)
    relevant = test[test[RATING] >= relevance_threshold]
    if relevant.empty:
        raise DataError(f"no cold test rating is >= {relevance_threshold}: nothing to rank")
    users = np.sort(relevant[USER].unique())
    candidates = candidates[np.random.default_rng(tie_seed).permutation(len(candidates))]  # random tie order
    top = np.empty((len(users), min(k, len(candidates))), dtype=np.int64)
    for start in range(0, len(users), batch_users):
        block = users[start:start + batch_users]
        scores = model.predict(np.repeat(block, len(candidates)), np.tile(candidates, len(block)))
        top[start:start + len(block)] = top_k(scores.reshape(len(block), len(candidates)), k)
    recommended = candidates[top]
    rel_sets = relevant.groupby(USER)[ITEM].apply(set).reindex(users)
    hits = np.zeros((len(users), k), dtype=bool)
    hits[:, :recommended.shape[1]] = [[i in rel for i in recs] for recs, rel in zip(recommended, rel_sets)]
    n_rel = rel_sets.map(len).to_numpy()
    for metric, formula in RANKING_METRICS.items():
        row[f"{metric}@{k}"] = formula(hits, n_rel)
    row["n_users"] = float(len(users))
    row["n_candidates"] = float(len(candidates))
    return pd.Series(row, name=name or type(model).__name__, dtype=float)

"""recsys_course.evaluate: one row of metrics per model, checked by hand and against recsys_course.metrics."""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import ITEM, RANK, RATING, TIME, USER
from recsys_course.data import DataError
from recsys_course.evaluate import evaluate
from recsys_course.metrics import catalog_coverage, hit_at_k, map_at_k, mrr_at_k, ndcg_at_k, precision_at_k, recall_at_k
from recsys_course.models import BiasBaseline, GlobalMean, NotFittedError, Popularity, Recommender

RATING_KEYS = {"rmse", "mae", "precision@10", "recall@10", "ndcg@10", "map@10", "hit@10", "mrr@10", "coverage@10"}


class FixedScores(Recommender):
    """Every user gets the same score per item (and it is also the predicted rating)."""

    predicts_ratings = True

    def __init__(self, scores: dict):
        self.scores = scores

    def _fit(self, train, users, items):
        self.table_ = np.array([self.scores[i] for i in self.item_ids_], dtype=float)

    def _predict(self, users, items):
        return self.table_[items]

    def _score_users(self, users):
        return np.tile(self.table_, (len(users), 1))


def frame(rows):
    df = pd.DataFrame(rows, columns=[USER, ITEM, RATING])
    df[TIME] = np.arange(len(df), dtype=np.int64)
    return df


# train: catalogue {10, 20, 30, 40}
TRAIN = frame([(1, 10, 5.0), (1, 20, 3.0), (2, 10, 4.0), (2, 30, 2.0), (3, 20, 4.0), (3, 40, 5.0)])
# test: relevant (>= 4) are user 1: {30}, user 2: {20, 40}; user 3 has none
TEST = frame([(1, 30, 5.0), (1, 40, 2.0), (2, 20, 4.0), (2, 40, 5.0), (3, 10, 1.0)])
SCORES = {10: 4.0, 20: 1.0, 30: 2.0, 40: 3.0}


@pytest.fixture
def fixed():
    return FixedScores(SCORES).fit(TRAIN)


def test_hand_checked_k10(fixed):
    row = evaluate(fixed, TRAIN, TEST, k=10)
    assert row.name == "FixedScores"
    assert set(row.index) == RATING_KEYS
    # predictions: (1,30)->2 err 3, (1,40)->3 err 1, (2,20)->1 err 3, (2,40)->3 err 2, (3,10)->4 err 3
    assert row["rmse"] == pytest.approx(math.sqrt((9 + 1 + 9 + 4 + 9) / 5))
    assert row["mae"] == pytest.approx((3 + 1 + 3 + 2 + 3) / 5)
    # lists over unseen items, best first: user 1 -> [40, 30] (hit at rank 2); user 2 -> [40, 20] (hits 1, 2)
    assert row["precision@10"] == pytest.approx((1 / 10 + 2 / 10) / 2)
    assert row["recall@10"] == pytest.approx(1.0)
    assert row["hit@10"] == pytest.approx(1.0)
    assert row["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)
    assert row["map@10"] == pytest.approx((1 / 2 + 1) / 2)  # AP user 1 = P@2 / min(1, 10)
    assert row["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1) / 2)
    assert row["coverage@10"] == pytest.approx(3 / 4)  # {20, 30, 40} of 4 training items


def test_hand_checked_k1(fixed):
    row = evaluate(fixed, TRAIN, TEST, k=1, name="fixed")
    assert row.name == "fixed"
    assert set(row.index) == {"rmse", "mae", "precision@1", "recall@1", "ndcg@1", "map@1", "hit@1", "mrr@1",
                              "coverage@1"}
    # both users get [40]: a miss for user 1, a hit for user 2 (who has 2 relevant items)
    assert row["precision@1"] == pytest.approx(0.5)
    assert row["recall@1"] == pytest.approx((0 + 1 / 2) / 2)
    assert row["hit@1"] == pytest.approx(0.5)
    assert row["mrr@1"] == pytest.approx(0.5)
    assert row["map@1"] == pytest.approx(0.5)
    assert row["ndcg@1"] == pytest.approx(0.5)
    assert row["coverage@1"] == pytest.approx(1 / 4)


def test_relevance_threshold_none(fixed):
    row = evaluate(fixed, TRAIN, TEST, k=10, relevance_threshold=None)
    # every test item is relevant, user 3 is ranked too: user 1 [40, 30] both hit, user 2 [40, 20] both hit,
    # user 3 (seen 20, 40) -> [10, 30], relevant {10}: hit at 1
    assert row["recall@10"] == pytest.approx(1.0)
    assert row["precision@10"] == pytest.approx((2 + 2 + 1) / 10 / 3)
    assert row["mrr@10"] == pytest.approx(1.0)
    assert row["coverage@10"] == pytest.approx(1.0)


def test_relevant_item_unknown_to_train_is_a_miss(fixed):
    test = pd.concat([TEST, frame([(1, 99, 5.0)]).assign(timestamp=99)], ignore_index=True)
    row = evaluate(fixed, TRAIN, test, k=10)
    # user 1 now has relevant {30, 99}: recall 1/2; user 2 still 1
    assert row["recall@10"] == pytest.approx((1 / 2 + 1) / 2)


def test_popularity_has_no_rating_metrics():
    model = Popularity().fit(TRAIN)
    row = evaluate(model, TRAIN, TEST)
    assert set(row.index) == RATING_KEYS - {"rmse", "mae"}
    assert row.name == "Popularity"
    # counts 10:2, 20:2, 30:1, 40:1 (ties by movieId): user 1 -> [30, 40], user 2 -> [20, 40]: all perfect
    assert row["ndcg@10"] == pytest.approx(1.0) and row["mrr@10"] == pytest.approx(1.0)


@pytest.mark.parametrize("model_cls", [GlobalMean, BiasBaseline, Popularity])
def test_keys_and_ranges_on_movielens(ranking_split_ml, model_cls):
    train, test = ranking_split_ml
    model = model_cls().fit(train)
    row = evaluate(model, train, test)
    expected = RATING_KEYS if model.predicts_ratings else RATING_KEYS - {"rmse", "mae"}
    assert set(row.index) == expected
    assert row.dtype == float
    for key in expected - {"rmse", "mae"}:
        assert 0.0 <= row[key] <= 1.0, key
    if model.predicts_ratings:
        assert 0.5 < row["rmse"] < 1.5 and 0.3 < row["mae"] < row["rmse"]


def test_evaluate_agrees_with_metrics(ranking_split_ml):
    train, test = ranking_split_ml
    model = BiasBaseline().fit(train)
    row = evaluate(model, train, test, k=10)
    relevant = test[test[RATING] >= 4]
    users = np.sort(relevant[USER].unique())
    rel_sets = relevant.groupby(USER)[ITEM].apply(set).reindex(users).tolist()
    recs = model.recommend(users, k=10)
    lists = [g.sort_values(RANK)[ITEM].tolist() for _, g in recs.groupby(USER, sort=True)]
    assert len(lists) == len(users)
    assert row["ndcg@10"] == pytest.approx(ndcg_at_k(lists, rel_sets, k=10), rel=1e-12)
    assert row["precision@10"] == pytest.approx(precision_at_k(lists, rel_sets, k=10), rel=1e-12)
    assert row["recall@10"] == pytest.approx(recall_at_k(lists, rel_sets, k=10), rel=1e-12)
    assert row["map@10"] == pytest.approx(map_at_k(lists, rel_sets, k=10), rel=1e-12)
    assert row["hit@10"] == pytest.approx(hit_at_k(lists, rel_sets, k=10), rel=1e-12)
    assert row["mrr@10"] == pytest.approx(mrr_at_k(lists, rel_sets, k=10), rel=1e-12)
    assert row["coverage@10"] == pytest.approx(catalog_coverage(lists, model.n_items), rel=1e-12)
    pred = model.predict(test[USER], test[ITEM])
    assert row["rmse"] == pytest.approx(np.sqrt(np.mean((test[RATING].to_numpy() - pred) ** 2)))


def test_evaluate_is_fast(ranking_split_ml):
    train, test = ranking_split_ml
    model = BiasBaseline().fit(train)
    assert test[USER].nunique() == 610
    times = []
    for _ in range(2):  # best of two, so a busy machine does not fail the test
        start = time.perf_counter()
        evaluate(model, train, test)
        times.append(time.perf_counter() - start)
    assert min(times) < 1.0, times


def test_string_ids():
    """The toy data use string ids; evaluate must work with them too."""
    train = frame([("ann", "x", 5.0), ("ann", "y", 1.0), ("bob", "x", 4.0), ("bob", "z", 2.0)])
    test = frame([("ann", "z", 5.0), ("bob", "y", 4.0)])
    model = Popularity().fit(train)
    row = evaluate(model, train, test, k=2)
    # ann: unseen {z} -> [z] hit; bob: unseen {y} -> [y] hit
    assert row["recall@2"] == 1.0 and row["precision@2"] == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_unfitted_model():
    with pytest.raises(NotFittedError, match="call model.fit"):
        evaluate(BiasBaseline(), TRAIN, TEST)


def test_model_fitted_on_another_frame(fixed):
    other = TRAIN.iloc[:-1]
    with pytest.raises(DataError, match="fitted on 6 ratings but evaluate got a train frame of 5"):
        evaluate(fixed, other, TEST)


def test_test_overlapping_train(fixed):
    leaky = pd.concat([TEST, TRAIN.iloc[:2]], ignore_index=True)
    with pytest.raises(DataError, match="shares 2 .* pairs with train"):
        evaluate(fixed, TRAIN, leaky)


def test_empty_test(fixed):
    with pytest.raises(DataError, match="test is empty"):
        evaluate(fixed, TRAIN, TEST.iloc[:0])


@pytest.mark.parametrize("k", [0, -1, 2.0, True])
def test_bad_k(fixed, k):
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        evaluate(fixed, TRAIN, TEST, k=k)


def test_no_relevant_items(fixed):
    low = TEST.assign(rating=1.0)
    with pytest.raises(DataError, match="no test rating is >= 4"):
        evaluate(fixed, TRAIN, low)
    with pytest.raises(DataError, match="no test rating is >= 5.5"):
        evaluate(fixed, TRAIN, TEST, relevance_threshold=5.5)


def test_bad_test_frame(fixed):
    with pytest.raises(DataError, match="test is missing column"):
        evaluate(fixed, TRAIN, TEST.drop(columns=RATING))

"""recsys_course.sampled: negatives, sampled and full ranks, and their metrics."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.data import DataError
from recsys_course.evaluate import evaluate
from recsys_course.models import NotFittedError, Popularity, Recommender
from recsys_course.sampled import (
    evaluate_sampled,
    full_ranks,
    metrics_from_ranks,
    sample_negatives,
    sampled_ranks,
    user_scores,
)
from recsys_course.split import leave_last_n
from recsys_course.synthetic import make_synthetic


@pytest.fixture(scope="module")
def data():
    ratings = make_synthetic(n_users=30, n_items=80, ratings_per_user=12, seed=1).ratings
    return leave_last_n(ratings, n=1)


class Fixed(Recommender):
    """Scores given by a function of (userId, movieId) arrays — for hand-made cases."""

    def __init__(self, fn):
        self.fn = fn

    def _fit(self, train, users, items):
        pass

    def _score_users(self, users):
        u = self.user_ids_[users][:, None]
        i = self.item_ids_[None, :]
        return self.fn(np.broadcast_to(u, (len(users), self.n_items)), np.broadcast_to(i, (len(users), self.n_items)))


def oracle(test):
    targets = set(zip(test[USER], test[ITEM]))
    return Fixed(lambda u, i: np.vectorize(lambda a, b: float((a, b) in targets))(u, i))


def test_negatives_exclude_the_users_items_and_are_seeded(data):
    train, test = data
    users, neg = sample_negatives(train, test, n_negatives=20, seed=3)
    assert users.tolist() == sorted(test[USER].unique())
    assert neg.shape == (len(users), 20)
    catalogue = set(train[ITEM])
    for u, row in zip(users, neg):
        mine = set(train.loc[train[USER] == u, ITEM]) | set(test.loc[test[USER] == u, ITEM])
        assert len(set(row)) == 20, "negatives are drawn without replacement"
        assert not set(row) & mine, f"user {u} got one of their own items as a negative"
        assert set(row) <= catalogue
    again = sample_negatives(train, test, n_negatives=20, seed=3)[1]
    other = sample_negatives(train, test, n_negatives=20, seed=4)[1]
    assert np.array_equal(neg, again)
    assert not np.array_equal(neg, other)
    # nested: the first 5 of 20 are the 5
    assert np.array_equal(sample_negatives(train, test, n_negatives=5, seed=3)[1], neg[:, :5])


def test_too_many_negatives_is_a_clear_error(data):
    train, test = data
    with pytest.raises(ValueError, match="fewer than n_negatives"):
        sample_negatives(train, test, n_negatives=10_000)
    with pytest.raises(ValueError, match="n_negatives"):
        sample_negatives(train, test, n_negatives=0)
    with pytest.raises(ValueError, match="seed"):
        sample_negatives(train, test, seed=-1)


def test_perfect_scorer_gets_hit_rate_one(data):
    train, test = data
    model = oracle(test).fit(train)
    sampled = evaluate_sampled(model, train, test, k=10, n_negatives=50)
    assert sampled["hit@10"] == 1.0 and sampled["ndcg@10"] == 1.0
    assert (full_ranks(model, train, test) == 1).all()
    assert evaluate(model, train, test, relevance_threshold=None)["hit@10"] == 1.0


def test_worst_scorer_gets_nothing(data):
    train, test = data
    targets = set(zip(test[USER], test[ITEM]))
    model = Fixed(lambda u, i: np.vectorize(lambda a, b: -float((a, b) in targets))(u, i)).fit(train)
    ranks = sampled_ranks(model, train, test, n_negatives=30)
    in_catalogue = test[ITEM].isin(train[ITEM]).to_numpy()
    assert (ranks[in_catalogue] == 31).all()
    assert np.isinf(ranks[~in_catalogue]).all()
    assert evaluate_sampled(model, train, test, n_negatives=30)["hit@10"] == 0.0


def test_ranks_by_hand():
    # one user; catalogue 1..6; user 1 rated 1 in train and 2 in test (the target)
    train = pd.DataFrame({USER: [1, 2, 2, 2, 2, 2], ITEM: [1, 2, 3, 4, 5, 6], RATING: 4.0, TIME: 0})
    test = pd.DataFrame({USER: [1], ITEM: [2], RATING: [5.0], TIME: [1]})
    scores = {1: 9.0, 2: 0.5, 3: 0.7, 4: 0.5, 5: 0.1, 6: 0.5}
    model = Fixed(lambda u, i: np.vectorize(scores.get)(i).astype(float)).fit(train)
    # full: candidates 2..6 (item 1 was rated); above the target: 3 (0.7); ties at 0.5 with 4 and 6 come after
    # item 2 (lower movieId first) -> rank 2
    assert full_ranks(model, train, test).tolist() == [2.0]
    users, neg = sample_negatives(train, test, n_negatives=4, seed=0)
    assert sorted(neg[0]) == [3, 4, 5, 6]
    assert sampled_ranks(model, train, test, n_negatives=4).tolist() == [2.0]
    # a target with the same score as a lower movieId loses the tie
    scores[1] = 0.0
    scores[3] = 0.5
    test2 = test.assign(**{ITEM: [4]})
    train2 = train.copy()
    model2 = Fixed(lambda u, i: np.vectorize(scores.get)(i).astype(float)).fit(train2)
    assert full_ranks(model2, train2, test2).tolist() == [3.0]  # 2 and 3 tie with 4 and have lower ids


def test_metrics_from_ranks_by_hand():
    m = metrics_from_ranks([1, 3, np.inf, 11], k=10)
    assert m["hit@10"] == 0.5
    assert math.isclose(m["ndcg@10"], (1 + 1 / 2) / 4)
    with pytest.raises(ValueError):
        metrics_from_ranks([1, 2], k=0)


def test_full_ranks_agree_with_evaluate(data):
    train, test = data
    model = Popularity().fit(train)
    row = evaluate(model, train, test, relevance_threshold=None)
    m = metrics_from_ranks(full_ranks(model, train, test), k=10)
    assert math.isclose(m["hit@10"], row["hit@10"])
    assert math.isclose(m["ndcg@10"], row["ndcg@10"])


def test_sampled_is_at_least_full_and_scores_can_be_reused(data):
    train, test = data
    model = Popularity().fit(train)
    scores = user_scores(model, np.sort(test[USER].unique()))
    full = full_ranks(model, train, test, scores=scores)
    sampled = sampled_ranks(model, train, test, n_negatives=20, scores=scores)
    assert (sampled <= full).all(), "a sampled list is a sub-list of the full one: the rank can only improve"
    assert np.array_equal(sampled, sampled_ranks(model, train, test, n_negatives=20))
    with pytest.raises(ValueError, match="shape"):
        sampled_ranks(model, train, test, scores=scores[:-1])


def test_relevance_threshold_and_wrong_train(data):
    train, test = data
    model = Popularity().fit(train)
    rel = test[test[RATING] >= 4]
    assert len(sampled_ranks(model, train, test, n_negatives=10, relevance_threshold=4.0)) == len(rel)
    with pytest.raises(DataError, match="fitted on .* but a sampled evaluation got a train frame"):
        sampled_ranks(model, train.iloc[:-1], test)
    with pytest.raises(NotFittedError, match="call model.fit"):  # the same checks and errors as evaluate's
        sampled_ranks(Popularity(), train, test)
    with pytest.raises(NotFittedError, match="call .fit"):
        user_scores(Popularity(), [1, 2])


def test_precomputed_negatives_give_the_same_ranks(data):
    train, test = data
    model = Popularity().fit(train)
    _, neg = sample_negatives(train, test, n_negatives=40, seed=0)
    for n in (5, 20, 40):
        assert np.array_equal(sampled_ranks(model, train, test, n_negatives=n, negatives=neg),
                              sampled_ranks(model, train, test, n_negatives=n))
    with pytest.raises(ValueError, match="at least n_negatives"):
        sampled_ranks(model, train, test, n_negatives=50, negatives=neg)

"""Tests of the leakage diagnostics in recsys_course.split (future_in_train, leakage_report) and of
notebook 01's exercise checks against their solutions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course.data import DataError
from recsys_course.split import (
    future_in_train,
    leakage_report,
    leave_last_n,
    per_user_temporal_split,
    random_split,
    temporal_split,
)


def frame(rows):
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])


@pytest.fixture
def hand():
    train = frame([(1, 10, 4.0, 100), (1, 11, 3.0, 300), (2, 10, 5.0, 200), (2, 12, 2.0, 250)])
    test = frame([
        (1, 12, 4.0, 200),   # before user 1's newest train rating (300): leaks
        (1, 13, 5.0, 300),   # same second as the newest train rating: a tie, not a leak
        (2, 11, 3.0, 400),   # after everything in train: no leak of any kind
        (3, 10, 4.0, 50),    # a user unseen in train: cannot leak, but is cold-start
    ])
    return train, test


def test_future_in_train_by_hand(hand):
    train, test = hand
    assert future_in_train(train, test).tolist() == [True, False, False, False]


def test_future_in_train_keeps_test_order(hand):
    train, test = hand
    shuffled = test.iloc[[3, 0, 2, 1]]
    assert future_in_train(train, shuffled).tolist() == [False, True, False, False]


def test_leakage_report_by_hand(hand):
    train, test = hand
    rep = leakage_report(train, test)
    assert rep == {
        "train_ratings": 4, "test_ratings": 4, "test_users": 3, "test_items": 4,
        "cold_start_users": 1, "cold_start_items": 1,  # user 3; movie 13
        "user_future_share": 0.25,
        "global_future_share": 0.5,  # 200 and 50 are before the newest train time 300; 300 ties
    }


def test_leakage_report_rejects_bad_frames(hand):
    train, test = hand
    with pytest.raises(DataError):
        leakage_report(train.drop(columns="timestamp"), test)
    with pytest.raises(DataError):
        leakage_report(train, test.iloc[:0])


def test_per_user_splits_never_leak_a_users_future(ratings):
    for train, test in (leave_last_n(ratings, 10), per_user_temporal_split(ratings, 0.2)):
        rep = leakage_report(train, test)
        assert rep["user_future_share"] == 0.0
        assert rep["cold_start_users"] == 0
        assert rep["global_future_share"] > 0.5  # other users' later ratings are still in train


def test_global_cut_has_no_future_at_all(ratings):
    train, test = temporal_split(ratings, test_size=0.2)
    rep = leakage_report(train, test)
    assert rep["user_future_share"] == 0.0 and rep["global_future_share"] == 0.0
    assert rep["cold_start_users"] > 0


def test_random_split_leaks_most_of_the_future(ratings):
    train, test = random_split(ratings, 0.2, seed=0)
    rep = leakage_report(train, test)
    # a random test rating is almost always older than the same user's newest train rating
    assert rep["user_future_share"] > 0.9
    assert rep["test_ratings"] == len(test) and rep["train_ratings"] == len(train)


def test_future_in_train_matches_a_loop(ratings):
    sample = ratings[ratings["userId"] <= 30]
    train, test = random_split(sample, 0.3, seed=1)
    newest = train.groupby("userId")["timestamp"].max().to_dict()
    expected = [t < newest.get(u, -np.inf) for u, t in zip(test["userId"], test["timestamp"])]
    assert future_in_train(train, test).tolist() == expected

"""recsys_course.split: the three split families and the two leaderboard splits."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.data import DataError
from recsys_course.split import (
    RANKING_TEST_N,
    RATING_TEST_SHARE,
    known_only,
    leave_last_n,
    per_user_temporal_split,
    random_split,
    ranking_split,
    rating_split,
    temporal_split,
)


def pairs(df: pd.DataFrame) -> set:
    return set(zip(df[USER], df[ITEM]))


def small() -> pd.DataFrame:
    """User 1: 5 ratings at times 10..50; user 2: 2 ratings; user 3: 1 rating; user 4: 3 ratings at the same
    time (ties broken by movieId). Rows deliberately out of order."""
    rows = [
        (1, 103, 4.0, 30), (1, 101, 3.0, 10), (1, 105, 5.0, 50), (1, 102, 2.0, 20), (1, 104, 1.0, 40),
        (2, 101, 5.0, 15), (2, 102, 4.0, 25),
        (3, 101, 3.0, 35),
        (4, 203, 4.0, 60), (4, 201, 4.0, 60), (4, 202, 4.0, 60),
    ]
    return pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME])


def assert_partition(train, test, ratings):
    """train and test are disjoint (by row and by pair) and together are exactly ``ratings``."""
    assert set(train.index).isdisjoint(test.index)
    assert len(train) + len(test) == len(ratings)
    assert sorted(train.index.append(test.index)) == sorted(ratings.index)
    assert not pairs(train) & pairs(test)
    both = pd.concat([train, test]).sort_index()
    pd.testing.assert_frame_equal(both, ratings.sort_index())


# --------------------------------------------------------------------------------------------
# random_split
# --------------------------------------------------------------------------------------------
def test_random_split_seeded(ratings):
    train1, test1 = random_split(ratings, test_size=0.2, seed=7)
    train2, test2 = random_split(ratings, test_size=0.2, seed=7)
    pd.testing.assert_frame_equal(test1, test2)
    pd.testing.assert_frame_equal(train1, train2)
    _, test3 = random_split(ratings, test_size=0.2, seed=8)
    assert not test1.index.equals(test3.index)
    assert len(test1) == round(0.2 * len(ratings)) == 20_167
    assert_partition(train1, test1, ratings)


def test_random_split_is_random_not_temporal(ratings):
    """The documented leak: train contains ratings made after test ratings of the same user."""
    train, test = random_split(ratings, seed=0)
    last_train = train.groupby(USER)[TIME].max()
    first_test = test.groupby(USER)[TIME].min()
    common = first_test.index.intersection(last_train.index)
    assert (last_train[common] > first_test[common]).mean() > 0.5


def test_random_split_does_not_modify_input():
    df = small()
    before = df.copy()
    train, test = random_split(df, test_size=0.3, seed=1)
    pd.testing.assert_frame_equal(df, before)
    assert len(test) == round(0.3 * 11) == 3
    assert_partition(train, test, df)


@pytest.mark.parametrize("size", [0, 1, 1.5, -0.2])
def test_random_split_bad_share(size):
    with pytest.raises(ValueError, match="strictly between 0 and 1") as err:
        random_split(small(), test_size=size)
    assert str(size) in str(err.value)


# --------------------------------------------------------------------------------------------
# temporal_split
# --------------------------------------------------------------------------------------------
def test_temporal_split_default_share(ratings):
    train, test = temporal_split(ratings)
    assert train[TIME].max() < test[TIME].min()
    assert len(test) / len(ratings) == pytest.approx(0.2, abs=0.01)
    assert_partition(train, test, ratings)
    # test contains users the training data has never seen (cold-start users)
    assert not set(test[USER]) <= set(train[USER])


def test_temporal_split_explicit_cutoff(ratings):
    cutoff = int(ratings[TIME].median())
    train, test = temporal_split(ratings, cutoff=cutoff)
    assert train[TIME].max() <= cutoff < test[TIME].min()
    assert_partition(train, test, ratings)
    # a rating exactly at the cutoff goes to train
    at = int(ratings[TIME].iloc[0])
    train, test = temporal_split(ratings, cutoff=at)
    assert (train[TIME] == at).any() and not (test[TIME] == at).any()


@pytest.mark.parametrize("cutoff", ["2015-01-01", pd.Timestamp("2015-01-01"), np.datetime64("2015-01-01"),
                                    pd.Timestamp("2015-01-01", tz="UTC"), "2015-01-01T01:00+01:00"])
def test_temporal_split_date_cutoff(ratings, cutoff):
    seconds = 1_420_070_400  # 2015-01-01 00:00 UTC
    train, test = temporal_split(ratings, cutoff=cutoff)
    assert train[TIME].max() <= seconds < test[TIME].min()
    by_number = temporal_split(ratings, cutoff=seconds)
    assert train.index.equals(by_number[0].index)


@pytest.mark.parametrize("where", ["before", "after"])
def test_temporal_split_cutoff_outside_range(ratings, where):
    cutoff = ratings[TIME].min() - 1 if where == "before" else ratings[TIME].max()
    with pytest.raises(DataError, match="every rating on one side") as err:
        temporal_split(ratings, cutoff=cutoff)
    assert str(ratings[TIME].min()) in str(err.value) and str(ratings[TIME].max()) in str(err.value)
    with pytest.raises(DataError, match="one side"):
        temporal_split(ratings, cutoff="1990-01-01")


def test_temporal_split_needs_timestamps():
    with pytest.raises(DataError, match="timestamp"):
        temporal_split(small().drop(columns=TIME))


def test_temporal_split_bad_share(ratings):
    with pytest.raises(ValueError, match="strictly between"):
        temporal_split(ratings, test_size=1.5)


# --------------------------------------------------------------------------------------------
# leave_last_n
# --------------------------------------------------------------------------------------------
def test_leave_last_n_small_by_hand():
    train, test = leave_last_n(small(), n=2)
    # user 1: the two most recent (times 40, 50); user 2 has 2 < n + min_train = 3 ratings: all train;
    # user 3: all train; user 4: three ties at time 60 -> the two highest movieIds
    assert sorted(pairs(test)) == [(1, 104), (1, 105), (4, 202), (4, 203)]
    assert {(2, 101), (2, 102), (3, 101), (4, 201)} <= pairs(train)
    assert_partition(train, test, small())


def test_leave_last_n_min_train():
    train, test = leave_last_n(small(), n=1, min_train=3)
    # eligible: users with >= 4 ratings -> only user 1
    assert pairs(test) == {(1, 105)}
    train, test = leave_last_n(small(), n=1, min_train=1)
    assert pairs(test) == {(1, 105), (2, 102), (4, 203)}


@pytest.mark.parametrize("n", [1, 5])
def test_leave_last_n_movielens(ratings, n):
    train, test = leave_last_n(ratings, n=n)
    assert_partition(train, test, ratings)
    size = ratings.groupby(USER).size()
    assert (test.groupby(USER).size() == n).all()
    assert set(test[USER]) == set(size[size >= n + 1].index)
    # per user, nothing in test is older than anything in train
    last_train = train.groupby(USER)[TIME].max()
    first_test = test.groupby(USER)[TIME].min()
    assert (first_test >= last_train[first_test.index]).all()


def test_leave_last_n_users_with_too_few_ratings_stay_in_train(ratings):
    # MovieLens latest-small users have at least 20 ratings; with n=30 the small ones are ineligible
    size = ratings.groupby(USER).size()
    assert size.min() == 20
    train, test = leave_last_n(ratings, n=30)
    small_users = set(size[size < 31].index)
    assert small_users and small_users.isdisjoint(test[USER])
    for user in list(small_users)[:20]:
        assert (train[USER] == user).sum() == size[user]
    assert (test.groupby(USER).size() == 30).all()


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_leave_last_n_bad_n(n):
    with pytest.raises(ValueError, match="n must be a positive integer") as err:
        leave_last_n(small(), n=n)
    assert repr(n) in str(err.value)


def test_leave_last_n_nobody_eligible():
    with pytest.raises(DataError, match="empty test set"):
        leave_last_n(small(), n=5)


def test_leave_last_n_is_deterministic_under_shuffling(ratings):
    shuffled = ratings.sample(frac=1.0, random_state=3)
    a = leave_last_n(ratings, n=3)[1]
    b = leave_last_n(shuffled, n=3)[1]
    assert pairs(a) == pairs(b)


# --------------------------------------------------------------------------------------------
# per_user_temporal_split
# --------------------------------------------------------------------------------------------
def test_per_user_temporal_split_small():
    train, test = per_user_temporal_split(small(), test_size=0.4)
    # user 1: round(5 * 0.4) = 2 -> times 40, 50;  user 2: round(0.8) = 1 -> the later one;
    # user 3: a single rating stays in train;     user 4: round(1.2) = 1 -> highest movieId of the tie
    assert sorted(pairs(test)) == [(1, 104), (1, 105), (2, 102), (4, 203)]
    assert (3, 101) in pairs(train)
    assert_partition(train, test, small())


def test_per_user_temporal_split_keeps_one_train_rating():
    df = pd.DataFrame({USER: [1, 1], ITEM: [1, 2], RATING: [3.0, 4.0], TIME: [1, 2]})
    train, test = per_user_temporal_split(df, test_size=0.9)  # round(1.8) = 2, clipped to size - 1 = 1
    assert pairs(train) == {(1, 1)} and pairs(test) == {(1, 2)}


def test_per_user_temporal_split_bad_share():
    with pytest.raises(ValueError, match="strictly between"):
        per_user_temporal_split(small(), test_size=1.5)


# --------------------------------------------------------------------------------------------
# the leaderboard splits
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["rating", "ranking"])
def test_leaderboard_splits(ratings, rating_split_ml, ranking_split_ml, which):
    train, test = rating_split_ml if which == "rating" else ranking_split_ml
    assert_partition(train, test, ratings)
    assert not pairs(train) & pairs(test)
    assert set(test[USER]) <= set(train[USER])  # no cold-start users
    assert test[USER].nunique() == 610
    last_train = train.groupby(USER)[TIME].max()
    first_test = test.groupby(USER)[TIME].min()
    assert (first_test >= last_train[first_test.index]).all()
    # deterministic: again, and from shuffled input
    split = rating_split if which == "rating" else ranking_split
    again_train, again_test = split(ratings)
    pd.testing.assert_frame_equal(again_test, test)
    pd.testing.assert_frame_equal(again_train, train)
    assert pairs(split(ratings.sample(frac=1.0, random_state=0))[1]) == pairs(test)


def test_rating_split_share(ratings, rating_split_ml):
    _, test = rating_split_ml
    size = ratings.groupby(USER).size()
    per_user = test.groupby(USER).size()
    expected = np.clip(np.round(size * RATING_TEST_SHARE), 1, size - 1).astype(int)
    assert per_user.equals(expected.loc[per_user.index])
    assert len(test) / len(ratings) == pytest.approx(0.2, abs=0.01)


def test_ranking_split_last_ten(ranking_split_ml):
    _, test = ranking_split_ml
    assert RANKING_TEST_N == 10
    assert (test.groupby(USER).size() == 10).all()
    assert len(test) == 6_100


# --------------------------------------------------------------------------------------------
# known_only
# --------------------------------------------------------------------------------------------
def test_known_only():
    train = pd.DataFrame({USER: [1, 1, 2], ITEM: [10, 11, 10], RATING: 3.0})
    test = pd.DataFrame({USER: [1, 2, 3, 3], ITEM: [12, 11, 10, 13], RATING: 4.0})
    kept, dropped = known_only(test, train)
    assert pairs(kept) == {(1, 12), (2, 11)} and pairs(dropped) == {(3, 10), (3, 13)}
    kept, dropped = known_only(test, train, items=True)
    assert pairs(kept) == {(2, 11)} and pairs(dropped) == {(1, 12), (3, 10), (3, 13)}
    kept, dropped = known_only(test, train, users=False, items=True)
    assert pairs(kept) == {(2, 11), (3, 10)}
    kept, dropped = known_only(test, train, users=False, items=False)
    assert len(kept) == 4 and dropped.empty


def test_known_only_on_temporal_split(ratings):
    train, test = temporal_split(ratings)
    kept, dropped = known_only(test, train)
    assert len(kept) + len(dropped) == len(test)
    assert set(kept[USER]) <= set(train[USER])
    assert set(dropped[USER]).isdisjoint(train[USER])
    assert len(dropped) > 0

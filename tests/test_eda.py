"""recsys_course.eda: hand-checkable toy cases and the published MovieLens latest-small numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.data import DataError, toy_purchases, toy_ratings
from recsys_course.eda import density, gini, item_counts, long_tail, share_of_top, summarize, user_counts


def frame(rows, with_time=True):
    df = pd.DataFrame(rows, columns=[USER, ITEM, RATING])
    if with_time:
        df[TIME] = np.arange(len(df), dtype=np.int64)
    return df


# a 3-user × 4-item toy: item a has 3 ratings, b 2, c 1, d 1  ->  7 ratings
SMALL = frame([(1, "a", 5.0), (2, "a", 4.0), (3, "a", 3.0), (1, "b", 2.0), (2, "b", 1.0),
               (1, "c", 4.0), (3, "d", 2.5)])


# --------------------------------------------------------------------------------------------
# density and summarize
# --------------------------------------------------------------------------------------------
def test_density_toys_by_hand():
    assert density(toy_ratings()) == pytest.approx(19 / 30)  # 5 users × 6 movies, 19 known
    assert density(toy_purchases()) == pytest.approx(6 / 8)  # 2 users × 4 items, 6 bought
    assert density(SMALL) == pytest.approx(7 / 12)


def test_density_full_matrix_is_one():
    full = frame([(u, i, 3.0) for u in range(3) for i in range(4)])
    assert density(full) == 1.0


def test_summarize_toy_ratings():
    s = summarize(toy_ratings())
    assert s["n_ratings"] == 19 and s["n_users"] == 5 and s["n_items"] == 6
    assert s["density"] == pytest.approx(19 / 30)
    assert s["sparsity"] == pytest.approx(11 / 30)
    assert s["mean_rating"] == pytest.approx(66 / 19)  # sum of the 19 toy ratings is 66
    assert s["first_date"] == s["last_date"] == "1970-01-01"  # timestamps 0..18 s


def test_summarize_without_time_and_types():
    s = summarize(SMALL.drop(columns=TIME))
    assert s["first_date"] is None and s["last_date"] is None
    assert s["mean_rating"] == pytest.approx(21.5 / 7)
    assert isinstance(s["n_ratings"], int) and isinstance(s["density"], float)


def test_summarize_dates_are_utc():
    df = frame([(1, 1, 4.0), (2, 1, 3.0)])
    df[TIME] = [0, 86_400 * 366 - 1]  # 1970-01-01 00:00 and 1971-01-01 23:59:59 UTC
    s = summarize(df)
    assert (s["first_date"], s["last_date"]) == ("1970-01-01", "1971-01-01")


def test_validation():
    with pytest.raises(DataError):
        summarize(SMALL.rename(columns={RATING: "stars"}))
    with pytest.raises(DataError):
        density(SMALL.iloc[:0])
    with pytest.raises(DataError):
        long_tail(pd.concat([SMALL, SMALL.iloc[:1]]))  # a duplicated (user, item) pair
    with pytest.raises(DataError):
        item_counts([1, 2, 3])


# --------------------------------------------------------------------------------------------
# counts, long tail, share of top items
# --------------------------------------------------------------------------------------------
def test_item_and_user_counts():
    ic = item_counts(SMALL)
    assert list(ic.index) == ["a", "b", "c", "d"]  # c and d tie at 1: broken by id
    assert list(ic) == [3, 2, 1, 1]
    uc = user_counts(SMALL)
    assert uc.to_dict() == {1: 3, 2: 2, 3: 2}


def test_long_tail_by_hand():
    lt = long_tail(SMALL)
    assert list(lt.columns) == [ITEM, "n_ratings", "rank", "item_share", "cum_share"]
    assert list(lt[ITEM]) == ["a", "b", "c", "d"]
    assert list(lt["rank"]) == [1, 2, 3, 4]
    np.testing.assert_allclose(lt["item_share"], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(lt["cum_share"], [3 / 7, 5 / 7, 6 / 7, 1.0])


def test_share_of_top_by_hand():
    assert share_of_top(SMALL, 0.25) == pytest.approx(3 / 7)  # top 1 of 4 items
    assert share_of_top(SMALL, 0.3) == pytest.approx(5 / 7)  # ceil(1.2) = 2 items
    assert share_of_top(SMALL, 0.5) == pytest.approx(5 / 7)
    assert share_of_top(SMALL, 1.0) == 1.0
    assert share_of_top(SMALL, 1) == 1.0
    # toy ratings: A1 and R1 have 4 ratings each, R2 4, R3 3, A2 3, A3 1  ->  top 1 of 6 items = 4/19
    assert share_of_top(toy_ratings(), 1 / 6) == pytest.approx(4 / 19)


def test_share_of_top_no_float_overshoot():
    # 0.1 * 30 = 3.0000000000000004 in floating point; that must still mean the top 3 items, not 4
    df = frame([(u, i, 3.0) for i in range(30) for u in range(i + 1)])
    counts = np.arange(30, 0, -1)
    assert share_of_top(df, 0.1) == pytest.approx(counts[:3].sum() / counts.sum())


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.5, True, "0.1", None])
def test_share_of_top_rejects_bad_frac(bad):
    with pytest.raises(ValueError):
        share_of_top(SMALL, bad)


# --------------------------------------------------------------------------------------------
# gini
# --------------------------------------------------------------------------------------------
def test_gini_by_hand():
    assert gini([5, 5, 5, 5]) == 0.0
    assert gini([0, 0, 0, 8]) == pytest.approx(3 / 4)  # (n-1)/n
    # [1, 2, 3, 4]: sum((2k-5) x_k) = -3·1 - 1·2 + 1·3 + 3·4 = 10; / (4 · 10) = 0.25
    assert gini([4, 1, 3, 2]) == pytest.approx(0.25)
    assert gini(np.array([7])) == 0.0


@pytest.mark.parametrize("bad", [[], [0, 0], [1, -1], [1, np.nan]])
def test_gini_rejects_bad_counts(bad):
    with pytest.raises(ValueError):
        gini(bad)


# --------------------------------------------------------------------------------------------
# MovieLens latest-small
# --------------------------------------------------------------------------------------------
def test_movielens_summary(ratings):
    s = summarize(ratings)
    assert s["n_ratings"] == 100_836
    assert s["n_users"] == 610
    assert s["n_items"] == 9_724  # 9,742 movies in movies.csv, 18 of them only tagged
    assert s["density"] == pytest.approx(100_836 / (610 * 9_724))
    assert round(s["density"], 4) == 0.0170
    assert s["mean_rating"] == pytest.approx(3.501557, abs=1e-6)
    assert (s["first_date"], s["last_date"]) == ("1996-03-29", "2018-09-24")  # as in README.txt


def test_movielens_long_tail(ratings):
    lt = long_tail(ratings)
    assert len(lt) == 9_724 and lt["cum_share"].iloc[-1] == pytest.approx(1.0)
    assert lt["n_ratings"].iloc[0] == 329  # Forrest Gump, the most rated movie
    assert lt[ITEM].iloc[0] == 356
    assert share_of_top(ratings, 0.1) == pytest.approx(0.6005, abs=1e-4)
    assert share_of_top(ratings, 0.2) == pytest.approx(0.7703, abs=1e-4)
    assert (lt["n_ratings"] == 1).sum() == 3_446  # movies with a single rating
    assert int(item_counts(ratings).median()) == 3
    assert user_counts(ratings).min() == 20  # every sampled user rated at least 20 movies
    assert 0.5 < gini(item_counts(ratings)) < 1.0

"""The synthetic generator: per-user activity, the Gumbel-top-k draw, and MovieLens-shaped data sets."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import ITEM, RATING, TIME, TITLE, USER, YEAR
from recsys_course.data import DataError, check_ratings, dataset_names, load_dataset
from recsys_course.synthetic import SHAPES, Shape, activity, make_synthetic, movielens_shaped


def test_same_seed_same_data_and_per_user_counts():
    counts = np.array([3, 1, 5, 2])
    a = make_synthetic(n_users=4, n_items=9, ratings_per_user=counts, seed=7)
    b = make_synthetic(n_users=4, n_items=9, ratings_per_user=counts, seed=7)
    pd.testing.assert_frame_equal(a.ratings, b.ratings)
    assert a.ratings.groupby(USER).size().tolist() == counts.tolist()
    check_ratings(a.ratings, require_time=True)  # no user rates a film twice
    assert a.ratings[RATING].isin(np.arange(0.5, 5.01, 0.5)).all()
    assert a.movies[YEAR].dtype == "Int64" and a.movies[TITLE].str.startswith("Item ").all()


def test_each_users_ratings_come_in_the_order_drawn():
    r = make_synthetic(n_users=20, n_items=30, ratings_per_user=10, seed=1).ratings
    assert (r.groupby(USER)[TIME].apply(lambda t: t.is_monotonic_increasing)).all()


def test_gumbel_top_k_is_sampling_by_softmax():
    """One user, one rating, many seeds: each film is picked with probability exp(s/T) / sum exp(s/T)."""
    n_items, picks = 4, []
    for seed in range(3000):
        d = make_synthetic(n_users=1, n_items=n_items, n_factors=2, ratings_per_user=1, seed=seed)
        picks.append((d.ratings[ITEM].iloc[0] - 1, d.true_scores()[0]))
    # the scores change with the seed, so compare the expected and observed number of picks of the best film
    expected = sum(np.exp(s - s.max())[s.argmax()] / np.exp(s - s.max()).sum() for _, s in picks)
    observed = sum(i == s.argmax() for i, s in picks)
    assert abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected / len(picks)))


def test_drift_still_draws_one_rating_at_a_time():
    d = make_synthetic(n_users=5, n_items=20, ratings_per_user=6, drift=1.0, seed=3)
    assert len(d.ratings) == 30 and not np.allclose(d.user_factors, d.user_factors_end)
    check_ratings(d.ratings)


@pytest.mark.parametrize("bad, match", [(0, "at least 1 rating"), (12, "exceeds n_items"),
                                        ([2, 2], "one per user"), (2.5, "must be an integer")])
def test_bad_counts_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic(n_users=3, n_items=10, ratings_per_user=bad)


def test_activity_has_the_exact_total_and_bounds():
    shape = Shape(n_users=300, n_items=500, n_ratings=20_000, min_per_user=20, max_per_user=400)
    counts = activity(shape, seed=4)
    assert counts.sum() == 20_000 and counts.min() >= 20 and counts.max() <= 400
    assert np.median(counts) < counts.mean()  # a long tail, as in MovieLens
    assert (activity(shape, seed=4) == counts).all()


def test_synthetic_1m_has_ml_1m_shape():
    ml = load_dataset("synthetic-1m")
    r, shape = ml.ratings, SHAPES["1m"]
    assert (len(r), r[USER].nunique(), r[ITEM].nunique()) == (1_000_209, 6_040, 3_706)
    per_user = r.groupby(USER).size()
    assert per_user.min() >= shape.min_per_user and per_user.max() <= shape.max_per_user
    assert ml.name == "synthetic-1m" and len(ml.tags) == 0 and len(ml.movies) == 3_706
    # titles are words that content and text models can read, not "Item 17"
    assert not ml.movies[TITLE].str.startswith("Item ").any()
    assert ml.movies[TITLE].str.split().explode().nunique() > 300


def test_movielens_shaped_small_and_unknown():
    d = movielens_shaped("small")
    assert len(d.ratings) == 100_836 and d.ratings[USER].nunique() == 610
    with pytest.raises(ValueError, match="unknown shape"):
        movielens_shaped("2m")


def test_load_dataset_names():
    assert set(dataset_names()) >= {"latest-small", "1m", "synthetic-1m", "synthetic-small"}
    assert load_dataset("latest-small").name == "latest-small"
    for bad in ("synthetic-2m", "ml-2m"):
        with pytest.raises(DataError, match=r"unknown data set .*choose one of .*synthetic-1m"):
            load_dataset(bad)

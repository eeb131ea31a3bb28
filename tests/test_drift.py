"""recsys_course.drift: genre distributions, JS divergence, the drift null, the Markov interest model, decay."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course import drift
from recsys_course.config import GENRES, ITEM, RATING, TIME, USER
from recsys_course.data import DataError


@pytest.fixture()
def movies():
    return pd.DataFrame({ITEM: [1, 2, 3, 4, 5],
                         GENRES: [["Action"], ["Action", "Comedy"], ["Comedy"], ["Drama"], [drift.NO_GENRE]]})


def frame(rows):
    return pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME])


def test_item_genre_matrix_splits_a_film_over_its_genres(movies):
    G, ids, names = drift.item_genre_matrix(movies)
    assert list(names) == ["Action", "Comedy", "Drama"]
    assert list(ids) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(G.toarray(), [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])


def test_genre_distribution_rows_sum_to_one_and_skip_genreless(movies):
    r = frame([(1, 1, 4, 10), (1, 2, 3, 20), (2, 5, 5, 10), (3, 4, 2, 5), (3, 5, 1, 6)])
    d = drift.genre_distribution(r, movies)
    assert list(d.index) == [1, 3]  # user 2 only rated a film without genres
    np.testing.assert_allclose(d.loc[1].to_numpy(), [0.75, 0.25, 0])
    np.testing.assert_allclose(d.loc[3].to_numpy(), [0, 0, 1])
    overall = drift.genre_distribution(r, movies, by=None)
    assert overall.to_numpy().sum() == pytest.approx(1)
    weighted = drift.genre_distribution(r[r[USER] == 1], movies, weights=[1.0, 0.0])
    np.testing.assert_allclose(weighted.loc[1].to_numpy(), [1, 0, 0])


def test_genre_distribution_rejects_bad_weights_and_unknown_films(movies):
    r = frame([(1, 1, 4, 10), (1, 2, 3, 20)])
    with pytest.raises(ValueError, match="weights"):
        drift.genre_distribution(r, movies, weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="missing from movies"):
        drift.genre_distribution(frame([(1, 99, 4, 10)]), movies)


def test_js_divergence_bounds_symmetry_and_known_values():
    assert drift.js_divergence([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0)
    assert drift.js_divergence([1, 0], [0, 1]) == pytest.approx(1)  # disjoint: 1 bit
    p, q = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.3, 0.6])
    assert drift.js_divergence(p, q) == pytest.approx(drift.js_divergence(q, p))
    m = (p + q) / 2
    by_hand = 0.5 * (p * np.log2(p / m)).sum() + 0.5 * (q * np.log2(q / m)).sum()
    assert drift.js_divergence(p, q) == pytest.approx(by_hand)
    assert drift.js_divergence([2, 2], [1, 1]) == pytest.approx(0)  # normalised first
    rows = drift.js_divergence(np.array([[1, 0], [0.5, 0.5]]), np.array([[0, 1], [0.5, 0.5]]))
    np.testing.assert_allclose(rows, [1, 0], atol=1e-12)


@pytest.mark.parametrize("p,q,msg", [([1, 0], [1, 0, 0], "same shape"), ([-1, 2], [1, 0], "negative"),
                                     ([0, 0], [1, 0], "mass 0")])
def test_js_divergence_errors(p, q, msg):
    with pytest.raises(ValueError, match=msg):
        drift.js_divergence(p, q)


def test_time_halves_order_by_time_and_drop_short_users():
    r = frame([(1, i, 3, 100 - i) for i in range(1, 5)] + [(2, 1, 4, 1)])
    early, late = drift.time_halves(r, min_ratings=2)
    assert set(early[USER]) == {1} and set(late[USER]) == {1}
    assert list(early[ITEM]) == [4, 3] and list(late[ITEM]) == [2, 1]  # the oldest ratings come first
    with pytest.raises(ValueError, match="min_ratings must be an integer >= 2"):
        drift.time_halves(r, min_ratings=1)


def test_user_drift_is_one_for_a_full_switch_and_zero_for_a_steady_user():
    movies = pd.DataFrame({ITEM: range(1, 17), GENRES: [["Action"]] * 8 + [["Drama"]] * 8})
    switch = [(1, i, 4, i) for i in range(1, 5)] + [(1, i, 4, i) for i in range(9, 13)]  # 4 Action, then 4 Drama
    steady = [(2, i, 4, i) for i in range(1, 9)]  # 8 Action
    d = drift.user_drift(frame(switch + steady), movies, min_ratings=4)
    assert d.loc[1] == pytest.approx(1) and d.loc[2] == pytest.approx(0)


def test_shuffled_null_keeps_users_and_is_seeded(ratings):
    from recsys_course.data import load_movielens

    movies = load_movielens().movies
    sample = ratings[ratings[USER] <= 60]
    real = drift.user_drift(sample, movies)
    null_a = drift.shuffled_user_drift(sample, movies, seed=3)
    null_b = drift.shuffled_user_drift(sample, movies, seed=3)
    pd.testing.assert_series_equal(null_a, null_b)
    assert set(null_a.index) == set(real.index)
    assert real.mean() > null_a.mean()  # interests do move on MovieLens
    assert not null_a.equals(drift.shuffled_user_drift(sample, movies, seed=4))


def test_genre_transitions_rows_sum_to_one_and_never_cross_users(movies):
    # user 1: Action -> Drama; user 2: Comedy. Sorting puts user 1's Drama right before user 2's Comedy,
    # which must not count as a transition.
    r = frame([(1, 1, 4, 1), (1, 4, 4, 2), (2, 3, 4, 1)])
    P = drift.genre_transitions(r, movies)
    np.testing.assert_allclose(P.sum(axis=1), 1)
    assert P.loc["Action", "Drama"] == pytest.approx(1)
    overall = np.array([1, 1, 1]) / 3  # Action, Comedy, Drama each one rating
    np.testing.assert_allclose(P.loc["Drama"].to_numpy(), overall)  # never followed by anything: the overall mix
    smoothed = drift.genre_transitions(r, movies, smoothing=1.0)
    np.testing.assert_allclose(smoothed.loc["Action"].to_numpy(), [0.25, 0.25, 0.5])


def test_markov_step_keeps_distributions_and_reduces_to_no_change():
    rng = np.random.default_rng(0)
    P = rng.random((4, 4))
    P /= P.sum(1, keepdims=True)
    p = rng.random((5, 4))
    p /= p.sum(1, keepdims=True)
    for alpha in [0.0, 0.3, 1.0]:
        out = drift.markov_step(p, P, alpha)
        np.testing.assert_allclose(out.sum(1), 1)
        assert (out >= 0).all()
    np.testing.assert_allclose(drift.markov_step(p, P, alpha=1.0, beta=0.0), p)
    np.testing.assert_allclose(drift.markov_step(p[0], P, 0.0), p[0] @ P)


def test_markov_step_seed_example_and_what_makes_it_a_distribution():
    # interests 0.6 / 0.4 in A / B; P(C | A) = 0.3, P(C | B) = 0.7 (the rest of each row stays in place)
    P = np.array([[0.7, 0.0, 0.3], [0.0, 0.3, 0.7], [0.0, 0.0, 1.0]])
    p = np.array([0.6, 0.4, 0.0])
    assert (p @ P)[2] == pytest.approx(0.6 * 0.3 + 0.4 * 0.7)  # 0.46
    with pytest.raises(ValueError, match="sum to 1.6"):
        drift.markov_step(p, P, alpha=1.0, beta=0.6)
    out = drift.markov_step(p, P, alpha=1.0, beta=0.6, normalize=True)
    np.testing.assert_allclose(out, (p + 0.6 * (p @ P)) / 1.6)
    assert out.sum() == pytest.approx(1)


@pytest.mark.parametrize("kwargs,msg", [(dict(alpha=-0.1, beta=1.1), "alpha must be a finite number >= 0"),
                                        (dict(alpha=0.5, beta=-0.1), "beta must be a finite number >= 0"),
                                        (dict(alpha=0.5, P=np.eye(2)), "square"),
                                        (dict(alpha=0.5, P=np.full((3, 3), 0.5)), "row-stochastic"),
                                        (dict(alpha=0.5, p=np.array([0.5, 0.6, 0.0])), "distributions")])
def test_markov_step_errors(kwargs, msg):
    args = dict(p=np.array([0.2, 0.3, 0.5]), P=np.eye(3), alpha=0.5) | kwargs
    with pytest.raises(ValueError, match=msg):
        drift.markov_step(**args)


def test_mean_js():
    assert drift.mean_js(np.array([[1, 0], [1, 0]]), np.array([[0, 1], [1, 0]])) == pytest.approx(0.5)


def test_decay_weights_halve_at_the_half_life():
    day = drift.DAY
    assert day == 86400.0  # timestamps are seconds, half-lives days
    w = drift.decay_weights([0, 10 * day, 20 * day, 30 * day], half_life_days=10)
    np.testing.assert_allclose(w, [0.125, 0.25, 0.5, 1.0])
    w = drift.decay_weights([0, 5 * day], half_life_days=5, t_ref=10 * day)
    np.testing.assert_allclose(w, [0.25, 0.5])
    assert drift.decay_weights([], half_life_days=1.0).size == 0
    # the same numbers as a half-life in seconds: w = 2^(-(t_ref - t) / (half_life_days * DAY))
    t = np.array([0.0, 123456.0, 987654.0])
    np.testing.assert_array_equal(drift.decay_weights(t, half_life_days=3.5), np.exp2(-(t.max() - t) / (3.5 * day)))


@pytest.mark.parametrize("kwargs,msg", [(dict(half_life_days=0), "half_life_days must be a finite number > 0"),
                                        (dict(half_life_days=np.inf), "half_life_days must be a finite number > 0"),
                                        (dict(half_life_days=1, t_ref=5), "after t_ref")])
def test_decay_weights_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        drift.decay_weights([1, 10], **kwargs)


def test_rating_decay_weights_global_and_per_user():
    day = drift.DAY
    r = frame([(1, 1, 4, 0), (1, 2, 4, 100 * day), (2, 1, 4, 50 * day)])
    np.testing.assert_allclose(drift.rating_decay_weights(r, 100), [0.5, 1.0, 2 ** -0.5])
    np.testing.assert_allclose(drift.rating_decay_weights(r, half_life_days=100, reference="user"), [0.5, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"reference must be one of \['global', 'user'\]"):
        drift.rating_decay_weights(r, 100, reference="item")
    with pytest.raises(ValueError, match="half_life_days"):
        drift.rating_decay_weights(r, 0, reference="user")
    with pytest.raises(ValueError, match="t_ref"):
        drift.rating_decay_weights(r, 100, reference="user", t_ref=5)
    with pytest.raises(DataError):
        drift.rating_decay_weights(r.drop(columns=TIME), 100)

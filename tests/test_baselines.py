"""recsys_course.models: the Recommender protocol, top_k, and the three baselines."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course import kernels
from recsys_course.config import ITEM, RANK, RATING, SCORE, TIME, USER
from recsys_course.data import toy_ratings
from recsys_course.metrics import rmse
from recsys_course.models import (
    BiasBaseline,
    GlobalMean,
    NotFittedError,
    Popularity,
    Recommender,
    UnknownIdError,
    top_k,
)

MODELS = [GlobalMean, BiasBaseline, Popularity]


def frame(rows):
    df = pd.DataFrame(rows, columns=[USER, ITEM, RATING])
    df[TIME] = np.arange(len(df), dtype=np.int64)
    return df


@pytest.fixture(scope="module")
def fitted(ranking_split_ml):
    train, _ = ranking_split_ml
    return {cls.__name__: cls().fit(train) for cls in MODELS}


@pytest.fixture(scope="module")
def all_recs(fitted, ranking_split_ml):
    train, _ = ranking_split_ml
    users = np.sort(train[USER].unique())
    return {name: model.recommend(users, k=10) for name, model in fitted.items()}


# --------------------------------------------------------------------------------------------
# top_k
# --------------------------------------------------------------------------------------------
def test_top_k_by_hand():
    scores = np.array([[1.0, 3.0, 2.0, 3.0],
                       [0.0, -np.inf, 5.0, 5.0]])
    # row 0: 3.0 at positions 1 and 3 tie -> lower position first
    assert top_k(scores, 2).tolist() == [[1, 3], [2, 3]]
    assert top_k(scores, 3).tolist() == [[1, 3, 2], [2, 3, 0]]
    assert top_k(scores, 4).tolist() == [[1, 3, 2, 0], [2, 3, 0, 1]]  # -inf last
    assert top_k(scores, 10).shape == (2, 4)  # k is capped at the number of columns


@pytest.mark.parametrize("compiled", [True, False])
def test_top_k_equals_a_stable_sort_with_ties_everywhere(compiled, monkeypatch):
    """Coarse scores (many ties, some at the maximum, some -inf): the first k of a stable sort, every k — by the
    compiled pass and by the NumPy partition it falls back to."""
    if not compiled:
        monkeypatch.setattr(kernels, "TOP_K_MAX", 0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = int(rng.integers(1, 30)), int(rng.integers(1, 6))
        scores = rng.integers(0, 4, size=(m, n)).astype(float)
        scores[rng.random((m, n)) < 0.2] = -np.inf
        for k in range(1, n + 2):
            expected = np.argsort(-scores, axis=1, kind="stable")[:, :min(k, n)]
            assert top_k(scores, k).tolist() == expected.tolist()


def test_top_k_ties_across_the_cut():
    # the k-th score ties with scores outside the top k: the lowest positions win
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 2.0, 0.0]])
    assert top_k(scores, 2).tolist() == [[1, 2]]
    assert top_k(np.zeros((1, 6)), 3).tolist() == [[0, 1, 2]]


def test_top_k_all_excluded_but_few():
    scores = np.full((1, 5), -np.inf)
    scores[0, 3] = 1.0
    out = top_k(scores, 3)
    assert out[0, 0] == 3
    assert np.isneginf(scores[0, out[0, 1:]]).all()


@pytest.mark.parametrize("k", [1, 2, 5, 17, 49, 50])
def test_top_k_matches_stable_argsort(k):
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 6, size=(40, 50)).astype(float)  # many ties
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    assert np.array_equal(top_k(scores, k), expected)
    continuous = rng.random((40, 50))
    assert np.array_equal(top_k(continuous, k), np.argsort(-continuous, axis=1)[:, :k])


def test_top_k_compiled_on_float32_large_and_nan():
    """float32 rows, a matrix large enough for two threads, and NaN (NumPy's path: NaN ranks below -inf's
    neighbours as a partition puts it) give a stable sort's answer."""
    rng = np.random.default_rng(5)
    big = np.round(rng.normal(size=(520, 9000)), 1).astype(np.float32)  # ≥ 4 M entries: rows in threads
    big[:, ::5] = -np.inf
    assert kernels.top_k_fast(big, 10) is not None
    assert np.array_equal(top_k(big, 10), np.argsort(-big, axis=1, kind="stable")[:, :10])
    with_nan = np.array([[1.0, np.nan, 3.0, 2.0]])
    assert kernels.top_k_fast(with_nan, 2) is None  # not the compiled pass
    assert top_k(with_nan, 2).tolist() == [[2, 3]]


# --------------------------------------------------------------------------------------------
# GlobalMean
# --------------------------------------------------------------------------------------------
def test_global_mean():
    df = toy_ratings()
    model = GlobalMean().fit(df)
    mu = df[RATING].mean()
    assert model.mu_ == pytest.approx(mu)
    assert np.allclose(model.predict(["Alice", "nobody"], ["A1", "unknown"]), mu)
    assert model.predicts_ratings and model.handles_unknown_users


def test_global_mean_ties_broken_by_movie_id(fitted, all_recs, ranking_split_ml):
    train, _ = ranking_split_ml
    model, recs = fitted["GlobalMean"], all_recs["GlobalMean"]
    seen = np.zeros((model.n_users, model.n_items), dtype=bool)
    seen[model.user_positions(train[USER]), model.item_positions(train[ITEM])] = True
    got = recs[ITEM].to_numpy().reshape(model.n_users, 10)  # users in ascending order, as asked
    for row in range(model.n_users):
        # the first 10 unseen movies in catalogue (ascending movieId) order
        assert got[row].tolist() == model.item_ids_[np.flatnonzero(~seen[row])[:10]].tolist()
    assert (recs[SCORE] == model.mu_).all()


# --------------------------------------------------------------------------------------------
# BiasBaseline
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reg_user,reg_item", [(0.0, 0.0), (10.0, 2.0), (3.0, 25.0)])
def test_bias_one_iteration_closed_form(ratings, reg_user, reg_item):
    model = BiasBaseline(reg_user=reg_user, reg_item=reg_item, n_iters=1).fit(ratings)
    mu = ratings[RATING].mean()
    # b_i = sum over i's raters of (r - mu) / (reg_item + n_i)
    g = ratings.assign(res=ratings[RATING] - mu).groupby(ITEM)["res"]
    b_i = g.sum() / (reg_item + g.size())
    # b_u = sum over u's ratings of (r - mu - b_i) / (reg_user + n_u)
    res_u = ratings[RATING] - mu - b_i.reindex(ratings[ITEM]).to_numpy()
    gu = res_u.groupby(ratings[USER])
    b_u = gu.sum() / (reg_user + gu.size())
    assert model.mu_ == pytest.approx(mu)
    assert np.allclose(model.item_bias_, b_i.reindex(model.item_ids_).to_numpy())
    assert np.allclose(model.user_bias_, b_u.reindex(model.user_ids_).to_numpy())
    if reg_item == 0:  # unregularised: the item bias is the item's mean rating minus mu
        assert np.allclose(model.item_bias_, ratings.groupby(ITEM)[RATING].mean().to_numpy() - mu)


def test_bias_toy_by_hand():
    # A rated 5 (x) and 3 (y); B rated 1 (x). mu = 3. With reg 0 and one iteration:
    # b_x = ((5-3) + (1-3)) / 2 = 0, b_y = (3-3)/1 = 0; b_A = ((5-3-0) + (3-3-0)) / 2 = 1, b_B = (1-3)/1 = -2
    df = frame([("A", "x", 5.0), ("A", "y", 3.0), ("B", "x", 1.0)])
    model = BiasBaseline(reg_user=0, reg_item=0, n_iters=1).fit(df)
    assert model.mu_ == 3.0
    assert model.item_bias_.tolist() == [0.0, 0.0]
    assert model.user_bias_.tolist() == [1.0, -2.0]
    assert model.predict(["A", "B"], ["y", "y"]).tolist() == [4.0, 1.0]


def test_regularisation_shrinks(ratings):
    loose = BiasBaseline(reg_user=0.0, reg_item=0.0, n_iters=1).fit(ratings)
    tight = BiasBaseline(reg_user=0.0, reg_item=50.0, n_iters=1).fit(ratings)
    # b_i = S_i / (reg + n_i): every item bias shrinks towards 0, most for rarely rated movies
    assert (np.abs(tight.item_bias_) <= np.abs(loose.item_bias_) + 1e-12).all()
    n_i = ratings.groupby(ITEM).size().reindex(loose.item_ids_).to_numpy()
    ratio = np.abs(tight.item_bias_) / np.maximum(np.abs(loose.item_bias_), 1e-12)
    nonzero = np.abs(loose.item_bias_) > 1e-9
    assert np.allclose(ratio[nonzero], (n_i / (50.0 + n_i))[nonzero])
    # with the default number of iterations the overall size of the biases still shrinks
    a = BiasBaseline(reg_user=1.0, reg_item=1.0).fit(ratings)
    b = BiasBaseline(reg_user=100.0, reg_item=100.0).fit(ratings)
    assert np.abs(b.item_bias_).mean() < np.abs(a.item_bias_).mean()
    assert np.abs(b.user_bias_).mean() < np.abs(a.user_bias_).mean()


def test_predictions_are_clipped():
    # user A loves everything, x is loved by everyone: mu + b_A + b_x goes above 5 without clipping
    df = frame([("A", "x", 5.0), ("A", "y", 5.0), ("B", "x", 5.0), ("B", "z", 1.0), ("C", "z", 1.0),
                ("C", "y", 2.0)])
    model = BiasBaseline(reg_user=0, reg_item=0, n_iters=5).fit(df)
    users, items = np.meshgrid(["A", "B", "C"], ["x", "y", "z"])
    raw = (model.mu_ + model.user_bias_[model.user_positions(users.ravel())]
           + model.item_bias_[model.item_positions(items.ravel())])
    assert raw.max() > 5.0 and raw.min() < 1.0  # the clip matters here
    pred = model.predict(users.ravel(), items.ravel())
    assert pred.min() == 1.0 and pred.max() == 5.0
    assert np.allclose(pred, np.clip(raw, 1.0, 5.0))


def test_bias_beats_global_mean(rating_split_ml):
    train, test = rating_split_ml
    gm = GlobalMean().fit(train)
    bb = BiasBaseline().fit(train)
    rmse_gm = rmse(test[RATING], gm.predict(test[USER], test[ITEM]))
    rmse_bb = rmse(test[RATING], bb.predict(test[USER], test[ITEM]))
    assert rmse_bb < rmse_gm - 0.05, (rmse_bb, rmse_gm)


def test_bias_unknown_users_and_items(fitted):
    model = fitted["BiasBaseline"]
    known_user, known_item = model.user_ids_[0], model.item_ids_[0]
    mu, b_u, b_i = model.mu_, model.user_bias_[0], model.item_bias_[0]
    pred = model.predict([known_user, -1, known_user, -1], [known_item, known_item, -5, -5])
    lo, hi = model.rating_range_
    assert pred == pytest.approx(np.clip([mu + b_u + b_i, mu + b_i, mu + b_u, mu], lo, hi))
    # a new user is ranked by item bias alone
    recs = model.recommend([-1], k=5)
    assert recs[ITEM].tolist() == model.biases()[ITEM].head(5).tolist()
    assert recs[SCORE].to_numpy() == pytest.approx(mu + np.sort(model.item_bias_)[::-1][:5])


def test_biases_frame(fitted):
    b = fitted["BiasBaseline"].biases()
    assert list(b.columns) == [ITEM, "bias"]
    assert b["bias"].is_monotonic_decreasing
    assert len(b) == fitted["BiasBaseline"].n_items


@pytest.mark.parametrize("params, match", [({"reg_user": -1.0}, "BiasBaseline: reg_user must be a finite number >= 0"),
                                           ({"reg_item": -0.5}, "BiasBaseline: reg_item must be a finite number >= 0"),
                                           ({"n_iters": 0}, "BiasBaseline: n_iters must be an integer >= 1"),
                                           ({"n_iters": 2.5}, "n_iters")])
def test_bias_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        BiasBaseline(**params).fit(toy_ratings())


def test_params_and_repr():
    model = BiasBaseline(reg_user=1.5, n_iters=3)
    assert model.get_params() == {"reg_user": 1.5, "reg_item": 3.0, "n_iters": 3}
    assert repr(model) == "BiasBaseline(reg_user=1.5, reg_item=3.0, n_iters=3)"
    assert repr(Popularity()) == "Popularity()"


# --------------------------------------------------------------------------------------------
# Popularity
# --------------------------------------------------------------------------------------------
def test_popularity_counts(fitted, ranking_split_ml):
    train, _ = ranking_split_ml
    model = fitted["Popularity"]
    counts = train[ITEM].value_counts()
    assert np.array_equal(model.counts_, counts.reindex(model.item_ids_).to_numpy(float))
    top = counts.index[0]
    assert model.predict([1, 999_999], [top, top]).tolist() == [counts.iloc[0]] * 2
    assert model.predict([1], [-42]).tolist() == [0.0]  # unknown item
    assert not model.predicts_ratings


def test_popularity_toy():
    df = toy_ratings()
    model = Popularity().fit(df)
    # counts: A1 4, R2 4, R1 4, A2 3, R3 3, A3 1 -> ties by id: A1, R1, R2, A2, R3, A3
    recs = model.recommend(["newcomer"], k=6)
    assert recs[ITEM].tolist() == ["A1", "R1", "R2", "A2", "R3", "A3"]
    assert recs[SCORE].tolist() == [4, 4, 4, 3, 3, 1]
    # Dan saw A2, R1, R2
    assert model.recommend(["Dan"], k=6)[ITEM].tolist() == ["A1", "R3", "A3"]


# --------------------------------------------------------------------------------------------
# the recommend protocol, on every baseline
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [cls.__name__ for cls in MODELS])
def test_recommend_never_returns_seen_items(all_recs, ranking_split_ml, name):
    train, _ = ranking_split_ml
    recs = all_recs[name]
    assert recs[USER].nunique() == train[USER].nunique() == 610
    leaked = recs.merge(train[[USER, ITEM]], on=[USER, ITEM])
    assert leaked.empty


@pytest.mark.parametrize("name", [cls.__name__ for cls in MODELS])
def test_recommend_shape_rank_and_order(all_recs, fitted, name):
    recs = all_recs[name]
    assert list(recs.columns) == [USER, ITEM, SCORE, RANK]
    assert len(recs) == 610 * 10
    assert (recs.groupby(USER)[RANK].apply(list).map(lambda r: r == list(range(1, 11)))).all()
    assert not recs.duplicated([USER, ITEM]).any()
    # scores descending within a user; equal scores in ascending movieId
    nxt = recs.groupby(USER).shift(-1).dropna()
    cur = recs.loc[nxt.index]
    assert (cur[SCORE] >= nxt[SCORE]).all()
    tie = cur[SCORE] == nxt[SCORE]
    assert (cur.loc[tie, ITEM] < nxt.loc[tie, ITEM]).all()
    assert np.isfinite(recs[SCORE]).all()
    # the scores are the model's own scores
    model = fitted[name]
    sample = recs.sample(200, random_state=0)
    assert np.allclose(model.predict(sample[USER], sample[ITEM]),
                       sample[SCORE] if name != "BiasBaseline" else np.clip(sample[SCORE], *model.rating_range_))


def test_recommend_drops_excluded_items_and_batches():
    df = frame([(1, 10, 5.0), (1, 20, 3.0), (2, 10, 4.0), (2, 30, 2.0), (3, 20, 4.0), (3, 40, 5.0)])
    model = Popularity().fit(df)
    recs = model.recommend([1, 2, 3], k=10)
    # only 2 unseen items per user: lists are shorter than k, never padded with seen items
    assert recs.groupby(USER).size().tolist() == [2, 2, 2]
    assert recs[recs[USER] == 1][ITEM].tolist() == [30, 40]
    full = model.recommend([1], k=10, exclude_seen=False)
    assert full[ITEM].tolist() == [10, 20, 30, 40]
    batched = model.recommend([1, 2, 3], k=10, batch_size=1)
    pd.testing.assert_frame_equal(recs, batched)
    scalar = model.recommend(2, k=1)
    assert scalar[ITEM].tolist() == [20] and scalar[RANK].tolist() == [1]


@pytest.mark.parametrize("name", [cls.__name__ for cls in MODELS])
def test_baselines_recommend_to_unknown_users(fitted, name):
    model = fitted[name]
    recs = model.recommend([1, 123_456], k=5)
    assert recs[USER].tolist() == [1] * 5 + [123_456] * 5
    new = recs[recs[USER] == 123_456]
    assert new[RANK].tolist() == [1, 2, 3, 4, 5]
    assert new[ITEM].isin(model.item_ids_).all()


class StrictPopularity(Popularity):
    handles_unknown_users = False


def test_unknown_users_raise_for_models_that_cannot_handle_them():
    model = StrictPopularity().fit(toy_ratings())
    assert len(model.recommend(["Bob"], k=2)) == 2  # Bob has 2 unseen movies
    with pytest.raises(UnknownIdError) as err:
        model.recommend(["Bob", "Zoe", "Yann"], k=2)
    msg = str(err.value)
    assert "StrictPopularity" in msg and "2 user(s)" in msg
    assert "'Zoe'" in msg and "'Yann'" in msg and "'Bob'" not in msg
    assert "known_only" in msg
    assert not msg.startswith('"')  # not KeyError's quoted repr
    assert isinstance(err.value, KeyError)


@pytest.mark.parametrize("cls", MODELS)
def test_not_fitted(cls):
    model = cls()
    assert not model.is_fitted
    with pytest.raises(NotFittedError, match=f"{cls.__name__} is not fitted yet"):
        model.predict([1], [1])
    with pytest.raises(NotFittedError):
        model.recommend([1])
    with pytest.raises(NotFittedError):
        _ = model.n_items


def test_fit_returns_self_and_bookkeeping():
    df = toy_ratings()
    model = BiasBaseline()
    assert model.fit(df) is model
    assert model.n_users == 5 and model.n_items == 6 and model.n_train_ == 19
    assert model.rating_range_ == (1.0, 5.0)
    assert model.seen_.shape == (5, 6) and model.seen_.nnz == 19


def test_fit_validates_input():
    from recsys_course.data import DataError

    with pytest.raises(DataError, match="train is missing column"):
        GlobalMean().fit(toy_ratings().drop(columns=RATING))


def test_predict_input_checks(fitted):
    model = fitted["GlobalMean"]
    with pytest.raises(ValueError, match="pair up"):
        model.predict([1, 2], [1])
    with pytest.raises(ValueError, match="one-dimensional"):
        model.predict([[1, 2]], [[1, 2]])
    assert model.predict(1, 1).shape == (1,)


@pytest.mark.parametrize("k", [0, -2, 1.5, True])
def test_recommend_bad_k(fitted, k):
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        fitted["Popularity"].recommend([1], k=k)


def test_nan_scores_are_reported():
    class Broken(Recommender):
        def _fit(self, train, users, items):
            pass

        def _predict(self, users, items):
            return np.full(len(users), np.nan)

        def _score_users(self, users):
            return np.full((len(users), self.n_items), np.nan)

    model = Broken().fit(toy_ratings())
    with pytest.raises(FloatingPointError, match="NaN"):
        model.predict(["Alice"], ["A1"])
    with pytest.raises(FloatingPointError, match="NaN"):
        model.recommend(["Alice"])

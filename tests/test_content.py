"""recsys_course.models.content: cosine profiles, the per-user ridge model, the hybrid, cold-start helpers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_course.config import GENRES, ITEM, RATING, TIME, TITLE, USER, YEAR
from recsys_course.data import DataError, toy_ratings
from recsys_course.evaluate import evaluate_cold_items
from recsys_course.features import ItemFeatures, item_features
from recsys_course.models import (
    BiasBaseline,
    ContentBased,
    CosineProfile,
    Hybrid,
    ItemKNN,
    NotFittedError,
    Popularity,
    Recommender,
    UnknownIdError,
)
from recsys_course.models import content as content_module
from recsys_course.models.content import ridge_per_user
from recsys_course.split import item_cold_start_split

TOY_GENRES = {"A1": ["Action", "Adventure"], "A2": ["Action", "Thriller"], "A3": ["Action", "Sci-Fi"],
              "R1": ["Romance", "Drama"], "R2": ["Romance", "Comedy"], "R3": ["Romance", "Comedy", "Drama"],
              "NEW": ["Action", "Comedy"]}  # NEW: has features, never rated (a cold-start film)


@pytest.fixture(scope="module")
def genre_features():
    movies = pd.DataFrame({ITEM: list(TOY_GENRES), TITLE: list(TOY_GENRES), YEAR: 2000,
                           GENRES: list(TOY_GENRES.values())})
    return item_features(movies, weights={"genres": 1, "tags": 0, "title": 0, "year": 0}, min_df=1)


@pytest.fixture(scope="module")
def synthetic():
    """60 users, 80 films with 5 genres; users like 1–2 genres; every film has features."""
    rng = np.random.default_rng(0)
    names = ["Action", "Comedy", "Drama", "Horror", "Romance"]
    film_genres = [list(rng.choice(names, size=rng.integers(1, 3), replace=False)) for _ in range(80)]
    movies = pd.DataFrame({ITEM: np.arange(100, 180), TITLE: [f"film {i}" for i in range(80)], YEAR: 1990,
                           GENRES: film_genres})
    taste = rng.normal(size=(60, len(names)))
    rows = []
    for u in range(60):
        for j in rng.choice(80, size=rng.integers(8, 25), replace=False):
            score = np.mean([taste[u, names.index(g)] for g in film_genres[j]])
            rows.append((u + 1, 100 + int(j), float(np.clip(np.round(3 + score + rng.normal(0, 0.3)), 1, 5))))
    ratings = pd.DataFrame(rows, columns=[USER, ITEM, RATING])
    ratings[TIME] = np.arange(len(ratings))
    feats = item_features(movies, weights={"title": 0, "year": 0}, min_df=1)
    return ratings, feats


# --------------------------------------------------------------------------------------------
# the ridge closed form
# --------------------------------------------------------------------------------------------
def test_ridge_per_user_equals_lstsq_and_solve():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(30, 4))
    users = rng.integers(0, 5, size=60)
    users[users == 3] = 2  # user 3 has no ratings
    items = rng.integers(0, 30, size=60)
    y = rng.normal(size=60)
    W = ridge_per_user(Z, users, items, y, reg=2.0, n_users=5)
    for u in range(5):
        C, t = Z[items[users == u]], y[users == u]
        if len(t) == 0:
            assert np.all(W[u] == 0)
            continue
        solve = np.linalg.solve(C.T @ C + 2.0 * np.eye(4), C.T @ t)
        lstsq = np.linalg.lstsq(np.vstack([C, np.sqrt(2.0) * np.eye(4)]), np.concatenate([t, np.zeros(4)]),
                                rcond=None)[0]
        assert W[u] == pytest.approx(solve) and W[u] == pytest.approx(lstsq)


def test_ridge_worked_example_of_the_notebook():
    two = ItemFeatures(np.array(["f1", "f2", "f3", "act", "rom"]),
                       sp.csr_matrix(np.array([[1.0, 0], [0, 1], [1, 1], [1, 0], [0, 1]])),
                       np.array(["action", "romance"], dtype=object), {"toy": slice(0, 2)})
    train = pd.DataFrame({USER: "u", ITEM: ["f1", "f2", "f3"], RATING: [5.0, 2.0, 4.0], TIME: [0, 1, 2]})
    model = ContentBased(reg=1.0, n_components=None, features=two).fit(train)
    assert model.user_weights_[0] == pytest.approx([19 / 24, -17 / 24])
    assert model.user_bias_[0] == pytest.approx(11 / 3)
    assert model.predict(["u", "u"], ["act", "rom"]) == pytest.approx([11 / 3 + 19 / 24, 11 / 3 - 17 / 24])


def test_content_based_on_toy_equals_a_loop_over_users(genre_features):
    toy = toy_ratings()
    model = ContentBased(reg=1.0, n_components=None, features=genre_features).fit(toy)
    C = pd.DataFrame(genre_features.matrix.toarray(), index=genre_features.item_ids)
    for u, rows in toy.groupby(USER):
        Cu = C.loc[rows[ITEM]].to_numpy()
        b = rows[RATING].mean()
        w = np.linalg.solve(Cu.T @ Cu + np.eye(C.shape[1]), Cu.T @ (rows[RATING].to_numpy() - b))
        pos = list(model.user_ids_).index(u)
        assert model.user_weights_[pos] == pytest.approx(w)
        want = np.clip(b + C.to_numpy() @ w, 1, 5)
        assert model.predict([u] * len(C), C.index) == pytest.approx(want)


def test_svd_with_every_component_equals_no_reduction(genre_features):
    toy = toy_ratings()
    full = ContentBased(reg=1.0, n_components=None, features=genre_features).fit(toy)
    rank = np.linalg.matrix_rank(genre_features.matrix.toarray())
    reduced = ContentBased(reg=1.0, n_components=int(rank), features=genre_features).fit(toy)
    users = np.repeat(full.user_ids_, 7)
    films = np.tile(genre_features.item_ids, 5)
    assert reduced.predict(users, films) == pytest.approx(full.predict(users, films))


def test_feature_weights_in_the_original_space(genre_features):
    toy = toy_ratings()
    model = ContentBased(reg=1.0, n_components=None, features=genre_features).fit(toy)
    w = model.feature_weights("Alice", top=3)
    assert w.index[0] in {"genre:Action", "genre:Romance"} and len(w) == 3
    rank = int(np.linalg.matrix_rank(genre_features.matrix.toarray()))
    reduced = ContentBased(reg=1.0, n_components=rank, features=genre_features).fit(toy)
    assert reduced.feature_weights("Alice", top=7).sort_index().to_numpy() == pytest.approx(
        model.feature_weights("Alice", top=7).sort_index().to_numpy())
    with pytest.raises(KeyError):
        model.feature_weights("Zed")


# --------------------------------------------------------------------------------------------
# cosine profiles
# --------------------------------------------------------------------------------------------
def test_cosine_profile_by_hand(genre_features):
    model = CosineProfile(features=genre_features).fit(toy_ratings())
    # Dan: A2 = 2, R1 = 4, R2 = 5 -> weights (0, 0.2, 0.8)
    prof = model.profile("Dan", top=10)
    assert prof["genre:Romance"] == pytest.approx(1 / np.sqrt(2))
    assert prof["genre:Comedy"] == pytest.approx(0.8 / np.sqrt(2))
    assert prof["genre:Drama"] == pytest.approx(0.2 / np.sqrt(2))
    assert "genre:Action" not in prof.index
    scores = model.predict(["Dan"] * 3, ["R3", "A1", "NEW"])
    assert scores[0] == pytest.approx(0.8909, abs=1e-4)
    assert scores[1] == 0
    # NEW (Action, Comedy) is cold: it still gets a content score, cos = 0.5657 * (1/sqrt2) / 0.9165
    assert scores[2] == pytest.approx(0.8 / np.sqrt(2) / np.sqrt(2) / np.sqrt(0.84))
    assert model.recommend(["Dan"], k=1)[ITEM].tolist() == ["R3"]


def test_cosine_profile_with_disliked_films(genre_features):
    toy = toy_ratings()
    model = CosineProfile(negative=True, features=genre_features).fit(toy)
    # Dan: d = (-5/3, 1/3, 4/3), sum |d| = 10/3 -> weights (-0.5, 0.1, 0.4); A2 = Action, Thriller
    s = 1 / np.sqrt(2)
    p = {"Action": -0.5 * s, "Thriller": -0.5 * s, "Romance": 0.5 * s, "Drama": 0.1 * s, "Comedy": 0.4 * s}
    norm = np.sqrt(sum(v * v for v in p.values()))
    got = model.predict(["Dan"], ["A1"])[0]  # A1 = Action, Adventure
    assert got == pytest.approx(p["Action"] * s / norm)
    assert got < 0  # a disliked genre pushes the film down


def test_cosine_predict_block_and_pairwise_paths_agree(synthetic, monkeypatch):
    ratings, feats = synthetic
    model = CosineProfile(features=feats).fit(ratings)
    users, films = ratings[USER].to_numpy()[::3], ratings[ITEM].to_numpy()[::-3]
    block = model.predict(users, films)
    monkeypatch.setattr(content_module, "BLOCK_SLACK", -10**9)  # force the pair-by-pair path
    assert model.predict(users, films) == pytest.approx(block)


def test_user_with_equal_ratings_scores_zero(genre_features):
    flat = pd.DataFrame({USER: "x", ITEM: ["A1", "R1"], RATING: [3.0, 3.0], TIME: [0, 1]})
    model = CosineProfile(features=genre_features).fit(flat)
    assert model.predict(["x", "x"], ["A2", "R2"]) == pytest.approx([0, 0])


# --------------------------------------------------------------------------------------------
# cold films, unknown users, recommend
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [ContentBased, CosineProfile])
def test_cold_films_get_finite_content_scores(cls, synthetic):
    ratings, feats = synthetic
    cold = [100, 101, 102, 103, 104]
    train = ratings[~ratings[ITEM].isin(cold)]
    model = cls(features=feats, **({"n_components": 5} if cls is ContentBased else {})).fit(train)
    users = np.repeat(train[USER].unique()[:10], len(cold))
    scores = model.predict(users, np.tile(cold, 10))
    assert np.isfinite(scores).all()
    assert np.unique(np.round(scores, 8)).size > 1  # not a constant: the films are told apart
    assert not np.isin(cold, model.item_ids_).any()


def test_films_without_features_and_unknown_users(genre_features):
    toy = toy_ratings()
    cb = ContentBased(reg=1.0, n_components=None, features=genre_features).fit(toy)
    alice_mean = toy.loc[toy[USER] == "Alice", RATING].mean()
    assert cb.predict(["Alice"], ["NO-FEATURES"])[0] == pytest.approx(alice_mean)
    assert cb.predict(["Stranger"], ["A1"])[0] == pytest.approx(toy[RATING].mean())
    cp = CosineProfile(features=genre_features).fit(toy)
    assert cp.predict(["Alice", "Stranger"], ["NO-FEATURES", "A1"]) == pytest.approx([0, 0])
    for model in (cb, cp):
        with pytest.raises(UnknownIdError, match="absent from its training data"):
            model.recommend(["Stranger"])


@pytest.mark.parametrize("make", [
    lambda f: ContentBased(n_components=5, features=f),
    lambda f: CosineProfile(features=f),
    lambda f: CosineProfile(negative=True, features=f),
    lambda f: Hybrid(BiasBaseline(), ContentBased(n_components=5, features=f)),
], ids=["ContentBased", "CosineProfile", "CosineProfile-negative", "Hybrid"])
def test_recommend_never_returns_seen_items(make, synthetic):
    ratings, feats = synthetic
    model = make(feats).fit(ratings)
    users = np.sort(ratings[USER].unique())
    recs = model.recommend(users, k=15)
    seen = set(zip(ratings[USER], ratings[ITEM]))
    assert not any((u, i) in seen for u, i in zip(recs[USER], recs[ITEM]))
    assert recs.groupby(USER).size().max() == 15
    assert set(recs[ITEM]) <= set(model.item_ids_)


def test_recommend_agrees_with_predict(synthetic):
    ratings, feats = synthetic
    model = ContentBased(n_components=5, features=feats).fit(ratings)
    u = ratings[USER].iloc[0]
    top = model.recommend([u], k=5, exclude_seen=False)
    raw = model.predict([u] * 5, top[ITEM])  # predict clips to [1, 5]; scores do not
    assert np.clip(top["score"].to_numpy(), 1, 5) == pytest.approx(raw)


def test_deterministic(synthetic):
    ratings, feats = synthetic
    a = ContentBased(n_components=5, features=feats).fit(ratings).predict(ratings[USER], ratings[ITEM])
    b = ContentBased(n_components=5, features=feats).fit(ratings).predict(ratings[USER], ratings[ITEM])
    assert np.array_equal(a, b)


# --------------------------------------------------------------------------------------------
# the hybrid
# --------------------------------------------------------------------------------------------
def test_hybrid_blends_known_films_and_falls_back_to_content(synthetic):
    ratings, feats = synthetic
    cold = [100, 101, 102]
    train = ratings[~ratings[ITEM].isin(cold)]
    hybrid = Hybrid(BiasBaseline(), ContentBased(n_components=5, features=feats), weight=0.3).fit(train)
    u = train[USER].iloc[0]
    warm_film = train[ITEM].iloc[-1]
    users, films = np.array([u, u, u, 999]), np.array([warm_film, 100, 101, warm_film])
    cf, content = hybrid.cf_.predict(users, films), hybrid.content_.predict(users, films)
    got = hybrid.predict(users, films)
    assert got[0] == pytest.approx(0.3 * cf[0] + 0.7 * content[0])  # both models know (u, film): blend
    assert got[1:3] == pytest.approx(content[1:3])  # cold films: content only
    assert got[3] == pytest.approx(content[3])  # unknown user: content's fallback (the global mean)
    hybrid.weight = 1.0
    assert hybrid.predict(users, films)[:3] == pytest.approx([cf[0], content[1], content[2]])
    hybrid.weight = 0.0
    assert hybrid.predict(users, films) == pytest.approx(content)


def test_hybrid_scores_blend_the_components(synthetic):
    ratings, feats = synthetic
    hybrid = Hybrid(BiasBaseline(), ContentBased(n_components=5, features=feats), weight=0.4).fit(ratings)
    users = hybrid.user_ids_[:5]
    want = 0.4 * hybrid.cf_.score(users) + 0.6 * hybrid.content_.score(users)
    assert hybrid.score(users) == pytest.approx(want)


def test_hybrid_fits_copies_and_defaults(synthetic):
    ratings, feats = synthetic
    cf, content = BiasBaseline(reg_item=5.0), ContentBased(n_components=5, features=feats)
    hybrid = Hybrid(cf, content).fit(ratings)
    assert not cf.is_fitted and not content.is_fitted  # the arguments are templates
    assert hybrid.cf_.reg_item == 5.0 and hybrid.content_.n_components == 5
    assert hybrid.predicts_ratings
    assert not Hybrid(Popularity(), content).predicts_ratings
    default = Hybrid(content=content).fit(ratings)
    assert isinstance(default.cf_, ItemKNN) and default.weight == 0.7
    with pytest.raises(UnknownIdError):
        default.recommend([999])
    assert Hybrid().predicts_ratings  # without fitting: ItemKNN and ContentBased both predict ratings
    with pytest.raises(ValueError, match=r"Hybrid needs a content model.*item_features\(ml.movies, ml.tags\)"):
        Hybrid().fit(ratings)  # a model never loads item features by itself


# --------------------------------------------------------------------------------------------
# bad hyper-parameters
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model, match", [
    (ContentBased(None, reg=0), "ContentBased: reg must be a finite number > 0"),
    (ContentBased(None, reg=-1), "ContentBased: reg must be a finite number > 0"),
    (ContentBased(None, reg=float("nan")), "ContentBased: reg must be a finite number > 0"),
    (ContentBased(None, reg="big"), "ContentBased: reg must be a finite number > 0"),
    (ContentBased(None, n_components=0), "ContentBased: n_components must be an integer >= 1 or None"),
    (ContentBased(None, n_components=2.5), "ContentBased: n_components must be an integer >= 1 or None"),
    (ContentBased(None, n_components=10_000), "n_components must be at most the number of features"),
    (ContentBased(None, seed=None), "ContentBased: seed must be an integer >= 0"),
    (CosineProfile(None, negative="yes"), "CosineProfile: negative must be True or False"),
    (Hybrid(BiasBaseline(), BiasBaseline(), weight=1.5), "Hybrid: weight must be a finite number >= 0 and <= 1"),
    (Hybrid(BiasBaseline(), BiasBaseline(), weight=-0.1), "Hybrid: weight must be a finite number >= 0"),
])
def test_bad_hyper_parameters_raise_clear_errors(model, match, synthetic):
    ratings, feats = synthetic
    if isinstance(model, (ContentBased, CosineProfile)):
        model.features = feats
    with pytest.raises(ValueError, match=match):
        model.fit(ratings)


def test_bad_types_raise(synthetic):
    ratings, _ = synthetic
    with pytest.raises(TypeError, match="ItemFeatures"):
        ContentBased(features="genres").fit(ratings)
    for cls in (ContentBased, CosineProfile):  # no hidden data set load: the message says how to build them
        with pytest.raises(TypeError, match=r"item_features\(ml.movies, ml.tags\)"):
            cls(features=None).fit(ratings)
    with pytest.raises(TypeError):
        ContentBased()  # features is a required argument
    with pytest.raises(TypeError, match="Recommender"):
        Hybrid(cf="ItemKNN").fit(ratings)


def test_too_many_features_without_reduction(ml):
    feats = item_features(ml.movies, ml.tags)
    with pytest.raises(ValueError, match="Reduce them"):
        ContentBased(n_components=None, features=feats).fit(toy_ratings())


# --------------------------------------------------------------------------------------------
# cold-start split and evaluation
# --------------------------------------------------------------------------------------------
def test_item_cold_start_split(synthetic):
    ratings, _ = synthetic
    train, test = item_cold_start_split(ratings, share=0.1, seed=3)
    assert not set(test[ITEM]) & set(train[ITEM])
    assert test[ITEM].nunique() <= 8 and set(test[USER]) <= set(train[USER])
    assert len(train) + len(test) <= len(ratings)
    again = item_cold_start_split(ratings, share=0.1, seed=3)
    assert again[1].equals(test)
    for share in (0, 1, 1.5):
        with pytest.raises(ValueError, match="item_cold_start_split: share must be a share strictly between"):
            item_cold_start_split(ratings, share=share)


def test_evaluate_cold_items(synthetic):
    ratings, feats = synthetic
    train, test = item_cold_start_split(ratings, share=0.25, seed=0)
    content = evaluate_cold_items(ContentBased(n_components=5, features=feats).fit(train), test, k=5)
    constant = evaluate_cold_items(BiasBaseline().fit(train), test, k=5)
    assert {"rmse", "mae", "ndcg@5", "hit@5", "n_users", "n_candidates"} <= set(content.index)
    assert content["n_candidates"] == test[ITEM].nunique()
    assert content["n_users"] == test.loc[test[RATING] >= 4, USER].nunique()
    assert 0 <= content["ndcg@5"] <= 1 and 0 <= constant["ndcg@5"] <= 1
    assert content["rmse"] < constant["rmse"]  # the synthetic ratings follow the genres
    assert "rmse" not in evaluate_cold_items(Popularity().fit(train), test, k=5)
    # a constant scorer's ranking depends only on the seeded tie order, the same for every constant model
    assert evaluate_cold_items(Popularity().fit(train), test, k=5)["ndcg@5"] == constant["ndcg@5"]
    with pytest.raises(DataError, match="cold-start films only"):
        evaluate_cold_items(BiasBaseline().fit(ratings), test)
    with pytest.raises(NotFittedError, match="BiasBaseline is not fitted"):
        evaluate_cold_items(BiasBaseline(), test)


def test_models_are_recommenders():
    for cls in (ContentBased, CosineProfile, Hybrid):
        assert issubclass(cls, Recommender)
    assert ContentBased(None).get_params() == {"features": None, "reg": 3.0, "n_components": 64, "seed": 0}
    assert CosineProfile(None).negative is False

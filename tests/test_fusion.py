"""Tests of recsys_course.fusion: the film modalities, early fusion (one item tower, modality dropout) and late fusion
(one score per modality, a learned blend), on hand-made films and ratings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.evaluate import evaluate_cold_items
from recsys_course.fusion import (
    EarlyFusion,
    FilmModalities,
    LateFusion,
    collaborative_factors,
    film_modalities,
    fit_blend,
    modality_scores,
)
from recsys_course.models.base import NotFittedError, UnknownIdError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8], [0.0, 0.0]])   # film 50 has no text


@pytest.fixture(scope="module")
def movies():
    """Five films (ids deliberately not in order): genres, a year (one unknown), two with tags."""
    return pd.DataFrame({ITEM: [30, 10, 20, 40, 50],
                         "title": ["C", "A", "B", "D", "E"],
                         "genres": [["Comedy"], ["Action"], ["Action", "Comedy"], ["Comedy", "Drama"],
                                    ["(no genres listed)"]],
                         "year": [2000.0, 1980.0, 1995.0, np.nan, 2010.0]})


@pytest.fixture(scope="module")
def tags():
    return pd.DataFrame({USER: [1, 1, 2, 2], ITEM: [10, 20, 10, 20], "tag": ["explosions", "explosions", "car",
                                                                               "funny"], TIME: [1, 2, 3, 4]})


@pytest.fixture(scope="module")
def mods(movies, tags):
    return film_modalities(movies, tags, text=TEXT, text_dim=None, tag_dim=2)


def _ratings(seed: int = 0, n_users: int = 30) -> pd.DataFrame:
    """Users who like either the action films (10, 20) or the comedies (30, 40); film 50 is rarely rated."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        likes = (10, 20) if u % 2 == 0 else (30, 40)
        for t, i in enumerate(rng.permutation([10, 20, 30, 40, 50])[:4]):
            rows.append((u, i, 5.0 if i in likes else 2.0, t))
    return pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME])


# ---- the modalities -----------------------------------------------------------------------------
def test_modalities_are_aligned_sorted_and_flag_missing(mods):
    assert list(mods.item_ids) == [10, 20, 30, 40, 50]
    assert mods.names == ("text", "genres", "tags", "year")
    # text rows follow movies' order (30, 10, 20, 40, 50) → sorted ids
    np.testing.assert_allclose(mods.blocks["text"], TEXT[[1, 2, 0, 3, 4]])
    assert list(mods.present["text"]) == [True, True, True, True, False]
    # genres: unit multi-hot; "(no genres listed)" means missing
    g = mods.rows("genres", [20])[0][0]
    np.testing.assert_allclose(np.sort(g[g > 0]), [1 / np.sqrt(2)] * 2, rtol=1e-6)
    assert list(mods.present["genres"]) == [True, True, True, True, False]
    assert list(mods.present["tags"]) == [True, True, False, False, False]
    assert not mods.blocks["tags"][2:].any()
    assert list(mods.present["year"]) == [True, True, True, False, True]
    assert not mods.blocks["year"][3].any()
    np.testing.assert_allclose(np.linalg.norm(mods.blocks["year"][[0, 1, 2, 4]], axis=1), 1.0, rtol=1e-6)


def test_year_bumps_by_hand(mods):
    """1980 on the decade centres 1980..2010 with σ = 10: exp(-(y - c)² / 200), then unit length."""
    centres = np.arange(1980, 2011, 10)
    bumps = np.exp(-((1980 - centres) ** 2) / 200.0)
    np.testing.assert_allclose(mods.rows("year", [10])[0][0], bumps / np.linalg.norm(bumps), rtol=1e-6)
    # neighbouring years are more alike than distant ones
    y = mods.blocks["year"]
    assert y[1] @ y[2] > y[0] @ y[4]


def test_rows_of_unknown_films_are_zero_and_missing(mods):
    rows, present = mods.rows("text", [20, 999])
    np.testing.assert_allclose(rows[0], [0.0, 1.0])
    assert not rows[1].any() and list(present) == [True, False]


def test_text_dim_reduces_to_unit_rows(movies, tags):
    reduced = film_modalities(movies, tags, text=TEXT, text_dim=1, tag_dim=2)
    assert reduced.dims["text"] == 1
    np.testing.assert_allclose(np.abs(reduced.blocks["text"][:4, 0]), 1.0, rtol=1e-6)


def test_no_tags_leaves_the_modality_out(movies):
    assert "tags" not in film_modalities(movies, None, text=TEXT).names


def test_unknown_modality_name(mods):
    with pytest.raises(ValueError, match="unknown modality 'poster'.*text"):
        mods.select(["text", "poster"])
    with pytest.raises(ValueError, match="unknown modality 'poster'"):
        EarlyFusion(mods, use=("poster",), n_epochs=1).fit(_ratings())
    with pytest.raises(ValueError, match=r"unknown modality 'cf' \(cf needs cf_factors"):
        LateFusion(mods, use=("cf",), cf_factors=0).fit(_ratings())


def test_misaligned_modality_matrix(movies, tags):
    with pytest.raises(ValueError, match="'text' has shape \\(4, 2\\) but movies has 5 films"):
        film_modalities(movies, tags, text=TEXT[:4])
    with pytest.raises(ValueError, match="'poster' has shape \\(6, 3\\)"):
        film_modalities(movies, tags, extra={"poster": np.ones((6, 3))})
    with pytest.raises(ValueError, match="one row per film"):
        FilmModalities(np.array([1, 2]), {"text": np.ones((3, 2), np.float32)}, {"text": np.ones(3, bool)})


def test_all_modalities_dropped(mods):
    with pytest.raises(ValueError, match="every modality is dropped"):
        LateFusion(mods, use=()).fit(_ratings())
    with pytest.raises(ValueError, match="every modality is dropped"):
        EarlyFusion(mods, use=[], n_epochs=1).fit(_ratings())
    with pytest.raises(ValueError, match="no modality selected"):
        mods.select([])
    with pytest.raises(ValueError, match="modality_dropout must be a finite number >= 0 and < 1"):
        EarlyFusion(mods, modality_dropout=1.0, n_epochs=1).fit(_ratings())


def test_modalities_must_be_built(mods):
    with pytest.raises(TypeError, match="film_modalities"):
        LateFusion(modalities=None).fit(_ratings())
    cf = FilmModalities(mods.item_ids, {"cf": mods.blocks["text"]}, {"cf": mods.present["text"]})
    with pytest.raises(ValueError, match="fits its own collaborative factors"):
        LateFusion(cf).fit(_ratings())


def test_collaborative_factors_are_zero_for_films_absent_from_train():
    train = _ratings()
    train = train[train[ITEM] != 50]
    rows, present = collaborative_factors(train, [10, 20, 30, 40, 50], n_factors=2)
    assert list(present) == [True, True, True, True, False] and not rows[4].any()
    np.testing.assert_allclose(np.linalg.norm(rows[:4], axis=1).mean(), 1.0, rtol=1e-6)


# ---- late fusion ---------------------------------------------------------------------------------
def test_fit_blend_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X @ [1.5, -1.0, 0.0] + 0.2 + rng.logistic(size=400) > 0).astype(float)
    w, b = fit_blend(X, y, C=0.3)
    ref = LogisticRegression(C=0.3, tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(w, ref.coef_[0], atol=1e-6)
    assert b == pytest.approx(ref.intercept_[0], abs=1e-6)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        fit_blend(X, y * 2)


def test_late_fusion_blend_by_hand(mods):
    """Per modality, the unit profile of Σ max(r - r̄, 0) x_i, its dot product with the film's row, and the
    pattern's blend b + Σ w s_m — also for film 50, absent from train (no cf, no text, no genres)."""
    train = _ratings()
    train = train[train[ITEM] != 50]
    model = LateFusion(mods, val_size=1, n_negatives=2).fit(train)
    assert model.used_ == ["text", "genres", "tags", "year", "cf"]
    user = 0
    mine = train[train[USER] == user]
    d = np.maximum(mine[RATING].to_numpy() - mine[RATING].mean(), 0)
    films = [10, 20, 30, 40, 50]
    cf_rows, _ = collaborative_factors(train, films, n_factors=32)
    table = model.modality_table([user] * 5, films)
    for name in model.used_:
        rows = cf_rows if name == "cf" else mods.rows(name, films)[0]
        liked = cf_rows[[films.index(i) for i in mine[ITEM]]] if name == "cf" else mods.rows(name, mine[ITEM])[0]
        p = d @ liked
        p = p / np.linalg.norm(p) if np.linalg.norm(p) else p
        np.testing.assert_allclose(table[name], rows @ p, atol=1e-5)
    weights = model.weights_
    full = weights.loc["text+genres+tags+year+cf"]
    by_hand = full["intercept"] + sum(full[n] * table[n].iloc[0] for n in model.used_)
    assert table["blend"].iloc[0] == pytest.approx(by_hand, abs=1e-6)
    # film 50 has only a year: the "year" blend
    only_year = weights.loc["year"]
    assert table["blend"].iloc[4] == pytest.approx(only_year["intercept"] + only_year["year"] * table["year"].iloc[4],
                                                   abs=1e-6)
    np.testing.assert_allclose(model.predict([user] * 5, films), table["blend"])
    # score() agrees with predict on the catalogue
    np.testing.assert_allclose(model.score([user])[0], model.predict([user] * 4, model.item_ids_), atol=1e-6)
    assert modality_scores(np.array([[1.0, 0.0]]), np.array([[0.5, 2.0]]))[0, 0] == pytest.approx(0.5)


def test_late_fusion_learns_the_informative_modality():
    """20 films, half action, half comedy; each user likes one genre. The blend weighs genres, not the (random) year,
    and ranks a user's genre first."""
    rng = np.random.default_rng(0)
    films = pd.DataFrame({ITEM: np.arange(1, 21), "title": [f"F{i}" for i in range(20)],
                          "genres": [["Action"] if i < 10 else ["Comedy"] for i in range(20)],
                          "year": rng.integers(1950, 2010, 20).astype(float)})
    rows = [(u, int(i), 5.0 if (i <= 10) == (u % 2 == 0) else 1.0, t)
            for u in range(60) for t, i in enumerate(rng.permutation(np.arange(1, 21))[:10])]
    train = pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME])
    model = LateFusion(film_modalities(films), cf_factors=0, val_size=3).fit(train)
    w = model.weights_.loc["genres+year"]
    assert w["genres"] > 2.0 and abs(w["year"]) < w["genres"] / 2
    assert model.blend_auc_ > 0.75
    scores = model.predict([0, 0, 1, 1], [1, 11, 11, 1])
    assert scores[0] > scores[1] and scores[2] > scores[3]


def test_reblend_equals_a_refit_without_the_modality(mods):
    """Leaving a modality out by re-blending gives the same model as fitting with ``use`` without it."""
    train = _ratings(n_users=40)
    full = LateFusion(mods, val_size=2).fit(train)
    twin = full.reblend(["text", "genres", "cf"])
    refit = LateFusion(mods, use=("text", "genres", "cf"), val_size=2).fit(train)
    pd.testing.assert_frame_equal(twin.weights_, refit.weights_)
    np.testing.assert_allclose(twin.score([0, 1]), refit.score([0, 1]), atol=1e-6)
    assert full.used_ == ["text", "genres", "tags", "year", "cf"]        # the original is untouched
    with pytest.raises(ValueError, match="unknown modality 'poster'"):
        full.reblend(["poster"])
    with pytest.raises(ValueError, match="every modality is dropped"):
        full.reblend([])


# ---- early fusion --------------------------------------------------------------------------------
def test_early_fusion_concatenation_and_tower_by_hand(mods):
    """z = W2 ReLU(W1 [x_text; x_genres; flags] + b1) + b2, p_u = mean of z over liked films, s = p_u · z_i."""
    import torch

    train = _ratings()
    train = train[train[ITEM] != 50]
    two = mods.select(["text", "genres"])
    model = EarlyFusion(two, cf_factors=0, hidden=(3,), n_factors=2, n_epochs=3, batch_size=8).fit(train)
    sd = {k: v.double().numpy() for k, v in model.network_.state_dict().items()}
    films = np.array([10, 20, 30, 40, 50])
    x = np.hstack([two.blocks["text"], two.blocks["genres"],
                   np.stack([two.present["text"], two.present["genres"]], 1).astype(float)])
    z = np.maximum(x @ sd["mlp.0.weight"].T + sd["mlp.0.bias"], 0) @ sd["mlp.2.weight"].T + sd["mlp.2.bias"]
    np.testing.assert_allclose(model.film_vectors(films), z, atol=1e-5)
    liked = train[(train[USER] == 3) & (train[RATING] >= 4)][ITEM].to_numpy()
    p = z[np.searchsorted(films, liked)].mean(0)
    np.testing.assert_allclose(model.predict([3] * 5, films), z @ p, atol=1e-5)
    assert isinstance(model.network_, torch.nn.Module)
    np.testing.assert_allclose(model.score([3])[0], (z @ p)[:4], atol=1e-5)


def test_early_fusion_is_deterministic_and_learns(mods):
    train = _ratings(n_users=60)
    kw = dict(cf_factors=2, hidden=(8,), n_factors=4, n_epochs=30, lr=0.02, batch_size=16, seed=3)
    a, b = EarlyFusion(mods, **kw).fit(train), EarlyFusion(mods, **kw).fit(train)
    np.testing.assert_array_equal(a.item_vectors_, b.item_vectors_)
    assert a.loss_ == b.loss_
    assert a.loss_[-1] < a.loss_[0]
    c = EarlyFusion(mods, **{**kw, "seed": 4}).fit(train)
    assert not np.array_equal(a.item_vectors_, c.item_vectors_)
    s = a.predict([0, 0, 1, 1], [10, 30, 30, 10])      # action fan, comedy fan
    assert s[0] > s[1] and s[2] > s[3]


def test_sampled_softmax_trains_and_is_deterministic(mods):
    train = _ratings(n_users=60)
    kw = dict(cf_factors=2, hidden=(8,), n_factors=4, n_epochs=30, lr=0.02, batch_size=16, n_negatives=3)
    a, b = EarlyFusion(mods, **kw).fit(train), EarlyFusion(mods, **kw).fit(train)
    assert a.loss_ == b.loss_ and a.loss_[-1] < a.loss_[0]
    s = a.predict([0, 0, 1, 1], [10, 30, 30, 10])
    assert s[0] > s[1] and s[2] > s[3]
    with pytest.raises(ValueError, match="n_negatives must be an integer >= 1 or None"):
        EarlyFusion(mods, n_negatives=0).fit(train)


def test_modality_dropout_changes_training(mods):
    train = _ratings(n_users=40)
    kw = dict(cf_factors=2, hidden=(8,), n_factors=4, n_epochs=5, batch_size=16)
    on, off = EarlyFusion(mods, modality_dropout=0.5, **kw).fit(train), EarlyFusion(mods, modality_dropout=0.0,
                                                                                     **kw).fit(train)
    assert not np.allclose(on.item_vectors_, off.item_vectors_)


def test_both_models_score_cold_films_and_refuse_unknown_users(mods):
    ratings = _ratings(n_users=40)
    train, test = ratings[ratings[ITEM] != 50], ratings[ratings[ITEM] == 50]
    test = test.assign(**{RATING: np.where(test[USER] % 3 == 0, 5.0, 2.0)})
    for model in (LateFusion(mods, val_size=1), EarlyFusion(mods, hidden=(4,), n_factors=2, n_epochs=2)):
        with pytest.raises(NotFittedError):
            model.predict([0], [10])
        model.fit(train)
        assert 50 not in model.item_ids_
        assert np.isfinite(model.predict([0], [50])).all()
        assert model.predict([0], [12345])[0] == -np.inf       # a film without any modality row
        with pytest.raises(UnknownIdError, match="absent from its training data"):
            model.recommend([999])
        with pytest.raises(UnknownIdError, match="no liked films for 1 user"):
            model.predict([999], [10])
        row = evaluate_cold_items(model, test)
        assert row["n_candidates"] == 1

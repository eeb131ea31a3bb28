"""UserKNN and ItemKNN: the worked example of notebook 02, brute-force checks, the protocol's edge cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_course.config import ITEM, RATING, USER
from recsys_course.data import toy_purchases, toy_ratings
from recsys_course.models import ItemKNN, UnknownIdError, UserKNN, neighbors
from recsys_course.synthetic import make_synthetic

MODELS = [ItemKNN, UserKNN]


# ---- the worked example: u bought i1, i2, i3; v bought i2, i3, i4 -------------------------------------
@pytest.mark.parametrize("similarity, user_sim, item_sims, item_score", [
    ("jaccard", 0.5, {("i1", "i2"): 0.5, ("i2", "i3"): 1.0, ("i2", "i4"): 0.5, ("i1", "i4"): 0.0}, 1.0),
    ("cosine", 2 / 3, {("i1", "i2"): 2 ** -0.5, ("i2", "i3"): 1.0, ("i2", "i4"): 2 ** -0.5, ("i1", "i4"): 0.0},
     2 ** 0.5),
])
def test_toy_purchases_worked_example(similarity, user_sim, item_sims, item_score):
    data = toy_purchases()
    users = UserKNN(k=5, similarity=similarity, shrinkage=0, mode="ranking").fit(data)
    items = ItemKNN(k=5, similarity=similarity, shrinkage=0, mode="ranking").fit(data)
    assert users.similarity_[0, 1] == pytest.approx(user_sim)
    pos = {i: p for p, i in enumerate(items.item_ids_)}
    for (a, b), s in item_sims.items():
        assert items.similarity_[pos[a], pos[b]] == pytest.approx(s, abs=1e-6)
    # the only unseen item of u is i4, of v is i1
    for model, score in [(users, user_sim), (items, item_score)]:
        recs = model.recommend(["u", "v"], k=3)
        assert recs[ITEM].tolist() == ["i4", "i1"]
        assert recs["score"].to_numpy() == pytest.approx([score, score], abs=1e-6)
        assert model.predict(["u", "v"], ["i4", "i1"]) == pytest.approx([score, score], abs=1e-6)


def test_toy_purchases_normalised_average_is_always_one():
    """The rating formula on 0/1 data: every item with a neighbour scores exactly 1 (so it cannot rank)."""
    data = toy_purchases()
    for cls in MODELS:
        model = cls(k=5, similarity="cosine", shrinkage=0, mode="rating").fit(data)
        assert model.predict(["u", "v"], ["i4", "i1"]) == pytest.approx([1.0, 1.0])
        assert model.recommend(["u"], k=4, exclude_seen=False)["score"].tolist() == pytest.approx([1.0] * 4)


# ---- brute force on a small random data set ----------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    ratings = make_synthetic(n_users=30, n_items=40, ratings_per_user=12, seed=3).ratings
    return ratings.drop_duplicates([USER, ITEM])


def _brute_rating(model, u: int, i: int, k: int) -> float:
    """r̂ = b_ui + Σ_{top-k positive neighbours} s·(r - b) / Σ s, straight from the definitions."""
    S = model.similarity_.toarray()
    R = model.ratings_.toarray()
    rated = model.ratings_.copy()
    rated.data[:] = 1
    rated = rated.toarray().astype(bool)
    bl = model.baseline_
    b = bl.mu_ + bl.user_bias_[:, None] + bl.item_bias_[None, :]
    if isinstance(model, ItemKNN):
        cand = np.flatnonzero(rated[u] & (S[i] > 0))
        sims, resid = S[i, cand], R[u, cand] - b[u, cand]
    else:
        cand = np.flatnonzero(rated[:, i] & (S[u] > 0))
        sims, resid = S[u, cand], R[cand, i] - b[cand, i]
    top = np.lexsort((cand, -sims))[:k]
    pred = b[u, i] + (sims[top] @ resid[top] / sims[top].sum() if len(top) else 0.0)
    return float(np.clip(pred, *model.rating_range_))


def _brute_ranking(model, u: int, k: int) -> np.ndarray:
    S = model.similarity_.toarray()
    seen = model.seen_.toarray()
    pruned = np.zeros_like(S)
    for a in range(S.shape[0]):
        cols = np.flatnonzero(S[a] > 0)
        keep = cols[np.lexsort((cols, -S[a, cols]))][:k]
        pruned[a, keep] = S[a, keep]
    return seen[u] @ pruned if isinstance(model, ItemKNN) else pruned[u] @ seen


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("similarity", ["cosine", "pearson", "jaccard"])  # jaccard: many ties
@pytest.mark.parametrize("k", [1, 3, 50])
def test_rating_mode_matches_brute_force(small, cls, similarity, k):
    model = cls(k=k, similarity=similarity, shrinkage=2.0, mode="rating").fit(small)
    scores = model.score(model.user_ids_)
    rng = np.random.default_rng(k)
    for u in rng.choice(model.n_users, 8, replace=False):
        for i in rng.choice(model.n_items, 6, replace=False):
            assert scores[u, i] == pytest.approx(_brute_rating(model, u, i, k), abs=1e-5)
    # predict agrees with the full-catalogue scores, for any order of pairs and repeated pairs
    u = np.repeat(model.user_ids_[:5], 3)
    i = np.tile(model.item_ids_[[0, 7, 7]], 5)
    expected = scores[model.user_positions(u), model.item_positions(i)]
    assert model.predict(u, i) == pytest.approx(expected, abs=1e-6)  # float32 sums


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("k", [1, 4, 100])
def test_ranking_mode_matches_brute_force(small, cls, k):
    model = cls(k=k, similarity="jaccard", shrinkage=0, mode="ranking").fit(small)  # jaccard: many ties
    scores = model.score(model.user_ids_)
    for u in range(0, model.n_users, 4):
        assert scores[u] == pytest.approx(_brute_ranking(model, u, k), abs=1e-5)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("mode", ["rating", "ranking"])
def test_changing_k_after_fit_equals_refitting(small, cls, mode):
    model = cls(k=20, similarity="cosine", shrinkage=1.0, mode=mode).fit(small)
    users = model.user_ids_
    for k in [20, 3, 10, 25]:
        model.k = k
        fresh = cls(k=k, similarity="cosine", shrinkage=1.0, mode=mode).fit(small)
        pd.testing.assert_frame_equal(model.recommend(users, k=5), fresh.recommend(users, k=5))


# ---- the protocol --------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("mode", ["rating", "ranking"])
def test_recommend_never_returns_seen_items(small, cls, mode):
    model = cls(mode=mode).fit(small)
    recs = model.recommend(model.user_ids_, k=15)
    assert not recs.merge(small[[USER, ITEM]], on=[USER, ITEM]).shape[0]
    assert (recs.groupby(USER).size() == 15).all()
    assert model.predicts_ratings == (mode == "rating")


@pytest.mark.parametrize("cls", MODELS)
def test_unknown_users_and_items(small, cls):
    rating = cls(mode="rating").fit(small)
    baseline = rating.baseline_
    # unknown user, unknown item, both: the bias baseline
    users, items = np.array([9999, small[USER].iloc[0], 9999]), np.array([small[ITEM].iloc[0], 9999, 9999])
    assert rating.predict(users, items) == pytest.approx(baseline.predict(users, items))
    with pytest.raises(UnknownIdError, match="9999"):
        rating.recommend([9999])
    ranking = cls(mode="ranking").fit(small)
    assert ranking.predict(users, items) == pytest.approx([0.0, 0.0, 0.0])
    with pytest.raises(UnknownIdError):
        ranking.recommend([small[USER].iloc[0], 9999])


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("params, match", [
    ({"k": 0}, "k must be an integer >= 1"), ({"k": -3}, "k must be an integer >= 1"),
    ({"k": 2.5}, "k must be an integer >= 1"), ({"similarity": "euclid"}, "similarity must be one of"),
    ({"shrinkage": -1.0}, "shrinkage must be a finite number >= 0"), ({"mode": "best"}, "mode must be one of"),
])
def test_bad_hyper_parameters(cls, params, match):
    with pytest.raises(ValueError, match=match):
        cls(**params).fit(toy_ratings())


@pytest.mark.parametrize("cls", MODELS)
def test_k_changed_to_a_bad_value_after_fit(cls):
    model = cls().fit(toy_ratings())
    model.k = 0
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        model.predict(["Alice"], ["R3"])


@pytest.mark.parametrize("cls", MODELS)
def test_defaults_and_repr(cls):
    for mode in ["rating", "ranking"]:
        model = cls(mode=mode)
        assert model.get_params() == {**cls.DEFAULTS[mode], "mode": mode}
        assert repr(model).startswith(f"{cls.__name__}(k=")


@pytest.mark.parametrize("cls", MODELS)
def test_deterministic(small, cls):
    a = cls().fit(small).recommend(np.sort(small[USER].unique()), k=10)
    b = cls().fit(small.sample(frac=1, random_state=0)).recommend(np.sort(small[USER].unique()), k=10)
    pd.testing.assert_frame_equal(a, b)


def test_rating_predictions_are_clipped_to_the_training_range():
    ratings = toy_ratings()
    for cls in MODELS:
        model = cls(k=2, similarity="cosine", shrinkage=0).fit(ratings)
        pred = model.score(model.user_ids_)
        assert pred.min() >= ratings[RATING].min() and pred.max() <= ratings[RATING].max()


def test_neighbours_helper():
    model = ItemKNN(k=5, similarity="jaccard", shrinkage=0, mode="ranking").fit(toy_purchases())
    table = model.neighbours("i2")
    assert table[ITEM].tolist() == ["i3", "i1", "i4"]  # 1.0, then the 0.5 tie broken by movieId
    assert table["similarity"].tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert UserKNN(k=5, similarity="cosine", shrinkage=0).fit(toy_purchases()).neighbours("u")[USER].tolist() == ["v"]
    with pytest.raises(KeyError, match="not in the training data"):
        model.neighbours("i9")


# ---- the vectorised scoring against the from-scratch loops (issue 21) --------------------------------------
@pytest.fixture(scope="module")
def skewed():
    """A long-tailed data set: some users rate many films, so both the partition path and the
    'fewer films than k' path of ItemKNN's rating mode run; ties from a coarse rating scale."""
    ratings = make_synthetic(n_users=40, n_items=60, ratings_per_user=15, seed=11).ratings
    ratings = ratings.drop_duplicates([USER, ITEM])
    heavy = ratings[USER].unique()[:3]
    rng = np.random.default_rng(0)
    extra = pd.DataFrame([(u, i, float(rng.integers(1, 6)), 0) for u in heavy for i in ratings[ITEM].unique()[:45]],
                         columns=[USER, ITEM, RATING, "timestamp"])
    return pd.concat([ratings, extra]).drop_duplicates([USER, ITEM]).reset_index(drop=True)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("mode", ["rating", "ranking"])
@pytest.mark.parametrize("similarity", ["cosine", "adjusted_cosine", "centered_cosine", "pearson", "jaccard"])
@pytest.mark.parametrize("shrinkage", [0.0, 5.0])
@pytest.mark.parametrize("k", [2, 12, 200])
def test_vectorised_scores_equal_the_loop(skewed, cls, mode, similarity, shrinkage, k):
    model = cls(k=k, similarity=similarity, shrinkage=shrinkage, mode=mode).fit(skewed)
    scores = model.score(model.user_ids_)
    for u in range(0, model.n_users, 3):
        expected = ([_brute_rating(model, u, i, k) for i in range(model.n_items)] if mode == "rating"
                    else _brute_ranking(model, u, k))
        assert scores[u] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("mode", ["rating", "ranking"])
def test_predict_for_pairs_equals_row_scoring(skewed, cls, mode):
    model = cls(k=7, mode=mode).fit(skewed)
    scores = model.score(model.user_ids_)
    rng = np.random.default_rng(5)
    u = rng.choice(model.n_users, 300)
    i = rng.choice(model.n_items, 300)
    u[:10], i[:10] = u[0], i[0]  # repeated pairs
    got = model.predict(model.user_ids_[u], model.item_ids_[i])
    assert got == pytest.approx(scores[u, i], rel=1e-6, abs=1e-6)
    model.k = 3  # the cut follows k after fit, for pairs too
    assert model.predict(model.user_ids_[u], model.item_ids_[i]) == pytest.approx(
        model.score(model.user_ids_)[u, i], rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("cls", MODELS)
def test_batch_scores_equal_one_user_at_a_time(skewed, cls):
    """A batch of users goes through the compiled film-by-film kernel (ItemKNN: at least _KERNEL_MIN_USERS
    users); a single user through the per-user path (ItemKNN) or the kernel for one row (UserKNN)."""
    for k in (2, 12):
        model = cls(k=k).fit(skewed)
        assert model.n_users >= neighbors._KERNEL_MIN_USERS
        batch = model.score(model.user_ids_)
        alone = np.vstack([model.score(model.user_ids_[u:u + 1]) for u in range(model.n_users)])
        np.testing.assert_allclose(batch, alone, rtol=0, atol=1e-12)


def test_sorted_rows_order_values_then_columns():
    from recsys_course.similarity import prune_top_k, sorted_rows
    rng = np.random.default_rng(2)
    dense = np.round(rng.random((30, 50)), 1).astype(np.float32)  # many ties
    dense[dense < 0.4] = 0
    S = sp.csr_matrix(dense)
    cols, vals = sorted_rows(S)
    for a in range(30):
        lo, hi = S.indptr[a], S.indptr[a + 1]
        nz = np.flatnonzero(dense[a])
        order = nz[np.lexsort((nz, -dense[a, nz]))]
        assert cols[lo:hi].tolist() == order.tolist()
        assert vals[lo:hi].tolist() == dense[a, order].tolist()
    # float64 or negative values take the lexsort route, with the same order
    cols64, vals64 = sorted_rows(S.astype(np.float64) * -1.0)
    assert len(cols64) == S.nnz and (np.diff(vals64[:S.indptr[1]]) <= 0).all()  # largest (least negative) first
    # the first k of each sorted row is prune_top_k
    from recsys_course.models.neighbors import _first_k
    for k in [1, 3, 60]:
        assert (_first_k(S, cols, vals, k) != prune_top_k(S, k)).nnz == 0

"""Explanations (notebook 13, section 5): exact decompositions, SASRec's attention, the surrogate, the deletion test."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course import explain as X
from recsys_course.config import ITEM, RATING, USER
from recsys_course.data import toy_ratings
from recsys_course.features import item_features
from recsys_course.models.base import NotFittedError, Recommender, UnknownIdError
from recsys_course.models.baselines import BiasBaseline
from recsys_course.models.factorization import EASE
from recsys_course.models.neighbors import ItemKNN
from recsys_course.models.sequential import SASRec
from recsys_course.models.temporal import DecayedItemKNN
from recsys_course.synthetic import make_synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world():
    return make_synthetic(n_users=40, n_items=60, ratings_per_user=15, seed=3)


@pytest.fixture(scope="module")
def knn_ranking(world):
    return ItemKNN(k=5, mode="ranking").fit(world.ratings)


@pytest.fixture(scope="module")
def knn_rating(world):
    return ItemKNN(k=3, mode="rating").fit(world.ratings)


@pytest.fixture(scope="module")
def ease(world):
    return EASE(reg=20.0, min_item_count=3).fit(world.ratings)


@pytest.fixture(scope="module")
def sasrec(world):
    return SASRec(n_factors=8, n_blocks=2, n_heads=2, max_len=6, n_epochs=1, val_size=None, verbose=False,
                  n_negatives=16).fit(world.ratings)


def _cosine(R):
    norms = np.linalg.norm(R, axis=0)
    S = (R.T @ R) / np.outer(norms, norms)
    np.fill_diagonal(S, 0.0)
    return np.where(S > 0, S, 0.0)


def _pruned_by_hand(S, k):
    """Each row's k largest positive entries (ties → the lower column), the rest 0."""
    out = np.zeros_like(S)
    for j in range(len(S)):
        order = sorted(range(S.shape[1]), key=lambda c: (-S[j, c], c))[:k]
        for c in order:
            if S[j, c] > 0:
                out[j, c] = S[j, c]
    return out


# ---- exact decompositions ---------------------------------------------------------------------
def test_knn_ranking_decomposition_sums_to_score_and_matches_a_by_hand_model(world, knn_ranking):
    m = knn_ranking
    S = m.similarity_.toarray().astype(np.float64)
    Sk = _pruned_by_hand(S, m.k)
    seen = m.seen_.toarray()
    for user in m.user_ids_[:8]:
        u = m.user_positions([user])[0]
        row = m.score([user])[0]
        for i in np.flatnonzero(row > 0)[:10]:
            e = X.contributions(m, user, m.item_ids_[i])
            assert e.baseline == 0.0 and not e.clipped
            assert e.total == pytest.approx(e.score, rel=1e-6, abs=1e-9)
            assert e.total == pytest.approx(seen[u] @ Sk[:, i], rel=1e-6)
            # one row per rated film, each its pruned similarity to the target
            by_film = e.contributions.set_index(ITEM)["contribution"]
            films = m.item_ids_[np.flatnonzero(seen[u])]
            assert sorted(by_film.index) == sorted(films)
            np.testing.assert_allclose(by_film.loc[films].to_numpy(), Sk[np.flatnonzero(seen[u]), i], rtol=1e-6)


def test_knn_rating_decomposition_is_the_baseline_plus_the_normalised_sum(knn_rating):
    m = knn_rating
    S = m.similarity_.toarray().astype(np.float64)
    bl = m.baseline_
    R = m.ratings_.toarray()
    some_unclipped = 0
    for user in m.user_ids_[:6]:
        u = m.user_positions([user])[0]
        rated = np.flatnonzero(R[u])
        for i in range(0, m.n_items, 7):
            e = X.contributions(m, user, m.item_ids_[i])
            b_ui = bl.mu_ + bl.user_bias_[u] + bl.item_bias_[i]
            nbrs = sorted(rated, key=lambda j: (-S[i, j], j))[:m.k]
            nbrs = [j for j in nbrs if S[i, j] > 0]
            resid = {j: R[u, j] - (bl.mu_ + bl.user_bias_[u] + bl.item_bias_[j]) for j in rated}
            den = sum(S[i, j] for j in nbrs)
            by_hand = b_ui + (sum(S[i, j] * resid[j] for j in nbrs) / den if den > 0 else 0.0)
            assert e.baseline == pytest.approx(b_ui, abs=1e-9)
            assert e.total == pytest.approx(by_hand, abs=1e-5)
            lo, hi = m.rating_range_
            assert np.clip(e.total, lo, hi) == pytest.approx(e.score, abs=1e-5)
            assert e.score == pytest.approx(m.predict([user], [m.item_ids_[i]])[0], abs=1e-6)
            assert e.clipped == (not lo <= e.total <= hi)
            some_unclipped += not e.clipped
            assert (e.contributions["contribution"] != 0).sum() <= m.k
    assert some_unclipped > 10


def test_knn_rating_on_the_toy_ratings_by_hand():
    toy = toy_ratings()
    m = ItemKNN(k=2, mode="rating").fit(toy)
    R = m.ratings_.toarray()
    S = _cosine(R)
    np.testing.assert_allclose(m.similarity_.toarray(), S, atol=1e-6)
    e = X.contributions(m, "Dan", "A1")              # Dan rated A2, R1, R2; A1's 2 nearest of them
    bl = m.baseline_
    u, i = m.user_positions(["Dan"])[0], m.item_positions(["A1"])[0]
    rated = np.flatnonzero(R[u])
    nbrs = sorted(rated, key=lambda j: (-S[i, j], j))[:2]
    resid = R[u, nbrs] - (bl.mu_ + bl.user_bias_[u] + bl.item_bias_[nbrs])
    expected = bl.mu_ + bl.user_bias_[u] + bl.item_bias_[i] + S[i, nbrs] @ resid / S[i, nbrs].sum()
    assert e.total == pytest.approx(expected, abs=1e-6)
    assert e.total == pytest.approx(m.predict(["Dan"], ["A1"])[0], abs=1e-6)
    assert (e.contributions["contribution"] != 0).sum() == 2


def test_ease_decomposition_is_x_times_b(ease):
    m = ease
    for user in m.user_ids_[:10]:
        u = m.user_positions([user])[0]
        x = m.X_[u].toarray().ravel().astype(np.float64)
        top = m.recommend([user], k=3)[ITEM]
        for item in top:
            col = int(np.flatnonzero(m.modelled_ == m.item_positions([item])[0])[0])
            e = X.contributions(m, user, item)
            assert e.total == pytest.approx(e.score, rel=1e-5)
            assert e.total == pytest.approx(x @ m.B_[:, col].astype(np.float64), rel=1e-6)
            assert e.cited == e.contributions.sort_values("contribution", ascending=False)[ITEM].iloc[0]
            assert (e.contributions["contribution"] == e.contributions["value"] * e.contributions["weight"]).all()
            assert e.contributions["contribution"].is_monotonic_decreasing


def test_ease_refuses_an_unmodelled_film(world):
    m = EASE(reg=20.0, min_item_count=12).fit(world.ratings)
    unmodelled = np.setdiff1d(np.arange(m.n_items), m.modelled_)
    assert len(unmodelled)
    with pytest.raises(ValueError, match="does not model film"):
        X.contributions(m, m.user_ids_[0], m.item_ids_[unmodelled[0]])


def test_because_names_the_largest_contributions(ease):
    user = ease.user_ids_[0]
    item = ease.recommend([user], k=1)[ITEM].iloc[0]
    e = X.contributions(ease, user, item)
    titles = pd.Series({m: f"film {m}" for m in ease.item_ids_})
    sentence = e.because(titles, n=2)
    assert sentence.startswith(f"film {item}, because you rated film {e.cited}")


# ---- rescoring without a film -------------------------------------------------------------------
def test_scores_without_nothing_is_the_models_score(knn_ranking, knn_rating, ease, sasrec):
    for m in (knn_ranking, knn_rating, ease, sasrec):
        user = m.user_ids_[2]
        np.testing.assert_array_equal(X.scores_without(m, user, []), m.score([user])[0])


def test_scores_without_a_film_rescores_the_shorter_history(knn_ranking, knn_rating, ease, sasrec):
    user = knn_ranking.user_ids_[4]
    # EASE: x_u with the film zeroed, times B
    u = ease.user_positions([user])[0]
    x = ease.X_[u].toarray().ravel().astype(np.float64)
    film_col = int(np.flatnonzero(x)[0])
    x[film_col] = 0.0
    got = X.scores_without(ease, user, [ease.item_ids_[ease.modelled_[film_col]]])
    np.testing.assert_allclose(got[ease.modelled_], x @ ease.B_.astype(np.float64), rtol=1e-5, atol=1e-6)
    assert np.isneginf(np.delete(got, ease.modelled_)).all()
    # ItemKNN ranking: the sum of the pruned rows of the remaining films
    m = knn_ranking
    Sk = _pruned_by_hand(m.similarity_.toarray().astype(np.float64), m.k)
    seen = m.seen_.toarray()[m.user_positions([user])[0]]
    gone = np.flatnonzero(seen)[:2]
    seen[gone] = 0
    np.testing.assert_allclose(X.scores_without(m, user, m.item_ids_[gone]), seen @ Sk, rtol=1e-5, atol=1e-6)
    # ItemKNN rating: every film's neighbours chosen again among the remaining films
    m = knn_rating
    u = m.user_positions([user])[0]
    S, R, bl = m.similarity_.toarray().astype(np.float64), m.ratings_.toarray(), m.baseline_
    rated = list(np.flatnonzero(R[u]))
    gone = rated[1]
    left = [j for j in rated if j != gone]
    expected = []
    for i in range(m.n_items):
        nbrs = [j for j in sorted(left, key=lambda j: (-S[i, j], j))[:m.k] if S[i, j] > 0]
        den = sum(S[i, j] for j in nbrs)
        num = sum(S[i, j] * (R[u, j] - bl.mu_ - bl.user_bias_[u] - bl.item_bias_[j]) for j in nbrs)
        expected.append(bl.mu_ + bl.user_bias_[u] + bl.item_bias_[i] + (num / den if den > 0 else 0.0))
    np.testing.assert_allclose(X.scores_without(m, user, [m.item_ids_[gone]]), np.clip(expected, *m.rating_range_),
                               atol=1e-5)
    # SASRec: the sequence without the film, continued
    s = sasrec
    u = s.user_positions([user])[0]
    seq = s.item_ids_[s.seq_[s.seq_indptr_[u]:s.seq_indptr_[u + 1]]]
    np.testing.assert_allclose(X.scores_without(s, user, [seq[-2]]), s.next_item_scores(np.delete(seq, -2))[-1])
    assert not np.allclose(X.scores_without(s, user, [seq[-2]]), s.score([user])[0])


def test_removing_the_cited_film_lowers_the_score_most(ease, knn_ranking):
    for m in (ease, knn_ranking):
        user = m.user_ids_[7]
        item = m.recommend([user], k=1)[ITEM].iloc[0]
        i = m.item_positions([item])[0]
        e = X.contributions(m, user, item)
        after = {j: X.scores_without(m, user, [j])[i] for j in e.contributions[ITEM]}
        assert min(after, key=lambda j: (after[j], j)) == e.cited or after[e.cited] == pytest.approx(min(after.values()))
        assert after[e.cited] == pytest.approx(e.score - e.contributions["contribution"].iloc[0], rel=1e-5, abs=1e-6)


# ---- attention -------------------------------------------------------------------------------------
def test_recomputed_attention_reproduces_the_network(sasrec):
    import torch

    net = sasrec.module_
    tokens = np.array([[3, 5, 7, 0, 0, 0], [1, 2, 3, 4, 5, 6], [9, 0, 0, 0, 0, 0]])
    states, weights = X.attention_weights(sasrec, tokens)
    with torch.no_grad():
        for block in net.blocks:
            block.attn.keep_attention = True
        try:
            ref = net(torch.as_tensor(tokens)).numpy()
            stored = [block.attn.attention_.numpy() for block in net.blocks]
        finally:
            for block in net.blocks:
                block.attn.keep_attention = False
    np.testing.assert_allclose(states, ref, atol=1e-5)
    assert len(weights) == 2 and weights[0].shape == (3, 2, 6, 6)
    for w, s in zip(weights, stored):
        np.testing.assert_allclose(w, s, atol=1e-6)
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
        assert np.all(w[..., np.triu_indices(6, 1)[0], np.triu_indices(6, 1)[1]] == 0)   # causal


def test_attention_of_a_user_covers_their_window(sasrec):
    user = sasrec.user_ids_[1]
    frame = X.attention(sasrec, user)
    u = sasrec.user_positions([user])[0]
    seq = sasrec.item_ids_[sasrec.seq_[sasrec.seq_indptr_[u]:sasrec.seq_indptr_[u + 1]]]
    assert frame[ITEM].tolist() == seq[-sasrec.max_len:].tolist()
    assert frame["attention"].sum() == pytest.approx(1.0)
    assert frame["position"].tolist() == list(range(1, len(frame) + 1))
    _, w = X.attention_weights(sasrec, (sasrec.item_positions(frame[ITEM]) + 1)[None])
    np.testing.assert_allclose(X.attention(sasrec, user, block=0)["attention"], w[0][0, :, -1].mean(0))
    np.testing.assert_array_equal(X.explained_films(sasrec, user), frame[ITEM].to_numpy())
    with pytest.raises(ValueError, match="block"):
        X.attention(sasrec, user, block=2)


# ---- the surrogate ----------------------------------------------------------------------------------
class _LinearInFeatures(Recommender):
    """A test model whose scores are exactly a linear function of the films' genre features."""

    def __init__(self, matrix, weights):
        self.matrix, self.weights = matrix, weights

    def _fit(self, train, users, items):
        self.item_scores_ = np.asarray(self.matrix @ self.weights).ravel()

    def _score_users(self, users):
        return np.tile(self.item_scores_, (len(users), 1))

    def _predict(self, users, items):
        return self.item_scores_[items]


def test_surrogate_recovers_a_linear_model(world):
    feats = item_features(world.movies, weights={"title": 0, "year": 0})
    w_true = np.zeros(feats.shape[1])
    w_true[[0, 3]] = [2.0, -1.0]
    model = _LinearInFeatures(feats.matrix, w_true).fit(world.ratings)
    s = X.fit_surrogate(model, model.user_ids_[0], feats, alpha=1e-4)
    assert s.r2 > 0.99 and s.r2_train > 0.99
    assert list(s.top(2).index) == [feats.feature_names[0], feats.feature_names[3]]
    assert s.coef.iloc[0] > 0 > s.coef.iloc[1]
    assert s.n_films + len(np.flatnonzero(model.seen_[0].toarray())) == model.n_items
    # it cites the rated film sharing the credited feature of the target
    target = model.item_ids_[np.flatnonzero(feats.matrix[:, 0].toarray().ravel())[0]]
    other = model.item_ids_[np.flatnonzero(feats.matrix[:, 3].toarray().ravel())[0]]
    same = model.item_ids_[np.flatnonzero(feats.matrix[:, 0].toarray().ravel())[1]]
    assert s.cite([other, same], target) == same
    # same seed, same surrogate
    again = X.fit_surrogate(model, model.user_ids_[0], feats, alpha=1e-4)
    np.testing.assert_array_equal(s.weights, again.weights)
    assert s.r2 == again.r2


def test_surrogate_is_deterministic_on_ease(world, ease):
    feats = item_features(world.movies, weights={"title": 0, "year": 0})
    a = X.fit_surrogate(ease, ease.user_ids_[3], feats, seed=1)
    b = X.fit_surrogate(ease, ease.user_ids_[3], feats, seed=1)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.r2 == b.r2 and a.n_test == round(0.2 * a.n_films)


# ---- the deletion test ------------------------------------------------------------------------------
def test_deletion_test_ranks_by_hand_and_is_deterministic(ease):
    users = ease.user_ids_[:12]
    result = X.deletion_test(ease, users, cite="contribution", seed=5)
    assert len(result) == 12 and result[USER].tolist() == list(users)
    for row in result.itertuples(index=False):
        e = X.contributions(ease, row.userId, row.movieId)
        assert row.cited == e.cited and row.random != row.cited
        assert row.random in set(X.explained_films(ease, row.userId))
        for film, rank in ((row.cited, row.rank_cited), (row.random, row.rank_random)):
            scores = X.scores_without(ease, row.userId, [film])
            u = ease.user_positions([row.userId])[0]
            scores[ease.seen_[u].indices] = -np.inf
            order = np.lexsort((np.arange(len(scores)), -scores))
            assert rank == int(np.flatnonzero(ease.item_ids_[order] == row.movieId)[0]) + 1
    assert (result["drop_cited"] == result["rank_cited"] - 1).all()
    again = X.deletion_test(ease, users, cite="contribution", seed=5)
    pd.testing.assert_frame_equal(result, again)
    other = X.deletion_test(ease, users, cite="contribution", seed=6)
    assert (other["random"] != result["random"]).any()
    summary = X.summarise_deletion(result)
    assert summary["n_users"] == 12
    assert summary["share_cited_larger"] + summary["share_tied"] + summary["share_random_larger"] == pytest.approx(1)
    assert summary["mean_drop_cited"] == pytest.approx(result["drop_cited"].mean())


def test_deletion_test_with_attention_and_with_the_surrogate(world, sasrec, ease):
    users = sasrec.user_ids_[:5]
    result = X.deletion_test(sasrec, users, cite="attention")
    for row in result.itertuples(index=False):
        frame = X.attention(sasrec, row.userId)
        assert row.cited == frame.loc[frame["attention"].idxmax(), ITEM]
        assert row.random in set(frame[ITEM])
    feats = item_features(world.movies, weights={"title": 0, "year": 0})
    surrogate = X.deletion_test(ease, ease.user_ids_[:4], cite="surrogate", features=feats)
    assert "r2" in surrogate.columns and len(surrogate) == 4


# ---- errors ------------------------------------------------------------------------------------------
def test_errors_name_the_problem_and_the_fix(world, ease, sasrec, knn_ranking):
    user, film = ease.user_ids_[0], ease.item_ids_[ease.modelled_[0]]
    with pytest.raises(NotFittedError, match="call .fit"):
        X.contributions(EASE(), user, film)
    with pytest.raises(NotFittedError, match="call .fit"):
        X.attention(SASRec(), user)
    with pytest.raises(UnknownIdError, match="pick a user of model.user_ids_"):
        X.contributions(ease, -99, film)
    with pytest.raises(UnknownIdError, match="pick a film of model.item_ids_"):
        X.contributions(knn_ranking, user, -99)
    with pytest.raises(UnknownIdError, match="user -99"):
        X.attention(sasrec, -99)
    with pytest.raises(TypeError, match="supports ItemKNN, EASE only, got BiasBaseline"):
        X.contributions(BiasBaseline().fit(world.ratings), user, film)
    with pytest.raises(TypeError, match="subclass scores differently"):
        X.contributions(DecayedItemKNN().fit(world.ratings), user, film)
    with pytest.raises(TypeError, match="supports SASRec only"):
        X.attention(ease, user)
    unrated = np.setdiff1d(ease.item_ids_, ease.item_ids_[ease.seen_[0].indices])[0]
    with pytest.raises(ValueError, match="not in user .* training history"):
        X.scores_without(ease, user, [unrated])
    with pytest.raises(ValueError, match="cite must be one of"):
        X.deletion_test(ease, [user], cite="gradient")
    with pytest.raises(TypeError, match="needs features"):
        X.deletion_test(ease, [user], cite="surrogate")
    with pytest.raises(TypeError, match="ItemFeatures"):
        X.fit_surrogate(ease, user, features=np.eye(3))
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        X.fit_surrogate(ease, user, item_features(world.movies), alpha=0)
    with pytest.raises(ValueError, match="missing column"):
        X.summarise_deletion(pd.DataFrame({RATING: [1.0]}))

"""recsys_course.models.factorization: closed forms against direct solves, and the model protocol."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.metrics import rmse
from recsys_course.models import (
    ALS,
    BPR,
    EASE,
    BiasBaseline,
    BiasedMF,
    GlobalMean,
    ImplicitALS,
    PureSVD,
    UnknownIdError,
)
from recsys_course.models.factorization import (
    als_half_step,
    ease_weights,
    implicit_als_half_step,
    implicit_als_half_step_cg,
    similar_items,
)
from recsys_course.split import per_user_temporal_split
from recsys_course.synthetic import make_synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {
    "BiasedMF": lambda: BiasedMF(n_factors=4, n_epochs=4, batch_size=256, lr=0.01, verbose=False),
    "ALS": lambda: ALS(n_factors=4, reg=5.0, n_iters=3),
    "PureSVD": lambda: PureSVD(n_factors=4),
    "ImplicitALS": lambda: ImplicitALS(n_factors=4, reg=1.0, n_iters=3),
    "BPR": lambda: BPR(n_factors=4, n_epochs=2, batch_size=256, verbose=False),
    "EASE": lambda: EASE(reg=10.0, min_item_count=1),
}


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_users=60, n_items=80, ratings_per_user=20, seed=3).ratings


@pytest.fixture(scope="module")
def fitted(synthetic):
    return {name: make().fit(synthetic) for name, make in FAST.items()}


def _random_sparse(rows, cols, density, seed, low=0.5, high=5.0):
    rng = np.random.default_rng(seed)
    mask = rng.random((rows, cols)) < density
    mask[0] = False  # an empty row
    mask[1, :] = True  # a full row
    values = np.where(mask, np.round(rng.uniform(low, high, (rows, cols)) * 2) / 2, 0.0)
    return sp.csr_matrix(values), mask, values


# --------------------------------------------------------------------------------------------
# closed forms
# --------------------------------------------------------------------------------------------
def test_als_half_step_equals_direct_solve():
    R, mask, values = _random_sparse(7, 9, 0.4, seed=0)
    Y = np.random.default_rng(1).normal(size=(9, 3))
    lam = 0.7
    got = als_half_step(R, Y, lam)
    for u in range(7):
        cols = np.flatnonzero(mask[u])
        Qu = Y[cols]
        want = np.linalg.solve(Qu.T @ Qu + lam * np.eye(3), Qu.T @ values[u, cols]) if len(cols) else np.zeros(3)
        np.testing.assert_allclose(got[u], want, atol=1e-12)
    assert np.all(got[0] == 0)  # a user without ratings keeps a zero vector


def test_als_half_step_keeps_explicit_zero_residuals():
    # a stored 0 is an observed residual of 0, not a missing entry
    R = sp.csr_matrix((np.array([0.0, 2.0]), (np.array([0, 0]), np.array([0, 1]))), shape=(1, 2))
    Y = np.array([[1.0], [1.0]])
    assert np.isclose(als_half_step(R, Y, 1.0)[0, 0], 2.0 / 3.0)  # (1 + 1 + 1)^-1 * (0 + 2)


def test_implicit_half_step_equals_brute_force_weighted_least_squares():
    R, mask, values = _random_sparse(6, 8, 0.4, seed=2, low=1.0, high=5.0)
    Y = np.random.default_rng(3).normal(size=(8, 3))
    lam, alpha = 0.5, 2.0
    got = implicit_als_half_step(R, Y, lam, alpha)
    systems = []
    for u in range(6):
        c = 1.0 + alpha * values[u]            # c_ui = 1 + alpha r_ui (1 where r_ui = 0)
        p = (values[u] > 0).astype(float)      # p_ui = 1[r_ui > 0]
        C = np.diag(c)
        A = Y.T @ C @ Y + lam * np.eye(3)
        systems.append(A)
        want = np.linalg.solve(A, Y.T @ C @ p)
        np.testing.assert_allclose(got[u], want, atol=1e-12)
    # conjugate gradient: exact after k steps; one warm-started step shrinks the error in the A-norm
    np.testing.assert_allclose(implicit_als_half_step_cg(R, Y, np.zeros((6, 3)), lam, alpha, steps=3), got,
                               atol=1e-8)
    warm = got + np.random.default_rng(5).normal(0, 0.01, got.shape)
    one = implicit_als_half_step_cg(R, Y, warm, lam, alpha, steps=1)
    for u, A in enumerate(systems):
        before, after = warm[u] - got[u], one[u] - got[u]
        assert after @ A @ after <= before @ A @ before + 1e-15


def test_ease_closed_form_matches_constrained_least_squares():
    R, mask, _ = _random_sparse(12, 6, 0.5, seed=4)
    X = mask.astype(float)
    lam = 3.0
    B = ease_weights(X, lam)
    assert np.allclose(np.diag(B), 0.0)
    # diag(B) = 0 decouples the columns: column j is a ridge regression of X[:, j] on the other columns
    for j in range(6):
        others = [c for c in range(6) if c != j]
        Xo = X[:, others]
        want = np.linalg.solve(Xo.T @ Xo + lam * np.eye(5), Xo.T @ X[:, j])
        np.testing.assert_allclose(B[others, j], want, atol=1e-10)
    np.testing.assert_allclose(ease_weights(sp.csr_matrix(X), lam, dtype=np.float32), B, atol=1e-5)


def test_puresvd_scores_are_the_projection_on_the_top_singular_vectors():
    ratings = make_synthetic(n_users=30, n_items=25, ratings_per_user=8, seed=5).ratings
    model = PureSVD(n_factors=3).fit(ratings)
    R = np.zeros((model.n_users, model.n_items))
    R[model.user_positions(ratings[USER]), model.item_positions(ratings[ITEM])] = ratings[RATING]
    _, _, Vt = np.linalg.svd(R, full_matrices=False)
    V = Vt[:3].T
    np.testing.assert_allclose(model.score(model.user_ids_), R @ V @ V.T, atol=1e-8)


def test_similar_items_by_cosine():
    factors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    out = similar_items(factors, [10, 20, 30, 40], [10], n=3)
    assert out[ITEM].tolist() == [20, 30, 40] and out["rank"].tolist() == [1, 2, 3]
    assert np.isclose(out["similarity"].iloc[-1], -1.0)
    with pytest.raises(UnknownIdError):
        similar_items(factors, [10, 20, 30, 40], [99])


# --------------------------------------------------------------------------------------------
# training behaviour
# --------------------------------------------------------------------------------------------
def test_biased_mf_is_deterministic_and_beats_global_mean():
    data = make_synthetic(n_users=120, n_items=100, ratings_per_user=30, noise=0.3, seed=1).ratings
    train, test = per_user_temporal_split(data, 0.2)
    make = lambda: BiasedMF(n_factors=8, lr=0.02, reg=0.02, n_epochs=20, batch_size=512, device="cpu",  # noqa: E731
                            seed=7, verbose=False)
    first, second = make().fit(train), make().fit(train)
    p1, p2 = first.predict(test[USER], test[ITEM]), second.predict(test[USER], test[ITEM])
    assert np.array_equal(p1, p2)
    assert first.history_.n_epochs >= first.best_epoch_ >= 1
    global_mean = rmse(test[RATING], GlobalMean().fit(train).predict(test[USER], test[ITEM]))
    biases = rmse(test[RATING], BiasBaseline().fit(train).predict(test[USER], test[ITEM]))
    assert rmse(test[RATING], p1) < global_mean - 0.05
    assert rmse(test[RATING], p1) < biases  # the factors add something on data made of factors


def test_als_never_increases_its_training_loss(synthetic):
    model = ALS(n_factors=4, reg=1.0, n_iters=6).fit(synthetic)
    diffs = np.diff(model.train_rmse_)
    assert (diffs <= 1e-9).all() and model.train_rmse_[-1] < model.train_rmse_[0]


def test_bpr_loss_falls(synthetic):
    model = BPR(n_factors=8, lr=0.02, n_epochs=5, batch_size=128, val_size=None, min_rating=None, n_negatives=1,
                verbose=False).fit(synthetic)
    assert len(model.loss_) == 5 and model.loss_[-1] < model.loss_[0]


def test_bpr_early_stopping_records_a_history(synthetic):
    model = BPR(n_factors=4, n_epochs=3, batch_size=256, val_size=3, patience=1, verbose=False).fit(synthetic)
    assert model.history_ is not None and 1 <= model.best_epoch_ <= model.history_.n_epochs <= 3
    assert len(model.loss_) == model.best_epoch_  # the refit trains for the chosen number of epochs


def test_ease_unmodelled_items_are_never_recommended(synthetic):
    model = EASE(reg=5.0, min_item_count=12).fit(synthetic)
    counts = synthetic[ITEM].value_counts()
    rare = set(counts[counts < 12].index)
    assert rare, "the fixture should have rare items"
    recs = model.recommend(np.sort(synthetic[USER].unique()), k=50)
    assert not rare & set(recs[ITEM])
    user = synthetic[USER].iloc[0]
    assert np.isneginf(model.predict([user], [next(iter(rare))])).all()


def test_implicit_als_cg_and_exact_agree(synthetic):
    exact = ImplicitALS(n_factors=4, reg=1.0, n_iters=4, solver="exact").fit(synthetic)
    cg = ImplicitALS(n_factors=4, reg=1.0, n_iters=4, solver="cg", cg_steps=4).fit(synthetic)
    users = exact.user_ids_
    assert np.abs(exact.score(users) - cg.score(users)).max() < 1e-3


# --------------------------------------------------------------------------------------------
# protocol: seen items, unknown ids, bad hyper-parameters
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FAST))
def test_recommend_never_returns_seen_items(name, fitted, synthetic):
    users = np.sort(synthetic[USER].unique())
    recs = fitted[name].recommend(users, k=15)
    assert len(recs) > 0
    assert recs.merge(synthetic[[USER, ITEM]], on=[USER, ITEM]).empty
    assert (recs.groupby(USER)["score"].apply(lambda s: s.is_monotonic_decreasing)).all()


@pytest.mark.parametrize("name", list(FAST))
def test_unknown_users_cannot_get_recommendations(name, fitted):
    with pytest.raises(UnknownIdError, match="absent from its training data"):
        fitted[name].recommend([10_000])


@pytest.mark.parametrize("name", ["BiasedMF", "ALS"])
def test_rating_models_fall_back_to_biases(name, fitted, synthetic):
    model = fitted[name]
    user, item = synthetic[USER].iloc[0], synthetic[ITEM].iloc[0]
    u, i = model.user_positions([user])[0], model.item_positions([item])[0]
    lo, hi = model.rating_range_
    got = model.predict([10_000, user, 10_000], [item, 10_000, 10_001])
    want = np.clip([model.mu_ + model.item_bias_[i], model.mu_ + model.user_bias_[u], model.mu_], lo, hi)
    np.testing.assert_allclose(got, want)
    assert model.predicts_ratings


@pytest.mark.parametrize("name", ["PureSVD", "ImplicitALS", "BPR", "EASE"])
def test_ranking_models_on_unknown_ids(name, fitted, synthetic):
    model = fitted[name]
    user = synthetic[USER].iloc[0]
    assert np.isneginf(model.predict([user], [10_000])).all()
    assert np.isfinite(model.predict([user], [synthetic[ITEM].iloc[0]])).all()
    with pytest.raises(UnknownIdError):
        model.predict([10_000], [synthetic[ITEM].iloc[0]])
    assert not model.predicts_ratings


@pytest.mark.parametrize("make, words", [
    (lambda: BiasedMF(n_factors=0), "n_factors"),
    (lambda: BiasedMF(lr=0), "lr"),
    (lambda: BiasedMF(reg=-1), "reg"),
    (lambda: BiasedMF(val_size=1.5), "val_size"),
    (lambda: BiasedMF(val_split="middle"), "val_split"),
    (lambda: BiasedMF(weight_decay=-1), "weight_decay"),
    (lambda: BiasedMF(train_biases="yes"), "train_biases"),
    (lambda: BiasedMF(bias_init="mean"), "bias_init"),
    (lambda: BiasedMF(n_epochs=2.5), "n_epochs"),
    (lambda: ALS(reg=0), "reg"),
    (lambda: ALS(n_iters=0), "n_iters"),
    (lambda: PureSVD(n_factors=500), "n_factors"),
    (lambda: ImplicitALS(alpha=-1), "alpha"),
    (lambda: ImplicitALS(solver="lu"), "solver"),
    (lambda: BPR(n_negatives=0), "n_negatives"),
    (lambda: BPR(min_rating=9.0, val_size=None), "min_rating"),
    (lambda: BPR(val_size=0), "val_size"),
    (lambda: BPR(weight_decay=float("nan")), "weight_decay"),
    (lambda: EASE(reg=0), "reg"),
    (lambda: EASE(min_item_count=10_000), "min_item_count"),
    (lambda: EASE(dtype="float16"), "dtype"),
])
def test_bad_hyper_parameters_raise_clear_errors(make, words, synthetic):
    with pytest.raises(ValueError, match=words):
        make().fit(synthetic)


def test_early_stopping_needs_timestamps(synthetic):
    with pytest.raises(ValueError, match="timestamp"):
        BiasedMF(n_epochs=1, verbose=False).fit(synthetic.drop(columns=[TIME]))
    model = BiasedMF(n_epochs=2, val_size=None, verbose=False).fit(synthetic.drop(columns=[TIME]))
    assert model.best_epoch_ == 2 and model.history_ is None
    random = BiasedMF(n_epochs=2, val_split="random", verbose=False).fit(synthetic.drop(columns=[TIME]))
    assert random.history_ is not None and random.history_.metric_name == "val_rmse"


def test_score_shape_and_predict_agree(fitted, synthetic):
    for name, model in fitted.items():
        users = model.user_ids_[:3]
        scores = model.score(users)
        assert scores.shape == (3, model.n_items), name
        pair = model.predict(users, model.item_ids_[:3])
        if not model.predicts_ratings:  # ratings are clipped, scores are not
            np.testing.assert_allclose(pair, np.diag(scores[:, :3]), err_msg=name, atol=1e-6)


def test_get_params_round_trip():
    model = BiasedMF(n_factors=5, reg=0.3, verbose=False)
    assert model.get_params()["n_factors"] == 5 and "reg=0.3" in repr(model)
    assert isinstance(pd.DataFrame([BPR().get_params()]), pd.DataFrame)


# --------------------------------------------------------------------------------------------
# the networks and the shared protocol
# --------------------------------------------------------------------------------------------
def test_networks_are_importable_seeded_and_picklable():
    import pickle

    import torch

    from recsys_course.networks.factorization import BPRNet, MFNet

    make = lambda: MFNet(3, 4, 2, 3.5, np.zeros(3), np.zeros(4), 0.1, False,  # noqa: E731
                         torch.Generator().manual_seed(0))
    a, b = make(), make()
    assert torch.equal(a.P, b.P) and torch.equal(a.Q, b.Q) and not a.bu.requires_grad
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(a.P, torch.randn(3, 2, generator=gen) * 0.1)  # P first, then Q
    assert torch.equal(a.Q, torch.randn(4, 2, generator=gen) * 0.1)
    u, i = torch.tensor([0, 2]), torch.tensor([1, 3])
    assert torch.allclose(a(u, i), a.score_all(u)[torch.arange(2), i])
    net = BPRNet(3, 4, 2, 0.1, torch.Generator().manual_seed(0))
    assert torch.allclose(net(u, i), net.score_all(u)[torch.arange(2), i])
    again = pickle.loads(pickle.dumps(net))
    assert torch.equal(again.P, net.P)


def test_weight_decay_changes_the_fit_and_is_a_parameter(synthetic):
    plain = BiasedMF(n_factors=4, n_epochs=2, val_size=None, verbose=False).fit(synthetic)
    decayed = BiasedMF(n_factors=4, n_epochs=2, val_size=None, weight_decay=0.5, verbose=False).fit(synthetic)
    assert not np.allclose(plain.user_factors_, decayed.user_factors_)
    assert BPR().get_params()["weight_decay"] == 0.0 and BPR().val_split == "last"

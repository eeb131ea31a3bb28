"""Federated MF (FedAvg, DP-FedAvg): hand-worked steps, the central limit, Flower's FedAvg, privacy, bad input."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import ITEM, RATING, USER
from recsys_course.data import toy_ratings
from recsys_course.federated import (
    ClientRatings,
    FederatedMF,
    central_step,
    client_update,
    clip_updates,
    init_tables,
    local_training,
    mf_gradients,
    server_aggregate,
    zcdp_epsilon,
)
from recsys_course.models.base import NotFittedError, UnknownIdError
from recsys_course.synthetic import make_synthetic


def _toy_batch():
    df = toy_ratings()
    users = pd.Index(np.sort(df[USER].unique())).get_indexer(df[USER])
    items = pd.Index(np.sort(df[ITEM].unique())).get_indexer(df[ITEM])
    return ClientRatings.build(users, items, df[RATING].to_numpy(), 5), 5, 6


def test_one_local_step_by_hand():
    # one client, one film, k = 1: p = 0.5, q = 0.2, mu = 3, b = c = 0, r = 4, lambda = 0.1, eta = 0.1
    batch = ClientRatings.build([0], [0], [4.0], 1)
    P, bu, theta = np.array([[0.5]]), np.zeros(1), np.array([[0.2, 0.0]])
    P2, bu2, D = local_training(P, bu, theta, 3.0, batch, lr=0.1, reg=0.1, local_epochs=1)
    e = 4.0 - 3.0 - 0.5 * 0.2                                     # 0.9
    assert P2[0, 0] == pytest.approx(0.5 - 0.1 * (2 * (-e * 0.2) + 2 * 0.1 * 0.5))   # 0.526
    assert bu2[0] == pytest.approx(0.1 * 2 * e)                                        # 0.18
    assert D[0, 0] == pytest.approx(-0.1 * 2 * (-e * 0.5 + 0.1 * 0.2))                 # 0.086
    assert D[0, 1] == pytest.approx(0.1 * 2 * e)
    assert P2[0, 0] == pytest.approx(0.526) and D[0, 0] == pytest.approx(0.086)


def test_gradients_match_finite_differences():
    batch, n_u, n_i = _toy_batch()
    P, bu, theta = init_tables(n_u, n_i, 3, 0.3, seed=1)
    bu = np.linspace(-0.2, 0.2, n_u)
    theta[:, 3] = np.linspace(0.1, -0.1, n_i)
    loss, gP, gbu, gtheta = mf_gradients(P, bu, theta, 3.0, batch, reg=0.1)
    h = 1e-6
    for table, grad, idx in [(P, gP, (2, 1)), (bu, gbu, (3,)), (theta, gtheta, (4, 0)), (theta, gtheta, (1, 3))]:
        plus = table.copy()
        plus[idx] += h
        args = {id(P): (plus, bu, theta), id(bu): (P, plus, theta), id(theta): (P, bu, plus)}[id(table)]
        numeric = (mf_gradients(*args, 3.0, batch, reg=0.1)[0] - loss) / h
        assert grad[idx] == pytest.approx(numeric, abs=1e-4)


def test_fedavg_round_equals_central_step():
    """Every client, one local step, no clipping or noise: one FedAvg round = one full-batch step (to 1e-10)."""
    train = make_synthetic(n_users=30, n_items=40, ratings_per_user=8, seed=3).ratings
    kw = dict(n_factors=4, lr=0.1, server_lr=20.0, reg=0.05, n_rounds=3, local_epochs=1, participation=1.0)
    fed = FederatedMF(**kw).fit(train)
    cen = FederatedMF(central=True, **kw).fit(train)
    for name in ["user_factors_", "user_bias_", "item_factors_", "item_bias_"]:
        np.testing.assert_allclose(getattr(fed, name), getattr(cen, name), rtol=0, atol=1e-10)
    # and not by accident: several local steps or half of the clients move elsewhere
    other = FederatedMF(**{**kw, "local_epochs": 3}).fit(train)
    assert np.abs(other.item_factors_ - cen.item_factors_).max() > 1e-4


def test_central_step_is_gradient_descent_with_the_stated_steps():
    batch, n_u, n_i = _toy_batch()
    P, bu, theta = init_tables(n_u, n_i, 2, 0.3, seed=0)
    _, gP, gbu, gtheta = mf_gradients(P, bu, theta, 3.0, batch, reg=0.1)
    P2, bu2, theta2 = central_step(P, bu, theta, 3.0, batch, lr=0.1, server_lr=5.0, reg=0.1)
    n = len(batch.client)
    np.testing.assert_allclose(theta2, theta - 0.5 * gtheta)
    np.testing.assert_allclose(P2, P - (0.1 * n / batch.n_per_client)[:, None] * gP)
    np.testing.assert_allclose(bu2, bu - 0.1 * n / batch.n_per_client * gbu)


def test_server_aggregate_is_weighted_mean_of_dense_updates():
    batch, n_u, n_i = _toy_batch()
    P, bu, theta = init_tables(n_u, n_i, 2, 0.3, seed=0)
    _, _, D = local_training(P, bu, theta, 3.0, batch, lr=0.1, reg=0.1, local_epochs=2)
    weights = batch.n_per_client.astype(float)
    dense = [client_update(D, batch, u, n_i) for u in range(n_u)]
    by_loop = sum(w * d for w, d in zip(weights, dense)) / weights.sum()
    np.testing.assert_allclose(server_aggregate(D, batch, n_i, weights), by_loop, atol=1e-14)
    # only some clients: the average is over them
    part = batch.of(np.array([1, 3]))
    expected = (weights[1] * dense[1] + weights[3] * dense[3]) / (weights[1] + weights[3])
    np.testing.assert_allclose(server_aggregate(D[np.isin(batch.client, [1, 3])], part, n_i, weights), expected)


def test_server_aggregate_equals_flower_fedavg():
    flwr_aggregate = pytest.importorskip("flwr.server.strategy.aggregate",
                                         reason="flwr (Flower) is not installed: pip install flwr").aggregate
    batch, n_u, n_i = _toy_batch()
    P, bu, theta = init_tables(n_u, n_i, 2, 0.3, seed=0)
    _, _, D = local_training(P, bu, theta, 3.0, batch, lr=0.1, reg=0.1, local_epochs=2)
    results = [([client_update(D, batch, u, n_i)[:, :2], client_update(D, batch, u, n_i)[:, 2]],
                int(batch.n_per_client[u])) for u in range(n_u)]
    q, c = flwr_aggregate(results)
    ours = server_aggregate(D, batch, n_i, batch.n_per_client.astype(float))
    np.testing.assert_allclose(ours[:, :2], q, atol=1e-14)
    np.testing.assert_allclose(ours[:, 2], c, atol=1e-14)


def test_update_reveals_exactly_the_rated_films_and_clipping_bounds_it():
    batch, n_u, n_i = _toy_batch()
    P, bu, theta = init_tables(n_u, n_i, 2, 0.3, seed=0)
    _, _, D = local_training(P, bu, theta, 3.0, batch, lr=0.1, reg=0.1, local_epochs=1)
    for u in range(n_u):
        update = client_update(D, batch, u, n_i)
        np.testing.assert_array_equal(np.flatnonzero(np.abs(update).sum(1) > 0),
                                      np.sort(batch.item[batch.client == u]))
    clipped, norms = clip_updates(D, batch, 0.05)
    after = [np.linalg.norm(client_update(clipped, batch, u, n_i)) for u in range(n_u)]
    before = [np.linalg.norm(client_update(D, batch, u, n_i)) for u in range(n_u)]
    np.testing.assert_allclose(norms, before)
    np.testing.assert_allclose(after, np.minimum(before, 0.05))


def test_zcdp_epsilon():
    # rho = T / (2 z^2) = 1/2; eps = rho + 2 sqrt(rho ln(1/delta))
    assert zcdp_epsilon(1.0, 1, 1e-5) == pytest.approx(0.5 + 2 * math.sqrt(0.5 * math.log(1e5)))
    assert zcdp_epsilon(2.0, 8, 1e-5) == pytest.approx(zcdp_epsilon(1.0, 2, 1e-5))
    assert zcdp_epsilon(0.0, 10) == math.inf
    assert zcdp_epsilon(4.0, 10) < zcdp_epsilon(1.0, 10)
    with pytest.raises(ValueError, match="noise_multiplier must be a finite number >= 0.*0 means no noise"):
        zcdp_epsilon(-1.0, 10)
    with pytest.raises(ValueError, match="delta must be a number strictly between 0 and 1"):
        zcdp_epsilon(1.0, 10, delta=0.0)


def test_noise_costs_accuracy_and_reports_epsilon():
    train = make_synthetic(n_users=60, n_items=50, ratings_per_user=15, seed=1).ratings
    kw = dict(n_factors=4, n_rounds=20, server_lr=5.0, participation=0.5, clip=0.1)
    clean = FederatedMF(**kw).fit(train)
    noisy = FederatedMF(noise_multiplier=8.0, **kw).fit(train)
    local = FederatedMF(noise_multiplier=2.0, noise="local", **kw).fit(train)   # sqrt(30) x the noise of z = 2
    assert clean.epsilon_ == math.inf
    assert noisy.epsilon_ == pytest.approx(zcdp_epsilon(8.0, 20, 1e-5))
    assert clean.history_["train_rmse"].iloc[-1] < noisy.history_["train_rmse"].iloc[-1] - 0.01
    assert noisy.history_["train_rmse"].iloc[-1] < local.history_["train_rmse"].iloc[-1] - 0.01


def test_training_learns():
    train = make_synthetic(n_users=80, n_items=60, ratings_per_user=20, seed=0).ratings
    model = FederatedMF(n_factors=4, n_rounds=30, server_lr=20.0).fit(train)
    h = model.history_
    assert list(h.columns) == ["round", "clients", "train_rmse", "update_norm", "monitor"]
    assert len(h) == 30 and (h["clients"] == 40).all()
    assert h["train_rmse"].iloc[-1] < 0.8 * h["train_rmse"].iloc[0]


def test_deterministic_and_seeded():
    train = make_synthetic(n_users=40, n_items=30, ratings_per_user=10, seed=2).ratings
    kw = dict(n_factors=3, n_rounds=5, server_lr=5.0, participation=0.5, clip=0.1, noise_multiplier=1.0)
    a = FederatedMF(seed=4, **kw).fit(train)
    b = FederatedMF(seed=4, **kw).fit(train)
    c = FederatedMF(seed=5, **kw).fit(train)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.history_["train_rmse"], b.history_["train_rmse"])
    assert not np.allclose(a.item_factors_, c.item_factors_)


def test_protocol_and_fallbacks():
    train = toy_ratings()
    model = FederatedMF(n_factors=2, n_rounds=5, server_lr=5.0, monitor=lambda m: 1.5, monitor_every=2)
    with pytest.raises(NotFittedError):
        model.predict(["Alice"], ["A1"])
    model.fit(train)
    assert model.history_["monitor"].notna().tolist() == [False, True, False, True, True]
    pred = model.predict(["Alice", "Zed", "Alice"], ["A1", "A1", "new film"])
    assert pred[1] == pytest.approx(np.clip(model.mu_ + model.item_bias_[0], 1, 5))
    alice = model.user_positions(["Alice"])[0]
    assert pred[2] == pytest.approx(np.clip(model.mu_ + model.user_bias_[alice], 1, 5))
    recs = model.recommend(["Carol"], k=2)
    assert set(recs[ITEM]).isdisjoint(train.loc[train[USER] == "Carol", ITEM])
    with pytest.raises(UnknownIdError):
        model.recommend(["Zed"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(noise_multiplier=-1.0, clip=1.0), "noise_multiplier must be a finite number >= 0.*use 0 for no noise"),
    (dict(clip=0.0), "clip must be a finite number > 0.*None turns clipping off"),
    (dict(clip=-2.0), "clip must be a finite number > 0"),
    (dict(participation=0.0), r"participation must be a share in \(0, 1\].*participation=0.5"),
    (dict(participation=1.5), r"participation must be a share in \(0, 1\]"),
    (dict(local_epochs=0), "local_epochs must be an integer >= 1.*local_epochs=1"),
    (dict(noise_multiplier=1.0), "needs a clip.*pass clip="),
    (dict(central=True), "central=True.*set participation=1, local_epochs=1"),
    (dict(noise="server"), "noise must be one of"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FederatedMF(**kwargs).fit(toy_ratings())


def test_importing_the_module_does_not_load_flower():
    code = "import sys, recsys_course, recsys_course.federated; print('flwr' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

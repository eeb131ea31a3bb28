"""recsys_course.models.autoencoders: the masked loss, the KL schedule, AutoRec, DAE and MultVAE on tiny data."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.models import DAE, AutoRec, BiasBaseline, MultVAE, UnknownIdError
from recsys_course.models.autoencoders import (_autorec_net, _SparseRows, gaussian_kl, kl_beta, masked_mse,
                                               multinomial_nll)
from recsys_course.synthetic import make_synthetic

FAST = {"n_epochs": 3, "verbose": False}
TINY = {AutoRec: dict(n_hidden=8, batch_size=16, **FAST),
        DAE: dict(n_hidden=8, batch_size=8, min_item_count=1, **FAST),
        MultVAE: dict(dims=(16, 4), batch_size=8, anneal_steps=10, min_item_count=1, **FAST)}
MODELS = list(TINY)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return make_synthetic(n_users=40, n_items=60, ratings_per_user=15, seed=3).ratings


@pytest.fixture(scope="module")
def fitted(data):
    return {cls: cls(**TINY[cls]).fit(data) for cls in MODELS}


# --------------------------------------------------------------------------------------------
# the masked loss
# --------------------------------------------------------------------------------------------
R = np.array([[5.0, 0.0, 3.0],
              [0.0, 4.0, 0.0]])
M = (R > 0).astype(float)
P = np.array([[4.0, 2.5, 3.0],
              [1.0, 5.0, 0.5]])


def test_masked_mse_by_hand():
    # observed cells: (5 vs 4), (3 vs 3), (4 vs 5) -> (1 + 0 + 1) / 3
    assert masked_mse(P, R, M) == pytest.approx(2 / 3)
    # no mask: every cell, the missing ones with target 0 -> (1 + 6.25 + 0 + 1 + 1 + 0.25) / 6
    assert masked_mse(P, R, np.ones_like(R)) == pytest.approx(9.5 / 6)
    t = masked_mse(torch.tensor(P), torch.tensor(R), torch.tensor(M))
    assert isinstance(t, torch.Tensor) and float(t) == pytest.approx(2 / 3)
    assert masked_mse(P, R, np.zeros_like(R)) == 0.0


def test_masked_mse_ignores_unobserved_cells():
    changed = P.copy()
    changed[0, 1] = -100.0  # an unobserved cell
    changed[1, 2] = 1e6     # another one
    assert masked_mse(changed, R, M) == masked_mse(P, R, M)
    changed[0, 0] += 1.0    # an observed cell does count
    assert masked_mse(changed, R, M) != masked_mse(P, R, M)


def test_masked_mse_gradient():
    pred = torch.tensor(P, requires_grad=True)
    loss = masked_mse(pred, torch.tensor(R), torch.tensor(M))
    loss.backward()
    want = 2 * (P - R) * M / M.sum()  # zero at every unobserved cell
    assert np.allclose(pred.grad.numpy(), want)
    assert (pred.grad.numpy()[M == 0] == 0).all()
    # finite differences agree
    eps = 1e-6
    for cell in [(0, 0), (0, 1), (1, 1), (1, 2)]:
        bumped = P.copy()
        bumped[cell] += eps
        fd = (masked_mse(bumped, R, M) - masked_mse(P, R, M)) / eps
        assert fd == pytest.approx(want[cell], abs=1e-4)


def test_autorec_training_loss_is_the_masked_loss(data):
    model = AutoRec(n_hidden=6, reg=0.0, val_share=None, n_epochs=1, verbose=False).fit(data)
    matrix = model._item_matrix(data)
    rows = _SparseRows(matrix, "cpu")
    net = _autorec_net(model.n_users, 6, "sigmoid", 3.0, torch.Generator().manual_seed(0))
    items = torch.arange(10)
    loss = model._loss_fn(rows)(net, items)
    dense = torch.as_tensor(matrix[:10].toarray())
    with torch.no_grad():
        recon = net.decode(net.encode(*rows.batch(items)[:3]))
    assert float(loss.detach()) == pytest.approx(float(masked_mse(recon, dense, (dense > 0).float())), rel=1e-5)
    # gradient check: a user who rated none of these items gets no gradient on their decoder row
    loss.backward()
    silent = np.flatnonzero(np.asarray(matrix[:10].sum(0)).ravel() == 0)
    active = np.flatnonzero(np.asarray(matrix[:10].sum(0)).ravel() > 0)
    assert len(silent) and len(active)
    assert torch.all(net.W.grad[silent] == 0) and torch.all(net.c.grad[silent] == 0)
    assert torch.any(net.W.grad[active] != 0)
    # without the mask the same users do get a gradient (their missing ratings are targets of 0)
    net.zero_grad()
    model.masked = False
    model._loss_fn(rows)(net, items).backward()
    assert torch.any(net.c.grad[silent] != 0)


def test_unmasked_autorec_predicts_near_zero_for_unobserved_cells(data):
    masked = AutoRec(n_hidden=16, lr=0.01, val_share=None, n_epochs=30, verbose=False).fit(data)
    unmasked = AutoRec(n_hidden=16, lr=0.01, val_share=None, n_epochs=30, masked=False, verbose=False).fit(data)
    seen = masked.seen_.toarray().astype(bool)
    users = np.arange(masked.n_users)
    s_masked, s_unmasked = masked._score_users(users), unmasked._score_users(users)
    assert s_unmasked[~seen].mean() < 1.0 < 3.0 < s_masked[~seen].mean()


# --------------------------------------------------------------------------------------------
# the KL annealing schedule and the VAE's loss terms
# --------------------------------------------------------------------------------------------
def test_kl_beta_schedule():
    assert kl_beta(0, 0.2, 100) == 0.0
    assert kl_beta(50, 0.2, 100) == pytest.approx(0.1)
    assert kl_beta(100, 0.2, 100) == pytest.approx(0.2)
    assert kl_beta(10_000, 0.2, 100) == pytest.approx(0.2)
    assert kl_beta(0, 0.3, 0) == 0.3  # no annealing
    assert np.allclose(kl_beta(np.array([0, 25, 100, 150]), 1.0, 100), [0, 0.25, 1, 1])
    for bad in [dict(step=-1, beta_max=0.2, anneal_steps=10), dict(step=0, beta_max=-0.1, anneal_steps=10),
                dict(step=0, beta_max=0.2, anneal_steps=-5), dict(step=0, beta_max=0.2, anneal_steps=2.5)]:
        with pytest.raises(ValueError):
            kl_beta(**bad)


def test_multvae_anneals_beta_as_documented(data):
    model = MultVAE(dims=(8, 2), batch_size=16, beta_max=0.4, anneal_steps=5, n_epochs=3, val_n=None,
                    min_item_count=1, verbose=False).fit(data)
    log = model.anneal_log_
    steps_per_epoch = math.ceil(model.n_users / 16)
    assert len(log) == 3 * steps_per_epoch
    assert log["step"].tolist() == list(range(len(log)))
    for step in [0, 1, 2, 5, 8]:
        assert log["beta"][step] == pytest.approx(0.4 * min(1, step / 5))
    assert (log["kl"] >= 0).all()


def test_gaussian_kl_and_multinomial_nll_by_hand():
    mu = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    logvar = torch.tensor([[0.0, 0.0], [0.0, math.log(2.0)]])
    # row 0 is N(0, I): KL 0; row 1: 0.5 * (1 + 0) + 0.5 * (2 - ln 2 - 1)
    assert torch.allclose(gaussian_kl(mu, logvar), torch.tensor([0.0, 0.5 + 0.5 * (1 - math.log(2.0))]))
    logits = torch.tensor([[0.0, 0.0, math.log(2.0)]])  # softmax = (1/4, 1/4, 1/2)
    x = torch.tensor([[1.0, 0.0, 1.0]])
    assert float(multinomial_nll(logits, x)) == pytest.approx(math.log(4) + math.log(2))


# --------------------------------------------------------------------------------------------
# the protocol: shapes, device, determinism, seen items, unknown ids, bad hyper-parameters
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_shapes_and_history(cls, fitted):
    model = fitted[cls]
    users = np.arange(5)
    assert model._score_users(users).shape == (5, model.n_items)
    assert model.user_embeddings_.shape[0] == model.n_users
    n_rows = model.n_items if cls is AutoRec else len(model.modelled_)
    assert model.item_embeddings_.shape[0] == n_rows
    assert 1 <= model.best_epoch_ <= 3 and model.history_.n_epochs <= 3
    assert np.isfinite(model.loss_).all()
    assert model.fit_seconds_ > 0


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_explicit_cpu_device_and_missing_device(cls, data):
    model = cls(**{**TINY[cls], "n_epochs": 1, "device": "cpu"}).fit(data)
    assert model.predict(data[USER][:3], data[ITEM][:3]).shape == (3,)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            cls(**{**TINY[cls], "device": "cuda"}).fit(data)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_determinism_for_a_fixed_seed(cls, data, fitted):
    again = cls(**TINY[cls]).fit(data)
    users = np.sort(data[USER].unique())
    assert np.array_equal(again._score_users(np.arange(len(users))), fitted[cls]._score_users(np.arange(len(users))))
    other = cls(**{**TINY[cls], "seed": 1}).fit(data)
    assert not np.array_equal(other._score_users(np.arange(3)), fitted[cls]._score_users(np.arange(3)))


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_recommend_excludes_seen_items(cls, data, fitted):
    model = fitted[cls]
    users = np.sort(data[USER].unique())
    recs = model.recommend(users, k=10)
    assert len(recs) == 10 * len(users)
    seen = set(zip(data[USER], data[ITEM]))
    assert not any((u, i) in seen for u, i in zip(recs[USER], recs[ITEM]))
    assert recs.groupby(USER)["score"].apply(lambda s: s.is_monotonic_decreasing).all()


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_unknown_users_cannot_get_recommendations(cls, fitted):
    with pytest.raises(UnknownIdError):
        fitted[cls].recommend([10**9], k=5)


def test_autorec_unknown_ids_fall_back_to_the_bias_baseline(data, fitted):
    model = fitted[AutoRec]
    base = BiasBaseline().fit(data)
    known_user, known_item = data[USER].iloc[0], data[ITEM].iloc[0]
    users = np.array([10**9, known_user, 10**9])
    items = np.array([known_item, 10**9, 10**9 + 1])
    assert np.allclose(model.predict(users, items), base.predict(users, items))
    lo, hi = model.rating_range_
    assert ((model.predict(data[USER], data[ITEM]) >= lo) & (model.predict(data[USER], data[ITEM]) <= hi)).all()


@pytest.mark.parametrize("cls", [DAE, MultVAE], ids=lambda c: c.__name__)
def test_ranking_autoencoders_unknown_ids(cls, data, fitted):
    model = fitted[cls]
    with pytest.raises(UnknownIdError):
        model.predict([10**9], [data[ITEM].iloc[0]])
    out = model.predict([data[USER].iloc[0]] * 2, [10**9, data[ITEM].iloc[0]])
    assert out[0] == -np.inf and np.isfinite(out[1])
    # predict agrees with the row of scores recommend ranks by
    u = data[USER].iloc[0]
    pos = model._user_index.get_indexer([u])
    assert np.allclose(model.predict([u] * model.n_items, model.item_ids_), model._score_users(pos)[0])


@pytest.mark.parametrize("cls", [DAE, MultVAE], ids=lambda c: c.__name__)
def test_unmodelled_items_are_never_recommended(cls, data):
    model = cls(**{**TINY[cls], "min_item_count": 8, "n_epochs": 1}).fit(data)
    counts = data[ITEM].value_counts()
    rare = set(counts[counts < 8].index)
    assert rare and len(model.modelled_) == (counts >= 8).sum()
    recs = model.recommend(np.sort(data[USER].unique()), k=5)
    assert not set(recs[ITEM]) & rare


def test_validation_and_refit(data):
    model = AutoRec(n_hidden=8, n_epochs=4, patience=2, verbose=False).fit(data)
    assert model.history_ is not None and model.history_.metric_name == "val_rmse"
    assert len(model.loss_) == model.best_epoch_  # the refit ran for the chosen number of epochs
    no_val = AutoRec(n_hidden=8, n_epochs=2, val_share=None, verbose=False).fit(data)
    assert no_val.history_ is None and no_val.best_epoch_ == 2
    with pytest.raises(ValueError, match="timestamp"):
        AutoRec(n_hidden=8, n_epochs=1, verbose=False).fit(data.drop(columns=TIME))


BAD = [
    (AutoRec, dict(n_hidden=0), "n_hidden"),
    (AutoRec, dict(activation="softmax"), "activation"),
    (AutoRec, dict(reg=-1.0), "reg"),
    (AutoRec, dict(lr=0), "lr"),
    (AutoRec, dict(val_share=1.5), "val_share"),
    (AutoRec, dict(masked="yes"), "masked"),
    (AutoRec, dict(patience=0), "patience"),
    (DAE, dict(corruption=1.0), "corruption"),
    (DAE, dict(corruption=-0.1), "corruption"),
    (DAE, dict(n_hidden=2.5), "n_hidden"),
    (DAE, dict(batch_size=0), "batch_size"),
    (DAE, dict(min_item_count=0), "min_item_count"),
    (DAE, dict(val_n=0), "val_n"),
    (MultVAE, dict(dims=()), "dims"),
    (MultVAE, dict(dims=(10, 0)), "dims"),
    (MultVAE, dict(dims="200"), "dims"),
    (MultVAE, dict(beta_max=-0.2), "beta_max"),
    (MultVAE, dict(anneal_steps=-1), "anneal_steps"),
    (MultVAE, dict(dropout=1.0), "dropout"),
    (MultVAE, dict(seed=-3), "seed"),
]


@pytest.mark.parametrize("cls, params, word", BAD, ids=[f"{c.__name__}-{w}" for c, _, w in BAD])
def test_bad_hyper_parameters_raise_clear_errors(cls, params, word, data):
    with pytest.raises(ValueError, match=word):
        cls(**{**TINY[cls], **params}).fit(data)


def test_min_rating_counts_only_high_ratings(data):
    model = DAE(**{**TINY[DAE], "min_rating": 4.0, "n_epochs": 1}).fit(data)
    assert model.X_.nnz == int((data[RATING] >= 4.0).sum())
    assert model.seen_.nnz == len(data)  # every rated item is still excluded from the lists


def test_get_params_and_repr():
    model = MultVAE(dims=(32, 8), beta_max=0.3)
    assert model.get_params()["dims"] == (32, 8) and "beta_max=0.3" in repr(model)


def test_without_refit_the_network_reads_the_rows_it_was_trained_on(data):
    from recsys_course.split import leave_last_n

    fit_part, _ = leave_last_n(data, n=3)
    model = DAE(**{**TINY[DAE], "val_n": 3, "refit": False, "n_epochs": 1}).fit(data)
    assert model.X_.nnz == len(fit_part) < len(data)
    refit = DAE(**{**TINY[DAE], "val_n": 3, "n_epochs": 1}).fit(data)
    assert refit.X_.nnz == len(data)

"""recsys_course.models.autoencoders: the masked loss, the KL schedule, AutoRec, DAE and MultVAE on tiny data."""
from __future__ import annotations

import math
import pickle
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.models import DAE, AutoRec, BiasBaseline, MultVAE, UnknownIdError
from recsys_course.models.autoencoders import autorec_loss, gaussian_kl, kl_beta, masked_mse, multinomial_nll
from recsys_course.networks.autoencoders import AutoRecNet, DAENet, MultVAENet
from recsys_course.networks.layers import SparseRows
from recsys_course.synthetic import make_synthetic

FAST = {"n_epochs": 3, "verbose": False}
TINY = {AutoRec: dict(n_factors=8, batch_size=16, **FAST),
        DAE: dict(n_factors=8, batch_size=8, min_item_count=1, **FAST),
        MultVAE: dict(hidden=(16,), n_factors=4, batch_size=8, anneal_steps=10, min_item_count=1, **FAST)}
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
    model = AutoRec(n_factors=6, reg=0.0, val_size=None, n_epochs=1, verbose=False).fit(data)
    u, i = model.user_positions(data[USER]), model.item_positions(data[ITEM])
    matrix = sp.csr_matrix((data[RATING].to_numpy(np.float32), (i, u)), shape=(model.n_items, model.n_users))
    rows = SparseRows(matrix, "cpu")
    net = AutoRecNet(model.n_users, 6, "sigmoid", 3.0, torch.Generator().manual_seed(0))
    rare = np.argsort(np.diff(matrix.indptr), kind="stable")[:5]  # the least-rated items: some users rated none
    items = torch.as_tensor(rare)
    loss = autorec_loss(net, rows, items)
    dense = torch.as_tensor(matrix[rare].toarray())
    with torch.no_grad():
        recon = net.decode(net.encode(*rows.batch(items)[:3]))
    assert float(loss.detach()) == pytest.approx(float(masked_mse(recon, dense, (dense > 0).float())), rel=1e-5)
    # gradient check: a user who rated none of these items gets no gradient on their decoder row
    loss.backward()
    silent = np.flatnonzero(np.asarray(matrix[rare].sum(0)).ravel() == 0)
    active = np.flatnonzero(np.asarray(matrix[rare].sum(0)).ravel() > 0)
    assert len(silent) and len(active)
    assert torch.all(net.W.grad[silent] == 0) and torch.all(net.c.grad[silent] == 0)
    assert torch.any(net.W.grad[active] != 0)
    # without the mask the same users do get a gradient (their missing ratings are targets of 0)
    net.zero_grad()
    autorec_loss(net, rows, items, masked=False).backward()
    assert torch.any(net.c.grad[silent] != 0)


def test_unmasked_autorec_predicts_near_zero_for_unobserved_cells(data):
    masked = AutoRec(n_factors=16, lr=0.01, val_size=None, n_epochs=30, verbose=False).fit(data)
    unmasked = AutoRec(n_factors=16, lr=0.01, val_size=None, n_epochs=30, masked=False, verbose=False).fit(data)
    seen = masked.seen_.toarray().astype(bool)
    s_masked, s_unmasked = masked.score(masked.user_ids_), unmasked.score(unmasked.user_ids_)
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
    model = MultVAE(hidden=(8,), n_factors=2, batch_size=16, beta_max=0.4, anneal_steps=5, n_epochs=3,
                    val_size=None, min_item_count=1, verbose=False).fit(data)
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
    assert model.score(model.user_ids_[:5]).shape == (5, model.n_items)
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
    assert np.array_equal(again.score(users), fitted[cls].score(users))
    other = cls(**{**TINY[cls], "seed": 1}).fit(data)
    assert not np.array_equal(other.score(users[:3]), fitted[cls].score(users[:3]))


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
    assert np.allclose(model.predict([u] * model.n_items, model.item_ids_), model.score([u])[0])


@pytest.mark.parametrize("cls", [DAE, MultVAE], ids=lambda c: c.__name__)
def test_unmodelled_items_are_never_recommended(cls, data):
    model = cls(**{**TINY[cls], "min_item_count": 8, "n_epochs": 1}).fit(data)
    counts = data[ITEM].value_counts()
    rare = set(counts[counts < 8].index)
    assert rare and len(model.modelled_) == (counts >= 8).sum()
    recs = model.recommend(np.sort(data[USER].unique()), k=5)
    assert not set(recs[ITEM]) & rare


def test_validation_and_refit(data):
    model = AutoRec(n_factors=8, n_epochs=4, patience=2, verbose=False).fit(data)
    assert model.history_ is not None and model.history_.metric_name == "val_rmse"
    assert len(model.loss_) == model.best_epoch_  # the refit ran for the chosen number of epochs
    no_val = AutoRec(n_factors=8, n_epochs=2, val_size=None, verbose=False).fit(data)
    assert no_val.history_ is None and no_val.best_epoch_ == 2
    with pytest.raises(ValueError, match="timestamp"):
        AutoRec(n_factors=8, n_epochs=1, verbose=False).fit(data.drop(columns=TIME))
    # a random validation slice needs no time
    rand = AutoRec(n_factors=8, n_epochs=2, val_split="random", verbose=False).fit(data.drop(columns=TIME))
    assert rand.history_.n_epochs == 2 and np.isfinite(rand.history_.val_metric).all()


BAD = [
    (AutoRec, dict(n_factors=0), "AutoRec: n_factors must be an integer >= 1, got 0"),
    (AutoRec, dict(activation="softmax"), "AutoRec: activation must be one of"),
    (AutoRec, dict(reg=-1.0), "AutoRec: reg must be a finite number >= 0, got -1.0"),
    (AutoRec, dict(lr=0), "AutoRec: lr must be a finite number > 0, got 0"),
    (AutoRec, dict(weight_decay=-1e-3), "AutoRec: weight_decay must be a finite number >= 0"),
    (AutoRec, dict(val_size=1.5), "AutoRec: val_size must be an integer >= 1, a share strictly between 0 and 1"),
    (AutoRec, dict(val_split="future"), "AutoRec: val_split must be one of"),
    (AutoRec, dict(masked="yes"), "AutoRec: masked must be True or False, got 'yes'"),
    (AutoRec, dict(patience=0), "AutoRec: patience must be an integer >= 1 or None, got 0"),
    (DAE, dict(corruption=1.0), "DAE: corruption must be a finite number >= 0 and < 1, got 1.0"),
    (DAE, dict(corruption=-0.1), "DAE: corruption must be a finite number >= 0 and < 1"),
    (DAE, dict(n_factors=2.5), "DAE: n_factors must be an integer >= 1, got 2.5"),
    (DAE, dict(user_node=1), "DAE: user_node must be True or False"),
    (DAE, dict(batch_size=0), "DAE: batch_size must be an integer >= 1"),
    (DAE, dict(min_item_count=0), "DAE: min_item_count must be an integer >= 1"),
    (DAE, dict(min_rating=-1.0), "DAE: min_rating must be a finite number >= 0 or None"),
    (DAE, dict(val_size=0), "DAE: val_size must be an integer >= 1"),
    (MultVAE, dict(hidden=(10, 0)), "MultVAE: hidden must be a tuple of integers >= 1 (layer widths), got (10, 0)"),
    (MultVAE, dict(hidden="200"), "MultVAE: hidden must be a tuple of integers >= 1"),
    (MultVAE, dict(hidden=200), "MultVAE: hidden must be a tuple of integers >= 1"),
    (MultVAE, dict(n_factors=0), "MultVAE: n_factors must be an integer >= 1"),
    (MultVAE, dict(beta_max=-0.2), "MultVAE: beta_max must be a finite number >= 0"),
    (MultVAE, dict(anneal_steps=-1), "MultVAE: anneal_steps must be an integer >= 0"),
    (MultVAE, dict(dropout=1.0), "MultVAE: dropout must be a finite number >= 0 and < 1"),
    (MultVAE, dict(seed=-3), "MultVAE: seed must be an integer >= 0"),
]


@pytest.mark.parametrize("cls, params, message", BAD,
                         ids=[f"{c.__name__}-{next(iter(p))}-{j}" for j, (c, p, _) in enumerate(BAD)])
def test_bad_hyper_parameters_raise_clear_errors(cls, params, message, data):
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(**{**TINY[cls], **params}).fit(data)


def test_min_rating_counts_only_high_ratings(data):
    model = DAE(**{**TINY[DAE], "min_rating": 4.0, "n_epochs": 1}).fit(data)
    assert model.X_.nnz == int((data[RATING] >= 4.0).sum())
    assert model.seen_.nnz == len(data)  # every rated item is still excluded from the lists


def test_get_params_and_repr():
    model = MultVAE(hidden=(32,), n_factors=8, beta_max=0.3)
    params = model.get_params()
    assert params["hidden"] == (32,) and params["n_factors"] == 8 and "beta_max=0.3" in repr(model)
    assert params["val_size"] == 10 and params["val_split"] == "last" and params["weight_decay"] == 0.0
    assert AutoRec().get_params()["val_size"] == 0.2 and DAE().get_params()["val_size"] == 10


def test_without_refit_the_network_reads_the_rows_it_was_trained_on(data):
    from recsys_course.split import leave_last_n

    fit_part, _ = leave_last_n(data, n=3)
    model = DAE(**{**TINY[DAE], "val_size": 3, "refit": False, "n_epochs": 1}).fit(data)
    assert model.X_.nnz == len(fit_part) < len(data)
    refit = DAE(**{**TINY[DAE], "val_size": 3, "n_epochs": 1}).fit(data)
    assert refit.X_.nnz == len(data)


@pytest.mark.parametrize("cls", [DAE, MultVAE], ids=lambda c: c.__name__)
def test_validation_ndcg_ranks_the_whole_catalogue_like_evaluate(cls, data):
    """Without refit the kept network is the best epoch's and reads the fit part's rows, so an NDCG@10 computed
    by hand from ``score`` (fit-part items excluded, unmodelled held-out items as misses) is the best metric."""
    from recsys_course.split import validation_split

    model = cls(**{**TINY[cls], "min_item_count": 8, "val_size": 3, "refit": False, "patience": None,
                   "n_epochs": 8}).fit(data)
    assert model.history_.best_epoch >= 1 and len(model.modelled_) < model.n_items
    fit_part, val_part = validation_split(data, "last", 3)
    relevant = val_part[val_part[RATING] >= 4.0]
    ndcgs = []
    for user, rel in relevant.groupby(USER):
        scores = model.score([user])[0]
        scores[model.item_positions(fit_part.loc[fit_part[USER] == user, ITEM])] = -np.inf
        top = np.argsort(-scores, kind="stable")[:10]
        hits = np.isin(model.item_ids_[top], rel[ITEM]) & np.isfinite(scores[top])
        dcg = (hits / np.log2(np.arange(2, 12))).sum()
        ndcgs.append(dcg / (1 / np.log2(np.arange(2, 2 + min(len(rel), 10)))).sum())
    assert model.history_.best_metric == pytest.approx(np.mean(ndcgs), abs=1e-12)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_networks_are_top_level_and_picklable(cls, data, fitted):
    model = fitted[cls]
    for net_cls in (AutoRecNet, DAENet, MultVAENet):
        assert net_cls.__module__ == "recsys_course.networks.autoencoders" and "<locals>" not in net_cls.__qualname__
        assert net_cls.__doc__
    twin = pickle.loads(pickle.dumps(model))
    users = np.sort(data[USER].unique())
    assert np.array_equal(twin.score(users), model.score(users))
    if cls is not AutoRec:
        assert isinstance(model.net_, DAENet if cls is DAE else MultVAENet)
        net = pickle.loads(pickle.dumps(model.net_))
        assert type(net) is type(model.net_)
        assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), model.net_.state_dict().values()))

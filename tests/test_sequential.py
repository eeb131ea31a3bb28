"""recsys_course.models.sequential: NeuMF, GRU4Rec, SASRec on tiny data (the whole file runs in seconds)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_course.config import ITEM, TIME, USER
from recsys_course.models import GRU4Rec, NeuMF, SASRec, UnknownIdError
from recsys_course.models.sequential import last_windows, next_item_windows, user_sequences
from recsys_course.synthetic import make_synthetic

TINY = {"n_factors": 8, "n_epochs": 2, "batch_size": 16, "verbose": False, "device": "cpu"}
SEQ = {**TINY, "max_len": 6, "n_negatives": 16}
MODELS = {
    "NeuMF": lambda **kw: NeuMF(**{**TINY, "mlp_layers": (8, 4), "batch_size": 256, **kw}),
    "GRU4Rec": lambda **kw: GRU4Rec(**{**SEQ, **kw}),
    "SASRec": lambda **kw: SASRec(**{**SEQ, "n_heads": 2, **kw}),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def train():
    return make_synthetic(n_users=25, n_items=40, ratings_per_user=10, seed=2).ratings


@pytest.fixture(scope="module")
def fitted(train):
    return {name: make(seed=0).fit(train) for name, make in MODELS.items()}


# --------------------------------------------------------------------------------------------
# the sequence layout, by hand
# --------------------------------------------------------------------------------------------
def test_user_sequences_order_by_time_then_movie():
    users = np.array([1, 0, 0, 0, 1])
    items = np.array([5, 3, 1, 2, 4])
    times = np.array([0, 20, 10, 10, 0])   # user 0: items 1 and 2 tie at t=10 -> 1 before 2
    indptr, seq = user_sequences(users, items, times, n_users=2)
    assert indptr.tolist() == [0, 3, 5]
    assert seq.tolist() == [1, 2, 3, 4, 5]


def test_windows_by_hand():
    indptr, seq = np.array([0, 3, 8, 9]), np.arange(9)   # user 2 has one item: no pair
    inputs, targets = next_item_windows(indptr, seq, max_len=3)
    # tokens are positions + 1; windows aligned at the end, right-padded with 0
    assert inputs.tolist() == [[1, 2, 0], [4, 0, 0], [5, 6, 7]]
    assert targets.tolist() == [[2, 3, 0], [5, 0, 0], [6, 7, 8]]
    tokens, lengths = last_windows(indptr, seq, np.array([0, 1, 2]), max_len=3)
    assert tokens.tolist() == [[1, 2, 3], [6, 7, 8], [9, 0, 0]]
    assert lengths.tolist() == [3, 3, 1]


# --------------------------------------------------------------------------------------------
# the sequence models never see the future
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["GRU4Rec", "SASRec"])
@pytest.mark.parametrize("t", [0, 2, 4])
def test_prediction_at_t_ignores_later_items(fitted, name, t):
    model = fitted[name]
    rng = np.random.default_rng(t)
    seq = rng.choice(model.item_ids_, size=model.max_len, replace=False)
    before = model.next_item_scores(seq)
    assert before.shape == (model.max_len, model.n_items)
    shuffled = seq.copy()
    shuffled[t + 1:] = rng.permutation(shuffled[t + 1:])
    replaced = seq.copy()
    replaced[t + 1:] = rng.choice(np.setdiff1d(model.item_ids_, seq[:t + 1]), size=len(seq) - t - 1, replace=False)
    for other in (shuffled, replaced):
        after = model.next_item_scores(other)
        np.testing.assert_allclose(after[:t + 1], before[:t + 1], rtol=0, atol=1e-5)
    # ...and the prediction does depend on the past
    changed_past = seq.copy()
    changed_past[t] = np.setdiff1d(model.item_ids_, seq)[0]
    assert not np.allclose(model.next_item_scores(changed_past)[t], before[t])


def test_sasrec_module_is_causal_in_every_block(fitted):
    module = fitted["SASRec"].module_.eval()
    x = torch.randint(1, 41, (3, 6))
    y = x.clone()
    y[:, 4:] = torch.randint(1, 41, (3, 2))
    with torch.no_grad():
        np.testing.assert_allclose(module(x)[:, :4].numpy(), module(y)[:, :4].numpy(), atol=1e-5)
        attn = module.blocks[0].attn
        attn.keep_attention = True
        module(x)
        attn.keep_attention = False
    w = attn.attention_                     # (batch, heads, L, L)
    assert torch.all(w.triu(1) == 0), "no weight on later positions"
    np.testing.assert_allclose(w.sum(-1).numpy(), 1.0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# the protocol: shapes, device, seen items, unknown ids
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_device_and_history(fitted, train, name):
    model = fitted[name]
    assert model.device_.type == "cpu"
    assert all(p.device.type == "cpu" for p in model.module_.parameters())
    scores = model.score(model.user_ids_[:5])
    assert scores.shape == (5, model.n_items) and scores.dtype == np.float64
    assert 1 <= model.history_.n_epochs <= 2 and np.isfinite(model.history_.train_loss).all()
    recs = model.recommend(model.user_ids_[:3], k=4)
    assert list(recs.columns) == [USER, ITEM, "score", "rank"]
    assert len(recs) == 12 and recs.groupby(USER)["rank"].apply(list).tolist() == [[1, 2, 3, 4]] * 3
    # predict agrees with the scores recommend ranks
    u = model.user_ids_[2]
    p = model.predict(np.repeat(u, model.n_items), model.item_ids_)
    np.testing.assert_allclose(p, model.score([u])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_recommend_excludes_seen_items(fitted, train, name):
    model = fitted[name]
    recs = model.recommend(model.user_ids_, k=15)
    seen = set(zip(train[USER], train[ITEM]))
    assert not any(pair in seen for pair in zip(recs[USER], recs[ITEM]))
    with_seen = model.recommend(model.user_ids_[:5], k=model.n_items, exclude_seen=False)
    assert len(with_seen) == 5 * model.n_items


@pytest.mark.parametrize("name", list(MODELS))
def test_unknown_users_and_items(fitted, name):
    model = fitted[name]
    with pytest.raises(UnknownIdError, match="absent from"):
        model.recommend([10_000], k=5)
    with pytest.raises(UnknownIdError):
        model.predict([10_000], [model.item_ids_[0]])
    out = model.predict([model.user_ids_[0], model.user_ids_[0]], [model.item_ids_[0], 99_999])
    assert np.isfinite(out[0]) and out[1] == -np.inf


@pytest.mark.parametrize("name", ["GRU4Rec", "SASRec"])
def test_continue_sequence_serves_a_new_user(fitted, name):
    model = fitted[name]
    seq = list(model.item_ids_[[3, 7, 1]])
    recs = model.continue_sequence(seq + [99_999], k=5)    # the unknown movieId is dropped
    assert list(recs.columns) == [ITEM, "score", "rank"] and len(recs) == 5
    assert not set(recs[ITEM]) & set(seq)
    scores = model.next_item_scores(seq)[-1]
    scores[model.item_positions(seq)] = -np.inf
    assert recs[ITEM].tolist() == model.item_ids_[np.argsort(-scores, kind="stable")[:5]].tolist()
    # a known user's recommend == continuing their training sequence
    u = model.user_ids_[4]
    mine = model.seq_[model.seq_indptr_[4]:model.seq_indptr_[5]]
    assert model.recommend([u], k=5)[ITEM].tolist() == model.continue_sequence(model.item_ids_[mine], k=5)[ITEM].tolist()
    with pytest.raises(UnknownIdError, match="none of the movieIds"):
        model.continue_sequence([99_999])


# --------------------------------------------------------------------------------------------
# determinism, losses, validation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_deterministic_for_a_seed(fitted, train, name):
    again = MODELS[name](seed=0).fit(train)
    other = MODELS[name](seed=1).fit(train)
    users = again.user_ids_
    assert np.array_equal(fitted[name].score(users), again.score(users))
    assert not np.allclose(fitted[name].score(users), other.score(users))


@pytest.mark.parametrize("cls", [GRU4Rec, SASRec])
@pytest.mark.parametrize("loss", ["softmax", "bce", "sampled_softmax"])
def test_every_loss_trains(train, cls, loss):
    model = cls(**{**SEQ, "n_epochs": 1, "loss": loss, "neg_power": 0.0 if loss == "bce" else 1.0}).fit(train)
    assert np.isfinite(model.history_.train_loss[0])


def test_validation_slice_and_fixed_epochs(train):
    model = GRU4Rec(**{**SEQ, "val_size": None, "n_epochs": 3}).fit(train)
    assert model.history_ is None and model.best_epoch_ == 3 and len(model.loss_) == 3
    # val_size=1 holds out each user's last item but recommend still continues the full sequence
    m = GRU4Rec(**SEQ).fit(train)
    assert len(m.seq_) == len(train) and not m.refit
    assert 0 <= m.history_.best_metric <= 1
    fit_part = train[train[TIME] < train.groupby(USER)[TIME].transform("max")]   # (no ties in this data)
    indptr, seq = m.sequences(fit_part)
    assert m.n_windows_ == len(next_item_windows(indptr, seq, m.max_len)[0])   # trained without the held-out items


def test_neumf_score_all_matches_pairwise_forward(fitted):
    model = fitted["NeuMF"]
    with torch.no_grad():
        u = torch.tensor([0, 3, 7])
        full = model.module_.score_all(u, chunk_floats=64)        # tiny chunks exercise the chunking
        uu = u.repeat_interleave(model.n_items)
        ii = torch.arange(model.n_items).repeat(3)
        pair = model.module_(uu, ii).view(3, -1)
    np.testing.assert_allclose(full.numpy(), pair.numpy(), rtol=1e-5, atol=1e-5)


def test_needs_timestamps_for_sequences(train):
    with pytest.raises(ValueError, match="timestamp"):
        GRU4Rec(**SEQ).fit(train.drop(columns=[TIME]))
    with pytest.raises(ValueError, match="timestamp"):
        NeuMF(**TINY).fit(train.drop(columns=[TIME]))
    NeuMF(**{**TINY, "val_size": None, "n_epochs": 1}).fit(train.drop(columns=[TIME]))  # no validation: fine
    NeuMF(**{**TINY, "val_split": "random", "n_epochs": 1}).fit(train.drop(columns=[TIME]))  # random slice: fine


# --------------------------------------------------------------------------------------------
# bad hyper-parameters raise clear errors
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs, match", [
    ("NeuMF", {"n_factors": 0}, "NeuMF: n_factors must be an integer >= 1, got 0"),
    ("NeuMF", {"mlp_layers": (7, 4)}, "mlp_layers"),
    ("NeuMF", {"mlp_layers": ()}, "mlp_layers"),
    ("NeuMF", {"n_negatives": 0}, "n_negatives"),
    ("NeuMF", {"lr": 0}, "lr"),
    ("NeuMF", {"dropout": 1.0}, "NeuMF: dropout must be a finite number >= 0 and < 1, got 1.0"),
    ("GRU4Rec", {"max_len": 0}, "max_len"),
    ("GRU4Rec", {"loss": "top1"}, r"GRU4Rec: loss must be one of \['sampled_softmax', 'softmax', 'bce'\]"),
    ("GRU4Rec", {"n_layers": 0}, "n_layers"),
    ("GRU4Rec", {"batch_size": 2.5}, "batch_size"),
    ("GRU4Rec", {"seed": -1}, "seed"),
    ("GRU4Rec", {"neg_power": -1}, "neg_power"),
    ("SASRec", {"n_heads": 3}, "divisible"),
    ("SASRec", {"n_blocks": 0}, "n_blocks"),
    ("SASRec", {"val_size": 0}, "SASRec: val_size must be an integer >= 1"),
    ("SASRec", {"val_split": "first"}, "val_split must be one of"),
    ("NeuMF", {"refit": "yes"}, "NeuMF: refit must be True or False"),
    ("NeuMF", {"mlp_layers": (8, True)}, "mlp_layers"),
    ("SASRec", {"patience": True}, "patience"),
    ("SASRec", {"weight_decay": -1e-3}, "weight_decay"),
])
def test_bad_hyper_parameters(train, name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS[name](**kwargs).fit(train)


def test_device_that_is_not_there(train):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        GRU4Rec(**{**SEQ, "device": "cuda"}).fit(train)


def test_repr_and_params():
    model = SASRec(n_blocks=3)
    assert model.get_params()["n_blocks"] == 3 and "SASRec(" in repr(model)
    assert set(NeuMF().get_params()) >= {"n_factors", "mlp_layers", "n_negatives", "device", "seed"}


# --------------------------------------------------------------------------------------------
# the protocol's options: refit, a random validation slice; the networks; the stored tuning
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_refit_trains_again_on_all_of_train(fitted, train, name):
    model = MODELS[name](seed=0, refit=True, n_epochs=3).fit(train)
    assert model.history_.n_epochs >= 1 and model.best_epoch_ == max(model.history_.best_epoch, 1)
    assert len(model.loss_) == model.best_epoch_             # the final run: best_epoch_ epochs on all of train
    if name != "NeuMF":
        assert model.n_windows_ == len(next_item_windows(model.seq_indptr_, model.seq_, model.max_len)[0])
    assert not np.array_equal(model.score(model.user_ids_[:3]), fitted[name].score(model.user_ids_[:3]))


def test_the_held_out_slice_is_each_users_last_items(train):
    """``min_train = 2``: a user holds out their last ``val_size`` items only if they keep at least 2."""
    from recsys_course.split import validation_split

    u0 = train[USER].iloc[0]
    data = pd.concat([train[train[USER] != u0], train[train[USER] == u0].nsmallest(3, TIME)])  # u0: 3 items
    fit_part, val_part = validation_split(data, "last", 2, min_train=GRU4Rec.min_train)
    order = data.sort_values([USER, TIME, ITEM])
    from_end = order.groupby(USER).cumcount(ascending=False) + 1
    size = order.groupby(USER)[ITEM].transform("size")
    expected = order[(from_end <= 2) & (size >= 2 + 2)]
    assert sorted(zip(val_part[USER], val_part[ITEM])) == sorted(zip(expected[USER], expected[ITEM]))
    assert u0 not in set(val_part[USER]) and len(fit_part) + len(val_part) == len(data)
    assert GRU4Rec.validation_relevance is None          # every held-out item counts as relevant


def test_random_validation_slice(train):
    model = SASRec(**{**SEQ, "val_split": "random", "val_size": 0.1, "n_epochs": 1}).fit(train)
    assert 0 <= model.history_.best_metric <= 1 and len(model.seq_) == len(train)


def test_networks_are_importable_and_picklable(fitted):
    import pickle

    from recsys_course.networks import sequential as nets

    for name, cls in [("NeuMF", nets.NeuMFNet), ("GRU4Rec", nets.GRU4RecNet), ("SASRec", nets.SASRecNet)]:
        module = fitted[name].module_
        assert isinstance(module, cls)
        again = pickle.loads(pickle.dumps(module))
        for key, value in module.state_dict().items():
            assert torch.equal(value, again.state_dict()[key])


def test_networks_are_seeded_by_their_generator():
    from recsys_course.networks.sequential import SASRecNet

    def build(seed):
        return SASRecNet(30, 8, 5, 1, 2, 0.1, torch.Generator().manual_seed(seed)).state_dict()

    a, b, c = build(3), build(3), build(4)
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["item_emb.weight"], c["item_emb.weight"])
    assert torch.equal(a["item_emb.weight"][0], torch.zeros(8))        # the padding row


def test_stored_tuning_tables():
    from recsys_course.models import tuning_table, tuning_table_names, tuning_tables

    tables = tuning_tables("06")
    assert list(tables) == ["GRU4Rec", "GRU4Rec-loss", "SASRec", "NeuMF"]
    sasrec = tuning_table("SASRec")
    assert list(sasrec.columns[:2]) == sasrec.attrs["grid"] == ["n_blocks", "lr"]
    assert sasrec.attrs["model"] == "SASRec" and "val_ndcg@10" in sasrec
    # the defaults are the best setting of each grid (but the full softmax, meant for a GPU)
    for title, table in tables.items():
        if "loss" in table.attrs["grid"]:
            continue
        best = table.sort_values("val_ndcg@10", ascending=False, kind="stable").iloc[0]
        cls = {"GRU4Rec": GRU4Rec, "SASRec": SASRec, "NeuMF": NeuMF}[table.attrs["model"]]
        params = cls().get_params()
        for key in table.attrs["grid"]:
            assert params[key] == best[key], (title, key)
    assert tables["NeuMF"].attrs["fixed"]["mlp_layers"] == NeuMF().mlp_layers
    assert {"gru4rec", "bert4rec-pretrain"} <= set(tuning_table_names())
    with pytest.raises(ValueError, match="name must be one of"):
        tuning_table("sasrec2")

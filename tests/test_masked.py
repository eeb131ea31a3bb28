"""recsys_course.models.masked: BERT4Rec's masking, fine-tuning examples and the four training modes (tiny data)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys_course.adapters import lora_parameter_count
from recsys_course.models import BERT4Rec, UnknownIdError
from recsys_course.models.masked import finetune_examples, item_windows, mask_items
from recsys_course.synthetic import make_synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"n_factors": 8, "n_heads": 2, "max_len": 6, "n_negatives": 16, "n_epochs": 2, "batch_size": 16,
        "patience": 2, "verbose": False, "device": "cpu"}


@pytest.fixture(scope="module")
def train():
    return make_synthetic(n_users=25, n_items=40, ratings_per_user=10, seed=2).ratings


@pytest.fixture(scope="module")
def base(train):
    return BERT4Rec(mode="pretrain", **TINY).fit(train)


@pytest.fixture(scope="module")
def fitted(train, base):
    out = {"pretrain": base}
    for mode in ["scratch", "finetune", "frozen", "lora"]:
        out[mode] = BERT4Rec(mode=mode, pretrained=None if mode == "scratch" else base, **TINY).fit(train)
    return out


# --------------------------------------------------------------------------------------------
# data: windows, masking, fine-tuning examples
# --------------------------------------------------------------------------------------------
def test_item_windows_by_hand():
    out = item_windows(np.array([0, 3, 8]), np.arange(8), max_len=3)
    assert out.tolist() == [[1, 2, 3], [4, 5, 0], [6, 7, 8]]


def test_masking_never_hides_padding_and_targets_only_masked():
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 20, size=(200, 7))
    lengths = rng.integers(0, 8, size=200)
    tokens[np.arange(7)[None, :] >= lengths[:, None]] = 0
    inputs, targets = mask_items(tokens, rng.random(tokens.shape), 0.3, 99)
    assert (inputs[tokens == 0] == 0).all() and (targets[tokens == 0] == 0).all()
    masked = inputs == 99
    assert np.array_equal(targets[masked], tokens[masked]) and (targets[~masked] == 0).all()
    assert np.array_equal(inputs[~masked], tokens[~masked])
    assert (masked.any(1) == (lengths > 0)).all()      # every non-empty window has at least one masked position


def test_masking_by_hand():
    tokens = np.array([[3, 5, 7, 0], [2, 4, 0, 0]])
    u = np.array([[0.1, 0.9, 0.15, 0.0], [0.5, 0.3, 0.0, 0.0]])
    inputs, targets = mask_items(tokens, u, 0.2, 10)
    assert inputs.tolist() == [[10, 5, 10, 0], [2, 10, 0, 0]]
    assert targets.tolist() == [[3, 0, 7, 0], [0, 4, 0, 0]]


def test_finetune_examples_never_leak_the_target():
    indptr, seq = np.array([0, 4, 12]), np.array([10, 11, 12, 13, 20, 21, 22, 23, 24, 25, 26, 27])
    inputs, targets, owner = finetune_examples(indptr, seq, max_len=4, last_n=3, mask_token=99)
    assert owner.tolist() == [0, 0, 0, 1, 1, 1]
    # user 0: targets x_2, x_3, x_4 (tokens = item + 1); the input is the items before it, then [MASK]
    assert inputs[:3].tolist() == [[11, 99, 0, 0], [11, 12, 99, 0], [11, 12, 13, 99]]
    assert inputs[3:].tolist() == [[23, 24, 25, 99], [24, 25, 26, 99], [25, 26, 27, 99]]
    for w in range(len(inputs)):
        t = targets[w][targets[w] > 0]
        assert len(t) == 1 and inputs[w][targets[w] > 0][0] == 99
        user_seq = seq[indptr[owner[w]]:indptr[owner[w] + 1]] + 1
        where = np.flatnonzero(user_seq == t[0])[0]
        real = inputs[w][(inputs[w] > 0) & (inputs[w] != 99)]
        assert set(real) <= set(user_seq[:where])            # only items strictly before the target
    all_inputs, _, _ = finetune_examples(indptr, seq, max_len=4, last_n=None, mask_token=99)
    assert len(all_inputs) == 3 + 7


# --------------------------------------------------------------------------------------------
# the modes
# --------------------------------------------------------------------------------------------
def test_shapes_devices_and_counts(fitted, train):
    d, n_items = TINY["n_factors"], train["movieId"].nunique()
    for m in fitted.values():
        assert m.device_.type == "cpu" and next(m.module_.parameters()).device.type == "cpu"
        scores = m.score(m.user_ids_[:3])
        assert scores.shape == (3, n_items) and np.isfinite(scores).all()
        assert m.history_.n_epochs >= 1 and m.n_examples_ > 0
    assert fitted["frozen"].n_trainable_ == d * d + d
    assert fitted["lora"].n_trainable_ == lora_parameter_count(d, d, 4, 2)          # q and v of one block
    assert fitted["lora"].adapted_ == ["blocks.0.attn.q", "blocks.0.attn.v"]
    full = fitted["scratch"].n_trainable_
    assert fitted["finetune"].n_trainable_ == full == fitted["pretrain"].n_trainable_ + d * d + d


def test_recommend_excludes_seen_items(fitted, train):
    for m in fitted.values():
        recs = m.recommend(train["userId"].unique()[:10], k=5)
        seen = set(zip(train["userId"], train["movieId"]))
        assert not any((u, i) in seen for u, i in zip(recs["userId"], recs["movieId"]))
        assert (recs.groupby("userId").size() == 5).all()


def test_frozen_and_lora_keep_the_pretrained_weights(fitted, base, train):
    pre = base.module_.state_dict()
    for mode in ["frozen", "lora"]:
        state = fitted[mode].module_.state_dict()
        for name, value in pre.items():
            if mode == "frozen" and name.startswith("head."):
                continue
            key = name if name in state else name.replace(".q.", ".q.base.").replace(".v.", ".v.base.")
            assert torch.equal(state[key], value), f"{mode}: {name} changed"
    # the head trains (a fixed number of epochs: with early stopping the untrained head may be the best one)
    frozen = BERT4Rec(mode="frozen", pretrained=base, **{**TINY, "val_size": None}).fit(train)
    assert not torch.equal(frozen.module_.head.weight, pre["head.weight"])
    assert torch.equal(fitted["pretrain"].module_.head.weight, torch.eye(TINY["n_factors"]))  # frozen in pretraining


def test_one_training_step_leaves_frozen_parameters_alone(train, base):
    m = BERT4Rec(mode="lora", pretrained=base, **{**TINY, "n_epochs": 1, "val_size": None}).fit(train)
    for name, p in m.module_.named_parameters():
        if not p.requires_grad:
            ref = base.module_.state_dict()[name.replace(".base.", ".")]
            assert torch.equal(p, ref), name
    assert all(("A" in n.split(".")[-1] or "B" in n.split(".")[-1]) for n, p in m.module_.named_parameters()
               if p.requires_grad)


def test_scores_at_the_mask_do_not_depend_on_the_target(fitted):
    """The item after the sequence is never in the input: changing what comes after a prefix cannot move its row."""
    m = fitted["finetune"]
    ids = list(m.item_ids_[:5])
    a = m.next_item_scores(ids)
    b = m.next_item_scores(ids[:3] + list(m.item_ids_[10:12]))
    assert np.allclose(a[:3], b[:3])
    assert not np.allclose(a[3], b[3])


def test_continue_sequence_and_unknown_users(fitted):
    m = fitted["lora"]
    recs = m.continue_sequence(list(m.item_ids_[:4]), k=3)
    assert len(recs) == 3 and not set(recs["movieId"]) & set(m.item_ids_[:4])
    with pytest.raises(UnknownIdError):
        m.recommend([10 ** 9])


def test_deterministic_for_a_seed(train, base, fitted):
    again = BERT4Rec(mode="lora", pretrained=base, **TINY).fit(train)
    users = again.user_ids_[:5]
    assert np.array_equal(again.score(users), fitted["lora"].score(users))


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "adapter"}, r"BERT4Rec: mode must be one of \['pretrain', 'scratch'"),
    ({"mode": "lora"}, "starts from a pretrained model"),
    ({"mode": "pretrain", "pretrained": "x"}, "must be None"),
    ({"mask_prob": 0.0}, "BERT4Rec: mask_prob must be a share strictly between 0 and 1, got 0.0"),
    ({"mask_prob": 1.5}, "mask_prob"),
    ({"n_heads": 3}, "divisible"),
    ({"lora_r": 0}, "lora_r"),
    ({"lora_targets": "q"}, "lora_targets"),
    ({"finetune_n": 0}, "finetune_n"),
    ({"last_share": 2.0}, "last_share"),
    ({"last_share": -0.1}, "last_share"),
    ({"lora_alpha": 0}, "BERT4Rec: lora_alpha must be a finite number > 0"),
    ({"val_size": 0}, "BERT4Rec: val_size"),
    ({"patience": 0}, "BERT4Rec: patience must be an integer >= 1 or None"),
    ({"max_len": 1}, "max_len"),
])
def test_bad_hyper_parameters(train, kwargs, match):
    with pytest.raises(ValueError, match=match):
        BERT4Rec(**{**TINY, **kwargs}).fit(train)


def test_pretrained_must_match(train, base):
    with pytest.raises(ValueError, match="n_factors"):
        BERT4Rec(mode="finetune", pretrained=base, **{**TINY, "n_factors": 16}).fit(train)
    with pytest.raises(ValueError, match="mode='pretrain'"):
        BERT4Rec(mode="finetune", pretrained=BERT4Rec(), **TINY).fit(train)
    other = train[train["movieId"] != train["movieId"].iloc[0]]
    with pytest.raises(ValueError, match="catalogue"):
        BERT4Rec(mode="frozen", pretrained=base, **TINY).fit(other)


def test_patience_by_mode(train, base):
    assert BERT4Rec(mode="pretrain").patience_ == 10 and BERT4Rec(mode="lora").patience_ == 3
    assert BERT4Rec(mode="lora", patience=5).patience_ == 5
    # patience=None: the mode's patience stops the run (never improving after epoch 0 -> 3 epochs, not 6)
    m = BERT4Rec(mode="frozen", pretrained=base, **{**TINY, "patience": None, "n_epochs": 6, "lr": 1e-9}).fit(train)
    assert m.patience is None and m.history_.best_epoch == 0
    assert m.history_.n_epochs == 3 and m.history_.stopped_early


def test_network_is_importable_and_masked_uses_no_private_names():
    import inspect

    import recsys_course.models.masked as masked
    from recsys_course.networks.sequential import BERT4RecNet, Block

    net = BERT4RecNet(10, 8, 5, 1, 2, 0.0, torch.Generator().manual_seed(0))
    assert isinstance(net.blocks[0], Block) and torch.equal(net.head.weight, torch.eye(8))
    src = inspect.getsource(masked)
    assert "from .sequential import _" not in src and "import _" not in src

"""recsys_course.models.torch_train: the shared mini-batch loop with early stopping, the optimiser factory and
TorchRecommender, the one early-stopping protocol of the torch models."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recsys_course.checks import check_int
from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.models.torch_train import History, TorchRecommender, TrainingSetup, make_optimizer, train
from recsys_course.synthetic import make_synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _regression(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], dtype=np.float32) + 0.1 * rng.normal(size=n)).astype(np.float32)
    return torch.as_tensor(x), torch.as_tensor(y)


def _mse(module, xb, yb):
    return ((module(xb).squeeze(1) - yb) ** 2).mean()


def test_loss_falls_and_history_is_complete():
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    hist = train(model, _mse, (x, y), epochs=5, batch_size=32, lr=0.05, device="cpu", verbose=False)
    assert isinstance(hist, History)
    assert hist.n_epochs == 5 and hist.best_epoch == 5 and not hist.stopped_early
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert all(math.isnan(v) for v in hist.val_metric)  # no validation given
    frame = hist.to_frame()
    assert list(frame.columns) == ["train_loss", "val"] and list(frame.index) == [1, 2, 3, 4, 5]


def test_early_stopping_restores_the_best_weights():
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    scripted = iter([9.0, 5.0, 3.0, 4.0, 6.0, 7.0, 8.0, 1.0])  # before training, then after epochs 1, 2, ...
    snapshots = []

    def validate(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return next(scripted)

    hist = train(model, _mse, (x, y), epochs=7, batch_size=50, lr=0.05, validate=validate, patience=3,
                 device="cpu", verbose=False)
    # best = 3.0 after epoch 2; epochs 3, 4, 5 do not improve -> stop after epoch 5, before the 1.0 comes
    assert hist.best_epoch == 2 and hist.best_metric == 3.0 and hist.initial_metric == 9.0
    assert hist.n_epochs == 5 and hist.stopped_early
    assert hist.val_metric == [5.0, 3.0, 4.0, 6.0, 7.0]
    best = snapshots[2]  # snapshot 0 is before training
    for name, value in model.state_dict().items():
        assert torch.equal(value, best[name]), f"{name} is not the best epoch's weight"
    assert not torch.equal(model.weight, snapshots[-1]["weight"])  # the last epoch's weights were discarded


def test_mode_max_and_restore_off():
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    values = iter([0.0, 0.5, 0.9, 0.7, 0.6])
    hist = train(model, _mse, (x, y), epochs=4, batch_size=50, lr=0.05, validate=lambda m: next(values),
                 mode="max", patience=2, restore_best=False, device="cpu", verbose=False)
    assert hist.best_epoch == 2 and hist.best_metric == 0.9 and hist.n_epochs == 4 and not hist.stopped_early


def test_initial_weights_kept_when_nothing_improves():
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hist = train(model, _mse, (x, y), epochs=5, batch_size=50, lr=0.05, validate=lambda m: 1.0, patience=2,
                 device="cpu", verbose=False)
    assert hist.best_epoch == 0 and hist.n_epochs == 2
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])


def test_deterministic_for_a_seed_and_callable_data():
    calls = []

    def data(epoch, generator):
        calls.append(epoch)
        x = torch.randn(64, 3, generator=generator)
        return x, x.sum(1)

    def run(seed):
        torch.manual_seed(123)  # the loop must not depend on the global state it was handed
        model = torch.nn.Linear(3, 1)
        torch.nn.init.zeros_(model.weight)
        torch.nn.init.zeros_(model.bias)
        return train(model, _mse, data, epochs=3, batch_size=16, lr=0.01, seed=seed, device="cpu",
                     verbose=False).train_loss

    first, second, other = run(7), run(7), run(8)
    assert first == second and first != other
    assert calls == [1, 2, 3] * 3


def test_bad_arguments_raise_clear_errors():
    x, y = _regression(20)
    model = torch.nn.Linear(3, 1)
    for kwargs, words in [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"mode": "best"}, "mode"),
                          ({"patience": 0}, "patience"), ({"lr": -1.0}, "lr must be a finite number > 0"),
                          ({"optimizer": "lbfgs"}, "optimizer")]:
        with pytest.raises(ValueError, match=words):
            train(model, _mse, (x, y), device="cpu", verbose=False, **kwargs)
    with pytest.raises(ValueError, match="same first dimension"):
        train(model, _mse, (x, y[:5]), device="cpu", verbose=False)
    with pytest.raises(ValueError, match="weight_decay"):
        make_optimizer(model.parameters(), "adam", 0.1, weight_decay=-1)


def test_divergence_is_reported():
    x, y = _regression(64)
    model = torch.nn.Linear(3, 1)
    with pytest.raises(FloatingPointError, match="diverged"):
        train(model, lambda m, xb, yb: _mse(m, xb, yb) * float("inf"), (x, y), epochs=1, device="cpu",
              verbose=False)


def test_progress_bar_shows_loss(capsys):
    x, y = _regression(64)
    train(torch.nn.Linear(3, 1), _mse, (x, y), epochs=2, batch_size=16, validate=lambda m: 0.5, device="cpu",
          metric_name="val_rmse", desc="demo")
    err = capsys.readouterr().err
    assert "demo epoch 1/2" in err and "loss=" in err and "val_rmse=0.5000" in err


# --------------------------------------------------------------------------------------------
# TorchRecommender: the one early-stopping protocol, on a tiny rating model
# --------------------------------------------------------------------------------------------
class _DotNet(torch.nn.Module):
    """r̂ = μ + p_u · q_i, seeded from the generator."""

    def __init__(self, n_users, n_items, d, mean, generator):
        super().__init__()
        self.P = torch.nn.Parameter(torch.randn(n_users, d, generator=generator) * 0.1)
        self.Q = torch.nn.Parameter(torch.randn(n_items, d, generator=generator) * 0.1)
        self.mean = mean

    def forward(self, u, i):
        return self.mean + (self.P[u] * self.Q[i]).sum(-1)


def _mse_loss(net, u, i, r):
    return ((net(u, i) - r) ** 2).mean()


class TinyMF(TorchRecommender):
    """A minimal rating model on the protocol; it remembers the frame its final network trained on."""

    predicts_ratings = True

    def __init__(self, n_factors=4, lr=0.05, weight_decay=0.0, n_epochs=6, batch_size=64, patience=2, val_size=2,
                 val_split="last", refit=False, device="cpu", seed=0, verbose=False):
        self.n_factors, self.lr, self.weight_decay, self.n_epochs = n_factors, lr, weight_decay, n_epochs
        self.batch_size, self.patience, self.val_size, self.val_split = batch_size, patience, val_size, val_split
        self.refit, self.device, self.seed, self.verbose = refit, device, seed, verbose

    def _check_params(self):
        check_int(self, "n_factors", self.n_factors)

    def _setup(self, frame, generator):
        r = frame[RATING].to_numpy(np.float32)
        net = _DotNet(self.n_users, self.n_items, self.n_factors, float(r.mean()), generator)
        return TrainingSetup(net, _mse_loss, (self.user_positions(frame[USER]), self.item_positions(frame[ITEM]), r))

    def _validation_predictions(self, setup, network, users, items):
        return network(torch.as_tensor(users), torch.as_tensor(items))

    def _store(self, setup, frame):
        self.net_, self.frame_ = setup.network, frame

    def _predict(self, users, items):
        with torch.no_grad():
            return self.net_(torch.as_tensor(users), torch.as_tensor(items)).numpy()


@pytest.fixture(scope="module")
def ratings():
    return make_synthetic(n_users=30, n_items=40, ratings_per_user=12, seed=5).ratings


def test_protocol_without_validation(ratings):
    model = TinyMF(val_size=None, n_epochs=3).fit(ratings)
    assert model.history_ is None and model.best_epoch_ == 3 and len(model.loss_) == 3
    assert len(model.frame_) == len(ratings) and model.fit_seconds_ > 0 and model.device_.type == "cpu"


def test_protocol_keeps_the_validation_run_without_refit(ratings):
    model = TinyMF().fit(ratings)
    hist = model.history_
    assert isinstance(hist, History) and hist.metric_name == "val_rmse" and hist.mode == "min"
    assert model.best_epoch_ == hist.best_epoch and model.loss_ == hist.train_loss
    assert len(model.frame_) == len(ratings) - 2 * ratings[USER].nunique()      # each user's last 2 held out
    latest = ratings.sort_values(TIME).groupby(USER).tail(2)
    assert not set(zip(latest[USER], latest[ITEM])) & set(zip(model.frame_[USER], model.frame_[ITEM]))
    # the kept weights are the best epoch's: the RMSE on the slice is the best one recorded
    val = latest
    rmse = np.sqrt(np.mean((np.clip(model.predict(val[USER], val[ITEM]), *model.rating_range_) - val[RATING]) ** 2))
    assert rmse == pytest.approx(hist.best_metric, rel=1e-5)


def test_protocol_refit_trains_again_on_all_of_train(ratings):
    plain, refitted = TinyMF().fit(ratings), TinyMF(refit=True).fit(ratings)
    assert refitted.history_.val_metric == plain.history_.val_metric          # the same validation run
    assert refitted.best_epoch_ == max(plain.history_.best_epoch, 1) and len(refitted.loss_) == refitted.best_epoch_
    assert len(refitted.frame_) == len(ratings)
    assert not np.allclose(refitted.predict(ratings[USER], ratings[ITEM]), plain.predict(ratings[USER], ratings[ITEM]))


def test_protocol_random_validation_slice(ratings):
    model = TinyMF(val_split="random", val_size=0.25).fit(ratings)
    held = ratings.merge(model.frame_[[USER, ITEM]], how="left", indicator=True)
    held = held[held["_merge"] == "left_only"]
    assert len(held) == pytest.approx(0.25 * len(ratings), abs=2)
    newest = ratings.groupby(USER)[TIME].transform("max")
    assert (ratings.loc[held.index, TIME] < newest.loc[held.index]).any()    # not just each user's latest
    other = TinyMF(val_split="random", val_size=0.25, seed=1).fit(ratings)
    assert not model.frame_.index.equals(other.frame_.index)                  # the slice follows the seed
    no_time = TinyMF(val_split="random", val_size=0.25).fit(ratings.drop(columns=[TIME]))   # no timestamp needed
    assert len(no_time.frame_) == len(model.frame_)


def test_protocol_needs_timestamps_for_the_last_ratings(ratings):
    with pytest.raises(ValueError, match=r"TinyMF holds out each user's most recent .*'timestamp' column"):
        TinyMF().fit(ratings.drop(columns=[TIME]))


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": 0}, "TinyMF: lr must be a finite number > 0, got 0"),
    ({"weight_decay": -1.0}, "TinyMF: weight_decay must be a finite number >= 0"),
    ({"n_epochs": 0}, "TinyMF: n_epochs must be an integer >= 1, got 0"),
    ({"patience": 0}, "TinyMF: patience must be an integer >= 1 or None"),
    ({"val_size": 1.5}, "TinyMF: val_size must be an integer >= 1, a share strictly between 0 and 1 or None"),
    ({"val_split": "first"}, r"TinyMF: val_split must be one of \['last', 'random'\], got 'first'"),
    ({"refit": 1}, "TinyMF: refit must be True or False, got 1"),
    ({"seed": -1}, "TinyMF: seed must be an integer >= 0"),
    ({"verbose": "no"}, "TinyMF: verbose must be True or False"),
    ({"n_factors": 0}, "TinyMF: n_factors must be an integer >= 1"),
])
def test_protocol_bad_names_and_values(ratings, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TinyMF(**kwargs).fit(ratings)


def test_make_optimizer_parameter_groups_and_names():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = make_optimizer([{"params": [a]}, {"params": [b], "lr": 0.5}], "sgd", lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5] and opt.param_groups[0]["momentum"] == 0.9
    (a.sum() + b.sum()).backward()
    opt.step()
    assert torch.allclose(a, torch.full((2,), 0.9)) and torch.allclose(b, torch.full((2,), 0.5))
    fused = make_optimizer([a, b], "adam", 0.01, fused=True)      # fused where the device has it, else foreach
    assert isinstance(fused, torch.optim.Adam)
    with pytest.raises(ValueError, match=r"optimizer must be one of \['adam', 'adamw', 'sgd', 'adagrad'\], got 'lbfgs'"):
        make_optimizer([a], "lbfgs")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        make_optimizer([a], "adam", lr=float("nan"))


# --------------------------------------------------------------------------------------------
# no per-batch host synchronisation, mixed precision, validation in blocks
# --------------------------------------------------------------------------------------------
def test_epoch_loss_is_the_exact_mean_of_the_batch_losses(monkeypatch):
    """The loss is summed on the device and read every SYNC_EVERY batches: same number as reading every batch."""
    from recsys_course.models import torch_train

    x, y = _regression(203)
    seen = []

    def loss(m, xb, yb):
        value = _mse(m, xb, yb)
        seen.append((float(value.detach()), len(xb)))
        return value

    monkeypatch.setattr(torch_train, "SYNC_EVERY", 3)
    hist = train(torch.nn.Linear(3, 1), loss, (x, y), epochs=1, batch_size=10, device="cpu", verbose=False)
    expected = sum(v * n for v, n in seen) / sum(n for _, n in seen)
    assert len(seen) == 21 and hist.train_loss[0] == pytest.approx(expected, rel=1e-12)
    assert hist.precision == "float32"


def test_divergence_is_caught_between_syncs(monkeypatch):
    from recsys_course.models import torch_train

    monkeypatch.setattr(torch_train, "SYNC_EVERY", 4)
    x, y = _regression(64)
    calls = []

    def loss(m, xb, yb):  # NaN from the 2nd batch on: caught at the 4th, when the running sum is read
        calls.append(1)
        return _mse(m, xb, yb) * (float("nan") if len(calls) >= 2 else 1.0)

    with pytest.raises(FloatingPointError, match=r"the loss became nan in epoch 1 \(by mini-batch 4\)"):
        train(torch.nn.Linear(3, 1), loss, (x, y), epochs=1, batch_size=8, device="cpu", verbose=False)
    assert len(calls) == 4


def test_precision_choice(monkeypatch):
    from recsys_course.config import ENV_PRECISION
    from recsys_course.models.torch_train import resolve_precision

    cpu = torch.device("cpu")
    monkeypatch.delenv(ENV_PRECISION, raising=False)
    assert resolve_precision(None, cpu) == "float32" and resolve_precision("auto", cpu) == "float32"
    for wanted in ("bf16", "fp16"):
        with pytest.raises(ValueError, match=f"precision='{wanted}'.*mixed precision for CUDA GPUs.*cpu"):
            resolve_precision(wanted, cpu)
    monkeypatch.setenv(ENV_PRECISION, "auto")  # the runner's --precision
    assert resolve_precision(None, cpu) == "float32"
    monkeypatch.setenv(ENV_PRECISION, "half")
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision(None, cpu)
    x, y = _regression(20)
    with pytest.raises(ValueError, match="half"):
        train(torch.nn.Linear(3, 1), _mse, (x, y), epochs=1, device="cpu", verbose=False)


def test_ranking_validation_in_blocks_gives_the_same_ndcg(ratings, monkeypatch):
    from recsys_course.models import BPR, torch_train

    whole = BPR(n_factors=4, n_epochs=2, patience=None, seed=1, verbose=False).fit(ratings)
    monkeypatch.setattr(torch_train, "VALIDATION_CELLS", 3 * 40)  # three users per block
    blocks = BPR(n_factors=4, n_epochs=2, patience=None, seed=1, verbose=False).fit(ratings)
    assert blocks.history_.val_metric == pytest.approx(whole.history_.val_metric, abs=1e-12)

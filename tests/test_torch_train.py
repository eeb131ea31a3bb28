"""recsys_course.models.torch_train: the shared mini-batch loop with early stopping."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recsys_course.models.torch_train import History, make_optimizer, train



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
                          ({"patience": 0}, "patience"), ({"lr": -1.0}, "learning rate"),
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

r"""The one mini-batch training loop every PyTorch model of the course uses.

:func:`train` runs epochs of shuffled mini-batches through ``loss_fn``, shows a text progress bar per epoch
with the running loss, scores the model on a validation slice after every epoch (``validate``) and stops
early when that score has not improved for ``patience`` epochs, restoring the weights of the best epoch:

.. math:: e^\star = \arg\min_{e \le E} \mathrm{val}(\theta_e) \quad(\text{or } \arg\max), \qquad
          \text{stop at the first } e \text{ with } e - e^\star_{\le e} \ge \text{patience}.

It returns a :class:`History` (train loss and validation metric per epoch, the best epoch) that a notebook
can plot. The caller owns the model: the loop only needs ``module.parameters()``, ``state_dict()`` and
``load_state_dict()``, so any ``torch.nn.Module`` fits — matrix factorisation, autoencoders, NCF, GRU4Rec,
SASRec, BERT-style models.

Determinism: the order of the mini-batches comes from a ``torch.Generator`` seeded with ``seed``, and the global
torch RNG (dropout, sampling inside ``loss_fn``) is seeded with the same value, so a run on the CPU is
repeatable bit for bit.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["History", "train", "make_optimizer", "resolve_device", "validation_slice", "fit_early_stopped"]


@dataclass
class History:
    """What happened during :func:`train`: one entry per finished epoch.

    ``train_loss[e]`` is the mean mini-batch loss of epoch ``e + 1`` (weighted by batch size);
    ``val_metric[e]`` the validation score after it (NaN without ``validate``). ``best_epoch`` counts from 1
    (0 = the weights before training were best, or there was no validation); ``stopped_early`` says
    whether patience ran out before ``epochs``.
    """

    train_loss: list = field(default_factory=list)
    val_metric: list = field(default_factory=list)
    metric_name: str = "val"
    mode: str = "min"
    best_epoch: int = 0
    best_metric: float = math.nan
    initial_metric: float = math.nan
    stopped_early: bool = False
    seconds: float = 0.0

    @property
    def n_epochs(self) -> int:
        return len(self.train_loss)

    def to_frame(self) -> pd.DataFrame:
        """One row per epoch (index ``epoch`` from 1): ``train_loss`` and the validation metric."""
        return pd.DataFrame({"train_loss": self.train_loss, self.metric_name: self.val_metric},
                            index=pd.RangeIndex(1, self.n_epochs + 1, name="epoch"))


def resolve_device(device=None):
    """``recsys_course.device.get_device`` (``None`` → CUDA, then MPS, then CPU)."""
    from ..device import get_device

    return get_device(device)


def make_optimizer(params, name: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0):
    """``torch.optim`` optimiser by name: ``adam``, ``adamw``, ``sgd`` (momentum 0.9) or ``adagrad``."""
    import torch

    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"learning rate must be a positive number, got {lr!r}")
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    # foreach=True: one fused update for all parameter tensors (2-3x faster on the CPU than the default loop)
    makers = {
        "adam": lambda: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True),
        "adamw": lambda: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True),
        "sgd": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay, foreach=True),
        "adagrad": lambda: torch.optim.Adagrad(params, lr=lr, weight_decay=weight_decay, foreach=True),
    }
    if name not in makers:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(makers)}")
    return makers[name]()


def _improved(value: float, best: float, mode: str, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def train(module, loss_fn: Callable, data, *, epochs: int = 20, batch_size: int = 1024, lr: float = 1e-3,
          weight_decay: float = 0.0, optimizer="adam", validate: Callable | None = None, mode: str = "min",
          patience: int | None = 3, min_delta: float = 0.0, restore_best: bool = True, seed: int = 0,
          device=None, metric_name: str = "val", desc: str = "", verbose: bool = True) -> History:
    r"""Train ``module`` with mini-batches; early-stop on ``validate``; return the :class:`History`.

    Parameters
    ----------
    module
        A ``torch.nn.Module``; it is moved to ``device`` and trained in place.
    loss_fn
        ``loss_fn(module, *batch) -> scalar tensor``: the mean loss of one mini-batch (include any
        regulariser you want applied per batch).
    data
        A sequence of tensors (or arrays) with the same first dimension — shuffled each epoch and cut into
        batches — or a callable ``data(epoch, generator) -> sequence of tensors`` that builds the epoch's
        examples afresh (e.g. new sampled negatives for BPR); the loop shuffles those too.
    validate
        ``validate(module) -> float``, called after every epoch under ``torch.no_grad()`` with the module in
        eval mode; ``mode`` says whether lower (``"min"``, e.g. RMSE) or higher (``"max"``, e.g. NDCG) is
        better. Without it, all ``epochs`` run and the last weights are kept.
    patience
        Stop after this many epochs without improvement (``None``: never stop early). With
        ``restore_best`` the weights of the best epoch are loaded back at the end.
    optimizer
        A name for :func:`make_optimizer` (``adam``, ``adamw``, ``sgd``, ``adagrad``) with ``lr`` and
        ``weight_decay``, or a ready ``torch.optim.Optimizer`` over the module's parameters.
    seed
        Seeds the batch order (a ``torch.Generator``) and the global torch RNG.
    verbose
        One text progress bar per epoch, showing the running loss (and the validation metric at its end).

    The module is left in eval mode, holding the best weights (``restore_best``) or the last ones.
    """
    import torch

    from ..progress import progress

    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, (int, np.integer))
                                 or patience < 1):
        raise ValueError(f"patience must be a positive integer or None, got {patience!r}")

    device = resolve_device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    module.to(device)
    opt = optimizer if isinstance(optimizer, torch.optim.Optimizer) else make_optimizer(
        module.parameters(), optimizer, lr, weight_decay)

    def as_tensors(parts: Sequence) -> list:
        out = [p if isinstance(p, torch.Tensor) else torch.as_tensor(np.asarray(p)) for p in parts]
        n = len(out[0])
        if any(len(t) != n for t in out):
            raise ValueError(f"every data tensor needs the same first dimension, got {[len(t) for t in out]}")
        return [t.to(device) for t in out]

    def evaluate_now() -> float:
        if validate is None:
            return math.nan
        module.eval()
        with torch.no_grad():
            value = float(validate(module))
        module.train()
        return value

    fixed = None if callable(data) else as_tensors(data)
    hist = History(metric_name=metric_name, mode=mode)
    start = time.perf_counter()
    best_state = None
    if validate is not None:
        hist.initial_metric = hist.best_metric = evaluate_now()
        best_state = copy.deepcopy(module.state_dict()) if restore_best else None
    module.train()
    since_best = 0
    width = len(str(epochs))
    for epoch in range(1, epochs + 1):
        parts = fixed if fixed is not None else as_tensors(data(epoch, generator))
        n = len(parts[0])
        order = torch.randperm(n, generator=generator).to(device)
        total, seen = 0.0, 0
        # a manual bar: iterating a tqdm closes it at the end, before the validation metric is known
        label = f"{desc + ' ' if desc else ''}epoch {epoch:>{width}}/{epochs}"
        bar = progress(total=math.ceil(n / batch_size), desc=label, disable=not verbose, leave=True, ncols=100,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
        for begin in range(0, n, batch_size):
            idx = order[begin:begin + batch_size]
            loss = loss_fn(module, *(t[idx] for t in parts))
            if not torch.isfinite(loss):
                bar.close()
                raise FloatingPointError(f"the loss became {loss.item()} in epoch {epoch}: the model diverged; "
                                         "use a smaller learning rate or more regularisation")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
            bar.update(1)
        hist.train_loss.append(total / max(seen, 1))
        value = evaluate_now()
        hist.val_metric.append(value)
        if validate is not None:
            bar.set_postfix(loss=f"{total / max(seen, 1):.4f}", **{metric_name: f"{value:.4f}"})
        bar.close()
        if validate is None:
            continue
        if _improved(value, hist.best_metric, mode, min_delta):
            hist.best_metric, hist.best_epoch, since_best = value, epoch, 0
            if restore_best:
                best_state = copy.deepcopy(module.state_dict())
        else:
            since_best += 1
            if patience is not None and since_best >= patience:
                hist.stopped_early = epoch < epochs
                break
    if validate is not None and restore_best and best_state is not None:
        module.load_state_dict(best_state)
    if validate is None:
        hist.best_epoch = hist.n_epochs
    module.eval()
    hist.seconds = time.perf_counter() - start
    return hist


def validation_slice(model, train: pd.DataFrame, how: str, size) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit part, validation part) of ``train``, cut in time per user: ``how="share"`` holds out each user's
    last ``size`` share of ratings, ``how="last"`` each user's last ``size`` ratings."""
    from ..config import TIME
    from ..split import leave_last_n, per_user_temporal_split

    if TIME not in train.columns:
        option = "val_share" if how == "share" else "val_n"
        raise ValueError(f"{type(model).__name__} stops early on each user's most recent training ratings, which "
                         f"needs a '{TIME}' column; add one, or pass {option}=None to train a fixed number of "
                         "epochs")
    if how == "share":
        return per_user_temporal_split(train, test_size=size)
    return leave_last_n(train, n=size)


def fit_early_stopped(model, train: pd.DataFrame, how: str, size, name: str):
    """Train a torch model of the course the way all of them are trained: early stopping, then a refit.

    With ``size=None``: ``model.n_epochs`` epochs on all of ``train``. Otherwise train on the fit part of
    :func:`validation_slice`, keep the best epoch, and — if ``model.refit`` — train again on all of ``train``
    for that many epochs (the held-out slice is each user's most recent taste; leaving it out hurts).

    ``model._train_on(frame, epochs, validation_or_None, desc)`` trains one run and returns a tuple whose
    last element is the :class:`History`. Sets ``model.history_`` (the validation run's History, or None)
    and ``model.best_epoch_``. Returns ``(what _train_on returned for the final run, the frame it trained on)``.
    """
    model.history_ = None
    if size is None:
        model.best_epoch_ = model.n_epochs
        return model._train_on(train, model.n_epochs, None, name), train
    fit_part, val_part = validation_slice(model, train, how, size)
    out = model._train_on(fit_part, model.n_epochs, val_part, f"{name} val")
    model.history_ = out[-1]
    model.best_epoch_ = max(out[-1].best_epoch, 1)
    if model.refit:
        return model._train_on(train, model.best_epoch_, None, f"{name} refit"), train
    return out, fit_part

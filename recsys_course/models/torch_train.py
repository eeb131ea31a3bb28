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
torch RNG (dropout, sampling inside ``loss_fn``) is seeded with the same value, so a run on the CPU with one
thread (what ``device.set_threads`` gives the smoke and lesson profiles) is repeatable bit for bit. With several
threads, the backward pass of tensor indexing (``P[u]``) may add a batch's gradients in a different order from
run to run, so factors can differ in the fifth decimal; a GPU differs more (its own random streams).

On a GPU the loop never waits for the device inside an epoch: the loss is summed where it is computed and read
(and checked for NaN/inf) every :data:`SYNC_EVERY` batches and at the end of the epoch, so the host keeps
queueing kernels. ``precision`` (or ``$RECSYS_COURSE_PRECISION``) turns on mixed precision on CUDA: ``"bf16"``
or ``"fp16"`` autocast of the forward pass and loss (fp16 with a gradient scaler), ``"auto"`` = bf16 where the
GPU supports it, else fp16. The default is float32 everywhere, and on a CPU autocast is never used (it is
slower there and changes the numbers).
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..config import ENV_PRECISION, ITEM, RATING, RELEVANCE_THRESHOLD, TIME, USER
from ..metrics import ndcg_of_scores
from .base import Recommender

__all__ = ["History", "train", "make_optimizer", "resolve_device", "resolve_precision", "TrainingSetup",
           "TorchRecommender"]

#: Read the running loss back from the device (and check it is finite) once every this many mini-batches.
SYNC_EVERY = 100
#: The ranking validation scores users in blocks of at most this many (user, item) cells (128 MiB in float64).
VALIDATION_CELLS = 1 << 24
PRECISIONS = ("float32", "bf16", "fp16", "auto")


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
    precision: str = "float32"

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


def resolve_precision(precision: str | None, device) -> str:
    """The precision a run trains in: ``precision``, else ``$RECSYS_COURSE_PRECISION``, else ``"float32"``.

    ``"auto"`` is bf16 on a CUDA GPU that supports it, fp16 on an older one, float32 elsewhere. Asking for bf16
    or fp16 on a device other than CUDA is an error (autocast on a CPU is slower than float32 and changes the
    results; on the CPU the course trains in float32).
    """
    import torch

    from ..checks import check_choice

    wanted = precision or os.environ.get(ENV_PRECISION, "").strip() or "float32"
    check_choice(None, "precision", wanted, PRECISIONS)
    if wanted == "float32":
        return wanted
    if device.type != "cuda":
        if wanted == "auto":
            return "float32"
        raise ValueError(f"precision={wanted!r} (argument or ${ENV_PRECISION}) is mixed precision for CUDA GPUs, "
                         f"but this run is on {device.type}; use 'float32' or 'auto' (float32 off CUDA)")
    if wanted == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return wanted


def make_optimizer(params, name: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0, *,
                   fused: bool = False):
    """The course's one optimiser factory: ``adam``, ``adamw``, ``sgd`` (momentum 0.9) or ``adagrad``.

    ``params`` is what ``torch.optim`` accepts: parameters, or parameter groups (dicts with their own ``lr``).
    ``weight_decay`` is the optimiser's L2 term on every parameter it updates (see ``weight_decay`` in the
    glossary of CONTRIBUTING.md; a model's ``reg`` is a penalty inside its loss instead). The update runs as one
    multi-tensor step (``foreach``), or with ``fused=True`` as torch's fused Adam/AdamW kernel where the device
    has one (several times faster for millions of parameters; equal up to rounding).
    """
    import torch

    from ..checks import check_choice, check_number

    check_number(None, "lr", lr, positive=True)
    check_number(None, "weight_decay", weight_decay)
    check_choice(None, "optimizer", name, ("adam", "adamw", "sgd", "adagrad"))
    params = list(params)
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
            "adagrad": torch.optim.Adagrad}[name]
    extra = {"momentum": 0.9} if name == "sgd" else {}
    if fused and name in ("adam", "adamw"):
        try:
            return kind(params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device / torch version
            pass
    return kind(params, lr=lr, weight_decay=weight_decay, foreach=True, **extra)


def _improved(value: float, best: float, mode: str, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def train(module, loss_fn: Callable, data, *, epochs: int = 20, batch_size: int = 1024, lr: float = 1e-3,
          weight_decay: float = 0.0, optimizer="adam", validate: Callable | None = None, mode: str = "min",
          patience: int | None = 3, min_delta: float = 0.0, restore_best: bool = True, seed: int = 0,
          device=None, metric_name: str = "val", desc: str = "", verbose: bool = True,
          precision: str | None = None) -> History:
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
    precision
        ``"float32"`` (default), ``"bf16"``, ``"fp16"`` or ``"auto"``: see :func:`resolve_precision`
        (``None``: ``$RECSYS_COURSE_PRECISION``, else float32).

    The module is left in eval mode, holding the best weights (``restore_best``) or the last ones.
    """
    import torch

    from ..checks import check_choice, check_int

    check_int(None, "epochs", epochs)
    check_int(None, "batch_size", batch_size)
    check_choice(None, "mode", mode, ("min", "max"))
    check_int(None, "patience", patience, allow_none=True)

    device = resolve_device(device)
    amp = _Autocast(resolve_precision(precision, device), device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    module.to(device)
    opt = optimizer if isinstance(optimizer, torch.optim.Optimizer) else make_optimizer(
        module.parameters(), optimizer, lr, weight_decay)

    fixed = None if callable(data) else _as_tensors(data, device)
    hist = History(metric_name=metric_name, mode=mode, precision=amp.precision)
    start = time.perf_counter()
    best = _BestWeights(module, restore_best and validate is not None)
    if validate is not None:
        hist.initial_metric = hist.best_metric = _validate(module, validate)
    module.train()
    for epoch in range(1, epochs + 1):
        parts = fixed if fixed is not None else _as_tensors(data(epoch, generator), device)
        label = f"{desc + ' ' if desc else ''}epoch {epoch:>{len(str(epochs))}}/{epochs}"
        bar, loss = _epoch(module, loss_fn, opt, parts, batch_size, generator, label, epoch, verbose, amp)
        hist.train_loss.append(loss)
        value = _validate(module, validate)
        hist.val_metric.append(value)
        if validate is not None:
            bar.set_postfix(loss=f"{loss:.4f}", **{metric_name: f"{value:.4f}"})
        bar.close()
        if validate is not None and best.update(hist, epoch, value, min_delta) == patience:
            hist.stopped_early = epoch < epochs
            break
    best.restore()
    hist.best_epoch = hist.best_epoch if validate is not None else hist.n_epochs
    module.eval()
    hist.seconds = time.perf_counter() - start
    return hist


class _BestWeights:
    """Early-stopping bookkeeping: a copy of the best epoch's weights and the epochs since it."""

    def __init__(self, module, keep: bool):
        self.module, self.keep, self.since = module, keep, 0
        self.state = copy.deepcopy(module.state_dict()) if keep else None  # the untrained weights may be best

    def update(self, hist: History, epoch: int, value: float, min_delta: float) -> int:
        """Record the epoch's validation ``value``; return the number of epochs since the best one."""
        if _improved(value, hist.best_metric, hist.mode, min_delta):
            hist.best_metric, hist.best_epoch, self.since = value, epoch, 0
            if self.keep:
                self.state = copy.deepcopy(self.module.state_dict())
        else:
            self.since += 1
        return self.since

    def restore(self) -> None:
        if self.state is not None:
            self.module.load_state_dict(self.state)


def _validate(module, validate) -> float:
    """``validate(module)`` in eval mode without gradients (NaN without ``validate``); back to train mode."""
    import torch

    if validate is None:
        return math.nan
    module.eval()
    with torch.no_grad():
        value = float(validate(module))
    module.train()
    return value


def _as_tensors(parts: Sequence, device) -> list:
    """The epoch's data as tensors on ``device``, checked to share their first dimension."""
    import torch

    out = [p if isinstance(p, torch.Tensor) else torch.as_tensor(np.asarray(p)) for p in parts]
    n = len(out[0])
    if any(len(t) != n for t in out):
        raise ValueError(f"every data tensor needs the same first dimension, got {[len(t) for t in out]}")
    return [t.to(device) for t in out]


class _Autocast:
    """Mixed precision for one run: the autocast context of the forward pass and the fp16 gradient scaler."""

    def __init__(self, precision: str, device):
        import torch

        self.precision = precision
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    def forward(self):
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def step(self, loss, opt) -> None:
        if self.scaler is None:
            loss.backward()
            opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()


def _epoch(module, loss_fn, opt, parts, batch_size: int, generator, label: str, epoch: int, verbose: bool,
           amp: _Autocast):
    """One epoch of shuffled mini-batches; returns the (still open) progress bar and the mean batch loss.

    The batch losses are summed on the device; the sum is read back (one host synchronisation) every
    :data:`SYNC_EVERY` batches and at the end, which is also when a NaN or infinite loss is caught.
    """
    import torch

    from ..progress import progress

    n = len(parts[0])
    order = torch.randperm(n, generator=generator).to(parts[0].device)
    total = torch.zeros((), dtype=torch.float64, device=parts[0].device)
    n_batches = math.ceil(n / batch_size)
    # a manual bar: iterating a tqdm closes it at the end, before the validation metric is known
    bar = progress(total=n_batches, desc=label, disable=not verbose, leave=True, ncols=100,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
    for batch, begin in enumerate(range(0, n, batch_size), start=1):
        idx = order[begin:begin + batch_size]
        with amp.forward():
            loss = loss_fn(module, *(t[idx] for t in parts))
        opt.zero_grad(set_to_none=True)
        amp.step(loss, opt)
        total += loss.detach().double() * len(idx)
        if batch % SYNC_EVERY == 0 or batch == n_batches:
            seen = min(begin + batch_size, n)
            mean = float(total) / seen
            if not math.isfinite(mean):
                bar.close()
                raise FloatingPointError(f"the loss became {mean} in epoch {epoch} (by mini-batch {batch}): the "
                                         "model diverged; use a smaller learning rate or more regularisation")
            bar.set_postfix(loss=f"{mean:.4f}", refresh=False)
        bar.update(1)
    return bar, float(total) / max(n, 1)


# --------------------------------------------------------------------------------------------
# the one early-stopping protocol of the course's torch models
# --------------------------------------------------------------------------------------------
@dataclass
class TrainingSetup:
    """What a torch model hands the protocol for one training run (see :class:`TorchRecommender`).

    ``network`` is the ``torch.nn.Module``; ``loss(network, *batch)`` the mean loss of a mini-batch; ``data``
    the tensors the loop cuts into batches (or ``data(epoch, generator)``, see :func:`train`); ``parameters``
    what the optimiser updates (default: the network's trainable parameters; parameter groups allowed);
    ``state`` anything else the model needs back in its validation and ``_store`` hooks.
    """

    network: object
    loss: Callable
    data: object
    parameters: object = None
    state: dict = field(default_factory=dict)


class TorchRecommender(Recommender):
    r"""Base class of every PyTorch model: it declares its network, its loss and its validation; this class
    runs the one training protocol, the same for all of them.

    1. Check the shared training parameters (:func:`~recsys_course.checks.check_training`) and the
       model's own (``_check_params``); pick the device (``device=None``: CUDA, then MPS, then CPU).
    2. ``_prepare(train)``: whatever the model derives from the whole train once (sequences, kept items, ...).
    3. With ``val_size=None``: train ``n_epochs`` epochs on all of train. Otherwise cut a validation slice with
       :func:`recsys_course.split.validation_split` — ``val_split="last"`` holds out each user's most recent
       ``val_size`` ratings (an integer count or a share), mirroring the leaderboard's temporal tracks;
       ``val_split="random"`` holds out random ones, mirroring a random split — train on the rest, score the
       slice after every epoch (RMSE for rating models, NDCG@10 for ranking models, ranked exactly as
       :func:`recsys_course.evaluate.evaluate` ranks) and stop when it has not improved for ``patience``
       epochs, keeping the best epoch's weights.
    4. With ``refit=True``, train again from the same initialisation on all of train for the best number of
       epochs (the held-out ratings are often the most useful ones); otherwise keep the validation run.
    5. ``_store(setup, frame)``: keep what prediction needs (``frame`` is the data the final network saw).

    A subclass implements ``_setup(frame, generator) -> TrainingSetup`` and ``_store``, and, for validation,
    ``_validation_predictions(setup, network, users, items)`` (rating models: predictions of position pairs)
    or ``_validation_scores(setup, network, users) -> (len(users), n_items)`` (ranking models). After ``fit``:
    ``history_`` (the validation run's :class:`History`, or None), ``best_epoch_``, ``loss_`` (train loss per
    epoch of the final run), ``device_``, ``fit_seconds_``.
    """

    #: users who would keep fewer than this many training ratings hold nothing out (val_split with a count)
    min_train = 1
    #: which held-out ratings count as relevant for the validation NDCG (None: every held-out item)
    validation_relevance: float | None = RELEVANCE_THRESHOLD
    #: use torch's fused Adam kernel (the autoencoders, with millions of parameters)
    fused_optimizer = False

    # ---- hooks --------------------------------------------------------------------------------
    def _check_params(self) -> None:
        """Check the model's own hyper-parameters (the shared ones are checked by the protocol)."""

    def _prepare(self, train: pd.DataFrame) -> None:
        """Derive what the model needs from the whole train, once, before any training run."""

    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        raise NotImplementedError

    def _store(self, setup: TrainingSetup, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def _validation_predictions(self, setup: TrainingSetup, network, users, items):
        raise NotImplementedError

    def _validation_scores(self, setup: TrainingSetup, network, users: np.ndarray):
        raise NotImplementedError

    def _patience(self) -> int | None:
        """The patience this run stops on: ``patience`` (a model may derive it, see BERT4Rec)."""
        return self.patience

    # ---- the protocol -------------------------------------------------------------------------
    def _fit(self, train, users, items):
        from ..checks import check_training
        from ..split import validation_split

        start = time.perf_counter()
        check_training(self)
        self._check_params()
        self.device_ = resolve_device(self.device)
        self._prepare(train)
        name = type(self).__name__
        self.history_ = None
        frame = train
        if self.val_size is None:
            setup, hist = self._run(train, self.n_epochs, None, name)
            self.best_epoch_ = hist.n_epochs
        else:
            if self.val_split == "last" and TIME not in train.columns:
                raise ValueError(f"{name} holds out each user's most recent training ratings for early stopping "
                                 f"(val_split='last'), which needs a '{TIME}' column; add one, pass "
                                 "val_split='random', or val_size=None to train n_epochs epochs")
            fit_part, val_part = validation_split(train, self.val_split, self.val_size, seed=self.seed,
                                                  min_train=self.min_train)
            setup, hist = self._run(fit_part, self.n_epochs, val_part, f"{name} val")
            self.history_, self.best_epoch_, frame = hist, hist.best_epoch, fit_part
            if self.refit:
                self.best_epoch_ = max(hist.best_epoch, 1)
                setup, hist = self._run(train, self.best_epoch_, None, f"{name} refit")
                frame = train
        self.loss_ = list(hist.train_loss)
        self._store(setup, frame)
        self.fit_seconds_ = time.perf_counter() - start

    def _run(self, frame: pd.DataFrame, epochs: int, validation: pd.DataFrame | None, desc: str):
        """One training run on ``frame``: returns ``(setup, History)``."""
        import torch

        setup = self._setup(frame, torch.Generator().manual_seed(self.seed))
        validate = None if validation is None else self._validator(setup, frame, validation)
        setup.network.to(self.device_)
        params = setup.parameters
        if params is None:
            params = [p for p in setup.network.parameters() if p.requires_grad]
        optimizer = make_optimizer(params, "adam", self.lr, self.weight_decay, fused=self.fused_optimizer)
        hist = train(setup.network, setup.loss, setup.data, epochs=epochs, batch_size=self.batch_size,
                     optimizer=optimizer, validate=validate, mode="min" if self.predicts_ratings else "max",
                     patience=self._patience(), seed=self.seed, device=self.device_,
                     metric_name="val_rmse" if self.predicts_ratings else "val_ndcg@10", desc=desc,
                     verbose=self.verbose)
        return setup, hist

    def _validator(self, setup: TrainingSetup, fit_part: pd.DataFrame, val_part: pd.DataFrame) -> Callable:
        """``validate(network) -> float``: RMSE of the slice (rating models) or its NDCG@10 (ranking models)."""
        u = self.user_positions(val_part[USER])
        i = self.item_positions(val_part[ITEM])
        if self.predicts_ratings:
            lo, hi = self.rating_range_
            r = val_part[RATING].to_numpy(np.float32)
            target = None

            def validate(network) -> float:
                nonlocal target
                pred = self._validation_predictions(setup, network, u, i)
                if hasattr(pred, "detach"):  # torch: computed where the network lives, in float32
                    import torch

                    if target is None:
                        target = torch.as_tensor(r, device=pred.device)
                    return float(torch.sqrt(((torch.clamp(pred, lo, hi) - target) ** 2).mean()))
                return float(np.sqrt(np.mean((np.clip(pred, lo, hi) - r) ** 2)))

            return validate
        relevant_rows = np.ones(len(val_part), dtype=bool)
        if self.validation_relevance is not None:
            relevant_rows = val_part[RATING].to_numpy() >= self.validation_relevance
            if not relevant_rows.any():  # implicit data without high ratings: every held-out item is relevant
                relevant_rows[:] = True
        n_rel = np.bincount(u[relevant_rows], minlength=self.n_users)
        users = np.flatnonzero(n_rel)
        row_of = np.full(self.n_users, -1)
        row_of[users] = np.arange(len(users))
        known = relevant_rows & (i >= 0)  # held-out items outside the catalogue count as misses
        shape = (len(users), self.n_items)
        relevant = sp.csr_matrix((np.ones(int(known.sum())), (row_of[u[known]], i[known])), shape=shape)
        fu = self.user_positions(fit_part[USER])
        fi = self.item_positions(fit_part[ITEM])
        in_val = row_of[fu] >= 0
        seen = sp.csr_matrix((np.ones(int(in_val.sum())), (row_of[fu[in_val]], fi[in_val])), shape=shape)
        n_rel = n_rel[users]
        block = max(1, VALIDATION_CELLS // max(self.n_items, 1))  # users scored at once: memory stays bounded

        def validate(network) -> float:
            total = 0.0
            for start in range(0, len(users), block):
                rows = slice(start, start + block)
                scores = self._validation_scores(setup, network, users[rows])
                total += len(scores) * ndcg_of_scores(scores, seen[rows], relevant[rows], n_rel[rows], k=10)
            return total / len(users)

        return validate

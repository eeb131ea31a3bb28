r"""``recsys-course gpu-check`` — does every torch model of the course train on CUDA as it does on the CPU, and
how much faster?

For every torch model (the subclasses of :class:`~recsys_course.models.torch_train.TorchRecommender` exported by
:mod:`recsys_course.models`), from the same seed, the check fits the model for a few epochs (``--epochs``,
``val_size=None``: no early stopping, so both runs train exactly that many epochs) on the CPU and on CUDA, on
one fixed split of the vendored ml-latest-small (the leaderboard's splits: :func:`~recsys_course.split.rating_split`
for rating models, :func:`~recsys_course.split.ranking_split` for ranking models; ``--users N`` keeps a seeded
random sample of N users for speed), and prints one row per model: the train loss of the first and the last
epoch on each device, the track metric on each device (RMSE for rating models, NDCG@10 for ranking models, by
:func:`~recsys_course.evaluate.evaluate`), their difference and its tolerance, the fit seconds on each device
and the speed-up (CPU seconds / CUDA seconds).

A model **fails** when a fit raises (e.g. the loss diverged), when a loss or the metric is not finite, when its
train loss does not decrease from the first to the last epoch on either device, or when the two metrics differ
by more than the tolerance; the exit code is then 1 and a line per failure says which model and why.

Tolerance: :math:`|\Delta\,\mathrm{RMSE}| \le 0.01` and :math:`|\Delta\,\mathrm{NDCG@10}| \le 0.03` on all
610 users (:data:`TOLERANCE`; on a sample of :math:`n` users the NDCG@10 one grows as :math:`0.03\sqrt{610/n}`,
see below; ``--rmse-tol`` / ``--ndcg-tol`` set them outright). The two runs start from the same weights (every
network is initialised from a CPU ``torch.Generator`` seeded with ``seed``) and see the same mini-batches in the
same order (also drawn on the CPU), so in exact arithmetic they would be identical. They are not bit for bit,
for two reasons:

* rounding: float32 matrix products and reductions run in another order on the GPU (cuBLAS picks its own
  blocking), and scattered gradients (the rows of an embedding table that a batch indexes) may be accumulated
  with ``atomicAdd`` in whatever order the threads finish. This alone is tiny — even two CPU runs on two threads differ, by ~1e-5 in the factors of
  BiasedMF after three epochs, ~1e-7 in its RMSE. The rating models (BiasedMF, AutoRec, BERTBasedCF,
  BERTOffsetCF) draw no random numbers inside their loss, so this is all that separates their two runs; their
  RMSE over three epochs moves by 0.0005–0.011 between *different seeds* (new weights, new batch order), and
  0.01 is two orders of magnitude above rounding while still catching a model that does not learn on one device.
* random streams: dropout (DAE, MultVAE, GRU4Rec, SASRec, BERT4Rec), MultVAE's reparameterisation noise and the
  in-loss sampled negatives of GRU4Rec and SASRec are drawn from the *device's* generator, and CUDA's (Philox)
  gives another stream than the CPU's (Mersenne Twister) from the same seed: the two runs are two equally valid
  samples of one training procedure, and their NDCG@10 differs by sampling noise. Measured on the CPU by
  changing only that stream (eight streams, three epochs, ml-latest-small): the standard deviation of NDCG@10 is
  0.001–0.007 (BERT4Rec the largest), so the difference of two runs has a standard deviation up to ~0.01;
  0.03 is three of those (the largest of 28 pairwise differences was 0.020, BERT4Rec; 0.02 would fail a sound
  BERT4Rec about one run in twenty). A ranking model whose GPU run is broken ranks near the random floor
  (~0.005), 0.02–0.06 below one trained for three epochs: the tolerance catches the grosser cases, and the
  train loss, which must fall on both devices, the rest. The noise is an average
  over test users, so it grows as :math:`1/\sqrt{n}` with fewer users (measured: ×2 at 100 users): hence the
  scaled tolerance for ``--users``. The ranking models without in-loss randomness (BPR, NeuMF) differ only by
  rounding and agree far more closely than that.

Epochs: every model trains ``--epochs`` epochs (default 3), except that a model listed in :data:`MIN_EPOCHS`
trains at least that many: BERTBasedCF's train loss sits on the plateau of its fixed biases for its first three
epochs on ml-latest-small (seed 0: 0.6528, 0.6529, 0.6531, then 0.6502, 0.6316, 0.5811, ...) while its head
wakes up, so three epochs cannot tell whether it trains. The ``epochs`` column shows what each model ran.

Timing: before its timed fits, each model is fitted once for one epoch on the first device, untimed
(``--no-warmup`` skips it), so that the one-off costs — CUDA context, lazy kernel loading, cuBLAS/cuDNN
handles, the text encoder's vectors going into the on-disk cache — are not charged to whichever fit comes
first. The CPU runs use torch's current thread count (printed in the header). The fit seconds cover the whole
``fit`` (data preparation on the CPU included), as a student experiences it, with the device synchronised
before the clock stops. A speed-up below 1 is not a failure: a small model with small batches is bound by
kernel launches on a GPU.

The comparison is :func:`compare` (any two devices: ``compare(names, devices=("cpu", "cpu"))`` checks that the
same seed gives the same numbers); :func:`main` is the command line.
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import config
from ..config import ITEM, USER

PROG = "recsys-course gpu-check"

#: The largest |metric on device A − metric on device B| that passes, by metric, on all of ml-latest-small (see
#: the module docstring; :func:`tolerances` scales the NDCG@10 one to a sample of users).
TOLERANCE = {"rmse": 0.01, "ndcg@10": 0.03}
#: The users of ml-latest-small, for which :data:`TOLERANCE` holds.
REFERENCE_USERS = 610
#: The fewest epochs a model is checked with: its train loss is flat for the first ones (see the module docstring).
MIN_EPOCHS = {"BERTBasedCF": 5}

#: Models that read text with the BERT-family encoder (they need ``item_text`` / ``movies`` and an encoder).
_TEXT_PARAMS = ("encoder",)


def tolerances(n_users: int = REFERENCE_USERS) -> dict[str, float]:
    r""":data:`TOLERANCE` for data of ``n_users`` users: the NDCG@10 one times :math:`\sqrt{610/n}` (sampling noise
    of a mean over fewer test users; never below the full-data value), the RMSE one unchanged (rounding only)."""
    scale = math.sqrt(max(1.0, REFERENCE_USERS / max(int(n_users), 1)))
    return {"rmse": TOLERANCE["rmse"], "ndcg@10": round(TOLERANCE["ndcg@10"] * scale, 3)}


# --------------------------------------------------------------------------------------------
# which models, and how to build one
# --------------------------------------------------------------------------------------------
def torch_models() -> dict[str, type]:
    """Every torch model exported by :mod:`recsys_course.models`, by class name (in ``__all__`` order)."""
    import recsys_course.models as models
    from recsys_course.models import TorchRecommender

    found = {}
    for name in models.__all__:
        obj = getattr(models, name)
        if inspect.isclass(obj) and issubclass(obj, TorchRecommender) and obj is not TorchRecommender:
            found[name] = obj
    return found


def is_text_model(cls: type) -> bool:
    """Whether ``cls`` runs the text encoder (slow on a CPU: it encodes every user's history text)."""
    from ..models.build import init_params

    return any(name in init_params(cls) for name in _TEXT_PARAMS)


def resolve_models(names: Sequence[str] | None) -> list[str]:
    """The model names to check: ``names`` (case-insensitive, in the order given, duplicates dropped), or every
    torch model for ``None``. Raises ``ValueError`` naming the valid names for an unknown one."""
    available = torch_models()
    if not names:
        return list(available)
    by_lower = {name.lower(): name for name in available}
    unknown = [n for n in names if n.lower() not in by_lower]
    if unknown:
        raise ValueError(f"unknown model{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                         f"the torch models are: {', '.join(available)}")
    return list(dict.fromkeys(by_lower[n.lower()] for n in names))


def build(cls: type, ml, *, epochs: int, device: str, seed: int = 0, encoder=None, **overrides):
    """``cls`` with its default hyper-parameters, set to train ``epochs`` epochs on ``device`` from ``seed``
    without early stopping (``val_size=None``) or progress bars; the data a constructor needs (``movies``,
    ``item_text``, ``features``, ...) is built from ``ml`` (``ratings``, ``movies``, ``tags``), and ``encoder``
    is passed to the text models."""
    from ..models.build import init_params, required_data

    params = init_params(cls)
    kwargs = {"n_epochs": epochs, "val_size": None, "seed": seed, "device": device, "verbose": False,
              **required_data(cls, ml)}
    if encoder is not None and "encoder" in params:
        kwargs["encoder"] = encoder
    kwargs.update(overrides)
    return cls(**{k: v for k, v in kwargs.items() if k in params})


# --------------------------------------------------------------------------------------------
# the data
# --------------------------------------------------------------------------------------------
@dataclass
class Data:
    """The ratings the check trains on, their two splits, and the films' ``movies`` / ``tags``."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    tags: pd.DataFrame
    splits: dict = field(default_factory=dict)

    def split(self, rating_model: bool):
        """``(train, test)``: the rating split for rating models, the ranking split otherwise (computed once)."""
        from ..split import ranking_split, rating_split

        kind = "rating" if rating_model else "ranking"
        if kind not in self.splits:
            self.splits[kind] = (rating_split if rating_model else ranking_split)(self.ratings)
        return self.splits[kind]


def load_data(users: int | None = None, seed: int = 0, ratings: pd.DataFrame | None = None,
              movies: pd.DataFrame | None = None, tags: pd.DataFrame | None = None) -> Data:
    """ml-latest-small (or the ``ratings`` / ``movies`` / ``tags`` given), restricted to a seeded random sample
    of ``users`` users (``None``: all), and the films those users rated (so a text model encodes only those)."""
    if ratings is None:
        from ..data import load_movielens

        ml = load_movielens()
        ratings, movies, tags = ml.ratings, ml.movies, ml.tags
    if movies is None:
        movies = pd.DataFrame({ITEM: np.sort(ratings[ITEM].unique())})
    if tags is None:
        tags = pd.DataFrame(columns=[USER, ITEM, "tag", "timestamp"])
    if users is not None:
        ids = np.sort(ratings[USER].unique())
        if users < len(ids):
            keep = np.random.default_rng(seed).choice(ids, size=users, replace=False)
            ratings = ratings[ratings[USER].isin(keep)].reset_index(drop=True)
    films = ratings[ITEM].unique()
    return Data(ratings, movies[movies[ITEM].isin(films)].reset_index(drop=True),
                tags[tags[ITEM].isin(films)].reset_index(drop=True))


# --------------------------------------------------------------------------------------------
# the comparison
# --------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One fit on one device: the per-epoch train loss, the track metric, the fit seconds (or the error)."""

    device: str
    losses: list = field(default_factory=list)
    metric: float = math.nan
    seconds: float = math.nan
    error: str | None = None

    @property
    def loss_first(self) -> float:
        return float(self.losses[0]) if self.losses else math.nan

    @property
    def loss_last(self) -> float:
        return float(self.losses[-1]) if self.losses else math.nan

    def problems(self, label: str) -> list[str]:
        """What went wrong in this run, one phrase each (empty: it trained)."""
        if self.error is not None:
            return [f"fit on {label} failed: {self.error}"]
        out = []
        if not self.losses or not all(math.isfinite(x) for x in self.losses):
            out.append(f"non-finite train loss on {label}: {_losses(self.losses)}")
        elif len(self.losses) >= 2 and not self.loss_last < self.loss_first:
            out.append(f"train loss did not decrease on {label}: {_losses(self.losses)} (if it is flat on both "
                       "devices, the model may need more --epochs to leave its starting plateau)")
        if not math.isfinite(self.metric):
            out.append(f"the metric is {self.metric} on {label}")
        return out


def _losses(losses) -> str:
    return "[" + ", ".join(f"{x:.4g}" for x in losses) + "]"


@dataclass
class Row:
    """One model compared on two devices (``runs[0]`` on ``devices[0]``, normally CUDA; ``runs[1]`` the CPU)."""

    model: str
    metric: str
    epochs: int
    runs: tuple
    tolerance: float

    @property
    def devices(self) -> tuple:
        return tuple(r.device for r in self.runs)

    @property
    def labels(self) -> tuple:
        """The devices' names, numbered when both are the same (``cpu#1``, ``cpu#2``)."""
        a, b = self.devices
        return (f"{a}#1", f"{b}#2") if a == b else (a, b)

    @property
    def delta(self) -> float:
        """Metric on the first device minus metric on the second."""
        return self.runs[0].metric - self.runs[1].metric

    @property
    def speedup(self) -> float:
        """Seconds on the second device / seconds on the first (> 1: the first, CUDA, is faster)."""
        a, b = self.runs[0].seconds, self.runs[1].seconds
        return b / a if a > 0 and math.isfinite(a) and math.isfinite(b) else math.nan

    @property
    def problems(self) -> list[str]:
        """Why this model fails the check, one phrase each (empty: it passes)."""
        out = [p for run, label in zip(self.runs, self.labels) for p in run.problems(label)]
        if math.isfinite(self.delta) and not abs(self.delta) <= self.tolerance:
            a, b = self.labels
            out.append(f"{self.metric} differs by {abs(self.delta):.4f} between {a} ({self.runs[0].metric:.4f}) "
                       f"and {b} ({self.runs[1].metric:.4f}), more than the tolerance {self.tolerance}")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems


def _synchronize(device: str) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _fit_once(cls, data: Data, *, rating_model: bool, epochs: int, device: str, seed: int, encoder) -> Run:
    """Fit ``cls`` on the split's train on ``device``, time it, evaluate it on the split's test."""
    from ..evaluate import evaluate

    train, test = data.split(rating_model)
    run = Run(str(device))
    try:
        model = build(cls, data, epochs=epochs, device=device, seed=seed, encoder=encoder)
        _synchronize(device)
        start = time.perf_counter()
        model.fit(train)
        _synchronize(device)
        run.seconds = time.perf_counter() - start
        run.losses = [float(x) for x in model.loss_]
        metrics = evaluate(model, train, test, k=10)
        run.metric = float(metrics["rmse" if rating_model else "ndcg@10"])
    except Exception as exc:  # noqa: BLE001 — a model that fails must not stop the check of the others
        run.error = f"{type(exc).__name__}: {exc}"
    return run


@contextlib.contextmanager
def _float32():
    """Both runs train in float32: ``$RECSYS_COURSE_PRECISION`` (mixed precision on CUDA) is set aside meanwhile."""
    name = getattr(config, "ENV_PRECISION", "RECSYS_COURSE_PRECISION")
    before = os.environ.get(name)
    os.environ[name] = "float32"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def compare(model_names: Sequence[str] | None = None, devices: Sequence[str] = ("cuda", "cpu"), *, epochs: int = 3,
            users: int | None = None, seed: int = 0, data: Data | None = None, tolerance: dict | None = None,
            warmup: bool = True, encoder=None, log: Callable[[str], None] | None = None) -> list[Row]:
    """Fit every model of ``model_names`` (``None``: every torch model) on both ``devices`` from ``seed`` for
    ``epochs`` epochs; return one :class:`Row` per model (see the module docstring).

    ``data`` defaults to :func:`load_data` ``(users, seed)``; ``tolerance`` maps ``"rmse"`` / ``"ndcg@10"`` to the
    allowed difference (default :func:`tolerances` of the data's number of users); a model of :data:`MIN_EPOCHS`
    trains at least that many epochs; ``warmup`` fits each model once for one epoch on
    ``devices[0]`` first, untimed; ``encoder`` is the text models' encoder (default: the packaged one, loaded on
    ``devices[0]`` and shared by both runs, so that both see the same text vectors); ``log`` gets a line per fit.
    Both runs train in float32, whatever ``$RECSYS_COURSE_PRECISION`` says.
    """
    from ..checks import check_int

    check_int(None, "epochs", epochs)
    if epochs < 2:
        raise ValueError(f"epochs must be at least 2 to see the train loss decrease, got {epochs}")
    if len(devices) != 2:
        raise ValueError(f"devices must be two device names, got {devices!r}")
    devices = tuple(str(d) for d in devices)
    names = resolve_models(model_names)
    classes = torch_models()
    if data is None:
        data = load_data(users, seed)
    tol = {**tolerances(data.ratings[USER].nunique()), **(tolerance or {})}
    if encoder is None and any(is_text_model(classes[n]) for n in names):
        from ..text import load_text_encoder

        encoder = load_text_encoder(device=devices[0])
    say = log or (lambda line: None)

    rows = []
    with _float32():
        for name in names:
            rows.append(_compare_one(name, classes[name], devices, epochs, seed, data, tol, warmup, encoder, say))
    return rows


def _compare_one(name, cls, devices, epochs, seed, data, tol, warmup, encoder, say) -> Row:
    """One model on both devices (see :func:`compare`)."""
    rating_model = bool(cls.predicts_ratings)
    metric = "rmse" if rating_model else "ndcg@10"
    n_epochs = max(epochs, MIN_EPOCHS.get(name, 0))
    if warmup:
        say(f"{name}: warm-up, 1 epoch on {devices[0]}")
        _fit_once(cls, data, rating_model=rating_model, epochs=1, device=devices[0], seed=seed, encoder=encoder)
    runs = []
    for device in devices:
        run = _fit_once(cls, data, rating_model=rating_model, epochs=n_epochs, device=device, seed=seed,
                        encoder=encoder)
        say(f"{name} on {device}: " + (run.error if run.error else
                                       f"{metric} {run.metric:.4f}, {run.seconds:.1f} s"))
        runs.append(run)
    return Row(name, metric, n_epochs, tuple(runs), float(tol[metric]))


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------
def _num(x: float, fmt: str) -> str:
    return format(x, fmt) if math.isfinite(x) else "–"


def table(rows: Sequence[Row]) -> str:
    """The rows as a plain-text table (one line per model, right-aligned numbers)."""
    if not rows:
        return "(no model)"
    a, b = rows[0].labels
    head = ["model", "epochs", f"loss {a} first→last", f"loss {b} first→last", "metric", a, b, "Δ", "tol",
            f"fit s {a}", f"fit s {b}", "speed-up", "verdict"]
    body = []
    for r in rows:
        ra, rb = r.runs
        body.append([r.model, str(r.epochs),
                     f"{_num(ra.loss_first, '.4f')}→{_num(ra.loss_last, '.4f')}",
                     f"{_num(rb.loss_first, '.4f')}→{_num(rb.loss_last, '.4f')}",
                     r.metric, _num(ra.metric, ".4f"), _num(rb.metric, ".4f"), _num(r.delta, "+.4f"),
                     f"{r.tolerance:g}", _num(ra.seconds, ".1f"), _num(rb.seconds, ".1f"),
                     _num(r.speedup, ".1f") + ("×" if math.isfinite(r.speedup) else ""),
                     "ok" if r.ok else "FAIL"])
    widths = [max(len(line[j]) for line in [head] + body) for j in range(len(head))]
    left = {0, 4, 12}

    def fmt(line):
        return "  ".join(c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths)))

    return "\n".join([fmt(head), "  ".join("-" * w for w in widths)] + [fmt(line) for line in body])


def report(rows: Sequence[Row]) -> tuple[str, int]:
    """The table, then one line per failing model saying why, then a verdict; and the exit code (0 / 1)."""
    lines = [table(rows)]
    failing = [r for r in rows if not r.ok]
    for r in failing:
        lines.append(f"FAIL {r.model}: " + "; ".join(r.problems))
    if failing:
        lines.append(f"gpu-check: {len(failing)} of {len(rows)} model(s) failed: "
                     f"{', '.join(r.model for r in failing)}")
    else:
        lines.append(f"gpu-check: all {len(rows)} model(s) train on both devices and agree within tolerance")
    return "\n".join(lines), 1 if failing else 0


# --------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------
def no_cuda_message() -> str:
    import torch

    return (f"gpu-check: no CUDA device is visible to torch (torch {torch.__version__}, built with CUDA: "
            f"{torch.version.cuda or 'none'}); nothing to compare. Run it on a GPU machine "
            "(Colab: Runtime → Change runtime type → GPU).")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].replace("``", ""),
                                     epilog="Exit status: 0 all models pass, 1 a model failed, 2 bad arguments.")
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="only these torch models (default: all of them, the text models included: "
                             f"{', '.join(torch_models())})")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit, at least 2 (default: 3)")
    parser.add_argument("--users", type=int, default=None, metavar="N",
                        help="train on a seeded random sample of N users (default: all 610)")
    parser.add_argument("--seed", type=int, default=0, help="the models' seed and the users' sample (default: 0)")
    parser.add_argument("--device", default="cuda", help="the accelerator compared with the CPU: cuda, cuda:N "
                                                         "(default: cuda); 'cpu' runs the CPU twice, a "
                                                         "reproducibility check (bit for bit with --threads 1)")
    parser.add_argument("--rmse-tol", type=float, default=None, metavar="TOL",
                        help=f"largest |Δ RMSE| that passes (default: {TOLERANCE['rmse']})")
    parser.add_argument("--ndcg-tol", type=float, default=None, metavar="TOL",
                        help=f"largest |Δ NDCG@10| that passes (default: {TOLERANCE['ndcg@10']} on all users, "
                             f"× sqrt({REFERENCE_USERS}/N) with --users N)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads of the CPU runs (default: torch's, usually one per core)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the untimed one-epoch fit of each model on the accelerator")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        names = resolve_models(args.models)
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if args.epochs < 2:
        print(f"{PROG}: --epochs must be at least 2 to see the train loss decrease, got {args.epochs}",
              file=sys.stderr)
        return 2
    if args.users is not None and args.users < 2:
        print(f"{PROG}: --users must be at least 2, got {args.users}", file=sys.stderr)
        return 2
    if any(t is not None and not t >= 0 for t in (args.rmse_tol, args.ndcg_tol)):
        print(f"{PROG}: the tolerances must be >= 0", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print(f"{PROG}: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2

    import torch

    try:
        wanted = torch.device(args.device)
    except RuntimeError:
        print(f"{PROG}: unknown device {args.device!r}; use cuda, cuda:N or cpu", file=sys.stderr)
        return 2
    if wanted.type == "cuda" and not torch.cuda.is_available():
        print(no_cuda_message())
        return 0
    from ..device import get_device

    try:
        device = str(get_device(args.device))
    except (RuntimeError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    try:
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        return _run(args, names, device)
    finally:
        torch.set_num_threads(threads)


def _run(args, names: list[str], device: str) -> int:
    """The comparison of :func:`main`, after its checks: header, progress on stderr, the table; the exit code."""
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        what = f"{device} ({torch.cuda.get_device_name(index)}, CUDA {torch.version.cuda})"
    else:
        what = device
    threads = torch.get_num_threads()
    floors = [f"{n} ≥ {MIN_EPOCHS[n]}" for n in names if MIN_EPOCHS.get(n, 0) > args.epochs]
    epochs = f"{args.epochs} epochs" + (f" ({', '.join(floors)})" if floors else "")
    print(f"gpu-check: {', '.join(names)}\n  {what} vs cpu ({threads} torch thread{'s' * (threads != 1)}), torch "
          f"{torch.__version__}; ml-latest-small, {'all' if args.users is None else args.users} users; "
          f"{epochs}, seed {args.seed}, float32", flush=True)

    def log(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    given = {"rmse": args.rmse_tol, "ndcg@10": args.ndcg_tol}
    rows = compare(names, (device, "cpu"), epochs=args.epochs, users=args.users, seed=args.seed,
                   tolerance={k: v for k, v in given.items() if v is not None}, warmup=not args.no_warmup, log=log)
    text, code = report(rows)
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Seconds per training epoch of the torch models of notebooks 05 and 06 at their ``full``-profile settings.

A benchmark, not a test: it prints numbers. It answers "how long would the ``full`` profile of notebooks 05 and
06 take on this machine?" without running them whole: each model is trained for ``--epochs`` epochs, early
stopping off but the validation slice scored after every epoch as in the notebooks, and the table projects the
notebook's cost from the epoch time (the projection is an upper bound: early stopping usually ends runs sooner).

    .venv/bin/python benchmarks/epoch_times.py                       # synthetic-1m, every model, 2 epochs
    .venv/bin/python benchmarks/epoch_times.py --dataset 1m --device cuda --models SASRec

The settings are the ``full`` values of the notebooks' ``choose(...)`` cells (notebook 05: the largest point of
each validation grid; notebook 06: its ``neumf``/``gru``/``sasrec`` sizes), copied here; ``runs`` is how many
early-stopped runs of that model the notebook makes in ``full``, ``max_epochs`` the cap of each run.
"""
from __future__ import annotations

import argparse
import resource
import time

import pandas as pd

from recsys_course import models
from recsys_course.data import load_dataset
from recsys_course.device import get_device, seed_everything
from recsys_course.split import leave_last_n

# name -> (notebook, constructor arguments, runs in the notebook's full profile, epoch cap of each run)
FULL = {
    "AutoRec": ("05", dict(n_factors=500, reg=0.003, activation="tanh"), 5, 60),
    "DAE": ("05", dict(n_factors=500, corruption=0.5, user_node=True), 5, 60),
    "MultVAE": ("05", dict(hidden=(600,), n_factors=200, beta_max=0.2), 5, 100),
    "NeuMF": ("06", dict(n_factors=64, mlp_layers=(128, 64, 32), batch_size=2048, lr=0.001), 1, 100),
    "GRU4Rec": ("06", dict(n_factors=128, max_len=50, loss="softmax", lr=0.002), 1, 100),
    "SASRec": ("06", dict(n_factors=128, n_blocks=2, n_heads=2, max_len=50, loss="softmax", lr=0.001), 1, 200),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic-1m", help="a name for load_dataset (default synthetic-1m)")
    parser.add_argument("--models", nargs="*", default=list(FULL), choices=list(FULL))
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed per model (default 2)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: auto)")
    args = parser.parse_args(argv)

    seed_everything(0)
    device = get_device(args.device)
    ratings = load_dataset(args.dataset).ratings
    train, _ = leave_last_n(ratings, 1)  # notebook 06's leave-last-out train; notebook 05's splits are as large
    print(f"{args.dataset}: {len(train):,} training ratings, {train['userId'].nunique():,} users; device {device}")
    rows = []
    for name in args.models:
        notebook, params, runs, cap = FULL[name]
        model = getattr(models, name)(**params, n_epochs=args.epochs, patience=None, device=device, seed=0,
                                      verbose=False)
        start = time.perf_counter()
        model.fit(train)
        seconds = (time.perf_counter() - start) / args.epochs
        rows.append({"notebook": notebook, "model": name, "s/epoch": round(seconds, 1), "runs": runs,
                     "max epochs": cap, "projected max (min)": round(seconds * runs * cap / 60, 1),
                     "peak RSS so far (GiB)": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)})
        print(f"{name}: {seconds:.1f} s per epoch", flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

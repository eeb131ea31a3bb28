"""What each model costs: fit time, recommend time per user and peak memory, next to reference libraries.

A benchmark, not a test: it prints numbers (``recsys-course bench``, or ``python benchmarks/models.py``).
Every model is measured the same way, each in a fresh Python process (so one model's memory does not count for
the next, and the peak is the model's own):

* **fit s** — ``fit`` on the ranking split's train set (:func:`recsys_course.split.ranking_split`);
* **ms/user** — ``recommend(every user, k=10)`` on that fitted model, divided by the number of users (scoring
  the whole catalogue, dropping seen films, ranking): the fastest of three calls after one untimed call
  (first-call costs — loading compiled code, memory touched for the first time — are not per-user costs);
* **peak MiB** — the process's peak resident memory during the two, minus its memory just before (the data
  loaded; on Linux the peak is reset there, elsewhere the peak of the whole process counts);
* **rmse** — for models that predict ratings, a second fit on the rating split's train set
  (:func:`recsys_course.split.rating_split`) and its RMSE on that split's test set (**fit s (rating)**).

Reference libraries, where installed (optional: never required by the course): Surprise's ``KNNBaseline``
(item-based, pearson-baseline similarity, k = 40: the classic Koren neighbourhood model) and ``SVD``, and
``implicit``'s ALS. Surprise has no batch scoring: its ms/user comes from predicting every film for a sample of
users, one call per pair — the way it is meant to be used.

``--write PATH`` saves the table as JSON (machine, date, commit; one entry per model) — the committed
``benchmarks/costs.json`` is what the leaderboard joins (:func:`recsys_course.course.costs.join`).
Wall-clock times depend on the machine and on what else runs on it: compare the rows of one run, not runs.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

#: name → (class name in recsys_course.models, constructor arguments, the leaderboard rows it stands for as
#: "track/model"; empty: the rows named like the entry)
MODELS: dict[str, tuple[str, dict, tuple[str, ...]]] = {
    "Popularity": ("Popularity", {}, ()),
    "BiasBaseline": ("BiasBaseline", {}, ()),
    "ItemKNN": ("ItemKNN", {}, ("rating/ItemKNN", "ranking/ItemKNN-rating-mode")),
    "ItemKNN-ranking": ("ItemKNN", {"mode": "ranking"}, ("ranking/ItemKNN",)),
    "UserKNN": ("UserKNN", {}, ("rating/UserKNN", "ranking/UserKNN-rating-mode")),
    "UserKNN-ranking": ("UserKNN", {"mode": "ranking"}, ("ranking/UserKNN",)),
    "EASE": ("EASE", {}, ()),
    "PureSVD": ("PureSVD", {}, ()),
    "BiasedMF": ("BiasedMF", {}, ()),
    "ALS": ("ALS", {}, ()),
    "ImplicitALS": ("ImplicitALS", {}, ()),
    "BPR": ("BPR", {}, ()),
    "TimeAwareBias": ("TimeAwareBias", {}, ()),
    "DecayedItemKNN": ("DecayedItemKNN", {}, ()),
    "AutoRec": ("AutoRec", {}, ()),
    "DAE": ("DAE", {}, ()),
    "MultVAE": ("MultVAE", {}, ()),
    "NeuMF": ("NeuMF", {}, ()),
    "GRU4Rec": ("GRU4Rec", {}, ()),
    "SASRec": ("SASRec", {}, ()),
}
#: the reference libraries' models (measured only where the library is installed)
REFERENCES = ("surprise:KNNBaseline-item", "surprise:SVD", "implicit:ALS")
#: users whose whole catalogue Surprise predicts pair by pair, for its ms/user
SURPRISE_SAMPLE_USERS = 20
#: timed repeats of the recommend call (after one untimed call); the fastest counts
REPEATS = 3
COLUMNS = ("fit s", "ms/user", "peak MiB", "rmse", "fit s (rating)")


def _best_time(call) -> float:
    """Seconds of the fastest of :data:`REPEATS` calls, after one untimed call: the first call of a process pays
    for loading compiled code and for memory the process touches for the first time (on a virtual machine that
    can be half a second), which is not a cost per user; the fastest repeat is the least disturbed by the rest of
    the machine (as :mod:`timeit` reports)."""
    call()
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def _peak_mib() -> float:
    """The process's peak resident memory since :func:`_reset_peak` (Linux: VmHWM), else since it started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _reset_peak() -> float:
    """Start a new peak here (Linux ≥ 4.0: ``5`` in /proc/self/clear_refs) and return the memory now, in MiB:
    the model's peak is then :func:`_peak_mib` minus this. Elsewhere the peak so far is the baseline."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / (1 << 20)
    except (OSError, ValueError, IndexError):
        return _peak_mib()


def _data(dataset: str, max_users: int | None):
    from ..config import USER
    from ..data import load_dataset
    from ..split import ranking_split, rating_split

    ratings = load_dataset(dataset).ratings
    if max_users is not None:
        users = np.sort(ratings[USER].unique())
        keep = np.random.default_rng(42).choice(users, size=min(max_users, len(users)), replace=False)
        ratings = ratings[ratings[USER].isin(keep)].reset_index(drop=True)
    return ranking_split(ratings), rating_split(ratings)


def _course_model(name: str):
    from .. import models

    cls_name, params, _ = MODELS[name]
    cls = getattr(models, cls_name)
    if issubclass(cls, models.TorchRecommender):
        params = {**params, "verbose": False}
    return cls(**params)


def _rmse(truth, pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(truth, dtype=np.float64) - np.asarray(pred)) ** 2)))


def measure_course(name: str, ranking, rating) -> dict:
    """One course model: fit and recommend on the ranking split; RMSE on the rating split if it predicts ratings."""
    from ..config import ITEM, RATING, USER

    train, _ = ranking
    base = _reset_peak()
    model = _course_model(name)
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    users = model.user_ids_
    ms = 1000 * _best_time(lambda: model.recommend(users, k=10)) / len(users)
    row = {"fit s": fit_s, "ms/user": ms, "peak MiB": _peak_mib() - base}
    if model.predicts_ratings:
        r_train, r_test = rating
        model = _course_model(name)
        t0 = time.perf_counter()
        model.fit(r_train)
        row["fit s (rating)"] = time.perf_counter() - t0
        row["rmse"] = _rmse(r_test[RATING], model.predict(r_test[USER], r_test[ITEM]))
    return row


def measure_reference(name: str, ranking, rating) -> dict:
    """One reference library's model, measured like the course's (see the module docstring)."""
    from ..config import ITEM, RATING, USER

    library, model_name = name.split(":")
    base = _reset_peak()
    if library == "surprise":
        import surprise

        def make():
            if model_name == "SVD":
                return surprise.SVD(random_state=0)
            return surprise.KNNBaseline(k=40, sim_options={"name": "pearson_baseline", "user_based": False},
                                        verbose=False)

        def fit(df):
            reader = surprise.Reader(rating_scale=(float(df[RATING].min()), float(df[RATING].max())))
            data = surprise.Dataset.load_from_df(df[[USER, ITEM, RATING]], reader)
            algo = make()
            t0 = time.perf_counter()
            algo.fit(data.build_full_trainset())
            return algo, time.perf_counter() - t0

        train, _ = ranking
        algo, fit_s = fit(train)
        items = np.sort(train[ITEM].unique())
        sample = np.sort(train[USER].unique())[:SURPRISE_SAMPLE_USERS]
        t0 = time.perf_counter()
        for u in sample:
            seen = set(train.loc[train[USER] == u, ITEM])
            scores = np.array([algo.predict(u, i).est for i in items])
            order = np.argsort(-scores, kind="stable")
            _ = [items[j] for j in order if items[j] not in seen][:10]
        ms = 1000 * (time.perf_counter() - t0) / len(sample)
        row = {"fit s": fit_s, "ms/user": ms, "peak MiB": _peak_mib() - base}
        r_train, r_test = rating
        algo, row["fit s (rating)"] = fit(r_train)
        row["rmse"] = _rmse(r_test[RATING], [algo.predict(u, i).est for u, i in zip(r_test[USER], r_test[ITEM])])
        return row
    if library == "implicit":
        import scipy.sparse as sp
        from implicit.als import AlternatingLeastSquares

        train, _ = ranking
        users, items = np.sort(train[USER].unique()), np.sort(train[ITEM].unique())
        u = np.searchsorted(users, train[USER].to_numpy())
        i = np.searchsorted(items, train[ITEM].to_numpy())
        X = sp.csr_matrix((np.ones(len(train), dtype=np.float32), (u, i)), shape=(len(users), len(items)))
        algo = AlternatingLeastSquares(factors=64, regularization=0.05, iterations=15, random_state=0)
        t0 = time.perf_counter()
        algo.fit(X, show_progress=False)
        fit_s = time.perf_counter() - t0
        ms = 1000 * _best_time(lambda: algo.recommend(np.arange(len(users)), X, N=10,
                                                     filter_already_liked_items=True)) / len(users)
        return {"fit s": fit_s, "ms/user": ms, "peak MiB": _peak_mib() - base}
    raise ValueError(f"unknown reference model {name!r}; choose from {list(REFERENCES)}")


def available_references() -> list[str]:
    """The reference models whose library is installed."""
    import importlib.util

    return [r for r in REFERENCES if importlib.util.find_spec(r.split(":")[0]) is not None]


def _child(name: str, dataset: str, max_users: int | None) -> None:
    """Entry point of the per-model process: measure one model, print one JSON line."""
    ranking, rating = _data(dataset, max_users)
    try:
        row = measure_reference(name, ranking, rating) if ":" in name else measure_course(name, ranking, rating)
    except Exception as exc:  # reported in the table, the other models still run
        row = {"error": f"{type(exc).__name__}: {exc}"}
    print("BENCH-JSON " + json.dumps(row))


def measure(name: str, dataset: str, max_users: int | None, in_process: bool = False) -> dict:
    """One model's row, measured in a fresh process (or in this one: faster, but the peak memory is shared)."""
    if in_process:
        ranking, rating = _data(dataset, max_users)
        return measure_reference(name, ranking, rating) if ":" in name else measure_course(name, ranking, rating)
    code = ("import sys; from recsys_course.course.bench import _child; "
            "_child(sys.argv[1], sys.argv[2], None if sys.argv[3] == 'all' else int(sys.argv[3]))")
    done = subprocess.run([sys.executable, "-c", code, name, dataset, "all" if max_users is None else str(max_users)],
                          capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            return json.loads(line.removeprefix("BENCH-JSON "))
    return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}


def _commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def table(rows: dict[str, dict]):
    """The rows as a DataFrame, one line per model, the columns of :data:`COLUMNS` (and ``error``)."""
    import pandas as pd

    df = pd.DataFrame.from_dict(rows, orient="index")
    cols = [c for c in (*COLUMNS, "error") if c in df.columns]
    return df[cols]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recsys-course bench", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="latest-small", help="a name for load_dataset (default latest-small)")
    parser.add_argument("--models", nargs="*", metavar="NAME",
                        help=f"course models (default: all of {', '.join(MODELS)}) and references "
                             f"({', '.join(REFERENCES)}); 'none' for no course model")
    parser.add_argument("--references", nargs="*", metavar="NAME",
                        help="reference models (default: those whose library is installed); none: no argument")
    parser.add_argument("--max-users", type=int, default=None, help="a seeded sample of this many users")
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process (quick; the peak memory then accumulates)")
    parser.add_argument("--write", type=Path, metavar="PATH", help="save the table as JSON (benchmarks/costs.json)")
    args = parser.parse_args(argv)

    names = list(MODELS) if args.models is None else [m for m in args.models if m != "none"]
    refs = available_references() if args.references is None else list(args.references)
    unknown = [m for m in names if m not in MODELS] + [r for r in refs if r not in REFERENCES]
    if unknown:
        print(f"recsys-course bench: unknown model(s) {unknown}; course models: {list(MODELS)}, "
              f"references: {list(REFERENCES)}", file=sys.stderr)
        return 2
    if args.max_users is not None and args.max_users < 2:
        print("recsys-course bench: --max-users must be an integer >= 2", file=sys.stderr)
        return 2
    missing = [r for r in REFERENCES if r not in available_references()]
    if missing and args.references is None:
        print(f"not installed, skipped: {', '.join(missing)} (pip install scikit-surprise implicit)")
    rows = {}
    for name in [*names, *refs]:
        print(f"measuring {name} …", flush=True)
        rows[name] = measure(name, args.dataset, args.max_users, args.in_process)
    df = table(rows)
    print(f"\n{args.dataset}: fit and recommend (k = 10, every user) on the ranking split; rmse on the rating split; "
          "wall-clock on this machine, each model in its own process")
    print(df.to_string(float_format=lambda v: f"{v:.3g}", na_rep="—"))
    if args.write:
        info = {"dataset": args.dataset, "max_users": args.max_users,
                "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": _commit(),
                "machine": f"{platform.machine()}, {platform.processor() or platform.system()}, "
                           f"{_cpu_count()} cores, Python {platform.python_version()}",
                "note": "wall-clock; fit and ms/user on the ranking split, rmse on the rating split"}
        models = {}
        for name, row in rows.items():
            entry = {k: (round(float(v), 4) if isinstance(v, (int, float)) else v) for k, v in row.items()}
            if name in MODELS and MODELS[name][2]:
                entry["leaderboard"] = list(MODELS[name][2])
            models[name] = entry
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(json.dumps({**info, "models": models}, indent=1) + "\n")
        print(f"\nwritten: {args.write}")
    return 0


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    raise SystemExit(main())

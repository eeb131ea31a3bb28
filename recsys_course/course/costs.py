"""What each leaderboard entry costs: the benchmark's fit seconds and milliseconds per user, joined by model name.

Re-running every notebook to time its models would take an hour, and notebook timings mix in everything else a
notebook does. So the costs come from one place: ``recsys-course bench --write benchmarks/costs.json``
(:mod:`recsys_course.course.bench`) measures every model of the course on ml-latest-small in one run, on one
machine, and the committed JSON says which machine, when and at which commit. :func:`join` adds its numbers to a
leaderboard (columns :data:`COST_COLUMNS`); an entry the benchmark did not measure gets none (the Markdown
table shows "—"). A benchmark entry names the leaderboard rows it stands for (``"leaderboard":
["rating/ItemKNN", ...]``, for the models whose rows are named per mode); the other entries match rows of the same
model name in every track. :func:`plot` draws quality against cost, per track.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

#: the committed benchmark (absent outside a clone: then no costs are joined)
COSTS_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "costs.json"
#: the leaderboard columns added by :func:`join`: benchmark key → column
COST_COLUMNS = {"fit s": "fit s", "ms/user": "ms/user"}
#: per track, the quality the cost plot puts against the cost (lower is better for rmse)
_QUALITY = {"rating": ("rmse", True), "ranking": ("ndcg@10", False)}


def load(path: Path | str | None = None) -> dict:
    """The benchmark's JSON (:mod:`recsys_course.course.bench`); ``{}`` if the file does not exist."""
    path = COSTS_PATH if path is None else Path(path)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        raise ValueError(f"{path} is not a benchmark table (expected an object with 'models'); regenerate it with "
                         "`recsys-course bench --write benchmarks/costs.json`")
    return data


def join(board: pd.DataFrame, costs: dict | None = None) -> pd.DataFrame:
    """``board`` with the columns of :data:`COST_COLUMNS` after its metrics (NaN where the benchmark has no entry
    for the row).

    ``costs`` is :func:`load`'s result (default: the committed ``benchmarks/costs.json``); if no row of the board
    is benchmarked, the board is returned unchanged."""
    costs = load() if costs is None else costs
    models = costs.get("models", {})
    if board.empty or not models or not {"track", "model"} <= set(board.columns):
        return board
    by_row, by_name = {}, {}
    for name, entry in models.items():
        if not isinstance(entry, dict) or "error" in entry:
            continue
        for row in entry.get("leaderboard", []):
            by_row[row] = entry
        if not entry.get("leaderboard"):
            by_name[name] = entry
    columns = {column: [float(e[key]) if (e := by_row.get(f"{t}/{m}", by_name.get(m))) and key in e else np.nan
                        for t, m in zip(board["track"], board["model"])] for key, column in COST_COLUMNS.items()}
    if all(np.isnan(v).all() for v in columns.values()):
        return board  # no entry benchmarked: nothing to add
    out = board.copy()
    # after the metrics, before the provenance columns of a build's board (executed, profile, dataset, stale)
    from .leaderboard import PROVENANCE

    at = min([out.columns.get_loc(c) for c in PROVENANCE if c in out.columns], default=len(out.columns))
    for offset, (column, values) in enumerate(columns.items()):
        out.insert(at + offset, column, values)
    return out


def plot(board: pd.DataFrame, path: Path | str) -> Path | None:
    """Quality against cost: per track with a quality in :data:`_QUALITY`, each benchmarked entry at (ms per user,
    its metric), the cost on a log axis. Returns None (and writes nothing) if no row has a cost."""
    if "ms/user" not in board.columns or not board["ms/user"].notna().any():
        return None
    from matplotlib.figure import Figure

    tracks = [t for t in _QUALITY if ((board["track"] == t) & board["ms/user"].notna()).any()
              and _QUALITY[t][0] in board.columns]
    if not tracks:
        return None
    fig = Figure(figsize=(6.5 * len(tracks), 5), dpi=110, layout="constrained")
    for ax, track in zip(fig.subplots(1, len(tracks), squeeze=False)[0], tracks):
        metric, lower = _QUALITY[track]
        rows = board[(board["track"] == track) & board["ms/user"].notna() & board[metric].notna()]
        ax.scatter(rows["ms/user"], rows[metric], color="#0072B2", zorder=3)
        for _, r in rows.iterrows():
            ax.annotate(r["model"], (r["ms/user"], r[metric]), textcoords="offset points", xytext=(4, 3),
                        fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("recommend: ms per user (log scale; benchmarks/costs.json)")
        ax.set_ylabel(f"{metric} ({'lower' if lower else 'higher'} is better)")
        ax.set_title(f"{track.capitalize()} track: quality against cost", loc="left", fontweight="bold")
        ax.grid(alpha=0.3)
    path = Path(path)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path

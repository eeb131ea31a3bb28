"""The course leaderboard: every model's metrics, collected from the executed notebooks.

A notebook publishes a leaderboard entry with ``record_evaluation(row, track, model)``, i.e. records named
``leaderboard/<track>/<model>/<metric>``. :func:`collect` gathers them into one table, :func:`write` saves
it as Markdown, CSV and a PNG chart.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..record import LEADERBOARD_PREFIX, read_records

#: The column that orders each track (lower is better for rmse, higher for ndcg), in the order the tracks are
#: shown: rating (notebook 01's rating_split), ranking (ranking_split), next-item (leave-last-out, notebook 06),
#: cold-item (films with no training rating: content.item_cold_start_split, notebooks 03 and 07), transfer
#: (users of 2015–2018 with a model pretrained on 1996–2014, notebook 09).
TRACK_KEY = {"rating": ("rmse", True), "ranking": ("ndcg@10", False), "next-item": ("ndcg@10", False),
             "cold-item": ("ndcg@10", False), "transfer": ("rmse", True)}


def _tracks_in_order(board: pd.DataFrame):
    """(track, rows) pairs: the known tracks in TRACK_KEY order, then any other track alphabetically."""
    known = list(TRACK_KEY)
    names = sorted(set(board["track"]), key=lambda t: (known.index(t) if t in known else len(known), t))
    return [(t, board[board["track"] == t]) for t in names]
COLUMN_ORDER = ["rmse", "mae", "precision@10", "recall@10", "ndcg@10", "map@10", "hit@10", "mrr@10", "coverage@10"]


def rows_from_records(records: dict, notebook: str) -> list[dict]:
    entries: dict[tuple[str, str], dict] = {}
    for name, value in records.items():
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != LEADERBOARD_PREFIX:
            continue
        _, track, model, metric = parts
        entries.setdefault((track, model), {"track": track, "model": model, "notebook": notebook})[metric] = value
    return list(entries.values())


def collect(notebooks) -> pd.DataFrame:
    """One row per (track, model) from executed notebooks, each track sorted best first."""
    rows = []
    for path in notebooks:
        rows += rows_from_records(read_records(path), Path(path).stem)
    if not rows:
        return pd.DataFrame(columns=["track", "model", "notebook"])
    df = pd.DataFrame(rows)
    metrics = [c for c in COLUMN_ORDER if c in df.columns] + sorted(
        c for c in df.columns if c not in COLUMN_ORDER and c not in ("track", "model", "notebook"))
    df = df[["track", "model", "notebook", *metrics]]
    parts = []
    for track, group in _tracks_in_order(df):
        key, ascending = TRACK_KEY.get(track, (None, True))
        if key in group.columns:
            group = group.sort_values(key, ascending=ascending, kind="stable", na_position="last")
        parts.append(group)
    return pd.concat(parts, ignore_index=True)


def _cell(v, digits: int) -> str:
    """A number with ``digits`` decimals; whole numbers of 10 or more (counts, parameters) without any."""
    if isinstance(v, (float, np.floating, int, np.integer)) and not isinstance(v, bool):
        if not np.isfinite(v):
            return ""
        if float(v).is_integer() and abs(v) >= 10:
            return f"{int(v)}"
        return f"{v:.{digits}f}"
    return str(v)


def to_markdown(board: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table per track (no extra dependency)."""
    if board.empty:
        return "_no leaderboard entries were recorded_\n"
    out = []
    for track, group in _tracks_in_order(board):
        group = group.dropna(axis=1, how="all").drop(columns="track")
        key = TRACK_KEY.get(track, ("", True))[0]
        out.append(f"**{track.capitalize()} track**" + (f" (sorted by {key})" if key in group.columns else ""))
        out.append("")
        header = list(group.columns)
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join("---" if c in ("model", "notebook") else "---:" for c in header) + "|")
        for _, row in group.iterrows():
            cells = [_cell(v, digits) for v in row]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plot(board: pd.DataFrame, path: Path | str) -> Path:
    """A bar chart per track: RMSE (lower is better) and NDCG@10 (higher is better)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tracks = [t for t in TRACK_KEY if t in set(board.get("track", []))]
    fig, axes = plt.subplots(1, max(len(tracks), 1), figsize=(6 * max(len(tracks), 1), 3.8), dpi=100, squeeze=False)
    for ax, track in zip(axes[0], tracks):
        key, ascending = TRACK_KEY[track]
        group = board[board["track"] == track].dropna(subset=[key])
        ax.barh(group["model"], group[key], color="#4c72b0" if ascending else "#55a868")
        ax.invert_yaxis()
        ax.set_xlabel(f"{key} ({'lower' if ascending else 'higher'} is better)")
        ax.set_title(f"{track} track")
        for y, v in enumerate(group[key]):
            ax.text(v, y, f" {v:.4f}", va="center", fontsize=8)
    if not tracks:
        axes[0][0].text(0.5, 0.5, "no leaderboard entries", ha="center")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write(board: pd.DataFrame, out_dir: Path | str, title: str = "Leaderboard") -> dict[str, Path]:
    """Save ``leaderboard.md``, ``leaderboard.csv`` and ``leaderboard.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / "leaderboard.md", "csv": out_dir / "leaderboard.csv", "png": out_dir / "leaderboard.png"}
    paths["md"].write_text(f"# {title}\n\n{to_markdown(board)}", encoding="utf-8")
    board.to_csv(paths["csv"], index=False)
    plot(board, paths["png"])
    return paths

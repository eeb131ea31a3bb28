"""The course leaderboard: every model's metrics, collected from the executed notebooks.

A notebook publishes a leaderboard entry with ``record_evaluation(row, track, model)``, i.e. records named
``leaderboard/<track>/<model>/<metric>``. :func:`collect` gathers them into one table, :func:`write` saves
it as Markdown, CSV and a PNG chart (each written to a temporary file, then renamed over the old one).

``recsys-course run`` builds the board from every executed copy in its build folder (:func:`executed_copies`),
not from the notebooks of the last run: a run of one notebook leaves the others' rows. Each copy carries how it
was run (``metadata.recsys_course.run``, stamped by the runner): the rows get the columns of
:data:`PROVENANCE` — when it was executed, the profile and data set, and ``stale`` (empty when the row is
current, else why not: the notebook's code changed since, the run failed or was interrupted).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..record import LEADERBOARD_PREFIX, read_records

#: The column that orders each track (lower is better for rmse, higher for ndcg), in the order the tracks are
#: shown: rating (notebook 01's rating_split), ranking (ranking_split), next-item (leave-last-out, notebook 06),
#: cold-item (films with no training rating: content.item_cold_start_split, notebooks 03 and 07), transfer
#: (users of 2015–2018 with a model pretrained on 1996–2014, notebook 09), group (one list for a group of 4 built
#: from the ranking split, each member's NDCG@10 against their own test films: mean and worst member, notebook 10;
#: entries are "<strategy>-<kind of group>"), retrieval (the ranking split served in two stages, candidates then a
#: ranker, next to the same ranker on the whole catalogue; candidate recall@N as a column, notebook 11), search (a
#: typed query for a held-out film, the target's MRR for the user who rated it: query only, personalised, the
#: user's model only, notebook 11), onboarding (users hidden from every model, served from a taste text or
#: from n ratings folded in: "<model>-fold-in-<n>", notebook 11) and stream (prequential, test-then-train, on the
#: ratings after an 80 % time cut: each event scored before the strategy learns it; "Static-", "Periodic-",
#: "FoldIn-" strategies and OnlineItemKNN, notebook 12).
TRACK_KEY = {"rating": ("rmse", True), "ranking": ("ndcg@10", False), "next-item": ("ndcg@10", False),
             "cold-item": ("ndcg@10", False), "transfer": ("rmse", True), "group": ("mean_ndcg@10", False),
             "retrieval": ("ndcg@10", False), "search": ("mrr", False), "onboarding": ("ndcg@10", False),
             "stream": ("ndcg@10", False), "robustness": ("target_hit@10", True)}


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


#: Where a row comes from, after its metrics: when the copy was executed (local time), the profile and data set it
#: ran with, and ``stale`` — empty, or why the row is not current: "source changed" (the notebook's code differs
#: from what was executed), "no source" (no such notebook any more), "failed", "interrupted", "incomplete" (the
#: run ended without a word: killed).
PROVENANCE = ("executed", "profile", "dataset", "stale")
#: The executed copies a build folder holds: the course's notebook names (``NN_name.ipynb``).
EXECUTED_NOTEBOOK = re.compile(r"^\d{2}_[a-z0-9_]+\.ipynb$")


def executed_copies(folder: Path | str) -> list[Path]:
    """The executed notebooks of a build folder (``build/<profile>/``), in teaching order."""
    folder = Path(folder)
    return sorted(p for p in folder.glob("*.ipynb") if EXECUTED_NOTEBOOK.match(p.name)) if folder.is_dir() else []


def code_digest(notebook: Path | str | dict) -> str:
    """sha256 of a notebook's code cells (their sources, in order): what makes a run's numbers. Markdown edits and
    outputs do not change it, so refreshing committed outputs or rewording prose does not make a copy stale."""
    nb = notebook if isinstance(notebook, dict) else json.loads(Path(notebook).read_text(encoding="utf-8"))
    h = hashlib.sha256()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "injected-parameters" not in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            h.update(("".join(source) if isinstance(source, list) else source).encode() + b"\0")
    return h.hexdigest()


def _local_time(iso: str | None) -> str:
    """``2026-05-01 14:03`` (this machine's time zone) from an ISO timestamp; "" if there is none."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(iso)


def provenance(path: Path | str, sources: Path | str | None = None) -> dict | None:
    """How an executed copy was run: {executed, profile, dataset, stale} (see :data:`PROVENANCE`), or None for a
    notebook that was not executed by the runner (a committed notebook).

    ``sources``: the notebooks folder; a copy whose source's code differs from the code it ran (its stored
    :func:`code_digest`; for a copy made before runs were stamped: a source newer than the copy) is stale.
    """
    path = Path(path)
    meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    run = (meta.get("recsys_course") or {}).get("run")
    papermill = meta.get("papermill")
    if run:
        when = run.get("finished") or run.get("started")
        profile, dataset = run.get("profile", ""), run.get("dataset", "")
        stale = {"ok": "", "failed": "failed", "interrupted": "interrupted"}.get(run.get("status"), "incomplete")
    elif papermill:  # executed by papermill before the runner stamped its runs
        when = papermill.get("end_time") or papermill.get("start_time")
        profile, dataset = (papermill.get("parameters") or {}).get("profile", ""), ""
        stale = "failed" if papermill.get("exception") else ""
    else:
        return None
    if not stale and sources is not None:
        source = Path(sources) / path.name
        if not source.is_file():
            stale = "no source"
        elif run and run.get("code_sha256"):
            stale = "source changed" if code_digest(source) != run["code_sha256"] else ""
        elif source.stat().st_mtime > path.stat().st_mtime:
            stale = "source changed"
    return {"executed": _local_time(when), "profile": profile or "", "dataset": dataset or "", "stale": stale}


def collect(notebooks, sources: Path | str | None = None) -> pd.DataFrame:
    """One row per (track, model) from executed notebooks, each track sorted best first.

    Where the notebooks were executed by ``recsys-course run`` (or papermill), each row also gets the columns of
    :data:`PROVENANCE`; ``sources`` (the notebooks folder) lets ``stale`` compare each copy with its notebook.
    Committed notebooks (no run metadata) give the metrics only.
    """
    rows, stamped = [], False
    for path in notebooks:
        found = rows_from_records(read_records(path), Path(path).stem)
        origin = provenance(path, sources) if found else None
        stamped = stamped or origin is not None
        rows += [{**row, **(origin or {})} for row in found]
    if not rows:
        return pd.DataFrame(columns=["track", "model", "notebook"])
    df = pd.DataFrame(rows)
    extra = list(PROVENANCE) if stamped else []
    for column in extra:
        df[column] = df[column].fillna("") if column in df.columns else ""
    metrics = [c for c in COLUMN_ORDER if c in df.columns] + sorted(
        c for c in df.columns if c not in COLUMN_ORDER and c not in ("track", "model", "notebook", *extra))
    df = df[["track", "model", "notebook", *metrics, *extra]]
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
        out.append("|" + "|".join("---" if c in ("model", "notebook", *PROVENANCE) else "---:" for c in header) + "|")
        for _, row in group.iterrows():
            # a cost column (recsys_course.course.costs) shows "—" for an entry the benchmark did not measure
            cells = ["—" if c in _COST_COLUMNS and pd.isna(v) else _cell(v, digits) for c, v in row.items()]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


#: columns joined from the benchmark by :func:`recsys_course.course.costs.join` (not metrics of the track)
_COST_COLUMNS = ("fit s", "ms/user")
#: The course's baselines (:mod:`recsys_course.models.baselines`, notebook 01): drawn grey and hatched wherever
#: they appear. The board records only model names, so the plot recognises them by name.
_BASELINE_MODELS = ("GlobalMean", "BiasBaseline", "Popularity")
#: Per track, the entry every other model is compared with (the first one present): the dashed line, and for a
#: lower-is-better metric the zero of the "gain over the baseline" axis. Transfer's reference is the model trained
#: on the new period only (notebook 09: "scratch", i.e. no transfer); group's is the average strategy on random
#: groups (notebook 10); search's is the query alone, onboarding's and retrieval's Popularity (notebook 11);
#: stream's is Popularity fitted once at the time cut (notebook 12).
_REFERENCE = {"rating": ("BiasBaseline", "GlobalMean"), "ranking": ("Popularity", "BiasBaseline"),
              "next-item": ("Popularity",), "cold-item": ("Popularity", "BiasBaseline"),
              "transfer": ("BiasedMF-scratch",), "group": ("average-random",), "retrieval": ("Popularity",),
              "search": ("query-only",), "onboarding": ("Popularity",),
              "stream": ("Static-Popularity",), "robustness": ("Popularity",)}
_LOWER_IS_BETTER = ("rmse", "mae", "target_hit@10", "clean_target_hit@10")  # robustness: the attacked film's reach
_COLOURS = {"better": "#0072B2", "worse": "#D55E00", "baseline": "#9a9a9a"}  # Okabe–Ito: colour-blind safe
_DPI = 120
_PANEL_WIDTH_IN = 8.0  # two columns: 16 in × 120 dpi = 1920 px, a 1080p projector's width
_BAR_IN = 0.42  # height of one bar row
_PANEL_EXTRA_IN = 1.45  # title, tick labels and axis label of one row of panels
_HEADER_IN = 1.3  # figure title and legend
_MAX_HEIGHT_IN = 30.0  # taller than this in two columns (3,600 px): three columns instead
_MAX_WIDTH_IN = 20.0  # three columns share 2,400 px
_FONT = {"font.size": 15, "axes.titlesize": 17, "axes.labelsize": 14, "xtick.labelsize": 13,
         "ytick.labelsize": 15, "legend.fontsize": 14, "figure.titlesize": 20, "hatch.linewidth": 1.0}


def _panel_metric(track: str, group: pd.DataFrame) -> tuple[str | None, bool]:
    """(metric, lower_is_better) for a track: its TRACK_KEY column, else the first metric with values."""
    key, lower = TRACK_KEY.get(track, (None, True))
    if key in group.columns and group[key].notna().any():
        return key, lower
    for col in [c for c in COLUMN_ORDER if c in group.columns] + sorted(
            c for c in group.columns if c not in COLUMN_ORDER and c not in ("track", "model", "notebook")):
        if pd.api.types.is_numeric_dtype(group[col]) and group[col].notna().any():
            return col, col in _LOWER_IS_BETTER
    return None, True


def _panel_data(track: str, group: pd.DataFrame) -> dict | None:
    """What one panel draws: rows sorted best first, bar lengths, labels, the reference entry."""
    metric, lower = _panel_metric(track, group)
    if metric is None:
        return None
    group = group.dropna(subset=[metric]).sort_values(metric, ascending=lower, kind="stable")
    models = [str(m) for m in group["model"]]
    notebooks = [str(n) for n in group["notebook"]] if "notebook" in group.columns else [""] * len(group)
    counts = pd.Series(models).value_counts()
    # a model recorded by two notebooks (BiasBaseline in 01 and 07) gets the notebook's number, not one merged bar
    names = [f"{m} ({n.split('_')[0]})" if counts[m] > 1 and n else m for m, n in zip(models, notebooks)]
    values = group[metric].to_numpy(dtype=float)
    ref_index = next((models.index(r) for r in _REFERENCE.get(track, ()) if r in models),
                     next((i for i, m in enumerate(models) if m in _BASELINE_MODELS), None))
    if lower:  # bars = gain over the reference (its value − the model's): the axis starts at the baseline, not 0
        if ref_index is None:
            ref_index = int(np.argmax(values))
            ref_what = f"the worst entry, {names[ref_index]}"
        else:
            ref_what = names[ref_index]
        ref_value = values[ref_index]
        bars = ref_value - values
        title = f"{track.capitalize()} · {metric.upper()}\ngain over {names[ref_index]}"  # 2 lines: a narrow panel
        xlabel = f"{metric.upper()} reduction vs {ref_what} ({ref_value:.4f})\n← worse    ·    better →"
        ref_x = 0.0
    else:
        bars = values
        title = f"{track.capitalize()} · {metric.upper()}"
        ref_x = None if ref_index is None else values[ref_index]
        xlabel = f"{metric.upper()}, higher is better →\n" + ("(no baseline in this track)" if ref_index is None
                                                              else f"(dashed: {names[ref_index]}, {ref_x:.4f})")
    kinds = []
    for i, (m, v) in enumerate(zip(models, values)):
        if m in _BASELINE_MODELS or i == ref_index:
            kinds.append("baseline")
        elif ref_index is None:
            kinds.append("better")
        else:
            better = v < values[ref_index] if lower else v > values[ref_index]
            kinds.append("better" if better else "worse")
    return {"metric": metric, "lower": lower, "names": names, "values": values, "bars": bars, "kinds": kinds,
            "ref_index": ref_index, "ref_x": ref_x, "title": title, "xlabel": xlabel}


def _draw_panel(ax, data: dict, nbins: int = 5) -> None:
    from matplotlib.ticker import MaxNLocator

    n = len(data["names"])
    y = np.arange(n)
    for kind in ("better", "worse", "baseline"):
        idx = [i for i, k in enumerate(data["kinds"]) if k == kind]
        if idx:
            ax.barh(y[idx], data["bars"][idx], height=0.72, color=_COLOURS[kind], edgecolor="white" if kind !=
                    "baseline" else "#555555", hatch="//" if kind == "baseline" else None, linewidth=0.8,
                    zorder=2)
    lo, hi = float(min(0.0, data["bars"].min())), float(max(0.0, data["bars"].max()))
    span = (hi - lo) or 1.0
    pad = 0.03 * span
    ax.set_xlim(lo - (pad if lo < 0 else 0.0), hi + pad)
    ax.set_ylim(n - 0.5, -0.5)  # best first, at the top
    ax.set_yticks(y, data["names"])
    if data["ref_index"] is not None:
        ax.get_yticklabels()[data["ref_index"]].set_fontweight("bold")
    if data["ref_x"] is not None:
        ax.axvline(data["ref_x"], color="#222222", linestyle="--", linewidth=1.6, zorder=3)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))  # tick labels never touch
    ax.grid(axis="x", color="#dddddd", linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(data["title"], loc="left", fontweight="bold", pad=28)
    ax.set_xlabel(data["xlabel"])
    # the values in a column right of the axis: never on a bar, never on each other (one line per bar row)
    column = ax.get_yaxis_transform()  # x in axes fraction, y in data
    for i, v in enumerate(data["values"]):
        ax.annotate(f"{v:.4f}", (1.0, i), xycoords=column, xytext=(10, 0), textcoords="offset points",
                    va="center", ha="left", annotation_clip=False, fontfamily="DejaVu Sans Mono",
                    fontweight="bold" if i == data["ref_index"] else "normal")
    ax.annotate(data["metric"], (1.0, -0.5), xycoords=column, xytext=(10, 4), textcoords="offset points",
                va="bottom", ha="left", annotation_clip=False, color="#555555", fontsize=13)


def _balanced_columns(heights: list[float], ncols: int) -> list[list[int]]:
    """Split panels 0..n-1, in order, into ``ncols`` consecutive runs (read down the first column, then the next)
    so that the tallest column is as short as possible: a small dynamic programme over the split points."""
    n = len(heights)
    ncols = max(1, min(ncols, n))
    prefix = np.concatenate([[0.0], np.cumsum(heights)])
    # best[c][j]: the least possible tallest column putting panels 0..j-1 into c columns; cut[c][j]: its last split
    best = [[np.inf] * (n + 1) for _ in range(ncols + 1)]
    cut = [[0] * (n + 1) for _ in range(ncols + 1)]
    best[0][0] = 0.0
    for c in range(1, ncols + 1):
        for j in range(c, n + 1):
            for i in range(c - 1, j):
                tallest = max(best[c - 1][i], prefix[j] - prefix[i])
                if tallest < best[c][j] - 1e-9:
                    best[c][j], cut[c][j] = tallest, i
    columns, j = [], n
    for c in range(ncols, 0, -1):
        i = cut[c][j]
        columns.append(list(range(i, j)))
        j = i
    return columns[::-1]


def _fit_height(fig, tallest: list[tuple]) -> None:
    """Grow or shrink the figure until the bars are ``_BAR_IN`` apart: the titles, ticks and legend take what
    they take (measured by a layout pass), so one row of value labels never runs into the next."""
    for _ in range(4):
        fig.draw_without_rendering()
        height = fig.get_figheight()
        missing = sum(n * _BAR_IN - ax.get_position().height * height for ax, n in tallest)
        if abs(missing) < 0.02:
            return
        fig.set_figheight(round(height + missing, 2))


def plot(board: pd.DataFrame, path: Path | str) -> Path:
    """A PNG of the leaderboard for a projector: one panel per track, in two columns — the tracks in the course's
    order down the left column, then down the right, split where the two columns are most nearly the same height
    (three narrower columns, 2,400 px in all, once two would be taller than 3,600 px).

    Each panel has one horizontal bar per entry, best first, and the metric's value in a column to the right of
    the bars (the figure is 1920 px wide with two tracks or more, 960 px with one). What a bar's length means:

    * **lower-is-better tracks (RMSE: rating, transfer; the attacked film's hit ratio: robustness)**: the gain over
      the track's reference baseline, its value minus the model's (right of the dashed zero line = better than the baseline, left = worse). RMSEs differ in
      the second decimal, so bars from 0 would all look alike; the RMSE itself is in the value column;
    * **higher-is-better tracks (NDCG@10: ranking, next-item, cold-item; mean member NDCG@10: group)**: the value
      itself, from 0; the reference baseline is the dashed line.

    The reference (bold) is BiasBaseline (else GlobalMean) for rating, Popularity for the ranking tracks,
    BiasedMF-scratch for transfer, average-random for group and Popularity for robustness (see ``_REFERENCE``); the course's baselines (GlobalMean, BiasBaseline,
    Popularity) are grey and hatched, models better than the reference blue, the others orange. A model recorded
    by two notebooks keeps both rows, labelled with the notebook's number.

    Deterministic (the same board gives the same bytes) and free of global state: a bare ``Figure`` rendered by
    Agg, no pyplot, rcParams changed only inside a context.
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    path = Path(path)
    tracks = _tracks_in_order(board) if len(board) and "track" in board.columns else []
    panels = [(track, _panel_data(track, group)) for track, group in tracks]
    with matplotlib.rc_context(_FONT):
        if not panels:
            fig = Figure(figsize=(8, 2.5), dpi=_DPI, layout="constrained")
            fig.text(0.5, 0.5, "no leaderboard entries were recorded", ha="center", va="center", fontsize=18)
            fig.savefig(path, format="png", metadata={"Software": None})
            return path
        sizes = [len(d["names"]) if d else 1 for _, d in panels]
        panel_heights = [_BAR_IN * n + _PANEL_EXTRA_IN for n in sizes]
        ncols = min(2, len(panels))
        columns = _balanced_columns(panel_heights, ncols)
        if len(panels) > 2 and _HEADER_IN + max(sum(panel_heights[i] for i in c) for c in columns) > _MAX_HEIGHT_IN:
            ncols = 3  # too tall for a screen in two columns: three narrower ones
            columns = _balanced_columns(panel_heights, ncols)
        heights = [sum(panel_heights[i] for i in col) for col in columns]
        width = min(_PANEL_WIDTH_IN * ncols, _MAX_WIDTH_IN)
        fig = Figure(figsize=(width, _HEADER_IN + max(heights)), dpi=_DPI, layout="constrained")
        fig.get_layout_engine().set(w_pad=0.15, h_pad=0.15, wspace=0.08, hspace=0.06)
        grid = fig.add_gridspec(1, ncols)
        tallest: list[tuple] = []  # the panels of the tallest column, which fills the figure's height
        for c, col in enumerate(columns):
            ratios = [_BAR_IN * sizes[i] + _PANEL_EXTRA_IN for i in col]
            # a shorter column gets an empty row below its panels, so bars are equally thick in every column; a
            # near-empty spacer can make the layout solver collapse, so less than a bar's height is not added
            spare = max(heights) - heights[c]
            sub = grid[0, c].subgridspec(len(col) + (spare >= _BAR_IN), 1,
                                         height_ratios=ratios + ([spare] if spare >= _BAR_IN else []))
            for r, i in enumerate(col):
                track, data = panels[i]
                ax = fig.add_subplot(sub[r])
                if heights[c] == max(heights):
                    tallest.append((ax, sizes[i]))
                if data is None:
                    ax.set_axis_off()
                    ax.set_title(f"{track.capitalize()} track", loc="left", fontweight="bold")
                    ax.text(0.5, 0.5, "no metric values", ha="center", va="center", transform=ax.transAxes)
                else:
                    _draw_panel(ax, data, nbins=5 if ncols < 3 else 3)  # narrower panels: fewer ticks
        fig.suptitle("Course leaderboard · best first in each track", fontweight="bold")
        handles = [Patch(facecolor=_COLOURS["better"], label="better than the track's baseline"),
                   Patch(facecolor=_COLOURS["worse"], label="not better than the baseline"),
                   Patch(facecolor=_COLOURS["baseline"], edgecolor="#555555", hatch="//",
                         label="baseline (bold: the reference)")]
        fig.legend(handles=handles, loc="outside lower center", ncols=3 if ncols > 1 else 1, frameon=False)
        _fit_height(fig, tallest)
        fig.savefig(path, format="png", metadata={"Software": None})
    return path


def write(board: pd.DataFrame, out_dir: Path | str, title: str = "Leaderboard") -> dict[str, Path]:
    """Save ``leaderboard.md``, ``leaderboard.csv`` and ``leaderboard.png`` in ``out_dir``, atomically.

    All three are written to temporary files in ``out_dir`` first, then renamed over the old ones (Ctrl-C is held
    back during the three renames), so a failure or an interrupt leaves the previous leaderboard whole, never a
    half-written or a mixed one.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / "leaderboard.md", "csv": out_dir / "leaderboard.csv", "png": out_dir / "leaderboard.png"}
    stale = int((board["stale"].astype(str) != "").sum()) if "stale" in board.columns else 0
    note = (f"_{stale} row(s) are stale (the `stale` column says why: the notebook changed since it was executed, or "
            "its run failed or was interrupted); re-run those notebooks._\n\n") if stale else ""
    # beside the targets (a rename within one folder is atomic), named by this process, with the usual permissions
    temporary = {kind: out_dir / f".leaderboard-{os.getpid()}.{kind}.tmp" for kind in paths}
    try:
        temporary["md"].write_text(f"# {title}\n\n{note}{to_markdown(board)}", encoding="utf-8")
        board.to_csv(temporary["csv"], index=False)
        plot(board.drop(columns=[c for c in PROVENANCE + _COST_COLUMNS if c in board.columns]), temporary["png"])
        from .costs import plot as plot_costs  # quality against cost, where the board has costs joined

        if plot_costs(board, temporary.setdefault("costs.png", out_dir / f".leaderboard-{os.getpid()}.costs.tmp")):
            paths["costs.png"] = out_dir / "leaderboard-costs.png"
        else:
            temporary.pop("costs.png").unlink(missing_ok=True)
        for path in temporary.values():  # on disk before the renames: a crash cannot leave an empty file behind
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        with _interrupts_held():
            for kind, path in paths.items():
                os.replace(temporary.pop(kind), path)
    finally:
        for leftover in temporary.values():
            leftover.unlink(missing_ok=True)
    return paths


@contextlib.contextmanager
def _interrupts_held():
    """Within the block, SIGINT waits (delivered when it ends): a few renames are never cut in half by Ctrl-C."""
    blocking = hasattr(signal, "pthread_sigmask")
    if blocking:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if blocking:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

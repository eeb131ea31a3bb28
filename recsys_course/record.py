"""``record(name, value)``: the one way a notebook publishes a number.

A recorded value is displayed as a small JSON output with its own MIME type, so it travels inside the
executed notebook: the papermill tests read it back (``read_records``) and compare it with
``tests/expected_metrics.json``, and the course runner collects it into the leaderboard.

Leaderboard entries are records named ``leaderboard/<track>/<model>/<metric>``;
:func:`record_evaluation` writes a whole row from :func:`recsys_course.evaluate` that way.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

MIME = "application/vnd.recsys-course.record+json"
LEADERBOARD_PREFIX = "leaderboard"
_NAME = re.compile(r"^[A-Za-z0-9_.@/+\-]+$")

#: What this Python process has recorded, in order (handy outside Jupyter).
RECORDS: dict[str, float] = {}


def record(name: str, value):
    """Publish ``value`` (a finite number) under ``name``; return the value unchanged.

    Names are made of letters, digits and ``_ . @ / + -``, e.g. ``"data/n_ratings"``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"record name must be a non-empty string of letters, digits and _.@/+-, got {name!r}")
    if isinstance(value, (bool, np.bool_)):
        value = int(value)
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (int, float)):
        raise TypeError(f"record({name!r}, ...) takes a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"record({name!r}, {value}): the value is not finite; something upstream went wrong")
    RECORDS[name] = value
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python without IPython
        return value
    if get_ipython() is not None:
        display({MIME: {"name": name, "value": value}}, raw=True)
    return value


def record_evaluation(row, track: str, model: str | None = None) -> None:
    """Record every metric of an ``evaluate`` row as ``leaderboard/<track>/<model>/<metric>``."""
    model = model or row.name
    if not model or "/" in str(model):
        raise ValueError(f"model name must be non-empty and without '/', got {model!r}")
    for metric, value in row.items():
        record(f"{LEADERBOARD_PREFIX}/{track}/{model}/{metric}", float(value))


def read_records(notebook: str | Path) -> dict[str, float]:
    """Collect everything ``record`` published in an executed notebook (later records of a name win)."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    out: dict[str, float] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIME)
            if payload is not None:
                out[payload["name"]] = payload["value"]
    return out

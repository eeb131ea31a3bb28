"""Instant feedback for the notebooks' exercises.

In a notebook::

    def my_answer(...):
        raise NotImplementedError  # your code here

    check("01.average_precision", my_answer)

``check`` prints ✅ or ❌ with a hint and returns True/False; it never raises, so a run of the whole notebook
(papermill, nbval, "Run all") goes on whatever the student wrote. The checks of notebook NN live in
``recsys_course/exercises/nbNN.py``; the solutions in ``solutions/NN_<topic>.py`` (dict ``SOLUTIONS``).
"""
from __future__ import annotations

import importlib
import importlib.util
import traceback
from collections.abc import Callable
from pathlib import Path

from ..config import REPO_DIR

#: exercise id → check function. A check raises AssertionError (with a hint) if the answer is wrong.
REGISTRY: dict[str, Callable] = {}


def exercise(exercise_id: str):
    """Register a check function under ``exercise_id`` ("NN.short_name")."""
    def register(fn):
        if exercise_id in REGISTRY:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        REGISTRY[exercise_id] = fn
        return fn
    return register


def _load_checks() -> None:
    for path in sorted(Path(__file__).parent.glob("nb[0-9][0-9].py")):
        importlib.import_module(f"{__name__}.{path.stem}")


def check(exercise_id: str, answer, *, quiet: bool = False) -> bool:
    """Check a student's answer; print feedback; return whether it passed. Never raises."""
    _load_checks()
    if exercise_id not in REGISTRY:
        print(f"❓ no exercise called {exercise_id!r}; known: {sorted(REGISTRY)}")
        return False
    try:
        REGISTRY[exercise_id](answer)
    except NotImplementedError:
        if not quiet:
            print(f"⏳ {exercise_id}: not attempted yet — replace the `raise NotImplementedError` with your code "
                  "and run this cell again.")
        return False
    except AssertionError as exc:
        if not quiet:
            print(f"❌ {exercise_id}: {exc or 'not quite: the answer differs from the expected one'}")
        return False
    except Exception as exc:  # noqa: BLE001 — feedback, not a crash
        if not quiet:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"💥 {exercise_id}: your code raised {type(exc).__name__}: {exc} (line {where.lineno} of "
                  f"{Path(where.filename).name}). Fix it and run the cell again.")
        return False
    if not quiet:
        print(f"✅ {exercise_id}: correct!")
    return True


def all_exercises() -> list[str]:
    """Every registered exercise id."""
    _load_checks()
    return sorted(REGISTRY)


def exercises_of(notebook_number: str) -> list[str]:
    """The exercise ids of one notebook, e.g. ``exercises_of("01")``."""
    _load_checks()
    return sorted(k for k in REGISTRY if k.split(".")[0] == notebook_number)


def load_solutions(notebook_number: str) -> dict[str, Callable]:
    """Import ``solutions/NN_*.py`` and return its ``SOLUTIONS`` dict (exercise id → answer)."""
    matches = sorted((REPO_DIR / "solutions").glob(f"{notebook_number}_*.py"))
    if not matches:
        raise FileNotFoundError(f"no solutions file solutions/{notebook_number}_*.py")
    spec = importlib.util.spec_from_file_location(f"solutions_{notebook_number}", matches[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.SOLUTIONS)

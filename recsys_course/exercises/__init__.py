"""Instant feedback for the notebooks' exercises.

In a notebook::

    def my_average_precision(relevant, ranked, k):
        raise NotImplementedError  # your code here

    check("01.average_precision", my_average_precision)

``check`` prints one line and returns True/False:

* ✅ the answer is right (an experiment also shows your number next to the course's);
* ❌ the answer is wrong, with a hint that points to the idea (a cell, a formula, an edge case) — this covers a
  wrong value, a wrong type or shape, ``None`` (a forgotten ``return``) and non-finite numbers;
* ⏳ not attempted yet (the stub still raises ``NotImplementedError``, or a questionnaire is still empty);
* 💥 your own function raised an exception: the line of *your* code where it happened.

It never raises, so "Run all", papermill and nbval go on whatever the student wrote — except in **strict
mode** (``RECSYS_COURSE_STRICT=1``), meant for instructors' autograders: there every answer that is not ✅
raises :class:`ExerciseFailed`, so the notebook's run fails at the first wrong or missing answer.

Three kinds of exercise (see :data:`KINDS`): ``function`` (write a function; the check calls it on its own
cases), ``experiment`` (write a function that runs an experiment on the notebook's data, passed to ``check``
after the answer, e.g. ``check("04.ease_reg", my_experiment, split)``; the check reruns the experiment the
course's way on the same data and compares within a stated tolerance) and ``quiz`` (a questionnaire shown by
:func:`show_quiz`, answered with a dict ``{question number: answer}``).

The checks of notebook NN live in ``recsys_course/exercises/nbNN.py``, written with the helpers of
:mod:`recsys_course.exercises.answers`; the course's answers in ``solutions/NN_<topic>.py`` (dict
``SOLUTIONS``), shown one at a time by :func:`show_solution`.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import ENV_STRICT, REPO_DIR
from .answers import NotAttempted, StudentCrash

__all__ = ["check", "feedback", "show_solution", "load_solutions", "show_quiz", "all_exercises", "exercises_of",
           "exercise_info", "strict_mode", "ExerciseFailed", "KINDS"]

#: The kinds of exercise: write a function; run an experiment on the notebook's data; answer a questionnaire.
KINDS = ("function", "experiment", "quiz")


@dataclass(frozen=True)
class Exercise:
    """One registered exercise: its check, its kind, and (experiments) how tests build the notebook's inputs."""

    id: str
    check: Callable
    kind: str = "function"
    inputs: Callable[[], tuple] | None = None
    quiz: object = None  # the Quiz of a ``quiz`` exercise


#: exercise id → Exercise.
REGISTRY: dict[str, Exercise] = {}


class ExerciseFailed(AssertionError):
    """Strict mode: an answer was wrong, missing or raised (the message is the feedback line)."""


def exercise(exercise_id: str, *, kind: str = "function", inputs: Callable[[], tuple] | None = None):
    """Register a check function under ``exercise_id`` ("NN.short_name").

    The check receives the answer, then whatever the notebook passed to ``check`` after it (an experiment's
    data). It raises :class:`~recsys_course.exercises.answers.Wrong` (or AssertionError) with a hint when
    the answer is wrong, and may return a string that is shown after ✅ (e.g. the student's number). An
    experiment registers ``inputs``: a function that builds, outside any notebook, the data the notebook
    passes (the tests use it).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "experiment" and inputs is None:
        raise ValueError(f"experiment {exercise_id!r} needs inputs=: how the tests build the notebook's data")

    def register(fn):
        if exercise_id in REGISTRY:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        REGISTRY[exercise_id] = Exercise(exercise_id, fn, kind, inputs)
        return fn
    return register


def _load_checks() -> None:
    for path in sorted(Path(__file__).parent.glob("nb[0-9][0-9].py")):
        importlib.import_module(f"{__name__}.{path.stem}")


def strict_mode() -> bool:
    """Whether ``$RECSYS_COURSE_STRICT`` asks every check to raise on an answer that is not right."""
    return os.environ.get(ENV_STRICT, "").strip().lower() in {"1", "true", "yes", "on"}


def _feedback(exercise_id: str, answer, inputs) -> tuple[str, str]:
    """Run the check; return (status, message) with status one of ok, wrong, todo, crash, bug, unknown."""
    _load_checks()
    if exercise_id not in REGISTRY:
        return "unknown", f"❓ no exercise called {exercise_id!r}; this notebook's are {_neighbours(exercise_id)}"
    ex = REGISTRY[exercise_id]
    try:
        detail = ex.check(answer, *inputs)
    except NotAttempted as exc:
        return "todo", f"⏳ {exercise_id}: {str(exc) or _todo(ex)}"
    except StudentCrash as exc:
        return "crash", f"💥 {exercise_id}: {exc}"
    except AssertionError as exc:  # Wrong is an AssertionError; plain asserts in checks are hints too
        return "wrong", f"❌ {exercise_id}: {str(exc) or 'not quite: the answer differs from the expected one'}"
    except Exception as exc:  # noqa: BLE001 — a bug of the checker must not be blamed on the student
        return "bug", (f"⚠️ {exercise_id}: the checker itself failed ({type(exc).__name__}: {exc}). This is a bug "
                       "in the course, not in your answer — please report it with the notebook and the "
                       "exercise's name.")
    return "ok", f"✅ {exercise_id}: correct!{f' {detail}' if isinstance(detail, str) and detail else ''}"


def _todo(ex: Exercise) -> str:
    if ex.kind == "quiz":
        return "not attempted yet — fill in the answers dict and run this cell again."
    return "not attempted yet — replace the `raise NotImplementedError` with your code and run this cell again."


def _neighbours(exercise_id: str) -> list[str]:
    number = str(exercise_id).split(".")[0]
    return exercises_of(number) or sorted(REGISTRY)


def check(exercise_id: str, answer, *inputs, quiet: bool = False) -> bool:
    """Check a student's answer, print one line of feedback, return whether it passed.

    ``inputs`` are an experiment's data, passed on to the check (``check("04.ease_reg", fn, split)``).
    Never raises, except in strict mode (``$RECSYS_COURSE_STRICT``), where an answer that is not right
    raises :class:`ExerciseFailed` after printing its feedback.
    """
    status, message = _feedback(exercise_id, answer, inputs)
    if not quiet:
        print(message)
    if status != "ok" and strict_mode():
        raise ExerciseFailed(message)
    return status == "ok"


def feedback(exercise_id: str, answer, *inputs) -> tuple[str, str]:
    """``(status, message)`` of a check without printing (status: ok, wrong, todo, crash, bug or unknown)."""
    return _feedback(exercise_id, answer, inputs)


def all_exercises() -> list[str]:
    """Every registered exercise id."""
    _load_checks()
    return sorted(REGISTRY)


def exercises_of(notebook_number: str) -> list[str]:
    """The exercise ids of one notebook, e.g. ``exercises_of("01")``."""
    _load_checks()
    return sorted(k for k in REGISTRY if k.split(".")[0] == notebook_number)


def exercise_info(exercise_id: str) -> Exercise:
    """The registered :class:`Exercise` (kind, check, inputs) of ``exercise_id``."""
    _load_checks()
    if exercise_id not in REGISTRY:
        raise KeyError(f"no exercise called {exercise_id!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[exercise_id]


def solutions_file(notebook_number: str) -> Path:
    """``solutions/NN_<topic>.py`` of a notebook."""
    matches = sorted((REPO_DIR / "solutions").glob(f"{notebook_number}_*.py"))
    if not matches:
        raise FileNotFoundError(f"no solutions file solutions/{notebook_number}_*.py in {REPO_DIR}; the solutions "
                                "come with a clone of the course repository")
    return matches[0]


def load_solutions(notebook_number: str) -> dict[str, object]:
    """Import ``solutions/NN_*.py`` and return its ``SOLUTIONS`` dict (exercise id → answer).

    Compare with yours after trying: ``load_solutions("04")["04.bpr_pair_loss"](x_pos, x_neg)``.
    """
    path = solutions_file(notebook_number)
    spec = importlib.util.spec_from_file_location(f"solutions_{notebook_number}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.SOLUTIONS)


def show_solution(exercise_id: str) -> None:
    """Print the course's answer to one exercise (the source of the solution function, or a quiz's key)."""
    number = str(exercise_id).split(".")[0]
    path = solutions_file(number)
    answer = load_solutions(number).get(exercise_id)
    if answer is None:
        raise KeyError(f"{path.name} has no solution called {exercise_id!r}; it has {sorted(load_solutions(number))}")
    print(f"# {exercise_id} — from solutions/{path.name} (its docstring explains the reasoning)\n")
    if callable(answer):
        print(inspect.getsource(answer))
    else:
        info = exercise_info(exercise_id)
        print(info.quiz.explain(answer) if info.quiz is not None else repr(answer))


def show_quiz(notebook_number: str) -> None:
    """Display the questionnaire of a notebook (Markdown in Jupyter, text elsewhere)."""
    from .quiz import display_quiz

    display_quiz(exercise_info(f"{notebook_number}.quiz").quiz)

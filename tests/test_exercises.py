"""The exercises give feedback a student can trust.

For every exercise: the course's solution passes; the untouched stub is "not attempted"; a forgotten
``return``, a wrong type, a non-function and a crash in the student's own code get ❌ or 💥 (never a crash of the
checker, ⚠️); and the plausible wrong answers of ``tests/wrong_answers/nbNN.py`` (at least three per exercise)
are rejected with ❌ and a hint. Every notebook has at least two function exercises, one experiment and one
questionnaire; its stubs do not shadow the names it imports; it says where the solutions are.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
from functools import cache
from pathlib import Path

import pytest

from recsys_course.course.runner import discover
from recsys_course.exercises import (
    ExerciseFailed,
    all_exercises,
    check,
    exercise_info,
    exercises_of,
    feedback,
    load_solutions,
    show_quiz,
    show_solution,
)
from recsys_course.exercises.answers import call, fmt, number

# The experiment checks fit small torch models: one thread each is as fast, and two test workers do not fight.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {p.name[:2]: p for p in discover(ROOT / "notebooks")}
CHECK_CALL = re.compile(r"""check\(\s*["'](\d\d\.[\w.]+)["']\s*,\s*([A-Za-z_]\w*)""")


@cache
def _wrong_answers(number: str) -> dict:
    path = ROOT / "tests" / "wrong_answers" / f"nb{number}.py"
    spec = importlib.util.spec_from_file_location(f"wrong_answers_{number}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRONG


@cache
def _inputs(exercise_id: str) -> tuple:
    info = exercise_info(exercise_id)
    return info.inputs() if info.inputs is not None else ()


def _status(exercise_id: str, answer) -> tuple[str, str]:
    return feedback(exercise_id, answer, *_inputs(exercise_id))


def _stub(*args):
    raise NotImplementedError  # your code here


def _forgot_return(*args):
    _ = args


def _wrong_type(*args):
    return "0.5"


def _crashes(*args):
    return 1 / 0


# ------------------------------------------------------------------------------------------------ per notebook
@pytest.mark.parametrize("number", sorted(NOTEBOOKS))
def test_every_notebook_has_exercises_an_experiment_and_a_quiz(number):
    kinds = [exercise_info(e).kind for e in exercises_of(number)]
    assert kinds.count("function") >= 2, f"notebook {number} needs at least two function exercises"
    assert kinds.count("experiment") == 1, f"notebook {number} needs exactly one experiment exercise"
    assert kinds.count("quiz") == 1, f"notebook {number} needs one questionnaire ({number}.quiz)"
    assert 3 <= len(exercise_info(f"{number}.quiz").quiz.questions) <= 6


@pytest.mark.parametrize("number", sorted(NOTEBOOKS))
def test_solutions_cover_the_checks_and_pass(number):
    solutions = load_solutions(number)
    assert set(solutions) == set(exercises_of(number)), "solutions/ and the registered checks disagree"
    for exercise_id, answer in solutions.items():
        status, message = _status(exercise_id, answer)
        assert status == "ok", message


@pytest.mark.parametrize("number", sorted(NOTEBOOKS))
def test_notebook_checks_every_exercise_and_says_where_the_solutions_are(number):
    nb = json.loads(NOTEBOOKS[number].read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    checked = {m.group(1) for m in CHECK_CALL.finditer(code)}
    assert checked == set(exercises_of(number)), (f"checked in the notebook: {sorted(checked)}; registered: "
                                                  f"{exercises_of(number)}")
    assert f'show_quiz("{number}")' in code, "the notebook shows its questionnaire with show_quiz"
    assert "show_solution" in text and "load_solutions" in text, \
        "the notebook says how to see the solutions (show_solution, load_solutions) after trying"
    assert re.search(rf"solutions/{number}_\w+\.py", text), "the notebook names its solutions file"


def _imported_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _stub_names(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(s, ast.Raise) and "NotImplementedError" in ast.unparse(s) for s in node.body):
            out.add(node.name)
    return out


@pytest.mark.parametrize("number", sorted(NOTEBOOKS))
def test_stubs_do_not_shadow_the_notebooks_imports_or_functions(number):
    nb = json.loads(NOTEBOOKS[number].read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    trees = [ast.parse("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))))
             for src in cells]
    imported = set().union(*(_imported_names(t) for t in trees))
    stubs = set().union(*(_stub_names(t) for t in trees))
    defined_elsewhere = set()
    for tree in trees:
        if not _stub_names(tree):
            defined_elsewhere |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert not stubs & imported, f"stubs shadow imported names: {sorted(stubs & imported)}"
    assert not stubs & defined_elsewhere, f"stubs overwrite the notebook's own functions: " \
                                          f"{sorted(stubs & defined_elsewhere)}"


# ------------------------------------------------------------------------------------------------ per exercise
@pytest.mark.parametrize("exercise_id", all_exercises())
def test_stub_is_not_attempted(exercise_id):
    info = exercise_info(exercise_id)
    stub = {i: None for i in range(1, len(info.quiz.questions) + 1)} if info.kind == "quiz" else _stub
    status, message = _status(exercise_id, stub)
    assert status == "todo" and "not attempted" in message, message


@pytest.mark.parametrize("exercise_id", [e for e in all_exercises() if not e.endswith(".quiz")])
def test_generic_mistakes_get_a_plain_sentence(exercise_id):
    status, message = _status(exercise_id, _forgot_return)
    assert status == "wrong" and "return" in message, f"a forgotten return: {message}"
    for answer in (_wrong_type, 42):
        status, message = _status(exercise_id, answer)
        assert status == "wrong", f"{answer!r}: {message}"
        assert "np.float64" not in message and "np.int64" not in message, message
    status, message = _status(exercise_id, _crashes)
    assert status == "crash" and "ZeroDivisionError" in message and "_crashes" in message, message


@pytest.mark.parametrize("exercise_id", all_exercises())
def test_plausible_wrong_answers_are_rejected_with_a_hint(exercise_id):
    wrong = _wrong_answers(exercise_id[:2]).get(exercise_id, [])
    assert len(wrong) >= 3, f"tests/wrong_answers/nb{exercise_id[:2]}.py needs >= 3 wrong answers for {exercise_id}"
    for label, answer in wrong:
        status, message = _status(exercise_id, answer)
        assert status == "wrong", f"{label}: expected ❌, got {message}"
        assert "np.float64" not in message and "np.int64" not in message, f"{label}: numpy repr in {message}"
        assert len(message.split(":", 1)[1].strip()) > 20, f"{label}: no hint in {message}"


@pytest.mark.parametrize("exercise_id", [e for e in all_exercises() if e.endswith(".quiz")])
def test_every_wrong_option_of_a_quiz_is_rejected(exercise_id):
    quiz = exercise_info(exercise_id).quiz
    key = load_solutions(exercise_id[:2])[exercise_id]
    for i, q in enumerate(quiz.questions, start=1):
        options = [o for o in getattr(q, "options", {}) if o != q.answer] if hasattr(q, "options") else \
            [q.answer + 10 * q.tol + 1, -q.answer - 1]
        for option in options:
            status, message = _status(exercise_id, {**key, i: option})
            assert status == "wrong" and f"{i}. ❌" in message, message
    status, message = _status(exercise_id, [key])
    assert status == "wrong" and "dict" in message, message


# ------------------------------------------------------------------------------------------------ the framework
def test_unknown_exercise_is_reported(capsys):
    assert check("99.nothing", lambda: None) is False
    assert "no exercise called" in capsys.readouterr().out


def test_call_blames_the_students_line_and_copies_inputs():
    def student(a):
        a[0] = 99.0
        x = a.sum()
        return x / undefined_name  # noqa: F821

    import numpy as np

    arr = np.zeros(3)
    with pytest.raises(Exception) as info:
        call(student, arr)
    assert "NameError" in str(info.value) and "line 4 of `student`" in str(info.value)
    assert arr[0] == 0.0, "call passes copies: the student cannot spoil the checker's data"


def test_numbers_are_read_and_printed_plainly():
    import numpy as np
    import torch

    assert number(np.float64(2.5), "x") == 2.5 and number(torch.tensor([3.0]), "x") == 3.0
    assert fmt(np.float64(5.0)) == "5" and fmt(np.array([0.8, 0.6])) == "[0.8, 0.6]" and fmt(0.123456) == "0.1235"
    for bad in ("1024", [1.0, 2.0], np.ones(3), float("nan"), True, None):
        with pytest.raises(AssertionError):
            number(bad, "x")


def test_strict_mode_raises_on_anything_but_a_right_answer(monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_COURSE_STRICT", "1")
    some_function = next(e for e in all_exercises() if exercise_info(e).kind == "function")
    with pytest.raises(ExerciseFailed, match="not attempted"):
        check(some_function, _stub)
    with pytest.raises(ExerciseFailed, match="return"):
        check(some_function, _forgot_return)
    right = load_solutions(some_function[:2])[some_function]
    assert check(some_function, right) is True
    monkeypatch.setenv("RECSYS_COURSE_STRICT", "0")
    assert check(some_function, _stub) is False


def test_show_solution_and_show_quiz_print_something(capsys):
    some_function = next(e for e in all_exercises() if exercise_info(e).kind == "function")
    show_solution(some_function)
    assert "def " in capsys.readouterr().out
    number_ = some_function[:2]
    show_solution(f"{number_}.quiz")
    out = capsys.readouterr().out
    assert "answer:" in out and "why:" in out
    show_quiz(number_)
    assert "Questionnaire" in capsys.readouterr().out

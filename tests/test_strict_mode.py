"""Strict mode, as an autograder uses it: a notebook whose answers are all right runs to the end; one wrong
answer stops the run at its check cell with ExerciseFailed.

The student's answers are simulated by inserting, before each check cell, a cell that binds the checked
name to the course's solution (``name = load_solutions("00")["00.x"]``) — or, for one exercise, to a wrong
answer.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from recsys_course.config import ENV_STRICT
from recsys_course.course import runner

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "00_setup_and_data.ipynb"
CHECK_CALL = re.compile(r"""check\(\s*["'](\d\d\.[\w.]+)["']\s*,\s*([A-Za-z_]\w*)""")


def _answered(tmp_path: Path, wrong: str | None = None) -> Path:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = []
    for cell in nb.cells:
        match = CHECK_CALL.search(cell.source) if cell.cell_type == "code" else None
        if match:
            exercise_id, name = match.groups()
            answer = "(lambda *args: None)" if exercise_id == wrong else \
                f'load_solutions("{exercise_id[:2]}")["{exercise_id}"]'
            cells.append(nbformat.v4.new_code_cell(f"from recsys_course.exercises import load_solutions\n"
                                                   f"{name} = {answer}"))
        cells.append(cell)
    nb.cells = cells
    path = tmp_path / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


@pytest.mark.notebooks
def test_strict_mode_passes_right_answers_and_stops_at_a_wrong_one(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_STRICT, "1")
    (tmp_path / "right").mkdir()
    right = _answered(tmp_path / "right")
    runner.execute(right, tmp_path / "right.out.ipynb", profile="smoke", cwd=NOTEBOOK.parent)
    cells = json.loads((tmp_path / "right.out.ipynb").read_text())["cells"]
    outputs = json.dumps([c.get("outputs", []) for c in cells], ensure_ascii=False)
    assert "✅ 00." in outputs and "❌" not in outputs and "⏳" not in outputs

    (tmp_path / "wrong").mkdir()
    wrong = _answered(tmp_path / "wrong", wrong="00.dense_core_density")
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as info:
        runner.execute(wrong, tmp_path / "wrong.out.ipynb", profile="smoke", cwd=NOTEBOOK.parent)
    assert info.value.ename == "ExerciseFailed" and "00.dense_core_density" in info.value.evalue
    assert "return" in info.value.evalue  # the feedback line travels in the exception


@pytest.mark.notebooks
def test_without_strict_mode_a_wrong_answer_does_not_stop_the_run(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_STRICT, raising=False)
    wrong = _answered(tmp_path, wrong="00.dense_core_density")
    runner.execute(wrong, tmp_path / "out.ipynb", profile="smoke", cwd=NOTEBOOK.parent)
    assert "❌ 00.dense_core_density" in (tmp_path / "out.ipynb").read_text()

"""The course's address lives in pyproject.toml only; `recsys-course sync-links` writes every copy of it, and the
Colab setup cell it writes is safe to run twice."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from recsys_course.course import cli, links

ROOT = Path(__file__).resolve().parents[1]


def test_every_copy_is_in_step_with_pyproject():
    assert links.sync(ROOT, check=True) == [], "run: recsys-course sync-links"
    assert cli.main(["sync-links", "--check"]) == 0


@pytest.fixture
def course_copy(tmp_path):
    """The files sync-links touches, copied into a scratch folder."""
    for name in ("pyproject.toml", "README.md", "CONTRIBUTING.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    return tmp_path


def test_a_fork_re_points_everything_with_one_command(course_copy):
    pyproject = course_copy / "pyproject.toml"
    old = links.location(pyproject)
    pyproject.write_text(pyproject.read_text().replace(old.repository, "https://github.com/someone/my-course")
                         .replace('ref = "main"', 'ref = "v0.2"'))
    n_notebooks = len(list((course_copy / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    assert len(links.sync(course_copy, check=True)) == n_notebooks + 2  # every notebook, README, CONTRIBUTING
    links.sync(course_copy)
    assert links.sync(course_copy, check=True) == []
    fork = "https://colab.research.google.com/github/someone/my-course/blob/v0.2/notebooks/"
    for path in [course_copy / "README.md", course_copy / "CONTRIBUTING.md", *course_copy.glob("notebooks/*.ipynb")]:
        text = path.read_text()
        assert old.slug not in text, f"{path.name} still names {old.slug}"
        assert fork in text
    nb = nbformat.read(next(course_copy.glob("notebooks/00_*.ipynb")), as_version=4)
    assert '"https://github.com/someone/my-course", "v0.2"' in nb.cells[1].source


@pytest.mark.parametrize(("line", "words"), [('Repository = "https://gitlab.com/a/b"', "Repository must be"),
                                             ('ref = "main branch"', "ref must name a branch")])
def test_a_bad_address_is_refused_with_the_fix(course_copy, line, words):
    pyproject = course_copy / "pyproject.toml"
    text = pyproject.read_text()
    key = line.split(" = ")[0]
    start = text.index(f"\n{key} = ") + 1
    pyproject.write_text(text[:start] + line + text[text.index("\n", start):])
    with pytest.raises(ValueError, match=words):
        links.sync(course_copy)


def test_the_colab_setup_cell_can_run_twice(tmp_path):
    """What Colab does when a student runs the first cell, then *Run all*: the second run must not fail."""
    where = links.location()
    clone = tmp_path / "recsys-course"
    cell = (where.setup_cell().replace('Path("/content/recsys-course")', f"Path({str(clone)!r})")
            .replace(f'"{where.repository}"', f'"file://{ROOT}"'))
    fake_colab = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "-q", where.ref],
                      capture_output=True).returncode != 0:
        pytest.skip(f"this checkout has no {where.ref!r} to clone")
    for run in (1, 2):
        done = subprocess.run([sys.executable, "-c", fake_colab + cell], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"run {run} of the setup cell failed:\n{done.stderr}"
        assert (clone / ".git").is_dir() and (clone / "recsys_course").is_dir()

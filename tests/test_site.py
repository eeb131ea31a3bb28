"""The static site of an executed course (`recsys_course.course.site.build_site`): pages, index, leaderboard."""
from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import nbformat
import pytest

from recsys_course.course import leaderboard
from recsys_course.course.site import build_site

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TWO = ["00_setup_and_data.ipynb", "01_evaluation.ipynb"]


def _build_folder(folder: Path, with_leaderboard: bool = True) -> Path:
    """A build folder like ``build/lesson/``: two committed (executed) notebooks and, optionally, their
    leaderboard written the way ``recsys-course run`` writes it."""
    folder.mkdir(parents=True)
    for name in TWO:
        shutil.copyfile(NOTEBOOKS / name, folder / name)
    if with_leaderboard:
        leaderboard.write(leaderboard.collect(sorted(folder.glob("*.ipynb"))), folder)
    return folder


def _hrefs(page: Path) -> list[str]:
    return re.findall(r'href="([^"#:]+)"', page.read_text(encoding="utf-8"))  # local links only


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    build = _build_folder(tmp_path_factory.mktemp("site") / "lesson")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. nbconvert's "mimetype ... not able to be represented"
        index = build_site(build)
    assert index == build / "site" / "index.html"
    return index.parent


def test_index_lists_every_notebook_with_a_working_link(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    hrefs = _hrefs(site / "index.html")
    assert "00_setup_and_data.html" in hrefs and "01_evaluation.html" in hrefs and "leaderboard.html" in hrefs
    assert all((site / h).is_file() for h in hrefs)
    assert ">Setup and data</a>" in index and ">Evaluation: splits, leakage, metrics and baselines</a>" in index
    assert "Check your environment and pick the compute device" in index  # the first paragraph of prose
    seconds = nbformat.read(NOTEBOOKS / TWO[0], as_version=4).metadata["recsys_course"]["lesson_seconds"]
    assert f">{seconds} s</td>" in index  # the recorded lesson time (the committed copies were not run by papermill)
    assert "<code>lesson/</code>" in index and "not executed" not in index


def test_each_page_has_its_heading_navigation_and_embedded_images(site):
    first = (site / "00_setup_and_data.html").read_text(encoding="utf-8")
    second = (site / "01_evaluation.html").read_text(encoding="utf-8")
    assert "00 · Setup and data" in first and "01 · Evaluation: splits, leakage" in second
    assert "<title>00 · Setup and data · Recommender systems course</title>" in first
    assert 'href="01_evaluation.html"' in first and 'rel="next"' in first and 'rel="prev"' not in first
    assert "00_setup_and_data.html" in _hrefs(site / "01_evaluation.html")
    assert first.count('<nav class="site-nav">') == 2 and 'href="index.html"' in second
    assert "data:image/png;base64," in first
    assert "vnd.recsys-course.record" not in first  # the record outputs are left out


def test_leaderboard_page_has_the_table_and_the_chart(site):
    page = (site / "leaderboard.html").read_text(encoding="utf-8")
    assert "<table>" in page and "BiasBaseline" in page
    assert '<img src="leaderboard.png"' in page and (site / "leaderboard.png").is_file()
    assert 'href="index.html"' in page


def test_unexecuted_and_failed_notebooks_are_marked_and_a_missing_leaderboard_explained(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 00 · Tiny\n\nA tiny notebook."),
        nbformat.v4.new_code_cell("1 + 1", execution_count=1, outputs=[
            nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)])])
    nbformat.write(nb, build / "00_tiny.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), build / "01_never_run.ipynb")
    nb.metadata["papermill"] = {"exception": True, "duration": 1.5, "parameters": {"profile": "smoke"}}
    nbformat.write(nb, build / "02_fails.ipynb")  # what papermill leaves of a notebook that raised
    out = build_site(build, tmp_path / "out", title="Tiny course").parent
    page = (out / "leaderboard.html").read_text(encoding="utf-8")
    assert "no leaderboard" in page and "make course" in page and "<img" not in page
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "A tiny notebook." in index and "<h1>Tiny course</h1>" in index
    assert re.search(r'href="01_never_run.html">Never run</a> <span class="mark">\(not executed\)', index)
    assert "was not executed" in (out / "01_never_run.html").read_text(encoding="utf-8")
    assert re.search(r'href="02_fails.html">Tiny</a> <span class="mark">\(failed\)', index)
    assert "failed while it was executed" in (out / "02_fails.html").read_text(encoding="utf-8")
    assert "profile <code>smoke</code>" in index and ">2 s</td>" in index  # papermill's duration, rounded


def test_a_missing_or_unexecuted_folder_says_to_run_the_course_first(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere.*make course"):
        build_site(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"no executed notebooks.*make course"):
        build_site(tmp_path)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), tmp_path / "00_a.ipynb")
    with pytest.raises(FileNotFoundError, match=r"ever executed.*make course"):
        build_site(tmp_path)


def test_building_twice_gives_the_same_bytes(site, tmp_path):
    again = build_site(site.parent, tmp_path / "again").parent
    names = sorted(p.name for p in site.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert names == ["00_setup_and_data.html", "01_evaluation.html", "index.html", "leaderboard.csv",
                     "leaderboard.html", "leaderboard.png"]
    for name in names:
        assert (site / name).read_bytes() == (again / name).read_bytes(), name

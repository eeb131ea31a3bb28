"""`recsys-course run` loses nothing: the leaderboard is a view of the build folder (partial runs keep the other
notebooks' rows, stale rows are marked), a failed or interrupted run leaves what it should, one run at a time per
folder, and `make lab` starts for whoever runs it.

On the three tiny notebooks of ``tests/fixtures/resilience`` (never the real course): 00 records no leaderboard
row, 01 the rating track, 02 the ranking track around a cell that sleeps ``$FIXTURE_SLEEP`` seconds;
``$FIXTURE_FAIL=01`` makes 01 fail after recording its rows.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from recsys_course.course import cli, leaderboard, runner
from recsys_course.record import MIME

FIXTURES = Path(__file__).parent / "fixtures" / "resilience"
REPO = Path(__file__).resolve().parents[1]
BOARD = ("leaderboard.md", "leaderboard.csv", "leaderboard.png")


def _run(nb_dir: Path, out: Path, *args: str) -> int:
    return cli.main(["run", "--profile", "smoke", "--output", str(out), "--notebooks-dir", str(nb_dir), *args])


def _board(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "leaderboard.csv", keep_default_na=False)


def _snapshot(out: Path) -> dict:
    return {name: ((out / name).read_bytes(), (out / name).stat().st_mtime_ns) for name in BOARD}


def _stamp(copy: Path) -> dict:
    return json.loads(copy.read_text())["metadata"]["recsys_course"]["run"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """The three fixture notebooks executed once into a build folder (copied by each test that changes it)."""
    root = tmp_path_factory.mktemp("full-run")
    nb_dir = root / "notebooks"
    shutil.copytree(FIXTURES, nb_dir)
    out = root / "build" / "smoke"
    assert _run(nb_dir, out) == 0
    return nb_dir, out


@pytest.fixture()
def build(full_run, tmp_path):
    nb_dir, out = full_run
    shutil.copytree(nb_dir, tmp_path / "notebooks")
    shutil.copytree(out, tmp_path / "build" / "smoke")
    return tmp_path / "notebooks", tmp_path / "build" / "smoke"


def test_a_full_run_stamps_every_copy_and_its_rows(full_run):
    nb_dir, out = full_run
    board = _board(out)
    assert list(board["model"]) == ["Good", "Worse", "Better", "Pop"]
    assert list(board.columns[-4:]) == list(leaderboard.PROVENANCE)
    assert set(board["profile"]) == {"smoke"} and set(board["dataset"]) == {"latest-small"}
    assert (board["stale"] == "").all() and (board["executed"].str.len() == 16).all()  # "YYYY-MM-DD HH:MM"
    stamp = _stamp(out / "01_rating.ipynb")
    assert stamp["status"] == "ok" and stamp["profile"] == "smoke" and stamp["device"] == "auto"
    assert stamp["code_sha256"] == leaderboard.code_digest(nb_dir / "01_rating.ipynb")
    assert "| Good | 01_rating | 0.9000 | 0.7000 |" in (out / "leaderboard.md").read_text()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file, the lock released


def test_partial_runs_keep_every_other_notebooks_rows(build, capsys):
    nb_dir, out = build
    before = _board(out)
    assert _run(nb_dir, out, "--notebooks", "01") == 0
    after = _board(out)
    assert list(after["model"]) == list(before["model"])  # 02's rows are still there
    ranking = after["track"] == "ranking"
    assert after[ranking].equals(before[ranking])  # untouched, executed when they were
    assert _run(nb_dir, out, "--notebooks", "00") == 0  # no leaderboard rows of its own
    assert list(_board(out)["model"]) == list(before["model"])
    assert "no leaderboard entries" not in (out / "leaderboard.md").read_text()
    capsys.readouterr()


def test_a_changed_notebook_makes_its_rows_stale(build, capsys):
    nb_dir, out = build
    source = nb_dir / "02_ranking_sleeps.ipynb"
    nb = nbformat.read(source, as_version=4)
    nb.cells[-1].source += "\n# edited"
    nbformat.write(nb, source)
    nb = nbformat.read(nb_dir / "01_rating.ipynb", as_version=4)
    nb.cells[0].source += " (prose only)"  # markdown: the numbers cannot have changed
    nbformat.write(nb, nb_dir / "01_rating.ipynb")
    board, _ = runner.build_leaderboard(out, sources=nb_dir)
    stale = dict(zip(board["model"], board["stale"]))
    assert stale == {"Good": "", "Worse": "", "Better": "source changed", "Pop": "source changed"}
    text = (out / "leaderboard.md").read_text()
    assert "2 row(s) are stale" in text and "| source changed |" in text
    lines = runner.missing_or_stale([], board)
    assert lines == ["02_ranking_sleeps.ipynb: 2 row(s) stale (source changed); re-run it: --notebooks 02"]
    (nb_dir / "02_ranking_sleeps.ipynb").unlink()
    board, _ = runner.build_leaderboard(out, sources=nb_dir)
    assert set(board.loc[board["track"] == "ranking", "stale"]) == {"no source"}


def test_a_failed_notebook_says_which_rows_are_stale_and_keeps_the_others(build, monkeypatch, capsys):
    nb_dir, out = build
    monkeypatch.setenv("FIXTURE_FAIL", "01")
    assert _run(nb_dir, out, "--notebooks", "01") == 1
    err = capsys.readouterr().err
    assert "01_rating.ipynb failed at" in err and "deliberate failure of 01" in err
    assert "01_rating.ipynb failed: the 2 row(s) it recorded before that are marked stale" in err
    board = _board(out)
    assert dict(zip(board["model"], board["stale"])) == {"Good": "failed", "Worse": "failed", "Better": "",
                                                         "Pop": ""}
    stamp = _stamp(out / "01_rating.ipynb")
    assert stamp["status"] == "failed" and "deliberate failure" in stamp["error"]


def test_a_run_that_fails_before_executing_rewrites_nothing(build, capsys):
    import torch

    nb_dir, out = build
    before = _snapshot(out)
    copies = {p.name: p.read_bytes() for p in out.glob("*.ipynb")}
    if not torch.cuda.is_available():
        assert _run(nb_dir, out, "--device", "cuda") == 2
        assert "CUDA is not available" in capsys.readouterr().err
    assert _run(nb_dir, out, "--device", "tpu") == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err
    assert _run(nb_dir, out, "--dataset", "ml-2m") == 2
    assert _snapshot(out) == before
    assert {p.name: p.read_bytes() for p in out.glob("*.ipynb")} == copies
    assert not (out / runner.BuildLock.NAME).exists()
    assert _run(nb_dir, out.parent / "fresh", "--device", "tpu") == 2
    assert not (out.parent / "fresh").exists()  # checked before anything is written


def test_the_leaderboard_is_written_whole_or_not_at_all(build, monkeypatch):
    nb_dir, out = build
    before = _snapshot(out)

    def broken_plot(board, path):
        Path(path).write_bytes(b"half a png")
        raise OSError("No space left on device")

    monkeypatch.setattr(leaderboard, "plot", broken_plot)
    with pytest.raises(OSError, match="No space left"):
        runner.build_leaderboard(out, sources=nb_dir)
    assert _snapshot(out) == before  # md and csv were ready too, but nothing was renamed
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_copies_executed_before_runs_were_stamped_are_dated_by_papermill(tmp_path):
    """A build folder from an older version of the course: papermill's metadata, no stamp; stale by mtime."""
    nb_dir, out = tmp_path / "notebooks", tmp_path / "build"
    nb_dir.mkdir(), out.mkdir()
    outputs = [nbformat.v4.new_output("display_data", data={MIME: {"name": "leaderboard/rating/A/rmse",
                                                                   "value": 0.9}})]
    old = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", outputs=outputs)])
    old.metadata["papermill"] = {"end_time": "2024-03-01T10:00:00+00:00", "parameters": {"profile": "lesson"},
                                 "exception": None}
    nbformat.write(old, out / "03_old.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), nb_dir / "03_old.ipynb")
    os.utime(out / "03_old.ipynb", (time.time() - 3600, time.time() - 3600))
    board = leaderboard.collect(leaderboard.executed_copies(out), sources=nb_dir)
    assert board.loc[0, "profile"] == "lesson" and board.loc[0, "executed"].startswith("2024-03-0")
    assert board.loc[0, "stale"] == "source changed"  # the notebook is newer than its copy
    committed = leaderboard.collect([nb_dir / "03_old.ipynb"])  # a committed notebook: metrics only
    assert "stale" not in committed.columns


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_a_lock_left_by_a_dead_run_is_taken_over(tmp_path):
    out = tmp_path / "build"
    out.mkdir()
    (out / runner.BuildLock.NAME).write_text(json.dumps({"pid": _dead_pid(), "started": "yesterday"}))
    with runner.BuildLock(out) as lock:
        assert lock.took_over["started"] == "yesterday"
        assert json.loads((out / runner.BuildLock.NAME).read_text())["pid"] == os.getpid()
        with pytest.raises(runner.BuildLocked, match=rf"another recsys-course run \(PID {os.getpid()}"):
            runner.BuildLock(out).__enter__()  # a second holder, even in this process, is refused
    assert not (out / runner.BuildLock.NAME).exists()  # released on exit
    with runner.BuildLock(out) as lock:
        assert lock.took_over is None


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _sleeping(copy: Path, old_id: str) -> bool:
    """This run's copy has recorded Pop: the kernel is in the cell that sleeps (papermill saves after each cell)."""
    try:
        text = copy.read_text()
        return _stamp(copy)["id"] != old_id and "leaderboard/ranking/Pop/ndcg@10" in text
    except (OSError, ValueError, KeyError):  # not written yet, or being written
        return False


def test_ctrl_c_keeps_the_partial_copy_and_the_leaderboard_and_a_second_run_is_refused(build, capsys):
    nb_dir, out = build
    before = _snapshot(out)
    env = {**os.environ, "FIXTURE_SLEEP": "120", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "recsys_course", "run", "--profile", "smoke", "--notebooks", "02",
                             "--output", str(out), "--notebooks-dir", str(nb_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=nb_dir.parent)
    try:
        copy = out / "02_ranking_sleeps.ipynb"
        old_id = _stamp(copy)["id"]
        _wait_for(lambda: _sleeping(copy, old_id), 180, "the notebook to reach its sleep")
        # a second run into the same folder says so and stops, changing nothing
        assert _run(nb_dir, out, "--notebooks", "01") == 2
        err = capsys.readouterr().err
        assert f"another recsys-course run (PID {proc.pid}" in err and "--output" in err
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "interrupted (Ctrl-C) during 02_ranking_sleeps.ipynb" in stderr
    assert "marked interrupted" in stderr and "left as it was" in stderr
    assert _snapshot(out) == before  # the leaderboard was not touched
    stamp = _stamp(copy)
    assert stamp["status"] == "interrupted" and stamp["id"] != old_id
    assert "leaderboard/ranking/Pop/ndcg@10" in copy.read_text()  # the partial copy: what ran before Ctrl-C
    assert not (out / runner.BuildLock.NAME).exists()  # the lock was released
    # the next leaderboard treats the interrupted copy as stale, never as fresh; Better was never recorded
    board, _ = runner.build_leaderboard(out, sources=nb_dir)
    assert dict(zip(board["model"], board["stale"])) == {"Good": "", "Worse": "", "Pop": "interrupted"}


def test_make_lab_binds_to_localhost_and_passes_allow_root_as_root(tmp_path):
    """`make lab` with a stand-in venv whose jupyter prints its arguments."""
    if shutil.which("make") is None:
        pytest.skip("no make here")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    jupyter = venv / "bin" / "jupyter"
    jupyter.write_text('#!/bin/sh\necho "jupyter-args: $*"\n')
    jupyter.chmod(0o755)
    (venv / "bin" / "python").symlink_to(shutil.which("true"))
    (venv / ".installed").touch()  # newer than pyproject.toml: setup has nothing to do
    done = subprocess.run(["make", "-s", "lab", f"VENV={venv}"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    args = next(line for line in done.stdout.splitlines() if line.startswith("jupyter-args:")).split()[1:]
    assert args[:2] == ["lab", "notebooks"] and "--ServerApp.ip=127.0.0.1" in args
    root = os.getuid() == 0
    assert ("--allow-root" in args) == root
    assert ("running as root" in done.stdout) == root

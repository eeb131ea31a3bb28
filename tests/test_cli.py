"""The course runner (`recsys-course run`): papermill execution, failure reporting, the leaderboard."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from recsys_course.course import cli, leaderboard, runner
from recsys_course.record import read_records

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


@pytest.fixture()
def nb_dir(tmp_path):
    folder = tmp_path / "notebooks"
    shutil.copytree(FIXTURES, folder)
    return folder


def test_discover_orders_and_selects(nb_dir):
    assert [p.name for p in runner.discover(nb_dir)] == ["00_records.ipynb", "01_fails.ipynb"]
    assert [p.name for p in runner.discover(nb_dir, ["1"])] == ["01_fails.ipynb"]
    assert [p.name for p in runner.discover(nb_dir, ["00_records"])] == ["00_records.ipynb"]
    with pytest.raises(ValueError, match="no notebook matches '07'"):
        runner.discover(nb_dir, ["07"])


def test_run_writes_outputs_leaderboard_and_keeps_sources(nb_dir, tmp_path, capsys):
    before = (nb_dir / "00_records.ipynb").read_bytes()
    out = tmp_path / "build"
    code = cli.main(["run", "--profile", "smoke", "--notebooks", "00", "--output", str(out),
                     "--notebooks-dir", str(nb_dir)])
    printed = capsys.readouterr().out
    assert code == 0
    assert (nb_dir / "00_records.ipynb").read_bytes() == before  # never over notebooks/
    records = read_records(out / "00_records.ipynb")
    assert records["fixture/profile_is_smoke"] == 1  # papermill injected the profile
    board = pd.read_csv(out / "leaderboard.csv")
    assert list(board["model"]) == ["Good", "Worse", "Pop"]  # rating track first, sorted by rmse; then ranking
    assert (out / "leaderboard.png").stat().st_size > 1000
    assert "| Good | 00_records | 0.9000 | 0.7000 |" in (out / "leaderboard.md").read_text()
    assert "00_records.ipynb" in printed and "Ranking track" in printed


def test_kernels_print_no_network_warning(nb_dir, tmp_path, capfd):
    """The kernels talk over IPC sockets, not TCP: `make course` shows the bars and times, not the kernel's
    "running over TCP without encryption" warning once per notebook."""
    assert cli.main(["run", "--profile", "smoke", "--notebooks", "00", "--output", str(tmp_path / "b"),
                     "--notebooks-dir", str(nb_dir)]) == 0
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err
    manager = runner._kernel_manager_class()(kernel_name="python3")
    if manager.transport == "ipc":  # the socket files live in a private temporary folder, never beside notebooks
        assert Path(manager.ip).parent.name.startswith("recsys-course-kernels-")
        assert not list(nb_dir.glob("kernel*"))


def test_failure_names_notebook_and_cell(nb_dir, tmp_path, capsys):
    code = cli.main(["run", "--profile", "smoke", "--output", str(tmp_path / "b"), "--notebooks-dir", str(nb_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert "01_fails.ipynb failed at In [4]" in err  # parameters, injected parameters, x = 1, then this
    assert "the cell starting \"raise ValueError('deliberate" in err
    assert "ValueError: deliberate failure for the runner test" in err
    assert (tmp_path / "b" / "00_records.ipynb").exists()  # the other notebook still ran


def test_refuses_to_write_into_notebooks(nb_dir, capsys):
    code = cli.main(["run", "--profile", "smoke", "--notebooks", "00", "--output", str(nb_dir),
                     "--notebooks-dir", str(nb_dir)])
    assert code == 2
    assert "never overwrites notebooks/" in capsys.readouterr().err


def test_unknown_profile_is_rejected(nb_dir):
    with pytest.raises(SystemExit):
        cli.main(["run", "--profile", "huge", "--notebooks-dir", str(nb_dir)])


def test_refresh_executes_in_place_without_injecting(nb_dir):
    nb = nb_dir / "00_records.ipynb"
    assert runner.refresh([nb], echo=lambda *_: None)[0].ok
    data = json.loads(nb.read_text())
    assert "papermill" not in data["metadata"]
    assert data["metadata"]["recsys_course"]["lesson_seconds"] >= 0
    assert not any("injected-parameters" in c["metadata"].get("tags", []) for c in data["cells"])
    assert read_records(nb)["fixture/profile_is_smoke"] == 0  # its own profile = "lesson" cell ran


def test_leaderboard_markdown_handles_empty_and_missing():
    assert "no leaderboard entries" in leaderboard.to_markdown(pd.DataFrame(columns=["track", "model"]))
    rows = leaderboard.rows_from_records({"leaderboard/rating/A/rmse": 1.0, "other/x": 3,
                                          "leaderboard/ranking/A/ndcg@10": 0.1}, "nb")
    assert sorted((r["track"], r["model"]) for r in rows) == [("ranking", "A"), ("rating", "A")]



def test_leaderboard_tracks_in_course_order_then_others(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from recsys_course.record import MIME

    records = {"leaderboard/zeta/A/hit@10": 0.2, "leaderboard/next-item/A/ndcg@10": 0.03,
               "leaderboard/ranking/A/ndcg@10": 0.1, "leaderboard/ranking/B/ndcg@10": 0.2,
               "leaderboard/rating/A/rmse": 0.9, "leaderboard/rating/B/rmse": 0.8}
    outputs = [new_output("display_data", data={MIME: {"name": k, "value": v}, "text/plain": k})
               for k, v in records.items()]
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("", outputs=outputs)]), path)
    board = leaderboard.collect([path])
    assert list(board["track"]) == ["rating", "rating", "ranking", "ranking", "next-item", "zeta"]
    assert list(board["model"][:4]) == ["B", "A", "B", "A"]  # best first: lower rmse, higher ndcg
    text = leaderboard.to_markdown(board)
    order = [text.index(f"**{t} track**") for t in ["Rating", "Ranking", "Next-item", "Zeta"]]
    assert order == sorted(order)


def test_a_data_set_override_reaches_the_kernel_and_gets_its_own_folder(nb_dir, tmp_path, monkeypatch, capsys):
    from recsys_course.config import ENV_DATASET

    monkeypatch.setenv(ENV_DATASET, "")  # recorded, so the test ends with it unset again (the runner sets it)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["run", "--profile", "smoke", "--dataset", "Synthetic-Small", "--notebooks", "00",
                     "--notebooks-dir", str(nb_dir)])
    printed = capsys.readouterr().out
    assert code == 0 and (tmp_path / "build" / "smoke-synthetic-small" / "00_records.ipynb").exists()
    assert "on synthetic-small into build/smoke-synthetic-small/" in printed
    if Path("/proc/self/task").is_dir():  # Linux: the kernel's peak memory is measured
        assert "peak MiB" in printed
    assert cli.main(["run", "--dataset", "ml-2m", "--notebooks-dir", str(nb_dir)]) == 2
    assert "unknown data set 'ml-2m'" in capsys.readouterr().err


def test_site_and_gpu_check_commands(nb_dir, tmp_path, capsys):
    out = tmp_path / "build"
    assert cli.main(["run", "--profile", "smoke", "--notebooks", "00", "--output", str(out),
                     "--notebooks-dir", str(nb_dir)]) == 0
    capsys.readouterr()
    assert cli.main(["site", "--build", str(out)]) == 0
    assert (out / "site" / "index.html").exists() and (out / "site" / "00_records.html").exists()
    assert "site written" in capsys.readouterr().out
    assert cli.main(["site", "--build", str(tmp_path / "nothing")]) == 2
    assert "make course" in capsys.readouterr().err
    import torch

    if not torch.cuda.is_available():
        assert cli.main(["gpu-check"]) == 0
        assert "no CUDA" in capsys.readouterr().out


def test_outside_a_clone_the_messages_say_to_clone(tmp_path, monkeypatch):
    """A wheel installed elsewhere has neither notebooks/ nor data/: both say so, and where the course lives."""
    from recsys_course import config
    from recsys_course.data import DataError, load_dataset

    monkeypatch.setattr(config, "REPO_DIR", tmp_path)
    monkeypatch.setattr(runner, "REPO_DIR", tmp_path)
    monkeypatch.delenv(config.ENV_DATA_DIR, raising=False)
    with pytest.raises(FileNotFoundError, match=r"outside a clone of the course.*Clone https://github\.com/"):
        runner.discover(tmp_path / "notebooks")
    with pytest.raises(DataError, match=r"outside a clone of the course.*RECSYS_COURSE_DATA"):
        load_dataset("latest-small")

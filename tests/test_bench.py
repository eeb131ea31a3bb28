"""The benchmark (``recsys-course bench``) runs and writes what the leaderboard joins; no timing is asserted."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys_course.course import bench, cli, costs, leaderboard


def test_bench_cli_runs_on_a_tiny_synthetic_set_and_writes_json(tmp_path, capsys):
    out = tmp_path / "costs.json"
    code = cli.main(["bench", "--dataset", "synthetic-small", "--max-users", "25", "--in-process",
                     "--models", "ItemKNN", "ItemKNN-ranking", "Popularity", "--references", "--write", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "ms/user" in printed and "ItemKNN-ranking" in printed
    data = json.loads(out.read_text())
    assert {"dataset", "measured", "commit", "machine", "models"} <= set(data)
    item = data["models"]["ItemKNN"]
    assert item["fit s"] >= 0 and item["ms/user"] > 0 and np.isfinite(item["rmse"])
    assert item["leaderboard"] == ["rating/ItemKNN", "ranking/ItemKNN-rating-mode"]
    assert "rmse" not in data["models"]["ItemKNN-ranking"]  # ranking mode predicts no ratings


@pytest.mark.parametrize("argv, message", [
    (["--models", "NoSuchModel"], "unknown model"),
    (["--references", "surprise:NoSuch"], "unknown model"),
    (["--max-users", "1"], "--max-users must be"),
])
def test_bench_rejects_bad_input_clearly(argv, message, capsys):
    assert cli.main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_failing_model_is_reported_not_raised(monkeypatch):
    def boom(*args):
        raise RuntimeError("broken model")

    monkeypatch.setattr(bench, "measure_course", boom)
    monkeypatch.setattr(bench, "_data", lambda *a: (None, None))
    bench._child("ItemKNN", "synthetic-small", 10)  # prints a JSON line with the error instead of raising


def _board():
    return pd.DataFrame({"track": ["rating", "rating", "ranking", "ranking", "ranking"],
                         "model": ["ItemKNN", "SVD++", "ItemKNN", "ItemKNN-rating-mode", "EASE"],
                         "notebook": ["02", "04", "02", "02", "04"],
                         "rmse": [0.87, 0.86, np.nan, np.nan, np.nan],
                         "ndcg@10": [np.nan, np.nan, 0.06, 0.007, 0.09]})


COSTS = {"models": {"ItemKNN": {"fit s": 2.0, "ms/user": 9.0, "leaderboard": ["rating/ItemKNN",
                                                                              "ranking/ItemKNN-rating-mode"]},
                    "ItemKNN-ranking": {"fit s": 2.5, "ms/user": 0.1, "leaderboard": ["ranking/ItemKNN"]},
                    "EASE": {"fit s": 0.9, "ms/user": 0.5},
                    "Broken": {"error": "RuntimeError: x"}}}


def test_costs_join_by_leaderboard_row_then_by_name():
    board = costs.join(_board(), COSTS)
    got = board.set_index(["track", "model"])
    assert got.loc[("rating", "ItemKNN"), "ms/user"] == 9.0
    assert got.loc[("ranking", "ItemKNN"), "ms/user"] == 0.1  # the ranking-mode entry, not the rating one
    assert got.loc[("ranking", "ItemKNN-rating-mode"), "fit s"] == 2.0
    assert got.loc[("ranking", "EASE"), "fit s"] == 0.9
    assert np.isnan(got.loc[("rating", "SVD++"), "fit s"])  # not benchmarked
    table = leaderboard.to_markdown(board)
    assert "| SVD++ | 04 | 0.8600 |" in table and "| — | — |" in table  # "—" for a missing cost
    assert costs.join(_board(), {}).equals(_board())  # no benchmark: the board is unchanged


def test_costs_load_missing_and_malformed(tmp_path):
    assert costs.load(tmp_path / "absent.json") == {}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": [1, 2]}))
    with pytest.raises(ValueError, match="not a benchmark table"):
        costs.load(bad)


def test_write_adds_the_quality_against_cost_figure(tmp_path):
    paths = leaderboard.write(costs.join(_board(), COSTS), tmp_path)
    assert paths["costs.png"].exists() and paths["png"].exists()
    assert not list(tmp_path.glob(".leaderboard-*"))  # no temporary file left
    plain = leaderboard.write(_board(), tmp_path / "plain")
    assert "costs.png" not in plain and not (tmp_path / "plain" / "leaderboard-costs.png").exists()


def test_costs_go_before_the_provenance_columns_and_only_when_some_row_matches():
    board = _board().assign(executed="2026-01-01 10:00", profile="lesson", dataset="latest-small", stale="")
    joined = costs.join(board, COSTS)
    assert list(joined.columns[-6:]) == ["fit s", "ms/user", *leaderboard.PROVENANCE]
    unmatched = board.assign(model=["A", "B", "C", "D", "E"])
    assert costs.join(unmatched, COSTS).equals(unmatched)

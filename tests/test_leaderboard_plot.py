"""The leaderboard figure (`leaderboard.plot`): a grid a class can read, bars best first, deterministic bytes."""
from __future__ import annotations

import struct
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest

from recsys_course.course import leaderboard, runner


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # the IHDR chunk: width, height


def tiny_board(n_rating: int = 3) -> pd.DataFrame:
    rows = [{"track": "ranking", "model": "Popularity", "notebook": "01_evaluation", "ndcg@10": 0.05},
            {"track": "ranking", "model": "EASE", "notebook": "04_mf", "ndcg@10": 0.09},
            {"track": "ranking", "model": "Weak", "notebook": "04_mf", "ndcg@10": 0.01}]
    rows += [{"track": "rating", "model": name, "notebook": "01_evaluation", "rmse": rmse}
             for name, rmse in [("GlobalMean", 1.07), ("BiasBaseline", 0.8947), ("Hybrid", 0.8504)]]
    rows += [{"track": "rating", "model": f"M{i}", "notebook": "02_cf", "rmse": 0.9 + i / 1000}
             for i in range(n_rating - 3)]
    return pd.DataFrame(rows)


def test_panel_is_best_first_with_gain_over_the_baseline_for_rmse():
    board = tiny_board()
    data = leaderboard._panel_data("rating", board[board["track"] == "rating"])
    assert data["names"] == ["Hybrid", "BiasBaseline", "GlobalMean"]
    assert data["names"][data["ref_index"]] == "BiasBaseline"
    np.testing.assert_allclose(data["bars"], [0.8947 - 0.8504, 0.0, 0.8947 - 1.07])  # RMSE reduction, not RMSE
    assert data["kinds"] == ["better", "baseline", "baseline"]
    assert "gain over BiasBaseline" in data["title"]

    ranking = leaderboard._panel_data("ranking", board[board["track"] == "ranking"])
    assert ranking["names"] == ["EASE", "Popularity", "Weak"]
    np.testing.assert_allclose(ranking["bars"], [0.09, 0.05, 0.01])  # NDCG itself, from 0
    assert ranking["ref_x"] == 0.05 and ranking["kinds"] == ["better", "baseline", "worse"]


def test_panel_keeps_a_model_two_notebooks_recorded_and_falls_back_without_a_baseline():
    board = pd.DataFrame([{"track": "rating", "model": "BiasBaseline", "notebook": "01_evaluation", "rmse": 0.89},
                          {"track": "rating", "model": "BiasBaseline", "notebook": "07_bert", "rmse": 0.89},
                          {"track": "rating", "model": "A", "notebook": "02_cf", "rmse": 0.95}])
    data = leaderboard._panel_data("rating", board)
    assert data["names"] == ["BiasBaseline (01)", "BiasBaseline (07)", "A"]
    assert data["kinds"][-1] == "worse"

    other = pd.DataFrame([{"track": "zeta", "model": "X", "notebook": "n", "mae": 0.7},
                          {"track": "zeta", "model": "Y", "notebook": "n", "mae": 0.6}])
    data = leaderboard._panel_data("zeta", other)
    assert data["metric"] == "mae" and data["names"] == ["Y", "X"]
    np.testing.assert_allclose(data["bars"], [0.1, 0.0])  # gain over the worst entry
    assert "worst entry" in data["xlabel"]
    assert leaderboard._panel_data("zeta", other.drop(columns="mae")) is None


def test_plot_tiny_board_is_a_grid_deterministic_and_grows_with_rows(tmp_path):
    small = leaderboard.plot(tiny_board(3), tmp_path / "small.png")
    again = leaderboard.plot(tiny_board(3), tmp_path / "again.png")
    big = leaderboard.plot(tiny_board(15), tmp_path / "big.png")
    assert small.read_bytes() == again.read_bytes()
    (w_small, h_small), (w_big, h_big) = png_size(small), png_size(big)
    assert w_small == w_big <= 2400  # two tracks: two columns side by side
    assert h_big > h_small + 12 * 40  # about 50 px per bar at 120 dpi
    assert b"matplotlib" not in small.read_bytes()  # no version stamp


def test_plot_one_track_and_no_entries(tmp_path):
    board = tiny_board()
    one = leaderboard.plot(board[board["track"] == "rating"], tmp_path / "one.png")
    width, height = png_size(one)
    assert 600 <= width <= 1200 and height >= 300
    for name, empty in [("empty", pd.DataFrame(columns=["track", "model", "notebook"])), ("bare", pd.DataFrame())]:
        out = leaderboard.plot(empty, tmp_path / f"{name}.png")
        assert out.stat().st_size > 1000 and png_size(out)[0] <= 1200


def test_plot_leaves_no_global_matplotlib_state(tmp_path):
    had_pyplot = "matplotlib.pyplot" in sys.modules
    # the raw dict: reading rcParams["backend"] the ordinary way would itself import pyplot to resolve it
    rc = dict(dict.items(matplotlib.rcParams))
    leaderboard.plot(tiny_board(), tmp_path / "board.png")
    assert dict(dict.items(matplotlib.rcParams)) == rc  # the backend too: no matplotlib.use
    if not had_pyplot:
        assert "matplotlib.pyplot" not in sys.modules
    else:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


def test_plot_real_board(tmp_path):
    """The committed (executed) notebooks' leaderboard: about 5 tracks × up to 20 models."""
    board = leaderboard.collect(runner.discover())
    if board.empty:
        pytest.skip("the committed notebooks carry no leaderboard records")
    first = leaderboard.plot(board, tmp_path / "real.png")
    second = leaderboard.plot(board, tmp_path / "real2.png")
    assert first.read_bytes() == second.read_bytes()
    width, height = png_size(first)
    longest = board["track"].value_counts().max()
    assert 1200 <= width <= 2400
    assert longest * 40 <= height <= 4000

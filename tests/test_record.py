"""recsys_course.record: publishing numbers from notebooks and reading them back."""
from __future__ import annotations

import math

import IPython
import IPython.display
import nbformat
import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from recsys_course.record import LEADERBOARD_PREFIX, MIME, RECORDS, read_records, record, record_evaluation


@pytest.fixture(autouse=True)
def clean_records():
    saved = dict(RECORDS)
    RECORDS.clear()
    yield
    RECORDS.clear()
    RECORDS.update(saved)


# --------------------------------------------------------------------------------------------
# record
# --------------------------------------------------------------------------------------------
def test_record_returns_value_and_fills_records():
    assert record("data/n_ratings", 100_836) == 100_836
    assert record("ranking/ndcg@10", 0.25) == 0.25
    assert RECORDS == {"data/n_ratings": 100_836, "ranking/ndcg@10": 0.25}
    assert list(RECORDS) == ["data/n_ratings", "ranking/ndcg@10"]  # in order
    record("data/n_ratings", 5)  # a later record of the same name wins
    assert RECORDS["data/n_ratings"] == 5


def test_record_converts_numpy_and_bool():
    value = record("a", np.float32(0.5))
    assert value == 0.5 and type(value) is float
    value = record("b", np.int64(7))
    assert value == 7 and type(value) is int
    assert record("c", True) == 1 and type(RECORDS["c"]) is int
    assert record("d", np.bool_(False)) == 0
    assert all(type(v) in (int, float) for v in RECORDS.values())


@pytest.mark.parametrize("name", ["", "has space", "tab\t", "ümlaut", "semi;colon", None, 3, "a\nb"])
def test_record_bad_names(name):
    with pytest.raises(ValueError, match="record name must be") as err:
        record(name, 1.0)
    assert repr(name) in str(err.value)
    assert RECORDS == {}


@pytest.mark.parametrize("name", ["x", "data/n_ratings", "ranking/ndcg@10", "a.b-c+d_e", "leaderboard/r/M/rmse"])
def test_record_good_names(name):
    assert record(name, 1) == 1
    assert name in RECORDS


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf")])
def test_record_non_finite(value):
    with pytest.raises(ValueError, match="not finite"):
        record("metric", value)
    assert "metric" not in RECORDS


@pytest.mark.parametrize("value", ["0.5", None, [1.0], pd.Series([1.0]), {"v": 1}, 1 + 2j])
def test_record_non_numbers(value):
    with pytest.raises(TypeError, match="takes a number") as err:
        record("metric", value)
    assert type(value).__name__ in str(err.value)
    assert RECORDS == {}


def test_record_displays_in_ipython(monkeypatch):
    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    assert record("data/n_users", np.int64(610)) == 610
    assert shown == [({MIME: {"name": "data/n_users", "value": 610}}, True)]


def test_record_silent_outside_ipython(monkeypatch):
    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append(a))
    record("x", 1.0)
    assert shown == [] and RECORDS == {"x": 1.0}


# --------------------------------------------------------------------------------------------
# read_records
# --------------------------------------------------------------------------------------------
def _record_output(name, value):
    return new_output("display_data", data={MIME: {"name": name, "value": value}})


def test_read_records_from_a_notebook(tmp_path):
    nb = new_notebook(cells=[
        new_markdown_cell("# a lesson"),
        new_code_cell("record('data/n_ratings', 100836)", outputs=[
            new_output("stream", name="stdout", text="loading...\n"),
            _record_output("data/n_ratings", 100836),
        ]),
        new_code_cell("x = 1"),
        new_code_cell("evaluate(...)", outputs=[
            new_output("execute_result", data={"text/plain": "0.3"}, execution_count=3),
            _record_output("ranking/ndcg@10", 0.31),
            _record_output("ranking/ndcg@10", 0.32),  # later records of a name win
            new_output("display_data", data={"text/plain": "<Figure>", "image/png": "iVBORw0KGgo="}),
        ]),
        new_code_cell("record('rating/rmse', 0.9)", outputs=[_record_output("rating/rmse", 0.9)]),
    ])
    nbformat.validate(nb)
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, path)
    assert read_records(path) == {"data/n_ratings": 100836, "ranking/ndcg@10": 0.32, "rating/rmse": 0.9}
    assert read_records(str(path)) == read_records(path)


def test_read_records_of_a_notebook_without_records(tmp_path):
    path = tmp_path / "empty.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")]), path)
    assert read_records(path) == {}


def test_record_round_trip_through_a_notebook(tmp_path, monkeypatch):
    """What record displays is exactly what read_records reads back."""
    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    record("data/n_movies", 9742)
    record("rating/mae", np.float64(0.68))
    outputs = [new_output("display_data", data=obj) for obj in shown]
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("...", outputs=outputs)]), path)
    assert read_records(path) == {"data/n_movies": 9742, "rating/mae": 0.68}


# --------------------------------------------------------------------------------------------
# record_evaluation
# --------------------------------------------------------------------------------------------
def test_record_evaluation_naming_scheme():
    row = pd.Series({"rmse": 0.87, "mae": 0.67, "ndcg@10": 0.21}, name="BiasBaseline")
    assert record_evaluation(row, track="rating") is None
    assert LEADERBOARD_PREFIX == "leaderboard"
    assert RECORDS == {
        "leaderboard/rating/BiasBaseline/rmse": 0.87,
        "leaderboard/rating/BiasBaseline/mae": 0.67,
        "leaderboard/rating/BiasBaseline/ndcg@10": 0.21,
    }
    assert all(type(v) is float for v in RECORDS.values())


def test_record_evaluation_model_override_and_errors():
    row = pd.Series({"hit@10": 0.5}, name="Popularity")
    record_evaluation(row, track="ranking", model="MostPopular")
    assert RECORDS == {"leaderboard/ranking/MostPopular/hit@10": 0.5}
    with pytest.raises(ValueError, match="without '/'"):
        record_evaluation(row, track="ranking", model="a/b")
    with pytest.raises(ValueError, match="non-empty"):
        record_evaluation(pd.Series({"hit@10": 0.5}), track="ranking")  # no name, no model
    with pytest.raises(ValueError, match="not finite"):
        record_evaluation(pd.Series({"rmse": np.nan}, name="M"), track="rating")


def test_record_evaluation_of_a_real_row(ranking_split_ml):
    from recsys_course.evaluate import evaluate
    from recsys_course.models import BiasBaseline

    train, test = ranking_split_ml
    row = evaluate(BiasBaseline().fit(train), train, test)
    record_evaluation(row, track="ranking")
    assert set(RECORDS) == {f"leaderboard/ranking/BiasBaseline/{m}"
                            for m in ("rmse", "mae", "precision@10", "recall@10", "ndcg@10", "map@10", "hit@10",
                                      "mrr@10", "coverage@10")}
    assert RECORDS["leaderboard/ranking/BiasBaseline/ndcg@10"] == pytest.approx(row["ndcg@10"])


def test_package_exports():
    import sys

    import recsys_course

    module = sys.modules["recsys_course.record"]
    # the package attribute ``record`` is the function (it shadows the submodule of the same name)
    assert recsys_course.record is module.record is record
    assert recsys_course.record_evaluation is module.record_evaluation
    assert module.RECORDS is RECORDS

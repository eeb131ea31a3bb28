"""``recsys-course gpu-check`` (recsys_course.course.gpu_check), tested without a GPU.

The comparison itself is device-agnostic, so it is tested CPU against CPU on a few users of ml-latest-small with
the two cheapest models: on one torch thread the same seed must give the same numbers, bit for bit. The verdicts
(tolerance, loss not decreasing, a failed fit) are tested on rows built by hand; the command line on its
no-CUDA path, its argument errors and its CPU self-check.
"""
from __future__ import annotations

import math
import os

import pytest

from recsys_course.course import gpu_check
from recsys_course.course.gpu_check import TOLERANCE, Row, Run, compare, load_data, main, report, tolerances

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHEAP = ["BiasedMF", "BPR"]


@pytest.fixture(scope="module")
def small(ml):
    """40 seeded-random users of ml-latest-small and the films they rated."""
    return load_data(40, seed=0, ratings=ml.ratings, movies=ml.movies, tags=ml.tags)


@pytest.fixture
def no_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# ---- which models ---------------------------------------------------------------------------
def test_the_default_set_is_every_torch_model_text_ones_included():
    import recsys_course.models as models

    names = gpu_check.resolve_models(None)
    assert names == list(gpu_check.torch_models())
    assert {"BiasedMF", "BPR", "SASRec", "BERT4Rec", "BERTBasedCF", "BERTOffsetCF"} <= set(names)
    assert all(issubclass(getattr(models, n), models.TorchRecommender) for n in names)
    assert "TorchRecommender" not in names and "EASE" not in names  # the base class; a NumPy model
    text = {n for n in names if gpu_check.is_text_model(getattr(models, n))}
    assert text == {"BERTBasedCF", "BERTOffsetCF"}


def test_model_names_are_case_insensitive_in_the_order_given():
    assert gpu_check.resolve_models(["bpr", "BiasedMF", "BPR"]) == ["BPR", "BiasedMF"]


def test_every_torch_model_can_be_built_for_the_check(small):
    for name, cls in gpu_check.torch_models().items():
        model = gpu_check.build(cls, small, epochs=2, device="cpu", seed=3)
        params = model.get_params()
        assert (params["n_epochs"], params["val_size"], params["seed"], params["device"], params["verbose"]) == \
            (2, None, 3, "cpu", False), name


# ---- the comparison, CPU against CPU ---------------------------------------------------------
@pytest.fixture(scope="module")
def cpu_rows(small):
    return compare(CHEAP, ("cpu", "cpu"), epochs=2, data=small, warmup=True)


def test_same_seed_same_numbers_on_the_same_device(cpu_rows):
    assert [r.model for r in cpu_rows] == CHEAP
    for row in cpu_rows:
        first, second = row.runs
        assert first.error is None and second.error is None
        assert first.losses == second.losses and len(first.losses) == 2
        assert first.metric == second.metric and row.delta == 0.0
        assert row.metric == ("rmse" if row.model == "BiasedMF" else "ndcg@10")
        assert row.tolerance == tolerances(40)[row.metric]


def test_losses_decrease_and_the_verdict_passes(cpu_rows):
    for row in cpu_rows:
        for run in row.runs:
            assert all(math.isfinite(x) for x in run.losses)
            assert run.loss_last < run.loss_first
            assert math.isfinite(run.metric)
        assert row.ok, row.problems
    text, code = report(cpu_rows)
    assert code == 0 and "all 2 model(s)" in text and "FAIL" not in text


def test_the_speed_up_of_a_device_against_itself_is_near_one(cpu_rows):
    for row in cpu_rows:
        assert all(run.seconds > 0 for run in row.runs)
        assert 0.2 < row.speedup < 5, (row.model, [run.seconds for run in row.runs])


def test_the_table_names_both_runs(cpu_rows):
    text = gpu_check.table(cpu_rows)
    assert "cpu#1" in text and "cpu#2" in text and "speed-up" in text
    assert all(r.model in text for r in cpu_rows)


def test_a_model_with_a_floor_trains_at_least_that_many_epochs(small, monkeypatch):
    monkeypatch.setattr(gpu_check, "MIN_EPOCHS", {"BPR": 3})
    (row,) = compare(["BPR"], ("cpu", "cpu"), epochs=2, data=small, warmup=False)
    assert row.epochs == 3 and [len(run.losses) for run in row.runs] == [3, 3]


def test_the_ndcg_tolerance_widens_for_fewer_users_the_rmse_one_does_not():
    assert tolerances() == tolerances(610) == tolerances(5000) == TOLERANCE
    assert tolerances(610 // 4)["ndcg@10"] == pytest.approx(2 * TOLERANCE["ndcg@10"], abs=0.002)
    assert tolerances(100)["rmse"] == TOLERANCE["rmse"]


def test_both_runs_train_in_float32_whatever_the_environment_says(small, monkeypatch):
    monkeypatch.setenv("RECSYS_COURSE_PRECISION", "bf16")  # mixed precision: CUDA only, an error on the CPU
    (row,) = compare(["BPR"], ("cpu", "cpu"), epochs=2, data=small, warmup=False)
    assert row.ok, row.problems
    assert os.environ["RECSYS_COURSE_PRECISION"] == "bf16"


def test_compare_needs_two_epochs_and_two_devices(small):
    with pytest.raises(ValueError, match="at least 2"):
        compare(["BPR"], ("cpu", "cpu"), epochs=1, data=small)
    with pytest.raises(ValueError, match="two device"):
        compare(["BPR"], ("cpu",), data=small)


# ---- the verdicts, on rows built by hand ---------------------------------------------------------
def _row(metrics=(0.900, 0.905), losses=((0.8, 0.7, 0.6), (0.8, 0.7, 0.6)), errors=(None, None), metric="rmse"):
    runs = tuple(Run(device, list(loss), value, seconds, error)
                 for device, loss, value, seconds, error in zip(("cuda", "cpu"), losses, metrics, (1.0, 8.0), errors))
    return Row("BiasedMF", metric, len(losses[0]), runs, TOLERANCE[metric])


def test_within_tolerance_passes():
    row = _row()
    assert row.ok and row.delta == pytest.approx(-0.005) and row.speedup == pytest.approx(8.0)
    assert row.labels == ("cuda", "cpu")


def test_outside_tolerance_fails_and_says_why():
    row = _row(metrics=(0.900, 0.915))
    assert not row.ok
    assert row.problems == ["rmse differs by 0.0150 between cuda (0.9000) and cpu (0.9150), more than the tolerance "
                            f"{TOLERANCE['rmse']}"]
    text, code = report([_row(), row])
    assert code == 1
    assert "FAIL BiasedMF: rmse differs by 0.0150" in text and "1 of 2 model(s) failed" in text


def test_a_loss_that_does_not_decrease_fails():
    row = _row(losses=((0.8, 0.7, 0.6), (0.6, 0.7, 0.8)))
    assert not row.ok
    (problem,) = row.problems
    assert problem.startswith("train loss did not decrease on cpu: [0.6, 0.7, 0.8]") and "--epochs" in problem


def test_a_non_finite_loss_or_metric_fails():
    assert "non-finite train loss on cuda" in _row(losses=((0.8, math.nan, 0.6), (0.8, 0.7, 0.6))).problems[0]
    assert "the metric is nan on cuda" in _row(metrics=(math.nan, 0.9)).problems[0]


def test_a_fit_that_raises_fails_with_its_message():
    row = _row(losses=((), (0.8, 0.7, 0.6)), metrics=(math.nan, 0.9),
               errors=("FloatingPointError: the loss became nan in epoch 2", None))
    assert row.problems == ["fit on cuda failed: FloatingPointError: the loss became nan in epoch 2"]
    text, code = report([row])
    assert code == 1 and "FAIL BiasedMF: fit on cuda failed" in text


# ---- the command line ----------------------------------------------------------------------
def test_no_cuda_says_so_and_exits_0(no_cuda, capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "no CUDA" in out and "Colab" in out and len(out.strip().splitlines()) == 1
    assert main(["--models", "BPR", "--device", "cuda:0"]) == 0
    assert "no CUDA" in capsys.readouterr().out


def test_an_unknown_model_exits_2_listing_the_valid_names(no_cuda, capsys):
    assert main(["--models", "BPR", "NoSuchModel"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'NoSuchModel'" in err
    assert all(name in err for name in gpu_check.torch_models())


@pytest.mark.parametrize("argv, message", [(["--epochs", "1"], "at least 2"), (["--users", "1"], "at least 2"),
                                           (["--rmse-tol", "-1"], ">= 0"), (["--device", "tpu!"], "device"),
                                           (["--threads", "0"], "at least 1")])
def test_bad_arguments_exit_2(argv, message, no_cuda, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cpu_against_itself_from_the_command_line(capsys):
    assert main(["--device", "cpu", "--models", "bpr", "--users", "30", "--epochs", "2", "--no-warmup"]) == 0
    out = capsys.readouterr().out
    assert "cpu vs cpu" in out and "BPR" in out and "all 1 model(s)" in out

"""recsys_course.device (device choice, seeding) and recsys_course.profiles (smoke / lesson / full)."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from recsys_course.config import ENV_DATASET, ENV_DEVICE
from recsys_course.data import DataError
from recsys_course.device import DEFAULT_SEED, describe_devices, get_device, seed_everything, set_threads
from recsys_course.profiles import DATASETS, PROFILES, check_profile, choose, dataset_for

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
cpu_only = pytest.mark.skipif(HAS_CUDA or HAS_MPS, reason="this test describes a CPU-only machine")


@pytest.fixture(autouse=True)
def no_device_env(monkeypatch):
    monkeypatch.delenv(ENV_DEVICE, raising=False)


# --------------------------------------------------------------------------------------------
# get_device
# --------------------------------------------------------------------------------------------
@cpu_only
def test_default_is_cpu_here():
    device = get_device()
    assert isinstance(device, torch.device)
    assert device.type == "cpu"
    assert get_device("auto").type == "cpu"
    assert describe_devices() == "available: CPU"


def test_explicit_cpu():
    assert get_device("cpu") == torch.device("cpu")


def test_env_var_cpu(monkeypatch):
    monkeypatch.setenv(ENV_DEVICE, "cpu")
    assert get_device() == torch.device("cpu")


@cpu_only
def test_env_var_auto_and_empty(monkeypatch):
    for value in ("auto", ""):
        monkeypatch.setenv(ENV_DEVICE, value)
        assert get_device().type == "cpu"


def test_argument_beats_env_var(monkeypatch):
    monkeypatch.setenv(ENV_DEVICE, "cuda:7")
    assert get_device("cpu").type == "cpu"


@pytest.mark.skipif(HAS_CUDA, reason="CUDA is available here")
@pytest.mark.parametrize("wanted", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_not_available_is_an_error(wanted):
    with pytest.raises(RuntimeError) as err:
        get_device(wanted)
    msg = str(err.value)
    assert repr(wanted) in msg
    assert "CUDA is not available" in msg
    assert "available: CPU" in msg
    assert "'cpu'" in msg  # what to use instead


@pytest.mark.skipif(HAS_CUDA, reason="CUDA is available here")
def test_cuda_from_env_var_is_an_error(monkeypatch):
    monkeypatch.setenv(ENV_DEVICE, "cuda")
    with pytest.raises(RuntimeError, match=f"CUDA is not available.*{ENV_DEVICE}|{ENV_DEVICE}.*CUDA is not available"):
        get_device()


@pytest.mark.skipif(HAS_MPS, reason="MPS is available here")
def test_mps_not_available_is_an_error():
    with pytest.raises(RuntimeError, match="MPS is not available"):
        get_device("mps")


def test_unknown_device_name():
    with pytest.raises(ValueError, match="unknown device 'banana'"):
        get_device("banana")


# --------------------------------------------------------------------------------------------
# seed_everything
# --------------------------------------------------------------------------------------------
@pytest.fixture
def restore_rngs(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)  # restored afterwards
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    deterministic, benchmark = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    yield
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = deterministic, benchmark


def _draw():
    return random.random(), np.random.rand(5), torch.rand(5)


def test_seed_everything_reproducible(restore_rngs):
    assert seed_everything(123) == 123
    a = _draw()
    seed_everything(123)
    b = _draw()
    assert a[0] == b[0]
    assert np.array_equal(a[1], b[1])
    assert torch.equal(a[2], b[2])
    seed_everything(124)
    c = _draw()
    assert not np.array_equal(a[1], c[1])
    assert not torch.equal(a[2], c[2])
    assert os.environ["PYTHONHASHSEED"] == "124"
    assert torch.backends.cudnn.deterministic is True and torch.backends.cudnn.benchmark is False


def test_seed_everything_default_and_numpy_int(restore_rngs):
    assert seed_everything() == DEFAULT_SEED == 42
    first = torch.rand(3)
    value = seed_everything(np.int64(42))
    assert value == 42 and type(value) is int
    assert torch.equal(torch.rand(3), first)


@pytest.mark.parametrize("seed", [-1, -42, 1.5, "42", True, None])
def test_seed_everything_rejects_bad_seeds(restore_rngs, seed):
    with pytest.raises(ValueError, match="non-negative integer") as err:
        seed_everything(seed)
    assert repr(seed) in str(err.value)


# --------------------------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------------------------
SIZES = {"n_users": {"smoke": 50, "lesson": 610, "full": 610},
         "epochs": {"smoke": 1, "lesson": 5, "full": 30}}


@pytest.mark.parametrize("profile,users,epochs", [("smoke", 50, 1), ("lesson", 610, 5), ("full", 610, 30)])
def test_choose_picks_per_profile(profile, users, epochs):
    cfg = choose(profile, **SIZES)
    assert cfg.profile == profile
    assert cfg.n_users == users and cfg.epochs == epochs
    assert set(vars(cfg)) == {"profile", "dataset", "n_users", "epochs"}


def test_choose_without_sizes(monkeypatch):
    monkeypatch.delenv(ENV_DATASET, raising=False)
    assert vars(choose("lesson")) == {"profile": "lesson", "dataset": "latest-small"}


def test_the_data_set_is_part_of_the_profile(monkeypatch):
    monkeypatch.delenv(ENV_DATASET, raising=False)
    assert {p: choose(p).dataset for p in PROFILES} == {"smoke": "latest-small", "lesson": "latest-small",
                                                       "full": "1m"}
    assert DATASETS == {"smoke": "latest-small", "lesson": "latest-small", "full": "1m"}
    monkeypatch.setenv(ENV_DATASET, "Synthetic-1M")  # the runner's --dataset
    assert choose("full").dataset == "synthetic-1m" and dataset_for("lesson") == "synthetic-1m"
    monkeypatch.setenv(ENV_DATASET, "ml-2m")
    with pytest.raises(DataError, match=r"RECSYS_COURSE_DATASET='ml-2m' is not a data set.*synthetic-1m.*\(1m\)"):
        choose("full")


def test_set_threads_one_for_small_models_every_core_in_full():
    from threadpoolctl import threadpool_info, threadpool_limits

    before, blas = torch.get_num_threads(), threadpool_info()
    try:
        with threadpool_limits(None):  # restores BLAS' limits when the test ends
            torch.set_num_threads(2)
            assert set_threads("full", "cpu") == 2 and torch.get_num_threads() == 2  # full: left alone
            assert set_threads("lesson", "cpu") == 1 and torch.get_num_threads() == 1
            assert all(pool["num_threads"] == 1 for pool in threadpool_info())
            with pytest.raises(ValueError, match="unknown profile"):
                set_threads("quick")
    finally:
        torch.set_num_threads(before)
    assert len(threadpool_info()) == len(blas)


def test_profiles_are_the_three():
    assert PROFILES == ("smoke", "lesson", "full")
    for p in PROFILES:
        assert check_profile(p) == p


@pytest.mark.parametrize("profile", ["Lesson", "fast", "", None])
def test_choose_rejects_unknown_profile(profile):
    with pytest.raises(ValueError, match="unknown profile") as err:
        choose(profile, **SIZES)
    for p in PROFILES:
        assert p in str(err.value)


def test_choose_rejects_missing_profile_keys():
    with pytest.raises(ValueError) as err:
        choose("lesson", n_users={"smoke": 50, "lesson": 610}, epochs={"lesson": 5})
    msg = str(err.value)
    assert "'n_users'" in msg and "['full']" in msg
    # even a size whose value for the current profile exists must name all three profiles
    with pytest.raises(ValueError, match=r"'epochs' has no value for profile\(s\) \['smoke', 'full'\]"):
        choose("lesson", epochs={"lesson": 5})

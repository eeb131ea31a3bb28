"""Shared fixtures of the package tests.

* ``ml`` — the vendored MovieLens latest-small, loaded (and sha256-verified) once per session.
  Treat it as read-only: copy a frame before changing it.
* ``tmp_cache`` — points ``$RECSYS_COURSE_CACHE`` at a fresh temporary folder, so no test writes into the
  repository's data/cache.
* ``rating_split_ml`` / ``ranking_split_ml`` — the two leaderboard splits of ``ml``, computed once.
* ``one_torch_thread`` — torch on one thread for a module's tests (``pytestmark =
  pytest.mark.usefixtures("one_torch_thread")``): the test models are small, one thread is as fast, and it
  is not slowed down by the other pytest worker on the second core.
"""
from __future__ import annotations

import os

import pytest

# The tests never touch the network: no Hugging Face hub, no dataset downloads (the download code is tested
# against a server on 127.0.0.1). Kernels started by papermill and nbval inherit these.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from recsys_course import config
from recsys_course.data import load_movielens


@pytest.fixture(scope="session")
def ml():
    return load_movielens()


@pytest.fixture(scope="session")
def ratings(ml):
    return ml.ratings


@pytest.fixture(scope="session")
def rating_split_ml(ml):
    from recsys_course.split import rating_split

    return rating_split(ml.ratings)


@pytest.fixture(scope="session")
def ranking_split_ml(ml):
    from recsys_course.split import ranking_split

    return ranking_split(ml.ratings)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(config.ENV_CACHE_DIR, str(cache))
    return cache


@pytest.fixture(scope="module")
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""pytest hooks for the notebooks' own tests: nbval collects ``notebooks/*.ipynb`` (``make test`` passes
``--nbval-lax``) and runs the cells marked ``# NBVAL_CHECK_OUTPUT`` against their committed outputs.

Notebook 15 runs Apache Spark, which needs Java 17. Where no usable Java is found its nbval items are skipped with
the reason — how to install Java 17 — which ``pytest -ra`` prints: a skip, never a silent pass.

Before any notebook runs, the text-embedding cache (data/cache) gets the film texts of the vendored MovieLens
(:func:`recsys_course.text.item_texts`, what notebooks 07, 10, 11 and 13 encode) — once, in the main process,
before pytest-xdist starts its workers. Otherwise each notebook that finds the cache cold encodes the 9,742 texts
itself, in a kernel that runs torch on one thread, often at the same time as another: on a fresh clone (CI) that
cost several minutes per notebook. Warm, the check costs a few seconds.
"""
from __future__ import annotations

import sys
import time

import pytest

#: Notebooks (by file-name prefix) that cannot run without Java.
NEEDS_JAVA = ("15_",)


def pytest_collection_modifyitems(config, items):
    java_items = [item for item in items
                  if item.path.suffix == ".ipynb" and item.path.name.startswith(NEEDS_JAVA)]
    if not java_items:
        return
    from recsys_course.spark import java_missing_reason

    reason = java_missing_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"notebook 15 needs Java for Spark: {reason}")
    for item in java_items:
        item.add_marker(skip)


def _runs_notebooks(config) -> bool:
    """Whether this session's arguments name the notebooks folder or a notebook in it."""
    here = config.rootpath / "notebooks"
    for arg in config.args:
        path = (config.invocation_params.dir / str(arg).split("::")[0]).resolve()
        if path == here or here in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    config = session.config
    if hasattr(config, "workerinput") or not _runs_notebooks(config):  # an xdist worker: the main process did it
        return
    try:
        from recsys_course.data import load_movielens
        from recsys_course.text import embed_texts, item_texts

        start = time.perf_counter()
        ml = load_movielens()
        embed_texts(item_texts(ml.movies, ml.tags))
        print(f"\nnotebooks/conftest.py: text-embedding cache warm for {len(ml.movies):,} film texts "
              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    except Exception as exc:  # the notebooks then encode for themselves, and say what is wrong if they cannot
        print(f"\nnotebooks/conftest.py: could not warm the text-embedding cache ({type(exc).__name__}: {exc}); "
              "each notebook encodes its texts itself", file=sys.stderr)

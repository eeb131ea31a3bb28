"""pytest hooks for the notebooks' own tests: nbval collects ``notebooks/*.ipynb`` (``make test`` passes
``--nbval-lax``) and runs the cells marked ``# NBVAL_CHECK_OUTPUT`` against their committed outputs.

Notebook 15 runs Apache Spark, which needs Java 17. Where no usable Java is found its nbval items are skipped with
the reason — how to install Java 17 — which ``pytest -ra`` prints: a skip, never a silent pass.
"""
from __future__ import annotations

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

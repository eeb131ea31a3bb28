"""Profiles: one switch that scales every notebook.

* ``smoke`` — CI: seconds, tiny sizes, only checks that everything runs and numbers are stable.
* ``lesson`` — the default: a laptop CPU, at most ~2 minutes per notebook.
* ``full`` — a Colab GPU or a lab machine: MovieLens 1M (downloaded on first use) and the sizes a serious
  experiment needs.

The data set is part of the profile (:data:`DATASETS`); ``$RECSYS_COURSE_DATASET`` (set by
``recsys-course run --dataset NAME``) overrides it, e.g. ``synthetic-1m`` runs the ``full`` code path at ml-1m's
size on a machine that cannot download ml-1m.

A notebook's ``parameters`` cell holds only ``profile = "lesson"``; the next cell calls
:func:`choose` with that notebook's sizes per profile, and loads ``cfg.dataset``.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

from .config import ENV_DATASET

PROFILES = ("smoke", "lesson", "full")
#: The data set of each profile: smoke and lesson run on the vendored ml-latest-small (610 users), full on
#: MovieLens 1M (6,040 users, 3,706 films, 1,000,209 ratings).
DATASETS = {"smoke": "latest-small", "lesson": "latest-small", "full": "1m"}


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {list(PROFILES)} (smoke = CI, lesson = laptop "
                         "CPU, full = GPU)")
    return profile


def dataset_for(profile: str) -> str:
    """The data set ``profile`` runs on: ``$RECSYS_COURSE_DATASET`` if set, else :data:`DATASETS`."""
    check_profile(profile)
    chosen = os.environ.get(ENV_DATASET, "").strip() or DATASETS[profile]
    from .data import DataError, check_dataset

    try:
        return check_dataset(chosen)
    except DataError as exc:
        raise DataError(f"${ENV_DATASET}={chosen!r} is not a data set: {exc}; or unset it to use the profile's "
                        f"own ({DATASETS[profile]})") from None


def choose(profile: str, **sizes: dict) -> SimpleNamespace:
    """Pick this profile's sizes: ``choose(profile, n_users={"smoke": 50, "lesson": 610, "full": 610})``.

    Every size must name all three profiles, so a notebook can never run with a size it forgot to set.
    Returns a namespace (``cfg.n_users``) that also carries ``cfg.profile`` and ``cfg.dataset`` (the data
    set to load with :func:`recsys_course.data.load_dataset`, see :func:`dataset_for`).
    """
    check_profile(profile)
    picked = {}
    for key, per_profile in sizes.items():
        missing = [p for p in PROFILES if p not in per_profile]
        if missing:
            raise ValueError(f"size {key!r} has no value for profile(s) {missing}")
        picked[key] = per_profile[profile]
    return SimpleNamespace(profile=profile, dataset=dataset_for(profile), **picked)

"""Profiles: one switch that scales every notebook.

* ``smoke`` — CI: seconds, tiny sizes, only checks that everything runs and numbers are stable.
* ``lesson`` — the default: a laptop CPU, at most ~2 minutes per notebook.
* ``full`` — a Colab GPU or a lab machine: the sizes a serious experiment needs.

A notebook's ``parameters`` cell holds only ``profile = "lesson"``; the next cell calls
:func:`choose` with that notebook's sizes per profile.
"""
from __future__ import annotations

from types import SimpleNamespace

PROFILES = ("smoke", "lesson", "full")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {list(PROFILES)} (smoke = CI, lesson = laptop "
                         "CPU, full = GPU)")
    return profile


def choose(profile: str, **sizes: dict) -> SimpleNamespace:
    """Pick this profile's sizes: ``choose(profile, n_users={"smoke": 50, "lesson": 610, "full": 610})``.

    Every size must name all three profiles, so a notebook can never run with a size it forgot to set.
    Returns a namespace (``cfg.n_users``) that also carries ``cfg.profile``.
    """
    check_profile(profile)
    picked = {}
    for key, per_profile in sizes.items():
        missing = [p for p in PROFILES if p not in per_profile]
        if missing:
            raise ValueError(f"size {key!r} has no value for profile(s) {missing}")
        picked[key] = per_profile[profile]
    return SimpleNamespace(profile=profile, **picked)

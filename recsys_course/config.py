"""One place for the names every module shares: column names, paths, environment variables.

Column names are MovieLens' own, so a frame read from ``ratings.csv`` needs no renaming.
"""
from __future__ import annotations

import os
from pathlib import Path

# --- columns ---------------------------------------------------------------------------------
USER = "userId"
ITEM = "movieId"
GROUP = "groupId"  # recsys_course.group: one row per group member (MovieLens has no groups: they are built)
RATING = "rating"
TIME = "timestamp"
SCORE = "score"
RANK = "rank"
TITLE = "title"
YEAR = "year"
GENRES = "genres"
TAG = "tag"

RATING_COLUMNS = (USER, ITEM, RATING, TIME)
RECOMMENDATION_COLUMNS = (USER, ITEM, SCORE, RANK)

#: A test rating at or above this counts as "relevant" for the ranking metrics.
RELEVANCE_THRESHOLD = 4.0

# --- environment variables -------------------------------------------------------------------
ENV_DATA_DIR = "RECSYS_COURSE_DATA"        # folder holding ml-latest-small/ (default: the repo's data/)
ENV_CACHE_DIR = "RECSYS_COURSE_CACHE"      # downloads and embedding cache (default: data/cache)
ENV_DEVICE = "RECSYS_COURSE_DEVICE"        # cpu | cuda | cuda:1 | mps
ENV_TEXT_MODEL = "RECSYS_COURSE_TEXT_MODEL"  # a Hugging Face id or a local folder
ENV_PROFILE = "RECSYS_COURSE_PROFILE"      # informational: the profile the runner asked for
ENV_DATASET = "RECSYS_COURSE_DATASET"      # overrides the profile's data set (latest-small, 1m, synthetic-1m, ...)
ENV_PRECISION = "RECSYS_COURSE_PRECISION"  # float32 (default) | bf16 | fp16 | auto: autocast of torch training
ENV_STRICT = "RECSYS_COURSE_STRICT"        # 1: every exercise check raises on a wrong or missing answer (autograders)

# --- paths -----------------------------------------------------------------------------------
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
# Where the course lives on GitHub is written once, in pyproject.toml ([project.urls] Repository), and copied into
# the badges and Colab setup cells by `recsys-course sync-links` (recsys_course.course.links).


def in_a_clone() -> bool:
    """Whether the package runs from a clone of the course (``pyproject.toml`` and ``notebooks/`` beside it),
    rather than from a wheel installed elsewhere."""
    return (REPO_DIR / "pyproject.toml").is_file() and (REPO_DIR / "notebooks").is_dir()


def outside_a_clone_advice() -> str:
    """What to do when the notebooks or the vendored data are missing because the package was installed from a
    wheel: they are not in the wheel (the data's GroupLens terms forbid redistributing it on other terms, and the
    notebooks are meant to be edited), so clone the course."""
    repository = "the course's repository"
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        for entry in metadata("recsys-course").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip() == "Repository":
                repository = url.strip()
    except (ImportError, PackageNotFoundError):
        pass
    return (f"recsys_course is installed at {PACKAGE_DIR}, outside a clone of the course; the notebooks and "
            f"data/ml-latest-small are not part of the installed package. Clone {repository} and run there "
            f"(`make course`), or point ${ENV_DATA_DIR} at a folder holding ml-latest-small/.")


def data_dir() -> Path:
    """The folder with the vendored ``ml-latest-small/`` (``$RECSYS_COURSE_DATA`` overrides)."""
    return Path(os.environ.get(ENV_DATA_DIR) or REPO_DIR / "data").expanduser()


def cache_dir() -> Path:
    """The folder for downloads and caches (``$RECSYS_COURSE_CACHE`` overrides); created on demand."""
    path = Path(os.environ.get(ENV_CACHE_DIR) or REPO_DIR / "data" / "cache").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path

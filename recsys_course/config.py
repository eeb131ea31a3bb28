"""One place for the names every module shares: column names, paths, environment variables.

Column names are MovieLens' own, so a frame read from ``ratings.csv`` needs no renaming.
"""
from __future__ import annotations

import os
from pathlib import Path

# --- columns ---------------------------------------------------------------------------------
USER = "userId"
ITEM = "movieId"
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

# --- paths -----------------------------------------------------------------------------------
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
# Where the course lives on GitHub is written once, in pyproject.toml ([project.urls] Repository), and copied into
# the badges and Colab setup cells by `recsys-course sync-links` (recsys_course.course.links).


def data_dir() -> Path:
    """The folder with the vendored ``ml-latest-small/`` (``$RECSYS_COURSE_DATA`` overrides)."""
    return Path(os.environ.get(ENV_DATA_DIR) or REPO_DIR / "data").expanduser()


def cache_dir() -> Path:
    """The folder for downloads and caches (``$RECSYS_COURSE_CACHE`` overrides); created on demand."""
    path = Path(os.environ.get(ENV_CACHE_DIR) or REPO_DIR / "data" / "cache").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path

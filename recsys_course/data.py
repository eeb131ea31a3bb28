"""MovieLens loading (vendored and on-demand), input validation and the toy data of the worked examples.

``load_movielens("latest-small")`` reads the copy committed in ``data/ml-latest-small`` and checks its
sha256 sums. ``"100k"``, ``"1m"`` and ``"25m"`` may not be redistributed, so they are downloaded on demand
into the cache folder (``$RECSYS_COURSE_CACHE``): checksummed, written atomically, retried, and never
re-downloaded once a verified copy is there.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import (
    ENV_CACHE_DIR,
    ENV_DATA_DIR,
    GENRES,
    ITEM,
    RATING,
    RATING_COLUMNS,
    TAG,
    TIME,
    TITLE,
    USER,
    YEAR,
    cache_dir,
    data_dir,
    in_a_clone,
    outside_a_clone_advice,
)

# sha256 of the vendored files, as published in the release (see data/ml-latest-small/README.txt).
LATEST_SMALL_SHA256 = {
    "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
    "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
    "tags.csv": "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
    "links.csv": "97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
    "README.txt": "63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404",
}


@dataclass(frozen=True)
class RemoteDataset:
    """A MovieLens archive that is downloaded on demand."""

    name: str
    url: str
    md5: str
    folder: str  # the folder inside the zip


REMOTE = {
    "100k": RemoteDataset("100k", "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
                          "0e33842e24a9c977be4e0107933c0723", "ml-100k"),
    "1m": RemoteDataset("1m", "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
                        "c4d9eecfca2ab87c1945afe126590906", "ml-1m"),
    "25m": RemoteDataset("25m", "https://files.grouplens.org/datasets/movielens/ml-25m.zip",
                         "6b51fb2759a8657d3bfcbfc42b592ada", "ml-25m"),
}
DATASETS = ("latest-small", *REMOTE)

ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]


class DataError(ValueError):
    """Bad or missing data; the message says what is wrong and how to fix it."""


@dataclass
class MovieLens:
    """One MovieLens release: ``ratings`` (userId, movieId, rating, timestamp), ``movies`` (movieId, title,
    year, genres as a list) and ``tags`` (userId, movieId, tag, timestamp; empty where a release has none)."""

    name: str
    ratings: pd.DataFrame
    movies: pd.DataFrame
    tags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[USER, ITEM, TAG, TIME]))

    def __repr__(self) -> str:
        r = self.ratings
        return (f"MovieLens({self.name!r}: {len(r):,} ratings, {r[USER].nunique():,} users, "
                f"{len(self.movies):,} movies, {len(self.tags):,} tags)")


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def check_ratings(df: pd.DataFrame, *, name: str = "ratings", require_time: bool = False,
                  allow_empty: bool = False) -> pd.DataFrame:
    """Check that ``df`` is a ratings frame and return it unchanged.

    Raises :class:`DataError` naming the problem and the fix: not a DataFrame, missing columns, NaN values,
    non-numeric ratings, duplicated (user, item) pairs, or an empty frame.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{name} must be a pandas DataFrame with columns {list(RATING_COLUMNS)}, "
                        f"got {type(df).__name__}")
    needed = [USER, ITEM, RATING] + ([TIME] if require_time else [])
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"{name} is missing column(s) {missing}; it has {list(df.columns)}. "
                        f"Rename your columns to MovieLens' names {list(RATING_COLUMNS)} "
                        f"(the constants in recsys_course.config).")
    if len(df) == 0 and not allow_empty:
        raise DataError(f"{name} is empty: there is nothing to fit or evaluate. Check the split or filter "
                        "that produced it.")
    present = [c for c in RATING_COLUMNS if c in df.columns]
    nan = df[present].isna().sum()
    if nan.any():
        bad = {c: int(n) for c, n in nan.items() if n}
        raise DataError(f"{name} has NaN values {bad}; drop or fill them first, e.g. "
                        f"{name}.dropna(subset={list(bad)}).")
    if not pd.api.types.is_numeric_dtype(df[RATING]):
        raise DataError(f"{name}[{RATING!r}] must be numeric, got dtype {df[RATING].dtype}; convert it with "
                        f"pd.to_numeric({name}[{RATING!r}]).")
    dup = df.duplicated([USER, ITEM])
    if dup.any():
        raise DataError(f"{name} has {int(dup.sum())} duplicated (userId, movieId) pairs; keep one rating per "
                        f"pair, e.g. {name}.sort_values('timestamp').drop_duplicates(['userId', 'movieId'], "
                        "keep='last').")
    return df


def file_digest(path: Path | str, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks (``algorithm`` is any hashlib name: sha256, md5, ...)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256(path: Path | str) -> str:
    return file_digest(path, "sha256")


def md5(path: Path | str) -> str:
    return file_digest(path, "md5")


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def load_movielens(name: str = "latest-small", *, verify: bool = True) -> MovieLens:
    """Load a MovieLens release.

    ``"latest-small"`` (the default) is read from the vendored copy in ``data/ml-latest-small`` (override the
    folder with ``$RECSYS_COURSE_DATA``) and its sha256 sums are verified. ``"100k"``, ``"1m"`` and ``"25m"``
    are downloaded once into the cache folder (``$RECSYS_COURSE_CACHE``) and verified by md5.
    """
    key = str(name).lower().removeprefix("ml-").removeprefix("movielens-")
    if key == "latest-small":
        return _load_latest_small(data_dir() / "ml-latest-small", verify=verify)
    if key in REMOTE:
        folder = fetch(key)
        return _READERS[key](folder)
    raise DataError(f"unknown MovieLens dataset {name!r}; choose one of {list(DATASETS)}")


SYNTHETIC_PREFIX = "synthetic-"


def load_dataset(name: str = "latest-small") -> MovieLens:
    """The data set a notebook runs on, by name: a MovieLens release (see :func:`load_movielens`) or
    ``"synthetic-1m"`` / ``"synthetic-small"``, seeded synthetic data with that release's size and long-tailed
    activity (:func:`recsys_course.synthetic.movielens_shaped`), for testing a profile's code path at scale
    without downloading anything. A profile names its data set (:data:`recsys_course.profiles.DATASETS`);
    ``recsys-course run --dataset NAME`` overrides it.
    """
    key = check_dataset(name)
    if key.startswith(SYNTHETIC_PREFIX):
        from .synthetic import movielens_shaped

        data = movielens_shaped(key.removeprefix(SYNTHETIC_PREFIX))
        return MovieLens(key, data.ratings, data.movies)
    return load_movielens(key)


def check_dataset(name: str) -> str:
    """``name`` in lower case if :func:`load_dataset` accepts it; else a :class:`DataError` listing the names."""
    key = str(name).lower()
    if key not in dataset_names():
        raise DataError(f"unknown data set {name!r}; choose one of {list(dataset_names())}")
    return key


def dataset_names() -> tuple[str, ...]:
    """Every name :func:`load_dataset` accepts."""
    from .synthetic import SHAPES

    return (*DATASETS, *(SYNTHETIC_PREFIX + s for s in SHAPES))


def _load_latest_small(folder: Path, verify: bool) -> MovieLens:
    if not folder.is_dir():
        if not in_a_clone() and not os.environ.get(ENV_DATA_DIR):
            raise DataError(f"the vendored MovieLens folder {folder} does not exist: {outside_a_clone_advice()}")
        raise DataError(f"the vendored MovieLens folder {folder} does not exist. Run from a clone of the course "
                        f"repository, or point ${ENV_DATA_DIR} at the folder that contains "
                        "ml-latest-small/.")
    if verify:
        for fname, digest in LATEST_SMALL_SHA256.items():
            path = folder / fname
            if not path.exists():
                raise DataError(f"{path.name} is missing from {folder}; restore it with `git checkout -- "
                                f"data/ml-latest-small`.")
            if sha256(path) != digest:
                raise DataError(f"{path.name} in {folder} does not match the published sha256 (was it edited, "
                                "or were its CRLF line endings converted?). Restore it with `git checkout -- "
                                "data/ml-latest-small`; .gitattributes keeps data/** byte for byte.")
    ratings = pd.read_csv(folder / "ratings.csv", dtype={USER: np.int64, ITEM: np.int64, RATING: np.float64,
                                                        TIME: np.int64})
    movies = _parse_movies(pd.read_csv(folder / "movies.csv", dtype={ITEM: np.int64, TITLE: str, GENRES: str}))
    tags = pd.read_csv(folder / "tags.csv", dtype={USER: np.int64, ITEM: np.int64, TAG: str, TIME: np.int64})
    return MovieLens("latest-small", ratings, movies, tags)


_YEAR = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")


def _parse_movies(movies: pd.DataFrame, sep: str = "|") -> pd.DataFrame:
    """Split "Title (1995)" into title and year, and the genre string into a list."""
    titles = movies[TITLE].fillna("").str.strip()
    year = titles.str.extract(_YEAR, expand=False)
    out = pd.DataFrame({
        ITEM: movies[ITEM].astype(np.int64),
        TITLE: titles.str.replace(_YEAR, "", regex=True).str.strip(),
        YEAR: pd.to_numeric(year, errors="coerce").astype("Int64"),
        GENRES: movies[GENRES].fillna("").map(
            lambda s: [] if s in ("", "(no genres listed)") else s.split(sep)),
    })
    return out.reset_index(drop=True)


def _read_100k(folder: Path) -> MovieLens:
    ratings = pd.read_csv(folder / "u.data", sep="\t", names=list(RATING_COLUMNS),
                          dtype={USER: np.int64, ITEM: np.int64, RATING: np.float64, TIME: np.int64})
    cols = [ITEM, TITLE, "release", "video", "imdb", *ML100K_GENRES]
    raw = pd.read_csv(folder / "u.item", sep="|", names=cols, encoding="latin-1")
    flags = raw[ML100K_GENRES].to_numpy(bool)
    raw[GENRES] = ["|".join(g for g, f in zip(ML100K_GENRES, row) if f and g != "unknown") for row in flags]
    return MovieLens("100k", ratings, _parse_movies(raw[[ITEM, TITLE, GENRES]]))


def _read_1m(folder: Path) -> MovieLens:
    ratings = pd.read_csv(folder / "ratings.dat", sep="::", engine="python", names=list(RATING_COLUMNS),
                          dtype={USER: np.int64, ITEM: np.int64, RATING: np.float64, TIME: np.int64})
    movies = pd.read_csv(folder / "movies.dat", sep="::", engine="python", names=[ITEM, TITLE, GENRES],
                         encoding="latin-1")
    return MovieLens("1m", ratings, _parse_movies(movies))


def _read_25m(folder: Path) -> MovieLens:
    ratings = pd.read_csv(folder / "ratings.csv", dtype={USER: np.int64, ITEM: np.int64, RATING: np.float64,
                                                         TIME: np.int64})
    movies = _parse_movies(pd.read_csv(folder / "movies.csv"))
    tags = pd.read_csv(folder / "tags.csv", dtype={TAG: str})
    return MovieLens("25m", ratings, movies, tags)


_READERS = {"100k": _read_100k, "1m": _read_1m, "25m": _read_25m}


# --------------------------------------------------------------------------------------------
# downloading
# --------------------------------------------------------------------------------------------
def fetch(name: str, *, retries: int = 3, timeout: float = 60.0, backoff: float = 1.0,
          remote: RemoteDataset | None = None) -> Path:
    """Make sure the archive ``name`` is in the cache, verified and unzipped; return the unzipped folder.

    The zip is downloaded to a temporary file in the cache folder, its md5 is checked, and only then is it
    renamed into place (so an interrupted or corrupted download never looks like a good one). Failed
    attempts are retried ``retries`` times with a growing pause. ``remote`` replaces the registry entry
    (used by the tests to point at a local server).

    The cache heals itself: a zip in the cache that fails its md5 (a partial copy, a full disk) is said so in one
    line and fetched again; an unzipped folder counts only with a ``.verified`` marker naming this archive's md5.
    """
    spec = remote or REMOTE.get(name)
    if spec is None:
        raise DataError(f"unknown MovieLens dataset {name!r}; downloadable ones are {list(REMOTE)}")
    root = cache_dir()
    folder = root / spec.folder
    done = folder / ".verified"
    if _verified(done, spec.md5):
        return folder
    archive = root / f"{spec.folder}.zip"
    if archive.exists() and md5(archive) != spec.md5:  # a partial, corrupt or stale archive: fetch it again
        print(f"recsys_course: {archive} does not match its md5 {spec.md5} (a partial or corrupt download); "
              "fetching it again", file=sys.stderr, flush=True)
        archive.unlink(missing_ok=True)
    if not archive.exists():
        _download(spec, archive, retries=retries, timeout=timeout, backoff=backoff)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.folder}-", dir=root))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)
        extracted = staging / spec.folder
        if not extracted.is_dir():
            raise DataError(f"{archive.name} does not contain the folder {spec.folder}/; delete {archive} "
                            "and try again.")
        (extracted / ".verified").write_text(spec.md5 + "\n")
        if _verified(done, spec.md5):  # another process unzipped it meanwhile: keep theirs, in use
            return folder
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(extracted, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _verified(marker: Path, digest: str) -> bool:
    """Whether an unzipped folder's ``.verified`` marker names the archive ``digest`` (its md5)."""
    try:
        return marker.read_text().strip() == digest
    except OSError:
        return False


def _download(spec: RemoteDataset, target: Path, *, retries: int, timeout: float, backoff: float) -> None:
    last: Exception | None = None
    for attempt in range(1, retries + 1):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=timeout) as resp:
                shutil.copyfileobj(resp, out, length=1 << 20)
            got = md5(tmp)
            if got != spec.md5:
                raise DataError(f"checksum mismatch for {spec.url}: md5 {got}, expected {spec.md5} "
                                "(a truncated or corrupted download)")
            os.replace(tmp, target)
            return
        except (urllib.error.URLError, OSError, DataError) as exc:  # network trouble or a bad file
            last = exc
            tmp.unlink(missing_ok=True)
            if attempt < retries:
                time.sleep(backoff * attempt)
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(
        f"could not download MovieLens {spec.name} from {spec.url} after {retries} attempt(s): {last}.\n"
        f"If you are offline, download the file on a connected machine and copy it to {target} "
        f"(md5 {spec.md5}), or set ${ENV_CACHE_DIR} to a folder that already holds it.")


# --------------------------------------------------------------------------------------------
# toy data for worked examples
# --------------------------------------------------------------------------------------------
def toy_purchases() -> pd.DataFrame:
    """The course's smallest implicit-feedback example: user u bought i1, i2, i3; user v bought i2, i3, i4.

    Returned as a ratings frame with rating 1.0 (bought) and a timestamp giving the purchase order.
    """
    rows = [("u", "i1"), ("u", "i2"), ("u", "i3"), ("v", "i2"), ("v", "i3"), ("v", "i4")]
    return pd.DataFrame({USER: [u for u, _ in rows], ITEM: [i for _, i in rows], RATING: 1.0,
                         TIME: np.arange(len(rows), dtype=np.int64)})


def toy_ratings() -> pd.DataFrame:
    """A small explicit rating matrix (5 users × 6 movies, 1–5 stars, 19 of 30 cells known).

    Alice and Bob like the action films (A1–A3), Carol and Dan the romances (R1–R3); Eve likes a bit of both.
    """
    table = {
        "Alice": {"A1": 5, "A2": 4, "A3": 5, "R1": 1, "R2": 2},
        "Bob": {"A1": 4, "A2": 5, "R1": 2, "R3": 1},
        "Carol": {"A1": 1, "R1": 5, "R2": 4, "R3": 5},
        "Dan": {"A2": 2, "R1": 4, "R2": 5},
        "Eve": {"A1": 4, "R2": 4, "R3": 3},
    }
    rows = [(u, i, float(r)) for u, items in table.items() for i, r in items.items()]
    df = pd.DataFrame(rows, columns=[USER, ITEM, RATING])
    df[TIME] = np.arange(len(df), dtype=np.int64)
    return df


def to_matrix(ratings: pd.DataFrame, fill=np.nan) -> pd.DataFrame:
    """Pivot a (small) ratings frame into a users × items table; missing cells get ``fill``."""
    check_ratings(ratings)
    table = ratings.pivot(index=USER, columns=ITEM, values=RATING)
    return table if pd.isna(fill) else table.fillna(fill)

"""recsys_course.data: the vendored MovieLens, its checksums, ratings validation and the toy data."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from recsys_course import config
from recsys_course.config import GENRES, ITEM, RATING, TIME, TITLE, USER, YEAR
from recsys_course.data import (
    DATASETS,
    LATEST_SMALL_SHA256,
    DataError,
    MovieLens,
    check_ratings,
    load_movielens,
    sha256,
    to_matrix,
    toy_purchases,
    toy_ratings,
)

VENDORED = config.REPO_DIR / "data" / "ml-latest-small"


# --------------------------------------------------------------------------------------------
# the vendored latest-small
# --------------------------------------------------------------------------------------------
def test_shape_facts(ml):
    assert isinstance(ml, MovieLens)
    assert ml.name == "latest-small"
    assert len(ml.ratings) == 100_836
    assert ml.ratings[USER].nunique() == 610
    assert len(ml.movies) == 9_742
    assert len(ml.tags) == 3_683


def test_columns_and_dtypes(ml):
    assert list(ml.ratings.columns) == [USER, ITEM, RATING, TIME]
    assert list(ml.ratings.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert ml.ratings[USER].dtype == np.int64
    assert ml.ratings[ITEM].dtype == np.int64
    assert ml.ratings[RATING].dtype == np.float64
    assert ml.ratings[TIME].dtype == np.int64
    assert list(ml.movies.columns) == [ITEM, TITLE, YEAR, GENRES]
    assert list(ml.tags.columns) == [USER, ITEM, "tag", TIME]


def test_ratings_values(ml):
    r = ml.ratings
    # MovieLens latest-small: half stars from 0.5 to 5
    assert r[RATING].min() == 0.5
    assert r[RATING].max() == 5.0
    assert set(np.unique(r[RATING] * 2)) == set(range(1, 11))
    assert not r.duplicated([USER, ITEM]).any()
    assert r[ITEM].isin(ml.movies[ITEM]).all()
    assert check_ratings(r) is r


def test_movies_parsed(ml):
    movies = ml.movies.set_index(ITEM)
    toy = movies.loc[1]
    assert toy[TITLE] == "Toy Story"
    assert toy[YEAR] == 1995
    assert toy[GENRES] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert all(isinstance(g, list) for g in ml.movies[GENRES])
    assert ml.movies[ITEM].is_unique
    # "(no genres listed)" becomes an empty list, never the literal string
    assert not any("(no genres listed)" in g for g in ml.movies[GENRES])
    assert (ml.movies[GENRES].map(len) == 0).sum() > 0
    # no title keeps its "(1995)" suffix
    assert not ml.movies[TITLE].str.contains(r"\(\d{4}\)$").any()
    assert str(ml.movies[YEAR].dtype) == "Int64"


def test_repr(ml):
    text = repr(ml)
    assert "100,836 ratings" in text and "610 users" in text and "9,742 movies" in text and "3,683 tags" in text


def test_name_aliases():
    ml = load_movielens("ml-latest-small")
    assert ml.name == "latest-small"
    assert len(ml.ratings) == 100_836


def test_unknown_dataset_lists_choices():
    with pytest.raises(DataError) as err:
        load_movielens("ml-99m")
    msg = str(err.value)
    assert "ml-99m" in msg
    for name in DATASETS:
        assert name in msg
    assert set(DATASETS) == {"latest-small", "100k", "1m", "25m"}


def test_vendored_checksums_match():
    for fname, digest in LATEST_SMALL_SHA256.items():
        assert sha256(VENDORED / fname) == digest, fname


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A copy of data/ml-latest-small under tmp_path, with $RECSYS_COURSE_DATA pointing at it."""
    root = tmp_path / "data"
    shutil.copytree(VENDORED, root / "ml-latest-small")
    monkeypatch.setenv(config.ENV_DATA_DIR, str(root))
    return root / "ml-latest-small"


def test_data_env_var_is_used(data_copy):
    assert config.data_dir() == data_copy.parent
    assert len(load_movielens().ratings) == 100_836


def test_sha256_catches_a_modified_byte(data_copy):
    path = data_copy / "ratings.csv"
    raw = bytearray(path.read_bytes())
    pos = len(raw) // 2
    # change one digit into another digit: the CSV stays parseable, only the checksum can notice
    assert chr(raw[pos]).isdigit() or chr(raw[pos + 1]).isdigit()
    pos = pos if chr(raw[pos]).isdigit() else pos + 1
    raw[pos] = ord("1") if raw[pos] != ord("1") else ord("2")
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="sha256") as err:
        load_movielens()
    assert "ratings.csv" in str(err.value)
    assert "git checkout" in str(err.value)
    # verify=False skips the check (and the modified file still parses)
    assert len(load_movielens(verify=False).ratings) == 100_836


def test_crlf_conversion_is_caught(data_copy):
    path = data_copy / "README.txt"
    text = path.read_bytes()
    converted = text.replace(b"\r\n", b"\n") if b"\r\n" in text else text.replace(b"\n", b"\r\n")
    assert converted != text
    path.write_bytes(converted)
    with pytest.raises(DataError, match="sha256"):
        load_movielens()


def test_missing_file_is_named(data_copy):
    (data_copy / "tags.csv").unlink()
    with pytest.raises(DataError, match="tags.csv is missing"):
        load_movielens()


def test_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(config.ENV_DATA_DIR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as err:
        load_movielens()
    assert "does not exist" in str(err.value)
    assert config.ENV_DATA_DIR in str(err.value)


# --------------------------------------------------------------------------------------------
# check_ratings
# --------------------------------------------------------------------------------------------
def _frame(**overrides):
    df = pd.DataFrame({USER: [1, 1, 2], ITEM: [10, 11, 10], RATING: [4.0, 3.5, 5.0], TIME: [1, 2, 3]})
    for col, values in overrides.items():
        df[col] = values
    return df


def test_check_ratings_accepts_a_good_frame():
    df = _frame()
    assert check_ratings(df) is df
    assert check_ratings(df.drop(columns=TIME)) is not None  # timestamp is optional by default


def test_check_ratings_not_a_dataframe():
    with pytest.raises(DataError, match="must be a pandas DataFrame") as err:
        check_ratings([(1, 10, 4.0)])
    assert "list" in str(err.value)
    with pytest.raises(DataError, match="got ndarray"):
        check_ratings(np.zeros((3, 3)))


def test_check_ratings_wrong_columns():
    df = _frame().rename(columns={USER: "user", RATING: "stars"})
    with pytest.raises(DataError, match="missing column") as err:
        check_ratings(df, name="train")
    msg = str(err.value)
    assert msg.startswith("train ")
    assert "'userId'" in msg and "'rating'" in msg
    assert "'movieId'" not in msg.split(";")[0]  # movieId is present, so it is not listed as missing
    assert "user" in msg and "stars" in msg  # what the frame has


def test_check_ratings_require_time():
    with pytest.raises(DataError, match=r"missing column\(s\) \['timestamp'\]"):
        check_ratings(_frame().drop(columns=TIME), require_time=True)


def test_check_ratings_nan():
    with pytest.raises(DataError, match="NaN") as err:
        check_ratings(_frame(rating=[4.0, np.nan, np.nan]))
    assert "{'rating': 2}" in str(err.value)
    assert "dropna" in str(err.value)
    with pytest.raises(DataError, match=r"NaN values \{'movieId': 1\}"):
        check_ratings(_frame(movieId=[10, np.nan, 12]))


def test_check_ratings_non_numeric():
    with pytest.raises(DataError, match="must be numeric") as err:
        check_ratings(_frame(rating=["4", "3.5", "five"]))
    assert "got dtype" in str(err.value)
    assert "pd.to_numeric" in str(err.value)


def test_check_ratings_duplicates():
    df = pd.DataFrame({USER: [1, 1, 1, 2], ITEM: [10, 10, 11, 11], RATING: [4.0, 3.0, 2.0, 5.0]})
    with pytest.raises(DataError, match=r"1 duplicated \(userId, movieId\) pairs") as err:
        check_ratings(df)
    assert "drop_duplicates" in str(err.value)


def test_check_ratings_empty():
    empty = _frame().iloc[:0]
    with pytest.raises(DataError, match="is empty"):
        check_ratings(empty, name="test")
    assert check_ratings(empty, allow_empty=True) is empty


# --------------------------------------------------------------------------------------------
# toy data
# --------------------------------------------------------------------------------------------
def test_toy_purchases():
    df = toy_purchases()
    assert list(df.columns) == [USER, ITEM, RATING, TIME]
    bought = df.groupby(USER)[ITEM].apply(set).to_dict()
    assert bought == {"u": {"i1", "i2", "i3"}, "v": {"i2", "i3", "i4"}}
    assert (df[RATING] == 1.0).all()
    assert df[TIME].tolist() == list(range(6))
    check_ratings(df, require_time=True)


def test_toy_ratings():
    df = toy_ratings()
    assert len(df) == 19  # 5 + 4 + 4 + 3 + 3 known cells of 5 x 6
    assert sorted(df[USER].unique()) == ["Alice", "Bob", "Carol", "Dan", "Eve"]
    assert sorted(df[ITEM].unique()) == ["A1", "A2", "A3", "R1", "R2", "R3"]
    assert df[RATING].between(1, 5).all()
    check_ratings(df, require_time=True)
    table = to_matrix(df)
    assert table.shape == (5, 6)
    assert table.notna().sum().sum() == 19
    assert table.loc["Alice", "A1"] == 5 and table.loc["Carol", "R1"] == 5 and table.loc["Bob", "R3"] == 1
    assert np.isnan(table.loc["Bob", "A3"])
    # the story the docstring tells: Alice and Bob like action, Carol and Dan romance
    action = table[["A1", "A2", "A3"]].mean(axis=1)
    romance = table[["R1", "R2", "R3"]].mean(axis=1)
    assert (action > romance)[["Alice", "Bob"]].all()
    assert (romance > action)[["Carol", "Dan"]].all()
    assert to_matrix(df, fill=0).loc["Bob", "A3"] == 0

"""recsys_course.features: TF-IDF by hand, block layout and weights, determinism, MovieLens shapes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from recsys_course.config import GENRES, ITEM, TAG, TITLE, YEAR
from recsys_course.features import DEFAULT_WEIGHTS, ItemFeatures, item_features, tag_documents, tfidf

MOVIES = pd.DataFrame({
    ITEM: [10, 20, 30], TITLE: ["Star Wars", "Star Trek", "Love Actually"], YEAR: pd.array([1977, 1979, 2003]),
    GENRES: [["Action", "Sci-Fi"], ["Sci-Fi"], ["Comedy", "Romance"]]})
TAGS = pd.DataFrame({ITEM: [10, 10, 20, 20, 30], TAG: ["space", "Classic", "space", "SPACE", "christmas"]})


def dense(features: ItemFeatures) -> pd.DataFrame:
    return pd.DataFrame(features.matrix.toarray(), index=features.item_ids, columns=features.feature_names)


def test_tfidf_by_hand_and_against_sklearn():
    docs = ["space classic", "space space", "christmas"]
    matrix, vocab = tfidf(docs)
    assert list(vocab) == ["christmas", "classic", "space"]
    idf_space, idf_rare = np.log(4 / 3) + 1, np.log(4 / 2) + 1
    norm = np.hypot(idf_space, idf_rare)
    assert matrix.toarray()[0] == pytest.approx([0, idf_rare / norm, idf_space / norm])
    assert matrix.toarray()[0] == pytest.approx([0, 0.7960, 0.6053], abs=1e-4)
    assert matrix.toarray()[1] == pytest.approx([0, 0, 1])
    assert np.allclose(matrix.toarray(), TfidfVectorizer().fit_transform(docs).toarray())


def test_tfidf_edge_cases():
    matrix, vocab = tfidf(["", "", None])
    assert matrix.shape == (3, 0) and len(vocab) == 0  # nothing to index: an empty block, not an error
    matrix, vocab = tfidf(["the a", "word"], stop_words="english")
    assert list(vocab) == ["word"] and matrix.toarray()[0].sum() == 0  # only stop words: an all-zero row
    matrix, vocab = tfidf(["ab cd", "ab ef", "ab x"], min_df=2)
    assert list(vocab) == ["ab"]  # cd, ef occur once; one-letter words are not tokens (scikit-learn's pattern)


def test_toy_features_by_hand():
    f = item_features(MOVIES, TAGS, min_df=1)
    table = dense(f)
    assert list(f.blocks) == ["genres", "tags", "title", "year"]
    assert f.shape == (3, 4 + 3 + 5 + 2)
    assert list(f.feature_names[f.blocks["genres"]]) == ["genre:Action", "genre:Comedy", "genre:Romance",
                                                         "genre:Sci-Fi"]
    assert list(f.feature_names[f.blocks["year"]]) == ["year:1970s", "year:2000s"]
    # genres: unit rows, weight 1
    assert table.loc[10, "genre:Action"] == pytest.approx(1 / np.sqrt(2))
    assert table.loc[20, "genre:Sci-Fi"] == pytest.approx(1.0)
    # tags lower-cased; B's "space" twice -> a single-term row of length 1
    assert table.loc[10, "tag:space"] == pytest.approx(0.6053, abs=1e-4)
    assert table.loc[10, "tag:classic"] == pytest.approx(0.7960, abs=1e-4)
    assert table.loc[20, "tag:space"] == pytest.approx(1.0)
    # title and decade carry weight 0.5
    assert table.loc[10, "title:star"] == pytest.approx(0.5 * 0.6053, abs=1e-4)
    assert table.loc[30, "year:2000s"] == pytest.approx(0.5)
    # each block's squared norm is its weight squared
    for name, s in f.blocks.items():
        norms = sp.linalg.norm(f.matrix[:, s], axis=1)
        assert norms == pytest.approx([DEFAULT_WEIGHTS[name]] * 3)
    unit = f.matrix.toarray() / np.linalg.norm(f.matrix.toarray(), axis=1, keepdims=True)
    by_hand = (1 / np.sqrt(2) + 0.6053 + 0.25 * 0.6053 ** 2 + 0.25) / 2.5
    assert unit[0] @ unit[1] == pytest.approx(by_hand, abs=1e-4)
    assert unit[0] @ unit[2] == 0


def test_deterministic_and_independent_of_row_order():
    a = item_features(MOVIES, TAGS, min_df=1)
    b = item_features(MOVIES.iloc[::-1], TAGS.iloc[::-1], min_df=1)
    assert np.array_equal(a.item_ids, b.item_ids)
    assert list(a.feature_names) == list(b.feature_names)
    assert (a.matrix != b.matrix).nnz == 0


def test_weights_drop_and_scale_blocks():
    f = item_features(MOVIES, TAGS, weights={"tags": 0, "title": 0, "year": 0}, min_df=1)
    assert list(f.blocks) == ["genres"] and f.shape == (3, 4)
    g = item_features(MOVIES, TAGS, weights={"genres": 2.0}, min_df=1)
    assert sp.linalg.norm(g.block("genres"), axis=1) == pytest.approx([2.0, 2.0, 2.0])
    assert g.weights["genres"] == 2.0 and g.weights["tags"] == DEFAULT_WEIGHTS["tags"]


def test_no_tags_gives_an_empty_tag_block():
    f = item_features(MOVIES, None, min_df=1)
    assert f.blocks["tags"].stop - f.blocks["tags"].start == 0
    assert f.shape[1] == 4 + 5 + 2


@pytest.mark.parametrize("kwargs, match", [
    ({"weights": {"colour": 1.0}}, "unknown feature block"),
    ({"weights": {"genres": -1.0}}, "finite number >= 0"),
    ({"weights": {"genres": float("nan")}}, "finite number >= 0"),
    ({"weights": {"genres": 0, "tags": 0, "title": 0, "year": 0}}, "every block weight is 0"),
    ({"min_df": 0}, "min_df"),
    ({"min_df": 1.5}, "min_df"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        item_features(MOVIES, TAGS, **kwargs)


def test_bad_movies_frame():
    with pytest.raises(ValueError, match="missing column"):
        item_features(MOVIES.drop(columns=[GENRES]))
    with pytest.raises(ValueError, match="duplicated"):
        item_features(pd.concat([MOVIES, MOVIES.iloc[:1]]))
    with pytest.raises(TypeError):
        item_features("movies.csv")
    with pytest.raises(ValueError, match="tags is missing"):
        tag_documents(pd.DataFrame({ITEM: [10]}), [10])


def test_lookup_rows_and_describe():
    f = item_features(MOVIES, TAGS, min_df=1)
    assert f.positions([30, 99, 10]).tolist() == [2, -1, 0]
    rows = f.rows([30, 99])
    assert rows.shape == (2, f.shape[1])
    assert rows[1].nnz == 0  # an id without features: a zero row
    assert (rows[0] != f.matrix[2]).nnz == 0
    top = f.describe(10, top=3)
    assert top.index[0] in {"genre:Action", "genre:Sci-Fi", "tag:classic"} and len(top) == 3
    assert top.is_monotonic_decreasing
    with pytest.raises(KeyError):
        f.describe(99)
    with pytest.raises(KeyError, match="no block"):
        f.block("colour")
    assert "3 items" in repr(f)


def test_item_features_shape_check():
    with pytest.raises(ValueError, match="does not match"):
        ItemFeatures(np.array([1, 2]), sp.csr_matrix((3, 2)), np.array(["a", "b"], dtype=object))


def test_tag_documents_counts_repeats():
    docs = tag_documents(TAGS, [10, 20, 30, 40])
    assert docs == ["classic space", "space space", "christmas", ""]


def test_movielens_features(ml):
    f = item_features(ml.movies, ml.tags)
    assert f.shape[0] == len(ml.movies) == 9742
    assert np.all(np.diff(f.item_ids) > 0)
    assert sum(s.stop - s.start for s in f.blocks.values()) == f.shape[1]
    assert f.blocks["genres"].stop - f.blocks["genres"].start == 19
    assert len(set(f.feature_names)) == f.shape[1]
    assert np.isfinite(f.matrix.data).all() and (f.matrix.data > 0).all()
    again = item_features(ml.movies, ml.tags)
    assert list(again.feature_names) == list(f.feature_names) and (again.matrix != f.matrix).nnz == 0
    assert f.describe(1).index[0] == "tag:pixar"  # Toy Story

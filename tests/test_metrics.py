"""recsys_course.metrics: every metric against hand-computed cases and against scikit-learn."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import mean_absolute_error, mean_squared_error, ndcg_score

from recsys_course.data import DataError
from recsys_course.metrics import (
    RANKING_METRICS,
    catalog_coverage,
    hit_at_k,
    hit_matrix,
    intra_list_diversity,
    mae,
    map_at_k,
    mask_seen,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
    rmse,
)

log2 = math.log2
REC = ["a", "b", "c", "d", "e"]
REL = {"b", "e", "f"}


# --------------------------------------------------------------------------------------------
# one user, by hand
# --------------------------------------------------------------------------------------------
def test_hit_matrix_by_hand():
    hits, n_rel = hit_matrix(REC, REL, k=5)
    assert hits.tolist() == [[False, True, False, False, True]]
    assert n_rel.tolist() == [3]
    # a short list is padded with misses
    hits, n_rel = hit_matrix([["b"]], [{"b", "c"}], k=3)
    assert hits.tolist() == [[True, False, False]] and n_rel.tolist() == [2]


def test_k5_by_hand():
    # hits at ranks 2 and 5 out of 5; 3 relevant items (f is never recommended)
    assert precision_at_k(REC, REL, k=5) == pytest.approx(2 / 5)
    assert recall_at_k(REC, REL, k=5) == pytest.approx(2 / 3)
    assert hit_at_k(REC, REL, k=5) == 1.0
    assert mrr_at_k(REC, REL, k=5) == pytest.approx(1 / 2)  # first hit at rank 2
    # AP = (P@2 + P@5) / min(|Rel|, k) = (1/2 + 2/5) / 3 = 0.3
    assert map_at_k(REC, REL, k=5) == pytest.approx((1 / 2 + 2 / 5) / 3)
    assert map_at_k(REC, REL, k=5) == pytest.approx(0.3)
    # DCG = 1/log2(2+1) + 1/log2(5+1); IDCG = three hits at ranks 1..3 = 1 + 1/log2(3) + 1/log2(4)
    expected = (1 / log2(3) + 1 / log2(6)) / (1 + 1 / log2(3) + 1 / log2(4))
    assert ndcg_at_k(REC, REL, k=5) == pytest.approx(expected)
    assert ndcg_at_k(REC, REL, k=5) == pytest.approx(1.0178 / 2.1309, abs=1e-4)  # = 0.47762...


def test_k2_by_hand():
    # top 2 = [a, b]: one hit at rank 2
    assert precision_at_k(REC, REL, k=2) == pytest.approx(1 / 2)
    assert recall_at_k(REC, REL, k=2) == pytest.approx(1 / 3)
    assert hit_at_k(REC, REL, k=2) == 1.0
    assert mrr_at_k(REC, REL, k=2) == pytest.approx(1 / 2)
    # AP@2 = P@2 / min(3, 2) = (1/2) / 2
    assert map_at_k(REC, REL, k=2) == pytest.approx(1 / 4)
    # DCG = 1/log2(3); IDCG@2 = 1 + 1/log2(3)
    assert ndcg_at_k(REC, REL, k=2) == pytest.approx((1 / log2(3)) / (1 + 1 / log2(3)))


def test_k1_miss_is_zero():
    for metric in (precision_at_k, recall_at_k, hit_at_k, mrr_at_k, map_at_k, ndcg_at_k):
        assert metric(REC, REL, k=1) == 0.0, metric.__name__


def test_k_larger_than_list():
    # [b] and k=3: one hit at rank 1, two padded misses; Rel = {b}
    assert precision_at_k(["b"], {"b"}, k=3) == pytest.approx(1 / 3)
    assert recall_at_k(["b"], {"b"}, k=3) == 1.0
    assert map_at_k(["b"], {"b"}, k=3) == 1.0  # AP = P@1 / min(1, 3)
    assert ndcg_at_k(["b"], {"b"}, k=3) == 1.0  # IDCG uses min(|Rel|, k) = 1 ideal hit


def test_perfect_list_with_more_relevant_than_k():
    rel = set(range(10))
    recs = [0, 1, 2]
    assert map_at_k(recs, rel, k=3) == 1.0  # min(|Rel|, k) = 3 in the denominator
    assert ndcg_at_k(recs, rel, k=3) == 1.0
    assert precision_at_k(recs, rel, k=3) == 1.0
    assert recall_at_k(recs, rel, k=3) == pytest.approx(3 / 10)


def test_map_by_hand_second_case():
    # hits at ranks 1 and 3: AP = (1/1 + 2/3) / min(4, 3) = 5/9
    assert map_at_k(["x", "n", "y", "m"], {"x", "y", "z", "w"}, k=3) == pytest.approx(5 / 9)


def test_mean_over_users():
    recommended = [REC, ["x", "y"], ["p", "q", "r"]]
    relevant = [REL, {"x"}, {"r", "s"}]
    # user 1: P@5 = 2/5; user 2: x at rank 1, short list -> 1/5; user 3: r at rank 3 -> 1/5
    assert precision_at_k(recommended, relevant, k=5) == pytest.approx((2 / 5 + 1 / 5 + 1 / 5) / 3)
    # recall: 2/3, 1, 1/2
    assert recall_at_k(recommended, relevant, k=5) == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    # MRR: 1/2, 1, 1/3
    assert mrr_at_k(recommended, relevant, k=5) == pytest.approx((1 / 2 + 1 + 1 / 3) / 3)
    assert hit_at_k(recommended, relevant, k=5) == 1.0
    assert hit_at_k(recommended, relevant, k=2) == pytest.approx(2 / 3)  # user 3 misses in the top 2
    # AP: 0.3; 1; (1/3) / min(2, 5) = 1/6
    assert map_at_k(recommended, relevant, k=5) == pytest.approx((0.3 + 1 + 1 / 6) / 3)
    # NDCG user 3: (1/log2(4)) / (1 + 1/log2(3))
    n1 = (1 / log2(3) + 1 / log2(6)) / (1 + 1 / log2(3) + 1 / log2(4))
    n3 = (1 / log2(4)) / (1 + 1 / log2(3))
    assert ndcg_at_k(recommended, relevant, k=5) == pytest.approx((n1 + 1 + n3) / 3)


def test_ranking_metrics_table_matches_public_functions():
    recommended = [REC, ["x", "y"], ["p", "q", "r"]]
    relevant = [REL, {"x"}, {"r", "s"}]
    hits, n_rel = hit_matrix(recommended, relevant, k=4)
    public = {"precision": precision_at_k, "recall": recall_at_k, "ndcg": ndcg_at_k, "map": map_at_k,
              "hit": hit_at_k, "mrr": mrr_at_k}
    assert set(RANKING_METRICS) == set(public)
    for name, formula in RANKING_METRICS.items():
        assert formula(hits, n_rel) == pytest.approx(public[name](recommended, relevant, k=4)), name


def test_inputs_may_be_arrays_and_tuples():
    assert precision_at_k(np.array([1, 2, 3]), {2, 3}, k=3) == pytest.approx(2 / 3)
    assert recall_at_k((r for r in [[1, 2], [3]]), [frozenset({2}), {4}], k=2) == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------
# graded NDCG
# --------------------------------------------------------------------------------------------
def test_graded_ndcg_by_hand():
    gains = {"a": 3.0, "b": 1.0, "c": 2.0}
    # list [b, a, x]: DCG = 1/log2(2) + 3/log2(3) + 0; ideal [a, c, b]: 3 + 2/log2(3) + 1/log2(4)
    expected = (1 + 3 / log2(3)) / (3 + 2 / log2(3) + 1 / 2)
    assert ndcg_at_k(["b", "a", "x"], gains, k=3) == pytest.approx(expected)
    # k=1: DCG = 1, IDCG = 3
    assert ndcg_at_k(["b", "a", "x"], gains, k=1) == pytest.approx(1 / 3)


def test_graded_ndcg_with_unit_gains_equals_binary():
    recommended = [REC, ["x", "y"], ["p", "q", "r"]]
    sets = [REL, {"x"}, {"r", "s"}]
    dicts = [{i: 1.0 for i in s} for s in sets]
    for k in (1, 2, 3, 5, 8):
        assert ndcg_at_k(recommended, dicts, k=k) == pytest.approx(ndcg_at_k(recommended, sets, k=k))
    # sets and dicts may be mixed
    mixed = [dicts[0], sets[1], dicts[2]]
    assert ndcg_at_k(recommended, mixed, k=5) == pytest.approx(ndcg_at_k(recommended, sets, k=5))


@pytest.mark.parametrize("k", [1, 3, 5, 10, 50])
def test_ndcg_matches_sklearn_graded(k):
    rng = np.random.default_rng(k)
    n_users, n_items = 20, 50
    y_true = rng.integers(0, 4, size=(n_users, n_items)).astype(float)
    y_true[:, 0] = np.maximum(y_true[:, 0], 1)  # every user has a positive gain
    y_score = rng.permutation(n_users * n_items).reshape(n_users, n_items) / 7.0  # no ties
    recommended = [list(np.argsort(-row)) for row in y_score]
    relevant = [{j: g for j, g in enumerate(row) if g > 0} for row in y_true]
    assert ndcg_at_k(recommended, relevant, k=k) == pytest.approx(ndcg_score(y_true, y_score, k=k), rel=1e-12)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_ndcg_matches_sklearn_binary(k):
    rng = np.random.default_rng(100 + k)
    y_true = (rng.random((20, 50)) < 0.15).astype(float)
    y_true[:, 3] = 1.0
    y_score = rng.random((20, 50))
    recommended = [list(np.argsort(-row)) for row in y_score]
    relevant = [set(np.flatnonzero(row)) for row in y_true]
    assert ndcg_at_k(recommended, relevant, k=k) == pytest.approx(ndcg_score(y_true, y_score, k=k), rel=1e-12)


def test_graded_ndcg_errors():
    with pytest.raises(DataError, match="no item with a positive gain"):
        ndcg_at_k(["a", "b"], {"a": 0.0}, k=2)
    with pytest.raises(ValueError, match="twice"):
        ndcg_at_k(["a", "a", "b"], {"a": 1.0, "b": 2.0}, k=3)


# --------------------------------------------------------------------------------------------
# rating accuracy
# --------------------------------------------------------------------------------------------
def test_rmse_mae_by_hand():
    # errors -1, 0, 2: RMSE = sqrt((1 + 0 + 4) / 3), MAE = 3/3
    assert rmse([3, 4, 5], [4, 4, 3]) == pytest.approx(math.sqrt(5 / 3))
    assert mae([3, 4, 5], [4, 4, 3]) == pytest.approx(1.0)
    assert rmse([2.5], [2.5]) == 0.0
    assert isinstance(rmse([1], [2]), float)


def test_rmse_mae_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.uniform(0.5, 5, 1000)
    p = y + rng.normal(0, 0.9, 1000)
    assert rmse(y, p) == pytest.approx(math.sqrt(mean_squared_error(y, p)), rel=1e-12)
    assert mae(y, p) == pytest.approx(mean_absolute_error(y, p), rel=1e-12)


def test_rmse_errors():
    with pytest.raises(ValueError, match="NaN in y_pred"):
        rmse([1.0, 2.0], [1.0, np.nan])
    with pytest.raises(ValueError, match="NaN in y_true"):
        mae([np.nan, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        rmse([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        mae([], [])


# --------------------------------------------------------------------------------------------
# bad input to the ranking metrics
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, -3, 2.5, True, "5", None])
@pytest.mark.parametrize("metric", [precision_at_k, recall_at_k, hit_at_k, mrr_at_k, map_at_k, ndcg_at_k])
def test_bad_k(metric, k):
    with pytest.raises(ValueError, match="k must be an integer >= 1") as err:
        metric(REC, REL, k=k)
    assert repr(k) in str(err.value)


def test_numpy_int_k_is_fine():
    assert precision_at_k(REC, REL, k=np.int64(5)) == pytest.approx(2 / 5)


@pytest.mark.parametrize("metric", [precision_at_k, recall_at_k, hit_at_k, mrr_at_k, map_at_k, ndcg_at_k])
def test_user_without_relevant_items(metric):
    with pytest.raises(DataError, match="user #1 has no relevant items"):
        metric([REC, ["a"]], [REL, set()], k=5)


@pytest.mark.parametrize("metric", [precision_at_k, recall_at_k, hit_at_k, mrr_at_k, map_at_k, ndcg_at_k])
def test_duplicate_item(metric):
    with pytest.raises(ValueError, match="recommends an item twice"):
        metric(["a", "b", "a"], {"a"}, k=3)


@pytest.mark.parametrize("metric", [precision_at_k, recall_at_k, hit_at_k, mrr_at_k, map_at_k, ndcg_at_k])
def test_mismatched_lengths(metric):
    with pytest.raises(ValueError, match="recommended has 2 users but relevant has 1"):
        metric([["a"], ["b"]], [{"a"}], k=3)
    with pytest.raises(ValueError, match="no users"):
        metric([], [], k=3)


# --------------------------------------------------------------------------------------------
# beyond accuracy
# --------------------------------------------------------------------------------------------
def test_catalog_coverage():
    lists = [["a", "b", "c"], ["b", "c", "d"], ["a", "e"]]
    assert catalog_coverage(lists, catalog_size=10) == pytest.approx(5 / 10)  # {a, b, c, d, e}
    assert catalog_coverage(lists, catalog_size=10, k=1) == pytest.approx(2 / 10)  # {a, b}
    assert catalog_coverage(lists, catalog_size=5) == 1.0
    with pytest.raises(ValueError, match="catalog_size must be positive"):
        catalog_coverage(lists, catalog_size=0)


def test_novelty():
    counts = {"a": 5, "b": 1}
    n_users = 10
    # p_a = 5/10 -> 1 bit; p_b = 1/10 -> log2(10) bits
    assert novelty([["a", "b"]], counts, n_users) == pytest.approx((1 + log2(10)) / 2)
    assert novelty([["a", "b"]], counts, n_users, k=1) == pytest.approx(1.0)
    # an item nobody rated counts as rated once: p = 1/10
    assert novelty([["c"]], counts, n_users) == pytest.approx(log2(10))
    # mean over all recommended items of all users
    assert novelty([["a"], ["a", "b"]], counts, n_users) == pytest.approx((1 + 1 + log2(10)) / 3)
    # an item everyone rated carries no information
    assert novelty([["a"]], {"a": 10}, n_users) == 0.0
    with pytest.raises(ValueError, match="n_users must be positive"):
        novelty([["a"]], counts, 0)
    with pytest.raises(ValueError, match="no recommendations"):
        novelty([[], []], counts, n_users)


def test_intra_list_diversity():
    f = {"a": [1, 0], "b": [0, 1], "c": [1, 1], "z": [0, 0], "a2": [2, 0]}
    s = 1 / math.sqrt(2)  # cos(a, c) = cos(b, c)
    assert intra_list_diversity([["a", "b"]], f) == pytest.approx(1.0)  # orthogonal
    assert intra_list_diversity([["a", "a2"]], f) == pytest.approx(0.0)  # same direction
    assert intra_list_diversity([["a", "c"]], f) == pytest.approx(1 - s)
    # three pairs: (a,b) = 1, (a,c) = (b,c) = 1 - s
    assert intra_list_diversity([["a", "b", "c"]], f) == pytest.approx((1 + 2 * (1 - s)) / 3)
    assert intra_list_diversity([["a", "b", "c"]], f, k=2) == pytest.approx(1.0)
    # mean over users; one-item lists are skipped
    assert intra_list_diversity([["a", "b"], ["a", "a2"], ["c"]], f) == pytest.approx(0.5)
    # a zero vector is at distance 1 from everything
    assert intra_list_diversity([["z", "a"]], f) == pytest.approx(1.0)
    with pytest.raises(KeyError, match="no features"):
        intra_list_diversity([["a", "q"]], f)
    with pytest.raises(ValueError, match="two or more items"):
        intra_list_diversity([["a"], ["b"]], f)


def test_mask_seen_marks_stored_nonzeros_of_the_named_rows():
    scores = np.arange(12.0).reshape(3, 4)
    seen = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=float))
    seen[1, 3] = 0.0  # a stored zero is not "seen"
    out = mask_seen(scores, seen, rows=[2, 0])
    assert out is scores
    assert np.isneginf(scores).tolist() == [[True, False, False, False],
                                            [False, False, False, False],
                                            [False, True, False, True]]
    with pytest.raises(ValueError, match="one seen row per row"):
        mask_seen(scores, seen, rows=[0])

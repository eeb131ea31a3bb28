"""recsys_course.domains: two domains by genre, the overlap table, the cross-domain protocol, per-user ranking
metrics and the source-to-target transfer of users' vectors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import GENRES, ITEM, RATING, TIME, USER
from recsys_course.data import DataError
from recsys_course.domains import (
    SourceToTarget,
    candidate_scores,
    domain_split,
    genre_domains,
    overlap_table,
    per_user_ranking,
)
from recsys_course.metrics import hit_at_k, ndcg_at_k
from recsys_course.models.base import UnknownIdError
from recsys_course.models.baselines import Popularity


@pytest.fixture()
def movies():
    # films 1-2 source (Drama), 3-4 target (Horror), 5 both, 6 neither
    return pd.DataFrame({ITEM: [1, 2, 3, 4, 5, 6],
                         GENRES: [["Drama"], ["Drama", "Romance"], ["Horror"], ["Horror"], ["Drama", "Horror"],
                                  ["Western"]]})


def frame(rows):
    return pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME])


# ---- genre_domains ---------------------------------------------------------------------------
@pytest.mark.parametrize("both, source, target", [("target", [1, 2], [3, 4, 5]), ("source", [1, 2, 5], [3, 4]),
                                                  ("drop", [1, 2], [3, 4])])
def test_genre_domains_places_films_of_both_lists_where_told(movies, both, source, target):
    d = genre_domains(movies, "Drama", ["Horror"], both=both)
    assert list(d.source_items) == source and list(d.target_items) == target
    assert d.n_both == 1 and d.name == "Drama → Horror"
    assert list(d.domain_of([1, 3, 6])) == ["source", "target", ""]


@pytest.mark.parametrize("source, target, both, match", [
    (["Drama"], ["Horrror"], "target", r"unknown genre\(s\) \['Horrror'\].*'Horror'"),
    (["Drama", "Horror"], ["Horror"], "target", "in both source and target"),
    (["Drama"], ["Horror"], "either", "both must be one of"),
    (["Romance"], ["Drama"], "target", "source domain .* has no film"),
    ([], ["Horror"], "target", "non-empty list of genre names"),
])
def test_genre_domains_rejects_bad_lists_with_the_fix(movies, source, target, both, match):
    with pytest.raises(ValueError, match=match):
        genre_domains(movies, source, target, both=both)


def test_overlap_table_counts_by_hand(movies):
    r = frame([(1, 1, 4, 1), (1, 3, 5, 2), (1, 4, 3, 3), (2, 2, 4, 1), (3, 3, 2, 1), (3, 6, 5, 2)])
    table = overlap_table(r, movies, [(["Drama"], ["Horror"])], min_target=2)
    row = table.loc["Drama → Horror"]
    assert row.to_dict() == {"source films": 2, "target films": 3, "films in both lists": 1, "source ratings": 2,
                             "target ratings": 3, "users in both": 1, "users ≥ 2 target": 1}


# ---- the protocol ----------------------------------------------------------------------------
@pytest.fixture()
def history():
    # user 1: target films 3, 4, 5 (in time 30, 10, 20) and source film 1; user 2: one target, one source
    return frame([(1, 3, 5, 30), (1, 4, 2, 10), (1, 5, 4, 20), (1, 1, 4, 99), (2, 3, 4, 5), (2, 2, 3, 6),
                  (2, 6, 5, 7)])


def test_domain_split_keeps_the_first_n_target_ratings_in_time(movies, history):
    d = genre_domains(movies, "Drama", "Horror")
    s = domain_split(history, d, 1, test_after=2, min_target=3, share=1.0)
    assert list(s.users) == [1]
    pairs = set(zip(s.train[USER], s.train[ITEM]))
    assert pairs == {(1, 4), (1, 1), (2, 3), (2, 2)}      # first target (t=10) kept; film 6 in no domain
    assert list(zip(s.test[USER], s.test[ITEM])) == [(1, 3)]   # position 2 on; film 5 (position 1) left out
    assert list(s.candidates) == [3]                           # target films other users rated
    s0 = domain_split(history, d, 0, test_after=2, min_target=3, share=1.0)
    assert s0.test.equals(s.test) and (1, 4) not in set(zip(s0.train[USER], s0.train[ITEM]))


def test_domain_split_draws_the_same_test_users_for_every_n(ml):
    ratings = ml.ratings
    d = genre_domains(ml.movies, "Drama", "Horror")
    a = domain_split(ratings, d, 0, test_after=5, min_target=10, share=0.5, seed=3)
    b = domain_split(ratings, d, 5, test_after=5, min_target=10, share=0.5, seed=3)
    c = domain_split(ratings, d, 5, test_after=5, min_target=10, share=0.5, seed=4)
    assert np.array_equal(a.users, b.users) and a.test.equals(b.test)
    assert np.array_equal(a.candidates, b.candidates)
    assert not np.array_equal(a.users, c.users)
    assert len(b.train) == len(a.train) + 5 * len(a.users)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n": -1}, ValueError, "n must be an integer >= 0"),
    ({"n": 5, "test_after": 3}, ValueError, "test_after must be an integer >= 5"),
    ({"n": 1, "test_after": 3, "min_target": 3}, ValueError, "min_target must be an integer >= 4"),
    ({"n": 0, "share": 0.0}, ValueError, r"share must be a number in \(0, 1\]"),
    ({"n": 0, "min_target": 4}, DataError, "no user has >= 4 target ratings"),
])
def test_domain_split_rejects_bad_settings(movies, history, kwargs, error, match):
    d = genre_domains(movies, "Drama", "Horror")
    with pytest.raises(error, match=match):
        domain_split(history, d, **kwargs)


# ---- per-user metrics ------------------------------------------------------------------------
def test_per_user_ranking_matches_the_course_metrics_and_excludes_seen():
    items = np.array([10, 20, 30, 40])
    users = np.array([1, 2, 3])
    scores = np.array([[4.0, 3, 2, 1], [1, 2, 3, 4], [1, 1, 1, 1]])
    train = frame([(1, 10, 5, 0)])                                   # user 1 saw film 10: it is not ranked
    test = frame([(1, 30, 4, 1), (1, 99, 5, 2), (2, 10, 5, 1), (3, 20, 2, 1)])   # 99: not a candidate
    got = per_user_ranking(scores, users, items, train, test, k=2)
    assert list(got.index) == [1, 2]                                 # user 3 has no relevant test film
    # user 1 ranks 20, 30: one hit at rank 2 out of 2 relevant; user 2 ranks 40, 30: no hit
    assert got.loc[1, "ndcg@2"] == pytest.approx(ndcg_at_k([20, 30], {30, 99}, k=2))
    assert got.loc[1, "ndcg@2"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert got.loc[2, "ndcg@2"] == 0.0 and got.loc[1, "hit@2"] == hit_at_k([20, 30], {30}, k=2) == 1.0
    with pytest.raises(ValueError, match="one row per user"):
        per_user_ranking(scores[:2], users, items, train, test, k=2)


def test_candidate_scores_falls_back_for_unknown_users_and_predicts_films_outside_the_catalogue():
    train = frame([(1, 10, 5, 0), (1, 20, 4, 1), (2, 20, 3, 2)])
    model = SourceToTarget(target_items=[20], n_factors=1).fit(
        pd.concat([train, frame([(1, 30, 4, 3), (2, 30, 5, 4), (2, 40, 2, 5)])]))
    pop = Popularity().fit(train)
    got = candidate_scores(model, [2, 9], [20, 77], fallback=pop)
    np.testing.assert_allclose(got[1], pop.predict([9, 9], [20, 77]))   # unknown user 9: popularity's row
    assert got[0, 0] == pytest.approx(model.predict([2], [20])[0]) and got[0, 1] == -np.inf
    with pytest.raises(UnknownIdError):
        candidate_scores(model, [9], [20])


# ---- SourceToTarget ----------------------------------------------------------------------------
def toy_domains():
    """4 users; source films a, b, c; target films X, Y. User 4 has no target rating (a new target user)."""
    source = [(1, "a", 5), (1, "b", 4), (2, "a", 4), (2, "c", 2), (3, "b", 1), (3, "c", 5), (4, "a", 5), (4, "c", 1)]
    target = [(1, "X", 5), (2, "X", 4), (3, "Y", 5), (1, "Y", 2)]
    rows = [(u, i, float(r), t) for t, (u, i, r) in enumerate(source + target)]
    return frame(rows)


def test_source_to_target_equals_the_formula_by_hand():
    train = toy_domains()
    reg, alpha = 0.5, 0.3
    model = SourceToTarget(target_items=["X", "Y"], n_factors=1, reg=reg, alpha=alpha).fit(train)
    # by hand, k = 1: p_u = r_u v (v: top right singular vector of the source matrix), then one ridge per film
    R = train[~train[ITEM].isin(["X", "Y"])].pivot(index=USER, columns=ITEM, values=RATING).fillna(0).to_numpy()
    v = np.linalg.svd(R)[2][0]
    p = R @ v
    T = train[train[ITEM].isin(["X", "Y"])].pivot(index=USER, columns=ITEM, values=RATING).reindex(
        [1, 2, 3, 4]).fillna(0).to_numpy()
    c = 1 + alpha * T
    q = [(c[:, i] * (T[:, i] > 0) * p).sum() / ((c[:, i] * p ** 2).sum() + reg) for i in range(2)]
    expected = np.outer(p, q)          # scores of users 1-4 on X, Y: sign-free (p and q flip together)
    got = model.predict(np.repeat([1, 2, 3, 4], 2), np.tile(["X", "Y"], 4)).reshape(4, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert np.abs(model.user_factors_[:, 0]) == pytest.approx(np.abs(p))
    assert model.is_target_.sum() == 2 and got[3, 0] > got[3, 1]   # user 4 likes a, not c: closer to user 1


def test_source_to_target_is_deterministic_and_checks_its_input():
    train = toy_domains()
    a = SourceToTarget(target_items=["X", "Y"], n_factors=2, seed=1).fit(train).score([1, 4])
    b = SourceToTarget(target_items=["X", "Y"], n_factors=2, seed=1).fit(train).score([1, 4])
    np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="needs target_items"):
        SourceToTarget().fit(train)
    with pytest.raises(DataError, match="no target rating"):
        SourceToTarget(target_items=["Z"], n_factors=1).fit(train)
    with pytest.raises(ValueError, match="reg must be a finite number > 0"):
        SourceToTarget(target_items=["X"], reg=0.0).fit(train)
    model = SourceToTarget(target_items=["X", "Y"], n_factors=1).fit(train)
    with pytest.raises(UnknownIdError):
        model.recommend([99])
    assert model.predict([99, 1], ["X", "Q"]).tolist() == [0.0, -np.inf]

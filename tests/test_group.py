"""recsys_course.group: the strategies, group lists, GroupRecommender, profile aggregation, the evaluation, the fair
list, simulated group choices and the attention aggregator.

The strategies are checked against a hand-computed table; the recommender on a small synthetic world, where every
base model fits in a fraction of a second.
"""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata, spearmanr

from recsys_course import group as G
from recsys_course.config import GROUP, ITEM, RANK, RATING, SCORE, USER
from recsys_course.metrics import top_k
from recsys_course.models import ALS, EASE, ItemKNN, NotFittedError, Popularity, TextProfile, UnknownIdError
from recsys_course.synthetic import make_synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# --------------------------------------------------------------------------------------------
# the strategies, on a table computed by hand
# --------------------------------------------------------------------------------------------
#              f0   f1   f2   f3   f4
TABLE = np.array([[5., 5., 2., 3., 4.],    # member A
                  [2., 3., 4., 3., 4.],    # member B
                  [2., 2., 3., 3., 1.]])   # member C
# average         (5+2+2)/3=3, (5+3+2)/3=10/3, (2+4+3)/3=3, (3+3+3)/3=3, (4+4+1)/3=3        -> f1
# least misery    min: 2, 2, 2, 3, 1                                                         -> f3
# most pleasure   max: 5, 5, 4, 3, 4  (f0 and f1 tie: the lower position wins)               -> f0
# Borda points (ascending ranks - 1, ties share the mean):
#   A [5,5,2,3,4]: 2->0, 3->1, 4->2, the two 5s share (3+4)/2=3.5  -> [3.5, 3.5, 0, 1, 2]
#   B [2,3,4,3,4]: 2->0, the 3s share 1.5, the 4s share 3.5        -> [0, 1.5, 3.5, 1.5, 3.5]
#   C [2,2,3,3,1]: 1->0, the 2s share 1.5, the 3s share 3.5        -> [1.5, 1.5, 3.5, 3.5, 0]
#   sum                                                            -> [5, 6.5, 7, 6, 5.5]   -> f2
# approval (>= 4) A approves f0 f1 f4, B f2 f4, C none            -> [1, 1, 1, 0, 2]       -> f4
# multiplicative  5*2*2=20, 5*3*2=30, 2*4*3=24, 3*3*3=27, 4*4*1=16                          -> f1
# average without misery (>= 3): only f3 has no member below 3   -> [-inf, -inf, -inf, 3, -inf]
# average without misery (>= 2): f4 has C at 1                   -> [3, 10/3, 3, 3, -inf]
EXPECTED = {
    "average": [3, 10 / 3, 3, 3, 3],
    "least_misery": [2, 2, 2, 3, 1],
    "most_pleasure": [5, 5, 4, 3, 4],
    "borda": [5, 6.5, 7, 6, 5.5],
    "approval": [1, 1, 1, 0, 2],
    "multiplicative": [20, 30, 24, 27, 16],
}
PICKS = {"average": 1, "least_misery": 3, "most_pleasure": 0, "borda": 2, "approval": 4, "multiplicative": 1}
INF = -np.inf


def test_every_strategy_on_the_hand_table():
    for name, want in EXPECTED.items():
        params = {"threshold": 4.0} if name == "approval" else {}
        got = G.aggregate(TABLE, name, **params)
        assert np.allclose(got, want), name
        assert top_k(got[None, :], 1)[0, 0] == PICKS[name], name
        assert np.allclose(getattr(G, name)(TABLE, **params), want), name  # the function equals the entry point
    assert np.array_equal(G.aggregate(TABLE, "average_without_misery", threshold=3), [INF, INF, INF, 3, INF])
    assert np.allclose(G.aggregate(TABLE, "average_without_misery", threshold=2), [3, 10 / 3, 3, 3, INF])
    # the strategies disagree: five films, five different picks
    assert len({PICKS[n] for n in ("average", "least_misery", "most_pleasure", "borda", "approval")}) == 5
    assert set(G.STRATEGIES) == set(EXPECTED) | {"average_without_misery"}


def test_minus_inf_is_not_a_candidate_and_stays_minus_inf():
    scores = np.column_stack([TABLE, [1.0, INF, 5.0]])  # f5: member B must not get it
    for name in G.STRATEGIES:
        params = {"threshold": 2.0} if name in G.THRESHOLD_STRATEGIES else {}
        got = G.aggregate(scores, name, **params)
        assert got[5] == INF, name
        # the other films score as without f5: Borda's points run over the candidates only
        assert np.array_equal(got[:5], G.aggregate(TABLE, name, **params)), name
    assert np.array_equal(G.average(np.full((2, 3), INF)), [INF, INF, INF])


def test_borda_ties_share_their_points():
    assert np.array_equal(G.borda([[1.0, 1.0, 1.0]]), [1.0, 1.0, 1.0])          # (0+1+2)/3 each
    assert np.array_equal(G.borda([[3.0, 1.0, 3.0, 2.0]]), [2.5, 0.0, 2.5, 1.0])
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, (5, 40)).astype(float)                           # many ties
    assert np.allclose(G.borda(scores), (rankdata(scores, method="average", axis=1) - 1).sum(0))


def test_approval_counts_scores_at_or_above_the_threshold():
    scores = [[3.0, 3.5, 4.0], [4.0, 3.49, 1.0]]
    assert np.array_equal(G.approval(scores, 3.5), [1, 1, 1])
    assert np.array_equal(G.approval(scores, 4.0), [1, 0, 1])
    assert np.array_equal(G.approval(scores, 0.0), [2, 2, 2])


def test_aggregate_errors():
    with pytest.raises(ValueError, match="least_misery"):  # lists the valid strategies
        G.aggregate(TABLE, "median")
    with pytest.raises(TypeError, match="needs a threshold"):
        G.aggregate(TABLE, "approval")
    with pytest.raises(TypeError, match="takes no threshold"):
        G.aggregate(TABLE, "average", threshold=3)
    with pytest.raises(TypeError, match="unknown parameter"):
        G.aggregate(TABLE, "approval", threshold=3, treshold=3)
    with pytest.raises(ValueError, match="threshold 7 is outside the rating scale 0.5–5"):
        G.aggregate(TABLE, "approval", threshold=7, scale=(0.5, 5.0))
    assert np.array_equal(G.aggregate(TABLE, "approval", threshold=5, scale=(0.5, 5.0)), [1, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        G.aggregate(TABLE, "approval", threshold="high")
    with pytest.raises(ValueError, match="NaN"):
        G.aggregate([[1.0, np.nan]], "average")
    with pytest.raises(ValueError, match="2-D"):
        G.aggregate([1.0, 2.0], "average")
    with pytest.raises(ValueError, match="empty"):
        G.aggregate(np.zeros((0, 3)), "average")
    with pytest.raises(ValueError, match=r"\+inf"):
        G.aggregate([[np.inf, 1.0]], "average")
    with pytest.raises(ValueError, match="positive scores.*rating model.*shift"):
        G.aggregate([[1.0, -0.5], [2.0, 1.0]], "multiplicative")
    with pytest.raises(ValueError, match="positive scores"):
        G.multiplicative([[1.0, 0.0]])
    assert np.array_equal(G.multiplicative([[2.0, INF, 1.0], [3.0, -1.0, 2.0]]), [6.0, INF, 2.0])  # -inf: ignored


# --------------------------------------------------------------------------------------------
# group lists
# --------------------------------------------------------------------------------------------
def test_as_groups_two_forms():
    frame = G.as_groups({"a": [3, 1], 7: [2]})
    assert list(frame.columns) == [GROUP, USER]
    assert frame[GROUP].tolist() == ["a", "a", 7] and frame[USER].tolist() == [3, 1, 2]
    same = G.as_groups(pd.DataFrame({USER: [3, 1, 2], GROUP: ["a", "a", 7], "similarity": [0.1, 0.1, 0.0]}))
    pd.testing.assert_frame_equal(same[[GROUP, USER]], frame)
    assert "similarity" in same.columns  # extra columns are kept
    with pytest.raises(ValueError, match="group 'b' is empty"):
        G.as_groups({"a": [1], "b": []})
    with pytest.raises(ValueError, match="user 2 is listed twice in group 'a'"):
        G.as_groups({"a": [1, 2, 2]})
    with pytest.raises(ValueError, match=r"no column\(s\) \['groupId'\].*mapping"):
        G.as_groups(pd.DataFrame({USER: [1]}))
    with pytest.raises(TypeError, match="DataFrame with columns groupId, userId"):
        G.as_groups([[1, 2], [3]])
    with pytest.raises(TypeError, match=r"\{'a': \[5\]\}"):
        G.as_groups({"a": 5})
    with pytest.raises(ValueError, match="empty"):
        G.as_groups({})


@pytest.fixture(scope="module")
def clustered():
    """60 users from 3 taste clusters, 80 films."""
    return make_synthetic(n_users=60, n_items=80, n_factors=4, ratings_per_user=20, n_groups=3, seed=1)


def test_make_groups_is_seeded_and_members_are_distinct(clustered):
    train = clustered.ratings
    for kind in G.GROUP_KINDS:
        a = G.make_groups(train, 10, 4, kind, seed=3)
        pd.testing.assert_frame_equal(a, G.make_groups(train, 10, 4, kind, seed=3))
        assert not a.equals(G.make_groups(train, 10, 4, kind, seed=4))
        assert list(a.columns) == [GROUP, USER, G.SIMILARITY]
        assert a[GROUP].tolist() == list(np.repeat(np.arange(10), 4))
        assert (a.groupby(GROUP)[USER].nunique() == 4).all()
        assert a.groupby(GROUP)[G.SIMILARITY].nunique().eq(1).all()  # one value per group, on every member row
    pool = np.arange(1, 61, 3)
    b = G.make_groups(train, 30, 5, "similar", seed=0, users=pool)
    assert set(b[USER]) <= set(pool)
    with pytest.raises(ValueError, match="size=21 but the pool has only 20 users"):
        G.make_groups(train, 1, 21, users=pool)
    with pytest.raises(ValueError, match="have no ratings in train"):
        G.make_groups(train, 1, 2, users=[1, 999])
    with pytest.raises(ValueError, match="size must be an integer >= 2"):
        G.make_groups(train, 1, 1)
    with pytest.raises(ValueError, match="kind must be one of"):
        G.make_groups(train, 1, 2, "friends")


def test_similar_groups_are_more_homogeneous_than_random_than_dissimilar(clustered):
    tastes = pd.DataFrame(clustered.user_factors, index=np.arange(1, 61))
    mean = {kind: G.make_groups(None, 40, 4, kind, seed=0, user_vectors=tastes)[G.SIMILARITY].mean()
            for kind in G.GROUP_KINDS}
    assert mean["similar"] > mean["random"] > mean["dissimilar"]
    # similar groups mostly come from one taste cluster, dissimilar ones mostly do not
    groups = G.make_groups(None, 40, 4, "similar", seed=0, user_vectors=tastes)
    one_cluster = groups.groupby(GROUP)[USER].agg(lambda u: len(set(clustered.user_group[u - 1])) == 1)
    assert one_cluster.mean() > 0.7
    groups = G.make_groups(None, 40, 3, "dissimilar", seed=0, user_vectors=tastes)
    assert groups.groupby(GROUP)[USER].agg(lambda u: len(set(clustered.user_group[u - 1])) == 3).mean() > 0.5
    # the homogeneity is the mean pairwise cosine of the members
    unit = clustered.user_factors / np.linalg.norm(clustered.user_factors, axis=1, keepdims=True)
    first = groups[groups[GROUP] == 0][USER].to_numpy() - 1
    cos = unit[first] @ unit[first].T
    assert groups[G.SIMILARITY].iloc[0] == pytest.approx((cos.sum() - 3) / 6)
    # on ratings too (cosine of rating rows)
    mean = {kind: G.make_groups(clustered.ratings, 40, 4, kind, seed=0)[G.SIMILARITY].mean()
            for kind in G.GROUP_KINDS}
    assert mean["similar"] > mean["random"] > mean["dissimilar"]


# --------------------------------------------------------------------------------------------
# GroupRecommender
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world():
    return make_synthetic(n_users=40, n_items=60, n_factors=4, ratings_per_user=15, seed=0)


@pytest.fixture(scope="module")
def ease(world):
    return EASE(reg=20.0).fit(world.ratings)


GROUPS = {"g1": [1, 2, 3], "g2": [4, 5], "g3": [6, 7, 8, 9]}


def test_base_model_must_be_fitted_and_members_known(world, ease):
    with pytest.raises(NotFittedError, match="fit"):
        G.GroupRecommender(EASE())
    with pytest.raises(TypeError, match="fitted model of the course"):
        G.GroupRecommender("EASE")
    with pytest.raises(UnknownIdError, match=r"\[999\].*unknown='drop'.*refit"):
        G.GroupRecommender(ease).recommend({"g": [1, 999]})
    dropped = G.GroupRecommender(ease, unknown="drop").recommend({"g": [1, 999], "h": [2]})
    alone = G.GroupRecommender(ease).recommend({"g": [1], "h": [2]})
    pd.testing.assert_frame_equal(dropped, alone)
    with pytest.raises(ValueError, match=r"\['g'\] have no member"):
        G.GroupRecommender(ease, unknown="drop").recommend({"g": [998, 999], "h": [2]})
    # a model that handles new users scores them with its fallback
    pop = Popularity().fit(world.ratings)
    assert len(G.GroupRecommender(pop).recommend({"g": [1, 999]}, k=3)) == 3
    with pytest.raises(ValueError, match="strategy must be one of"):
        G.GroupRecommender(ease, "median")
    with pytest.raises(ValueError, match="exclude_seen must be one of"):
        G.GroupRecommender(ease, exclude_seen="some")


def test_recommend_frame(world, ease):
    recs = G.GroupRecommender(ease).recommend(GROUPS, k=5)
    assert list(recs.columns) == [GROUP, ITEM, SCORE, RANK]
    assert recs[GROUP].tolist() == ["g1"] * 5 + ["g2"] * 5 + ["g3"] * 5
    assert recs[ITEM].dtype == np.int64 and recs[SCORE].dtype == np.float64 and recs[RANK].dtype == np.int64
    assert (recs.groupby(GROUP)[RANK].apply(list) == pd.Series({g: [1, 2, 3, 4, 5] for g in GROUPS})).all()
    assert recs.groupby(GROUP)[SCORE].apply(lambda s: s.is_monotonic_decreasing).all()
    seen = set(zip(world.ratings[USER], world.ratings[ITEM]))
    for gid, members in GROUPS.items():
        films = recs.loc[recs[GROUP] == gid, ITEM]
        assert not any((u, f) in seen for u in members for f in films)


def test_exclude_seen_variants(world, ease):
    rated = world.ratings.groupby(USER)[ITEM].apply(set)
    groups = {"g": [1, 2]}
    k = ease.n_items
    by_any = set(G.GroupRecommender(ease).recommend(groups, k)[ITEM])
    by_all = set(G.GroupRecommender(ease, exclude_seen="all").recommend(groups, k)[ITEM])
    by_none = set(G.GroupRecommender(ease, exclude_seen="none").recommend(groups, k)[ITEM])
    modelled = set(ease.item_ids_[ease.modelled_])
    assert by_none == modelled
    assert by_any == modelled - rated[1] - rated[2]
    assert by_all == modelled - (rated[1] & rated[2])
    _, scores = G.GroupRecommender(ease).group_scores(groups)
    assert np.isneginf(scores[0, ease.item_positions(list(rated[1]))]).all()


def test_a_group_of_one_gets_the_base_models_list(world, ease):
    users = [1, 5, 17]
    mine = G.GroupRecommender(ease, "average").recommend({u: [u] for u in users}, k=7)
    base = ease.recommend(users, k=7)
    pd.testing.assert_frame_equal(mine.rename(columns={GROUP: USER}), base)
    # profile aggregation of one member is the base model itself
    profile = G.GroupRecommender(ease, "profile").recommend({u: [u] for u in users}, k=7)
    pd.testing.assert_frame_equal(profile.rename(columns={GROUP: USER}), base, rtol=1e-5)
    # so is the fair list (min-max normalisation does not change one member's order)
    fair = G.GroupRecommender(ease, "fair", balance=0.3).recommend({u: [u] for u in users}, k=7)
    assert fair[ITEM].tolist() == base[ITEM].tolist()


def test_profile_aggregation_of_ease_is_average_aggregation(ease):
    # EASE is linear: (sum of the members' rows) @ B = M * the average of their scores, so the lists are equal
    average = G.GroupRecommender(ease, "average").recommend(GROUPS, k=10)
    profile = G.GroupRecommender(ease, "profile").recommend(GROUPS, k=10)
    assert profile[ITEM].tolist() == average[ITEM].tolist()
    sizes = profile[GROUP].map({g: len(m) for g, m in GROUPS.items()})
    assert np.allclose(profile[SCORE], average[SCORE] * sizes, rtol=1e-5)


def test_profile_scores_als_and_text_profile(world):
    als = ALS(n_factors=4, n_iters=3).fit(world.ratings)
    one = G.profile_scores(als, {u: [u] for u in (1, 2)})
    assert np.allclose(one, als.score([1, 2]))
    # the merged ridge fold-in, from the members' own normal equations
    two = G.profile_scores(als, {"g": [1, 2]})
    Q, lam = als.item_factors_, als.reg
    grams = [Q[als.seen_[m].indices].T @ Q[als.seen_[m].indices] for m in als.user_positions([1, 2])]
    rhs = sum((g + lam * np.eye(4)) @ als.user_factors_[m] for g, m in zip(grams, als.user_positions([1, 2])))
    p = np.linalg.solve(sum(grams) + lam * np.eye(4), rhs)
    want = als.mu_ + als.user_bias_[als.user_positions([1, 2])].mean() + als.item_bias_ + Q @ p
    assert np.allclose(two[0], want)

    class HashEncoder:  # a deterministic stand-in for the sentence encoder: a vector per text
        def encode(self, texts, batch_size=32):
            out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts])
            return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)

    texts = world.movies.set_index(ITEM)["title"]
    text = TextProfile(item_text=texts, encoder=HashEncoder()).fit(world.ratings)
    assert np.allclose(G.profile_scores(text, {u: [u] for u in (1, 2)}), text.score([1, 2]))
    merged = G.profile_scores(text, {"g": [1, 2]})[0]
    r = world.ratings[world.ratings[USER].isin([1, 2])]
    d = (r[RATING] - r.groupby(USER)[RATING].transform("mean")).clip(lower=0).to_numpy()  # each member's own d
    vectors = text.catalogue_vectors_
    prof = (d[:, None] * vectors[text.item_positions(r[ITEM])]).sum(0)
    assert np.allclose(merged, vectors @ prof / np.linalg.norm(prof))
    # GroupRecommender(base, "profile") uses it
    recs = G.GroupRecommender(als, "profile").recommend({"g": [1, 2]}, k=3)
    masked = np.where(als.seen_[als.user_positions([1, 2])].toarray().any(0), -np.inf, two[0])
    assert recs[ITEM].tolist() == als.item_ids_[top_k(masked[None], 3)[0]].tolist()


def test_profile_on_an_unsupported_model(world):
    knn = ItemKNN().fit(world.ratings)
    with pytest.raises(TypeError, match="EASE, TextProfile, ALS.*score strategy"):
        G.profile_scores(knn, GROUPS)
    with pytest.raises(TypeError, match="EASE, TextProfile, ALS"):
        G.GroupRecommender(knn, "profile")


def test_thresholds_are_checked_against_the_rating_scale(world, ease):
    als = ALS(n_factors=4, n_iters=2).fit(world.ratings)
    with pytest.raises(ValueError, match="outside the rating scale 0.5–5"):
        G.GroupRecommender(als, "approval", threshold=7)
    with pytest.raises(TypeError, match="needs a threshold"):
        G.GroupRecommender(als, "average_without_misery")
    recs = G.GroupRecommender(als, "average_without_misery", threshold=3.0).recommend(GROUPS, k=3)
    scores = als.score(GROUPS["g1"])
    top = recs.loc[recs[GROUP] == "g1", ITEM]
    assert (scores[:, als.item_positions(top)] >= 3.0).all()
    G.GroupRecommender(ease, "approval", threshold=-7)  # EASE's scores are not ratings: no scale to check
    with pytest.raises(ValueError, match="balance must be"):
        G.GroupRecommender(ease, "fair", balance=1.5)
    with pytest.raises(TypeError, match="only balance"):
        G.GroupRecommender(ease, "fair", threshold=1)
    with pytest.raises(ValueError, match="use .recommend"):
        G.GroupRecommender(ease, "fair").group_scores(GROUPS)


def test_every_strategy_runs_through_the_recommender(world):
    als = ALS(n_factors=4, n_iters=2).fit(world.ratings)  # ratings: positive, so multiplicative works too
    for strategy in G.GROUP_STRATEGIES:
        params = {"threshold": 2.0} if strategy in G.THRESHOLD_STRATEGIES else {}
        recs = G.GroupRecommender(als, strategy, **params).recommend(GROUPS, k=4)
        assert len(recs) == 12 and recs[GROUP].nunique() == 3, strategy


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------
def test_evaluate_groups_by_hand():
    recs = pd.DataFrame({GROUP: ["g1"] * 3 + ["g2"], ITEM: [10, 20, 30, 10], SCORE: [3.0, 2.0, 1.0, 1.0],
                         RANK: [1, 2, 3, 1]})
    groups = pd.DataFrame({GROUP: ["g1", "g1", "g2", "g2", "g3"], USER: [1, 2, 3, 4, 5],
                           "similarity": [0.5, 0.5, 0.1, 0.1, 0.0]})
    test = pd.DataFrame({USER: [1, 1, 2, 2, 3, 4, 5], ITEM: [20, 40, 10, 30, 10, 99, 10],
                         RATING: [5.0, 2.0, 4.0, 4.5, 3.0, 4.0, 1.0]})
    members, summary = G.evaluate_groups(recs, groups, test, k=3)
    # user 1: relevant {20} at rank 2 -> 1/log2(3) = 0.6309; IDCG = 1
    # user 2: relevant {10, 30} at ranks 1 and 3 -> (1 + 1/2) / (1 + 1/log2(3)) = 1.5 / 1.6309 = 0.9197
    # user 3: no relevant test film (a 3.0) -> left out; user 4: relevant {99}, not listed -> 0
    # user 5 (group g3): nothing relevant -> left out, and so is g3 from the summary
    assert members[USER].tolist() == [1, 2, 4]
    assert np.allclose(members["ndcg"], [1 / np.log2(3), 1.5 / (1 + 1 / np.log2(3)), 0.0])
    assert members["hit"].tolist() == [1.0, 1.0, 0.0]
    assert summary[GROUP].tolist() == ["g1", "g2"]
    g1 = summary.iloc[0]
    assert g1["mean_ndcg"] == pytest.approx((0.63093 + 0.91972) / 2, abs=1e-4)
    assert g1["min_ndcg"] == pytest.approx(0.63093, abs=1e-4) and g1["spread"] == pytest.approx(0.28879, abs=1e-4)
    assert summary["nothing_relevant"].tolist() == [0.0, 1.0]
    assert summary["size"].tolist() == [2, 2] and summary["n_evaluated"].tolist() == [2, 1]
    assert summary["similarity"].tolist() == [0.5, 0.1]
    assert (summary["min_ndcg"] <= summary["mean_ndcg"]).all() and (summary["mean_ndcg"] <= summary["max_ndcg"]).all()
    means = G.summarise(summary)
    assert list(means.index) == ["mean_ndcg", "min_ndcg", "spread", "nothing_relevant"]
    assert means["nothing_relevant"] == 0.5
    # every test film relevant
    members, summary = G.evaluate_groups(recs, groups, test, k=3, relevance_threshold=None)
    assert members[USER].tolist() == [1, 2, 3, 4, 5]      # users 3 and 5 now have a relevant film
    assert members["ndcg"].iloc[2] == 1.0 and members["ndcg"].iloc[4] == 0.0  # g3 has no list: nothing found
    assert summary[GROUP].tolist() == ["g1", "g2", "g3"]
    with pytest.raises(ValueError, match="recs has no column"):
        G.evaluate_groups(recs.drop(columns=RANK), groups, test)


def test_true_satisfaction(world):
    truth = world.true_scores()
    own = np.argsort(-truth[0], kind="stable")[:5]       # user 1's own top 5
    worst = np.argsort(truth[0], kind="stable")[:5]
    recs = pd.DataFrame({GROUP: ["a"] * 5 + ["b"] * 5, ITEM: np.r_[own, worst] + 1, RANK: np.tile(np.arange(1, 6), 2)})
    sat = G.true_satisfaction(recs, {"a": [1, 2], "b": [1]}, truth)
    assert list(sat.columns) == [GROUP, USER, "sat"]
    assert sat["sat"].iloc[0] == pytest.approx(1.0)       # a member's own top k
    assert sat["sat"].iloc[1] < 1.0 and sat["sat"].iloc[2] < 0  # worse than a random list
    summary = G.group_summary(sat, {"a": [1, 2], "b": [1]})
    assert {"mean_sat", "min_sat", "spread", "size"} <= set(summary.columns)
    assert list(G.summarise(summary).index) == ["mean_sat", "min_sat", "spread"]
    # candidates: excluding the film changes the baseline
    exclude = np.zeros_like(truth, dtype=bool)
    exclude[0, own[0]] = True
    again = G.true_satisfaction(recs, {"a": [1]}, truth, exclude=exclude)
    assert again["sat"].iloc[0] != pytest.approx(1.0)
    with pytest.raises(ValueError, match="userId"):
        G.true_satisfaction(recs, {"a": [999]}, truth)


# --------------------------------------------------------------------------------------------
# the fair list
# --------------------------------------------------------------------------------------------
def test_fair_list_raises_the_worst_off_member():
    #            f0   f1   f2   f3   f4     (already min 0 / max 1 per member, so normalised = raw)
    A = [0.3, 0.5, 1.0, 0.0, 0.9]
    B = [0.0, 0.4, 0.2, 1.0, 0.2]
    scores = np.array([A, B])
    # average: [0.15, 0.45, 0.6, 0.5, 0.55] -> top 2 = f2, f4; sat A = 1.9/1.9 = 1, B = 0.4/1.4 = 0.286
    assert top_k(G.average(scores)[None], 2)[0].tolist() == [2, 4]
    # fair, step 1 (each one's best single film sums to 1): min(A, B) = 0, .4, .2, 0, .2 -> f1
    # step 2 (best two: A 1.9, B 1.4; so far A .5, B .4):
    #   f0 min(.8/1.9, .4/1.4) = .286; f2 min(1.5/1.9, .6/1.4) = .429; f3 min(.5/1.9, 1) = .263;
    #   f4 min(1.4/1.9, .6/1.4) = .429 -> f2 and f4 tie: the lower position, f2
    picks, objective = G.fair_list(scores, 2, return_objective=True)
    assert picks.tolist() == [1, 2]
    assert np.allclose(objective, [0.4, 0.6 / 1.4])
    assert min(0.4 / 1.4, 1.0) < objective[-1]          # the worst-off member is better off than with average
    # balance = 1 (the mean satisfaction) is not the average strategy: step 1 means .15 .45 .6 .5 .55 -> f2;
    # step 2 (so far A 1, B .2): f0 (1.3/1.9 + .2/1.4)/2 = .414, f1 (1.5/1.9 + .6/1.4)/2 = .609,
    #   f3 (1/1.9 + 1.2/1.4)/2 = .692, f4 (1.9/1.9 + .4/1.4)/2 = .643 -> f3, where average takes f4
    assert G.fair_list(scores, 2, balance=1.0).tolist() == [2, 3]
    # -inf films are never listed; a short candidate set gives a short list
    assert G.fair_list([[1.0, INF, 0.5]], 5).tolist() == [0, 2]
    with pytest.raises(ValueError, match="balance must be"):
        G.fair_list(scores, 2, balance=2.0)


# --------------------------------------------------------------------------------------------
# group choices and the attention aggregator
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def choice_world():
    world = make_synthetic(n_users=60, n_items=80, n_factors=4, ratings_per_user=10, seed=2)
    truth = world.true_scores()
    groups = G.make_groups(None, 200, 3, "random", seed=0,
                           user_vectors=pd.DataFrame(world.user_factors, index=np.arange(1, 61)))
    choices, influence = G.simulate_group_choices(truth, groups, rule="leader", n_candidates=10,
                                                  n_choices_per_group=8, seed=0)
    return world, truth, groups, choices, influence


def test_simulated_choices(choice_world):
    world, truth, groups, choices, influence = choice_world
    assert list(choices.columns) == [GROUP, "choice", "candidates", "chosen"]
    assert len(choices) == 1600 and influence.shape == (60,) and (influence > 0).all()
    again, influence2 = G.simulate_group_choices(truth, groups, rule="leader", n_candidates=10,
                                                 n_choices_per_group=8, seed=0)
    assert again["chosen"].equals(choices["chosen"]) and np.array_equal(influence, influence2)
    assert all(c in cands and len(set(cands)) == 10 for c, cands in zip(choices["chosen"], choices["candidates"]))
    # the leader rule is the influence-weighted average, so that strategy with the true weights is never wrong;
    # least misery is followed exactly by a least-misery group
    misery, _ = G.simulate_group_choices(truth, groups, rule="least_misery", n_candidates=10, seed=1)
    assert G.strategy_choice_accuracy(misery, groups, truth, "least_misery") == 1.0
    assert G.strategy_choice_accuracy(choices, groups, truth, "average") < 0.95
    with pytest.raises(ValueError, match="rule must be one of"):
        G.simulate_group_choices(truth, groups, rule="dictator")


def test_attention_recovers_the_leader_and_beats_the_average(choice_world):
    world, truth, groups, choices, influence = choice_world
    train, held_out = choices[choices["choice"] < 6], choices[choices["choice"] >= 6]
    model = G.AttentionAggregator(lr=0.03, verbose=False)
    model.fit(train, groups, world.user_factors, world.item_factors)
    in_groups = np.unique(groups[USER]) - 1
    rho = spearmanr(model.user_logit_[in_groups], influence[in_groups]).statistic
    assert rho > 0.5
    learned = (model.choose(held_out, groups) == held_out["chosen"].to_numpy()).mean()
    assert learned > G.strategy_choice_accuracy(held_out, groups, truth, "average")
    weights = model.attention(groups)
    assert list(weights.columns) == [GROUP, USER, "weight"]
    assert np.allclose(weights.groupby(GROUP)["weight"].sum(), 1.0)
    # the most influential member of a group gets the most attention, more often than not
    top_weight = weights.loc[weights.groupby(GROUP)["weight"].idxmax(), USER].to_numpy()
    top_influence = groups.assign(w=influence[groups[USER] - 1]).pipe(lambda f: f.loc[f.groupby(GROUP)["w"].idxmax()])
    assert (top_weight == top_influence[USER].to_numpy()).mean() > 0.6
    assert model.history_.n_epochs >= 1


def test_attention_is_deterministic_and_checks_its_input(choice_world):
    world, truth, groups, choices, influence = choice_world
    part = choices[choices["choice"] < 2]

    def fit():
        return G.AttentionAggregator(n_factors=4, n_epochs=3, verbose=False).fit(
            part, groups, world.user_factors, world.item_factors)

    a, b = fit(), fit()
    pd.testing.assert_frame_equal(a.attention(groups), b.attention(groups))
    with pytest.raises(NotFittedError):
        G.AttentionAggregator().attention(groups)
    with pytest.raises(ValueError, match="4 columns but item_vectors 3"):
        G.AttentionAggregator(verbose=False).fit(part, groups, world.user_factors, world.item_factors[:, :3])
    bad = part.assign(chosen=-1)
    with pytest.raises(ValueError, match="not among their candidates"):
        G.AttentionAggregator(verbose=False).fit(bad, groups, world.user_factors, world.item_factors)
    with pytest.raises(ValueError, match="n_factors must be an integer >= 1"):
        G.AttentionAggregator(n_factors=0, verbose=False).fit(part, groups, world.user_factors, world.item_factors)


# --------------------------------------------------------------------------------------------
# normalising members' scores (a ranking model's scores are not on one scale)
# --------------------------------------------------------------------------------------------
def test_rank_normalise_gives_percentiles_and_average_of_them_is_borda():
    got = G.rank_normalise(TABLE)
    # member A [5, 5, 2, 3, 4]: points [3.5, 3.5, 0, 1, 2] -> (points + 1) / 5
    assert np.allclose(got[0], [0.9, 0.9, 0.2, 0.4, 0.6])
    assert np.allclose(got, (np.array([[3.5, 3.5, 0, 1, 2], [0, 1.5, 3.5, 1.5, 3.5], [1.5, 1.5, 3.5, 3.5, 0]]) + 1) / 5)
    assert np.allclose(G.average(got), G.borda(TABLE) / 15 + 1 / 5)   # the average of percentiles is Borda
    with_minus = G.rank_normalise(np.column_stack([TABLE, [1.0, INF, 5.0]]))
    assert np.isneginf(with_minus[:, 5]).all() and np.allclose(with_minus[:, :5], got)  # over the candidates only
    assert (G.rank_normalise(np.array([[2.0, -7.0, 0.5]])) > 0).all()       # positive: multiplicative can use it


def test_normalise_in_the_recommender(world, ease):
    k = 5
    plain = G.GroupRecommender(ease, "borda").recommend(GROUPS, k)
    ranked = G.GroupRecommender(ease, "average", normalise="rank").recommend(GROUPS, k)
    assert ranked[ITEM].tolist() == plain[ITEM].tolist()
    # thresholds are percentiles: approval of the top 20 % of each member's candidates
    recs = G.GroupRecommender(ease, "approval", normalise="rank", threshold=0.8).recommend(GROUPS, k)
    _, scores = G.GroupRecommender(ease, "average").group_scores(GROUPS)  # just to get the candidate mask
    members = ease.score(GROUPS["g1"])
    members[:, ~np.isfinite(scores[0])] = -np.inf
    want = G.approval(G.rank_normalise(members), threshold=0.8)
    assert recs.loc[recs[GROUP] == "g1", ITEM].tolist() == ease.item_ids_[top_k(want[None], k)[0]].tolist()
    # multiplicative needs positive scores: EASE's are not, their percentiles are
    with pytest.raises(ValueError, match="positive"):
        G.GroupRecommender(ease, "multiplicative").recommend(GROUPS, k)
    assert len(G.GroupRecommender(ease, "multiplicative", normalise="rank").recommend(GROUPS, k)) == 3 * k
    with pytest.raises(ValueError, match="outside the rating scale 0–1"):
        G.GroupRecommender(ease, "approval", normalise="rank", threshold=3.5)
    with pytest.raises(ValueError, match="normalise must be one of"):
        G.GroupRecommender(ease, "average", normalise="zscore")
    with pytest.raises(ValueError, match="score strategies only"):
        G.GroupRecommender(ease, "fair", normalise="rank")
    assert "normalise='rank'" in repr(G.GroupRecommender(ease, "borda", normalise="rank"))

"""recsys_course.attacks: push-attack profiles, the target's hit ratio, the profile statistics and the detector."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course import attacks
from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.data import toy_ratings
from recsys_course.models import EASE, ItemKNN, Popularity
from recsys_course.synthetic import make_synthetic


@pytest.fixture(scope="module")
def synth():
    return make_synthetic(n_users=120, n_items=150, ratings_per_user=20, seed=3).ratings


# ---- inject --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", attacks.KINDS)
def test_inject_appends_well_formed_fake_profiles(synth, kind):
    targets = attacks.pick_targets(synth, 2, min_ratings=1, max_ratings=10, seed=0)
    attacked, fakes = attacks.inject(synth, targets, kind, 0.05, filler=0.1, n_popular=3, seed=1)
    n_real = synth[USER].nunique()
    assert len(fakes) == 2 * round(0.05 * n_real)  # one group of size × n_real per target
    assert not np.isin(fakes, synth[USER].unique()).any()
    pd.testing.assert_frame_equal(attacked.iloc[:len(synth)], synth)
    fake = attacked.iloc[len(synth):]
    assert set(fake[USER]) == set(fakes)
    assert not fake.duplicated([USER, ITEM]).any()
    assert fake[TIME].min() > synth[TIME].max()
    lo, hi = synth[RATING].min(), synth[RATING].max()
    assert fake[RATING].between(lo, hi).all()
    n_fill = round(0.1 * synth[ITEM].nunique())
    extra = 3 if kind == "bandwagon" else 0
    assert (fake.groupby(USER).size() == 1 + extra + n_fill).all()
    # each group rates its own target at the top of the scale and never the other group's target
    first, second = fakes[:len(fakes) // 2], fakes[len(fakes) // 2:]
    g1 = fake[fake[USER].isin(first)]
    assert (g1.loc[g1[ITEM] == targets[0], RATING] == hi).sum() == len(first)
    assert not g1[ITEM].eq(targets[1]).any()
    assert fake[fake[USER].isin(second) & fake[ITEM].eq(targets[1])][RATING].eq(hi).all()
    if kind == "bandwagon":
        top3 = synth[ITEM].value_counts().index[:3]
        assert (fake[fake[ITEM].isin(top3)][RATING] == hi).all()
        assert fake[ITEM].isin(top3).sum() == 3 * len(fakes)


def test_inject_sizes_match_the_course_numbers(ratings):
    target = attacks.pick_targets(ratings, 1, seed=0)
    for size, n in [(0.01, 6), (0.03, 18), (0.05, 30)]:
        _, fakes = attacks.inject(ratings, target, "random", size, seed=0)
        assert len(fakes) == n


def test_average_attack_fills_around_each_films_mean(synth):
    target = attacks.pick_targets(synth, 1, min_ratings=1, max_ratings=10, seed=0)
    attacked, fakes = attacks.inject(synth, target, "average", 0.5, filler=0.5, seed=0)
    fake = attacked[attacked[USER].isin(fakes) & attacked[ITEM].ne(target[0])]
    means = synth.groupby(ITEM)[RATING].mean()
    gap_avg = (fake[RATING] - means.reindex(fake[ITEM]).to_numpy()).abs().mean()
    attacked_r, fakes_r = attacks.inject(synth, target, "random", 0.5, filler=0.5, seed=0)
    fake_r = attacked_r[attacked_r[USER].isin(fakes_r) & attacked_r[ITEM].ne(target[0])]
    gap_rand = (fake_r[RATING] - means.reindex(fake_r[ITEM]).to_numpy()).abs().mean()
    assert gap_avg < gap_rand


def test_inject_rounds_to_the_scale_step_and_handles_string_ids():
    toy = toy_ratings()  # integer stars, string user ids
    attacked, fakes = attacks.inject(toy, "A3", "average", 0.4, filler=0.5, seed=0)
    assert list(fakes) == ["fake-0", "fake-1"]
    fake = attacked[attacked[USER].isin(fakes)]
    assert np.all(fake[RATING] == np.round(fake[RATING]))
    assert (fake.loc[fake[ITEM] == "A3", RATING] == 5).all()
    half = toy.assign(**{RATING: toy[RATING] - 0.5})  # 0.5 … 4.5 stars
    half.loc[0, RATING] = 4.0                          # one whole star: the scale's step is now 0.5
    attacked, fakes = attacks.inject(half, "A3", "random", 0.4, filler=0.5, seed=0)
    fake = attacked[attacked[USER].isin(fakes)]
    assert np.all(fake[RATING] * 2 == np.round(fake[RATING] * 2))
    assert (fake.loc[fake[ITEM] == "A3", RATING] == 4.5).all()  # the top of this scale
    assert not np.all(fake[RATING] == np.round(fake[RATING]))  # some half stars (seeded)


def test_inject_is_deterministic(synth):
    a1, f1 = attacks.inject(synth, [1, 2], "bandwagon", 0.05, filler=0.1, seed=7)
    a2, f2 = attacks.inject(synth, [1, 2], "bandwagon", 0.05, filler=0.1, seed=7)
    pd.testing.assert_frame_equal(a1, a2)
    np.testing.assert_array_equal(f1, f2)
    a3, _ = attacks.inject(synth, [1, 2], "bandwagon", 0.05, filler=0.1, seed=8)
    assert not a1.equals(a3)


@pytest.mark.parametrize("kwargs, words", [
    ({"size": 0.0}, ["size", "share strictly between 0 and 1", "size=0.03"]),
    ({"size": 1.5}, ["size", "size=0.03"]),
    ({"kind": "segment"}, ["kind", "random", "average", "bandwagon"]),
    ({"target": 999_999}, ["999999", "not in train", "pick_targets"]),
    ({"filler": 0}, ["filler", "filler=0.01"]),
    ({"filler": -0.1}, ["filler", "filler=0.01"]),
    ({"n_popular": 0}, ["n_popular", "n_popular=10"]),
])
def test_inject_bad_input_names_the_problem_and_the_fix(synth, kwargs, words):
    args = {"target": 1, "kind": "random", "size": 0.05} | kwargs
    with pytest.raises(ValueError) as err:
        attacks.inject(synth, args.pop("target"), args.pop("kind"), args.pop("size"), **args)
    for word in words:
        assert word in str(err.value)


def test_pick_targets_draws_unpopular_films(synth):
    t = attacks.pick_targets(synth, 3, min_ratings=2, max_ratings=8, seed=0)
    counts = synth[ITEM].value_counts()
    assert len(t) == 3 and list(t) == sorted(t)
    assert counts.reindex(t).between(2, 8).all()
    np.testing.assert_array_equal(t, attacks.pick_targets(synth, 3, min_ratings=2, max_ratings=8, seed=0))
    with pytest.raises(ValueError, match="lower min_ratings"):
        attacks.pick_targets(synth, 3, min_ratings=10_000, max_ratings=20_000)
    # no long tail in the range: the 4 n least-rated films with at least min_ratings ratings are the pool
    low = np.sort(counts.index[counts >= 2].to_numpy()[np.lexsort((counts.index[counts >= 2],
                                                                   counts[counts >= 2].to_numpy()))][:8])
    t2 = attacks.pick_targets(synth, 2, min_ratings=2, max_ratings=2, seed=0)
    assert np.isin(t2, low).all() and counts.reindex(t2).max() <= counts.reindex(low).max()


# ---- the target's hit ratio -----------------------------------------------------------------------
def test_target_hit_ratio_by_hand_on_popularity():
    toy = toy_ratings()
    pop = Popularity().fit(toy)  # counts: A1 4, A2 3, A3 1, R1 4, R2 4, R3 3
    # k=3. A3 (1 rating, last) is in nobody's top 3. R3: rated by Bob, Carol, Eve; unrated by Alice and Dan.
    # Alice's unseen films: R3 only -> rank 1, a hit. Dan's unseen: A1 (4), A3 (1), R3 (3) -> A1, R3, A3: hit.
    hr = attacks.target_hit_ratio(pop, toy[USER].unique(), ["A3", "R3"], k=3)
    assert hr.loc["R3"] == 1.0
    # A3 is unrated by Bob, Carol, Dan, Eve: Bob's unseen = A3, R2 -> R2 (4) then A3: a hit at k=3;
    # Carol's unseen = A2, A3 -> A2, A3: a hit; Dan's unseen = A1, A3, R3 -> rank 3: a hit; Eve's unseen = A2, A3,
    # R1 -> R1, A2, A3: a hit. At k=2 only Bob and Carol keep it.
    assert hr.loc["A3"] == 1.0
    assert attacks.target_hit_ratio(pop, toy[USER].unique(), ["A3"], k=2).loc["A3"] == 0.5


@pytest.mark.parametrize("model", [Popularity(), ItemKNN(mode="ranking"), EASE(min_item_count=1)])
def test_target_hit_ratio_equals_counting_in_recommend(synth, model):
    model.fit(synth)
    users = np.sort(synth[USER].unique())
    targets = synth[ITEM].value_counts().index[[5, 40, 100]].to_numpy()
    hr = attacks.target_hit_ratio(model, users, targets, k=10, batch_size=7)
    recs = model.recommend(users, k=10)
    for t in targets:
        unrated = np.setdiff1d(users, synth.loc[synth[ITEM] == t, USER])
        expected = recs[recs[USER].isin(unrated) & recs[ITEM].eq(t)].shape[0] / len(unrated)
        assert hr.loc[t] == pytest.approx(expected)


def test_target_ranks_are_positions_in_the_full_list(synth):
    model = EASE(min_item_count=4).fit(synth)  # films with fewer than 4 ratings are unmodelled: rank inf
    users = np.sort(synth[USER].unique())[:30]
    counts = synth[ITEM].value_counts()
    targets = np.array([counts.index[0], counts.index[40], counts.index[100], counts.idxmin()])
    assert counts.min() < 4
    ranks = attacks.target_ranks(model, users, targets, batch_size=4)
    full = model.recommend(users, k=model.n_items).set_index([USER, ITEM])["rank"]
    seen = synth.set_index([USER, ITEM]).index
    for u in users:
        for t in targets:
            value = ranks.loc[u, t]
            if (u, t) in seen:
                assert np.isnan(value)
            elif (u, t) in full.index:
                assert value == full.loc[(u, t)]
            else:
                assert value == np.inf
    assert np.isinf(ranks.to_numpy()).any() and np.isfinite(ranks.to_numpy()).any()


def test_an_attack_pushes_the_target_for_popularity(synth):
    target = attacks.pick_targets(synth, 1, min_ratings=1, max_ratings=3, seed=0)
    users = np.sort(synth[USER].unique())
    before = attacks.target_hit_ratio(Popularity().fit(synth), users, target).iloc[0]
    attacked, _ = attacks.inject(synth, target, "random", 0.5, seed=0)  # 60 five-star ratings: most popular
    after = attacks.target_hit_ratio(Popularity().fit(attacked), users, target).iloc[0]
    assert before == 0.0 and after == 1.0


# ---- profile statistics and the detector ---------------------------------------------------------
def test_profile_stats_by_hand():
    df = pd.DataFrame({USER: [1, 1, 2, 2, 3], ITEM: [10, 20, 10, 20, 10], RATING: [5.0, 1.0, 3.0, 3.0, 1.0]})
    st = attacks.profile_stats(df)
    # film 10: mean 3, 3 ratings; film 20: mean 2, 2 ratings
    assert list(st.index) == [1, 2, 3] and list(st.columns) == list(attacks.FEATURES)
    assert st.loc[1, "n_ratings"] == 2
    assert st.loc[1, "rdma"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert st.loc[1, "wdma"] == pytest.approx((2 / 9 + 1 / 4) / 2)
    assert st.loc[1, "dev"] == pytest.approx(1.5)
    assert st.loc[3, "dev"] == pytest.approx(2.0)
    assert st.loc[2, "pop"] == pytest.approx((np.log(4) + np.log(3)) / 2)


def test_robust_z_and_suspicion_signs():
    z = attacks.robust_z([1.0, 2.0, 3.0, 4.0, 100.0])  # median 3, MAD 1
    np.testing.assert_allclose(z, np.array([-2, -1, 0, 1, 97]) / 1.4826)
    np.testing.assert_array_equal(attacks.robust_z([2.0, 2.0, 2.0]), [0.0, 0.0, 0.0])
    stats = pd.DataFrame({f: [1.0, 2.0, 3.0, 4.0, 100.0] for f in attacks.FEATURES})
    assert attacks.suspicion(stats, ["pop"]).iloc[-1] < 0  # popular films are not suspicious
    assert attacks.suspicion(stats, ["rdma"]).iloc[-1] > 3.5
    with pytest.raises(ValueError, match="features"):
        attacks.suspicion(stats, ["likes"])
    with pytest.raises(ValueError, match="empty"):
        attacks.suspicion(stats, [])


def test_detector_finds_random_attack_profiles(ratings):
    targets = attacks.pick_targets(ratings, 2, seed=0)
    attacked, fakes = attacks.inject(ratings, targets, "random", 0.03, seed=0)
    found = attacks.detect(attacked)
    precision, recall = found.precision_recall(fakes)
    assert recall > 0.9 and precision > 0.7
    assert found.threshold == attacks.THRESHOLD
    clean = attacks.detect(ratings)
    assert len(clean.flagged) < 0.05 * ratings[USER].nunique()
    assert clean.precision_recall(fakes) == (0.0, 0.0)


def test_detect_bad_threshold():
    with pytest.raises(ValueError, match="3.5"):
        attacks.detect(toy_ratings(), threshold=0)

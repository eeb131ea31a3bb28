"""recsys_course.stream: the replay, prequential evaluation, the strategies and the feedback loop.

Tiny hand-made streams and a small synthetic world: every number is checked by hand or against a from-scratch
computation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.data import DataError
from recsys_course.eda import gini
from recsys_course.models import ALS, ItemKNN, NotFittedError, Popularity
from recsys_course.retrieval import fold_in
from recsys_course.stream import (
    OnlineFoldInStrategy,
    OnlineItemKNN,
    Periodic,
    Static,
    Strategy,
    feedback_loop,
    prequential,
    rolling,
    sessions,
    stream_table,
    warmup_split,
)
from recsys_course.synthetic import make_synthetic

DAY = 86_400


def _frame(rows):
    return pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME]).astype({USER: np.int64, ITEM: np.int64,
                                                                          TIME: np.int64})


class Scripted(Strategy):
    """A strategy whose scores are a fixed order of films (film 1 best, then 2, ...) and that records every call:
    the ranks of a prequential run are then known by hand."""

    name = "Scripted"

    def _fit(self, history):
        self.item_ids_ = np.arange(1, 11)
        self.calls = []
        self.learned = {}

    def known(self, user):
        return True

    def scores(self, user):
        self.calls.append(("scores", user, frozenset(self.learned.get(user, ()))))
        return -self.item_ids_.astype(float)

    def _learn_user(self, user, movies, ratings, times):
        self.calls.append(("learn", user, tuple(movies)))
        self.learned.setdefault(user, set()).update(movies.tolist())


@pytest.fixture(scope="module")
def tiny():
    history = _frame([(1, 1, 4.0, 0), (1, 2, 3.0, 10), (2, 3, 5.0, 20)])
    stream = _frame([(1, 5, 5.0, 100), (2, 1, 2.0, 200), (1, 3, 4.0, 300), (3, 4, 5.0, 400), (1, 4, 1.0, 500)])
    return history, stream


# ---- warm-up split ------------------------------------------------------------------------------
def test_warmup_split_cuts_at_a_quantile_or_a_time_and_sorts():
    ratings = _frame([(1, m, 4.0, t) for m, t in zip(range(1, 11), [9, 1, 8, 2, 7, 3, 6, 4, 5, 10])])
    history, stream = warmup_split(ratings, at=0.8)
    assert history[TIME].tolist() == list(range(1, 9)) and stream[TIME].tolist() == [9, 10]
    history, stream = warmup_split(ratings, at=5)
    assert history[TIME].max() == 5 and stream[TIME].min() == 6
    dated = ratings.assign(**{TIME: ratings[TIME] * DAY})
    h, s = warmup_split(dated, at="1970-01-05")
    assert h[TIME].max() == 4 * DAY and s[TIME].min() == 5 * DAY


@pytest.mark.parametrize("at, match", [(0.0, "strictly between 0 and 1"), (1.5, "strictly between 0 and 1"),
                                       (100, "leaves the history or the stream empty"),
                                       ("not a date", "a date pd.Timestamp reads")])
def test_warmup_split_refuses_a_cut_outside_the_data(at, match):
    ratings = _frame([(1, m, 4.0, m) for m in range(1, 6)])
    with pytest.raises(ValueError, match=match):
        warmup_split(ratings, at=at)


def test_warmup_split_refuses_bad_frames():
    with pytest.raises(DataError, match="missing column"):
        warmup_split(pd.DataFrame({USER: [1], ITEM: [1], RATING: [4.0]}))
    with pytest.raises(DataError, match="NaN"):
        warmup_split(pd.DataFrame({USER: [1, 1], ITEM: [1, 2], RATING: [4.0, 3.0], TIME: [1, np.nan]}))


# ---- prequential ----------------------------------------------------------------------------------
def test_prequential_ranks_by_hand_and_tests_before_it_trains(tiny):
    history, stream = tiny
    strategy = Scripted()
    f = prequential(strategy, history, stream, k=2, users="all", progress=False)
    # user 1 has seen {1, 2}: ranking 3, 4, 5, ... -> film 5 is 3rd; user 2 seen {3}: film 1 is 1st; user 1 then
    # has seen {1, 2, 5}: film 3 is 1st; user 3 (new, unseen nothing): film 4 is 4th; user 1, seen {1,2,3,5}: 4 is 1st
    assert f["rank"].tolist() == [3, 1, 1, 4, 1]
    assert f["hit"].tolist() == [False, True, True, False, True]
    np.testing.assert_allclose(f["ndcg"], [0, 1, 1, 0, 1])
    # test-then-train: every scoring call precedes the learning of its event, and never sees it learned
    scored = [c for c in strategy.calls if c[0] == "scores"]
    for (_, _user, learned), movie in zip(scored, stream[ITEM]):
        assert movie not in learned
    kinds = [c[0] for c in strategy.calls]
    assert kinds == ["scores", "learn"] * 5
    assert f.attrs["n_scored"] == 5 and f.attrs["n_events"] == 5 and strategy.n_learned_ == 5


def test_prequential_users_threshold_and_sample(tiny):
    history, stream = tiny
    f = prequential(Scripted(), history, stream, users="history", progress=False)
    assert 3 not in f[USER].tolist() and f.attrs["n_eligible"] == 4  # user 3 is new: learned, not scored
    f = prequential(Scripted(), history, stream, users="all", relevance_threshold=4.0, progress=False)
    assert f[RATING].min() >= 4.0 and len(f) == 3
    a = prequential(Scripted(), history, stream, users="all", sample=2, seed=3, progress=False)
    b = prequential(Scripted(), history, stream, users="all", sample=2, seed=3, progress=False)
    assert len(a) == 2 and a[[TIME, USER, ITEM, "rank"]].equals(b[[TIME, USER, ITEM, "rank"]])
    assert a.attrs["n_events"] == 5  # every event is learned, scored or not


def test_static_never_learns_and_new_users_are_unserved(tiny):
    history, stream = tiny
    strategy = Static(Popularity())
    f = prequential(strategy, history, stream, users="all", progress=False)
    assert f.attrs["n_unserved"] == 1 and 3 not in f[USER].tolist()
    assert np.isnan(f.loc[f[ITEM] == 5, "rank"]).all()  # film 5 is not in the warm-up catalogue: a miss
    assert strategy.model.n_train_ == len(history)
    before = strategy.scores(1).copy()
    strategy.learn_many(stream)
    assert np.array_equal(strategy.scores(1), before)


def test_a_model_fitted_once_can_back_a_strategy_without_refitting(tiny):
    history, stream = tiny
    with pytest.raises(NotFittedError, match="refit=False needs a model fitted on history"):
        Static(Popularity(), refit=False).fit(history)
    model = Popularity().fit(history)
    fitted_at = model.n_train_
    strategy = Static(model, refit=False).fit(pd.concat([history, stream]))  # not refitted on what it is given
    assert strategy.model is model and model.n_train_ == fitted_at
    np.testing.assert_array_equal(strategy.scores(1), model.score([1])[0])


def test_sessions_make_one_step_and_are_scored_against_every_film():
    history = _frame([(1, 1, 4.0, 0), (2, 9, 4.0, 0)])
    stream = _frame([(1, 3, 5.0, 100), (1, 2, 4.0, 160), (2, 5, 4.0, 170), (1, 7, 4.0, 100_000)])
    assert sessions(stream, "30min").tolist() == [0, 0, 1, 2]
    strategy = Scripted()
    f = prequential(strategy, history, stream, k=2, session_gap="30min", progress=False)
    # user 1's first session {3, 2}: ranking without film 1 is 2, 3 -> ranks 1 and 2, both hits, NDCG 1
    first = f.iloc[0]
    assert first["n_events"] == 2 and first["n_relevant"] == 2 and first["rank"] == 1 and first[ITEM] == 2
    assert first["ndcg"] == pytest.approx(1.0)
    assert [c[0] for c in strategy.calls] == ["scores", "learn"] * 3


def test_a_stream_out_of_time_order_is_refused(tiny):
    history, stream = tiny
    with pytest.raises(ValueError, match="not in time order.*sort_values"):
        prequential(Scripted(), history, stream.iloc[::-1], progress=False)
    with pytest.raises(DataError, match="NaN"):
        prequential(Scripted(), history, stream.assign(**{TIME: [1.0, np.nan, 3, 4, 5]}), progress=False)


@pytest.mark.parametrize("kwargs, match", [({"k": 0}, "k must be an integer >= 1"),
                                           ({"users": "new"}, "users must be one of"),
                                           ({"sample": 1.5}, "sample must be None"),
                                           ({"session_gap": "soon"}, "gap must be a positive duration")])
def test_prequential_bad_arguments(tiny, kwargs, match):
    history, stream = tiny
    with pytest.raises(ValueError, match=match):
        prequential(Scripted(), history, stream, progress=False, **kwargs)


def test_prequential_needs_a_strategy_and_a_fitted_one(tiny):
    history, stream = tiny
    with pytest.raises(TypeError, match="wrap a model: Static"):
        prequential(ALS(), history, stream, progress=False)
    with pytest.raises(NotFittedError, match="call .fit"):
        prequential(Static(ALS()), history, stream, fit=False, progress=False)
    with pytest.raises(NotFittedError, match="call .fit"):
        OnlineItemKNN().scores(1)


def test_rolling_and_table(tiny):
    history, stream = tiny
    f = prequential(Scripted(), history, stream, k=2, users="all", progress=False)
    r = rolling(f, window=2)
    np.testing.assert_allclose(r["hr"], [0, 0.5, 1, 0.5, 0.5])
    r = rolling(f, window="150s")  # the steps less than 150 s back: (t - 150 s, t]
    np.testing.assert_allclose(r["hr"], [0, 0.5, 1, 0.5, 0.5])
    table = stream_table(f)
    assert table.loc[0, "HR@2"] == pytest.approx(0.6) and table.loc[0, "scored"] == 5
    with pytest.raises(ValueError, match="missing"):
        rolling(pd.DataFrame({"x": [1]}))


# ---- strategies ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world_split():
    world = make_synthetic(n_users=40, n_items=60, ratings_per_user=12, seed=5)
    return warmup_split(world.ratings, at=0.6)


def test_periodic_refits_exactly_at_the_boundaries():
    history = _frame([(1, 1, 4.0, 0), (2, 2, 3.0, 0), (1, 2, 5.0, 0)])
    times = [DAY // 2, DAY, DAY + 5, 3 * DAY + 1, 3 * DAY + 2, 4 * DAY]
    stream = _frame([(1 + i % 2, 3 + i, 4.0, t) for i, t in enumerate(times)])
    strategy = Periodic(Popularity(), every="1D")
    prequential(strategy, history, stream, users="all", progress=False)
    # boundaries at 1, 2, 3, 4 days: the events at DAY, 3 DAY + 1 and 4 DAY trigger one refit each
    assert [(r["boundary"], r["at"], r["n_ratings"]) for r in strategy.retrains_] == [
        (DAY, DAY, 4), (3 * DAY, 3 * DAY + 1, 6), (4 * DAY, 4 * DAY, 8)]
    assert strategy.model.n_train_ == 8  # the last refit has not seen the last event yet
    with pytest.raises(ValueError, match="every must be a positive duration"):
        Periodic(Popularity(), every="-1D").fit(history)


def test_the_fold_in_strategy_equals_fold_in_of_the_grown_history(world_split):
    history, stream = world_split
    for lazy in (True, False):
        strategy = OnlineFoldInStrategy(ALS(n_factors=4, n_iters=2), lazy=lazy)
        prequential(strategy, history, stream, users="all", progress=False)
        user = int(stream[USER].value_counts().index[0])
        grown = pd.concat([history, stream])
        grown = grown[(grown[USER] == user) & (strategy.positions(grown[ITEM]) >= 0)]
        expected = fold_in(strategy.model, grown).scores[0]
        np.testing.assert_allclose(strategy.scores(user), expected, rtol=1e-10, atol=1e-10)


def test_online_item_knn_equals_a_batch_item_knn_after_the_stream(world_split):
    history, stream = world_split
    everything = pd.concat([history, stream], ignore_index=True)
    for k, shrink in ((5, 0.0), (None, 3.0)):
        strategy = OnlineItemKNN(k_neighbours=k, shrinkage=shrink, flush_at=200)  # small: flushes during the run
        prequential(strategy, history, stream, users="all", sample=20, progress=False)
        assert strategy.n_flushes_ > 0
        binary = everything.assign(**{RATING: 1.0})
        batch = ItemKNN(mode="ranking", k=k or 1000, similarity="cosine", shrinkage=shrink).fit(binary)
        cols = strategy.positions(batch.item_ids_)
        users = np.sort(everything[USER].unique())[:10]
        mine = np.array([strategy.scores(u)[cols] for u in users])
        np.testing.assert_allclose(mine, batch.score(users), rtol=1e-5, atol=1e-6)
        # the counts equal a from-scratch co-occurrence count
        X = pd.crosstab(everything[USER], everything[ITEM]).reindex(columns=strategy.item_ids_).to_numpy()
        counts = (X.T @ X).astype(np.int64)
        np.testing.assert_array_equal(strategy.item_counts(), counts.diagonal())
        np.fill_diagonal(counts, 0)
        np.testing.assert_array_equal(strategy.counts().toarray(), counts)


def test_online_item_knn_learns_new_films_and_ignores_re_ratings():
    history = _frame([(1, 1, 4.0, 0), (1, 2, 4.0, 1), (2, 1, 3.0, 2)])
    strategy = OnlineItemKNN(k_neighbours=None).fit(history)
    strategy.learn(2, 9, 5.0, 10)  # a film first rated now
    strategy.learn(2, 9, 1.0, 11)  # a re-rating: nothing changes
    assert strategy.item_ids_.tolist() == [1, 2, 9]
    assert strategy.counts().toarray().tolist() == [[0, 1, 1], [1, 0, 0], [1, 0, 0]]
    assert strategy.item_counts().tolist() == [2, 1, 1]
    # user 1 rated 1 and 2: film 9's score is s(1, 9) + s(2, 9) = 1/sqrt(2*1) + 0
    assert strategy.scores(1)[2] == pytest.approx(1 / np.sqrt(2), rel=1e-6)
    with pytest.raises(ValueError, match="k_neighbours must be an integer >= 1"):
        OnlineItemKNN(k_neighbours=0).fit(history)


# ---- the feedback loop ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_world():
    return make_synthetic(n_users=20, n_items=40, ratings_per_user=8, seed=2)


def test_feedback_loop_metrics_by_hand(small_world):
    out = feedback_loop(small_world, Popularity, rounds=3, k=4, n_initial=3, seed=1)
    shown = out.attrs["shown"]
    assert len(shown) == 3 * 20 * 4 and out["round"].tolist() == [1, 2, 3]
    true = small_world.true_scores()
    for t in (1, 2, 3):
        upto = shown[shown["round"] <= t]
        counts = np.bincount(upto[ITEM] - 1, minlength=40)
        row = out.iloc[t - 1]
        assert row["coverage"] == pytest.approx(np.mean(counts > 0))
        assert row["gini"] == pytest.approx(gini(counts))
        now = shown[shown["round"] == t]
        assert row["utility"] == pytest.approx(true[now[USER] - 1, now[ITEM] - 1].mean())
    # nobody is shown a film twice, or one they rated at the start
    assert not shown.duplicated([USER, ITEM]).any()
    assert out["observed"].tolist() == [20 * 3 + 80, 20 * 3 + 160, 20 * 3 + 240]


def test_feedback_loop_exploration_and_determinism(small_world):
    a = feedback_loop(small_world, Popularity, rounds=2, k=4, epsilon=1.0, seed=4)
    assert a.attrs["shown"]["explored"].all() and (a["explored"] == 1.0).all()
    b = feedback_loop(small_world, Popularity, rounds=2, k=4, epsilon=1.0, seed=4)
    pd.testing.assert_frame_equal(a, b)
    c = feedback_loop(small_world, Popularity, rounds=2, k=4, epsilon=1.0, seed=5)
    assert not a.attrs["shown"][ITEM].equals(c.attrs["shown"][ITEM])
    # uniform: over many users and rounds every film is drawn about equally often
    big = make_synthetic(n_users=300, n_items=40, ratings_per_user=3, seed=0)
    shown = feedback_loop(big, Popularity, rounds=3, k=10, epsilon=1.0, n_initial=1, seed=0).attrs["shown"]
    counts = np.bincount(shown[ITEM] - 1, minlength=40)
    assert counts.min() > 0.7 * counts.mean() and counts.max() < 1.3 * counts.mean()
    greedy = feedback_loop(small_world, Popularity, rounds=2, k=4, epsilon=0.0, seed=4)
    assert not greedy.attrs["shown"]["explored"].any()
    clicks = feedback_loop(small_world, Popularity, rounds=2, k=4, response="click", seed=4)
    assert clicks.attrs["shown"]["rated"].isna().any() and clicks["observed"].iloc[-1] < greedy["observed"].iloc[-1]


@pytest.mark.parametrize("kwargs, match", [({"rounds": 0}, "rounds must be an integer >= 1"),
                                           ({"k": 0}, "k must be an integer >= 1"),
                                           ({"epsilon": 1.5}, "epsilon must be a probability"),
                                           ({"epsilon": -0.1}, "epsilon must be a probability"),
                                           ({"response": "like"}, "response must be one of"),
                                           ({"rounds": 50}, "exceed the 40 films")])
def test_feedback_loop_bad_input(small_world, kwargs, match):
    with pytest.raises(ValueError, match=match):
        feedback_loop(small_world, Popularity, **kwargs)


def test_feedback_loop_needs_the_synthetic_world(small_world):
    with pytest.raises(TypeError, match="synthetic world"):
        feedback_loop(small_world.ratings, Popularity)
    with pytest.raises(TypeError, match="make_model must build"):
        feedback_loop(small_world, Popularity())


def test_the_sequence_strategy_continues_the_grown_sequence(world_split):
    from recsys_course.models import GRU4Rec
    from recsys_course.stream import SequenceStrategy

    history, stream = world_split
    model = GRU4Rec(n_factors=8, max_len=5, n_negatives=8, n_epochs=1, val_size=None, device="cpu", verbose=False)
    strategy = SequenceStrategy(model).fit(history)
    untouched = int(history[USER].iloc[0])
    np.testing.assert_allclose(strategy.scores(untouched), model.score([untouched])[0], rtol=1e-5, atol=1e-6)
    user = int(stream[USER].value_counts().index[0])
    strategy.learn_many(stream)
    grown = pd.concat([history, stream]).sort_values([TIME, ITEM], kind="stable")
    grown = grown[(grown[USER] == user) & (model.item_positions(grown[ITEM]) >= 0)][ITEM].tolist()
    np.testing.assert_allclose(strategy.scores(user), model.next_item_scores(grown[-5:])[-1])
    assert strategy.n_learned_ == len(stream)

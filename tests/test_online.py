"""recsys_course.stream.online: the per-user online fold-in behind the recommendation service.

An update must equal :func:`recsys_course.retrieval.fold_in` of the user's grown history exactly (it is the same
solve); small synthetic data, no text model.
"""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import ITEM, RANK, RATING, SCORE, TIME, USER
from recsys_course.data import DataError
from recsys_course.models import ALS, EASE, BiasedMF, ItemKNN, NotFittedError, UnknownIdError
from recsys_course.retrieval import fold_in
from recsys_course.stream import OnlineFoldIn, UnknownFilmError
from recsys_course.synthetic import make_synthetic


@pytest.fixture(scope="module")
def world():
    return make_synthetic(n_users=60, n_items=80, ratings_per_user=15, seed=3)


@pytest.fixture()
def online(world):
    return OnlineFoldIn(ALS(n_factors=6, n_iters=3)).fit(world.ratings)


def _grown(world, user, events):
    """The user's training ratings with ``events`` (movieId, rating) applied, later ones winning, by movieId."""
    mine = world.ratings.loc[world.ratings[USER] == user, [USER, ITEM, RATING]]
    new = pd.DataFrame([(user, m, r) for m, r in events], columns=[USER, ITEM, RATING])
    both = pd.concat([mine, new]).drop_duplicates([USER, ITEM], keep="last")
    return both.sort_values(ITEM).reset_index(drop=True)


def _unseen(world, user, n):
    seen = set(world.ratings.loc[world.ratings[USER] == user, ITEM])
    return [m for m in sorted(world.ratings[ITEM].unique()) if m not in seen][:n]


@pytest.mark.parametrize("model", [ALS(n_factors=6, n_iters=3), BiasedMF(n_factors=6, n_epochs=3),
                                   EASE(reg=50.0, min_item_count=1)], ids=["ALS", "BiasedMF", "EASE"])
def test_an_update_is_the_fold_in_of_the_grown_history_exactly(world, model):
    online = OnlineFoldIn(model).fit(world.ratings)
    user, (a, b) = 7, _unseen(world, 7, 2)
    trained = world.ratings.loc[world.ratings[USER] == user, ITEM].iloc[0]
    events = [(a, 5.0), (b, 1.0), (trained, 0.5), (a, 3.5)]  # a new film, another, a re-rating, a change of mind
    for t, (movie, rating) in enumerate(events):
        online.update(user, movie, rating, 1_600_000_000 + t)
    expected = fold_in(online.model, _grown(world, user, events)).scores[0]
    assert np.array_equal(online.score([user])[0], expected)
    assert online.n_events(user) == 4 and online.n_events_ == 4
    history = online.history(user)
    assert history[ITEM].tolist() == sorted(set(_grown(world, user, events)[ITEM]))
    assert history.set_index(ITEM).loc[a, RATING] == 3.5 and history.set_index(ITEM).loc[trained, RATING] == 0.5
    other = 8  # untouched users keep the model's own scores
    assert np.array_equal(online.score([other])[0], online.model.score([other])[0])


def test_the_next_recommend_reflects_the_event_and_excludes_seen_films(world, online):
    user = 3
    before = online.recommend([user], k=5)
    film = before[ITEM].iloc[0]
    online.update(user, film, 0.5, 1_700_000_000)
    after = online.recommend([user], k=online.n_items)
    assert film not in set(after[ITEM])  # rated now: seen
    assert not set(after[ITEM]) & set(online.history(user)[ITEM])
    assert list(after.columns) == [USER, ITEM, SCORE, RANK] and after[RANK].tolist() == list(range(1, len(after) + 1))
    assert len(after) == online.n_items - len(online.history(user))
    with_seen = online.recommend([user], k=online.n_items, exclude_seen=False)
    assert len(with_seen) == online.n_items


def test_a_new_user_becomes_known_with_their_first_event(world, online):
    new = int(world.ratings[USER].max()) + 100
    assert not online.is_known(new)
    with pytest.raises(UnknownIdError, match="first event"):
        online.recommend([new], k=3)
    film = int(world.ratings[ITEM].iloc[0])
    online.update(new, film, 4.5, 1_700_000_000)
    assert online.is_known(new)
    recs = online.recommend([new], k=3)
    assert len(recs) == 3 and film not in set(recs[ITEM])
    expected = fold_in(online.model, pd.DataFrame({USER: [new], ITEM: [film], RATING: [4.5]})).scores[0]
    assert np.array_equal(online.score([new])[0], expected)


def test_bad_events_raise_clear_errors_and_change_nothing(world, online):
    before = online.score([1]).copy()
    unknown_film = int(world.ratings[ITEM].max()) + 1
    with pytest.raises(UnknownFilmError, match="not in the model's catalogue.*retrain"):
        online.update(1, unknown_film, 4.0, 0)
    with pytest.raises(ValueError, match=r"outside the rating scale 0\.5 to 5"):
        online.update(1, 1, 7.0, 0)
    with pytest.raises(ValueError, match="rating must be a number"):
        online.update(1, 1, float("nan"), 0)
    with pytest.raises(ValueError, match="timestamp"):
        online.update(1, 1, 4.0, -5)
    with pytest.raises(ValueError, match="userId must be an integer"):
        online.update("alice", 1, 4.0, 0)
    frame = pd.DataFrame({USER: [1, 2], ITEM: [1, unknown_film], RATING: [4.0, 4.0], TIME: [0, 0]})
    with pytest.raises(UnknownFilmError, match="row 1 .*nothing was applied"):
        online.update_many(frame)
    with pytest.raises(DataError, match="missing"):
        online.update_many(frame.drop(columns=TIME))
    assert np.array_equal(online.score([1]), before) and online.n_events_ == 0
    with pytest.raises(TypeError, match="no closed-form fold-in"):
        OnlineFoldIn(ItemKNN()).fit(world.ratings)
    with pytest.raises(NotFittedError):
        OnlineFoldIn().recommend([1])
    with pytest.raises(ValueError, match="not the frame"):
        OnlineFoldIn(online.model).fit(world.ratings.iloc[:-1], refit=False)


def test_update_many_equals_one_update_per_row(world):
    rng = np.random.default_rng(0)
    films = np.sort(world.ratings[ITEM].unique())
    events = pd.DataFrame({USER: rng.choice([1, 2, 3, 999], 40), ITEM: rng.choice(films, 40),
                           RATING: rng.choice(np.arange(1, 11) / 2, 40), TIME: np.arange(40) + 1_600_000_000})
    one = OnlineFoldIn(ALS(n_factors=6, n_iters=3)).fit(world.ratings)
    for row in events.itertuples(index=False):
        one.update(row.userId, row.movieId, row.rating, row.timestamp)
    many = OnlineFoldIn(one.model).fit(world.ratings, refit=False)
    many.update_many(events)
    users = [1, 2, 3, 999]
    assert np.array_equal(one.score(users), many.score(users))
    assert many.n_events_ == one.n_events_ == 40
    assert [many.n_events(u) for u in users] == [int((events[USER] == u).sum()) for u in users]


def test_deterministic_and_thread_safe(world):
    def run(threads):
        online = OnlineFoldIn(ALS(n_factors=6, n_iters=3)).fit(world.ratings)
        films = np.sort(world.ratings[ITEM].unique())

        def post(user):
            for j in range(10):
                online.update(user, films[(user * 7 + j) % len(films)], 1.0 + (j % 9) / 2, j)

        workers = [threading.Thread(target=post, args=(u,)) for u in range(1, threads + 1)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=30)
        return online.score(list(range(1, 5))), online.n_events_

    (a, n_a), (b, n_b) = run(4), run(4)
    assert np.array_equal(a, b) and n_a == n_b == 40

"""recsys_course.context (context features, the shuffled-context null, pre-/post-filtering, InContext) and
recsys_course.models.fm (the factorisation machine)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import GENRES, ITEM, RATING, TIME, USER, YEAR
from recsys_course.context import (
    CONTEXTS,
    InContext,
    PostFilter,
    PreFilter,
    add_context,
    context_codes,
    context_ratings,
    context_shift,
    film_age_codes,
    session_positions,
    time_context,
)
from recsys_course.data import DataError
from recsys_course.evaluate import evaluate
from recsys_course.models import BiasBaseline, NotFittedError
from recsys_course.models.fm import FM, fm_predict_numpy
from recsys_course.networks.fm import FMNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HOUR, DAY = 3600, 86400
# 1970-01-05 was a Monday; 2000-01-01 00:00 UTC = 946684800 (a Saturday)
Y2000 = 946684800


def _movies():
    return pd.DataFrame({ITEM: [1, 2, 3, 4], "title": ["a", "b", "c", "d"],
                         YEAR: pd.array([1999, 1950, pd.NA, 2000], dtype="Int64"),
                         GENRES: [["Action"], ["Drama"], ["Action", "Drama"], ["Comedy"]]})


def _world(n_users=30, seed=0):
    """Synthetic ratings where weekend ratings of film 1 are one star higher: context that matters."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        for i in (1, 2, 3, 4):
            t = Y2000 + int(rng.integers(0, 60)) * DAY + int(rng.integers(0, 24)) * HOUR + u
            weekend = time_context([t], "weekend")[0]
            r = 3.0 + (1.0 if (i == 1 and weekend) else 0.0) + (0.5 if i == 4 else 0.0)
            rows.append((u, i, r, t))
    return pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME])


# ---- features ---------------------------------------------------------------------------------------------
def test_time_context_by_hand():
    t = [Y2000 + 5 * HOUR + 59, Y2000 + DAY * 2 + 13 * HOUR, np.nan]   # Sat 05:00, Mon 13:00, unknown
    assert list(time_context(t, "hour")) == [5, 13, -1]
    assert list(time_context(t, "daypart")) == [0, 2, -1]
    assert list(time_context(t, "weekday")) == [5, 0, -1]
    assert list(time_context(t, "weekend")) == [1, 0, -1]
    stamps = pd.to_datetime(np.array(t[:2]), unit="s")
    assert list(time_context(t[:2], "weekday")) == list(stamps.day_of_week)


def test_session_positions_and_film_age_by_hand():
    frame = pd.DataFrame({USER: [1, 1, 1, 1, 2], ITEM: [1, 2, 3, 4, 1], RATING: 3.0,
                          TIME: [0, 600, 4000, 100, 50]})          # user 1: 0, 100, 600 | 4000 (gap > 30 min)
    assert list(session_positions(frame)) == [1, 3, 1, 2, 1]
    ages = film_age_codes(np.array([Y2000, Y2000, Y2000, np.nan]), np.array([2000, 1999, np.nan, 1990]))
    assert list(ages) == [0, 1, -1, -1]
    assert list(film_age_codes(Y2000, np.array([1997, 1994, 1985, 1970, 1950]))) == [2, 3, 4, 5, 6]


def test_add_context_columns_and_errors():
    frame = _world(5)
    out = add_context(frame, _movies())
    assert list(out.columns[-len(CONTEXTS):]) == list(CONTEXTS)
    assert (out.loc[out[ITEM] == 3, "film_age"] == -1).all()             # no release year
    assert (out.loc[out[ITEM] == 2, "film_age"] == 6).all()              # 1950 -> 40+ in 2000
    with pytest.raises(ValueError, match="unknown context column 'season'.*hour"):
        add_context(frame, _movies(), columns=["season"])
    with pytest.raises(ValueError, match="movies"):
        add_context(frame, columns=["film_age"])
    bad = frame.astype({TIME: float})
    bad.loc[0, TIME] = np.nan
    with pytest.raises(DataError, match="NaN"):
        add_context(bad, _movies())


def test_context_codes_read_derive_or_unknown():
    ctx = pd.DataFrame({TIME: [Y2000, np.nan], "session_position": [2, np.nan]})
    assert list(context_codes(ctx, "weekend", 2)) == [1, -1]
    assert list(context_codes(ctx, "session_position", 2)) == [2, -1]
    assert list(context_codes(None, "daypart", 3)) == [-1, -1, -1]
    assert list(context_codes(ctx.drop(columns=TIME), "hour", 2)) == [-1, -1]
    with pytest.raises(ValueError, match="one row per pair"):
        context_codes(ctx, "hour", 3)


# ---- the shuffled-context null ----------------------------------------------------------------------------
def test_context_shift_by_hand_and_null():
    # weekend ratings are all Action, weekday ratings all Drama: D = JS((1,0),(.5,.5)) weighted = 0.3113 bits
    frame = pd.DataFrame({USER: np.arange(8), ITEM: [1, 1, 1, 1, 2, 2, 2, 2], RATING: 3.0,
                          "weekend": [1, 1, 1, 1, 0, 0, 0, 0]})
    kl_p_m = np.log2(1 / 0.75)                                         # P = (1, 0), M = (0.75, 0.25)
    kl_q_m = 0.5 * np.log2(0.5 / 0.75) + 0.5 * np.log2(0.5 / 0.25)     # Q = (0.5, 0.5)
    by_hand = 0.5 * kl_p_m + 0.5 * kl_q_m                              # both contexts, each half the mass
    out = context_shift(frame, _movies(), columns=["weekend"], n_shuffles=20, seed=0)
    assert out.loc["weekend", "observed"] == pytest.approx(by_hand)
    assert out.loc["weekend", "null_mean"] < out.loc["weekend", "observed"]
    again = context_shift(frame, _movies(), columns=["weekend"], n_shuffles=20, seed=0)
    pd.testing.assert_frame_equal(out, again)
    # one rating per user: shuffling inside users changes nothing, the null equals the observation
    within = context_shift(frame, _movies(), columns=["weekend"], n_shuffles=5, within="user")
    assert within.loc["weekend", "null_mean"] == pytest.approx(by_hand)
    with pytest.raises(ValueError, match="add_context"):
        context_shift(frame, _movies(), columns=["hour"])


def test_context_ratings():
    frame = add_context(_world(20), _movies(), columns=["weekend"])
    table = context_ratings(frame, "weekend")
    assert table["n"].sum() == len(frame)
    assert table.loc[1, "mean_rating"] == pytest.approx(frame.loc[frame["weekend"] == 1, RATING].mean())
    assert list(table["label"]) == ["weekday", "weekend"]


# ---- the factorisation machine ----------------------------------------------------------------------------
def test_fm_identity_against_the_naive_double_sum():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(5, 7)).astype(float) * rng.random((5, 7))
    w0, w, V = 0.3, rng.normal(size=7), rng.normal(size=(7, 3))
    naive = np.array([w0 + row @ w + sum(V[i] @ V[j] * row[i] * row[j] for i, j in itertools.combinations(range(7), 2))
                      for row in x])
    np.testing.assert_allclose(fm_predict_numpy(x, w0, w, V), naive, atol=1e-12)


def test_fmnet_forward_equals_the_numpy_formula():
    import torch

    net = FMNet(6, 4, 3.5, 0.3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.w.copy_(torch.arange(6, dtype=torch.float32) / 10)
    idx = torch.tensor([[0, 2, 5], [1, 3, -1], [-1, -1, -1]])
    x = np.zeros((3, 6))
    for r, row in enumerate(idx.numpy()):
        x[r, row[row >= 0]] = 1
    expected = fm_predict_numpy(x, 3.5, net.w.detach().numpy(), net.V.detach().numpy())
    np.testing.assert_allclose(net(idx).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def world():
    return add_context(_world(40), _movies(), columns=["weekend", "daypart"])


def _fm(**kw):
    return FM(**{**dict(n_factors=4, lr=0.05, n_epochs=20, batch_size=40, val_size=None, verbose=False), **kw})


def test_fm_learns_a_context_effect_and_is_deterministic(world):
    plain = _fm().fit(world)
    ctx = _fm(context=("weekend",)).fit(world)
    again = _fm(context=("weekend",)).fit(world)
    np.testing.assert_array_equal(ctx.factors_, again.factors_)
    users = np.repeat(world[USER].unique()[:5], 1)
    items = np.ones(len(users), dtype=int)
    weekend = ctx.predict(users, items, context=pd.DataFrame({"weekend": [1] * len(users)}))
    weekday = ctx.predict(users, items, context=pd.DataFrame({TIME: [Y2000 + 2 * DAY] * len(users)}))  # a Monday
    assert (weekend - weekday).mean() > 0.2                    # part of the weekend star of film 1
    base = plain.predict(users, items)
    assert np.abs(plain.predict(users, items, context=pd.DataFrame({"weekend": [1] * len(users)})) - base).max() == 0


def test_fm_score_equals_predict_with_film_age(world):
    model = _fm(context=("daypart", "film_age"), movies=_movies(), n_epochs=3).fit(world)
    users = model.user_ids_[:3]
    req = pd.DataFrame({TIME: [Y2000 + 7 * HOUR, Y2000 + 400 * DAY, Y2000 + 30 * 365 * DAY]})
    scores = model.score(users, context=req)
    for k, u in enumerate(users):
        rows = pd.concat([req.iloc[[k]]] * model.n_items, ignore_index=True)
        pred = model.predict(np.full(model.n_items, u), model.item_ids_, context=rows)
        np.testing.assert_allclose(np.clip(scores[k], *model.rating_range_), pred, atol=1e-10)
    np.testing.assert_allclose(model.score(users), model.score(users, context=None))


def test_fm_unknown_context_values_and_ids_fall_back(world):
    model = _fm(context=("daypart",), n_epochs=2).fit(world)
    u, i = world[USER].to_numpy()[:4], world[ITEM].to_numpy()[:4]
    unknown = model.predict(u, i)
    never = model.predict(u, i, context=pd.DataFrame({"daypart": [9, 9, -1, np.nan]}))   # 9: never seen
    np.testing.assert_allclose(never, unknown)
    nan_time = model.predict(u, i, context=pd.DataFrame({TIME: [np.nan] * 4}))
    np.testing.assert_allclose(nan_time, unknown)
    new_user = model.predict([10 ** 6], [1])
    assert np.isfinite(new_user).all()
    assert new_user[0] == pytest.approx(np.clip(model.w0_ + model.weights_[model.n_users + 0], *model.rating_range_))


def test_fm_bad_input(world):
    with pytest.raises(NotFittedError):
        FM().predict([1], [1])
    with pytest.raises(ValueError, match="unknown context column 'mood'.*known ones"):
        _fm(context=("mood",)).fit(world)
    with pytest.raises(ValueError, match="movies"):
        _fm(context=("film_age",)).fit(world)
    with pytest.raises(ValueError, match="n_factors"):
        _fm(n_factors=0).fit(world)
    bad = world.astype({TIME: float})
    bad.loc[0, TIME] = np.nan
    with pytest.raises(DataError, match="NaN"):
        _fm(context=("weekend",)).fit(bad.drop(columns=["weekend", "daypart"]))
    with pytest.raises(ValueError, match="timestamp"):
        _fm(context=("hour",)).fit(world.drop(columns=[TIME]))


def test_fm_early_stopping_runs(world):
    model = _fm(context=("weekend",), val_size=1, n_epochs=3).fit(world)
    assert 0 <= model.best_epoch_ <= 3 and model.history_ is not None


# ---- filters and the request wrapper ----------------------------------------------------------------------
def test_prefilter_fits_slices_and_falls_back(world):
    pre = PreFilter(BiasBaseline(), "weekend", min_ratings=10).fit(world)
    weekend = world[world["weekend"] == 1]
    slice_model = BiasBaseline().fit(weekend)
    u, i = weekend[USER].to_numpy()[:5], weekend[ITEM].to_numpy()[:5]
    np.testing.assert_allclose(pre.predict(u, i, context=pd.DataFrame({"weekend": [1] * 5})), slice_model.predict(u, i))
    np.testing.assert_allclose(pre.predict(u, i), BiasBaseline().fit(world).predict(u, i))
    big = PreFilter(BiasBaseline(), "weekend", min_ratings=10 ** 6).fit(world)     # every slice too small
    assert big.slices_ == {} and np.allclose(big.predict(u, i, context=pd.DataFrame({"weekend": [1] * 5})),
                                             BiasBaseline().fit(world).predict(u, i))
    with pytest.raises(ValueError, match="add_context"):
        PreFilter(BiasBaseline(), "hour").fit(world)
    with pytest.raises(ValueError, match="depends on the film"):
        PreFilter(BiasBaseline(), "film_age").fit(world)


def test_postfilter_shift_by_hand(world):
    post = PostFilter(BiasBaseline(), "weekend", alpha=3.0).fit(world)
    base = BiasBaseline().fit(world)
    rows = world[(world[ITEM] == 1) & (world["weekend"] == 1)]
    delta = (rows[RATING] - base.predict(rows[USER], rows[ITEM])).sum() / (len(rows) + 3.0)
    assert delta > 0.2
    got = post.predict([rows[USER].iloc[0]], [1], context=pd.DataFrame({"weekend": [1]}))
    assert got[0] == pytest.approx(np.clip(base.predict([rows[USER].iloc[0]], [1])[0] + delta, 1, 5))
    unknown = post.predict([rows[USER].iloc[0]], [1], context=pd.DataFrame({"weekend": [7]}))
    assert unknown[0] == pytest.approx(base.predict([rows[USER].iloc[0]], [1])[0])


def test_incontext_evaluates_with_the_unchanged_evaluate(world):
    train = world[world[TIME] < world.groupby(USER)[TIME].transform("max")]
    test = world[world[TIME] == world.groupby(USER)[TIME].transform("max")]
    model = _fm(context=("weekend",)).fit(train)
    wrapped = InContext(model, test.drop(columns=RATING)).fit(train)
    assert wrapped.model is model                      # fitted on this train already: reused, not refitted
    row = evaluate(wrapped, train, test)
    pred = model.predict(test[USER], test[ITEM], context=test)
    assert row["rmse"] == pytest.approx(np.sqrt(np.mean((pred - test[RATING].to_numpy()) ** 2)))
    first = test.sort_values([USER, TIME]).drop_duplicates(USER).set_index(USER)
    users = model.user_ids_[:3]
    np.testing.assert_allclose(wrapped.score(users), model.score(users, context=first.loc[users].reset_index()))
    with pytest.raises(ValueError, match="NaN timestamps"):
        InContext(model, test.assign(**{TIME: np.nan})).fit(train)

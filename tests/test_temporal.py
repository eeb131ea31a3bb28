"""recsys_course.models.temporal: TimeAwareBias and DecayedItemKNN."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.models import BiasBaseline, ItemKNN
from recsys_course.models.temporal import DAY, DecayedItemKNN, TimeAwareBias


@pytest.fixture(scope="module")
def small(ratings):
    return ratings[ratings[USER] <= 80].reset_index(drop=True)


def test_without_time_terms_it_is_the_bias_baseline(small):
    plain = BiasBaseline().fit(small)
    timeless = TimeAwareBias(n_bins=1, reg_alpha=1e12, reg_bin=1e12).fit(small)
    u, i = small[USER].to_numpy()[:500], small[ITEM].to_numpy()[:500]
    np.testing.assert_allclose(timeless.predict(u, i), plain.predict(u, i), atol=1e-6)


def test_time_terms_lower_the_training_error(small):
    plain = BiasBaseline().fit(small)
    resid = small[RATING] - plain.predict(small[USER], small[ITEM])
    timed = TimeAwareBias().fit(small)
    assert timed.train_rmse_ < np.sqrt(np.mean(resid ** 2))
    assert timed.item_bin_bias_.shape == (timed.n_items, 30)


def test_predict_is_predict_at_each_users_latest_training_time(small):
    model = TimeAwareBias().fit(small)
    last = small.groupby(USER)[TIME].max()
    u = small[USER].to_numpy()[:300]
    i = small[ITEM].to_numpy()[:300]
    np.testing.assert_allclose(model.predict(u, i), model.predict_at(u, i, last.loc[u].to_numpy()))
    scores = model.score(model.user_ids_[:2])
    np.testing.assert_allclose(scores[0, :5], model.predict(np.repeat(model.user_ids_[0], 5), model.item_ids_[:5]),
                               atol=1e-12)


def test_unknown_users_items_and_times_beyond_training(small):
    model = TimeAwareBias().fit(small)
    out = model.predict_at([10 ** 7, small[USER].iloc[0]], [small[ITEM].iloc[0], 10 ** 9], [2e9, 3e9])
    assert np.isfinite(out).all()
    i = model.item_positions([small[ITEM].iloc[0]])[0]
    assert out[0] == pytest.approx(np.clip(model.mu_ + model.item_bias_[i] + model.item_bin_bias_[i, -1],
                                           *model.rating_range_))
    recs = model.recommend([small[USER].iloc[0]], k=5)
    seen = set(small.loc[small[USER] == small[USER].iloc[0], ITEM])
    assert not seen & set(recs[ITEM])


@pytest.mark.parametrize("kwargs,msg", [(dict(n_bins=0), "n_bins"), (dict(beta=-1), "beta"),
                                        (dict(reg_alpha="x"), "reg_alpha"), (dict(n_iters=0), "n_iters")])
def test_time_aware_bias_bad_params(small, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        TimeAwareBias(**kwargs).fit(small)


def test_time_aware_bias_needs_timestamps_and_matching_lengths(small):
    with pytest.raises(ValueError, match="timestamp"):
        TimeAwareBias().fit(small.drop(columns=TIME))
    model = TimeAwareBias().fit(small)
    with pytest.raises(ValueError, match="pair up"):
        model.predict_at([1, 2], [1, 2], [0.0])
    with pytest.raises(ValueError, match="finite"):
        model.predict_at([1], [1], [np.nan])


def test_decay_off_is_plain_ranking_itemknn(small):
    users = np.sort(small[USER].unique())[:10]
    a = DecayedItemKNN(half_life_days=None).fit(small).recommend(users, k=10)
    b = ItemKNN(mode="ranking").fit(small).recommend(users, k=10)
    pd.testing.assert_frame_equal(a, b)


def test_decayed_scores_weight_each_film_by_its_age():
    # one user: film 1 rated 10 days before film 2; film 3 is similar to film 1 only, film 4 to film 2 only
    train = pd.DataFrame({USER: [1, 1, 2, 2, 3, 3], ITEM: [1, 2, 1, 3, 2, 4], RATING: 4.0,
                          TIME: [0.0, 10 * DAY, 0.0, 1.0, 0.0, 1.0]})
    model = DecayedItemKNN(half_life_days=10, k=5).fit(train)
    w = model.weighted_seen_[model.user_positions([1])[0]].toarray().ravel()
    np.testing.assert_allclose(w[model.item_positions([1, 2])], [0.5, 1.0])
    scores = model.predict([1, 1], [3, 4])
    S = model.similarity_.toarray()  # k=5 keeps every neighbour of these 4 films
    i1, i2, i3, i4 = model.item_positions([1, 2, 3, 4])
    np.testing.assert_allclose(scores, [0.5 * S[i1, i3], 1.0 * S[i2, i4]])
    assert scores[1] > scores[0]  # the recent film's neighbour wins


@pytest.mark.parametrize("h", [0, -3, np.inf, "year"])
def test_decayed_itemknn_bad_half_life(small, h):
    with pytest.raises(ValueError, match="half_life_days"):
        DecayedItemKNN(half_life_days=h).fit(small)


# ---- transfer: BiasedMF(init_from=..., freeze_items=...) ------------------------------------------------
@pytest.fixture(scope="module")
def periods(small):
    cut = small[TIME].quantile(0.7)
    return small[small[TIME] < cut], small[small[TIME] >= cut]


@pytest.fixture(scope="module")
def pretrained(periods, one_torch_thread):
    from recsys_course.models import BiasedMF

    return BiasedMF(n_factors=4, n_epochs=3, val_size=None, verbose=False).fit(periods[0])


def test_freezing_really_freezes_the_film_side(periods, pretrained):
    from recsys_course.models import BiasedMF

    new = periods[1]
    model = BiasedMF(n_factors=4, n_epochs=3, val_size=None, init_from=pretrained, freeze_items=True,
                     verbose=False).fit(new)
    known = np.isin(model.item_ids_, pretrained.item_ids_)
    src = pretrained.item_positions(model.item_ids_[known])
    np.testing.assert_allclose(model.item_factors_[known], pretrained.item_factors_[src], atol=1e-7)
    assert (model.item_factors_[~known] == 0).all()  # films the old model never saw get no vector
    np.testing.assert_allclose(model.item_bias_[known], pretrained.item_bias_[src], atol=1e-6)
    assert model.mu_ == pytest.approx(pretrained.mu_)
    assert model.n_trainable_params_ == model.n_users * 4  # the user factors only (biases are fixed)


def test_fine_tuning_starts_from_the_pretrained_factors_and_moves_them(periods, pretrained):
    from recsys_course.models import BiasedMF

    new = periods[1]
    tuned = BiasedMF(n_factors=4, n_epochs=3, val_size=None, init_from=pretrained, verbose=False).fit(new)
    known = np.isin(tuned.item_ids_, pretrained.item_ids_) & np.isin(tuned.item_ids_, new[ITEM])
    src = pretrained.item_positions(tuned.item_ids_[known])
    moved = np.abs(tuned.item_factors_[known] - pretrained.item_factors_[src]).max()
    assert 0 < moved < 1.0
    assert tuned.n_trainable_params_ == (tuned.n_users + tuned.n_items) * 4
    zero_epochs = BiasedMF(n_factors=4, n_epochs=1, lr=1e-12, val_size=None, init_from=pretrained,
                           verbose=False).fit(new)
    np.testing.assert_allclose(zero_epochs.item_factors_[known], pretrained.item_factors_[src], atol=1e-6)


def test_transfer_arguments_are_checked(periods, pretrained):
    from recsys_course.models import BiasedMF

    new = periods[1]
    with pytest.raises(ValueError, match="same n_factors"):
        BiasedMF(n_factors=8, init_from=pretrained, val_size=None, n_epochs=1, verbose=False).fit(new)
    with pytest.raises(ValueError, match="init_from"):
        BiasedMF(n_factors=4, freeze_items=True, val_size=None, n_epochs=1, verbose=False).fit(new)
    with pytest.raises(ValueError, match="fitted BiasedMF"):
        BiasedMF(n_factors=4, init_from=BiasedMF(), val_size=None, n_epochs=1, verbose=False).fit(new)

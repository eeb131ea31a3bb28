"""Every model exported by ``recsys_course.models`` honours the one protocol (found automatically).

On a tiny slice of MovieLens, each model: returns itself from ``fit``; ``recommend`` gives ``k`` unseen
items per user, ranked 1..k, best first, ties to the smaller movieId, the same as ``score`` ranks them;
is deterministic under the same seed; treats unknown users and items as its contract says; refuses NaN
scores; round-trips ``get_params`` through its constructor and ``repr``; and names the parameter when a
numeric hyper-parameter is bad.

A new model needs nothing here, unless its constructor has a required argument: then add how to build
that argument to ``REQUIRED_DATA`` in ``recsys_course.models.build`` (by parameter name), once for every model that takes it.
"""
from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest

import recsys_course.models as models
from recsys_course.config import ITEM, RANK, SCORE, USER
from recsys_course.models import NotFittedError, Recommender, TorchRecommender, UnknownIdError
from recsys_course.models.build import init_params, required_data

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]

MODELS = sorted((obj for name in models.__all__ if inspect.isclass(obj := getattr(models, name))
                 and issubclass(obj, Recommender) and obj not in (Recommender, TorchRecommender)), key=lambda c: c.__name__)

#: Small settings, applied where a model has the parameter: the suite tests the protocol, not accuracy.
_FAST = {"n_epochs": 2, "n_iters": 2, "verbose": False, "batch_size": 256, "n_factors": 8, "max_len": 8,
         "min_item_count": 1}
K = 5


@pytest.fixture(scope="module")
def tiny(ml):
    """40 users and the films at least 3 of them rated: a few thousand ratings with timestamps."""
    r = ml.ratings[ml.ratings[USER] <= 40]
    counts = r[ITEM].value_counts()
    return r[r[ITEM].isin(counts[counts >= 3].index)].reset_index(drop=True)


@pytest.fixture(scope="module")
def catalogue(ml, tiny):
    """The fixture's films only, so that a text model encodes a few hundred film texts, not the whole catalogue."""
    from types import SimpleNamespace

    films = tiny[ITEM].unique()
    return SimpleNamespace(movies=ml.movies[ml.movies[ITEM].isin(films)], tags=ml.tags[ml.tags[ITEM].isin(films)])


def _build(cls, ml, **overrides):
    params = init_params(cls)
    kwargs = {name: value for name, value in _FAST.items() if name in params}
    kwargs.update(required_data(cls, ml))  # a required argument the table does not know fails here, naming it
    kwargs.update(overrides)
    return cls(**kwargs)


@pytest.fixture(scope="module")
def fitted(catalogue, tiny):
    cache = {}

    def get(cls):
        if cls not in cache:
            model = _build(cls, catalogue)
            assert model.fit(tiny) is model, f"{cls.__name__}.fit must return self"
            cache[cls] = model
        return cache[cls]

    return get


def _users(tiny) -> np.ndarray:
    return np.sort(tiny[USER].unique())[:12]


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_recommend_returns_k_unseen_items_ranked(cls, fitted, tiny):
    model = fitted(cls)
    users = _users(tiny)
    recs = model.recommend(users, k=K)
    assert list(recs.columns) == [USER, ITEM, SCORE, RANK]
    seen = set(zip(tiny[USER], tiny[ITEM]))
    assert not any((u, i) in seen for u, i in zip(recs[USER], recs[ITEM])), "recommend returned a seen item"
    for user, rows in recs.groupby(USER):
        assert len(rows) == K, f"{cls.__name__} returned {len(rows)} items for user {user}, expected {K}"
        assert rows[RANK].tolist() == list(range(1, K + 1))
        scores = rows[SCORE].to_numpy()
        assert np.all(np.diff(scores) <= 0), "scores must not increase down the list"
        ties = np.diff(scores) == 0
        assert np.all(np.diff(rows[ITEM].to_numpy())[ties] > 0), "ties must go to the smaller movieId"
    assert set(recs[ITEM]) <= set(model.item_ids_)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_score_is_what_recommend_ranks(cls, fitted, tiny):
    model = fitted(cls)
    users = _users(tiny)
    scores = model.score(users)
    assert scores.shape == (len(users), model.n_items) and scores.dtype == np.float64
    assert not np.isnan(scores).any()
    recs = model.recommend(users, k=K, exclude_seen=False)
    rows = model.user_positions(recs[USER])
    cols = model.item_positions(recs[ITEM])
    np.testing.assert_allclose(scores[np.searchsorted(users, recs[USER]), cols], recs[SCORE], rtol=1e-12)
    assert (rows >= 0).all() and (cols >= 0).all()
    assert model.item_positions([-12345])[0] == -1 and model.user_positions([-12345])[0] == -1


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_same_seed_same_model(cls, fitted, catalogue, tiny):
    first = fitted(cls)
    again = _build(cls, catalogue).fit(tiny)
    users = _users(tiny)
    pd.testing.assert_frame_equal(first.recommend(users, k=K), again.recommend(users, k=K))
    np.testing.assert_array_equal(first.score(users), again.score(users))


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_unknown_ids_follow_the_contract(cls, fitted, tiny):
    model = fitted(cls)
    known_user, known_item = model.user_ids_[0], model.item_ids_[0]
    for users, items in [([-1], [known_item]), ([known_user], [-1]), ([-1], [-1])]:
        try:
            out = model.predict(users, items)
        except UnknownIdError as err:
            assert str(err), "UnknownIdError must say what is unknown and what to do"
        else:
            assert out.shape == (1,) and not np.isnan(out).any()
    if model.handles_unknown_users:
        assert len(model.recommend([-1], k=K)) == K
    else:
        with pytest.raises(UnknownIdError, match="absent from its training data"):
            model.recommend([-1], k=K)


def test_unfitted_models_say_so(catalogue):
    for cls in MODELS:
        with pytest.raises(NotFittedError, match="fit"):
            _build(cls, catalogue).recommend([1], k=K)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_nan_scores_are_refused(cls, fitted):
    class Diverged(cls):  # a model whose numbers went NaN, through the documented hooks
        def _score_users(self, users):
            return np.full((len(users), self.n_items), np.nan)

        def _predict(self, users, items):
            return np.full(len(users), np.nan)

    model = fitted(cls)
    broken = Diverged.__new__(Diverged)
    broken.__dict__.update(model.__dict__)
    user = model.user_ids_[:1]
    with pytest.raises(FloatingPointError, match="NaN"):
        broken.recommend(user, k=K)
    with pytest.raises(FloatingPointError, match="NaN"):
        broken.score(user)
    if cls.predict is Recommender.predict:  # models that override predict document their own path
        with pytest.raises(FloatingPointError, match="NaN"):
            broken.predict(user, model.item_ids_[:1])


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_get_params_round_trips(cls, catalogue):
    model = _build(cls, catalogue)
    params = model.get_params()
    assert set(params) == set(init_params(cls)), "get_params must return every constructor argument"
    twin = cls(**params)
    assert twin.get_params().keys() == params.keys()
    assert repr(twin) == repr(model)
    assert repr(model).startswith(f"{cls.__name__}(")


def _numeric_params():
    for cls in MODELS:
        for name, p in init_params(cls).items():
            default = p.default
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                yield pytest.param(cls, name, id=f"{cls.__name__}-{name}")


@pytest.mark.parametrize(("cls", "name"), list(_numeric_params()))
def test_a_bad_numeric_parameter_is_named(cls, name, catalogue, tiny):
    for bad in (math.nan, "3"):
        with pytest.raises((ValueError, TypeError)) as err:
            _build(cls, catalogue, **{name: bad}).fit(tiny)
        assert name in str(err.value), f"{cls.__name__}({name}={bad!r}) failed without naming {name}: {err.value}"


def test_the_protocol_is_documented():
    for method in ("fit", "predict", "score", "recommend", "user_positions", "item_positions", "get_params"):
        doc = inspect.getdoc(getattr(Recommender, method))
        assert doc and len(doc) > 40, f"Recommender.{method} needs a docstring"
    for name in ("fit", "predict", "score", "recommend"):
        doc = inspect.getdoc(getattr(Recommender, name))
        assert "Returns" in doc and "Raises" in doc, f"Recommender.{name}: document what it returns and raises"
    for cls in MODELS:
        assert cls.__doc__ and len(cls.__doc__) > 40, f"{cls.__name__} needs a docstring of its own"

"""recsys_course.models.text_models: texts, TextProfile, BERTBasedCF and BERTOffsetCF.

The packaged encoder's loading and its cache are tested in test_text.py; here the models run on a tiny,
randomly initialised 2-layer BERT (no download) with the packaged tokenizer, on a hand-made catalogue.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_course.models.base import UnknownIdError
from recsys_course.models.text_models import (BERTBasedCF, BERTOffsetCF, TextProfile, item_texts,
                                              user_history_texts)
from recsys_course.split import rating_split
from recsys_course.text import EmbeddingCache, TextEncoder, default_model_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TITLES = ["Toy Story", "Heat", "Fargo", "Alien", "Up", "Casino", "Cars", "Jaws", "Rocky", "Brazil"]
GENRES = [["Animation", "Children"], ["Crime"], ["Crime", "Drama"], ["Horror", "Sci-Fi"], ["Animation"],
          ["Crime"], ["Animation", "Children"], ["Horror"], ["Drama"], ["Sci-Fi"]]


@pytest.fixture(scope="module")
def movies():
    return pd.DataFrame({"movieId": np.arange(1, 11), "title": TITLES,
                         "year": pd.array([1995, 1995, 1996, 1979, 2009, 1995, 2006, 1975, 1976, pd.NA],
                                          dtype="Int64"), "genres": GENRES})


@pytest.fixture(scope="module")
def ratings():
    rng = np.random.default_rng(0)
    rows = []
    for user in range(1, 9):
        films = rng.choice(np.arange(1, 10), size=7, replace=False)  # film 10 is never rated: a cold film
        for t, film in enumerate(films):
            rows.append((user, int(film), float(rng.integers(1, 11) / 2), 1000 * user + t))
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    model = BertModel(config).eval()
    cache = EmbeddingCache(tmp_path_factory.mktemp("tiny-cache") / "e.sqlite")
    return TextEncoder("tiny-test-bert", model, tok, torch.device("cpu"), max_length=32, cache=cache)


def kw(tiny_encoder, movies):
    return dict(encoder=tiny_encoder, movies=movies, item_text=item_texts(movies), verbose=False)


def state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------------------------
# texts
# --------------------------------------------------------------------------------------------
def test_item_texts(movies):
    tags = pd.DataFrame({"userId": [1, 2, 3, 1], "movieId": [1, 1, 1, 2], "tag": ["Pixar", "pixar ", "fun", "heist"],
                         "timestamp": [1, 2, 3, 4]})
    texts = item_texts(movies, tags, n_tags=1)
    assert list(texts.index) == list(range(1, 11))
    assert texts[1] == "Toy Story (1995) genres: Animation, Children; tags: pixar"
    assert texts[2] == "Heat (1995) genres: Crime; tags: heist"
    assert texts[10] == "Brazil genres: Sci-Fi"  # no year, no tags
    plain = "Toy Story (1995) genres: Animation, Children"
    assert item_texts(movies, tags, n_tags=0)[1] == item_texts(movies)[1] == plain
    with pytest.raises(ValueError, match="n_tags"):
        item_texts(movies, tags, n_tags=-1)


def test_user_history_texts_rule(movies):
    r = pd.DataFrame({"userId": [1, 1, 1, 1, 2, 2], "movieId": [1, 2, 3, 4, 5, 6],
                      "rating": [5.0, 4.0, 2.0, 4.5, 3.0, 2.0], "timestamp": [1, 2, 3, 4, 5, 6]})
    texts = user_history_texts(r, movies, n_titles=2)
    assert list(texts.index) == [1, 2]
    assert texts[1] == "Alien (1979); Heat (1995)"        # liked, newest first, only 2
    assert texts[2] == "Up (2009)"                          # nothing >= 4: the highest-rated film
    with pytest.raises(ValueError, match="n_titles"):
        user_history_texts(r, movies, n_titles=0)


def test_texts_never_use_test_data(ratings, movies):
    train, test = rating_split(ratings)
    texts = user_history_texts(train, movies)
    label = {1: "Toy Story (1995)", **{m: f"{t} (" for m, t in zip(range(2, 10), TITLES[1:9])}}
    for user, text in texts.items():
        only_test = set(test.loc[test.userId == user, "movieId"]) - set(train.loc[train.userId == user, "movieId"])
        for film in only_test:
            assert label[film] not in text, f"user {user}'s history text mentions test film {film}"
    # the same train frame gives the same texts whatever test holds
    assert texts.equals(user_history_texts(train.copy(), movies))


# --------------------------------------------------------------------------------------------
# TextProfile
# --------------------------------------------------------------------------------------------
def test_text_profile(ratings, movies, tiny_encoder):
    model = TextProfile(encoder=tiny_encoder, movies=movies, item_text=item_texts(movies)).fit(ratings)
    recs = model.recommend(ratings.userId.unique(), k=5)
    seen = set(zip(ratings.userId, ratings.movieId))
    assert not any((u, i) in seen for u, i in zip(recs.userId, recs.movieId))
    cold = model.predict([1, 2], [10, 10])  # film 10 has a text but no rating: scored anyway
    assert np.isfinite(cold).all() and np.abs(cold).max() > 0
    assert np.allclose(model.predict([999, 1], [1, 999]), 0.0)  # unknown user, film without text
    with pytest.raises(UnknownIdError):
        model.recommend([999])
    # agrees with the formula
    mine = ratings[ratings.userId == 3]
    vecs = tiny_encoder.encode(list(item_texts(movies)))
    d = np.maximum(mine.rating.to_numpy() - mine.rating.mean(), 0)
    p = (d[:, None] * vecs[mine.movieId.to_numpy() - 1]).sum(0)
    want = vecs @ p / np.linalg.norm(p) / np.linalg.norm(vecs, axis=1)
    assert np.allclose(model.predict(np.full(10, 3), np.arange(1, 11)), want, atol=1e-5)


# --------------------------------------------------------------------------------------------
# BERTBasedCF / BERTOffsetCF
# --------------------------------------------------------------------------------------------
def test_frozen_encoder_does_not_change(ratings, movies, tiny_encoder):
    before = state(tiny_encoder.model)
    model = BERTBasedCF(n_epochs=2, batch_size=16, **kw(tiny_encoder, movies)).fit(ratings)
    after = state(tiny_encoder.model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.top_layers_ is None
    k, h = model.n_factors, tiny_encoder.dim
    head = 3 * k * model.hidden + model.hidden + model.hidden + 1
    assert model.n_trainable_ == h * k + k + model.n_items * k + head  # projection, item table, head: no BERT


def test_finetuning_the_top_layer_changes_only_that_layer(ratings, movies, tiny_encoder):
    before = state(tiny_encoder.model)
    frozen = BERTBasedCF(n_epochs=2, batch_size=16, **kw(tiny_encoder, movies)).fit(ratings)
    tuned = BERTBasedCF(finetune_layers=1, encoder_lr=0.01, n_epochs=2, batch_size=16, val_share=None,
                        **kw(tiny_encoder, movies)).fit(ratings)
    after = state(tiny_encoder.model)
    assert all(torch.equal(before[k], after[k]) for k in before), "the shared encoder must never be modified"
    top = tiny_encoder.model.encoder.layer[-1]
    assert tuned.n_trainable_ - frozen.n_trainable_ == sum(p.numel() for p in top.parameters())
    changed = [name for name, p in tuned.top_layers_[0].named_parameters()
               if not torch.equal(p, dict(top.named_parameters())[name])]
    assert changed, "fine-tuning did not change the top layer"
    # the user text vectors now come from the fine-tuned layer: they differ from the frozen ones
    assert not np.allclose(tuned.user_text_vectors_, frozen.user_text_vectors_)
    with pytest.raises(ValueError, match="finetune_layers"):
        BERTBasedCF(finetune_layers=3, **kw(tiny_encoder, movies)).fit(ratings)


@pytest.mark.parametrize("cls", [BERTBasedCF, BERTOffsetCF])
def test_rating_models_protocol(cls, ratings, movies, tiny_encoder):
    train, test = rating_split(ratings)
    model = cls(n_epochs=3, batch_size=16, device="cpu", **kw(tiny_encoder, movies)).fit(train)
    again = cls(n_epochs=3, batch_size=16, device="cpu", **kw(tiny_encoder, movies)).fit(train)
    pred = model.predict(test.userId, test.movieId)
    assert pred.shape == (len(test),) and np.isfinite(pred).all()
    assert pred.min() >= train.rating.min() and pred.max() <= train.rating.max()
    assert np.array_equal(pred, again.predict(test.userId, test.movieId)), "not deterministic on CPU"
    assert model.user_vectors_.shape == (model.n_users, model.n_factors)
    assert model.item_vectors_train_.shape == (model.n_items, model.n_factors)
    assert model.best_epoch_ >= 1 and model.history_ is not None
    recs = model.recommend(train.userId.unique(), k=4)
    seen = set(zip(train.userId, train.movieId))
    assert not any((u, i) in seen for u, i in zip(recs.userId, recs.movieId))
    # recommend's scores are the unclipped predictions
    some = recs.head(6)
    assert np.allclose(np.clip(some.score, *model.rating_range_), model.predict(some.userId, some.movieId), atol=1e-5)
    # unknown user: mu + b_i; film without a text: mu + b_u
    i_pos = model._item_index.get_indexer([1])[0]
    assert np.isclose(model.predict([999], [1])[0], np.clip(model.mu_ + model.item_bias_[i_pos], *model.rating_range_))
    u_pos = model._user_index.get_indexer([1])[0]
    want = np.clip(model.mu_ + model.user_bias_[u_pos], *model.rating_range_)
    assert np.isclose(model.predict([1], [12345])[0], want)
    with pytest.raises(UnknownIdError):
        model.recommend([999])


def test_cold_films(ratings, movies, tiny_encoder):
    based = BERTBasedCF(n_epochs=2, batch_size=16, **kw(tiny_encoder, movies)).fit(ratings)
    offset = BERTOffsetCF(n_epochs=2, batch_size=16, **kw(tiny_encoder, movies)).fit(ratings)
    users = np.array([1, 2, 3])
    # film 10 has a text but no rating: BERTBasedCF can only say mu + b_u, BERTOffsetCF reads its text
    fallback = np.clip(based.mu_ + based.user_bias_[based._user_index.get_indexer(users)], *based.rating_range_)
    assert np.allclose(based.predict(users, np.full(3, 10)), fallback)
    off_fallback = offset.mu_ + offset.user_bias_[offset._user_index.get_indexer(users)]
    assert not np.allclose(offset.predict(users, np.full(3, 10)), np.clip(off_fallback, *offset.rating_range_))


def test_bad_hyper_parameters(ratings, movies, tiny_encoder):
    for bad in [dict(head="linear"), dict(n_factors=0), dict(lr=-1.0), dict(val_share=1.5), dict(reg=-0.1)]:
        with pytest.raises(ValueError):
            BERTBasedCF(**bad, **kw(tiny_encoder, movies)).fit(ratings)
    with pytest.raises(ValueError, match="encoder_lr"):
        BERTBasedCF(encoder_lr=0.0, **kw(tiny_encoder, movies)).fit(ratings)
    with pytest.raises(ValueError):
        BERTOffsetCF(hidden=0, **kw(tiny_encoder, movies)).fit(ratings)
    assert "encoder_lr" not in BERTOffsetCF().get_params()  # its encoder is always frozen: no such setting
    with pytest.raises(TypeError, match="item_text"):
        TextProfile(encoder=tiny_encoder, movies=movies, item_text=["a text"]).fit(ratings)
    with pytest.raises(ValueError, match="device"):
        BERTBasedCF(device="tpu", **kw(tiny_encoder, movies)).fit(ratings)

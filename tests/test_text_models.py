"""recsys_course.models.text_models: TextProfile, BERTBasedCF and BERTOffsetCF (and their network, TextCFNet).

The packaged encoder's loading, its cache and the texts (item_texts, user_history_texts) are tested in
test_text.py; here the models run on a tiny, randomly initialised 2-layer BERT (no download) with the packaged
tokenizer, on a hand-made catalogue.
"""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_course.models.base import UnknownIdError
from recsys_course.models.text_models import BERTBasedCF, BERTOffsetCF, TextProfile
from recsys_course.split import rating_split
from recsys_course.text import EmbeddingCache, TextEncoder, default_model_path, item_texts, user_history_texts

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


def kw(tiny_encoder, movies, cls=BERTBasedCF):
    """What every text rating model needs: the films' titles (and, for BERTOffsetCF, their texts)."""
    texts = {"item_text": item_texts(movies)} if cls is BERTOffsetCF else {}
    return dict(encoder=tiny_encoder, movies=movies, verbose=False, **texts)


def state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------------------------
# the models read only the training frame
# --------------------------------------------------------------------------------------------
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
    model = TextProfile(item_text=item_texts(movies), encoder=tiny_encoder).fit(ratings)
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
    k, h, width = model.n_factors, tiny_encoder.dim, model.hidden[0]
    head = 3 * k * width + width + width + 1
    assert model.n_trainable_ == h * k + k + model.n_items * k + head  # projection, item table, head: no BERT


def test_finetuning_the_top_layer_changes_only_that_layer(ratings, movies, tiny_encoder):
    before = state(tiny_encoder.model)
    frozen = BERTBasedCF(n_epochs=2, batch_size=16, **kw(tiny_encoder, movies)).fit(ratings)
    tuned = BERTBasedCF(finetune_layers=1, encoder_lr=0.01, n_epochs=2, batch_size=16, val_size=None,
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
    model = cls(n_epochs=3, batch_size=16, device="cpu", **kw(tiny_encoder, movies, cls)).fit(train)
    torch.rand(7)  # the global RNG's state must not matter: every draw comes from the model's seed
    again = cls(n_epochs=3, batch_size=16, device="cpu", **kw(tiny_encoder, movies, cls)).fit(train)
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
    i_pos = model.item_positions([1])[0]
    assert np.isclose(model.predict([999], [1])[0], np.clip(model.mu_ + model.item_bias_[i_pos], *model.rating_range_))
    u_pos = model.user_positions([1])[0]
    want = np.clip(model.mu_ + model.user_bias_[u_pos], *model.rating_range_)
    assert np.isclose(model.predict([1], [12345])[0], want)
    with pytest.raises(UnknownIdError):
        model.recommend([999])


def test_cold_films(ratings, movies, tiny_encoder):
    based = BERTBasedCF(n_epochs=2, batch_size=16, **kw(tiny_encoder, movies)).fit(ratings)
    offset = BERTOffsetCF(n_epochs=2, batch_size=16, **kw(tiny_encoder, movies, BERTOffsetCF)).fit(ratings)
    users = np.array([1, 2, 3])
    # film 10 has a text but no rating: BERTBasedCF can only say mu + b_u, BERTOffsetCF reads its text
    fallback = np.clip(based.mu_ + based.user_bias_[based.user_positions(users)], *based.rating_range_)
    assert np.allclose(based.predict(users, np.full(3, 10)), fallback)
    off_fallback = offset.mu_ + offset.user_bias_[offset.user_positions(users)]
    assert not np.allclose(offset.predict(users, np.full(3, 10)), np.clip(off_fallback, *offset.rating_range_))


@pytest.mark.parametrize("cls", [BERTBasedCF, BERTOffsetCF])
def test_two_hidden_layers_and_the_other_training_options(cls, ratings, movies, tiny_encoder):
    model = cls(hidden=(8, 4), weight_decay=0.01, val_split="random", val_size=2, n_epochs=2, batch_size=16,
                **kw(tiny_encoder, movies, cls)).fit(ratings)
    assert [m.out_features for m in model.head_ if isinstance(m, torch.nn.Linear)] == [8, 4, 1]
    # score (all pairs through the head at once) agrees with predict (pair by pair) before clipping
    users = model.user_ids_[:3]
    scores = model.score(users)
    pairs = np.clip(scores, *model.rating_range_).ravel()
    assert np.allclose(pairs, model.predict(np.repeat(users, model.n_items), np.tile(model.item_ids_, 3)), atol=1e-5)
    assert model.history_ is not None and model.best_epoch_ >= 1


def test_text_cf_net_is_seeded_and_picklable():
    from recsys_course.networks.text import TextCFNet

    def build():
        return TextCFNet(5, 7, 16, 4, mu=3.5, user_bias=np.zeros(5), item_bias=np.zeros(7),
                         generator=torch.Generator().manual_seed(0), user_text=torch.randn(5, 16))

    first, second = build(), build()
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    users, items = torch.tensor([0, 1, 4]), torch.tensor([6, 0, 3])
    out = first(users, items)
    assert out.shape == (3,)
    again = pickle.loads(pickle.dumps(first))
    assert torch.equal(again(users, items), out)


def test_bad_hyper_parameters(ratings, movies, tiny_encoder):
    for bad, message in [(dict(head="linear"), "head must be one of"),
                         (dict(n_factors=0), "n_factors must be an integer >= 1"),
                         (dict(lr=-1.0), "lr must be a finite number > 0"),
                         (dict(val_size=1.5), "val_size must be"),
                         (dict(reg=-0.1), "reg must be a finite number >= 0"),
                         (dict(hidden=64), "hidden must be a non-empty tuple"),
                         (dict(hidden=(16, 0)), r"hidden must be a non-empty tuple of integers >= 1"),
                         (dict(encoder_lr=0.0), "encoder_lr must be a finite number > 0")]:
        with pytest.raises(ValueError, match=f"BERTBasedCF: {message}"):
            BERTBasedCF(**bad, **kw(tiny_encoder, movies)).fit(ratings)
    with pytest.raises(ValueError, match="hidden"):
        BERTOffsetCF(hidden=(0,), **kw(tiny_encoder, movies, BERTOffsetCF)).fit(ratings)
    assert "encoder_lr" not in BERTOffsetCF().get_params()  # its encoder is always frozen: no such setting
    with pytest.raises(ValueError, match="device"):
        BERTBasedCF(device="tpu", **kw(tiny_encoder, movies)).fit(ratings)


def test_the_films_are_arguments_never_loaded(ratings, movies, tiny_encoder):
    with pytest.raises(TypeError, match=r"TextProfile needs item_text: pass item_text=item_texts\(ml.movies"):
        TextProfile(encoder=tiny_encoder).fit(ratings)
    with pytest.raises(TypeError, match="item_text must be a pandas Series"):
        TextProfile(item_text=["a text"], encoder=tiny_encoder).fit(ratings)
    with pytest.raises(TypeError, match="BERTBasedCF needs movies: pass movies=ml.movies"):
        BERTBasedCF(encoder=tiny_encoder, verbose=False).fit(ratings)
    with pytest.raises(TypeError, match="BERTOffsetCF needs item_text"):
        BERTOffsetCF(encoder=tiny_encoder, movies=movies, verbose=False).fit(ratings)
    with pytest.raises(TypeError, match="movies must be a pandas DataFrame"):
        BERTOffsetCF(encoder=tiny_encoder, movies=movies.to_dict(), item_text=item_texts(movies)).fit(ratings)

"""recsys_course.text: the packaged all-MiniLM-L6-v2, offline, with its on-disk embedding cache, and the texts
of films and users the models of notebook 07 read.

The encoder is loaded once for the module (a few seconds on a CPU); the tests that need it are marked
``slow``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_course import config
from recsys_course.text import (
    DEFAULT_TEXT_MODEL,
    EmbeddingCache,
    TextEncoder,
    default_model_path,
    item_texts,
    load_text_encoder,
    mean_pool,
    movie_labels,
    user_history_texts,
)

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def enc(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE.items():
            mp.setenv(key, value)
        mp.delenv(config.ENV_TEXT_MODEL, raising=False)
        mp.setenv(config.ENV_CACHE_DIR, str(tmp_path_factory.mktemp("text-cache")))
        yield load_text_encoder(device="cpu")


@pytest.fixture
def fresh(enc, tmp_path):
    """The same model behind a new, empty cache (so n_encoded starts at 0)."""
    return TextEncoder(enc.name, enc.model, enc.tokenizer, enc.device, cache=EmbeddingCache(tmp_path / "e.sqlite"))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(config.ENV_TEXT_MODEL, raising=False)
    monkeypatch.setenv(config.ENV_CACHE_DIR, str(tmp_path / "cache"))


def cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --------------------------------------------------------------------------------------------
# with the model
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_packaged_model_loads_offline(enc):
    assert enc.name == DEFAULT_TEXT_MODEL
    assert enc.dim == 384
    assert enc.device == torch.device("cpu")
    assert not enc.model.training
    assert default_model_path().is_dir()
    assert enc.cache is not None and enc.cache.path.name == "text_embeddings.sqlite"


@pytest.mark.slow
def test_shape_dtype_and_normalisation(fresh):
    texts = ["Toy Story", "Heat", "A very long description of a movie " * 20, "", "Amélie (2001) ✨"]
    vecs = fresh.encode(texts)
    assert vecs.shape == (5, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(vecs).all()
    empty = fresh.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


@pytest.mark.slow
def test_identical_text_identical_embedding(fresh):
    vecs = fresh.encode(["Heat", "Toy Story", "Heat"], use_cache=False)
    assert np.array_equal(vecs[0], vecs[2])
    assert fresh.n_encoded == 2  # duplicates go through the model once
    assert not np.allclose(vecs[0], vecs[1])
    # the same text next to other texts gives the very same vector, bit for bit
    other = fresh.encode(["Heat", "a much longer title that is never in its batch", "Heatwave"], use_cache=False)
    assert np.array_equal(other[0], vecs[0])


@pytest.mark.slow
def test_order_is_preserved(fresh):
    texts = ["Heat", "Toy Story", "Jumanji", "Toy Story 2", "Grumpier Old Men"]
    together = fresh.encode(texts, batch_size=2, use_cache=False)  # sorted by length internally, then restored
    one_by_one = np.stack([fresh.encode([t], batch_size=2, use_cache=False)[0] for t in texts])
    assert np.array_equal(together, one_by_one)


@pytest.mark.slow
def test_a_vector_depends_on_its_text_only_not_on_the_batch_or_the_cache(fresh, ml):
    """What a notebook computes must not depend on what an earlier run left in the cache: every batch has the
    same shape (texts of one token length, the last batch filled up with repeats), so a text's vector is the
    same whichever texts share its batch."""
    from recsys_course.text import item_texts

    texts = list(item_texts(ml.movies.head(120), ml.tags))
    everything = fresh.encode(texts, use_cache=False)
    for part in (slice(None, None, 3), slice(1, None, 7), slice(40, 90)):
        assert np.array_equal(fresh.encode(texts[part], use_cache=False), everything[part])
    fresh.encode(texts[::5])                                   # a cache warmed by another request
    assert np.array_equal(fresh.encode(texts), everything)


@pytest.mark.slow
def test_semantic_sanity(fresh):
    toy, toy2, heat = fresh.encode(["Toy Story", "Toy Story 2", "Heat"])
    assert cos(toy, toy2) > cos(toy, heat) + 0.3
    assert cos(toy, toy2) > 0.8


@pytest.mark.slow
def test_cache_returns_same_vectors_without_the_model(fresh, tmp_path):
    texts = ["Toy Story", "Heat", "Jumanji"]
    first = fresh.encode(texts)
    assert fresh.n_encoded == 3
    second = fresh.encode(texts)
    assert fresh.n_encoded == 3  # all cache hits
    assert np.array_equal(first, second)
    fresh.encode(["Heat", "Sabrina"])  # one new text
    assert fresh.n_encoded == 4
    fresh.encode(texts, use_cache=False)  # bypasses the cache
    assert fresh.n_encoded == 7
    # the cache is on disk: another encoder on the same file needs no model call
    other = TextEncoder(fresh.name, fresh.model, fresh.tokenizer, fresh.device,
                        cache=EmbeddingCache(tmp_path / "e.sqlite"))
    assert np.array_equal(other.encode(texts), first)
    assert other.n_encoded == 0
    # a different model name or max_length is a different key
    renamed = TextEncoder("another model", fresh.model, fresh.tokenizer, fresh.device,
                          cache=EmbeddingCache(tmp_path / "e.sqlite"))
    renamed.encode(["Heat"])
    assert renamed.n_encoded == 1


@pytest.mark.slow
def test_encode_rejects_a_single_string(enc):
    with pytest.raises(TypeError, match="list of strings"):
        enc.encode("Toy Story")


@pytest.mark.slow
def test_unknown_local_folder(offline, tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(OSError) as err:
        load_text_encoder(str(missing))
    msg = str(err.value)
    assert str(missing) in msg
    assert "packaged all-MiniLM-L6-v2" in msg


@pytest.mark.slow
def test_unknown_hub_id_offline(offline):
    with pytest.raises(OSError, match="packaged all-MiniLM-L6-v2") as err:
        load_text_encoder("recsys-course-test/definitely-not-a-model")
    assert "network" in str(err.value)


@pytest.mark.slow
def test_env_var_chooses_the_model(offline, monkeypatch, tmp_path):
    monkeypatch.setenv(config.ENV_TEXT_MODEL, str(tmp_path / "missing-model"))
    with pytest.raises(OSError, match="missing-model"):
        load_text_encoder()


# --------------------------------------------------------------------------------------------
# without the model
# --------------------------------------------------------------------------------------------
def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]])  # the last token is padding
    mask = torch.tensor([[1, 1, 0]])
    out = mean_pool(hidden, mask)
    assert torch.allclose(out, torch.tensor([[1.0, 0.0]]))  # mean (2, 0), normalised
    hidden2 = torch.tensor([[[0.0, 3.0], [0.0, 1.0]], [[3.0, 4.0], [0.0, 0.0]]])
    out2 = mean_pool(hidden2, torch.tensor([[1, 1], [1, 0]]))
    assert torch.allclose(out2, torch.tensor([[0.0, 1.0], [0.6, 0.8]]))


def test_embedding_cache_round_trip(tmp_path):
    cache = EmbeddingCache(tmp_path / "sub" / "c.sqlite")
    rng = np.random.default_rng(0)
    items = {f"k{i}": rng.standard_normal(8).astype(np.float32) for i in range(1200)}  # > one 500-key chunk
    cache.put(items)
    got = cache.get(list(items) + ["missing"])
    assert set(got) == set(items)
    for key, vec in items.items():
        assert got[key].dtype == np.float32 and np.array_equal(got[key], vec)
    cache.put({"k0": np.ones(8, np.float32)})  # replace
    assert np.array_equal(EmbeddingCache(tmp_path / "sub" / "c.sqlite").get(["k0"])["k0"], np.ones(8))


@pytest.mark.slow
def test_encoding_restores_the_callers_thread_count(fresh):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fresh.encode(["Heat", "Toy Story"], use_cache=False)
        assert torch.get_num_threads() == 1  # all cores while encoding, the caller's setting afterwards
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_batches_group_texts_of_equal_token_length(fresh, monkeypatch):
    # 1, 4, 4 and 1 tokens; sorted by characters (4, 13, 7, 10) the batches would be padded
    texts = ["Heat", "the end of it", "x y z w", "television"]
    masks = []
    real = fresh.model.forward

    def spy(*args, **batch):  # what the encoder's transformer is called with, batch by batch
        masks.append(batch["attention_mask"].clone())
        return real(*args, **batch)

    monkeypatch.setattr(fresh.model, "forward", spy)
    vecs = fresh.encode(texts, batch_size=2, use_cache=False)
    assert len(masks) == 2
    assert all(bool(m.all()) for m in masks)  # no padding in any batch
    masks.clear()
    one_by_one = np.stack([fresh.encode([t], batch_size=2, use_cache=False)[0] for t in texts])
    assert all(m.shape[0] == 2 for m in masks)  # a lone text is filled up to the batch shape
    assert np.array_equal(vecs, one_by_one)


# --------------------------------------------------------------------------------------------
# the texts of films and users
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def films():
    """Six films with a year and one without."""
    return pd.DataFrame({
        "movieId": [1, 2, 3, 4, 5, 6, 10],
        "title": ["Toy Story", "Heat", "Fargo", "Alien", "Up", "Casino", "Brazil"],
        "year": pd.array([1995, 1995, 1996, 1979, 2009, 1995, pd.NA], dtype="Int64"),
        "genres": [["Animation", "Children"], ["Crime"], ["Crime", "Drama"], ["Horror", "Sci-Fi"], ["Animation"],
                   ["Crime"], ["Sci-Fi"]],
    })


def test_item_texts(films):
    tags = pd.DataFrame({"userId": [1, 2, 3, 1], "movieId": [1, 1, 1, 2], "tag": ["Pixar", "pixar ", "fun", "heist"],
                         "timestamp": [1, 2, 3, 4]})
    texts = item_texts(films, tags, n_tags=1)
    assert list(texts.index) == [1, 2, 3, 4, 5, 6, 10]
    assert texts[1] == "Toy Story (1995) genres: Animation, Children; tags: pixar"
    assert texts[2] == "Heat (1995) genres: Crime; tags: heist"
    assert texts[10] == "Brazil genres: Sci-Fi"  # no year, no tags
    plain = "Toy Story (1995) genres: Animation, Children"
    assert item_texts(films, tags, n_tags=0)[1] == item_texts(films)[1] == plain
    assert movie_labels(films)[10] == "Brazil" and movie_labels(films)[4] == "Alien (1979)"
    with pytest.raises(ValueError, match="item_texts: n_tags must be an integer >= 0, got -1"):
        item_texts(films, tags, n_tags=-1)


def test_user_history_texts_rule(films):
    r = pd.DataFrame({"userId": [1, 1, 1, 1, 2, 2], "movieId": [1, 2, 3, 4, 5, 6],
                      "rating": [5.0, 4.0, 2.0, 4.5, 3.0, 2.0], "timestamp": [1, 2, 3, 4, 5, 6]})
    texts = user_history_texts(r, films, n_titles=2)
    assert list(texts.index) == [1, 2]
    assert texts[1] == "Alien (1979); Heat (1995)"        # liked, newest first, only 2
    assert texts[2] == "Up (2009)"                          # nothing >= 4: the highest-rated film
    with pytest.raises(ValueError, match="user_history_texts: n_titles must be an integer >= 1, got 0"):
        user_history_texts(r, films, n_titles=0)

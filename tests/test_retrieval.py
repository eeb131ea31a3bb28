"""recsys_course.retrieval: exact and approximate search, candidates, the two-stage system, personalised text
search and fold-in.

Everything runs on small synthetic data (``make_synthetic``, ``synthetic_vectors``); the sentence encoder is replaced
by a deterministic word-hash stand-in, so no text model is loaded.
"""
from __future__ import annotations

import re
import subprocess
import sys
import zlib

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_course import retrieval as R
from recsys_course.config import GENRES, ITEM, RANK, RATING, SCORE, TAG, TITLE, USER
from recsys_course.evaluate import evaluate
from recsys_course.metrics import top_k
from recsys_course.models import (
    ALS,
    BPR,
    EASE,
    BiasBaseline,
    BiasedMF,
    ImplicitALS,
    ItemKNN,
    NotFittedError,
    Popularity,
    PureSVD,
    TextProfile,
    UnknownIdError,
)
from recsys_course.models.factorization import als_half_step
from recsys_course.retrieval import index as index_module
from recsys_course.split import ranking_split
from recsys_course.synthetic import make_synthetic, synthetic_vectors

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class HashEncoder:
    """A deterministic stand-in for the sentence encoder: one unit vector per text (the one of tests/test_group.py)."""

    dim = 8

    def encode(self, texts, batch_size=32):
        out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=self.dim) for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def world():
    return make_synthetic(n_users=120, n_items=150, ratings_per_user=25, seed=3)


@pytest.fixture(scope="module")
def split(world):
    return ranking_split(world.ratings)


@pytest.fixture(scope="module")
def train(split):
    return split[0]


@pytest.fixture(scope="module")
def fitted(train, world):
    texts = world.movies.set_index(ITEM)[TITLE]
    return {
        "ALS": ALS(n_factors=8).fit(train),
        "EASE": EASE(reg=50.0, min_item_count=1).fit(train),
        "PureSVD": PureSVD(n_factors=8).fit(train),
        "ImplicitALS": ImplicitALS(n_factors=8, n_iters=4).fit(train),
        "Popularity": Popularity().fit(train),
        "TextProfile": TextProfile(item_text=texts, encoder=HashEncoder()).fit(train),
    }


@pytest.fixture(scope="module")
def clustered():
    return synthetic_vectors(4000, 32, seed=1)


def _queries(vectors, n=100, seed=2):
    rng = np.random.default_rng(seed)
    q = vectors[rng.choice(len(vectors), n, replace=False)]
    return q + rng.normal(0, 0.5 / np.sqrt(vectors.shape[1]), q.shape).astype(np.float32)


# --------------------------------------------------------------------------------------------
# normalise and exact search
# --------------------------------------------------------------------------------------------
def test_normalise_gives_unit_rows_and_handles_zero_rows():
    v = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"2 row\(s\) are zero vectors \(e.g. rows \[1, 3\]\).*zero='keep'"):
        R.normalise(v)
    kept = R.normalise(v, zero="keep")
    assert kept.dtype == np.float32 and kept.flags["C_CONTIGUOUS"]
    assert np.allclose(kept, [[0.6, 0.8], [0, 0], [1, 0], [0, 0]])
    assert np.isfinite(kept @ kept.T).all()                      # a zero row's cosine is 0, never NaN
    with pytest.raises(ValueError, match=r"NaN or inf in 1 row\(s\) \(e.g. rows \[2\]\)"):
        R.normalise(np.array([[1.0, 0], [0, 1], [np.nan, 1]]))
    with pytest.raises(ValueError, match="zero must be one of"):
        R.normalise(v, zero="drop")


def test_exact_search_against_brute_force_with_ties():
    rng = np.random.default_rng(0)
    v = rng.integers(-2, 3, (60, 4)).astype(np.float32)          # small integers: many tied inner products
    v[10] = v[3]                                                  # an exact duplicate row
    q = rng.integers(-2, 3, (25, 4)).astype(np.float32)
    scores, pos = R.exact_search(v, q, 7)
    brute = q @ v.T
    want = np.argsort(-brute, axis=1, kind="stable")[:, :7]       # ties: the smaller position first
    assert np.array_equal(pos, want)
    assert np.array_equal(scores, np.take_along_axis(brute, want, 1))
    assert scores.dtype == np.float32 and pos.dtype == np.int64
    one_s, one_p = R.exact_search(v, q[0], 7)                     # a 1-d query is one row
    assert one_p.shape == (1, 7) and np.array_equal(one_p[0], pos[0])


def test_exact_search_in_batches_gives_the_same(monkeypatch, clustered):
    q = _queries(clustered, 30)
    whole = R.exact_search(clustered, q, 5)
    monkeypatch.setattr(index_module, "_CELLS", len(clustered) * 4)  # 4 queries per batch
    batched = R.exact_search(clustered, q, 5)
    assert np.array_equal(whole[1], batched[1]) and np.allclose(whole[0], batched[0], rtol=1e-6)  # BLAS rounding


def test_faiss_exact_equals_numpy_exact(clustered):
    q = _queries(clustered)
    for metric in ("ip", "cosine"):
        s_np, p_np = R.build_index(clustered, "numpy", metric=metric).search(q, 10)
        s_f, p_f = R.build_index(clustered, "exact", metric=metric).search(q, 10)
        assert np.array_equal(p_np, p_f)
        assert np.allclose(s_np, s_f, atol=1e-5)


# --------------------------------------------------------------------------------------------
# approximate indexes
# --------------------------------------------------------------------------------------------
def test_approximate_indexes_reach_high_recall_at_default_params(clustered):
    q = _queries(clustered)
    _, truth = R.exact_search(clustered, q, 10)
    for kind in ("hnsw", "ivf"):
        index = R.build_index(clustered, kind)
        _, found = index.search(q, 10)
        assert R.recall_at_k(found, truth) >= 0.9, kind
        assert index.build_seconds_ > 0 and index.ntotal == len(clustered) and index.dim == 32


def test_set_params_trades_latency_for_recall(clustered):
    q = _queries(clustered)
    _, truth = R.exact_search(clustered, q, 10)
    ivf = R.build_index(clustered, "ivf", nprobe=1)
    low = R.recall_at_k(ivf.search(q, 10)[1], truth)
    high = R.recall_at_k(ivf.set_params(nprobe=ivf.params["nlist"]).search(q, 10)[1], truth)
    assert low < high == 1.0                                      # every cell probed: exact
    hnsw = R.build_index(clustered, "hnsw", M=4, ef_search=1)
    low = R.recall_at_k(hnsw.search(q, 10)[1], truth)
    high = R.recall_at_k(hnsw.set_params(ef_search=200).search(q, 10)[1], truth)
    assert low < high and hnsw.params["ef_search"] == 200
    with pytest.raises(ValueError, match=r"\['M'\] cannot be changed on a 'hnsw' index.*\['ef_search'\]"):
        hnsw.set_params(M=8)
    with pytest.raises(ValueError, match="ef_search must be an integer >= 1"):
        hnsw.set_params(ef_search=0)


def test_ivf_default_nlist_follows_the_rule():
    for n, want in [(4000, 102), (100, 2), (30, 1)]:
        assert index_module._default_nlist(n) == want
    with pytest.raises(ValueError, match="nlist=50 lists for 30 vectors"):
        R.build_index(synthetic_vectors(30, 8), "ivf", nlist=50)


def test_save_and_load_round_trip(tmp_path, clustered):
    q = _queries(clustered, 20)
    for kind in R.KINDS:
        index = R.build_index(clustered, kind, metric="cosine")
        path = index.save(tmp_path / f"{kind}.npz")
        back = R.load_index(path)
        assert (back.kind, back.metric, back.dim, back.ntotal, back.params) == \
            (index.kind, index.metric, index.dim, index.ntotal, index.params)
        for a, b in zip(index.search(q, 5), back.search(q, 5)):
            assert np.array_equal(a, b), kind
    (tmp_path / "notes.npz").write_text("not an index")
    with pytest.raises(ValueError, match="is not a saved VectorIndex.*build_index"):
        R.load_index(tmp_path / "notes.npz")
    np.savez(tmp_path / "arrays.npz", meta=np.frombuffer(b'{"a": 1}', dtype=np.uint8), data=np.zeros(3))
    with pytest.raises(ValueError, match="is not a saved VectorIndex"):
        R.load_index(tmp_path / "arrays.npz")
    with pytest.raises(FileNotFoundError):
        R.load_index(tmp_path / "missing.npz")


_DETERMINISM = """
import hashlib, faiss, numpy as np
from recsys_course.retrieval import build_index
from recsys_course.synthetic import synthetic_vectors
faiss.omp_set_num_threads(2)
v = synthetic_vectors(3000, 24, seed=5)
out = []
for kind in ("hnsw", "ivf"):
    index = build_index(v, kind)
    out.append(index.search(v[:200], 10)[1])
assert faiss.omp_get_max_threads() == 2  # the build restored the thread count
print(hashlib.sha256(np.concatenate(out).tobytes()).hexdigest())
"""


def test_same_vectors_same_results_in_two_fresh_processes():
    runs = [subprocess.run([sys.executable, "-c", _DETERMINISM], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0].strip()) == 64


def test_bad_input_is_named_with_the_fix(clustered):
    index = R.build_index(clustered[:50], "exact")
    with pytest.raises(ValueError, match=r"vectors is empty \(shape \(0, 4\)\)"):
        R.build_index(np.zeros((0, 4)), "exact")
    for k in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            index.search(clustered[:2], k)
    with pytest.raises(ValueError, match=r"k=51 is larger than the number of indexed vectors \(50\)"):
        index.search(clustered[:2], 51)
    with pytest.raises(ValueError, match="queries have dimension 16 but the index was built on vectors of dimension 32"):
        index.search(np.ones((2, 16)), 3)
    with pytest.raises(ValueError, match=r"queries contain NaN or inf in 1 row\(s\) \(e.g. rows \[1\]\)"):
        index.search(np.vstack([clustered[:1], np.full((1, 32), np.nan)]), 3)
    with pytest.raises(ValueError, match=r"kind must be one of \['numpy', 'exact', 'hnsw', 'ivf'\], got 'annoy'"):
        R.build_index(clustered, "annoy")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['nprobe'\] for kind='hnsw'.*'ef_search'"):
        R.build_index(clustered, "hnsw", nprobe=4)
    with pytest.raises(ValueError, match="its parameters are: none"):
        R.build_index(clustered, "exact", M=8)
    with pytest.raises(ValueError, match="metric must be one of"):
        R.build_index(clustered, "exact", metric="l2")
    with pytest.raises(ValueError, match="zero vectors"):
        R.build_index(np.vstack([clustered[:5], np.zeros((1, 32))]), "exact", metric="cosine")


def test_recall_and_latency_helpers(clustered):
    assert R.recall_at_k([[1, 2, 3], [4, 5, -1]], [[3, 2, 9], [6, 7, 8]]) == pytest.approx((2 / 3 + 0) / 2)
    with pytest.raises(ValueError, match="same queries"):
        R.recall_at_k([[1, 2]], [[1, 2, 3]])
    index = R.build_index(clustered, "hnsw")
    times = R.query_latency(index, clustered[:20], 5, repeats=2)
    assert times.shape == (20,) and (times > 0).all()
    summary = R.latency_summary([0.001, 0.002, 0.003])
    assert summary == pytest.approx({"p50_ms": 2.0, "p99_ms": 2.98, "mean_ms": 2.0})


def test_synthetic_vectors_are_clustered_unit_and_reproducible():
    v = synthetic_vectors(500, 16, n_clusters=5, spread=0.3, seed=4)
    assert v.shape == (500, 16) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert np.array_equal(v, synthetic_vectors(500, 16, n_clusters=5, spread=0.3, seed=4))
    assert not np.array_equal(v, synthetic_vectors(500, 16, n_clusters=5, spread=0.3, seed=5))
    # clustered: each vector's best other neighbour is much closer than a random pair
    sims = v @ v.T
    np.fill_diagonal(sims, -1)
    assert sims.max(1).mean() > 0.8 > np.abs(v[:250] @ v[250:].T).mean() + 0.3


def test_importing_the_package_loads_neither_torch_nor_faiss():
    code = "import sys, recsys_course.retrieval; print('torch' in sys.modules, 'faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --------------------------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------------------------
def _recommended_positions(model, users, n):
    recs = model.recommend(users, k=n)
    return np.stack([model.item_positions(recs.loc[recs[USER] == u, ITEM]) for u in users])


@pytest.mark.parametrize("name", ["ALS", "PureSVD", "ImplicitALS", "TextProfile", "BiasedMF", "BPR"])
def test_factor_vectors_rank_like_the_model(name, fitted, train):
    if name == "BiasedMF":
        model = BiasedMF(n_factors=8, n_epochs=3, val_size=None, verbose=False).fit(train)
    elif name == "BPR":
        model = BPR(n_factors=8, n_epochs=3, val_size=None, verbose=False).fit(train)
    else:
        model = fitted[name]
    U, V = R.factor_vectors(model)
    users = model.user_ids_[:40]
    pos = model.user_positions(users)
    scores = U[pos] @ V.T
    scores[model.seen_[pos].toarray() > 0] = -np.inf
    assert np.array_equal(top_k(scores, 50), _recommended_positions(model, users, 50))


def test_factor_vectors_refuse_other_models(fitted):
    with pytest.raises(TypeError, match=r"EASE has no user and item vectors.*\['BiasedMF', 'ALS'.*retrieve\("):
        R.factor_vectors(fitted["EASE"])
    with pytest.raises(NotFittedError):
        R.factor_vectors(ALS())


def test_retrieve_is_the_models_recommend_and_pads(fitted, train):
    als = fitted["ALS"]
    users = als.user_ids_[:30]
    assert np.array_equal(R.retrieve(als, users, 20), _recommended_positions(als, users, 20))
    sparse = EASE(reg=50.0, min_item_count=12).fit(train)          # few films modelled: the rest are -inf
    got = R.retrieve(sparse, users, sparse.n_items)
    finite = np.isfinite(sparse.score(users)) & (sparse.seen_[sparse.user_positions(users)].toarray() == 0)
    assert ((got >= 0).sum(1) == finite.sum(1)).all() and (got[:, -1] == -1).all()
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        R.retrieve(als, users, 0)
    with pytest.raises(UnknownIdError):
        R.retrieve(als, [10**6], 5)


def test_embedding_retriever_answers_like_the_model(fitted, train):
    als = fitted["ALS"]
    users = als.user_ids_
    exact = R.EmbeddingRetriever(als, "exact").fit(train)
    assert np.array_equal(exact.retrieve(users, 15), R.retrieve(als, users, 15))
    assert np.array_equal(exact.retrieve(users, 15, exclude_seen=False), R.retrieve(als, users, 15, exclude_seen=False))
    hnsw = R.EmbeddingRetriever(als, "hnsw", ef_search=64)             # indexed at the first retrieve
    got = hnsw.retrieve(users, 15)
    assert R.recall_at_k(got, R.retrieve(als, users, 15)) >= 0.9
    with pytest.raises(UnknownIdError, match="fold them in"):
        exact.retrieve([10**6], 5)


def test_merge_candidates_round_robin_by_hand():
    a = np.array([[5, 1, 2], [7, -1, -1]])
    b = np.array([[1, 9, 3], [7, 8, 6]])
    c = np.array([[4, 5], [6, 2]])
    # user 0: rank 1 of each: 5, 1, 4; rank 2: 1 (taken), 9, 5 (taken); rank 3: 2, 3
    # user 1: 7, 7 (taken), 6; -1, 8, 2; -1, 6 (taken)
    got = R.merge_candidates([a, b, c], 6)
    assert got.tolist() == [[5, 1, 4, 9, 2, 3], [7, 6, 8, 2, -1, -1]]
    assert R.merge_candidates([a, b, c], 2).tolist() == [[5, 1], [7, 6]]
    with pytest.raises(ValueError, match="one row per user"):
        R.merge_candidates([a, c[:1]], 3)


def test_candidate_recall_by_hand():
    items = np.array([10, 20, 30, 40])
    test = pd.DataFrame({USER: [1, 1, 1, 2, 2, 3], ITEM: [10, 20, 99, 30, 40, 10], RATING: [5, 4, 5, 4.5, 2, 3.0]})
    cand = np.array([[0, 2], [2, -1], [0, 1]])
    # user 1: relevant {10, 20, 99 (unknown: a miss)}, found 10 -> 1/3; user 2: relevant {30}, found -> 1;
    # user 3: no relevant film (3 < 4) -> skipped
    assert R.candidate_recall(items, [1, 2, 3], cand, test) == pytest.approx((1 / 3 + 1) / 2)
    assert R.candidate_recall(items, [1, 2, 3], cand, test, relevance_threshold=None) == \
        pytest.approx((1 / 3 + 1 / 2 + 1) / 3)
    with pytest.raises(ValueError, match="2 rows but there are 3 users"):
        R.candidate_recall(items, [1, 2, 3], cand[:2], test)


# --------------------------------------------------------------------------------------------
# the two-stage system
# --------------------------------------------------------------------------------------------
def test_two_stage_with_every_film_a_candidate_is_the_ranker(fitted, split):
    train, test = split
    ranker = fitted["EASE"]
    retrievers = {"pop": Popularity(), "als": R.EmbeddingRetriever(ALS(n_factors=8), "exact")}
    two = R.TwoStage(retrievers, ranker, n_candidates=ranker.n_items).fit(train)
    assert two.reused_ == [False, False, True] and two.retriever_names_ == ["pop", "als"]
    full, staged = evaluate(ranker, train, test), evaluate(two, train, test)
    assert staged["ndcg@10"] == pytest.approx(full["ndcg@10"], abs=1e-12)
    assert staged.drop("coverage@10").to_dict() == pytest.approx(full.drop("coverage@10").to_dict(), abs=1e-12)
    assert set(two.timing_) == {"retrieve_s", "rank_s", "n_users"} and two.timing_["n_users"] > 0


@pytest.mark.parametrize("ranker", [ALS(n_factors=8, n_iters=3), BiasBaseline()], ids=type)
def test_a_rating_ranker_ranks_candidates_unclipped(ranker, split):
    """A rating model's predict clips to the scale (films above 5 stars would tie); the two-stage system ranks by
    the unclipped values, exactly like the ranker's own recommend."""
    train, test = split
    ranker.fit(train)
    users = ranker.user_ids_[:30]
    over = ranker.score(users) > ranker.rating_range_[1]
    assert over.sum(1).max() >= 2, "the check needs films predicted above the top of the scale"
    two = R.TwoStage([Popularity()], ranker, n_candidates=ranker.n_items).fit(train)
    assert two.recommend(users, k=10).equals(ranker.recommend(users, k=10))


def test_two_stage_ranks_only_the_candidates(fitted, train):
    ranker, pop = fitted["ImplicitALS"], fitted["Popularity"]
    two = R.TwoStage([pop, fitted["EASE"]], ranker, n_candidates=12).fit(train)
    assert two.reused_ == [True, True, True]
    users = two.user_ids_[:20]
    cand = two.candidates(users)
    assert cand.shape == (20, 12) and (cand >= 0).all()
    scores = two.score(users)
    inside = np.zeros_like(scores, dtype=bool)
    np.put_along_axis(inside, cand, True, 1)
    assert np.isinf(scores[~inside]).all()
    assert np.allclose(scores[inside], ranker.score(users)[inside])
    assert two.timing_["n_users"] == 20
    recs = two.recommend(users, k=5)
    assert recs.groupby(USER).size().eq(5).all()
    outside = np.array([np.setdiff1d(np.arange(two.n_items), row)[0] for row in cand])
    pred = two.predict(np.repeat(users, 2), two.item_ids_[np.column_stack([cand[:, 0], outside]).ravel()])
    assert np.allclose(pred[::2], ranker.predict(users, two.item_ids_[cand[:, 0]])) and np.isneginf(pred[1::2]).all()
    for retriever in two.retrievers:                              # round-robin: every retriever's first pick is in
        first = R.retrieve(retriever, users, 1)[:, 0]
        assert (cand == first[:, None]).any(1).all()


def test_two_stage_refits_parts_fitted_on_another_train_and_checks_them(train):
    part = train.iloc[: len(train) // 2]
    knn = ItemKNN().fit(part)
    two = R.TwoStage([knn], Popularity(), n_candidates=5).fit(train)
    assert two.reused_ == [False, False] and knn.n_train_ == len(train)
    with pytest.raises(TypeError, match="not a course model"):
        R.TwoStage(["ease"], Popularity()).fit(train)
    with pytest.raises(ValueError, match="n_candidates must be an integer >= 1"):
        R.TwoStage([Popularity()], Popularity(), n_candidates=0).fit(train)


# --------------------------------------------------------------------------------------------
# text search, personalised
# --------------------------------------------------------------------------------------------
def test_check_query():
    assert R.check_query("  dark sci-fi ") == "dark sci-fi"
    for bad in ("", "   \n\t", None, 3, ["funny"]):
        with pytest.raises(ValueError, match="query"):
            R.check_query(bad)


def test_personalised_scores_interpolate_between_query_and_user():
    rng = np.random.default_rng(0)
    q = rng.normal(size=30)
    u = rng.normal(size=(4, 30)) * 3 + 2
    u[1, [3, 7]] = -np.inf
    only_query = R.personalised_scores(q, u, 1.0)
    only_user = R.personalised_scores(q, u, 0.0)
    for row in range(4):
        finite = np.isfinite(u[row])
        assert np.array_equal(np.argsort(-only_query[row][finite], kind="stable"),
                              np.argsort(-q[finite], kind="stable"))
        assert np.array_equal(np.argsort(-only_user[row], kind="stable"), np.argsort(-u[row], kind="stable"))
    mixed = R.personalised_scores(q, u, 0.5)
    assert not np.isnan(mixed).any() and np.isneginf(mixed[1, [3, 7]]).all() and np.isfinite(mixed[0]).all()
    assert R.personalised_scores(q, u[0], 0.3).shape == (30,)
    for lam in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match="lam"):
            R.personalised_scores(q, u, lam)
    with pytest.raises(ValueError, match="same films"):
        R.personalised_scores(q[:10], u, 0.5)


def test_personalised_search(fitted):
    als, text = fitted["ALS"], fitted["TextProfile"]
    search = R.PersonalisedSearch(als, text.catalogue_vectors_, encoder=HashEncoder())
    user = als.user_ids_[0]
    query_only = search.search("funny animated film", k=5)
    assert list(query_only.columns) == [ITEM, SCORE, RANK, "personalised"]
    assert query_only[RANK].tolist() == [1, 2, 3, 4, 5] and not query_only["personalised"].any()
    cos = search.query_scores("funny animated film")
    assert np.allclose(query_only[SCORE], np.sort(cos)[::-1][:5])
    assert search.search("funny animated film", user=user, k=5, lam=1.0)[ITEM].tolist() == query_only[ITEM].tolist()
    own = search.search("funny animated film", user=user, k=5, lam=0.0, exclude_seen=True)
    assert own[ITEM].tolist() == als.recommend([user], k=5)[ITEM].tolist() and own["personalised"].all()
    with pytest.raises(UnknownIdError, match=r"never seen user 999999.*user=None.*unknown='query'.*fold_in"):
        search.search("funny", user=999999)
    fallback = search.search("funny animated film", user=999999, k=5, unknown="query")
    assert fallback[ITEM].tolist() == query_only[ITEM].tolist() and not fallback["personalised"].any()
    with pytest.raises(ValueError, match="k must be an integer from 1 to the catalogue's"):
        search.search("funny", k=als.n_items + 1)
    with pytest.raises(ValueError, match="exclude_seen=True needs a user"):
        search.search("funny", exclude_seen=True)
    with pytest.raises(ValueError, match="empty or only white space"):
        search.search("   ", user=user)
    with pytest.raises(ValueError, match=r"item_vectors has 10 rows but the model's catalogue has \d+ films"):
        R.PersonalisedSearch(als, text.catalogue_vectors_[:10])


def _title_words(title):
    return set(re.findall(r"[a-z0-9]+", title.lower()))


def test_film_queries_never_contain_title_words():
    movies = pd.DataFrame({ITEM: [1, 2, 3, 4], TITLE: ["Toy Story", "Dark Horror Night", "Heat", "Nothing"],
                           GENRES: [["Animation", "Comedy"], ["Horror", "Thriller"], ["Crime"], []]})
    tags = pd.DataFrame({USER: 1, ITEM: [1, 1, 1, 1, 2, 2, 2], TAG: ["pixar", "Toy", "story time", "friendship",
                                                                     "dark", "slasher", "night owl"]})
    queries = R.film_queries(movies, tags, [1, 2, 3, 4], n_tags=5, n_genres=5)
    assert queries.to_dict() == {1: "friendship, pixar, animation, comedy", 2: "slasher, thriller", 3: "crime"}
    for movie, query in queries.items():
        title = movies.set_index(ITEM).at[movie, TITLE]
        assert not _title_words(query) & _title_words(title)
    assert R.film_queries(movies, tags, [1], n_tags=1, n_genres=1, seed=0).iloc[0].count(",") == 1
    assert R.film_queries(movies, None, [1])[1] == "animation, comedy"       # no tags: genres only
    with pytest.raises(ValueError, match=r"1 film\(s\) of items are not in movies"):
        R.film_queries(movies, tags, [1, 77])


def test_film_queries_on_a_synthetic_catalogue(world):
    movies = world.movies.copy()
    movies[TITLE] = ["Item genre_0 film" if i % 3 == 0 else f"Item {i}" for i in range(len(movies))]
    queries = R.film_queries(movies, None, movies[ITEM], n_genres=1)
    titles = movies.set_index(ITEM)[TITLE]
    assert all(not _title_words(q) & _title_words(titles[m]) for m, q in queries.items())
    assert len(queries) < len(movies)                           # films whose only genre is in the title: no query


def test_taste_texts_by_hand():
    movies = pd.DataFrame({ITEM: [1, 2, 3], TITLE: ["A", "B", "C"],
                           GENRES: [["Comedy", "Drama"], ["Comedy"], ["Horror"]]})
    ratings = pd.DataFrame({USER: [1, 1, 1, 2, 2], ITEM: [1, 2, 3, 1, 3], RATING: [5.0, 4.0, 1.0, 3.0, 2.0]})
    tags = pd.DataFrame({USER: [1, 1, 1, 2, 1], ITEM: [1, 2, 2, 3, 9], TAG: ["Funny", "funny", "witty", "gory",
                                                                             "unrated film"]})
    texts = R.taste_texts(ratings, movies, tags, n_genres=1, n_tags=5)
    # user 1 liked films 1 and 2: comedy twice, drama once; their tags on their films: funny twice, witty once
    # user 2 liked nothing >= 4: their best film (1, rated 3); their tag on film 3 counts (a film they rated)
    assert texts.to_dict() == {1: "genres: comedy; tags: funny, witty", 2: "genres: comedy; tags: gory"}


# --------------------------------------------------------------------------------------------
# fold-in
# --------------------------------------------------------------------------------------------
def _history(model, train, users):
    return train[train[USER].isin(users)]


def test_fold_in_als_is_one_more_half_step(fitted, train):
    als = fitted["ALS"]
    users = als.user_ids_[:15]
    ids, scores = R.fold_in(als, _history(als, train, users))
    assert np.array_equal(ids, users)
    pos = als.user_positions(users)
    h = _history(als, train, users)                              # residuals of these users on the final biases
    rows, cols = als.user_positions(h[USER]), als.item_positions(h[ITEM])
    resid = h[RATING].to_numpy() - als.mu_ - als.user_bias_[rows] - als.item_bias_[cols]
    E = sp.csr_matrix((resid, (np.searchsorted(pos, rows), cols)), shape=(len(users), als.n_items))
    P = als_half_step(E, als.item_factors_, als.reg)
    want = als.mu_ + als.user_bias_[pos][:, None] + als.item_bias_ + P @ als.item_factors_.T
    assert np.allclose(scores, want, atol=1e-10)


@pytest.mark.parametrize("name", ["EASE", "PureSVD", "TextProfile"])
def test_fold_in_reproduces_a_training_user_exactly(name, fitted, train):
    model = fitted[name]
    users = model.user_ids_[:15]
    ids, scores = R.fold_in(model, _history(model, train, users))
    assert np.allclose(scores, model.score(ids), atol=1e-6)


@pytest.mark.parametrize("name", ["ImplicitALS", "BiasedMF"])
def test_fold_in_nearly_reproduces_a_training_users_ranking(name, fitted, train):
    model = fitted[name] if name in fitted else BiasedMF(n_factors=8, n_epochs=5, val_size=None,
                                                         verbose=False).fit(train)
    users = model.user_ids_[:30]
    ids, scores = R.fold_in(model, _history(model, train, users))
    mine, theirs = top_k(scores, 20), top_k(model.score(ids), 20)
    overlap = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(mine, theirs)])
    assert overlap >= 0.9


def test_fold_in_counts_what_it_drops_and_falls_back_for_cold_users(fitted, train):
    new = pd.DataFrame({USER: [1, 1, 1, 2, 500], ITEM: [train[ITEM].iloc[0], train[ITEM].iloc[1], 10**7, 10**7, 10**8],
                        RATING: [5.0, 4.0, 3.0, 4.0, 2.0]})
    for name in ("ALS", "ImplicitALS", "EASE", "PureSVD", "TextProfile"):
        model = fitted[name]
        result = R.fold_in(model, new)
        ids, scores = result
        assert ids.tolist() == [1, 2, 500] and scores.shape == (3, model.n_items)
        assert result.n_used.tolist() == [2, 0, 0] and result.n_dropped.tolist() == [1, 1, 1]
        cold = scores[1]
        if name == "ALS":
            assert np.allclose(cold, model.mu_ + model.item_bias_)
        else:
            popularity = np.asarray(model.seen_.sum(0)).ravel()
            assert np.array_equal(top_k(cold[None], 10), top_k(popularity[None], 10))
    with pytest.raises(TypeError, match=r"ItemKNN has no closed-form fold-in.*\['ALS', 'BiasedMF'"):
        R.fold_in(ItemKNN().fit(train), new)


def test_fold_in_recommend_leaves_out_the_history(fitted, train):
    als = fitted["ALS"]
    h = train[train[USER] == als.user_ids_[3]].assign(**{USER: 10**6})  # a training user's films, as a new user
    recs = R.fold_in_recommend(als, h, k=7)
    assert recs[RANK].tolist() == list(range(1, 8)) and not recs[ITEM].isin(h[ITEM]).any()
    assert recs[ITEM].tolist() == als.recommend([als.user_ids_[3]], k=7)[ITEM].tolist()

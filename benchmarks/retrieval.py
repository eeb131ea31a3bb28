"""Exact vs approximate nearest-neighbour search, and the two-stage pipeline against ranking the whole catalogue.

A benchmark, not a test: it prints numbers (the retrieval chapter's speed goals). Part 1, on ``synthetic_vectors`` (clustered
unit vectors, cosine = inner product): for the exact index and HNSW / IVF at several search settings, the build
time, recall@10 against exact search, the p50 / p99 latency of one query per call and the speed-up of the median
over exact search. Part 2 (``--two-stage``), on ml-latest-small's ranking split: the ranker alone over the whole
catalogue vs :class:`~recsys_course.retrieval.TwoStage` (EASE + ALS-embedding (HNSW) + Popularity retrievers) with
the same ranker (``--rankers``: EASE and ImplicitALS by default), NDCG@10 of each and milliseconds per user.

    .venv/bin/python benchmarks/retrieval.py                               # 10^5 x 384, 500 queries
    .venv/bin/python benchmarks/retrieval.py --n 1000000 --two-stage       # the full profile's size, and part 2

Goals: at 10^5 vectors, an approximate index with recall@10 >= 0.95 answers >= 10x faster than exact
search; the two-stage system keeps >= 95 % of the full-catalogue NDCG@10. Timings are single-threaded (faiss and
BLAS on one thread) unless ``--threads`` says otherwise; the output says which.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from recsys_course.retrieval import build_index, latency_summary, query_latency, recall_at_k
from recsys_course.synthetic import synthetic_vectors

K = 10
#: rankers part 2 can use (course models whose defaults fit ml-latest-small in seconds)
RANKERS = ("EASE", "ImplicitALS", "PureSVD", "ItemKNN", "ALS")
SETTINGS = [("exact", {}, {})] + \
    [("hnsw", {}, {"ef_search": ef}) for ef in (16, 32, 64, 128)] + \
    [("ivf", {}, {"nprobe": p}) for p in (1, 4, 16, 64)]


def search_table(n: int, dim: int, n_queries: int, repeats: int) -> pd.DataFrame:
    vectors = synthetic_vectors(n, dim, seed=0)
    # queries: indexed vectors moved by fresh noise of the same spread (a user near the films they like)
    rng = np.random.default_rng(1)
    queries = vectors[rng.choice(n, n_queries, replace=False)]
    queries += rng.normal(0, 0.5 / np.sqrt(dim), queries.shape).astype(np.float32)
    built, rows = {}, []
    truth = None
    for kind, build_params, search_params in SETTINGS:
        if kind not in built:
            built[kind] = build_index(vectors, kind, metric="cosine", **build_params)
            print(f"built {kind}: {built[kind].build_seconds_:.1f} s", flush=True)
        index = built[kind].set_params(**search_params) if search_params else built[kind]
        _, found = index.search(queries, K)
        if truth is None:
            truth = found
        times = latency_summary(query_latency(index, queries, K, repeats=repeats))
        shown = {k: v for k, v in index.params.items() if k not in ("seed",)}
        rows.append({"kind": kind, "params": " ".join(f"{k}={v}" for k, v in shown.items()) or "-",
                     "build s": round(index.build_seconds_, 2), f"recall@{K}": round(recall_at_k(found, truth), 4),
                     "p50 ms": round(times["p50_ms"], 3), "p99 ms": round(times["p99_ms"], 3)})
    table = pd.DataFrame(rows)
    table["speed-up"] = (table["p50 ms"].iloc[0] / table["p50 ms"]).round(1)
    return table


def two_stage_table(n_candidates: int, rankers) -> pd.DataFrame:
    from recsys_course import models
    from recsys_course.config import RATING, RELEVANCE_THRESHOLD, USER
    from recsys_course.data import load_movielens
    from recsys_course.evaluate import evaluate
    from recsys_course.models import ALS, EASE, Popularity
    from recsys_course.retrieval import EmbeddingRetriever, TwoStage, candidate_recall
    from recsys_course.split import ranking_split

    train, test = ranking_split(load_movielens().ratings)
    retrievers = {"EASE": EASE().fit(train), "ALS (hnsw)": EmbeddingRetriever(ALS(), "hnsw"),
                  "Popularity": Popularity()}
    users = np.sort(test.loc[test[RATING] >= RELEVANCE_THRESHOLD, USER].unique())
    rows = []
    for ranker_name in rankers:
        ranker = retrievers["EASE"] if ranker_name == "EASE" else getattr(models, ranker_name)().fit(train)
        two = TwoStage(retrievers, ranker, n_candidates=n_candidates).fit(train)
        full = None
        for system, model in [("whole catalogue", ranker), (f"TwoStage N={n_candidates}", two)]:
            start = time.perf_counter()
            model.recommend(users, k=K)
            ms = (time.perf_counter() - start) / len(users) * 1000
            ndcg = evaluate(model, train, test, k=K)[f"ndcg@{K}"]
            full = ndcg if full is None else full
            row = {"ranker": ranker_name, "system": system, f"ndcg@{K}": ndcg, "share of full": ndcg / full,
                   "ms per user": ms}
            if model is two:
                model.recommend(users, k=K)
                row["retrieve ms"] = two.timing_["retrieve_s"] / len(users) * 1000
                row["rank ms"] = two.timing_["rank_s"] / len(users) * 1000
                row[f"cand. recall@{n_candidates}"] = candidate_recall(two.item_ids_, users, two.candidates(users),
                                                                       test)
            rows.append(row)
    return pd.DataFrame(rows).round(4)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="indexed vectors (default 100000)")
    parser.add_argument("--dim", type=int, default=384, help="dimension (default 384, MiniLM's)")
    parser.add_argument("--queries", type=int, default=500, help="queries timed one by one (default 500)")
    parser.add_argument("--repeats", type=int, default=3, help="times each query is answered; the fastest kept")
    parser.add_argument("--threads", type=int, default=1, help="faiss and BLAS threads (default 1)")
    parser.add_argument("--two-stage", action="store_true", help="also the two-stage pipeline on ml-latest-small")
    parser.add_argument("--n-candidates", type=int, default=200, help="candidates per user (default 200)")
    parser.add_argument("--rankers", nargs="*", default=["EASE", "ImplicitALS"], choices=RANKERS,
                        help="rankers of part 2 (default EASE ImplicitALS)")
    args = parser.parse_args(argv)

    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        print(f"{args.n:,} synthetic vectors of dimension {args.dim}, {args.queries} queries, k={K}; "
              f"{args.threads} thread(s) (faiss and BLAS), one query per call, fastest of {args.repeats}")
        print(search_table(args.n, args.dim, args.queries, args.repeats).to_string(index=False))
        if args.two_stage:
            print()
            print(f"ml-latest-small ranking split; TwoStage retrieves with EASE, ALS factors in an HNSW index and "
                  f"Popularity; ms per user of recommend(k={K}); {args.threads} thread(s)")
            print(two_stage_table(args.n_candidates, args.rankers).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

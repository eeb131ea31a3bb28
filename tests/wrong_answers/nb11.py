"""Plausible wrong answers to the exercises of notebook 11; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import numpy as np

from recsys_course.evaluate import evaluate
from recsys_course.exercises.nb11 import _ivf, _rrf
from recsys_course.retrieval import TwoStage, merge_candidates


# ------------------------------------------------------------------------------------------------ 11.rrf
def _rrf_from_zero(lists, n, c=60):
    return _rrf(lists, n, c, start=0)


def _rrf_first_seen_ties(lists, n, c=60):
    return _rrf(lists, n, c, tie="first")


def _rrf_no_padding(lists, n, c=60):
    out = _rrf(lists, n, c)
    return out[out >= 0]


def _rrf_round_robin(lists, n, c=60):
    width = max(len(x) for x in lists)
    padded = [np.array([list(x) + [-1] * (width - len(x))]) for x in lists]
    return merge_candidates(padded, n)[0]


def _rrf_rank_sum(lists, n, c=60):
    score = {}
    for lst in lists:
        for rank, film in enumerate(lst, start=1):
            if film >= 0:
                score[film] = score.get(film, 0) + rank
    best = sorted(score, key=lambda f: (score[f], f))[:n]
    return np.array(best + [-1] * (n - len(best)))


def _rrf_padding_as_film(lists, n, c=60):
    score = {}
    for lst in lists:
        for rank, film in enumerate(lst, start=1):
            score[film] = score.get(film, 0.0) + 1.0 / (c + rank)
    best = sorted(score, key=lambda f: (-score[f], f))[:n]
    return np.array(best + [-1] * (n - len(best)))


# ------------------------------------------------------------------------------------------------ 11.ivf_search
def _ivf_exact(vectors, centroids, cells, query, nprobe, k):
    return _ivf(vectors, centroids, cells, query, nprobe, k, probe_all=True)


def _ivf_euclidean_cells(vectors, centroids, cells, query, nprobe, k):
    return _ivf(vectors, centroids, cells, query, nprobe, k, metric="l2")


def _ivf_one_cell(vectors, centroids, cells, query, nprobe, k):
    return _ivf(vectors, centroids, cells, query, 1, k)


def _ivf_by_position(vectors, centroids, cells, query, nprobe, k):
    out = _ivf(vectors, centroids, cells, query, nprobe, k)
    found = np.sort(out[out >= 0])
    return np.concatenate([found, np.full(k - len(found), -1)])


def _ivf_unpadded(vectors, centroids, cells, query, nprobe, k):
    out = _ivf(vectors, centroids, cells, query, nprobe, k)
    return out[out >= 0]


# ------------------------------------------------------------------------------------------------ 11.ease_candidates
def _union(retrievers, ranker, train, test):
    return evaluate(TwoStage(retrievers, ranker, n_candidates=200).fit(train), train, test)


def _ease_itself(retrievers, ranker, train, test):
    return evaluate(retrievers["EASE"], train, test)


def _ease_50(retrievers, ranker, train, test):
    return evaluate(TwoStage({"EASE": retrievers["EASE"]}, ranker, n_candidates=50).fit(train), train, test)


def _popularity_candidates(retrievers, ranker, train, test):
    return evaluate(TwoStage({"Popularity": retrievers["Popularity"]}, ranker, n_candidates=200).fit(train),
                    train, test)


def _ease_list(retrievers, ranker, train, test):
    row = evaluate(TwoStage({"EASE": retrievers["EASE"]}, ranker, n_candidates=200).fit(train), train, test)
    return [row["ndcg@10"], row["hit@10"]]


WRONG = {
    "11.rrf": [
        ("ranks from 0", _rrf_from_zero),
        ("ties by first appearance", _rrf_first_seen_ties),
        ("no -1 padding", _rrf_no_padding),
        ("round-robin instead of fusion", _rrf_round_robin),
        ("summed ranks", _rrf_rank_sum),
        ("-1 counted as a film", _rrf_padding_as_film),
    ],
    "11.ivf_search": [
        ("every cell searched (exact)", _ivf_exact),
        ("cells by Euclidean distance", _ivf_euclidean_cells),
        ("only one cell probed", _ivf_one_cell),
        ("sorted by position", _ivf_by_position),
        ("no -1 padding", _ivf_unpadded),
    ],
    "11.ease_candidates": [
        ("the union of every retriever", _union),
        ("EASE's own order", _ease_itself),
        ("50 candidates", _ease_50),
        ("Popularity's candidates", _popularity_candidates),
        ("a list instead of a dict", _ease_list),
    ],
    "11.quiz": [
        ("fewer films always better", {1: "b", 2: 38.4, 3: "a", 4: "a", 5: "a"}),
        ("thousands instead of millions", {1: "a", 2: 38400, 3: "a", 4: "a", 5: "a"}),
        ("the encoder's quality", {1: "a", 2: 38.4, 3: "a", 4: "b", 5: "a"}),
        ("retrain for every user", {1: "a", 2: 38.4, 3: "a", 4: "a", 5: "b"}),
    ],
}

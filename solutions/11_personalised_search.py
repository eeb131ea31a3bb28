"""Solutions to the exercises of notebook 11 (personalised search).

* ``reciprocal_rank_fusion`` — one score per film, the sum over the lists that contain it of ``1 / (c + rank)``
  with ranks from 1 (Cormack, Clarke & Büttcher 2009; ``c = 60`` is their constant: it keeps one list's first
  place from outweighing agreement between lists). ``-1`` is padding and is skipped; the films are sorted by
  decreasing score, ties by the smaller position, and the list is padded with ``-1`` to ``n``. On the prompt's
  example ``([4, 1, 7], [1, 9, -1], [7, 4, 2])`` with ``n = 5``: films 1 and 4 both score 1/61 + 1/62 (a tie,
  broken by position), film 7 follows with 1/61 + 1/63, then 9 (1/62) and 2 (1/63), so ``[1, 4, 7, 9, 2]``; round-robin
  (``merge_candidates``) gives ``[4, 1, 7, 9, 2]``. Fusion rewards films that several retrievers agree on,
  round-robin guarantees every retriever its share of the candidates; on the notebook's retrievers the two
  unions are close, and RRF helps most when one retriever is much stronger and its best films also appear low in
  the other lists.
* ``ivf_search`` — score the centroids by inner product with the query, keep the ``nprobe`` best (``argsort``
  stable: ties to the smaller cell), gather the positions whose cell is among them, score those vectors by inner
  product, order by decreasing score then position, keep ``k`` and pad with ``-1``. That is what
  ``faiss.IndexIVFFlat`` with an ``IndexFlatIP`` quantiser does; with ``nprobe`` equal to the number of cells
  it is exact search. On the notebook's film vectors a ``VectorIndex`` of kind "ivf" exposes its centroids
  through faiss (``index.index.quantizer.reconstruct_n``) and the function reproduces its answers.
* ``two_stage_from_ease`` (experiment) — ``TwoStage({"EASE": retrievers["EASE"]}, ranker, n_candidates=200)``,
  fitted on ``train`` (every part is already fitted and reused) and evaluated on ``test``. Lesson run: the
  notebook's BERTOffsetCF on EASE's 200 candidates scores NDCG@10 0.0336 and hit@10 0.2188, against 0.0377 and
  0.2153 on the round-robin union (section 1's table). EASE's candidates are the best of the four retrievers
  (recall@200 0.5352 against the union's 0.4576), yet the ranker does no better on them: its NDCG@10 is a little
  lower (by 0.004, under two standard errors even compared user by user) and its hit rate two of the 576 users
  higher. More relevant films among the candidates only help a ranker that can pick them out, and this one
  cannot: it stays far below EASE's own order (0.0883). The candidates can keep it from the worst films, not
  make it a better judge of the rest.
* ``quiz`` — the reasons are printed by ``show_solution("11.quiz")``.
"""
from __future__ import annotations

import numpy as np

from recsys_course.evaluate import evaluate
from recsys_course.retrieval import TwoStage


def reciprocal_rank_fusion(lists, n, c=60):
    score = {}
    for lst in lists:
        for rank, film in enumerate(lst, start=1):     # ranks from 1: the best film adds 1 / (c + 1)
            if film >= 0:                               # -1 is padding, not a film
                score[int(film)] = score.get(int(film), 0.0) + 1.0 / (c + rank)
    best = sorted(score, key=lambda film: (-score[film], film))[:n]   # ties: the smaller position first
    return np.array(best + [-1] * (n - len(best)), dtype=np.int64)


def ivf_search(vectors, centroids, cells, query, nprobe, k):
    vectors, centroids, query = (np.asarray(a, dtype=np.float64) for a in (vectors, centroids, query))
    probed = np.argsort(-(centroids @ query), kind="stable")[:nprobe]   # the nprobe best cells
    inside = np.flatnonzero(np.isin(cells, probed))                     # the vectors stored in them
    scores = vectors[inside] @ query
    best = inside[np.lexsort((inside, -scores))][:k]                    # best first, ties: smaller position
    return np.concatenate([best, np.full(k - len(best), -1)]).astype(np.int64)


def two_stage_from_ease(retrievers, ranker, train, test):
    system = TwoStage({"EASE": retrievers["EASE"]}, ranker, n_candidates=200).fit(train)
    return evaluate(system, train, test)


SOLUTIONS = {
    "11.rrf": reciprocal_rank_fusion,
    "11.ivf_search": ivf_search,
    "11.ease_candidates": two_stage_from_ease,
    "11.quiz": {1: "a", 2: 38.4, 3: "a", 4: "a", 5: "a"},
}

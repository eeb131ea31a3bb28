"""Checks of notebook 11 (personalised search): reciprocal-rank fusion of candidate lists, the IVF search of one
query by hand, an experiment (the ranker on EASE's candidates alone) and the questionnaire.

The function checks compare the student's function with a reference written here on the prompt's worked example,
random cases with ties and the edge cases the prompts name (padding ``-1`` in a list, a union smaller than ``n``,
probed cells holding fewer than ``k`` vectors).
"""
from __future__ import annotations

from functools import cache

import numpy as np

from . import exercise
from .answers import Wrong, array, call, course_run, fmt, keyed_numbers
from .quiz import Choice, Numeric, register_quiz

#: the prompt's worked example: three retrievers' lists for one user (catalogue positions, best first)
RRF_EXAMPLE = ([4, 1, 7], [1, 9, -1], [7, 4, 2])


# --------------------------------------------------------------------------------------------- reciprocal-rank fusion
def _rrf(lists, n, c=60.0, *, start=1, tie="position") -> np.ndarray:
    """Reference (and its variants): score(i) = Σ_lists 1 / (c + rank), top n, ties to the smaller position,
    padded with -1."""
    score: dict[int, float] = {}
    first_seen: dict[int, int] = {}
    for lst in lists:
        for rank, film in enumerate(np.asarray(lst).tolist(), start=start):
            if film < 0:
                continue
            score[film] = score.get(film, 0.0) + 1.0 / (c + rank)
            first_seen.setdefault(film, len(first_seen))
    key = (lambda f: (-score[f], f)) if tie == "position" else (lambda f: (-score[f], first_seen[f]))
    best = sorted(score, key=key)[:n]
    return np.array(best + [-1] * (n - len(best)), dtype=np.int64)


def _rrf_cases():
    rng = np.random.default_rng(11)
    cases = [("the prompt's example, n=5", RRF_EXAMPLE, 5, 60), ("the prompt's example, n=2", RRF_EXAMPLE, 2, 60),
             ("the prompt's example with c=1", RRF_EXAMPLE, 5, 1),
             ("three short lists with c=1", ([0, 4], [5, 4, 3], [2, 1, 3]), 4, 1)]
    for trial in range(5):
        n_lists, width = int(rng.integers(2, 5)), int(rng.integers(3, 9))
        lists = tuple(rng.permutation(12)[:width].tolist() for _ in range(n_lists))
        cases.append((f"random lists {trial}", lists, int(rng.integers(3, 10)), 60))
    cases.append(("two lists that are the same film order reversed (every film ties)", ([0, 1, 2], [2, 1, 0]), 3,
                  60))
    cases.append(("a union of 3 films and n=6", ([5, 3], [3, 8, -1]), 6, 60))
    return cases


@exercise("11.rrf")
def check_rrf(answer) -> None:
    for what, lists, n, c in _rrf_cases():
        want = _rrf(lists, n, c)
        got = array(call(answer, [list(x) for x in lists], n, c), "reciprocal_rank_fusion(lists, n, c)", ndim=1)
        if len(got) and not np.array_equal(got, np.round(got)):
            raise Wrong(f"on {what}: got {fmt(got)}; return the films' positions (whole numbers), not their scores")
        got = got.astype(np.int64)
        if np.array_equal(got, want):
            continue
        if len(got) != len(want):
            hint = (f"return exactly n = {n} positions, padded with -1 when the lists hold fewer distinct films "
                    "(the convention of merge_candidates).")
        elif np.array_equal(got, _rrf(lists, n, c, start=0)):
            hint = "ranks start at 1 for each list's best film, so its contribution is 1 / (c + 1)."
        elif np.array_equal(got, _rrf(lists, n, c, tie="first")):
            hint = "equal fused scores: the smaller position goes first, not the film met first."
        elif (got == -1).sum() < (want == -1).sum() and -1 in got[: (want >= 0).sum()]:
            hint = "-1 in a list is padding, not a film: skip it."
        elif len(set(got[got >= 0].tolist())) < (got >= 0).sum():
            hint = "a film appears twice: fuse the lists into ONE score per film first, then take the top n."
        else:
            hint = ("each film's fused score is the sum over the lists that contain it of 1 / (c + its rank there); "
                    "return the n best positions, best first.")
        raise Wrong(f"on {what}: got {got.tolist()}, expected {want.tolist()}. {hint}")


# --------------------------------------------------------------------------------------------- IVF by hand
def _ivf(vectors, centroids, cells, query, nprobe, k, *, metric="ip", probe_all=False) -> np.ndarray:
    v, cen, q = (np.asarray(a, dtype=np.float64) for a in (vectors, centroids, query))
    if metric == "ip":
        order = np.argsort(-(cen @ q), kind="stable")
    else:  # the nearest centres in Euclidean distance (not what an inner-product IVF does)
        order = np.argsort(((cen - q) ** 2).sum(1), kind="stable")
    probed = np.arange(len(cen)) if probe_all else order[:nprobe]
    inside = np.flatnonzero(np.isin(np.asarray(cells), probed))
    s = v[inside] @ q
    best = inside[np.lexsort((inside, -s))][:k]
    return np.concatenate([best, np.full(k - len(best), -1)]).astype(np.int64)


def _ivf_world(seed: int, n: int = 60, dim: int = 4, nlist: int = 6, spread: float = 3.0):
    """Vectors in clusters (centres not of unit length, so nearest-in-distance and best-in-inner-product
    differ), each assigned to the centre with the largest inner product, as faiss' IndexIVFFlat does."""
    rng = np.random.default_rng(seed)
    centroids = rng.normal(size=(nlist, dim)) * rng.uniform(0.5, spread, size=(nlist, 1))
    vectors = centroids[rng.integers(0, nlist, n)] + rng.normal(size=(n, dim))
    cells = np.argmax(vectors @ centroids.T, axis=1)
    return vectors.round(2), centroids, cells


def _ivf_cases():
    cases = []
    for seed in range(4):
        vectors, centroids, cells = _ivf_world(seed)
        rng = np.random.default_rng(100 + seed)
        for nprobe, k in ((1, 3), (2, 5), (3, 4)):
            cases.append((f"world {seed}, nprobe={nprobe}, k={k}", vectors, centroids, cells,
                          rng.normal(size=vectors.shape[1]).round(2), nprobe, k))
    vectors, centroids, cells = _ivf_world(7, n=12, nlist=6)
    cases.append(("a small world whose probed cell holds fewer than k vectors", vectors, centroids, cells,
                  centroids[np.bincount(cells, minlength=6).argmin()], 1, 8))
    tie = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    cases.append(("equal scores (ties go to the smaller position)", tie, np.array([[1.0, 0.0], [0.0, 1.0]]),
                  np.array([0, 0, 1, 0]), np.array([1.0, 0.0]), 1, 2))
    return cases


@exercise("11.ivf_search")
def check_ivf_search(answer) -> None:
    for what, vectors, centroids, cells, query, nprobe, k in _ivf_cases():
        want = _ivf(vectors, centroids, cells, query, nprobe, k)
        got = array(call(answer, vectors, centroids, cells, query, nprobe, k),
                    "ivf_search(vectors, centroids, cells, query, nprobe, k)", ndim=1)
        if len(got) and not np.array_equal(got, np.round(got)):
            raise Wrong(f"on {what}: got {fmt(got)}; return positions of vectors (whole numbers), not scores")
        got = got.astype(np.int64)
        if np.array_equal(got, want):
            continue
        if len(got) != k:
            hint = f"return k = {k} positions, padded with -1 when the probed cells hold fewer vectors (as faiss does)."
        elif np.array_equal(got, _ivf(vectors, centroids, cells, query, nprobe, k, probe_all=True)):
            hint = ("these are the exact top k over ALL vectors: IVF scans only the vectors of the nprobe cells "
                    "whose centres score best.")
        elif np.array_equal(got, _ivf(vectors, centroids, cells, query, nprobe, k, metric="l2")):
            hint = ("you probed the centres nearest in Euclidean distance; this index scores centres by inner "
                    "product with the query, like everything else in it.")
        elif nprobe > 1 and np.array_equal(got, _ivf(vectors, centroids, cells, query, 1, k)):
            hint = "only one cell was searched: probe the nprobe best cells."
        elif np.array_equal(got[got >= 0], np.sort(got[got >= 0])) and not np.array_equal(want, np.sort(want)):
            hint = "the result must be best first (largest inner product), not sorted by position."
        else:
            hint = ("score the centroids by inner product with the query, keep the nprobe best cells, then take the "
                    "k vectors of those cells with the largest inner product, best first (ties: smaller position).")
        raise Wrong(f"on {what}: got {got.tolist()}, expected {want.tolist()}. {hint}")


# --------------------------------------------------------------------------------------------- experiment
METRICS = ("ndcg@10", "hit@10")
TOLERANCE = 0.0005  # the same code on the same fitted objects gives the same numbers; this covers summation order
N_CANDIDATES = 200


@cache
def _inputs():
    """A small world for the tests: the smoke profile's users of ml-latest-small, EASE and Popularity as the
    retrievers, ALS as the ranker (the notebook passes its own fitted objects, BERTOffsetCF as the ranker)."""
    from ..models import ALS, EASE, Popularity
    from ..split import ranking_split
    from .answers import smoke_ratings

    train, test = ranking_split(smoke_ratings())
    retrievers = {"EASE": EASE().fit(train), "Popularity": Popularity().fit(train)}
    return retrievers, ALS().fit(train), train, test


def _two_stage(retrievers, ranker, train, test, which=("EASE",), n=N_CANDIDATES) -> dict:
    from ..evaluate import evaluate
    from ..retrieval import TwoStage

    system = TwoStage({name: retrievers[name] for name in which}, ranker, n_candidates=n).fit(train)
    row = evaluate(system, train, test)
    return {m: float(row[m]) for m in METRICS}


def _union(retrievers, ranker, train, test) -> dict:
    return _two_stage(retrievers, ranker, train, test, which=tuple(retrievers))


def _ease_alone(retrievers, ranker, train, test) -> dict:
    from ..evaluate import evaluate

    row = evaluate(retrievers["EASE"], train, test)
    return {m: float(row[m]) for m in METRICS}


def _near(got: dict, want: dict) -> bool:
    return all(abs(got[m] - want[m]) <= TOLERANCE for m in METRICS)


@exercise("11.ease_candidates", kind="experiment", inputs=_inputs)
def check_ease_candidates(answer, retrievers, ranker, train, test) -> str:
    if "EASE" not in retrievers:
        raise Wrong("pass the notebook's `retrievers` dict, which has an 'EASE' entry")
    got = keyed_numbers(call(answer, retrievers, ranker, train, test), METRICS,
                        "(or the row evaluate gives, a Series)", lambda m: f"the value of {m!r}")
    want = course_run(_two_stage, retrievers, ranker, train, test)
    union = course_run(_union, retrievers, ranker, train, test)
    if _near(got, want):
        return (f"the ranker on EASE's {N_CANDIDATES} candidates: NDCG@10 {fmt(got['ndcg@10'])}, hit@10 "
                f"{fmt(got['hit@10'])} (the course's run: {fmt(want['ndcg@10'])}); on the round-robin union of every "
                f"retriever it was {fmt(union['ndcg@10'])}.")
    if _near(got, union):
        hint = ("these are the numbers of the notebook's system, the union of every retriever; keep only EASE's "
                "candidates.")
    elif _near(got, course_run(_ease_alone, retrievers, ranker, train, test)):
        hint = ("these are EASE's own numbers: EASE chooses the candidates, but the ranker must order them "
                "(TwoStage with EASE as the only retriever).")
    else:
        hint = (f"build TwoStage with a dict holding only retrievers['EASE'], the notebook's ranker and "
                f"n_candidates={N_CANDIDATES}, fit it on train (the fitted parts are reused) and evaluate it on test.")
    raise Wrong(f"your NDCG@10 {fmt(got['ndcg@10'])} and hit@10 {fmt(got['hit@10'])}; the course's run gives "
                f"{fmt(want['ndcg@10'])} and {fmt(want['hit@10'])} (tolerance ±{fmt(TOLERANCE)}). {hint}")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("11", [
    Choice("In section 1 BERTOffsetCF ranks far better on 200 candidates than on the whole catalogue. Why?",
           {"a": "the candidates leave out the obscure films that a rating model scores high on a few ratings, and "
                 "that users rarely watch",
            "b": "ranking fewer films is always more accurate",
            "c": "the two-stage system uses a different, better ranker",
            "d": "the whole-catalogue run had a bug: it recommended films the user had seen"},
           answer="a",
           why="BERTOffsetCF is trained to predict the stars of films people chose to rate; on the whole catalogue "
               "its top 10 is full of films with few but high ratings. The retrievers (EASE, PureSVD, popularity) "
               "only propose films users tend to watch, so they filter those out. Fewer candidates, from good "
               "retrievers, help a weak ranker; with a strong ranker (EASE) they change nothing.",
           hints={"b": "with EASE as the ranker, the two-stage system scores exactly as EASE alone: it is about "
                       "which films the candidates leave out.",
                  "c": "the ranker is the same fitted BERTOffsetCF object in both runs.",
                  "d": "evaluate excludes seen films in both runs, through the same recommend."}),
    Numeric("A flat (exact) index answers one query over 100,000 vectors of 384 dimensions by a full scan. How "
            "many multiply-adds is that, in millions?",
            answer=38.4, tol=0.05,
            why="100,000 × 384 = 38.4 million multiply-adds per query: why the exact search's latency grows in "
                "proportion to the catalogue, and the reason approximate indexes exist.",
            hint="one inner product per vector, each with one multiply-add per dimension."),
    Choice("On the real film vectors, IVF needs nprobe = 64 to reach a recall near 0.96, while on the synthetic "
           "vectors nprobe = 4 is enough. What is the most likely reason?",
           {"a": "the queries (user profiles, averages of many films) fall between the k-means cells, so their "
                 "nearest films are spread over many cells",
            "b": "the film vectors are not normalised",
            "c": "faiss' IVF has a bug on real data",
            "d": "the film catalogue is too small for IVF to be exact"},
           answer="a",
           why="IVF is fast when a query's neighbours share its cell. The synthetic queries are drawn around the same "
               "centres as the vectors; a user's text profile is an average of films of several kinds, so its best "
               "films lie in many cells and few probes miss them. HNSW's graph copes better with such queries.",
           hints={"b": "the notebook normalises them (R.normalise) before indexing.",
                  "c": "with nprobe = nlist IVF is exact; it is the queries' position relative to the cells that "
                       "matters.",
                  "d": "size does not decide exactness: probing every cell is exact at any size."}),
    Choice("With the 'leaky' queries, the query alone (λ = 1) finds the target film far better than with the 'fair' "
           "queries. What does the leaky setup measure?",
           {"a": "mostly that the query copies words the film's own text contains (its top tags), which a real user "
                 "would not type",
            "b": "how good the sentence encoder is at understanding queries",
            "c": "the value of personalisation",
            "d": "nothing: the two setups should give the same numbers"},
           answer="a",
           why="item_texts writes each film's three most frequent tags into its text; a query built from the same tags "
               "matches that text word for word. The fair queries keep only tags that are not in the film's text, "
               "so the encoder must bridge different words — and most queries are then genres only.",
           hints={"b": "the same encoder runs in both setups; only the query words differ.",
                  "c": "λ = 1 uses no personal score at all.",
                  "d": "they differ exactly in which tag words a query may use."}),
    Choice("In section 4, PureSVD folded in from 1 rating recommends worse than Popularity for the hidden users. "
           "What should a service do for a brand-new user?",
           {"a": "start from popularity (or blend it in) and let the folded-in model take over as ratings arrive",
            "b": "retrain the model every time a new user rates a film",
            "c": "always recommend from the taste text alone",
            "d": "wait until the user has rated 10 films before recommending anything"},
           answer="a",
           why="one rating tells the projection little, and the popular films are what a new user most likely "
               "watches; by 10 ratings the fold-in catches up. Folding in costs a small solve, no retraining.",
           hints={"b": "fold-in gives the new user a vector with the item side fixed: no retraining is needed.",
                  "c": "the taste text alone scored far below Popularity in this experiment.",
                  "d": "a service must show something on the first visit; popularity is a strong start."}),
])

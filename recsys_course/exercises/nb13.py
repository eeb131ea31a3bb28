"""Checks of notebook 13 (context, knowledge graphs, modalities, domains, explanations): the factorisation machine's
pairwise term in O(kn), a personalised PageRank by power iteration, an experiment and the questionnaire.

The function checks compare the student's function with a reference written here on the prompt's worked example,
random cases and the edge cases the prompts name (a feature vector that is not binary, a single feature, a node with
no edges, a restart probability of 1).
"""
from __future__ import annotations

from functools import cache

import numpy as np

from . import exercise
from .answers import Wrong, array, call, close, course_run, fmt, number
from .quiz import Choice, Numeric, register_quiz

# --------------------------------------------------------------------------------------------- FM pairwise term
#: the prompt's worked example: three features with 2 factors each, x = (1, 1, 0.5)
FM_EXAMPLE = (np.array([[1.0, 0.0], [0.5, 2.0], [-1.0, 1.0]]), np.array([1.0, 1.0, 0.5]))


def _pairwise(V, x, *, half=True, squares=True, diagonal=False) -> float:
    """Reference (and its variants): ½ Σ_f [(Σ_i v_if x_i)² − Σ_i v_if² x_i²] = Σ_{i<j} <v_i, v_j> x_i x_j."""
    V, x = np.asarray(V, dtype=float), np.asarray(x, dtype=float)
    s = V.T @ x
    total = float(np.sum(s ** 2))
    if not diagonal:
        total -= float(np.sum((V ** 2).T @ (x ** 2 if squares else x)))
    return total / 2 if half else total


def _naive(V, x) -> float:
    n = len(x)
    return float(sum(V[i] @ V[j] * x[i] * x[j] for i in range(n) for j in range(i + 1, n)))


def _fm_cases():
    rng = np.random.default_rng(13)
    cases = [("the prompt's example", *FM_EXAMPLE),
             ("a single feature (no pair)", np.array([[0.3, -0.7, 1.1]]), np.array([2.0])),
             ("one-hot user and film, binary x", rng.normal(size=(6, 3)), np.array([1.0, 0, 0, 0, 1.0, 0])),
             ("a context feature of value 2.5", rng.normal(size=(4, 2)), np.array([1.0, 0.0, 1.0, 2.5]))]
    for trial in range(4):
        n, k = int(rng.integers(3, 25)), int(rng.integers(1, 8))
        x = rng.normal(size=n) * (rng.random(n) < 0.6)
        cases.append((f"random real-valued x {trial} (n={n}, k={k})", rng.normal(size=(n, k)), x))
    return cases


@exercise("13.fm_pairwise")
def check_fm_pairwise(answer) -> None:
    for what, V, x in _fm_cases():
        want = _pairwise(V, x)
        assert close(want, _naive(V, x), rtol=1e-9, atol=1e-9)  # the identity itself
        got = number(call(answer, V, x), "fm_pairwise(V, x)")
        if close(got, want, rtol=1e-7, atol=1e-9):
            continue
        if close(got, _pairwise(V, x, half=False), rtol=1e-7, atol=1e-9):
            hint = "that is twice the term: each pair (i, j) appears twice in the square, (i, j) and (j, i) — halve it."
        elif close(got, _pairwise(V, x, diagonal=True), rtol=1e-7, atol=1e-9):
            hint = ("the square (Σ_i v_if x_i)² also holds the products of a feature with itself (i = j); subtract "
                    "Σ_i v_if² x_i² before halving.")
        elif close(got, _pairwise(V, x, squares=False), rtol=1e-7, atol=1e-9):
            hint = ("the term you subtract must use x_i², not x_i: it is the i = j part of the square "
                    "(v_if x_i)(v_if x_i). With binary x the two agree; with a real-valued x (a context value 2.5) "
                    "they do not.")
        else:
            hint = ("compute s_f = Σ_i v_if x_i for every factor f (one matrix product), then "
                    "½ Σ_f [s_f² − Σ_i v_if² x_i²].")
        raise Wrong(f"on {what}: got {fmt(got)}, expected {fmt(want)}. {hint}")


# --------------------------------------------------------------------------------------------- personalised PageRank
#: the prompt's worked example: a path 0 – 1 – 2 plus an edge 1 – 3 (weights 1), start at node 0, α = 0.5, 20 steps
PPR_EXAMPLE = (np.array([[0, 1, 0, 0], [1, 0, 1, 1], [0, 1, 0, 0], [0, 1, 0, 0]], dtype=float), 0, 0.5, 20)


def _ppr(A, start, alpha, n_iter, *, by="column", restart=True, dangling="start", swap=False) -> np.ndarray:
    """Reference (and its variants): p ← (1 − α) P p + α e_start from p = e_start, P_ij = A_ij / Σ_i A_ij (column
    sums: the walker at j moves to i in proportion to the weight of the edge); a node with no edges sends its
    mass back to the start."""
    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    sums = A.sum(axis=0) if by == "column" else A.sum(axis=1)
    safe = np.where(sums > 0, sums, 1.0)
    P = A / safe[None, :] if by == "column" else (A / safe[:, None])
    e = np.zeros(n)
    e[start] = 1.0
    a = 1 - alpha if swap else alpha
    p = e.copy()
    for _ in range(n_iter):
        walked = P @ p
        if dangling == "start":
            walked = walked + p[sums == 0].sum() * e
        p = (1 - a) * walked + (a * e if restart else 0.0)
    return p


def _ppr_cases():
    rng = np.random.default_rng(131)
    A, start, alpha, n_iter = PPR_EXAMPLE
    cases = [("the prompt's example", A, start, alpha, n_iter),
             ("the prompt's graph, α = 1 (the walker never leaves)", A, 2, 1.0, 5),
             ("a node with no edges (node 3 is isolated), start at 1", np.array(
                 [[0, 2, 1, 0], [2, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=float), 1, 0.2, 30),
             ("weighted edges", np.array([[0, 3, 0], [3, 0, 1], [0, 1, 0]], dtype=float), 0, 0.15, 40),
             ("starting at a node with no edges", np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=float), 2, 0.3,
              10)]
    for trial in range(4):
        n = int(rng.integers(4, 12))
        W = rng.random((n, n)) * (rng.random((n, n)) < 0.5)
        W = np.triu(W, 1)
        W = W + W.T                                   # undirected, weighted
        cases.append((f"random weighted graph {trial} (n={n})", W, int(rng.integers(n)),
                      float(rng.choice([0.1, 0.3, 0.6])), int(rng.integers(10, 40))))
    return cases


@exercise("13.personalised_pagerank")
def check_personalised_pagerank(answer) -> None:
    for what, A, start, alpha, n_iter in _ppr_cases():
        want = _ppr(A, start, alpha, n_iter)
        got = array(call(answer, A, start, alpha, n_iter), "personalised_pagerank(A, start, alpha, n_iter)",
                    shape=(A.shape[0],))
        if np.allclose(got, want, rtol=1e-7, atol=1e-10):
            continue
        variants = [(dict(by="row"), "normalise each column of A by its sum (P_ij = A_ij / Σ_i A_ij: where the "
                                     "walker at j goes next), not each row: on a graph whose nodes have different "
                                     "degrees the two differ."),
                    (dict(swap=True), "α is the probability to restart at the start node; the walk takes the "
                                      "edges with probability 1 − α. You swapped them."),
                    (dict(restart=False), "at every step the walker restarts with probability α: add α e_start "
                                          "each iteration, not only at the beginning."),
                    (dict(dangling="lost"), "a node with no edges has nowhere to go: send its mass back to the "
                                            "start node, or the probabilities stop summing to 1.")]
        hint = next((h for kw, h in variants if np.allclose(got, _ppr(A, start, alpha, n_iter, **kw), rtol=1e-7,
                                                            atol=1e-10)), None)
        if hint is None:
            hint = ("start from p = e_start, build P with P_ij = A_ij / Σ_i A_ij, then n_iter times "
                    "p ← (1 − α) P p + α e_start (plus the mass of nodes with no edges sent back to the start).")
        total = float(np.sum(got))
        extra = f" (your vector sums to {fmt(total)}; it should sum to 1)" if not close(total, 1.0, atol=1e-8) else ""
        raise Wrong(f"on {what}: got {fmt(got)}, expected {fmt(want)}{extra}. {hint}")


# --------------------------------------------------------------------------------------------- experiment
TOLERANCE = 1e-9  # the same walk on the same data gives the same numbers


@cache
def _inputs():
    """A small world for the tests: the smoke profile's users of ml-latest-small on the ranking split, the films
    and tags of the whole data set, a restart probability of 0.3 (the notebook passes its own objects)."""
    from ..data import load_movielens
    from ..split import ranking_split
    from .answers import smoke_ratings

    ml = load_movielens()
    train, test = ranking_split(smoke_ratings())
    return train, test, ml.movies, ml.tags, 0.3


def _walk(train, test, movies, tags, restart, beta=0.3, with_tags=True) -> dict:
    from ..evaluate import evaluate
    from ..models.graph import RandomWalk

    model = RandomWalk(movies=movies, tags=tags if with_tags else None, restart=restart, beta=beta).fit(train)
    row = evaluate(model, train, test)
    return {"ndcg@10": float(row["ndcg@10"]), "coverage@10": float(row["coverage@10"])}


def _walk_default(train, test, movies, tags, restart):
    return _walk(train, test, movies, tags, 0.8)


def _walk_plain(train, test, movies, tags, restart):
    return _walk(train, test, movies, tags, restart, beta=0.0)


def _walk_no_tags(train, test, movies, tags, restart):
    return _walk(train, test, movies, tags, restart, with_tags=False)


def _as_metrics(got) -> dict:
    if got is None:
        raise Wrong("got None: did you forget the `return`? Return {'ndcg@10': ..., 'coverage@10': ...}.")
    if not isinstance(got, dict) and type(got).__name__ != "Series":
        raise Wrong(f"return a dict {{'ndcg@10': ..., 'coverage@10': ...}} (or evaluate's Series), got a "
                    f"{type(got).__name__}")
    got = dict(got)
    missing = [m for m in ("ndcg@10", "coverage@10") if m not in got]
    if missing:
        raise Wrong(f"the answer has no {missing}: return evaluate's row (or a dict with both metrics)")
    return {m: number(got[m], m) for m in ("ndcg@10", "coverage@10")}


@exercise("13.restart", kind="experiment", inputs=_inputs)
def check_restart(answer, train, test, movies, tags, restart) -> str:
    got = _as_metrics(call(answer, train, test, movies, tags, restart))
    want = course_run(_walk, train, test, movies, tags, restart)

    def same(other):
        return all(close(got[m], other[m], rtol=0, atol=TOLERANCE) for m in got)

    if same(want):
        default = course_run(_walk_default, train, test, movies, tags, restart)
        return (f"restart α = {fmt(restart)}: NDCG@10 {fmt(want['ndcg@10'])}, coverage@10 "
                f"{fmt(want['coverage@10'])} (the default α = 0.8: {fmt(default['ndcg@10'])} and "
                f"{fmt(default['coverage@10'])}).")
    if not close(restart, 0.8) and same(course_run(_walk_default, train, test, movies, tags, restart)):
        hint = "these are the default walk's numbers (restart=0.8): pass restart=restart to RandomWalk."
    elif same(course_run(_walk_plain, train, test, movies, tags, restart)):
        hint = "this is the plain walk (beta=0); keep the model's degree correction, beta=0.3 (its default)."
    elif same(course_run(_walk_no_tags, train, test, movies, tags, restart)):
        hint = "the graph has no tag nodes: pass tags (the notebook's kg_tags) to RandomWalk."
    else:
        hint = ("fit RandomWalk(movies=movies, tags=tags, restart=restart) on train and return "
                "evaluate(model, train, test): its ndcg@10 and coverage@10.")
    raise Wrong(f"you got NDCG@10 {fmt(got['ndcg@10'])}, coverage@10 {fmt(got['coverage@10'])}; the course's run "
                f"gives {fmt(want['ndcg@10'])} and {fmt(want['coverage@10'])}. {hint}")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("13", [
    Choice("Against the shuffle *within each user's own ratings*, most of the hour of day's genre shift disappears. "
           "What does that say?",
           {"a": "most of the hour effect is who rates at which hour, not the same user choosing other genres at "
                 "another hour",
            "b": "the hour of day has no relation to genre at all",
            "c": "the shuffle was not seeded",
            "d": "users watch different genres at night"},
           answer="a",
           why="shuffling among a user's own ratings keeps who rated what and breaks only when; what survives that "
               "null is the part a context model could use for a given user. And a timestamp is when the rating "
               "was entered (UTC), not when the film was watched.",
           hints={"b": "against the shuffle across all ratings the hour's shift is far above its null: it is related, "
                       "just mostly through the users.",
                  "c": "both nulls are seeded; the question is what each shuffle keeps.",
                  "d": "MovieLens records when a rating was typed in, in UTC — not when or where a film was watched."}),
    Choice("The factorisation machine with context scores NDCG@10 0.0000 on the ranking track while the same FM without "
           "context scores 0.0281. Why?",
           {"a": "it ranks by predicted rating, and the film-age context raises the predicted rating of old films, "
                 "which are rarely the films users rate next",
            "b": "the context features leak the test ratings",
            "c": "the FM did not train: its weights stayed at zero",
            "d": "the ranking track has no context"},
           answer="a",
           why="a context effect on ratings is not a context effect on choice: old films that are still rated get "
               "high ratings, so a model of ratings puts them first for everybody.",
           hints={"b": "a leak would make the numbers too good, not zero.",
                  "c": "the same FM reaches RMSE 0.9206 on the rating track: it learned something.",
                  "d": "each user's request carries the context of their first test rating (InContext)."}),
    Numeric("A random walk on the path a – b – c restarts at a with probability α = 1/2 at every step. What share of "
            "its time does it spend at a in the long run (to 4 decimals)?",
            answer=7 / 12, tol=0.002,
            why="p_a = 1/2 + 1/2 · 1/2 p_b, p_b = 1/2 (p_a + p_c), p_c = 1/2 · 1/2 p_b give p = (7/12, 4/12, 1/12).",
            hint="write the fixed point p = (1 − α) P p + α e_a for the three nodes and solve (section 2.1)."),
    Choice("On the cold films the walk (NDCG@10 0.1340) is far ahead of TextProfile (0.0759). What carries most of "
           "that lead?",
           {"a": "the tag nodes — and a cold film's number of tags goes with its number of test ratings, partly a "
                 "popularity signal",
            "b": "the cold films' `rated` edges",
            "c": "TransE's vectors",
            "d": "the decade nodes alone"},
           answer="a",
           why="without tag nodes the walk drops to 0.0803; tags are written by people who watched the film, so a "
               "film with many tags is a film many people saw (Spearman 0.3814 with its test ratings).",
           hints={"b": "a cold film has no rating in train, so no `rated` edge.",
                  "c": "the walk does not use TransE; TransE itself scores 0.0438 on the cold films.",
                  "d": "the walk without tags keeps genres and decades and falls to 0.0803."}),
    Choice("A surrogate of EASE on genres and tags gives weights that read like a fine story. What must be shown next "
           "to it?",
           {"a": "its fidelity: how much of the model's scores it reproduces on held-out films (here R² ≈ 0.05)",
            "b": "nothing: a sparse model is interpretable by construction",
            "c": "the number of users it was fitted for",
            "d": "the model's RMSE"},
           answer="a",
           why="a surrogate explains itself, not the model, unless it fits the model; with R² near 0.05 the story "
               "describes about 5 % of EASE's scores. The deletion test is the other check.",
           hints={"b": "readable is not the same as faithful: the surrogate may describe a different model.",
                  "c": "one surrogate is fitted per user; how many does not say whether one is right.",
                  "d": "EASE ranks; its own accuracy says nothing about whether the surrogate describes it."}),
])

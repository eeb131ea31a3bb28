"""Checks of notebook 12 (real time): a popularity decayed in time and updated per event, the Gini of an exposure
vector, an experiment (the feedback loop at another ε) and the questionnaire.

The function checks compare the student's function with a reference written here on the prompt's worked example,
random cases and the edge cases the prompts name (several events at the same time, a film shown to nobody, a
single film).
"""
from __future__ import annotations

from functools import cache

import numpy as np

from . import exercise
from .answers import Wrong, array, call, close, course_run, fmt, number
from .quiz import Choice, Numeric, register_quiz

#: the prompt's worked example: (movieId, timestamp) events in time order, a half-life of 10 and "now" = 30
DECAY_EXAMPLE = ([1, 2, 1, 3], [0, 10, 20, 30], 10.0, 30)


# --------------------------------------------------------------------------------------------- decayed popularity
def _decayed(movie_ids, timestamps, half_life, now, *, base=0.5, final=True, decay=True) -> dict:
    """Reference (and its variants): score(i) = Σ over i's events of base ** ((now − t) / half_life), updated per
    event: the old score is decayed to the event's time, then 1 is added."""
    score: dict[int, float] = {}
    last: dict[int, float] = {}
    for movie, t in zip(np.asarray(movie_ids).tolist(), np.asarray(timestamps, dtype=float).tolist()):
        old = score.get(movie, 0.0)
        if decay and movie in last:
            old *= base ** ((t - last[movie]) / half_life)
        score[movie], last[movie] = old + 1.0, t
    if final and decay:
        score = {m: s * base ** ((now - last[m]) / half_life) for m, s in score.items()}
    return score


def _decay_cases():
    rng = np.random.default_rng(12)
    cases = [("the prompt's example", *DECAY_EXAMPLE),
             ("the prompt's example seen later (now = 50)", *DECAY_EXAMPLE[:3], 50),
             ("three events at the same time", [4, 4, 4], [5, 5, 5], 2.0, 5),
             ("one film, a long half-life", [7, 7], [0, 1000], 1e6, 2000)]
    for trial in range(4):
        n = int(rng.integers(5, 30))
        times = np.sort(rng.integers(0, 10_000, n))
        cases.append((f"random events {trial}", rng.integers(1, 8, n).tolist(), times.tolist(),
                      float(rng.choice([100.0, 1000.0, 5000.0])), int(times[-1] + rng.integers(0, 3000))))
    return cases


def _as_scores(got, what: str) -> dict:
    if got is None:
        raise Wrong(f"{what} returned None — did you forget the `return`?")
    if not (isinstance(got, dict) or type(got).__name__ == "Series"):
        raise Wrong(f"{what} should return a dict {{movieId: score}} (or a pandas Series indexed by movieId), "
                    f"got a {type(got).__name__}")
    return {int(k): number(v, f"the score of film {k}") for k, v in dict(got).items()}


@exercise("12.decayed_popularity")
def check_decayed_popularity(answer) -> None:
    for what, movies, times, half_life, now in _decay_cases():
        want = _decayed(movies, times, half_life, now)
        got = _as_scores(call(answer, list(movies), list(times), half_life, now),
                         "decayed_popularity(movie_ids, timestamps, half_life, now)")
        if set(got) != set(want):
            raise Wrong(f"on {what}: the films scored are {sorted(got)}, expected {sorted(want)} (every film with "
                        "at least one event, and no other)")
        if all(close(got[m], want[m], rtol=1e-7, atol=1e-9) for m in want):
            continue
        if all(close(got[m], _decayed(movies, times, half_life, now, base=np.exp(-1))[m], rtol=1e-7) for m in want):
            hint = ("you decayed by e^(−Δt / half_life): after one half-life a weight must be exactly one half, "
                    "so 0.5 ** (Δt / half_life).")
        elif all(close(got[m], _decayed(movies, times, half_life, now, decay=False)[m]) for m in want):
            hint = "these are plain counts: each event's weight must halve every half_life seconds before `now`."
        elif all(close(got[m], _decayed(movies, times, half_life, now, final=False)[m], rtol=1e-7) for m in want):
            hint = ("each score is right at the film's last event, but not decayed from there to `now`: the scores "
                    "must be comparable at one moment.")
        else:
            hint = ("keep (score, time of last update) per film; at an event decay the score to the event's time "
                    "(× 0.5 ** (Δt / half_life)), add 1; at the end decay every score to `now`.")
        raise Wrong(f"on {what}: got {fmt({m: got[m] for m in sorted(got)})}, expected "
                    f"{fmt({m: want[m] for m in sorted(want)})}. {hint}")


# --------------------------------------------------------------------------------------------- Gini of exposure
def _gini(shown, n_items, *, all_films=True) -> float:
    counts = np.bincount(np.asarray(shown, dtype=np.int64), minlength=n_items).astype(float)
    if not all_films:
        counts = counts[counts > 0]
    x = np.sort(counts)
    n = x.size
    k = np.arange(1, n + 1)
    return float(np.sum((2 * k - n - 1) * x) / (n * x.sum()))


def _gini_cases():
    rng = np.random.default_rng(120)
    cases = [("the prompt's example", [0, 0, 0, 1, 2, 2], 5),
             ("every film shown once", [0, 1, 2, 3], 4),
             ("one film shown, nine never", [3, 3, 3], 10),
             ("a single film", [0, 0], 1)]
    for trial in range(4):
        n_items = int(rng.integers(5, 40))
        weights = rng.pareto(1.0, n_items) + 0.01
        cases.append((f"random exposure {trial}", rng.choice(n_items, size=int(rng.integers(10, 200)),
                                                             p=weights / weights.sum()).tolist(), n_items))
    return cases


@exercise("12.exposure_gini")
def check_exposure_gini(answer) -> None:
    for what, shown, n_items in _gini_cases():
        want = _gini(shown, n_items)
        got = number(call(answer, list(shown), n_items), "exposure_gini(shown, n_items)")
        if close(got, want, rtol=1e-9, atol=1e-12):
            continue
        counts = np.bincount(shown, minlength=n_items)
        if (counts == 0).any() and close(got, _gini(shown, n_items, all_films=False), atol=1e-12):
            hint = ("the films never shown are left out: they are the catalogue's unexposed films, counted with "
                    "0 showings (np.bincount(shown, minlength=n_items)).")
        elif close(got, 1 - want, atol=1e-12):
            hint = "that is 1 − Gini: 0 must mean equal exposure, values near 1 one film shown to everybody."
        elif n_items > 1 and close(got, want * n_items / (n_items - 1), atol=1e-12):
            hint = "divide by n · Σx (the formula of section 2), not (n − 1) · Σx."
        else:
            hint = ("count the showings of every film of the catalogue (0 for those never shown), sort them "
                    "ascending, then G = Σ_k (2k − n − 1) x_(k) / (n Σ x).")
        raise Wrong(f"on {what} (n_items={n_items}): got {fmt(got)}, expected {fmt(want)}. {hint}")


# --------------------------------------------------------------------------------------------- experiment
TOLERANCE = 1e-6  # the same loop with the same seed gives the same numbers
COLUMNS = ("coverage", "gini", "utility")


def factor_model():
    """The notebook's factor model in the feedback loop."""
    from ..models import PureSVD

    return PureSVD(n_factors=8)


@cache
def _inputs():
    """A small world for the tests: 100 users, 150 films, 4 rounds at ε = 0.2 (the notebook passes its own)."""
    from ..synthetic import make_synthetic

    return make_synthetic(n_users=100, n_items=150, seed=0), 0.2, 4


def _loop(world, epsilon, rounds, make_model=factor_model, seed=0):
    from ..stream import feedback_loop

    return feedback_loop(world, make_model, rounds=rounds, epsilon=epsilon, seed=seed)


def _greedy(world, epsilon, rounds):
    return _loop(world, 0.0, rounds)


def _popularity(world, epsilon, rounds):
    from ..models import Popularity

    return _loop(world, epsilon, rounds, make_model=Popularity)


def _columns(got, rounds) -> dict:
    if got is None:
        raise Wrong("got None: did you forget the `return`? Return the frame feedback_loop gives.")
    if type(got).__name__ != "DataFrame":
        raise Wrong(f"return the DataFrame feedback_loop gives (one row per round), got a {type(got).__name__}")
    missing = [c for c in COLUMNS if c not in got.columns]
    if missing:
        raise Wrong(f"the frame has no column(s) {missing}: return feedback_loop's frame itself")
    if len(got) != rounds:
        raise Wrong(f"the frame has {len(got)} rows; run `rounds` = {rounds} rounds (one row each)")
    return {c: array(got[c], f"the column {c!r}", ndim=1) for c in COLUMNS}


def _same(got: dict, frame) -> bool:
    return all(np.allclose(got[c], frame[c].to_numpy(), rtol=0, atol=TOLERANCE) for c in COLUMNS)


@exercise("12.epsilon", kind="experiment", inputs=_inputs)
def check_epsilon(answer, world, epsilon, rounds) -> str:
    got = _columns(call(answer, world, epsilon, rounds), rounds)
    want = course_run(_loop, world, epsilon, rounds)
    if _same(got, want):
        greedy = course_run(_greedy, world, epsilon, rounds)
        return (f"ε = {fmt(epsilon)}, {rounds} rounds: last-round coverage {fmt(want['coverage'].iloc[-1])} (greedy "
                f"{fmt(greedy['coverage'].iloc[-1])}), Gini {fmt(want['gini'].iloc[-1])} (greedy "
                f"{fmt(greedy['gini'].iloc[-1])}), mean true utility over the rounds {fmt(want['utility'].mean())} "
                f"(greedy {fmt(greedy['utility'].mean())}).")
    if epsilon > 0 and _same(got, course_run(_greedy, world, epsilon, rounds)):
        hint = "these are the greedy loop's numbers (ε = 0): pass epsilon to feedback_loop."
    elif _same(got, course_run(_popularity, world, epsilon, rounds)):
        hint = "this is Popularity's loop; the experiment is on the factor model, factor_model (PureSVD, 8 factors)."
    else:
        hint = ("call feedback_loop(world, factor_model, rounds=rounds, epsilon=epsilon, seed=0) with the course's "
                "factor_model (from recsys_course.exercises.nb12) and return its frame.")
    raise Wrong(f"your last round: coverage {fmt(got['coverage'][-1])}, Gini {fmt(got['gini'][-1])}, utility "
                f"{fmt(got['utility'][-1])}; the course's run gives {fmt(want['coverage'].iloc[-1])}, "
                f"{fmt(want['gini'].iloc[-1])}, {fmt(want['utility'].iloc[-1])}. {hint}")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("12", [
    Choice("In prequential evaluation, why is each event scored *before* the strategy learns it?",
           {"a": "otherwise the strategy would be graded on a film it has just been told the user rated: a leak",
            "b": "scoring after learning is slower",
            "c": "the order does not matter for the metrics",
            "d": "so that the first event of each user is never scored"},
           answer="a",
           why="test-then-train: the model at step t has seen exactly the events before t, as a live system does; "
               "learning first would put the answer into the model before asking the question.",
           hints={"b": "the cost is the same either way; what changes is what the model knows when it is asked.",
                  "c": "learning the event first would make that very film easy to rank: the numbers would be "
                       "optimistic.",
                  "d": "every sampled event is scored, the first ones included."}),
    Numeric("A stream run scores 400 sampled events and finds HR@10 = 0.05. What is the binomial standard error of "
            "that rate (to 3 decimals)?",
            answer=0.011, tol=0.0015,
            why="sqrt(p (1 − p) / n) = sqrt(0.05 × 0.95 / 400) ≈ 0.0109: a difference of 0.01 between two "
                "strategies on such a sample is within the noise (a paired comparison on the same steps is less "
                "noisy than either rate).",
            hint="sqrt(p (1 − p) / n) with p the rate and n the scored events."),
    Choice("In the feedback loop, greedy Popularity's catalogue coverage stays low for many rounds. Why?",
           {"a": "a film never rated is not in the model's catalogue, so only exploration could ever show it",
            "b": "the synthetic users dislike most films",
            "c": "Popularity is retrained only once",
            "d": "coverage counts only the films rated 4 or more"},
           answer="a",
           why="users can rate only what they are shown; what is never shown never gets a rating, so the model never "
               "learns it exists: the loop narrows what is seen until exploration (or the users' own consumption of "
               "the top films) opens it.",
           hints={"b": "coverage counts showings, whatever the users think of them.",
                  "c": "the model is refitted from scratch every round.",
                  "d": "coverage is the share of films shown at least once."}),
    Choice("The service answers POST /events with 201 only after the event is committed to its SQLite log. What does "
           "that buy?",
           {"a": "an acknowledged event survives a crash: at restart the log is replayed into the model",
            "b": "faster responses",
            "c": "the model is retrained at every event",
            "d": "nothing as long as the server never crashes, which a test cannot check"},
           answer="a",
           why="the notebook kills the server and restarts it on the same log; the posted ratings are still folded "
               "into the user's vector. The commit costs a fraction of a millisecond per event.",
           hints={"b": "a commit with fsync makes each event slightly slower, not faster.",
                  "c": "an event is folded into one user's vector (a small solve); nothing is retrained.",
                  "d": "the notebook does exactly that check: kill, restart, compare."}),
])

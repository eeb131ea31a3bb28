"""Solutions to the exercises of notebook 12 (real time).

* ``decayed_popularity`` — one ``(score, last time)`` pair per film, updated per event in O(1): decay the score
  from its last update to the event's time, ``score *= 0.5 ** ((t − last) / half_life)``, then add 1; at the end
  decay every score to ``now``. The result equals ``Σ_events 0.5 ** ((now − t) / half_life)`` (a product of decays
  is the decay of the sum of the gaps), but it never revisits old events: the update a stream needs. On the
  prompt's example (films 1, 2, 1, 3 at 0, 10, 20, 30, half-life 10, now 30): film 1 scores 0.5³ + 0.5 = 0.625,
  film 2 0.5² = 0.25, film 3 1. Plain counts would give film 1 a 2; a half-life trades freshness (short) against
  noise (long), like the retrain period of section 1.
* ``exposure_gini`` — ``np.bincount(shown, minlength=n_items)`` (the films never shown count as 0: leaving them
  out hides exactly the narrowing the loop causes), sorted ascending, then
  ``Σ_k (2k − n − 1) x_(k) / (n Σ x)`` — ``recsys_course.eda.gini``. The prompt's example ``[0, 0, 0, 1, 2, 2]``
  with 5 films: counts (3, 1, 2, 0, 0) → sorted (0, 0, 1, 2, 3), G = (−4·0 − 2·0 + 0·1 + 2·2 + 4·3) / (5 · 6) =
  16 / 30 ≈ 0.5333.
* ``loop_at_epsilon`` (experiment) — ``feedback_loop(world, factor_model, rounds=rounds, epsilon=epsilon, seed=0)``.
  Lesson run at ε = 0.2: between the notebook's ε = 0.1 and 0.3 — coverage reaches the whole catalogue within a few
  rounds, the first round's utility is below the greedy loop's (the price of the explored slots) and the later
  rounds' above it (the films explored early are known when the greedy loop has run out of films it knows).
* ``quiz`` — the reasons are printed by ``show_solution("12.quiz")``.
"""
from __future__ import annotations

import numpy as np

from recsys_course.exercises.nb12 import factor_model
from recsys_course.stream import feedback_loop


def decayed_popularity(movie_ids, timestamps, half_life, now):
    score, last = {}, {}
    for movie, t in zip(movie_ids, timestamps):
        if movie in score:                                   # decay the old score to this event's time
            score[movie] *= 0.5 ** ((t - last[movie]) / half_life)
        score[movie] = score.get(movie, 0.0) + 1.0
        last[movie] = t
    return {m: s * 0.5 ** ((now - last[m]) / half_life) for m, s in score.items()}   # everything at `now`


def exposure_gini(shown, n_items):
    x = np.sort(np.bincount(np.asarray(shown, dtype=np.int64), minlength=n_items).astype(float))
    n = x.size
    k = np.arange(1, n + 1)
    return float(np.sum((2 * k - n - 1) * x) / (n * x.sum()))


def loop_at_epsilon(world, epsilon, rounds):
    return feedback_loop(world, factor_model, rounds=rounds, epsilon=epsilon, seed=0)


SOLUTIONS = {
    "12.decayed_popularity": decayed_popularity,
    "12.exposure_gini": exposure_gini,
    "12.epsilon": loop_at_epsilon,
    "12.quiz": {1: "a", 2: 0.011, 3: "a", 4: "a"},
}

"""Solutions to the exercises of notebook 13 (context, knowledge graphs, modalities, domains, explanations).

* ``fm_pairwise`` — one product per factor, ``s = Vᵀx`` (``s_f = Σ_i v_if x_i``), then
  ``½ Σ_f (s_f² − Σ_i v_if² x_i²)``: the square holds every ordered pair (i, j) once as (i, j) and once as (j, i),
  plus the n terms i = j, so subtract those and halve. O(kn) instead of O(kn²) — and on a sparse row only the
  non-zero x_i cost anything, which is why a factorisation machine with thousands of one-hot features is as cheap
  as matrix factorisation. On the prompt's example (v = (1, 0), (0.5, 2), (−1, 1); x = (1, 1, 0.5)): s = (1, 2.5),
  Σ s² = 7.25, Σ v² x² = 1 + 4.25 + 0.5 = 5.75, so the term is 0.75 — the naive pairs give 0.5 − 0.25 + 0.5 = 0.75.
  With binary x, x² = x; a real-valued feature (a context value 2.5) is where the two differ.
* ``personalised_pagerank`` — ``P = A / column sums`` (column j says where a walker at j goes next), then
  ``p ← (1 − α)(P p + stuck · e) + α e`` n_iter times from ``p = e``, where ``stuck`` is the mass on nodes without
  edges, sent back to the start. On the prompt's graph (path 0 – 1 – 2 plus 1 – 3, start 0, α = 0.5, 20 steps):
  p ≈ (0.5556, 0.3333, 0.0556, 0.0556). Row normalisation is the transpose's walk and differs as soon as degrees
  differ; the fixed point solves p = α (I − (1 − α) P)⁻¹ e.
* ``walk_at_restart`` (experiment) — ``evaluate(RandomWalk(movies=movies, tags=tags, restart=restart).fit(train),
  train, test)``. At α = 0.3 the walker wanders further from the user's own films: in the lesson's sweep (section
  2.1) a small α scored lower on the validation slice (0.0833 at 0.2 against 0.0928 at 0.8 with β = 0.3), and the
  lists lean to popular films.
* ``quiz`` — the reasons are printed by ``show_solution("13.quiz")``.
"""
from __future__ import annotations

import numpy as np

from recsys_course.evaluate import evaluate
from recsys_course.models.graph import RandomWalk


def fm_pairwise(V, x):
    s = V.T @ x                                           # s_f = Σ_i v_if x_i, one product per factor
    return float(0.5 * (np.sum(s ** 2) - np.sum((V ** 2).T @ (x ** 2))))


def personalised_pagerank(A, start, alpha, n_iter):
    A = np.asarray(A, dtype=float)
    out = A.sum(axis=0)                                   # the weight leaving each node
    P = A / np.where(out > 0, out, 1.0)                   # P_ij = A_ij / Σ_i A_ij: column j says where j's walker goes
    e = np.zeros(A.shape[0])
    e[start] = 1.0
    p = e.copy()
    for _ in range(n_iter):
        stuck = p[out == 0].sum()                         # a node with no edges sends its mass back to the start
        p = (1 - alpha) * (P @ p + stuck * e) + alpha * e
    return p


def walk_at_restart(train, test, movies, tags, restart):
    model = RandomWalk(movies=movies, tags=tags, restart=restart).fit(train)
    return evaluate(model, train, test)


SOLUTIONS = {
    "13.fm_pairwise": fm_pairwise,
    "13.personalised_pagerank": personalised_pagerank,
    "13.restart": walk_at_restart,
    "13.quiz": {1: "a", 2: "a", 3: 7 / 12, 4: "a", 5: "a"},
}

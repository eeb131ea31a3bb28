"""Solutions to the exercises of notebook 10 (group recommendation).

* ``copeland`` — a majority vote per pair of candidates: ``above[i, j]`` counts the members who score i above j,
  and ``sign(above - above.T)`` is +1 where i beats j, -1 where j beats i and 0 for a draw (members who score the
  two alike do not vote, and a film against itself is a draw). A film's Copeland score is the row sum: wins minus
  losses. Films that are -inf for any member are dropped before the vote and get -inf. On section 1's table:
  (-1, 2, -4, 1, 2). Brazil and Elf tie at 2, so the pick is Brazil (the lower position). There is no Condorcet
  winner: Brazil beats Elf (Ann and Ben), Elf beats Dune (Ann and Cat), Dune beats Brazil (Ben and Cat) — a cycle,
  Condorcet's paradox, which is why a pairwise rule needs a score (or a tie-break) at all.
* ``taking_turns`` — a loop over turns, member ``t % M`` at turn t, each picking ``argmax`` of their own scores
  over the candidates not yet listed (``argmax`` breaks ties by the lower position); a film that is -inf for any
  member is not a candidate; the list stops at k or when the candidates run out. The open questions, on 2,000
  random tables of 40 films (normal scores, 2 to 5 members, k = 10), with section 5's normalised satisfaction: taking
  turns leaves the worst-off member worse off than the greedy fair list in about 97 % of the tables (for 4 members a
  mean worst-member satisfaction of 0.67 against 0.77, and 0.73 for average). Each turn serves one member and
  ignores the others, while the greedy list looks for films that serve several members at once. The order of the
  members matters for turns (member 0 picks first and, when k is not a multiple of M, gets one film more); the
  greedy fair list is symmetric in the members (only ties between films are broken, by position).
* ``least_misery_on_percentiles`` (experiment) — ``GroupRecommender(ease, "least_misery", normalise="rank")``,
  ``recommend(groups, k=10)``, ``evaluate_groups`` against ``test`` and ``summarise``. Lesson run (ml-latest-small,
  the 100 dissimilar groups of 4): mean NDCG@10 0.0192, nothing relevant 0.8925, against 0.0146 and 0.8975 on the
  raw scores and 0.0480 and 0.7650 for average. Putting the members on one scale helps least misery a little, and it
  stays far behind average: the scales were a small part of its trouble. The larger part is the groups themselves —
  members who share no film have no film they all rank high, and the film none of them ranks low is a film nobody
  wants. Raw scores of different members should still not be compared with a threshold, a product or a minimum
  (EASE's scores grow with a user's history); averaging them is safer, because a member's scale then only weighs
  their vote.
* ``quiz`` — the reasons are printed by ``show_solution("10.quiz")``.
"""
from __future__ import annotations

import numpy as np

from recsys_course import group as G


def copeland(scores):
    s = np.asarray(scores, dtype=float)
    candidate = np.isfinite(s).all(0)            # a film that is -inf for anyone takes no part in any vote
    c = s[:, candidate]
    above = (c[:, :, None] > c[:, None, :]).sum(0)  # above[i, j]: the members who score i above j
    result = np.sign(above - above.T)            # +1: i beats j, -1: j beats i, 0: a draw (and i against itself)
    out = np.full(s.shape[1], -np.inf)
    out[candidate] = result.sum(1)
    return out


def taking_turns(scores, k):
    s = np.asarray(scores, dtype=float)
    candidate = np.isfinite(s).all(0)
    picks = []
    member = 0
    while len(picks) < min(k, int(candidate.sum())):
        mine = np.where(candidate, s[member], -np.inf)
        mine[picks] = -np.inf                    # films already in the list
        picks.append(int(np.argmax(mine)))       # argmax: ties go to the lower position
        member = (member + 1) % len(s)
    return picks


def least_misery_on_percentiles(ease, groups, test):
    recs = G.GroupRecommender(ease, "least_misery", normalise="rank").recommend(groups, k=10)
    summary = G.summarise(G.evaluate_groups(recs, groups, test)[1])
    return {"mean_ndcg": summary["mean_ndcg"], "min_ndcg": summary["min_ndcg"],
            "nothing_relevant": summary["nothing_relevant"]}


SOLUTIONS = {
    "10.copeland": copeland,
    "10.taking_turns": taking_turns,
    "10.least_misery_on_percentiles": least_misery_on_percentiles,
    "10.quiz": {1: 3, 2: "b", 3: "c", 4: 0.0231, 5: "b", 6: "b"},
}

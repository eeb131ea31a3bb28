"""Checks of notebook 14 (bandits, federated training and privacy, robustness): the UCB1 choice, clipping client
updates before averaging them, an experiment and the questionnaire.

The function checks compare the student's function with a reference written here on the prompt's worked example,
random cases and the edge cases the prompts name (an arm never tried, an update that is all zeros, a clip larger
than every update).
"""
from __future__ import annotations

from functools import cache

import numpy as np

from . import exercise
from .answers import Wrong, array, call, close, course_run, fmt, integer, number
from .quiz import Choice, Numeric, register_quiz

# --------------------------------------------------------------------------------------------- UCB1
#: the prompt's worked example: three films shown 5, 3 and 2 times, clicked 3, 2 and 0 times
UCB_EXAMPLE = (np.array([5, 3, 2]), np.array([3.0, 2.0, 0.0]))


def _ucb1(counts, sums, *, c=2.0, log=np.log, means=True, untried_first=True) -> int:
    """Reference (and its variants): an arm never tried first (the lowest index), else
    argmax_a  sums_a / n_a + sqrt(c ln t / n_a),  t = Σ_a n_a, ties to the lowest index."""
    counts, sums = np.asarray(counts, dtype=float), np.asarray(sums, dtype=float)
    untried = np.flatnonzero(counts == 0)
    if untried_first and len(untried):
        return int(untried[0])
    n = np.maximum(counts, 1.0)
    t = counts.sum()
    value = (sums / n if means else sums) + np.sqrt(c * log(t) / n)
    if not untried_first:
        value[counts == 0] = -np.inf
    return int(np.argmax(value))


def _ucb_cases():
    rng = np.random.default_rng(14)
    cases = [("the prompt's example", *UCB_EXAMPLE),
             ("an arm never tried (the third)", np.array([4, 6, 0, 2]), np.array([1.0, 3.0, 0.0, 2.0])),
             ("the best mean on few pulls", np.array([40, 38, 3]), np.array([24.0, 21.0, 1.0])),
             ("a film shown twice, never clicked", np.array([10, 2]), np.array([8.0, 0.0]))]
    for trial in range(8):
        n_arms = int(rng.integers(3, 12))
        counts = rng.integers(1, 60, size=n_arms)
        sums = rng.binomial(counts, rng.uniform(0.05, 0.9, size=n_arms)).astype(float)
        cases.append((f"random {n_arms} arms, {int(counts.sum())} pulls ({trial})", counts, sums))
    return cases


@exercise("14.ucb1")
def check_ucb1(answer) -> None:
    cases = _ucb_cases()
    got = [integer(call(answer, counts.copy(), sums.copy()), "ucb1_choice(counts, sums)") for _, counts, sums in cases]
    wrong = [i for i, (g, (_, counts, sums)) in enumerate(zip(got, cases)) if g != _ucb1(counts, sums)]
    if not wrong:
        return
    variants = [
        (dict(c=0.0), "that is the greedy arm (largest mean): add the exploration bonus √(2 ln t / n_a)."),
        (dict(c=1.0), "that is the index with √(ln t / n_a): UCB1's bonus is √(2 ln t / n_a)."),
        (dict(log=np.log10), "use the natural logarithm (np.log), not log10."),
        (dict(means=False), "the first term is the film's mean click rate, sums_a / n_a, not its click count."),
        (dict(log=lambda t: t), "the bonus grows with ln t, not with t: exploration slows down as evidence "
                                "accumulates."),
        (dict(untried_first=False), "an arm never shown has no mean yet: UCB1 shows every arm once first (its "
                                    "bonus is infinite)."),
    ]
    # the variant that reproduces every answer the student gave, if one does
    hint = next((h for kw, h in variants if all(g == _ucb1(c, s, **kw) for g, (_, c, s) in zip(got, cases))),
                "the arm with the largest mean + √(2 ln t / n_a), t the total number of pulls; an arm never "
                "tried first.")
    what, counts, sums = cases[wrong[0]]
    raise Wrong(f"on {what} (counts {counts.tolist()}, clicks {sums.astype(int).tolist()}): got arm "
                f"{got[wrong[0]]}, expected arm {_ucb1(counts, sums)}. {hint}")


# --------------------------------------------------------------------------------------------- clipped mean
#: the prompt's worked example: two clients' updates of a 2 films × 2 factors block, clip 1
CLIP_EXAMPLE = (np.array([[[1.8, 2.4], [0.0, 4.0]], [[0.3, 0.4], [0.0, 0.0]]]), 1.0)


def _clipped_mean(updates, clip, *, how="norm", scale_up=False) -> np.ndarray:
    """Reference (and its variants): Δ_c · min(1, S / ‖Δ_c‖_F) for each client c (an update of norm 0 stays 0),
    then the plain mean over clients."""
    updates = np.asarray(updates, dtype=float)
    if how == "after":
        mean = updates.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return mean * min(1.0, clip / norm) if norm > 0 else mean
    out = []
    for d in updates:
        if how == "elementwise":
            out.append(np.clip(d, -clip, clip))
            continue
        if how == "rows":
            norms = np.linalg.norm(d, axis=-1, keepdims=True)
            out.append(d * np.minimum(1.0, clip / np.where(norms > 0, norms, 1.0)))
            continue
        norm = float(np.linalg.norm(d))
        factor = clip / norm if scale_up and norm > 0 else min(1.0, clip / norm) if norm > 0 else 1.0
        out.append(d * factor)
    return np.mean(out, axis=0)


def _clip_cases():
    rng = np.random.default_rng(141)
    cases = [("the prompt's example", *CLIP_EXAMPLE),
             ("a client that rated nothing new (an all-zero update)",
              np.array([[[0.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [0.0, 2.0]]]), 1.5),
             ("a clip larger than every update", rng.normal(size=(3, 4, 2)) * 0.1, 100.0)]
    for trial in range(4):
        n, items, k = int(rng.integers(2, 7)), int(rng.integers(2, 9)), int(rng.integers(1, 5))
        updates = rng.normal(size=(n, items, k)) * rng.uniform(0.1, 3.0, size=(n, 1, 1))
        cases.append((f"random: {n} clients, {items} films × {k} factors ({trial})", updates,
                      float(rng.uniform(0.5, 2.0))))
    return cases


@exercise("14.clipped_mean")
def check_clipped_mean(answer) -> None:
    for what, updates, clip in _clip_cases():
        want = _clipped_mean(updates, clip)
        got = array(call(answer, updates.copy(), clip), "clipped_mean(updates, clip)", shape=want.shape)
        if np.allclose(got, want, rtol=1e-7, atol=1e-10):
            continue
        variants = [
            (dict(how="elementwise"), "that clips each number to [−S, S]; clip the client's whole update as one "
                                      "vector: Δ · min(1, S / ‖Δ‖), its direction kept."),
            (dict(how="rows"), "that clips each film's row separately; the bound must hold for the client's whole "
                               "update (‖Δ_c‖ over all its films), since that is what one client can change."),
            (dict(scale_up=True), "that scales every update to norm S, small ones up too; clipping only shrinks "
                                  "updates longer than S (min(1, S / ‖Δ‖))."),
            (dict(how="after"), "that clips the average; clip each client's update before averaging — the bound "
                                "must hold for what any one client sends."),
        ]
        hint = next((h for kw, h in variants if np.allclose(got, _clipped_mean(updates, clip, **kw), atol=1e-10)),
                    "scale each client's update by min(1, S / ‖Δ_c‖) (‖·‖ the Frobenius norm of the whole update; "
                    "an update of norm 0 stays 0), then average over clients.")
        if not np.all(np.isfinite(got)):
            hint = "an update of norm 0 must stay 0 (no division by zero): " + hint
        raise Wrong(f"on {what}: got {fmt(got)}, expected {fmt(want)}. {hint}")



# --------------------------------------------------------------------------------------------- experiment
TOLERANCE = 1e-9  # the same attack, model and seed give the same numbers


@cache
def _inputs():
    """A small site for the tests: the smoke profile's users of ml-latest-small on the ranking split, three
    unpopular targets picked the notebook's way, the average attack at 5 % (5 fake profiles per target: 1 % of 100
    users would be a single profile, too few to move anything; the notebook passes its own objects)."""
    from ..attacks import pick_targets
    from ..split import ranking_split
    from .answers import smoke_ratings

    train, _ = ranking_split(smoke_ratings())
    return train, pick_targets(train, 3, min_ratings=2, max_ratings=20, seed=0), "average", 0.05


def _push(train, targets, kind, size, *, attacked=True, epochs=10, real_only=True) -> float:
    from ..attacks import inject, target_hit_ratio
    from ..config import USER
    from ..models import BiasedMF

    poisoned, fakes = inject(train, targets, kind, size, seed=0) if attacked else (train, [])
    model = BiasedMF(n_epochs=epochs, val_size=None, seed=0, verbose=False).fit(poisoned)
    users = np.sort(train[USER].unique()) if real_only else np.sort(poisoned[USER].unique())
    return float(target_hit_ratio(model, users, targets, k=10).mean())


def _push_clean(train, targets, kind, size):
    return _push(train, targets, kind, size, attacked=False)


def _push_default_epochs(train, targets, kind, size):
    return _push(train, targets, kind, size, epochs=20)


def _push_all_users(train, targets, kind, size):
    return _push(train, targets, kind, size, real_only=False)


@exercise("14.push", kind="experiment", inputs=_inputs)
def check_push(answer, train, targets, kind, size) -> str:
    got = number(call(answer, train, targets, kind, size), "push_hit_ratio(train, targets, kind, size)")
    want = course_run(_push, train, targets, kind, size)
    if close(got, want, rtol=0, atol=TOLERANCE):
        clean = course_run(_push_clean, train, targets, kind, size)
        return (f"{kind} attack, size {fmt(size)}: target HR@10 {fmt(want)} (without the attack: {fmt(clean)}).")
    if close(got, course_run(_push_clean, train, targets, kind, size), rtol=0, atol=TOLERANCE):
        hint = "that is the clean model's hit ratio: fit BiasedMF on the attacked frame inject(...) returns."
    elif close(got, course_run(_push_all_users, train, targets, kind, size), rtol=0, atol=TOLERANCE):
        hint = ("you measured every user of the attacked frame, the fake ones too (they rated the targets, so they "
                "change the denominators): measure the real users only, the users of train.")
    elif close(got, course_run(_push_default_epochs, train, targets, kind, size), rtol=0, atol=TOLERANCE):
        hint = "BiasedMF's default epochs: use the notebook's cheaper settings, n_epochs=10, val_size=None, seed=0."
    else:
        hint = ("attacked, fakes = inject(train, targets, kind, size, seed=0); fit BiasedMF(n_epochs=10, "
                "val_size=None, seed=0) on attacked; return target_hit_ratio(model, real users, targets).mean().")
    raise Wrong(f"you got {fmt(got)}; the course's run gives {fmt(want)}. {hint}")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("14", [
    Choice("In the synthetic world ε-greedy, UCB1 and Thompson sampling all end with regret growing in a straight "
           "line against the per-user oracle. Why, however well they explore?",
           {"a": "they keep one click rate per film, shared by every user: at best they find the single film that is "
                 "best on average and show it to everyone, and each user's own best film is better",
            "b": "their exploration parameters were badly tuned",
            "c": "the pool of 50 films is too large for 8000 steps",
            "d": "the click model is not Bernoulli"},
           answer="a",
           why="the gap between each user's own best film and the best film for everyone (0.2161 per step there) is "
               "paid at every step by any policy that does not tell users apart; only a contextual policy such as "
               "LinUCB, with a θ per user, can bend the curve.",
           hints={"b": "the parameters were tuned on a separate world; no setting removes the per-step floor.",
                  "c": "a smaller pool only shortens the exploration; the floor stays.",
                  "d": "the clicks are Bernoulli, σ(s_ui); the question is what the policy can represent."}),
    Numeric("A uniform-random policy logged 25,000 events over a pool of K = 50 films. About how many events does the "
            "replay of any policy keep?",
            answer=500, tol=25,
            why="each event matches with probability 1/K whatever the policy, so about 25,000 / 50 = 500 events survive "
                "(493.4 on average in the notebook): replay is unbiased on a uniform log, and wasteful.",
            hint="a logged event counts only when the policy picks the logged film; with a uniform log that happens "
                 "with probability 1/K."),
    Choice("When is one round of FedAvg exactly one step of central full-batch gradient descent on the same loss?",
           {"a": "every client takes part, each takes one local step, and there is no clipping or noise",
            "b": "half of the clients take part with five local steps",
            "c": "whenever the server learning rate is 1",
            "d": "always: averaging is linear"},
           answer="a",
           why="with every client and one step, the n_u-weighted average of the clients' steps is the step along the "
               "full gradient; with several local steps each client drifts towards its own optimum first, and a "
               "sample of clients is a stochastic estimate.",
           hints={"b": "local steps and sampling are exactly what makes FedAvg differ from gradient descent.",
                  "c": "the server learning rate only scales the step; the question is which step.",
                  "d": "the average is linear in the updates, but an update after several local steps is not linear "
                       "in the gradient."}),
    Choice("DP-FedAvg with the noise added by the server ('central' noise), ε ≈ 10 over 50 rounds. Whom does it "
           "protect a user against?",
           {"a": "anyone who sees the released item table, but not the server itself, which still reads each raw "
                 "update (and the films it touches) unless aggregation is secure",
            "b": "everybody, the server included",
            "c": "nobody: ε ≈ 10 promises nothing",
            "d": "only users who did not take part in a round"},
           answer="a",
           why="central noise is added after the server has seen the clipped updates; the guarantee is about what "
               "the output reveals. Hiding the updates from the server takes local noise (far more of it) or a "
               "secure-aggregation protocol.",
           hints={"b": "where is the noise added, and who sees the updates before it is?",
                  "c": "single digits are considered meaningful; it is values in the hundreds that promise little.",
                  "d": "the bound covers every user, whether or not they were sampled (no credit was taken for "
                       "sampling)."}),
    Choice("Eighteen fake profiles per target moved BiasedMF's target hit ratio from 0 to 0.3763 but left ItemKNN and "
           "EASE at 0. Why?",
           {"a": "the film's bias b_i enters every user's predicted rating, and 18 five-star ratings outweigh the "
                 "target's few real ones; the item-to-item models reach a film only through films the user rated, and "
                 "the fakes tie the target to random, mostly obscure filler",
            "b": "BiasedMF was trained for fewer epochs",
            "c": "ItemKNN and EASE ignore the ratings' values",
            "d": "the detector removed the fakes before ItemKNN and EASE were fitted"},
           answer="a",
           why="a push works through whatever part of the model every user shares (here b_i); a neighbourhood model "
               "is pushed only by tying the target to films real users rated — what segment attacks are designed "
               "to do.",
           hints={"b": "fewer epochs would, if anything, leave b_i closer to its baseline value.",
                  "c": "EASE fits the 0/1 matrix, ItemKNN in ranking mode too; but a five-star push is also a rating "
                       "count: why does that count not reach the lists?",
                  "d": "the table is measured before the defence."}),
])

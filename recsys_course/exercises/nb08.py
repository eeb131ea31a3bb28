"""Checks of notebook 08 (pretraining and fine-tuning): BERT's 80/10/10 corruption, the largest LoRA rank a
parameter budget allows, the best rank-r adapter for a full fine-tuning update, an experiment (LoRA at rank 16,
the frozen head's budget) and the questionnaire.

The function checks compare the student's answer with references built from the package
(:func:`recsys_course.models.masked.mask_items`, the count r·(d_in + d_out), NumPy's SVD) on the notebook's worked
examples, small random cases and edge cases; when a known mistake is recognised (computed, not guessed) the hint
names it.
"""
from __future__ import annotations

import math
from functools import cache

import numpy as np

from ..config import USER
from ..models.masked import mask_items
from . import exercise
from .answers import Wrong, array, call, close, entries, fmt, integer, number, smoke_ratings
from .quiz import Choice, Numeric, register_quiz

# --------------------------------------------------------------------------------------------- BERT's masking
KEEP_MASK, KEEP_RANDOM = 0.8, 0.9  # v < 0.8 → [MASK]; 0.8 ≤ v < 0.9 → a random film; v ≥ 0.9 → unchanged


def _bert_reference(tokens, u, v, random_tokens, mask_prob, mask_token):
    _, targets = mask_items(tokens, u, mask_prob, mask_token)
    chosen = targets > 0
    inputs = tokens.copy()
    inputs[chosen & (v < KEEP_MASK)] = mask_token
    swap = chosen & (v >= KEEP_MASK) & (v < KEEP_RANDOM)
    inputs[swap] = random_tokens[swap]
    return inputs, np.where(chosen, tokens, 0)


def _bert_cases():
    tokens = np.array([[3, 5, 7, 0, 0], [2, 4, 6, 8, 9], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    u = np.array([[0.1, 0.9, 0.15, 0.05, 0.0], [0.5, 0.6, 0.7, 0.8, 0.9], [0.3, 0.1, 0.1, 0.1, 0.1],
                  [0.0, 0.0, 0.0, 0.0, 0.0]])
    v = np.array([[0.5, 0.2, 0.85, 0.5, 0.85], [0.95, 0.1, 0.1, 0.1, 0.1], [0.3, 0.85, 0.95, 0.5, 0.5],
                  [0.5, 0.5, 0.85, 0.85, 0.95]])
    random_tokens = np.full_like(tokens, 8)
    cases = [((tokens, u, v, random_tokens, 0.2, 10), "section 2.2's four windows")]
    rng = np.random.default_rng(8)
    for n, L, p in [(8, 10, 0.3), (12, 6, 0.5), (6, 12, 0.05)]:
        t = rng.integers(1, 40, size=(n, L))
        lengths = rng.integers(0, L + 1, size=n)
        lengths[0] = L
        t[np.arange(L)[None, :] >= lengths[:, None]] = 0
        cases.append(((t, rng.random((n, L)), rng.random((n, L)), rng.integers(1, 40, size=(n, L)), p, 40),
                      f"random windows {n}×{L}, mask_prob = {fmt(p)}"))
    return cases


def _first(mask: np.ndarray) -> str:
    w, t = np.argwhere(mask)[0]
    return f"window {w + 1}, position {t + 1}"


@exercise("08.bert_mask")
def check_bert_mask(answer) -> None:
    for (tokens, u, v, rnd, p, m), what in _bert_cases():
        got = call(answer, tokens, u, v, rnd, p, m)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Wrong(f"return a pair (inputs, targets), got a {type(got).__name__}"
                        f"{f' of length {len(got)}' if isinstance(got, (tuple, list)) else ''}")
        got_in = array(got[0], "the inputs", shape=tokens.shape)
        got_tg = array(got[1], "the targets", shape=tokens.shape)
        want_in, want_tg = _bert_reference(tokens, u, v, rnd, p, m)
        pad, real = tokens == 0, tokens > 0
        chosen = want_tg > 0
        where = f"on {what}"
        if (got_in[pad] != 0).any():
            raise Wrong(f"{where}: a padding position of the inputs was changed ({_first(pad & (got_in != 0))}). "
                        "Padding is never chosen, so it is never corrupted: it must stay 0.")
        if (got_tg[pad] != 0).any():
            raise Wrong(f"{where}: a padding position has a target ({_first(pad & (got_tg != 0))}); targets are 0 "
                        "everywhere except at the chosen positions, and padding is never chosen.")
        got_chosen = got_tg != 0
        if not np.array_equal(got_chosen, chosen):
            if np.array_equal(got_chosen, chosen & (v < KEEP_MASK)):
                raise Wrong(f"{where}: your targets are only where the input shows [MASK]. The loss is taken at "
                            "every chosen position — also the ones given a random film and the ones left unchanged "
                            "— otherwise the model would learn that an unmasked film is always right.")
            if np.array_equal(got_chosen, real & (u < p)):
                raise Wrong(f"{where}: a window with films but no draw u below mask_prob has no chosen position. "
                            "Section 2.2's rule gives it one: its real position with the smallest u.")
            raise Wrong(f"{where}: the positions with a target differ from the chosen ones (first at "
                        f"{_first(got_chosen != chosen)}). Choose with section 2.2's rule — real, u < mask_prob, "
                        "and the fallback — before looking at v; every chosen position gets a target.")
        if not np.array_equal(got_tg[chosen], tokens[chosen]):
            copied = np.array_equal(got_tg[chosen], got_in[chosen])
            raise Wrong(f"{where}: wrong target values (first at {_first(chosen & (got_tg != tokens))}). "
                        + ("You copied the corrupted inputs; a " if copied else "A ")
                        + "target is the original film of the chosen position, the one the model must recover.")
        if not np.array_equal(got_in[~chosen], tokens[~chosen]):
            raise Wrong(f"{where}: an input that was not chosen changed (first at "
                        f"{_first(~chosen & (got_in != tokens))}); only chosen positions are corrupted.")
        bad = got_in != want_in
        if bad.any():
            w, t = np.argwhere(bad)[0]
            should = ("the [MASK] token" if v[w, t] < KEEP_MASK else
                      f"its random film ({fmt(rnd[w, t])})" if v[w, t] < KEEP_RANDOM else
                      f"the film itself ({fmt(tokens[w, t])})")
            raise Wrong(f"{where}: at window {w + 1}, position {t + 1} (chosen, v = {fmt(v[w, t])}) the input should "
                        f"be {should}, got {fmt(got_in[w, t])}. Of the chosen positions: v < 0.8 → [MASK], "
                        "0.8 ≤ v < 0.9 → the random film of that position, v ≥ 0.9 → unchanged.")


# --------------------------------------------------------------------------------------------- LoRA's budget
def _largest_rank(budget, d_in, d_out, n):
    return int(min(budget // (n * (d_in + d_out)), min(d_in, d_out)))


RANK_CASES = [
    (4160, 64, 64, 2, "the frozen head's budget, for W_Q and W_V of this notebook's block"),
    (1024, 64, 64, 2, "section 4's LoRA: 1 024 parameters"),
    (1023, 64, 64, 2, "one parameter less than rank 4 needs"),
    (294912, 768, 768, 24, "BERT-base: W_Q and W_V in 12 layers"),
    (100000, 4096, 11008, 1, "a large non-square matrix"),
    (40, 10, 3, 2, "two 3 × 10 matrices"),
    (100, 64, 64, 1, "a budget smaller than rank 1 needs"),
    (1000000, 10, 3, 1, "a huge budget for a 3 × 10 matrix"),
]


@exercise("08.largest_lora_rank")
def check_largest_lora_rank(answer) -> None:
    for budget, d_in, d_out, n, what in RANK_CASES:
        want = _largest_rank(budget, d_in, d_out, n)
        got = integer(call(answer, budget, d_in, d_out, n), "largest_lora_rank(...)")
        if got == want:
            continue
        case = f"largest_lora_rank({budget}, {d_in}, {d_out}, {n}) — {what}: expected {want}, got {got}."
        if got < 0:
            raise Wrong(f"{case} A rank is a count, never negative; a budget too small for rank 1 gives 0.")
        if got > min(d_in, d_out):
            raise Wrong(f"{case} A rank above min(d_in, d_out) = {min(d_in, d_out)} adds parameters but not "
                        "capacity: B A cannot have a higher rank than that (and LoRALinear refuses it).")
        if n > 1 and got == min(budget // (d_in + d_out), min(d_in, d_out)):
            raise Wrong(f"{case} That rank fits one matrix; each of the {n} adapted matrices gets its own A and B.")
        if got > want:
            exact = budget / (n * (d_in + d_out))
            why = (" A budget too small for rank 1 gives 0." if want == 0 else
                   " Round down, not to the nearest." if got == round(exact) else
                   " Round down: a rank that overshoots the budget by a fraction still overshoots it."
                   if got == math.ceil(exact) else " Return the largest rank that fits.")
            raise Wrong(f"{case} Rank {got} trains {n} × {got} × ({d_in} + {d_out}) = {n * got * (d_in + d_out):,} "
                        f"parameters, more than the budget of {budget:,}.{why}")
        raise Wrong(f"{case} Rank {want} still fits: {n} × {want} × ({d_in} + {d_out}) = "
                    f"{n * want * (d_in + d_out):,} ≤ {budget:,}. Count A (r × d_in) and B (d_out × r), nothing else.")


# --------------------------------------------------------------------------------------------- best adapter
def _truncated(delta_W, r, largest=True):
    U, s, Vt = np.linalg.svd(delta_W, full_matrices=False)
    keep = slice(0, r) if largest else slice(len(s) - r, len(s))
    return (U[:, keep] * s[keep]) @ Vt[keep]


def _adapter_cases():
    rng = np.random.default_rng(3)
    A0, B0 = np.array([[1.0, -1.0]]), np.array([[1.0], [0.0], [2.0]])
    low_rank = rng.normal(size=(7, 2)) @ rng.normal(size=(2, 7))
    return [
        ((2.0 / 1 * B0 @ A0, 1, 2.0), "the update of section 3.1's by-hand example (rank 1: recovered exactly)"),
        ((rng.normal(size=(6, 4)), 2, 8.0), "a random 6 × 4 update, r = 2, alpha = 8"),
        ((rng.normal(size=(5, 8)), 3, 1.0), "a random 5 × 8 update, r = 3, alpha = 1"),
        ((low_rank, 4, 16.0), "a 7 × 7 update of rank 2 with r = 4 (recovered exactly)"),
        ((np.zeros((4, 3)), 2, 8.0), "a zero update"),
    ]


@exercise("08.best_lora_adapter")
def check_best_lora_adapter(answer) -> None:
    for (delta_W, r, alpha), what in _adapter_cases():
        d_out, d_in = delta_W.shape
        got = call(answer, delta_W, r, alpha)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Wrong(f"return a pair (A, B), got a {type(got).__name__}"
                        f"{f' of length {len(got)}' if isinstance(got, (tuple, list)) else ''}")
        first, second = (array(g, name, ndim=2) for g, name in zip(got, ("A", "B")))
        if (first.shape, second.shape) == ((d_out, r), (r, d_in)) and (r, d_in) != (d_out, r):
            raise Wrong(f"on {what}: you returned (B, A); the exercise asks for (A, B), A of shape (r, d_in) = "
                        f"({r}, {d_in}) and B of shape (d_out, r) = ({d_out}, {r}).")
        A = array(first, "A", shape=(r, d_in))
        B = array(second, "B", shape=(d_out, r))
        update = alpha / r * (B @ A)
        want = _truncated(delta_W, r)
        if close(update, want, atol=1e-8):
            continue
        if close(B @ A, want, atol=1e-8):
            raise Wrong(f"on {what}: B A is the best rank-{r} approximation, but the layer adds (alpha / r) B A = "
                        f"{fmt(alpha / r)} × B A. Undo the scale when you split the approximation between B and A.")
        if r < min(delta_W.shape) and close(update, _truncated(delta_W, r, largest=False), atol=1e-8):
            raise Wrong(f"on {what}: your adapter keeps the r smallest singular values; the closest rank-r matrix "
                        "keeps the r largest (np.linalg.svd returns them in decreasing order).")
        best = np.linalg.norm(delta_W - want)
        raise Wrong(f"on {what}: the adapter's update (alpha / r) B A is {fmt(np.linalg.norm(delta_W - update))} "
                    f"away from ΔW in the Frobenius norm; the best rank-{r} update is "
                    f"{fmt(best if best > 1e-9 else 0)} away. By Eckart–Young it keeps the r largest singular "
                    "values with their singular vectors (U_r Σ_r V_rᵀ); Σ_r must end up in B or in A.")


# --------------------------------------------------------------------------------------------- experiment
LORA_RANK = 16
LORA_TOLERANCE = 0.002  # HR@10 and NDCG@10; the fit is seeded, the slack covers float summation order (~1 user)
_REFERENCE: list = []   # (pretrained, train, test, arch, finetune, result): the course's run, kept per inputs


@cache
def _bert4rec_inputs():
    """Notebook 08's objects in its smoke profile (100 users, its small architecture, 2 epochs: seconds): the
    leave-last-out split and the pretrained BERT4Rec. The check reruns on whatever it is given."""
    from ..models import BERT4Rec
    from ..split import leave_last_n

    train, test = leave_last_n(smoke_ratings(), n=1)
    arch, finetune = dict(n_factors=16, max_len=10, n_negatives=64), dict(n_epochs=2)
    pretrained = BERT4Rec(mode="pretrain", n_epochs=2, verbose=False, **arch).fit(train)
    return pretrained, train, test, arch, finetune


def _lora_reference(pretrained, train, test, arch, finetune) -> dict:
    for p, tr, te, a, f, result in _REFERENCE:
        if p is pretrained and tr is train and te is test and a == arch and f == finetune:
            return result
    from ..evaluate import evaluate
    from ..models import BERT4Rec

    model = BERT4Rec(**{"mode": "lora", "pretrained": pretrained, **arch, **finetune, "lora_r": LORA_RANK,
                        "verbose": False}).fit(train)
    row = evaluate(model, train, test, relevance_threshold=None)
    result = {"trainable": int(model.n_trainable_), "hit@10": float(row["hit@10"]),
              "ndcg@10": float(row["ndcg@10"])}
    _REFERENCE[:] = [(pretrained, train, test, dict(arch), dict(finetune), result)]
    return result


@exercise("08.lora_rank16", kind="experiment", inputs=_bert4rec_inputs)
def check_lora_rank16(answer, pretrained, train, test, arch, finetune) -> str:
    got = call(answer, pretrained, train, test, arch, finetune)
    keys = ("trainable", "hit@10", "ndcg@10")
    got = entries(got, keys, "{'trainable': …, 'hit@10': …, 'ndcg@10': …}")
    trainable = integer(got["trainable"], "the number of trained parameters")
    hit, ndcg = (number(got[k], k) for k in keys[1:])
    for name, value in (("hit@10", hit), ("ndcg@10", ndcg)):
        if not 0 <= value <= 1:
            raise Wrong(f"{name} is a share of the test users' top-10 lists, between 0 and 1; got {fmt(value)}. "
                        "evaluate(...) returns it as a share.")
    d, n_matrices = pretrained.n_factors, 2 * pretrained.n_blocks
    want_trainable = n_matrices * LORA_RANK * (d + d)
    if trainable != want_trainable:
        known = {n_matrices * 4 * (d + d): "That is rank 4's count (section 4's LoRA): did lora_r=16 reach the "
                                           "model?",
                 pretrained.n_parameters_: "That is every weight of the model: full fine-tuning, not LoRA.",
                 d * d + d: "That is the frozen head's count: the head trained, not adapters."}
        blocks = f"{pretrained.n_blocks} block{'s' if pretrained.n_blocks > 1 else ''}"
        raise Wrong(f"LoRA at rank {LORA_RANK} on W_Q and W_V of {blocks} trains "
                    f"{n_matrices} × {LORA_RANK} × ({d} + {d}) = {want_trainable:,} parameters; you report "
                    f"{trainable:,}. " + known.get(trainable, "Report the model's n_trainable_ after fit."))
    want = _lora_reference(pretrained, train, test, arch, finetune)
    for name, value in (("hit@10", hit), ("ndcg@10", ndcg)):
        if abs(value - want[name]) > LORA_TOLERANCE:
            raise Wrong(f"your test {name} is {fmt(value)}, the course's run gives {fmt(want[name])} (tolerance "
                        f"±{fmt(LORA_TOLERANCE)}). Start from `pretrained` with mode='lora', the notebook's **arch "
                        "and **finetune and only lora_r changed (same seed); fit on train and score test as section "
                        "4.1 does (every test film relevant).")
    n_test = int(test[USER].nunique())
    return (f"rank {LORA_RANK} trains {trainable:,} parameters (4 times rank 4's, about the frozen head's "
            f"{d * d + d:,}); test HR@10 {fmt(hit)} ({round(hit * n_test)} of {n_test} users), NDCG@10 {fmt(ndcg)} "
            f"(the course's run: {fmt(want['hit@10'])}, {fmt(want['ndcg@10'])}). Compare with the rank-4 LoRA row "
            "of section 4.1 in users: is the gap larger than the noise of about √(p(1 − p)·n) users?")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("08", [
    Choice("Section 4.1's table shows the LoRA variant's test row equal to the pretrained model's, to the last "
           "digit. Why?",
           {"a": "1,024 adapter parameters are too few to change any ranking",
            "b": "no epoch beat the validation score it started from, so early stopping restored epoch 0 — the "
                 "pretrained model itself, since B starts at 0 and the adapters add nothing",
            "c": "the LoRA variant shares its weights with the pretrained object, so both are the same model",
            "d": "the LoRA mode trains with a learning rate of 0"},
           answer="b",
           why="B starts at 0, so epoch 0 of the LoRA variant IS the pretrained model; its three epochs all scored "
               "below that start on the validation slice, and the best weights (epoch 0) were restored.",
           hints={"a": "a rank-4 change to W_Q and W_V moves every attention score and can reorder the lists; look "
                       "at which epoch early stopping kept.",
                  "c": "every variant loads a copy of the pretrained weights, and the frozen head, built the same "
                       "way, ends up different; look at which epoch early stopping kept.",
                  "d": "the adapters did train: LoRA's validation curve in section 4.1 moves after epoch 0, but "
                       "never above where it started."}),
    Choice("Pretraining and fine-tuning see the same users and films, yet every pretrained variant beats 'scratch'. "
           "What does pretraining add?",
           {"a": "information about the test films",
            "b": "more parameters",
            "c": "a denser use of the same histories: the cloze task trains on about 100 k positions, fine-tuning on "
                 "about 3 000 examples",
            "d": "bidirectional attention, which lets it look at the next film at test time"},
           answer="c",
           why="nothing new enters the pretraining stage; it turns every position of every training sequence into a "
               "training signal, where the fine-tuning budget is 5 next-item examples per user.",
           hints={"a": "both stages train on train only; each user's test film is in neither.",
                  "b": "'scratch' is the same network, with exactly as many parameters.",
                  "d": "at test time the [MASK] is appended after the last known film: nothing after it exists "
                       "(section 2.4)."}),
    Choice("Among the pretrained variants, the pretrained model, the frozen head and LoRA each put 30 of the 610 "
           "users' next film in the top 10, full fine-tuning 29. What can you conclude?",
           {"a": "full fine-tuning is the wrong way to fine-tune this model",
            "b": "nothing about their order: a hit rate near 0.05 over 610 users has a standard error of about 5 users",
            "c": "full fine-tuning has a bug",
            "d": "pretraining does not help"},
           answer="b",
           why="√(0.05 · 0.95 / 610) ≈ 0.009, about ±5 users; the four pretrained variants lie within one user of "
               "each other. Only the gap to 'scratch' (14 and 15 users) is about two standard errors of a "
               "difference.",
           hints={"a": "one user fewer than the pretrained model alone; how large is the standard error, in users?",
                  "c": "its validation score peaked at epoch 3 and then drifted — 5 examples per user pulling every "
                       "weight — and one user is within the noise anyway.",
                  "d": "compare with 'scratch' (15 users), not with each other."}),
    Choice("LoRA trains about 640 times fewer parameters than full fine-tuning, yet an epoch is not 640 times faster. "
           "Why?",
           {"a": "every forward pass still runs the whole encoder, and the backward pass goes through it to reach "
                 "the adapters",
            "b": "the adapters are computed in NumPy, outside PyTorch",
            "c": "LoRA runs more epochs",
            "d": "the merged weight W + (α/r)BA is recomputed at every step"},
           answer="a",
           why="the cost of a step is dominated by the frozen network's matrix products; what LoRA saves is optimiser "
               "memory and storage (a few thousand numbers per task), not compute.",
           hints={"b": "LoRALinear is a torch module; its low-rank path (xAᵀ)Bᵀ is cheap.",
                  "c": "the question is the time per epoch, not the number of epochs.",
                  "d": "the forward pass computes Wx + (α/r)B(Ax) and never forms BA (section 3.1); merging is for "
                       "serving."}),
    Numeric("How many parameters does LoRA with r = 8 train on the query and value matrices of BERT-base "
            "(12 layers, hidden size d = 768)?",
            answer=2 * 12 * 8 * (768 + 768), tol=0,
            why="r(d_in + d_out) = 8 × 1,536 = 12,288 per matrix, two matrices in each of 12 layers: 294,912, about "
                "0.27 % of BERT-base's 110 M parameters.",
            hint="count r(d_in + d_out) for one adapted matrix, then multiply by the number of adapted matrices."),
    Numeric("With section 2.2's rule, what is the expected number of masked positions in a window of 3 films when "
            "p = 0.2? (Count the fallback.)",
            answer=3 * 0.2 + 0.8 ** 3, tol=0.005,
            why="each film is masked with probability p: 3 × 0.2 = 0.6 on average; when no draw falls below p "
                "(probability 0.8³ = 0.512) the fallback masks exactly one more: 0.6 + 0.512 = 1.112.",
            hint="the expected number of draws below p, plus the fallback: one extra masked position in the windows "
                 "where no draw falls below p — how likely is that?"),
])

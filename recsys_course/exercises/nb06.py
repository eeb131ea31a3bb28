"""Checks of notebook 06 (neural and sequential models): multi-head causal self-attention, the full rank at which a
sampled metric stops counting an item as a hit, cutting a sequence into next-item training windows, an experiment
(how much of a user's history does the fitted SASRec use?) and the questionnaire.

Each function check compares the student's answer with a reference (the formula of section 3.4 in NumPy,
``scipy.stats.hypergeom``, :func:`recsys_course.models.sequential.next_item_windows`) on the notebook's worked
examples, small random cases and edge cases. A hint that names a mistake is only shown when the check has
recomputed that mistake and found the student's answer equal to it.
"""
from __future__ import annotations

import copy
from functools import cache

import numpy as np
from scipy.stats import hypergeom

from ..models.sequential import next_item_windows as package_windows
from . import exercise
from .answers import Wrong, array, call, close, fmt, integer, keyed_numbers, number
from .quiz import Choice, Numeric, register_quiz


# --------------------------------------------------------------------------------------------- attention
def _attention(X, Wq, Wk, Wv, n_heads, *, scale_width=None, mask=True, axis=1, interleaved=False,
               mask_diagonal=False):
    """Multi-head causal attention, and (through the keywords) the mistakes the check recognises."""
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    dk, dv = Q.shape[1] // n_heads, V.shape[1] // n_heads
    L = len(X)
    hidden = np.triu(np.ones((L, L), dtype=bool), k=0 if mask_diagonal else 1)
    out = []
    for h in range(n_heads):
        cols_k = np.arange(h, Q.shape[1], n_heads) if interleaved else np.arange(h * dk, (h + 1) * dk)
        cols_v = np.arange(h, V.shape[1], n_heads) if interleaved else np.arange(h * dv, (h + 1) * dv)
        q, k, v = Q[:, cols_k], K[:, cols_k], V[:, cols_v]
        s = q @ k.T / np.sqrt(scale_width or dk)
        if mask:
            s = np.where(hidden, -np.inf, s)
        with np.errstate(all="ignore"):
            w = np.exp(s - s.max(axis=axis, keepdims=True))
            w = w / w.sum(axis=axis, keepdims=True)
        out.append(w @ v)
    return np.concatenate(out, axis=1)


def _attention_mistake(got, x, wq, wk, wv, h) -> str | None:
    """The hint for a recognised mistake, or None."""
    variants = [
        (dict(scale_width=wq.shape[1]), "You scaled by 1/√d_k of all heads together; each head scales by the "
                                        "square root of its own width d_h = d_k / n_heads."),
        (dict(mask=False), "That is attention without the causal mask: position t must not see positions s > t."),
        (dict(axis=0), "Your weights are normalised down the columns; the softmax runs along each row (over the "
                       "positions s that position t looks at)."),
        (dict(interleaved=True), "Your heads take every n_heads-th column; head h owns one contiguous block of "
                                 "d_h columns, h·d_h to (h+1)·d_h − 1."),
    ]
    want = _attention(x, wq, wk, wv, h)
    for kwargs, hint in variants:
        variant = _attention(x, wq, wk, wv, h, **kwargs)
        if np.isfinite(variant).all() and not close(variant, want, atol=1e-8) and close(got, variant, atol=1e-8):
            return hint
    return None


@exercise("06.multi_head_attention")
def check_multi_head_attention(answer) -> None:
    rng = np.random.default_rng(0)
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    eye = np.eye(2)
    cases = [((X, eye, eye, eye, 1), "the worked example of section 3.4 (one head, W_Q = W_K = W_V = I)"),
             ((X, eye, eye, eye, 2), "the worked example with two heads of width 1")]
    for L, d, dk, dv, h in [(1, 3, 2, 2, 1), (4, 3, 2, 6, 2), (6, 4, 4, 4, 1), (5, 6, 6, 6, 3), (4, 4, 4, 8, 2)]:
        cases.append(((rng.normal(size=(L, d)), rng.normal(size=(d, dk)), rng.normal(size=(d, dk)),
                       rng.normal(size=(d, dv)), h), f"random shapes L={L}, d={d}, d_k={dk}, d_v={dv}, {h} head(s)"))
    cases.append(((rng.normal(size=(3, 2)) * 30, eye, eye, eye, 1), "large scores (inputs of size ~30)"))
    for (x, wq, wk, wv, h), what in cases:
        want = _attention(x, wq, wk, wv, h)
        got = call(answer, x, wq, wk, wv, h)
        shown = np.asarray(got, dtype=float).shape if isinstance(got, np.ndarray) else None
        if shown == (len(x), wv.shape[1] // h) and h > 1:
            raise Wrong(f"{what}: got shape {shown}, the width of one head; the heads' outputs are placed side "
                        f"by side, giving (L, d_v) = {want.shape}.")
        got = array(got, "multi_head_attention(...)", shape=want.shape, finite=False)
        if not np.isfinite(got).all():
            if "large" in what:
                raise Wrong(f"{what}: your output contains nan or inf — e^s overflows for scores in the "
                            "hundreds; the softmax does not change if you subtract each row's maximum first.")
            raise Wrong(f"{what}: your output contains nan or inf although the scores are small, so it is not an "
                        "overflow. A row of weights that sums to 0 gives 0/0: does every position still see "
                        "itself (s = t is allowed, only s > t is hidden)?")
        if not close(got, want, atol=1e-8):
            hint = _attention_mistake(got, x, wq, wk, wv, h) or (
                "Per head: scores q·kᵀ/√d_h, −∞ where s > t, a softmax along each row, the weights times v; then "
                "the heads side by side.")
            if "worked example of" in what:
                raise Wrong(f"on {what} got {fmt(got)}, expected {fmt(want)} (the outputs printed in section "
                            f"3.4). {hint}")
            raise Wrong(f"{what}: your output differs from the reference by up to {fmt(np.abs(got - want).max())}. "
                        f"{hint}")
    x, wq, wk, wv, h = cases[3][0]
    changed = x.copy()
    changed[2:] += 5.0
    out = array(call(answer, changed, wq, wk, wv, h), "multi_head_attention(...)", shape=(len(x), wv.shape[1]))
    if not close(out[:2], _attention(x, wq, wk, wv, h)[:2], atol=1e-8):
        raise Wrong("changing the inputs at positions 3 and 4 changed your output at positions 1 and 2: the mask "
                    "must hide the future from every head.")


# --------------------------------------------------------------------------------------------- sampled metrics
def _p_hit(ranks, n_candidates, n_negatives, k, *, population_offset=1):
    return hypergeom.cdf(k - 1, n_candidates - population_offset, np.asarray(ranks) - 1, n_negatives)


def _first_below_half(n_candidates, n_negatives, k, **kwargs) -> int:
    """The first full rank whose probability of a sampled hit is below ½ (n_candidates + 1 if none): a bisection,
    since the probability never increases with the rank."""
    def below(rank):
        return float(_p_hit(rank, n_candidates, n_negatives, k, **kwargs)) < 0.5

    if not below(n_candidates):
        return n_candidates + 1
    lo, hi = 1, n_candidates
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if below(mid) else (mid + 1, hi)
    return lo


def _hit_with_k_plus_one(n_candidates, n_negatives, k) -> int:
    return _first_below_half(n_candidates, n_negatives, k + 1)


def _population_m(n_candidates, n_negatives, k) -> int:
    return _first_below_half(n_candidates, n_negatives, k, population_offset=0)


HALF_RANK_CASES = [
    ((9701, 100, 10), "the setting of section 6 (M = 9,701 films, 100 negatives, k = 10)"),
    ((9701, 1000, 10), "1,000 negatives"),
    ((101, 100, 10), "every other candidate is drawn, so the sampled rank is the full rank"),
    ((2000, 20, 1), "k = 1: a hit only if no better item is drawn"),
    ((9701, 10, 10), "as many negatives as k: a miss only if all ten drawn items are better"),
    ((500, 50, 5), "a small catalogue, k = 5"),
]


@exercise("06.half_hit_rank")
def check_half_hit_rank(answer) -> str:
    for (M, N, k), what in HALF_RANK_CASES:
        want = _first_below_half(M, N, k)
        raw = call(answer, M, N, k)
        value = number(raw, "half_hit_rank(...)")
        if 0.0 < value < 1.0:
            raise Wrong(f"{what}: got {fmt(value)}, which looks like a probability; the exercise asks for a rank "
                        "(a whole number between 1 and n_candidates).")
        got = integer(raw, "half_hit_rank(...)")
        if got == want:
            continue
        p_got = float(_p_hit(got, M, N, k)) if 1 <= got <= M else None
        if got == want - 1:
            hint = (f"At rank {got} the probability is still {fmt(p_got)} — at least one half; the exercise asks "
                    "for the first rank where it is below one half.")
        elif got == _hit_with_k_plus_one(M, N, k):
            hint = ("A hit in the sampled top k means at most k − 1 better items among the drawn ones, not at most "
                    "k (the target takes one of the k places).")
        elif got == _population_m(M, N, k):
            hint = ("You drew the negatives from all n_candidates items; they come from the n_candidates − 1 "
                    "others (the target is never its own negative).")
        elif p_got is not None:
            hint = (f"At your rank the probability of a sampled hit is {fmt(p_got)}. It falls as the rank grows: "
                    "look for the first rank where P[X ≤ k − 1] < ½, with X hypergeometric (n_candidates − 1 "
                    "items, full_rank − 1 of them better, n_negatives drawn) as in section 6.1.")
        else:
            hint = f"A full rank lies between 1 and n_candidates = {M:,}."
        raise Wrong(f"{what}: got {got:,}, expected {want:,}. {hint}")
    M, N, k = HALF_RANK_CASES[0][0]
    r = _first_below_half(M, N, k)
    return (f"with {N} negatives among {M:,} films a target stops being a sampled hit@{k} half of the time only at "
            f"full rank {r:,} — page {-(-r // 10)} of a ten-per-page list.")


# --------------------------------------------------------------------------------------------- windows
def _windows_reference(seq, max_len):
    """The course's layout for one sequence of tokens (via the package, which numbers items from 0)."""
    return package_windows(np.array([0, len(seq)]), np.asarray(seq, dtype=np.int64) - 1, max_len)


def _chunks(pairs, max_len, from_start=False):
    if from_start:
        return [pairs[s:s + max_len] for s in range(0, len(pairs), max_len)]
    out, end = [], len(pairs)
    while end > 0:
        out.append(pairs[max(0, end - max_len):end])
        end -= max_len
    return out[::-1]


def _layout(chunks, max_len, left_pad=False):
    inputs = np.zeros((len(chunks), max_len))
    targets = np.zeros_like(inputs)
    for w, chunk in enumerate(chunks):
        start = max_len - len(chunk) if left_pad else 0
        for t, (a, b) in enumerate(chunk):
            inputs[w, start + t], targets[w, start + t] = a, b
    return inputs, targets


def _windows_mistake(g_in, g_tg, seq, max_len) -> str | None:
    pairs = list(zip(seq[:-1], seq[1:]))
    chunks = _chunks(pairs, max_len)
    variants = [
        (_layout(_chunks(pairs, max_len, from_start=True), max_len),
         "Your windows are cut from the start, so the most recent window is the short one; cut from the end so "
         "that the newest pairs fill a whole window and only the oldest window can be short."),
        (_layout(chunks[::-1], max_len),
         "Your windows are in the reverse order; the oldest window comes first."),
        (_layout(chunks, max_len, left_pad=True),
         "Your short window is padded on the left; the padding goes on the right, after the real positions."),
    ]
    want_in, want_tg = _layout(chunks, max_len)
    for (v_in, v_tg), hint in variants:
        if v_in.shape == g_in.shape and np.array_equal(g_in, v_in) and np.array_equal(g_tg, v_tg) \
                and not np.array_equal(v_in, want_in):
            return hint
    if g_in.shape == want_in.shape and np.array_equal(g_in, want_tg) and np.array_equal(g_tg, want_in):
        return "Inputs and targets are swapped: the input at a position is the film, the target the one after it."
    return None


WINDOW_CASES = [
    ([5, 2, 9], 3, "a sequence shorter than max_len"),
    ([1, 2, 3, 4, 5, 6, 7], 3, "six pairs, max_len 3"),
    ([1, 2, 3, 4, 5, 6], 4, "five pairs, max_len 4"),
    ([8, 3], 5, "a single pair"),
    ([3, 1, 4, 1, 5, 9, 2, 6], 1, "max_len 1"),
    ([7, 7, 2, 9, 4, 4, 8, 1, 3, 5, 6], 4, "ten pairs, max_len 4 (a film rated twice in a row included)"),
    ([4], 3, "a single film: no pair, so no window"),
]


@exercise("06.next_item_windows")
def check_next_item_windows(answer) -> None:
    for seq, max_len, what in WINDOW_CASES:
        want_in, want_tg = _windows_reference(seq, max_len)
        got = call(answer, list(seq), max_len)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Wrong(f"return two arrays, (inputs, targets), as a tuple; got a {type(got).__name__}"
                        f"{f' of length {len(got)}' if isinstance(got, (tuple, list)) else ''}.")
        g_in = array(got[0], "the inputs you returned")
        g_tg = array(got[1], "the targets you returned")
        if len(want_in) == 0:
            if g_in.size or g_tg.size:
                raise Wrong(f"{what} ({seq}): got inputs of shape {g_in.shape}; one film is followed by nothing, so "
                            "there is no pair to learn from and no window at all (shape (0, max_len)).")
            continue  # an empty answer of any shape is accepted
        if g_in.ndim != 2 or g_tg.shape != g_in.shape or g_in.shape[1] != max_len:
            raise Wrong(f"{what} ({seq}, max_len={max_len}): inputs of shape {g_in.shape} and targets of shape "
                        f"{g_tg.shape}; both should be (number of windows, max_len) — every window padded to "
                        f"max_len = {max_len} positions.")
        if len(g_in) != len(want_in):
            raise Wrong(f"{what} ({seq}, max_len={max_len}): {len(g_in)} window(s), expected {len(want_in)}. A "
                        f"sequence of n films gives n − 1 pairs, and each window holds at most max_len pairs.")
        if not (np.array_equal(g_in, want_in) and np.array_equal(g_tg, want_tg)):
            hint = _windows_mistake(g_in, g_tg, seq, max_len) or (
                "Window w holds consecutive pairs (film, the film after it); windows are cut from the end of the "
                "sequence, oldest first, padded with 0 on the right (section 3.2's example).")
            raise Wrong(f"{what} ({seq}, max_len={max_len}): your inputs are {fmt(g_in)} and targets {fmt(g_tg)}, "
                        f"which is not the layout of section 3.2. {hint}")


# --------------------------------------------------------------------------------------------- experiment
RECENT_FILMS = (1, 5, 10)
RECENT_TOLERANCE = 0.002  # HR@10; one user of 610 is 0.0016 — a near-tie flipped by float rounding


@cache
def _sasrec_inputs():
    """Notebook 06's split with a smaller SASRec (32 factors, 5 epochs: seconds, and it already reads the order);
    the check compares with a rerun on whatever it is given, so the tests need not pay for the lesson's model."""
    from ..data import load_movielens
    from ..models import SASRec
    from ..split import leave_last_n

    ll_train, ll_test = leave_last_n(load_movielens().ratings, n=1)
    return SASRec(n_factors=32, n_epochs=5, verbose=False).fit(ll_train), ll_train, ll_test


def _hit_rate(sasrec, ll_train, ll_test, n_films, relevance_threshold=None, metric="hit@10") -> float:
    from ..evaluate import evaluate

    model = copy.deepcopy(sasrec)
    model.max_len = n_films  # recommend reads each user's last max_len training films
    return float(evaluate(model, ll_train, ll_test, relevance_threshold=relevance_threshold)[metric])


@exercise("06.sasrec_recent_films", kind="experiment", inputs=_sasrec_inputs)
def check_sasrec_recent_films(answer, sasrec, ll_train, ll_test) -> str:
    got = call(answer, copy.deepcopy(sasrec), ll_train, ll_test)
    got = keyed_numbers(got, RECENT_FILMS, "{number of films read: HR@10}",
                        lambda n: f"the HR@10 when reading {n} film(s)")
    n_users = ll_test["userId"].nunique()
    tol = max(RECENT_TOLERANCE, 1.01 / n_users)
    want = {n: _hit_rate(sasrec, ll_train, ll_test, n) for n in RECENT_FILMS}
    wrong = [n for n in RECENT_FILMS if abs(got[n] - want[n]) > tol]
    if wrong:
        n = wrong[0]
        if all(abs(got[m] - got[RECENT_FILMS[0]]) < 1e-12 for m in RECENT_FILMS) and \
                abs(got[n] - _hit_rate(sasrec, ll_train, ll_test, sasrec.max_len)) <= tol:
            hint = (f"Every value is the HR@10 of the model as it is, reading its usual {sasrec.max_len} films: the "
                    "model you evaluated did not read fewer films. Which of its settings says how many of a user's "
                    "most recent films recommend reads?")
        elif abs(got[n] - _hit_rate(sasrec, ll_train, ll_test, n, metric="ndcg@10")) <= tol:
            hint = "That is NDCG@10; the exercise asks for the hit rate HR@10."
        elif abs(got[n] - _hit_rate(sasrec, ll_train, ll_test, n, relevance_threshold=4.0)) <= tol:
            hint = ("You scored only the test films rated 4 or more; on the next-item track every target counts, "
                    "whatever its rating (section 3.1).")
        else:
            hint = ("Rank the whole catalogue minus each user's training films, exactly as section 4 does, with a "
                    "copy of the model that reads only the user's last n training films.")
        raise Wrong(f"reading the last {n} film(s) your HR@10 is {fmt(got[n])}, the course's run gives "
                    f"{fmt(want[n])} (tolerance ±{fmt(tol)}, one user). {hint}")
    usual = _hit_rate(sasrec, ll_train, ll_test, sasrec.max_len)
    per_n = ", ".join(f"{n} → {fmt(got[n])} ({round(got[n] * n_users)} users)" for n in RECENT_FILMS)
    return (f"HR@10 of SASRec reading only each user's last n films: {per_n} (the course's run: "
            f"{', '.join(fmt(want[n]) for n in RECENT_FILMS)}); reading its usual {sasrec.max_len}: {fmt(usual)} "
            f"({round(usual * n_users)} users). If one film hits about as many users as {sasrec.max_len}, the model gets "
            "most of what it uses from the end of the sequence; a difference of a few users is the noise of "
            "section 4.")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("06", [
    Choice("In section 6.2, ranked against 100 random films instead of the whole catalogue, Popularity's HR@10 "
           "grows more than any other model's (×13.8). Why does the most naive model gain the most?",
           {"a": "its scores have no ties, unlike the other models'",
            "b": "the random negatives are mostly obscure films, and putting popular films above obscure ones is "
                 "all Popularity does",
            "c": "the negatives are drawn in proportion to popularity, which favours it",
            "d": "Popularity was fitted on the test ratings too"},
           answer="b",
           why="a sampled metric asks whether the target beats a handful of random — mostly obscure — films; the "
               "coarse order popular-above-obscure is enough for that, and it is exactly Popularity's order.",
           hints={"a": "ties hurt ItemKNN (most of its scores are exactly 0), but they do not explain why "
                       "Popularity gains.",
                  "c": "sample_negatives draws uniformly from the films the user never rated; that is why the "
                       "negatives are mostly obscure.",
                  "d": "every model is fitted on ll_train only; a leak would show in the full-catalogue numbers "
                       "too."}),
    Choice("SASRec's causal mask sets the attention scores of later positions to −∞. What would go wrong if it "
           "were trained without the mask?",
           {"a": "the softmax would overflow",
            "b": "the model could no longer tell the order of the films",
            "c": "position t could attend to position t + 1, whose input is its own target: the model would learn "
                 "to copy it, and at recommendation time there is no next film to copy",
            "d": "each epoch would take much longer"},
           answer="c",
           why="without the mask the training task is trivial (read the answer one position ahead); the "
               "training loss would collapse while the model learns nothing that helps when the future is unknown.",
           hints={"a": "the mask removes terms; without it every score is finite, and a softmax that subtracts the "
                       "row maximum cannot overflow.",
                  "b": "the order enters through the positional embeddings p_t, not through the mask.",
                  "d": "the same L × L scores are computed with or without the mask."}),
    Choice("On the next-item track (section 4), SASRec's top 10 holds the next film for 43 users and ItemKNN's "
           "for 42, out of 610. What does that say?",
           {"a": "SASRec is better, because it reads the order of the films",
            "b": "ItemKNN is better, since an order-blind model is nearly as good at a fraction of the cost",
            "c": "nothing about which is better: one user is far inside the noise of about 7 to 8 users",
            "d": "the split leaks, since both numbers are so close"},
           answer="c",
           why="the standard error of a hit rate near 0.08 over 610 users is about 7 users, that of a difference "
               "about 8; one user separates nothing.",
           hints={"a": "one user of 610 is far below the standard error worked out in the reading of section 4.",
                  "b": "cost is a fair argument for ItemKNN, but 'better' on accuracy is not what one user shows.",
                  "d": "close numbers are what two similar models give; leave_last_n keeps every test film out "
                       "of train."}),
    Numeric("A user's training sequence has 42 films and max_len = 20. How many of the slots of that user's "
            "training inputs (all their windows together) are padding zeros?",
            answer=19, tol=0,
            why="42 films give 41 pairs; windows of 20 pairs need 3 windows, 60 slots; 60 − 41 = 19 are padding "
                "(all in the oldest window, which holds 1 pair).",
            hint="count the pairs first (one fewer than the films), then the windows needed to hold them, each "
                 "with max_len slots."),
    Numeric("A target sits at full rank 1,001 among 10,001 candidates, so 1,000 of the other 10,000 films score "
            "higher. 100 negatives are drawn uniformly from those 10,000. On average, how many of the drawn "
            "negatives score higher than the target?",
            answer=10, tol=0.005,
            why="each draw is a better film with probability 1,000 / 10,000; 100 draws give 100 × 0.1 = 10 on "
                "average — so about half the time at most 9 are drawn, and the film at rank 1,001 is a sampled "
                "hit@10.",
            hint="the mean of a hypergeometric count: draws × (better films / films drawn from)."),
    Choice("Section 5 re-ran the default models with the same code, data, split and seed, yet their validation "
           "scores differ from the stored tuning tables by less than two thousandths. Why?",
           {"a": "PyTorch ignores the seed on a CPU",
            "b": "the stored tables were tuned on the test films",
            "c": "dropout stays random when the model is evaluated",
            "d": "another CPU or library build rounds floating-point sums differently, and the tiny differences "
                 "grow over hundreds of training steps"},
           answer="d",
           why="a seed fixes the random numbers, not the arithmetic; a seeded run repeats bit for bit only on the "
               "same hardware with the same library build.",
           hints={"a": "on one machine the seeded runs repeat exactly (the smoke tests rely on it); the seed is "
                       "honoured.",
                  "b": "the grids were scored on each user's last training film; the test film was never looked "
                       "at.",
                  "c": "evaluation switches dropout off, and in training it draws from the seeded generator."}),
])

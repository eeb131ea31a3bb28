"""Checks of notebook 07 (BERT-based collaborative filtering): masked max pooling, the offset model's forward
pass, a user's history text, an experiment (TextProfile on cold-start films with day-one texts: the held-out
films lose their tags) and the questionnaire.

Each function check compares the student's function with a reference (section 2's pooling with a maximum in
place of the mean, a NumPy forward pass, ``recsys_course.text.user_history_texts``) on the notebook's worked
example, small random cases and edge cases; a hint that names a mistake is shown only when the check has computed
that mistake and found the student's answer equal to it.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from ..config import ITEM
from . import exercise
from .answers import Wrong, array, call, close, fmt, keyed_numbers, text
from .quiz import Choice, Numeric, register_quiz


# --------------------------------------------------------------------------------------------- 07.max_pool
def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _max_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The element-wise maximum over the real tokens, unit rows; zeros for a text with no real token."""
    real = mask.astype(bool)[..., None]
    top = np.where(real, hidden, -np.inf).max(1)
    top[~real.any(1)[:, 0]] = 0.0
    return _unit_rows(top)


def _pool_variants(hidden: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """The plausible mistakes, each with the hint shown when the student's rows equal it."""
    m = mask.astype(float)[..., None]
    real = mask.astype(bool)[..., None]
    raw_max = np.where(real.any(1), np.where(real, hidden, -np.inf).max(1), 0.0)
    return {
        "the padding states took part in the maximum: the mask must keep every padded position out of it.":
            _unit_rows(hidden.max(1)),
        "the padded positions entered the maximum as 0 (multiplying by the mask zeroes them, it does not remove "
        "them), and 0 beats every negative value: a padded position must never win, whatever its value.":
            _unit_rows((hidden * m).max(1)),
        "these are section 2's mean-pooled vectors; the exercise asks for the maximum of each dimension.":
            _unit_rows((hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)),
        "the maxima are right but not scaled to unit length (the last step of section 2's recipe).": raw_max,
    }


def _pool_case(answer, hidden, mask, what: str) -> None:
    want = _max_pool(hidden, mask)
    got = array(call(answer, hidden, mask, what="my_max_pool(hidden, mask)"), "my_max_pool(hidden, mask)",
                shape=want.shape, finite=False)
    empty = ~mask.astype(bool).any(1)
    if not np.isfinite(got).all():
        bad = ~np.isfinite(got).all(1)
        if (bad & empty).any():
            raise Wrong(f"{what}: a text with no real token gave {fmt(got[np.flatnonzero(bad & empty)[0]])}. It "
                        "has nothing to take the maximum of: return a zero row for it, as the exercise says.")
        raise Wrong(f"{what}: got {fmt(got[np.flatnonzero(bad)[0]])} for a text that has real tokens. The maximum "
                    "of its real states is finite and not the zero vector, so its unit vector is finite too: what "
                    "did your code divide by 0, or which value was infinite?")
    if close(got, want, atol=1e-8):
        return
    if empty.any() and close(got[~empty], want[~empty], atol=1e-8):
        raise Wrong(f"{what}: the texts with real tokens are right, but a text with no real token gave "
                    f"{fmt(got[np.flatnonzero(empty)[0]])}; it has nothing to take the maximum of, and the exercise "
                    "asks for a zero row.")
    for hint, variant in _pool_variants(hidden, mask).items():
        if close(got, variant, atol=1e-8):
            raise Wrong(f"{what}: got {fmt(got[0])} for the first text, expected {fmt(want[0])} — {hint}")
    raise Wrong(f"{what}: got {fmt(got[0])} for the first text, expected {fmt(want[0])}. For each text and each "
                "dimension take the largest value among the real tokens only, then scale the row to length 1.")


@exercise("07.max_pool")
def check_max_pool(answer) -> None:
    cases = [
        (np.array([[[1.0, 2.0], [3.0, 0.0], [100.0, 100.0]]]), np.array([[1, 1, 0]]),
         "section 2's worked example"),
        (np.array([[[-1.0, -2.0], [-3.0, -0.5], [7.0, 7.0]]]), np.array([[1, 1, 0]]),
         "a text whose real tokens are all negative"),
        (np.array([[[0.5, -1.0], [2.0, 1.0]], [[9.0, 9.0], [9.0, 9.0]]]), np.array([[1, 1], [0, 0]]),
         "a batch whose second text is all padding"),
    ]
    rng = np.random.default_rng(7)
    for trial in range(3):
        n, T, d = 4, 6, 5
        hidden = rng.normal(size=(n, T, d))
        lengths = rng.integers(1, T + 1, size=n)
        mask = (np.arange(T)[None, :] < lengths[:, None]).astype(int)  # real tokens first, padding after
        cases.append((hidden, mask, f"random batch {trial} (4 texts of 1 to 6 real tokens)"))
    for hidden, mask, what in cases:
        _pool_case(answer, hidden, mask, what)


# --------------------------------------------------------------------------------------------- 07.offset_forward
def _forward(z, y, u0, i0, A, B, W1, c1, w2, c2, *, relu=True, offsets=True, order="uip", out_bias=True):
    u = z @ A.T + (u0 if offsets else 0.0)
    i = y @ B.T + (i0 if offsets else 0.0)
    parts = {"u": u, "i": i, "p": u * i}
    pre = np.concatenate([parts[c] for c in order], 1) @ W1.T + c1
    h = np.maximum(pre, 0.0) if relu else pre
    return h @ w2 + (c2 if out_bias else 0.0)


_FORWARD_MISTAKES = [
    (dict(relu=False), "without the ReLU: the hidden layer must cut its negative values to 0 before w2 reads it."),
    (dict(offsets=False), "without the id offsets: u and i are the mapped text vectors plus u0 and i0."),
    (dict(order="iup"), "the parts are concatenated in another order: W1 reads [u; i; u ⊙ i], user part first."),
    (dict(order="piu"), "the parts are concatenated in another order: W1 reads [u; i; u ⊙ i], user part first."),
    (dict(out_bias=False), "the output's bias c2 is missing."),
]


def _read_outputs(got, n: int, what: str) -> np.ndarray:
    out = array(got, what)
    if out.ndim == 2 and out.shape[1] == 1:  # a column of outputs is fine too
        out = out[:, 0]
    if out.ndim == 0 and n == 1:
        out = out.reshape(1)
    if out.shape != (n,):
        raise Wrong(f"{what} should give one number per pair, {n} in all (shape ({n},)), got shape {out.shape}")
    return out


@exercise("07.offset_forward")
def check_offset_forward(answer) -> None:
    what = "my_offset_forward(...)"
    # by hand: h = 2, k = 1, H = 1. u = 2·1 + 0.5 = 2.5, i = 3·1 − 1 = 2, u·i = 5, ReLU(2.5 + 2 + 5) = 9.5,
    # output 2 · 9.5 + 0.5 = 19.5
    args = (np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([[0.5]]), np.array([[-1.0]]),
            np.array([[2.0, 0.0]]), np.array([[0.0, 3.0]]), np.array([[1.0, 1.0, 1.0]]), np.array([0.0]),
            np.array([2.0]), 0.5)
    got = _read_outputs(call(answer, *args, what=what), 1, what)
    if not close(got, [19.5], atol=1e-8):
        known = next((h_ for kw, h_ in _FORWARD_MISTAKES if close(got, _forward(*args, **kw), atol=1e-8)), None)
        if known:
            raise Wrong(f"on a pair small enough to do by hand got {fmt(got[0])}, expected 19.5 — {known}")
        raise Wrong(f"on a pair small enough to do by hand got {fmt(got[0])}, expected 19.5: with z = (1, 0), "
                    "A = (2, 0), u0 = 0.5 the user vector is u = 2.5; with y = (0, 1), B = (0, 3), i0 = −1 the film "
                    "vector is i = 2; the head reads (2.5, 2, 5), W1 = (1, 1, 1) gives 9.5 (positive, so ReLU keeps "
                    "it), and w2 = 2, c2 = 0.5 give 19.5.")
    rng = np.random.default_rng(1)
    for trial in range(4):
        n, h, k, H = 7, 6, 3, 5
        args = (rng.normal(size=(n, h)), rng.normal(size=(n, h)), rng.normal(size=(n, k)), rng.normal(size=(n, k)),
                rng.normal(size=(k, h)), rng.normal(size=(k, h)), rng.normal(size=(H, 3 * k)), rng.normal(size=H),
                rng.normal(size=H), float(rng.normal()))
        want = _forward(*args)
        got = _read_outputs(call(answer, *args, what=what), n, what)
        if close(got, want, atol=1e-8):
            continue
        hint = next((h_ for kw, h_ in _FORWARD_MISTAKES if close(got, _forward(*args, **kw), atol=1e-8)),
                    "Go step by step: u = A z + u0 for each pair (A is k × h, z has one row per pair), "
                    "i = B y + i0, then h = ReLU(W1 [u; i; u ⊙ i] + c1) and the output w2·h + c2.")
        raise Wrong(f"random case {trial} ({n} pairs, h = {h}, k = {k}, H = {H}): got {fmt(got[:3])}… for the first "
                    f"pairs, expected {fmt(want[:3])}… — {hint}")


# --------------------------------------------------------------------------------------------- 07.history_text
_LABELS = {1: "Toy Story (1995)", 2: "Heat (1995)", 3: "Fargo (1996)", 4: "Alien (1979)", 5: "Up (2009)"}
_HISTORY_CASES = [
    ("section 3's rule: the liked films (≥ 4 stars), newest first", [1, 2, 3, 4], [5.0, 4.0, 3.0, 4.5],
     [10, 20, 30, 40], 5, 4.0),
    ("only the n_titles most recent liked films (here 2)", [1, 2, 3, 4, 5], [5.0, 5.0, 5.0, 5.0, 5.0],
     [1, 2, 3, 4, 5], 2, 4.0),
    ("a user who rated nothing ≥ 4: their highest-rated films instead", [1, 2, 3], [2.0, 3.0, 3.0], [5, 6, 7], 5,
     4.0),
    ("three liked films rated at the same moment: ties in time go to the larger movieId first", [1, 2, 3],
     [4.0, 4.0, 4.0], [9, 9, 9], 5, 4.0),
    ("a film missing from labels (movieId 99) is skipped", [1, 99, 2], [4.0, 5.0, 4.0], [1, 2, 3], 5, 4.0),
    ("min_rating = 3.5: a 3.5-star film counts as liked", [1, 2, 3], [3.5, 3.0, 5.0], [3, 2, 1], 5, 3.5),
    ("recency is by timestamp, not by the order of the rows", [3, 1, 2], [4.0, 4.0, 4.0], [30, 10, 20], 5, 4.0),
]


@cache
def _movies_of_labels() -> pd.DataFrame:
    return pd.DataFrame({"movieId": list(_LABELS), "title": [v[:-7] for v in _LABELS.values()],
                         "year": [int(v[-5:-1]) for v in _LABELS.values()], "genres": [[]] * len(_LABELS)})


@exercise("07.history_text")
def check_history_text(answer) -> None:
    from ..text import user_history_texts

    for what, items, stars, times, n, lo in _HISTORY_CASES:
        frame = pd.DataFrame({"userId": 1, "movieId": items, "rating": np.asarray(stars, float), "timestamp": times})
        want = user_history_texts(frame, _movies_of_labels(), n_titles=n, min_rating=lo).iloc[0]
        got = text(call(answer, frame.drop(columns="userId"), dict(_LABELS), n, lo,
                        what="my_history_text(ratings, labels, n_titles, min_rating)"),
                   "my_history_text(ratings, labels, n_titles, min_rating)")
        if got != want:
            raise Wrong(f"{what}: got {got!r}, expected {want!r} (labels joined by a semicolon and a space).")


# --------------------------------------------------------------------------------------------- experiment
DAY_ONE_METRICS = ("ndcg@10", "hit@10")
DAY_ONE_TOLERANCE = {"ndcg@10": 0.001, "hit@10": 0.005}  # the same code on the same vectors agrees exactly
TAGS_MARK = "; tags: "  # item_texts writes "Title (year) genres: …; tags: …"
_DAY_ONE_CACHE: dict = {}


@cache
def _cold_start_inputs():
    """The notebook's cold-start objects: item_cold_start_split (10 %, seed 42) of all of ml-latest-small and
    section 2's film texts (three tags) — with :class:`_WordHashEncoder` instead of MiniLM, so that the tests
    encode 9.7 k texts in a second rather than minutes (the check compares with a rerun on whatever encoder it is
    given; what it tests is which texts were encoded and how they were scored)."""
    from ..data import load_movielens
    from ..split import item_cold_start_split
    from ..text import item_texts

    ml = load_movielens()
    cold_train, cold_test = item_cold_start_split(ml.ratings, share=0.1, seed=42)
    return cold_train, cold_test, item_texts(ml.movies, ml.tags, n_tags=3), _WordHashEncoder()


class _WordHashEncoder:
    """A stand-in for the sentence encoder in the tests: hashed word counts times a seeded random projection,
    unit rows. Texts that share words get similar vectors (so a text profile still ranks), at no model cost."""

    name = "word-hash-test-encoder"

    def __init__(self, dim: int = 64, n_features: int = 2 ** 14, seed: int = 0):
        from sklearn.feature_extraction.text import HashingVectorizer

        self._words = HashingVectorizer(n_features=n_features, alternate_sign=False, norm=None)
        self._projection = np.random.default_rng(seed).normal(size=(n_features, dim))

    def encode(self, texts, batch_size: int = 32) -> np.ndarray:
        vectors = np.asarray(self._words.transform(list(texts)) @ self._projection)
        norm = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norm, out=np.zeros_like(vectors), where=norm > 0).astype(np.float32)


def _fingerprint(cold_train, cold_test, texts, encoder) -> tuple:
    out = [id(encoder), getattr(encoder, "name", "")]
    for obj in (cold_train, cold_test, texts):
        if isinstance(obj, (pd.DataFrame, pd.Series)):
            out.append((obj.shape, int(pd.util.hash_pandas_object(obj).sum())))
        else:
            out.append(id(obj))
    return tuple(out)


def _day_one_texts(texts: pd.Series, cold_test: pd.DataFrame) -> pd.Series:
    """The texts with the tag part cut from the held-out films' lines (a film nobody has seen has no tags)."""
    out = texts.copy()
    new = out.index.isin(cold_test[ITEM].unique())
    out[new] = out[new].astype(str).str.split(TAGS_MARK, n=1).str[0]
    return out


def _text_profile_cold(cold_train, cold_test, texts, encoder, which: str) -> dict[str, float]:
    """TextProfile (default settings) on the cold-start split, scored by evaluate_cold_items: with section 2's
    texts ("all": every film keeps its tags) or day-one texts ("day_one": the held-out films lose theirs)."""
    key = (_fingerprint(cold_train, cold_test, texts, encoder), which)
    if key not in _DAY_ONE_CACHE:
        from ..evaluate import evaluate_cold_items
        from ..models.text_models import TextProfile

        item_text = texts if which == "all" else _day_one_texts(texts, cold_test)
        row = evaluate_cold_items(TextProfile(item_text=item_text, encoder=encoder).fit(cold_train), cold_test)
        _DAY_ONE_CACHE[key] = {m: float(row[m]) for m in DAY_ONE_METRICS}
    return _DAY_ONE_CACHE[key]


def _near(got: dict, want: dict) -> bool:
    return all(abs(got[m] - want[m]) <= DAY_ONE_TOLERANCE[m] for m in DAY_ONE_METRICS)


def _read_row(got) -> dict[str, float]:
    return keyed_numbers(got, DAY_ONE_METRICS, "(or the row evaluate_cold_items gives, a Series)",
                         lambda m: f"the value of {m!r}")


@exercise("07.day_one_texts", kind="experiment", inputs=_cold_start_inputs)
def check_day_one_texts(answer, cold_train, cold_test, texts, encoder) -> str:
    got = _read_row(call(answer, cold_train, cold_test, texts, encoder))
    want = _text_profile_cold(cold_train, cold_test, texts, encoder, "day_one")
    tolerance = f"±{fmt(DAY_ONE_TOLERANCE['ndcg@10'])} on NDCG@10, ±{fmt(DAY_ONE_TOLERANCE['hit@10'])} on hit@10"
    if not _near(got, want):
        hint = ("Only the films of cold_test are new: cut the tag part from their texts and keep every other film's "
                "text as it is; then fit TextProfile with its default settings and the notebook's encoder on "
                "cold_train and score it with evaluate_cold_items on cold_test, as in section 7.")
        if _near(got, _text_profile_cold(cold_train, cold_test, texts, encoder, "all")):
            hint = ("These are the numbers of section 7's TextProfile row, where every film keeps its tags: the "
                    "held-out films' texts did not change.")
        raise Wrong(f"your NDCG@10 {fmt(got['ndcg@10'])} and hit@10 {fmt(got['hit@10'])}; the course's run gives "
                    f"{fmt(want['ndcg@10'])} and {fmt(want['hit@10'])} (tolerance {tolerance}). {hint}")
    return (f"day-one texts (no tags for the held-out films): NDCG@10 {fmt(got['ndcg@10'])}, hit@10 "
            f"{fmt(got['hit@10'])} (the course's run: {fmt(want['ndcg@10'])}, {fmt(want['hit@10'])}). Read them "
            "against section 7's table: the drop from the TextProfile row is what the held-out films' own tags "
            "were worth; the ContentBased row still reads those tags, and the id models' rows are what a random "
            "order gets.")


# --------------------------------------------------------------------------------------------- questionnaire
register_quiz("07", [
    Choice("Section 2 divides the masked sum of the token states by the number of real tokens. If you divided "
           "the same masked sum by T (real tokens plus padding) instead, what would happen to the sentence "
           "vector e?",
           {"a": "nothing: dividing a row by a positive number changes its length, not its direction, and e is "
                 "scaled to unit length anyway",
            "b": "e would be shorter, by the share of real tokens among the T positions",
            "c": "e would lean towards the padding states, like the (34.67, 34) of section 2's example",
            "d": "e would be nan for every text that has padding"},
           answer="a",
           why="the last step divides by the length, which cancels any positive factor per text; what the mask must "
               "get right is which states enter the sum, not what the sum is divided by.",
           hints={"b": "the last step scales every e to length 1, whatever its length before.",
                  "c": "that example added the padding states to the sum; here the sum still holds the real tokens "
                       "only.",
                  "d": "T is at least 1, so nothing is divided by zero."}),
    Choice("BERTBasedCF's test RMSE is no better than the bias baseline it starts from. Which reason does "
           "section 8 give?",
           {"a": "the encoder is frozen; fine-tuning it would have fixed the problem",
            "b": "five titles say what a user watched, not why they liked it, and the model has no id vector for "
                 "the user to learn the rest from the ratings",
            "c": "the history texts were built from the test ratings",
            "d": "its head cannot express that this user likes this film"},
           answer="b",
           why="the user side is only the history text's vector; two users with the same titles are the same user "
               "to the model. BERTOffsetCF adds id offsets and beats BiasedMF.",
           hints={"a": "section 5 fine-tunes the top layer: no measurable gain.",
                  "c": "they are built from the training ratings only (section 3) — and a leak would flatter the "
                       "model, not hold it back.",
                  "d": "that is the linear head on the concatenation; section 4 uses an MLP that also reads p ⊙ q "
                       "precisely so that it can."}),
    Choice("On the held-out films of section 7, BERTBasedCF gets exactly the numbers of BiasBaseline and ItemKNN "
           "(a random ranking), while BERTOffsetCF does better. Why?",
           {"a": "BERTBasedCF's film vectors are an id table: a film absent from train has no row, so every cold "
                 "film gets the same score, μ + b_u",
            "b": "BERTBasedCF trained for fewer epochs than BERTOffsetCF",
            "c": "the held-out films have no history text",
            "d": "the cold-start split removes the users who rated the held-out films"},
           answer="a",
           why="only a model that reads the film's own text can tell two unseen films apart; BERTOffsetCF scores a "
               "cold film from B y_i with offset 0.",
           hints={"b": "more epochs would not create rows for films the model never saw.",
                  "c": "history texts belong to users; the held-out films have texts (title, genres, tags), but "
                       "BERTBasedCF never reads a film's text.",
                  "d": "item_cold_start_split holds out films, not users: hundreds of users are ranked."}),
    Choice("In section 6 the predictions' standard deviation is about two-thirds of the true ratings', and a "
           "true half-star rating is predicted as about 2.45 on average. What does this show?",
           {"a": "the model is broken: a good model's predictions spread as widely as the ratings",
            "b": "regression to the mean: trained on squared error and unable to tell a 1-star from a 3-star "
                 "evening, the model predicts something in between",
            "c": "the predictions are clipped to the rating range",
            "d": "the head's ReLU cannot output negative values, so low ratings are out of reach"},
           answer="b",
           why="the squared error is smallest for the conditional mean, and what the model cannot foresee is "
               "averaged out; a ranking needs only the order, which the rising mean line shows is mostly right.",
           hints={"a": "even a predictor that is right on average has a smaller spread than the ratings: the part "
                       "of a rating it cannot foresee averages out.",
                  "c": "clipping cuts only predictions outside 0.5 to 5; 2.45 is far inside.",
                  "d": "the head's output is added to μ + b_u + b_i, and its last layer w2·h + c2 is linear and can "
                       "be negative."}),
    Numeric("A user rated three films 5, 4.5 and 2.5 stars. With section 3's weights "
            "d_ui = max(r_ui − r̄_u, 0), what share of the text profile p_u comes from the 5-star film (its weight "
            "divided by the sum of the weights)? Two decimals.",
            answer=2 / 3, tol=0.01,
            why="the mean is 4, so d = (1, 0.5, 0) and the 5-star film's share is 1 / 1.5 ≈ 0.67; the 2.5-star film "
                "adds nothing (negative=False).",
            hint="Start from the user's mean rating; each film's weight is how far it lies above that mean (0 "
                 "below it), and the share is a number between 0 and 1."),
])

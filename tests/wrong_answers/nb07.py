"""Plausible wrong answers to the exercises of notebook 07; each must get ❌ with a hint (tests/test_exercises.py).

The generic mistakes (a forgotten ``return``, a wrong type, a crash) are tried for every exercise by the test
itself; these are the mistakes specific to each exercise.
"""
import numpy as np

from recsys_course.evaluate import evaluate_cold_items
from recsys_course.models import TextProfile


def _unit(x):
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


# ------------------------------------------------------------------------------------------------ max_pool
def _pool_times_mask(hidden, mask):  # section 2's trick copied: padding becomes 0 and can win the maximum
    return _unit((np.asarray(hidden, float) * np.asarray(mask, float)[..., None]).max(1))


def _pool_no_mask(hidden, mask):
    return _unit(np.asarray(hidden, float).max(1))


def _pool_mean(hidden, mask):
    m = np.asarray(mask, float)[..., None]
    return _unit((np.asarray(hidden, float) * m).sum(1) / np.maximum(m.sum(1), 1e-9))


def _pool_not_normalised(hidden, mask):
    real = np.asarray(mask).astype(bool)[..., None]
    top = np.where(real, np.asarray(hidden, float), -np.inf).max(1)
    top[~real.any(1)[:, 0]] = 0.0
    return top


def _pool_no_guard(hidden, mask):  # -inf fill, but the all-padding text stays -inf and becomes nan
    real = np.asarray(mask).astype(bool)[..., None]
    top = np.where(real, np.asarray(hidden, float), -np.inf).max(1)
    return top / np.linalg.norm(top, axis=1, keepdims=True)


def _pool_min_fill(hidden, mask):  # padding replaced by a very small number: the empty text gets that number
    hidden = np.asarray(hidden, float)
    real = np.asarray(mask).astype(bool)[..., None]
    return _unit(np.where(real, hidden, hidden.min() - 1.0).max(1))


# ------------------------------------------------------------------------------------------------ offset_forward
def _forward(z, y, u0, i0, A, B, W1, c1, w2, c2, relu=True, offsets=True, order="uip", out_bias=True):
    u = np.asarray(z) @ np.asarray(A).T + (u0 if offsets else 0.0)
    i = np.asarray(y) @ np.asarray(B).T + (i0 if offsets else 0.0)
    parts = {"u": u, "i": i, "p": u * i}
    pre = np.concatenate([parts[c] for c in order], 1) @ np.asarray(W1).T + c1
    return (np.maximum(pre, 0.0) if relu else pre) @ w2 + (c2 if out_bias else 0.0)


def _fwd_no_relu(z, y, u0, i0, A, B, W1, c1, w2, c2):
    return _forward(z, y, u0, i0, A, B, W1, c1, w2, c2, relu=False)


def _fwd_no_offsets(z, y, u0, i0, A, B, W1, c1, w2, c2):
    return _forward(z, y, u0, i0, A, B, W1, c1, w2, c2, offsets=False)


def _fwd_item_first(z, y, u0, i0, A, B, W1, c1, w2, c2):
    return _forward(z, y, u0, i0, A, B, W1, c1, w2, c2, order="iup")


def _fwd_no_c2(z, y, u0, i0, A, B, W1, c1, w2, c2):
    return _forward(z, y, u0, i0, A, B, W1, c1, w2, c2, out_bias=False)


def _fwd_sum_instead_of_product(z, y, u0, i0, A, B, W1, c1, w2, c2):
    u = np.asarray(z) @ np.asarray(A).T + u0
    i = np.asarray(y) @ np.asarray(B).T + i0
    return np.maximum(np.concatenate([u, i, u + i], 1) @ np.asarray(W1).T + c1, 0.0) @ w2 + c2


# ------------------------------------------------------------------------------------------------ history_text
def _hist_oldest_first(ratings, labels, n_titles=5, min_rating=4.0):
    df = ratings[ratings["movieId"].isin(list(labels))]
    liked = df[df["rating"] >= min_rating]
    if liked.empty:
        liked = df[df["rating"] == df["rating"].max()]
    liked = liked.sort_values(["timestamp", "movieId"], kind="stable").head(n_titles)
    return "; ".join(labels[m] for m in liked["movieId"])


def _hist_no_fallback(ratings, labels, n_titles=5, min_rating=4.0):
    df = ratings[ratings["movieId"].isin(list(labels))]
    liked = df[df["rating"] >= min_rating]
    liked = liked.sort_values(["timestamp", "movieId"], ascending=False, kind="stable").head(n_titles)
    return "; ".join(labels[m] for m in liked["movieId"])


def _hist_ties_smaller_first(ratings, labels, n_titles=5, min_rating=4.0):
    df = ratings[ratings["movieId"].isin(list(labels))]
    liked = df[df["rating"] >= min_rating]
    if liked.empty:
        liked = df[df["rating"] == df["rating"].max()]
    liked = liked.sort_values(["timestamp", "movieId"], ascending=[False, True], kind="stable").head(n_titles)
    return "; ".join(labels[m] for m in liked["movieId"])


def _hist_strictly_above(ratings, labels, n_titles=5, min_rating=4.0):
    df = ratings[ratings["movieId"].isin(list(labels))]
    liked = df[df["rating"] > min_rating]
    if liked.empty:
        liked = df[df["rating"] == df["rating"].max()]
    liked = liked.sort_values(["timestamp", "movieId"], ascending=False, kind="stable").head(n_titles)
    return "; ".join(labels[m] for m in liked["movieId"])


def _hist_row_order(ratings, labels, n_titles=5, min_rating=4.0):  # the last rows taken as the newest
    df = ratings[ratings["movieId"].isin(list(labels))]
    liked = df[df["rating"] >= min_rating]
    if liked.empty:
        liked = df[df["rating"] == df["rating"].max()]
    return "; ".join(labels[m] for m in liked["movieId"].iloc[::-1].head(n_titles))


def _hist_comma(ratings, labels, n_titles=5, min_rating=4.0):
    df = ratings[ratings["movieId"].isin(list(labels))]
    liked = df[df["rating"] >= min_rating]
    if liked.empty:
        liked = df[df["rating"] == df["rating"].max()]
    liked = liked.sort_values(["timestamp", "movieId"], ascending=False, kind="stable").head(n_titles)
    return ", ".join(labels[m] for m in liked["movieId"])


# ------------------------------------------------------------------------------------------------ day_one_texts
def _day_one_unchanged(cold_train, cold_test, texts, encoder):  # forgot to change the texts: section 7's row
    return evaluate_cold_items(TextProfile(item_text=texts, encoder=encoder).fit(cold_train), cold_test)


def _day_one_dropped_films(cold_train, cold_test, texts, encoder):  # the held-out films removed, not untagged
    kept = texts[~texts.index.isin(cold_test["movieId"].unique())]
    return evaluate_cold_items(TextProfile(item_text=kept, encoder=encoder).fit(cold_train), cold_test)


def _day_one_negative(cold_train, cold_test, texts, encoder):  # a second change: negative=True
    day_one = texts.copy()
    new = day_one.index.isin(cold_test["movieId"].unique())
    day_one[new] = day_one[new].str.split("; tags: ", n=1).str[0]
    return evaluate_cold_items(TextProfile(item_text=day_one, negative=True, encoder=encoder).fit(cold_train),
                               cold_test)


def _day_one_tuple(cold_train, cold_test, texts, encoder):
    return (0.0665, 0.2934)


def _day_one_precision_only(cold_train, cold_test, texts, encoder):
    return {"precision@10": 0.04}


WRONG = {
    "07.max_pool": [
        ("padding zeroed by the mask, then the maximum", _pool_times_mask),
        ("no mask at all", _pool_no_mask),
        ("section 2's mean instead of the maximum", _pool_mean),
        ("not scaled to unit length", _pool_not_normalised),
        ("the all-padding text becomes nan", _pool_no_guard),
        ("padding filled with a small number: the empty text is not zero", _pool_min_fill),
    ],
    "07.offset_forward": [
        ("no ReLU", _fwd_no_relu),
        ("offsets forgotten", _fwd_no_offsets),
        ("film part first in the concatenation", _fwd_item_first),
        ("c2 forgotten", _fwd_no_c2),
        ("u + i instead of u ⊙ i", _fwd_sum_instead_of_product),
    ],
    "07.history_text": [
        ("oldest first", _hist_oldest_first),
        ("no fallback to the highest-rated films", _hist_no_fallback),
        ("ties in time: smaller movieId first", _hist_ties_smaller_first),
        ("liked = strictly above min_rating", _hist_strictly_above),
        ("the order of the rows taken as time", _hist_row_order),
        ("joined with a comma", _hist_comma),
    ],
    "07.day_one_texts": [
        ("the texts left unchanged", _day_one_unchanged),
        ("the held-out films dropped from the texts", _day_one_dropped_films),
        ("a second change: negative=True", _day_one_negative),
        ("a tuple instead of the row", _day_one_tuple),
        ("the wrong metric", _day_one_precision_only),
    ],
    "07.quiz": [
        ("dividing by T blamed for a shorter vector", {1: "b", 2: "b", 3: "a", 4: "b", 5: 0.67}),
        ("the share of the sum of ratings instead of the weights", {1: "a", 2: "b", 3: "a", 4: "b", 5: 5 / 12}),
        ("a letter that is not an option", {1: "a", 2: "e", 3: "a", 4: "b", 5: 0.67}),
        ("a number where a letter is due", {1: "a", 2: "b", 3: 1, 4: "b", 5: 0.67}),
        ("a percentage instead of a share", {1: "a", 2: "b", 3: "a", 4: "b", 5: 67}),
    ],
}

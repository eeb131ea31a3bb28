"""Checks of notebook 03 (content-based): TF-IDF rows, one user's ridge weights, the hybrid's switch.

Each check compares the student's function with a reference (scikit-learn, ``np.linalg.lstsq``, or the rule
itself) on small hand-made cases and a few edge cases, and raises AssertionError with a hint when they differ.
"""
from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from . import exercise

_TFIDF_CASES = [
    ([["space", "classic"], ["space", "space"], ["christmas"]], "the three films of section 2.1"),
    ([["a", "b", "a"], ["a", "c"], ["a"]], "a term ('a') present in every document keeps idf = 1, not 0"),
    ([["x", "x", "x", "y"], ["y", "z"]], "repeated terms: tf is the raw count"),
    ([["good", "film"], [], ["film"]], "an empty document must stay an all-zero row (no division by zero)"),
    ([["solo"]], "a single document with a single term"),
]


def _sklearn_tfidf(docs):
    vec = TfidfVectorizer(analyzer=lambda d: d, lowercase=False)  # docs are token lists already
    matrix = vec.fit_transform(docs).toarray()
    return matrix, list(vec.get_feature_names_out())


@exercise("03.tfidf")
def check_tfidf(answer) -> None:
    for docs, what in _TFIDF_CASES:
        want, want_vocab = _sklearn_tfidf(docs)
        got = answer([list(d) for d in docs])
        assert isinstance(got, tuple) and len(got) == 2, "return a tuple (matrix, vocabulary)"
        matrix, vocab = got
        assert list(vocab) == want_vocab, (f"vocabulary {list(vocab)} should be {want_vocab} (sorted alphabetically) "
                                           f"— case: {what}.")
        matrix = np.asarray(matrix, dtype=float)
        assert matrix.shape == want.shape, f"matrix shape {matrix.shape}, expected {want.shape} — case: {what}."
        assert np.allclose(matrix, want, atol=1e-9), (
            f"for docs {docs} got\n{np.round(matrix, 4)}\nexpected\n{np.round(want, 4)}\n— case: {what}. Remember "
            "idf = ln((1 + N) / (1 + df)) + 1 and scale every non-empty row to unit L2 length.")


def _ridge_reference(C, r, lam):
    b = float(np.mean(r))
    k = C.shape[1]
    stacked = np.vstack([C, np.sqrt(lam) * np.eye(k)])
    w = np.linalg.lstsq(stacked, np.concatenate([r - b, np.zeros(k)]), rcond=None)[0]
    return b, w


@exercise("03.ridge_weights")
def check_ridge_weights(answer) -> None:
    rng = np.random.default_rng(3)
    cases = [
        (np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([5.0, 2.0, 4.0]), 1.0,
         "the worked example of section 3.2 (w = (0.7917, -0.7083))"),
        (rng.random((12, 4)), rng.integers(1, 6, 12).astype(float), 3.0, "a user with 12 ratings, 4 features"),
        (rng.random((2, 5)), np.array([4.0, 1.5]), 0.5,
         "fewer ratings (2) than features (5): still solvable because lam > 0"),
        (rng.random((4, 3)), np.full(4, 3.5), 2.0, "every rating equal: the centred target is 0, so w = 0"),
    ]
    for C, r, lam, what in cases:
        want_b, want_w = _ridge_reference(C, r, lam)
        got = answer(C.copy(), r.copy(), lam)
        assert isinstance(got, tuple) and len(got) == 2, "return a tuple (b, w)"
        b, w = got
        assert np.isclose(float(b), want_b), f"b = {b!r}, expected the mean rating {want_b:.4f} — case: {what}."
        w = np.asarray(w, dtype=float).ravel()
        assert w.shape == want_w.shape, f"w has shape {w.shape}, expected {want_w.shape} — case: {what}."
        assert np.allclose(w, want_w, atol=1e-8), (
            f"w = {np.round(w, 4)}, expected {np.round(want_w, 4)} — case: {what}. Solve "
            "(C^T C + lam I) w = C^T (r - b).")


@exercise("03.blend")
def check_blend(answer) -> None:
    cf = np.array([4.0, 3.0, np.nan, 2.0])
    content = np.array([3.0, 5.0, 3.5, 2.5])
    knows = np.array([True, True, False, True])
    cases = [
        (0.5, np.array([3.5, 4.0, 3.5, 2.25]), "weight 0.5; the third film is cold (CF score NaN)"),
        (1.0, np.array([4.0, 3.0, 3.5, 2.0]), "weight 1: CF where it knows the film, content where it does not"),
        (0.0, content, "weight 0: content everywhere"),
        (0.7, 0.7 * np.nan_to_num(cf) + 0.3 * content, "weight 0.7"),
    ]
    for weight, want, what in cases:
        if weight == 0.7:
            want = want.copy()
            want[~knows] = content[~knows]
        got = np.asarray(answer(cf.copy(), content.copy(), knows.copy(), weight), dtype=float)
        assert got.shape == want.shape, f"got shape {got.shape}, expected {want.shape}"
        assert not np.isnan(got).any(), (f"the result has NaN: {got}. Where cf_knows is False, use the content "
                                         "score alone — 0 * NaN is still NaN, so select, do not multiply.")
        assert np.allclose(got, want), f"weight {weight}: got {got}, expected {want} — case: {what}."

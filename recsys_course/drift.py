r"""Interest drift: how a user's tastes move over time, measured and modelled (notebook 09).

* **Genre distributions.** :math:`p_u(g)` = the share of user u's ratings that fall on genre g; a film with
  n genres gives 1/n to each (so every rating counts once). MovieLens' "(no genres listed)" is not a genre:
  such films carry no genre mass.
* **Jensen–Shannon divergence** between two distributions, in bits (0 = identical, 1 = disjoint):

  .. math:: \mathrm{JS}(P\,\|\,Q) = \tfrac12\,\mathrm{KL}(P\,\|\,M) + \tfrac12\,\mathrm{KL}(Q\,\|\,M),
            \qquad M = \tfrac12 (P + Q).

* **Drift of a user** = JS between the genre distributions of the early and the late half of their ratings
  (in time). Even a user whose taste never moves shows some JS, because each half is a finite sample; the
  **shuffled-time null** (:func:`shuffled_user_drift`) measures exactly that part by shuffling each user's
  timestamps before splitting. Drift is what the real split shows beyond the null.
* **The Markov interest model** the course starts from,

  .. math:: p_{t+1}(i) = \alpha\, p_t(i) + \beta \sum_j p_t(j)\, P(i \mid j),

  with :math:`P(i\mid j)` estimated from consecutive ratings (:func:`genre_transitions`). Because
  :math:`\sum_i \sum_j p_t(j) P(i\mid j) = 1` when P's rows sum to 1, :math:`p_{t+1}` sums to
  :math:`\alpha + \beta`: it is a distribution exactly when :math:`\alpha, \beta \ge 0` and
  :math:`\alpha + \beta = 1`. At :math:`\alpha = 1, \beta = 0` it is "no change".
* **Exponential time decay** of interaction weights with half-life h: :math:`w(t) = 2^{-(t_\text{ref} - t)/h}`
  — 1 at the reference time, ½ one half-life earlier. Timestamps are in seconds (as in MovieLens), the
  half-life ``half_life_days`` in days (see the glossary in CONTRIBUTING.md).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import check_choice, check_int, check_number
from .config import GENRES, ITEM, TIME, USER
from .data import check_ratings

__all__ = ["NO_GENRE", "item_genre_matrix", "genre_distribution", "js_divergence", "time_halves", "user_drift",
           "shuffled_user_drift", "genre_transitions", "markov_step", "mean_js", "decay_weights",
           "rating_decay_weights", "DAY"]

#: Seconds in a day: MovieLens timestamps are seconds, half-lives are days.
DAY = 86400.0

#: MovieLens' marker for a film without genres; it is not treated as a genre.
NO_GENRE = "(no genres listed)"


def item_genre_matrix(movies: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(matrix, movie ids, genre names): films × genres, each row summing to 1 (a film with n genres gives 1/n
    to each) or 0 for a film without genres. Genres are sorted by name."""
    if ITEM not in movies.columns or GENRES not in movies.columns:
        raise ValueError(f"movies needs the columns '{ITEM}' and '{GENRES}' (as loaded by load_movielens())")
    lists = [[g for g in (gs if isinstance(gs, (list, tuple, np.ndarray)) else []) if g != NO_GENRE]
             for gs in movies[GENRES]]
    names = np.array(sorted({g for gs in lists for g in gs}), dtype=object)
    col = {g: c for c, g in enumerate(names)}
    rows, cols, vals = [], [], []
    for r, gs in enumerate(lists):
        for g in dict.fromkeys(gs):  # a genre listed twice still counts once
            rows.append(r)
            cols.append(col[g])
            vals.append(1.0 / len(set(gs)))
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(len(lists), len(names)))
    return matrix, movies[ITEM].to_numpy(), names


def _genre_rows(ratings: pd.DataFrame, movies: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray]:
    """The genre row (shares) of the film of every rating, and the genre names."""
    G, ids, names = item_genre_matrix(movies)
    pos = pd.Index(ids).get_indexer(ratings[ITEM])
    if (pos < 0).any():
        missing = ratings.loc[pos < 0, ITEM].unique()[:5].tolist()
        raise ValueError(f"{(pos < 0).sum()} ratings are on films missing from movies (e.g. {missing}); pass the "
                         "movies table of the same data set")
    return G[pos], names


def genre_distribution(ratings: pd.DataFrame, movies: pd.DataFrame, by: str | None = USER,
                       weights=None) -> pd.DataFrame:
    """Genre distribution of every group of ``ratings`` (``by`` a column name, e.g. userId or a period; None = one
    distribution for all), optionally weighted per rating (e.g. by :func:`rating_decay_weights`).

    Rows sum to 1; groups whose films have no genre at all are left out. Columns: genres sorted by name.
    """
    rows, names = _genre_rows(ratings, movies)
    w = np.ones(len(ratings)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(ratings),) or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("weights must be one finite, non-negative number per rating")
    rows = sp.diags(w) @ rows
    if by is None:
        groups, index = np.zeros(len(ratings), dtype=int), pd.Index(["all"])
    else:
        groups, index = pd.factorize(ratings[by], sort=True)
        index = pd.Index(index, name=by)
    agg = sp.csr_matrix((np.ones(len(ratings)), (groups, np.arange(len(ratings)))),
                        shape=(len(index), len(ratings))) @ rows
    mass = np.asarray(agg.sum(axis=1)).ravel()
    dense = agg.toarray()
    keep = mass > 0
    return pd.DataFrame(dense[keep] / mass[keep, None], index=index[keep], columns=names)


def js_divergence(p, q) -> np.ndarray | float:
    """Jensen–Shannon divergence in bits between distributions along the last axis (0 … 1).

    Inputs need not be normalised: each is divided by its sum first (an all-zero distribution is an error)."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("distributions cannot have negative entries")
    sp_, sq = p.sum(-1, keepdims=True), q.sum(-1, keepdims=True)
    if (sp_ == 0).any() or (sq == 0).any():
        raise ValueError("a distribution with total mass 0 has no divergence; drop it first")
    p, q = p / sp_, q / sq
    m = (p + q) / 2

    def kl(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log2(a / b), 0.0)
        return terms.sum(-1)

    out = np.clip((kl(p, m) + kl(q, m)) / 2, 0.0, 1.0)
    return float(out) if out.ndim == 0 else out


def time_halves(ratings: pd.DataFrame, min_ratings: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(early, late): each user's ratings in time order (ties by movieId) cut in two halves of equal size (the
    late half gets the extra rating of an odd count). Users with fewer than ``min_ratings`` are left out."""
    check_ratings(ratings, require_time=True)
    check_int("time_halves", "min_ratings", min_ratings, low=2)  # two halves
    chron = ratings.sort_values([USER, TIME, ITEM], kind="stable")
    n = chron.groupby(USER)[ITEM].transform("size")
    chron, n = chron[n >= min_ratings], n[n >= min_ratings]
    position = chron.groupby(USER).cumcount()
    early = position < n // 2
    return chron[early].reset_index(drop=True), chron[~early].reset_index(drop=True)


def user_drift(ratings: pd.DataFrame, movies: pd.DataFrame, min_ratings: int = 20) -> pd.Series:
    """JS divergence (bits) between the genre distributions of each user's early and late halves in time."""
    early, late = time_halves(ratings, min_ratings)
    pe, pl = genre_distribution(early, movies), genre_distribution(late, movies)
    users = pe.index.intersection(pl.index)
    return pd.Series(js_divergence(pe.loc[users].to_numpy(), pl.loc[users].to_numpy()), index=users,
                     name="js_early_late")


def shuffled_user_drift(ratings: pd.DataFrame, movies: pd.DataFrame, min_ratings: int = 20,
                        seed: int = 0) -> pd.Series:
    """:func:`user_drift` after shuffling each user's timestamps among their own ratings (seeded): the drift a
    user with *unchanging* taste would show, from the finite size of each half alone — the null."""
    check_ratings(ratings, require_time=True)
    rng = np.random.default_rng(seed)
    shuffled = ratings.sort_values([USER, TIME, ITEM], kind="stable").copy()
    order = np.lexsort((rng.random(len(shuffled)), shuffled[USER].to_numpy()))
    shuffled[TIME] = shuffled[TIME].to_numpy()[order]
    return user_drift(shuffled, movies, min_ratings).rename("js_early_late_shuffled")


def genre_transitions(ratings: pd.DataFrame, movies: pd.DataFrame, smoothing: float = 0.0) -> pd.DataFrame:
    r"""P(i | j): how a user's next rating spreads over genres i given the genres j of their previous one.

    Every pair of consecutive ratings of a user (time order, ties by movieId; never across users) adds the
    outer product of the two films' genre shares to a count matrix C[j, i]; then
    :math:`P(i\mid j) = (C_{ji} + s) / \sum_{i'} (C_{ji'} + s)` with additive ``smoothing`` s. A genre that never
    precedes anything gets the overall genre distribution as its row. Rows sum to 1.
    """
    check_ratings(ratings, require_time=True)
    check_number("genre_transitions", "smoothing", smoothing)
    chron = ratings.sort_values([USER, TIME, ITEM], kind="stable").reset_index(drop=True)
    rows, names = _genre_rows(chron, movies)
    same_user = chron[USER].to_numpy()[1:] == chron[USER].to_numpy()[:-1]
    prev, nxt = rows[:-1][same_user], rows[1:][same_user]
    counts = (prev.T @ nxt).toarray() + smoothing
    overall = np.asarray(rows.sum(axis=0)).ravel()
    overall = overall / overall.sum() if overall.sum() > 0 else np.full(len(names), 1 / max(len(names), 1))
    mass = counts.sum(axis=1, keepdims=True)
    P = np.where(mass > 0, counts / np.where(mass > 0, mass, 1), overall[None, :])
    return pd.DataFrame(P, index=pd.Index(names, name="from"), columns=pd.Index(names, name="to"))


def markov_step(p, P, alpha: float, beta: float | None = None, normalize: bool = False) -> np.ndarray:
    r""":math:`p_{t+1} = \alpha\,p_t + \beta\,p_t P` for one distribution (vector) or many (rows of a matrix).

    ``P`` is row-stochastic (P[j, i] = P(i | j)). ``beta`` defaults to ``1 - alpha``. The result is a distribution
    only if α, β ≥ 0 and α + β = 1; other values raise, unless ``normalize=True`` rescales the result to sum to 1
    (that is the same as using α/(α+β) and β/(α+β)).
    """
    p = np.asarray(p, dtype=float)
    P = np.asarray(P, dtype=float)
    check_number("markov_step", "alpha", alpha)  # a negative weight could make probabilities negative
    beta = 1.0 - alpha if beta is None else beta
    check_number("markov_step", "beta", beta)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] != p.shape[-1]:
        raise ValueError(f"P must be square with the size of p's last axis, got P {P.shape} and p {p.shape}")
    if (P < 0).any() or not np.allclose(P.sum(axis=1), 1.0, atol=1e-8):
        raise ValueError("P must be row-stochastic: non-negative rows P[j, :] = P(· | j) summing to 1")
    if (p < 0).any() or not np.allclose(p.sum(axis=-1), 1.0, atol=1e-8):
        raise ValueError("p must hold distributions (non-negative, summing to 1 along the last axis)")
    if not normalize and not np.isclose(alpha + beta, 1.0):
        raise ValueError(f"alpha + beta = {alpha + beta:g}, so p_(t+1) would sum to {alpha + beta:g}, not 1: choose "
                         "alpha + beta = 1, or pass normalize=True to rescale")
    out = alpha * p + beta * (p @ P)
    if normalize:
        total = alpha + beta
        if total == 0:
            raise ValueError("alpha = beta = 0 leaves nothing to normalise")
        out = out / total
    return out


def mean_js(pred, true) -> float:
    """Mean JS divergence (bits) between predicted and observed distributions, row by row."""
    return float(np.mean(js_divergence(pred, true)))


def decay_weights(timestamps, half_life_days: float, t_ref: float | None = None) -> np.ndarray:
    r""":math:`w = 2^{-(t_\text{ref} - t)/h}` for each timestamp t (seconds), half-life h = ``half_life_days``
    days (> 0; :math:`h` in seconds is ``half_life_days * DAY``).

    ``t_ref`` (seconds) defaults to the latest timestamp. A timestamp after ``t_ref`` would get a weight above
    1 — the future weighing more than the present — so it is an error.
    """
    t = np.asarray(timestamps, dtype=float)
    check_number("decay_weights", "half_life_days", half_life_days, positive=True)
    if t.size == 0:
        return t
    t_ref = float(t.max()) if t_ref is None else float(t_ref)
    if (t > t_ref).any():
        raise ValueError(f"{int((t > t_ref).sum())} timestamps are after t_ref={t_ref:.0f}: they would weigh more "
                         "than 1; pass a t_ref at or after the latest timestamp (e.g. the end of the train period)")
    return np.exp2(-(t_ref - t) / (half_life_days * DAY))


def rating_decay_weights(ratings: pd.DataFrame, half_life_days: float, reference: str = "global",
                         t_ref: float | None = None) -> np.ndarray:
    """One :func:`decay_weights` weight per rating (in the frame's row order), half-life ``half_life_days`` days.

    ``reference="global"``: age measured from ``t_ref`` (default: the latest timestamp in ``ratings``);
    ``reference="user"``: from each user's own latest rating, so every user's newest rating weighs 1.
    """
    check_ratings(ratings, require_time=True)
    check_choice("rating_decay_weights", "reference", reference, ("global", "user"))
    t = ratings[TIME].to_numpy(dtype=float)
    if reference == "global":
        return decay_weights(t, half_life_days, t_ref)
    if t_ref is not None:
        raise ValueError("rating_decay_weights: t_ref applies to reference='global' only")
    check_number("rating_decay_weights", "half_life_days", half_life_days, positive=True)
    last = ratings.groupby(USER)[TIME].transform("max").to_numpy(dtype=float)
    return np.exp2(-(last - t) / (half_life_days * DAY))

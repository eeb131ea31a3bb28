r"""Small exploratory-data-analysis helpers for a ratings frame (notebook 00).

Notation: :math:`R` is the set of observed (user, item, rating) triples, :math:`U` the users and :math:`I`
the items that occur in it. Every function takes a ratings frame with MovieLens' columns
(``userId, movieId, rating[, timestamp]``) and validates it with :func:`recsys_course.data.check_ratings`.

* :func:`density` — :math:`|R| / (|U|\,|I|)`, the share of the user × item matrix that is known.
* :func:`summarize` — sizes, density, sparsity, mean rating and date range in one dict.
* :func:`item_counts` / :func:`user_counts` — ratings per item / per user.
* :func:`long_tail` — items by popularity with the cumulative share of ratings they collect.
* :func:`share_of_top` — the share of all ratings collected by the most popular fraction of items.
* :func:`gini` — the Gini coefficient of a vector of counts (0 = all equal, → 1 = all on one item).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .config import ITEM, RATING, TIME, USER
from .data import check_ratings


def density(ratings: pd.DataFrame) -> float:
    r"""Density of the rating matrix: :math:`\mathrm{density} = |R| / (|U| \cdot |I|)`.

    :math:`|U|` and :math:`|I|` count the distinct users and items *that occur in* ``ratings`` (an item
    listed in a catalogue but never rated does not count). Sparsity is :math:`1 - \mathrm{density}`.
    """
    check_ratings(ratings)
    return len(ratings) / (ratings[USER].nunique() * ratings[ITEM].nunique())


def summarize(ratings: pd.DataFrame) -> dict:
    r"""One-line facts about a ratings frame.

    Returns a dict with ``n_ratings`` :math:`|R|`, ``n_users`` :math:`|U|`, ``n_items`` :math:`|I|` (distinct
    ids in the frame), ``density`` :math:`= |R| / (|U||I|)`, ``sparsity`` :math:`= 1 - \mathrm{density}`,
    ``mean_rating`` :math:`= \frac{1}{|R|}\sum_{(u,i) \in R} r_{ui}`, and ``first_date`` / ``last_date``
    (UTC calendar dates ``"YYYY-MM-DD"`` of the earliest and latest ``timestamp`` in Unix seconds; ``None``
    when the frame has no timestamp column).
    """
    check_ratings(ratings)
    d = density(ratings)
    out = {
        "n_ratings": int(len(ratings)),
        "n_users": int(ratings[USER].nunique()),
        "n_items": int(ratings[ITEM].nunique()),
        "density": float(d),
        "sparsity": float(1.0 - d),
        "mean_rating": float(ratings[RATING].mean()),
        "first_date": None,
        "last_date": None,
    }
    if TIME in ratings.columns:
        when = pd.to_datetime(ratings[TIME], unit="s", utc=True)
        out["first_date"] = when.min().strftime("%Y-%m-%d")
        out["last_date"] = when.max().strftime("%Y-%m-%d")
    return out


def item_counts(ratings: pd.DataFrame) -> pd.Series:
    r"""Number of ratings per item, :math:`n_i = |\{u : (u, i) \in R\}|`, most popular first.

    Ties are broken by item id (ascending), so the order is deterministic.
    """
    check_ratings(ratings)
    counts = ratings.groupby(ITEM).size().rename("n_ratings")
    order = np.lexsort((counts.index.to_numpy(), -counts.to_numpy()))
    return counts.iloc[order]


def user_counts(ratings: pd.DataFrame) -> pd.Series:
    r"""Number of ratings per user, :math:`n_u = |\{i : (u, i) \in R\}|`, indexed by user id (sorted)."""
    check_ratings(ratings)
    return ratings.groupby(USER).size().rename("n_ratings").sort_index()


def long_tail(ratings: pd.DataFrame) -> pd.DataFrame:
    r"""Items sorted by popularity, with the cumulative share of ratings they collect.

    With items ranked :math:`k = 1, \dots, |I|` by their number of ratings :math:`n_{(k)}` (most popular
    first, ties by item id), the columns are ``movieId``, ``n_ratings`` :math:`n_{(k)}`, ``rank`` :math:`k`,
    ``item_share`` :math:`k / |I|` (the fraction of the catalogue up to this item) and ``cum_share``
    :math:`\sum_{j \le k} n_{(j)} / |R|` (the fraction of all ratings those items collect; the last row is 1).
    """
    counts = item_counts(ratings)
    n = counts.to_numpy()
    k = np.arange(1, len(n) + 1)
    return pd.DataFrame({
        ITEM: counts.index.to_numpy(),
        "n_ratings": n,
        "rank": k,
        "item_share": k / len(n),
        "cum_share": np.cumsum(n) / n.sum(),
    })


def share_of_top(ratings: pd.DataFrame, frac: float) -> float:
    r"""Share of all ratings collected by the most popular ``frac`` of the items.

    :math:`\mathrm{share}(f) = \sum_{k \le K} n_{(k)} / |R|` with :math:`K = \lceil f \cdot |I| \rceil` (the
    top :math:`K` items by number of ratings; ``0 < frac <= 1``). E.g. ``share_of_top(r, 0.1)`` is the share
    of ratings that go to the top 10 % of the rated movies.
    """
    if isinstance(frac, bool) or not isinstance(frac, (int, float, np.integer, np.floating)) or \
            not 0 < float(frac) <= 1:
        raise ValueError(f"frac must be a number in (0, 1], got {frac!r}")
    counts = item_counts(ratings).to_numpy()
    # round first so 0.1 * 30 == 3.0000000000000004 still means 3 items, not 4
    top = math.ceil(round(float(frac) * len(counts), 9))
    return float(counts[:top].sum() / counts.sum())


def gini(counts) -> float:
    r"""Gini coefficient of non-negative counts (e.g. ratings per item).

    With the counts sorted ascending, :math:`x_{(1)} \le \dots \le x_{(n)}`,
    :math:`G = \frac{\sum_{k=1}^{n} (2k - n - 1)\, x_{(k)}}{n \sum_k x_{(k)}}`.
    :math:`G = 0` when all counts are equal and :math:`G = (n-1)/n` when one item has everything.
    """
    x = np.sort(np.asarray(counts, dtype=float).ravel())
    if x.size == 0:
        raise ValueError("gini() needs at least one count")
    if not np.all(np.isfinite(x)) or x[0] < 0:
        raise ValueError("gini() needs finite, non-negative counts")
    total = x.sum()
    if total == 0:
        raise ValueError("gini() is undefined when all counts are zero")
    n = x.size
    k = np.arange(1, n + 1)
    return float(np.sum((2 * k - n - 1) * x) / (n * total))

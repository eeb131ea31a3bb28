r"""Sampled metrics: rank each held-out item among a few random items instead of the whole catalogue.

Many papers (NCF, SASRec and others) score a test item :math:`i` of user :math:`u` against :math:`N` (often 100)
items drawn at random from those :math:`u` never interacted with, and report HR@k and NDCG@k of that short list:

.. math:: \mathrm{rank}_N(u, i) = 1 + \sum_{j \in \mathcal N_u} \mathbb 1[s_{uj} > s_{ui}], \qquad
          \mathrm{HR@k} = \frac{1}{|T|}\sum_{(u,i) \in T} \mathbb 1[\mathrm{rank}_N \le k], \qquad
          \mathrm{NDCG@k} = \frac{1}{|T|}\sum_{(u,i) \in T} \frac{\mathbb 1[\mathrm{rank}_N \le k]}{\log_2(1 + \mathrm{rank}_N)},

with one list per test row (the target plus its user's :math:`N` negatives :math:`\mathcal N_u`, so the ideal DCG
is 1). The full-catalogue rank of the same item, :func:`full_ranks`, counts every item the user has not
rated in train. An item at full rank :math:`r` among :math:`M` candidates lands in the sampled top k with
probability :math:`P[X \le k-1]`, :math:`X \sim \mathrm{Hypergeometric}(M-1, r-1, N)`: for :math:`N = 100` and
:math:`M \approx 9\,700`, an item at full rank 500 — useless on a screen of 10 — is usually a sampled "hit".
Krichene & Rendle (2020) show that sampled metrics are inflated and can even *reorder* models.

Conventions (the same as :meth:`recsys_course.models.Recommender.recommend` and
:func:`recsys_course.evaluate.evaluate`): candidates are the training catalogue; scores come from the model's
``score``; ties are broken by catalogue position (the lower movieId ranks first), so a model
that scores every item the same gets no credit it would not get on the full list. A target the model cannot
score (not in the training catalogue, or a score of ``-inf``) is a miss (rank ``inf``). The negatives of a user
exclude **all** items of that user in ``train`` and in ``test``, are drawn uniformly without replacement with a
seeded ``numpy.random.Generator``, do not depend on the model (every model is ranked against the same
negatives), and are nested: with the same seed, the first 100 of 500 negatives are the 100 negatives.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .checks import check_int
from .config import ITEM, RATING, USER
from .data import DataError, check_ratings
from .evaluate import check_fitted_on
from .metrics import mask_seen

__all__ = ["sample_negatives", "user_scores", "sampled_ranks", "full_ranks", "metrics_from_ranks",
           "evaluate_sampled"]

_CHUNK = 1024


def _relevant(test: pd.DataFrame, relevance_threshold) -> pd.DataFrame:
    rel = test if relevance_threshold is None else test[test[RATING] >= relevance_threshold]
    if rel.empty:
        raise DataError(f"no test rating is >= {relevance_threshold}, so there is nothing to rank")
    return rel


def sample_negatives(train: pd.DataFrame, test: pd.DataFrame, n_negatives: int = 100, seed: int = 0):
    """Draw ``n_negatives`` items per test user from the training catalogue, none of them rated by that user
    in ``train`` or ``test``. Returns ``(users, negatives)``: the sorted test users and a
    ``(len(users), n_negatives)`` array of movieIds. Seeded and nested in ``n_negatives`` (see module doc)."""
    check_ratings(train, name="train")
    check_ratings(test, name="test")
    n_negatives = int(check_int(None, "n_negatives", n_negatives))
    seed = int(check_int(None, "seed", seed, low=0))
    catalogue = np.sort(train[ITEM].unique())
    users = np.sort(test[USER].unique())
    both = pd.concat([train[[USER, ITEM]], test[[USER, ITEM]]])
    both = both[both[USER].isin(users)]
    row = np.searchsorted(users, both[USER].to_numpy())
    col = np.searchsorted(catalogue, both[ITEM].to_numpy())
    inside = (col < len(catalogue)) & (catalogue[np.minimum(col, len(catalogue) - 1)] == both[ITEM].to_numpy())
    row, col = row[inside], col[inside]
    # interacted items are counted once even if they appear in both frames
    n_free = len(catalogue) - np.bincount(np.unique(row.astype(np.int64) * len(catalogue) + col) // len(catalogue),
                                          minlength=len(users))
    if (n_free < n_negatives).any():
        u = users[np.argmin(n_free)]
        raise ValueError(f"user {u} has only {n_free.min()} catalogue items they never interacted with, fewer than "
                         f"n_negatives={n_negatives}; use fewer negatives")
    rng = np.random.default_rng(seed)
    out = np.empty((len(users), n_negatives), dtype=catalogue.dtype)
    order = np.argsort(row, kind="stable")
    row, col = row[order], col[order]
    for start in range(0, len(users), _CHUNK):
        stop = min(start + _CHUNK, len(users))
        keys = rng.random((stop - start, len(catalogue)))
        lo, hi = np.searchsorted(row, [start, stop])
        keys[row[lo:hi] - start, col[lo:hi]] = np.inf   # the user's own items are never drawn
        if n_negatives < len(catalogue):
            part = np.argpartition(keys, n_negatives - 1, axis=1)[:, :n_negatives]
            pick = np.take_along_axis(part, np.argsort(np.take_along_axis(keys, part, 1), axis=1, kind="stable"), 1)
        else:
            pick = np.argsort(keys, axis=1, kind="stable")
        out[start:stop] = catalogue[pick]
    return users, out


def user_scores(model, users) -> np.ndarray:
    """The model's dense scores ``(len(users), n_items)`` over its training catalogue (``model.item_ids_``) — the
    same numbers ``recommend`` ranks, before seen items are excluded (:meth:`Recommender.score`)."""
    return model.score(np.asarray(users))


def _target_columns(model, rel: pd.DataFrame, users: np.ndarray):
    row = np.searchsorted(users, rel[USER].to_numpy())
    col = model.item_positions(rel[ITEM].to_numpy())
    return row, col


def _prepare(model, train, test, relevance_threshold, scores):
    check_fitted_on(model, train, test, "a sampled evaluation")
    rel = _relevant(test, relevance_threshold)
    users = np.sort(test[USER].unique())
    if scores is None:
        scores = user_scores(model, users)
    elif scores.shape != (len(users), model.n_items):
        raise ValueError(f"scores must have shape (test users, n_items) = {(len(users), model.n_items)}, "
                         f"got {scores.shape}; build it with user_scores(model, sorted test users)")
    row, col = _target_columns(model, rel, users)
    target = np.where(col >= 0, scores[row, np.maximum(col, 0)], -np.inf)
    return rel, users, scores, row, col, target


def sampled_ranks(model, train: pd.DataFrame, test: pd.DataFrame, n_negatives: int = 100, seed: int = 0,
                  relevance_threshold: float | None = None, scores: np.ndarray | None = None,
                  negatives: np.ndarray | None = None) -> np.ndarray:
    r"""Rank (1 = best, ``inf`` = miss) of every relevant test row among itself and its user's ``n_negatives``
    negatives, in the order of the relevant rows of ``test``. ``relevance_threshold=None`` ranks every test row
    (implicit feedback). To compare many models or many ``n_negatives`` cheaply, pass ``scores`` (from
    :func:`user_scores` of the sorted test users) and ``negatives`` (from :func:`sample_negatives` with at least
    ``n_negatives``; its first ``n_negatives`` columns are used — the same draw, since draws are nested)."""
    rel, users, scores, row, col, target = _prepare(model, train, test, relevance_threshold, scores)
    n_negatives = int(check_int(None, "n_negatives", n_negatives))
    if negatives is None:
        negatives = sample_negatives(train, test, n_negatives, seed)[1]
    elif negatives.shape[0] != len(users) or negatives.shape[1] < n_negatives:
        raise ValueError(f"negatives must have one row per test user ({len(users)}) and at least n_negatives="
                         f"{n_negatives} columns, got shape {negatives.shape}")
    negatives = negatives[:, :n_negatives]
    neg_col = model.item_positions(negatives.ravel()).reshape(negatives.shape)
    neg_scores = np.take_along_axis(scores, neg_col, 1)[row]            # (rows, n_negatives)
    t = target[:, None]
    above = (neg_scores > t) | ((neg_scores == t) & (neg_col[row] < col[:, None]))
    ranks = 1.0 + above.sum(1)
    ranks[~np.isfinite(target)] = np.inf
    return ranks


def full_ranks(model, train: pd.DataFrame, test: pd.DataFrame, relevance_threshold: float | None = None,
               scores: np.ndarray | None = None) -> np.ndarray:
    r"""Rank of every relevant test row among **all** catalogue items its user has not rated in train (the
    candidates of :func:`recsys_course.evaluate.evaluate`), ties broken by catalogue position; ``inf`` = miss.
    With one test item per user, ``mean(rank <= k)`` is ``evaluate``'s ``hit@k``."""
    rel, users, scores, row, col, target = _prepare(model, train, test, relevance_threshold, scores)
    seen = model.seen_[model.user_positions(users)].tocsr()
    ranks = np.empty(len(rel))
    idx = np.arange(model.n_items)
    for start in range(0, len(rel), _CHUNK):
        r = row[start:start + _CHUNK]
        s = scores[r].copy()
        mask_seen(s, seen[r])
        t = target[start:start + _CHUNK, None]
        c = col[start:start + _CHUNK, None]
        above = (s > t) | ((s == t) & (idx[None, :] < c))
        ranks[start:start + _CHUNK] = 1.0 + above.sum(1)
    ranks[~np.isfinite(target)] = np.inf
    return ranks


def metrics_from_ranks(ranks, k: int = 10) -> dict:
    r"""``hit@k`` = mean of :math:`\mathbb 1[\mathrm{rank} \le k]` and ``ndcg@k`` = mean of
    :math:`\mathbb 1[\mathrm{rank} \le k] / \log_2(1 + \mathrm{rank})` (one relevant item per list)."""
    k = int(check_int(None, "k", k))
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("no ranks to score")
    hit = ranks <= k
    gain = np.where(hit, 1.0 / np.log2(1.0 + np.where(hit, ranks, 1.0)), 0.0)
    return {f"hit@{k}": float(hit.mean()), f"ndcg@{k}": float(gain.mean())}


def evaluate_sampled(model, train: pd.DataFrame, test: pd.DataFrame, k: int = 10, n_negatives: int = 100,
                     seed: int = 0, relevance_threshold: float | None = None, name: str | None = None,
                     scores: np.ndarray | None = None, negatives: np.ndarray | None = None) -> pd.Series:
    """Sampled ``hit@k`` and ``ndcg@k`` of a fitted model (see the module docstring), as a Series named after
    the model — the sampled counterpart of :func:`recsys_course.evaluate.evaluate`."""
    ranks = sampled_ranks(model, train, test, n_negatives, seed, relevance_threshold, scores, negatives)
    return pd.Series(metrics_from_ranks(ranks, k), name=name or type(model).__name__, dtype=float)

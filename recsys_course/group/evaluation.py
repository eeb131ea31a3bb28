r"""Measuring a group list: per member, then per group (quality and fairness), then over groups.

* :func:`evaluate_groups` — each member's NDCG@k and hit@k of the *group's* list against that member's own
  held-out relevant films (the formulas of :mod:`recsys_course.metrics`).
* :func:`true_satisfaction` — in the synthetic world, each member's normalised true utility of the list.
* :func:`group_summary` — per group: the members' mean, minimum (fairness: the worst-off member), maximum and
  spread, and the share of members with nothing relevant in the list.
* :func:`summarise` — the means over groups: the numbers a notebook records.

Member frames have columns ``groupId, userId`` and one value column per measure (``ndcg`` and ``hit``, or
``sat``); a group summary names its columns after the measure (``mean_ndcg``, ``min_ndcg``, ... or
``mean_sat``, ...), so :func:`summarise` reads either.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import GROUP, ITEM, RANK, RATING, RELEVANCE_THRESHOLD, USER
from ..metrics import hit_matrix, hit_rate_from_hits, ndcg_from_hits
from .groups import SIMILARITY, as_groups, group_members, id_rows

__all__ = ["evaluate_groups", "true_satisfaction", "group_summary", "summarise"]


def _group_lists(recs: pd.DataFrame) -> dict:
    """groupId -> the list's movieIds, best first (``recs`` of ``GroupRecommender.recommend``)."""
    missing = [c for c in (GROUP, ITEM, RANK) if c not in recs.columns]
    if missing:
        raise ValueError(f"recs has no column(s) {missing}; pass GroupRecommender.recommend's output "
                         f"({GROUP}, {ITEM}, score, {RANK})")
    ordered = recs.sort_values([GROUP, RANK], kind="stable")
    return {gid: part[ITEM].to_list() for gid, part in ordered.groupby(GROUP, sort=False)}


def evaluate_groups(recs: pd.DataFrame, groups, test: pd.DataFrame, *, k: int = 10,
                    relevance_threshold: float | None = RELEVANCE_THRESHOLD) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Score each group's list for each of its members, then summarise per group.

    Member :math:`m` of group :math:`g` is scored against :math:`\mathrm{Rel}(m)`, their test films rated at
    least ``relevance_threshold`` (``None``: every test film), with the group's list :math:`L_g`:

    .. math:: \mathrm{NDCG@k}(m) = \frac{\sum_{j=1}^{k} \mathbb 1[L_{g,j} \in \mathrm{Rel}(m)] / \log_2(j+1)}
              {\sum_{j=1}^{\min(k, |\mathrm{Rel}(m)|)} 1 / \log_2(j+1)}, \qquad
              \mathrm{hit@k}(m) = \mathbb 1[L_{g,1..k} \cap \mathrm{Rel}(m) \ne \emptyset]

    (:func:`recsys_course.metrics.ndcg_from_hits`, :func:`~recsys_course.metrics.hit_rate_from_hits`). Members
    without a relevant test film have no defined NDCG and are left out; a group with no such member is left out
    of the summary. A group absent from ``recs`` (nothing could be recommended) scores 0 for its members.

    Parameters
    ----------
    recs : DataFrame ``groupId, movieId, score, rank`` (``GroupRecommender.recommend``)
    groups : DataFrame ``groupId, userId`` or mapping (:func:`~recsys_course.group.as_groups`)
    test : DataFrame ``userId, movieId, rating``
    k : int
    relevance_threshold : float or None

    Returns
    -------
    (members, summary): members has one row per evaluated member, ``groupId, userId, ndcg, hit``; summary is
    :func:`group_summary` of it (one row per group).

    Raises
    ------
    ValueError
        Missing columns in ``recs`` or ``test``; bad groups; ``k`` not a positive integer.
    """
    frame = as_groups(groups)
    lists = _group_lists(recs)
    missing = [c for c in (USER, ITEM, RATING) if c not in test.columns]
    if missing:
        raise ValueError(f"test has no column(s) {missing}; pass the test ratings ({USER}, {ITEM}, {RATING})")
    rel = test if relevance_threshold is None else test[test[RATING] >= relevance_threshold]
    relevant = {u: set(part) for u, part in rel.groupby(USER)[ITEM]}
    rows = [(gid, u) for gid, u in zip(frame[GROUP], frame[USER]) if u in relevant]
    if not rows:
        members = pd.DataFrame({GROUP: frame[GROUP].iloc[:0], USER: frame[USER].iloc[:0], "ndcg": np.zeros(0),
                                "hit": np.zeros(0)})
        return members, group_summary(members, frame)
    hits, n_rel = hit_matrix([lists.get(gid, []) for gid, _ in rows], [relevant[u] for _, u in rows], k)
    members = pd.DataFrame({GROUP: [gid for gid, _ in rows], USER: [u for _, u in rows],
                            "ndcg": _per_row(ndcg_from_hits, hits, n_rel),
                            "hit": _per_row(hit_rate_from_hits, hits, n_rel)})
    return members, group_summary(members, frame)


def _per_row(metric, hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """A ``*_from_hits`` formula of :mod:`recsys_course.metrics` for each row alone (it returns the mean)."""
    return np.array([metric(hits[r:r + 1], n_rel[r:r + 1]) for r in range(len(hits))])


def group_summary(members: pd.DataFrame, groups=None, metric: str | None = None) -> pd.DataFrame:
    r"""One row per group of a member frame: the members' ``mean_<metric>``, ``min_<metric>`` (the worst-off
    member: fairness), ``max_<metric>``, ``spread`` (max − min), ``n_evaluated`` (members scored) and, with a
    ``hit`` column, ``nothing_relevant`` (the share of those members with no relevant film in the list).

    Parameters
    ----------
    members : DataFrame ``groupId, userId, <metric>, ...`` (:func:`evaluate_groups`, :func:`true_satisfaction`)
    groups : the group list, optional
        Adds ``size`` (the group's number of members, evaluated or not) and ``similarity`` if it has that column.
    metric : str, optional
        The value column; default ``ndcg`` if present, else ``sat``.

    Raises
    ------
    ValueError
        ``metric`` is not a column of ``members``.
    """
    metric = metric or ("ndcg" if "ndcg" in members.columns else "sat")
    if metric not in members.columns:
        raise ValueError(f"members has no column {metric!r} (it has {list(members.columns)}); pass metric=")
    by = members.groupby(GROUP, sort=False)
    values = by[metric]
    out = pd.DataFrame({f"mean_{metric}": values.mean(), f"min_{metric}": values.min(),
                        f"max_{metric}": values.max()})
    out["spread"] = out[f"max_{metric}"] - out[f"min_{metric}"]
    if "hit" in members.columns:
        out["nothing_relevant"] = 1.0 - by["hit"].mean()
    out["n_evaluated"] = by.size()
    if groups is not None:
        frame = as_groups(groups)
        per_group = frame.groupby(GROUP, sort=False)
        out["size"] = per_group.size().reindex(out.index)
        if SIMILARITY in frame.columns:
            out[SIMILARITY] = per_group[SIMILARITY].first().reindex(out.index)
    out.index.name = GROUP
    return out.reset_index()


def summarise(summary: pd.DataFrame) -> pd.Series:
    """The means over groups of a :func:`group_summary`: ``mean_<metric>`` (quality), ``min_<metric>`` (the
    worst-off member, fairness), ``spread`` and, when present, ``nothing_relevant``.

    Raises ValueError if ``summary`` has none of those columns.
    """
    columns = [c for c in summary.columns if c.startswith(("mean_", "min_"))]
    columns += [c for c in ("spread", "nothing_relevant") if c in summary.columns]
    if not columns:
        raise ValueError(f"summary has none of the columns mean_*, min_*, spread, nothing_relevant (it has "
                         f"{list(summary.columns)}); pass the output of group_summary or evaluate_groups")
    return summary[columns].mean()


def true_satisfaction(recs: pd.DataFrame, groups, true_scores, *, user_ids=None, item_ids=None,
                      exclude=None) -> pd.DataFrame:
    r"""The synthetic world's exact measure: each member's true utility of the group's list, normalised.

    With :math:`t_{mi}` member :math:`m`'s true score of film :math:`i`, :math:`C_m` the member's candidate films
    (those not excluded), :math:`L_g` the group's list of :math:`k` films and :math:`\mathrm{top}_k(m)` the
    member's own best :math:`k` candidates:

    .. math:: \mathrm{sat}(m) = \frac{\overline{t}_{m, L_g} - \overline{t}_{m, C_m}}
              {\overline{t}_{m, \mathrm{top}_k(m)} - \overline{t}_{m, C_m}}

    (bars: means over those films): 1 = as good as the member's personal top k, 0 = as good as a random list,
    below 0 = worse. A member whose candidates all score alike has no defined value (NaN); members of a group
    with no list are left out.

    Parameters
    ----------
    recs : DataFrame ``groupId, movieId, score, rank``
    groups : the group list (:func:`~recsys_course.group.as_groups`)
    true_scores : array (n_users, n_items)
        E.g. ``SyntheticData.true_scores()``.
    user_ids, item_ids : array-like, optional
        The userId of each row and the movieId of each column; default ``1 .. n`` (the synthetic world's ids:
        row ``u`` is userId ``u + 1``, column ``i`` movieId ``i + 1``).
    exclude : bool array (n_users, n_items), optional
        Films that are not candidates for a member (e.g. those they rated in train); None = every film.

    Returns
    -------
    DataFrame ``groupId, userId, sat``, one row per member (:func:`group_summary` and :func:`summarise` read it).

    Raises
    ------
    ValueError
        Shapes that do not match; a member or a listed film without a row / column.
    """
    scores = np.asarray(true_scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"true_scores must be a 2-D (users, items) array, got shape {scores.shape}")
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        if exclude.shape != scores.shape:
            raise ValueError(f"exclude must have the shape of true_scores {scores.shape}, got {exclude.shape}")
    lists = _group_lists(recs)
    gids, members = group_members(as_groups(groups))
    out = []
    for gid, ids in zip(gids, members):
        if gid not in lists or not lists[gid]:
            continue
        listed = id_rows(lists[gid], item_ids, scores.shape[1], "movieId", "columns of true_scores")
        k = len(listed)
        for u, row in zip(ids, id_rows(ids, user_ids, scores.shape[0], "userId", "rows of true_scores")):
            cand = scores[row] if exclude is None else scores[row, ~exclude[row]]
            kk = min(k, len(cand))
            base = cand.mean() if len(cand) else np.nan
            gap = np.partition(cand, len(cand) - kk)[len(cand) - kk:].mean() - base if kk else np.nan
            out.append((gid, u, (scores[row, listed].mean() - base) / gap if gap > 0 else np.nan))
    return pd.DataFrame(out, columns=[GROUP, USER, "sat"])

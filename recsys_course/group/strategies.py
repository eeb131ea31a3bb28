r"""Score aggregation: one group score per film from the members' scores, and the fair list builder.

Every strategy takes ``scores``, a ``(members, items)`` array (higher = better, e.g. a model's ``score`` rows
of the members) and returns one group score per item, higher = better. ``-inf`` marks an item that must not be
chosen (a film a member has seen, one the model cannot score): the item is not a candidate, every strategy
leaves it at ``-inf``, and the per-member computations that depend on the candidate set (Borda points, the
min-max normalisation of :func:`fair_list`) run over the candidates only. ``+inf`` and NaN are refused.

With :math:`s_{mi}` the score of member :math:`m` (of :math:`M`) for item :math:`i`:

* average :math:`\frac1M \sum_m s_{mi}`; least misery :math:`\min_m s_{mi}`; most pleasure :math:`\max_m s_{mi}`;
* average without misery: the average, but :math:`-\infty` where some :math:`s_{mi} < \tau`;
* Borda count :math:`\sum_m \mathrm{pts}_m(i)`, a member's worst candidate scoring 0 points and their best
  :math:`n - 1`; approval voting :math:`|\{m : s_{mi} \ge \tau\}|`; multiplicative :math:`\prod_m s_{mi}`.

These are the strategies Masthoff studied with people choosing for a group (Masthoff 2004, "Group modeling:
selecting a sequence of television items to suit a group of viewers", UMUAI 14; Masthoff 2011, "Group
recommender systems: combining individual models", Recommender Systems Handbook). Borda and approval tie often;
:func:`recsys_course.metrics.top_k` breaks ties by catalogue position (ascending movieId), as everywhere in the
course.
"""
from __future__ import annotations

import numpy as np

from ..checks import check_choice, check_int, check_number, is_number

__all__ = ["STRATEGIES", "THRESHOLD_STRATEGIES", "average", "least_misery", "most_pleasure",
           "average_without_misery", "borda", "approval", "multiplicative", "aggregate", "check_strategy_params",
           "fair_list", "rank_normalise"]

STRATEGIES = ("average", "least_misery", "most_pleasure", "average_without_misery", "borda", "approval",
              "multiplicative")
#: the strategies that need a ``threshold``
THRESHOLD_STRATEGIES = ("average_without_misery", "approval")


def _as_scores(scores) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` as a float64 (members, items) array, checked, and the candidate mask (no member at -inf)."""
    arr = np.ascontiguousarray(scores, dtype=np.float64)  # reductions over members are slow on column-major input
    if arr.ndim != 2:
        raise ValueError(f"scores must be a 2-D (members, items) array, got shape {arr.shape}; for one member "
                         "pass scores[None, :]")
    if arr.size == 0:
        raise ValueError(f"scores is empty (shape {arr.shape}): a group needs at least one member and one item")
    if np.isnan(arr).any():
        raise ValueError("scores contain NaN: a model or the data produced a missing value; fill or drop it (use "
                         "-inf to rule an item out)")
    if np.isposinf(arr).any():
        raise ValueError("scores contain +inf; only -inf (an item that must not be chosen) is allowed")
    return arr, np.isfinite(arr).all(0)


def _finish(out: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    out = np.asarray(out, dtype=np.float64)
    out[~candidate] = -np.inf
    return out


def _check_threshold(threshold, strategy: str):
    if not is_number(threshold):
        raise ValueError(f"{strategy}: threshold must be a finite number (a score on the scale of the members' "
                         f"scores, e.g. 3.5 stars), got {threshold!r}")
    return float(threshold)


def average(scores) -> np.ndarray:
    r"""Average: :math:`G_i = \frac{1}{M}\sum_{m=1}^{M} s_{mi}` — the group's total happiness.

    Parameters: ``scores`` (members, items), higher = better, ``-inf`` = not a candidate. Returns (items,) float64.
    Raises ValueError for input that is not a non-empty 2-D array without NaN / +inf (as every strategy).
    """
    arr, ok = _as_scores(scores)
    return _finish(arr.mean(0), ok)


def least_misery(scores) -> np.ndarray:
    r"""Least misery: :math:`G_i = \min_m s_{mi}` — a group is as happy as its least happy member.

    Parameters and errors as :func:`average`.
    """
    arr, ok = _as_scores(scores)
    return _finish(arr.min(0), ok)


def most_pleasure(scores) -> np.ndarray:
    r"""Most pleasure: :math:`G_i = \max_m s_{mi}` — the item someone loves most.

    Parameters and errors as :func:`average`.
    """
    arr, ok = _as_scores(scores)
    return _finish(arr.max(0), ok)


def average_without_misery(scores, threshold) -> np.ndarray:
    r"""Average without misery: :math:`G_i = \frac1M \sum_m s_{mi}` if :math:`\min_m s_{mi} \ge \tau`, else
    :math:`-\infty` (no member may score the item below the threshold :math:`\tau`).

    If every item has a miserable member, nothing can be recommended (all ``-inf``): lower the threshold.
    Raises ValueError for a threshold that is not a finite number (and as :func:`average`).
    """
    threshold = _check_threshold(threshold, "average_without_misery")
    arr, ok = _as_scores(scores)
    return _finish(np.where(arr.min(0) >= threshold, arr.mean(0), -np.inf), ok)


def _points(arr: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Each member's Borda points over the candidates ``ok`` (members, candidates): rank - 1, ties share the mean."""
    out = np.empty((len(arr), int(ok.sum())))
    for m, row in enumerate(np.ascontiguousarray(arr[:, ok])):
        order = np.argsort(row)
        ordered = row[order]
        out[m, order] = (np.searchsorted(ordered, ordered, "left") + np.searchsorted(ordered, ordered, "right") - 1) / 2
    return out


def rank_normalise(scores) -> np.ndarray:
    r"""Each member's scores replaced by their percentile among the candidates: :math:`\tilde s_{mi} =
    (\mathrm{pts}_m(i) + 1) / n`, in :math:`(0, 1]` — 1 for the member's best candidate, :math:`1/n` for the worst,
    tied items sharing the mean (the Borda points of :func:`borda`, rescaled). ``-inf`` stays ``-inf``.

    Members' raw scores live on their own scales (a model's scores for a user with a long history are larger), so a
    threshold, a product or a minimum across members compares unlike things; percentiles put every member on the
    same scale. The average of the percentiles ranks the items exactly as :func:`borda` does. Errors as
    :func:`average`.
    """
    arr, ok = _as_scores(scores)
    out = np.full(arr.shape, -np.inf)
    if ok.any():
        out[:, ok] = (_points(arr, ok) + 1) / ok.sum()
    return out


def borda(scores) -> np.ndarray:
    r"""Borda count: :math:`G_i = \sum_m \mathrm{pts}_m(i)` with :math:`\mathrm{pts}_m(i) = \mathrm{rank}_m(i) - 1`,
    the rank of item :math:`i` among the :math:`n` candidates in member :math:`m`'s ascending order — a member's
    worst candidate gets 0 points, their best :math:`n - 1`; tied items share the mean of their points
    (``scipy.stats.rankdata(method="average") - 1``, computed as the mean of the first and last place of the
    score in the member's sorted scores: an unstable sort, several times faster than rankdata's stable one).

    Only the order of a member's scores counts, not their size. Sums of points tie often; the group list breaks
    ties by catalogue position. Parameters and errors as :func:`average`.
    """
    arr, ok = _as_scores(scores)
    out = np.zeros(arr.shape[1])
    out[ok] = _points(arr, ok).sum(0)
    return _finish(out, ok)


def approval(scores, threshold) -> np.ndarray:
    r"""Approval voting: :math:`G_i = |\{m : s_{mi} \ge \tau\}|`, the number of members who approve of the item.

    Counts tie often; the group list breaks ties by catalogue position. Errors as
    :func:`average_without_misery`.
    """
    threshold = _check_threshold(threshold, "approval")
    arr, ok = _as_scores(scores)
    return _finish((arr >= threshold).sum(0), ok)


def multiplicative(scores) -> np.ndarray:
    r"""Multiplicative: :math:`G_i = \prod_m s_{mi}` — like the average of the logs, it punishes one low score
    more than the average does.

    Needs positive scores (a product of two negative scores is positive, so the order would mean nothing).

    Raises
    ------
    ValueError
        If a candidate's score is 0 or negative: use a rating model (its predicted ratings are positive), or
        shift the scores yourself, knowingly (``scores - scores.min() + 1`` changes the ranking). The function
        never shifts them silently. Other errors as :func:`average`.
    """
    arr, ok = _as_scores(scores)
    cand = arr[:, ok]
    if cand.size and cand.min() <= 0:
        raise ValueError(f"multiplicative needs positive scores, but the lowest is {cand.min():.4g}: use the "
                         "predicted ratings of a rating model (BiasedMF, ALS), or shift the scores yourself "
                         "(e.g. scores - scores.min() + 1), knowing that the shift changes the ranking")
    out = np.zeros(arr.shape[1])
    out[ok] = cand.prod(0)
    return _finish(out, ok)


_FUNCTIONS = {"average": average, "least_misery": least_misery, "most_pleasure": most_pleasure,
              "average_without_misery": average_without_misery, "borda": borda, "approval": approval,
              "multiplicative": multiplicative}


def check_strategy_params(strategy: str, params: dict, scale=None) -> dict:
    """Check a strategy name and its keyword parameters; return the parameters the strategy function takes.

    ``threshold`` is required by ``average_without_misery`` and ``approval`` and refused by the others;
    ``scale=(low, high)`` (also accepted inside ``params``) is the range of the scores, and a threshold outside it
    is refused. Raises ValueError (unknown strategy: the message lists :data:`STRATEGIES`; a threshold that is not
    a number or is outside the scale) or TypeError (a missing, superfluous or unknown keyword).
    """
    check_choice("aggregate", "strategy", strategy, STRATEGIES)
    params = dict(params)
    scale = params.pop("scale", scale)
    unknown = sorted(set(params) - {"threshold"})
    if unknown:
        raise TypeError(f"aggregate: unknown parameter(s) {unknown} for strategy {strategy!r}; the strategies take "
                        f"only threshold= ({' and '.join(THRESHOLD_STRATEGIES)}) and scale=(low, high)")
    if strategy not in THRESHOLD_STRATEGIES:
        if "threshold" in params:
            raise TypeError(f"strategy {strategy!r} takes no threshold (only {list(THRESHOLD_STRATEGIES)} do); "
                            "drop threshold=")
        return {}
    if "threshold" not in params:
        raise TypeError(f"strategy {strategy!r} needs a threshold: pass threshold=<a score>, e.g. threshold=3.5 "
                        "for predicted ratings")
    threshold = _check_threshold(params["threshold"], strategy)
    if scale is not None:
        if np.ndim(scale) != 1 or len(scale) != 2 or not all(is_number(v) for v in scale) or scale[0] > scale[1]:
            raise ValueError(f"scale must be (low, high), two numbers with low <= high, got {scale!r}")
        low, high = float(scale[0]), float(scale[1])
        if not low <= threshold <= high:
            raise ValueError(f"threshold {threshold:g} is outside the rating scale {low:g}–{high:g} of the "
                             f"scores, so {strategy} would treat every item alike; pick a threshold inside it")
    return {"threshold": threshold}


def aggregate(scores, strategy: str = "average", **params) -> np.ndarray:
    r"""The one entry point: the group score of every item under ``strategy`` (one of :data:`STRATEGIES`).

    Parameters
    ----------
    scores : array (members, items)
        The members' scores, higher = better; ``-inf`` = an item that must not be chosen (stays ``-inf``).
    strategy : str
        ``"average"``, ``"least_misery"``, ``"most_pleasure"``, ``"average_without_misery"``, ``"borda"``,
        ``"approval"`` or ``"multiplicative"`` (formulas in the module docstring and each function).
    threshold : float
        Required by ``average_without_misery`` and ``approval``, refused by the others.
    scale : (low, high), optional
        The scale of the scores (e.g. a model's ``rating_range_``): a threshold outside it raises.

    Returns
    -------
    ndarray (items,) of float64, higher = better. Ties (frequent with Borda and approval) are left as they are:
    :func:`recsys_course.metrics.top_k` breaks them by position (ascending movieId).

    Raises
    ------
    ValueError
        Unknown strategy (the message lists the valid ones); a threshold that is not a number or is outside
        ``scale``; scores that are not a non-empty 2-D array, or contain NaN or +inf; non-positive scores for
        ``multiplicative``.
    TypeError
        A missing, superfluous or unknown keyword parameter.
    """
    kwargs = check_strategy_params(strategy, params)
    return _FUNCTIONS[strategy](scores, **kwargs)


# --------------------------------------------------------------------------------------------
# a fair list
# --------------------------------------------------------------------------------------------
def fair_list(scores, k: int = 10, *, balance: float = 0.0, return_objective: bool = False):
    r"""A list built for fairness over the whole list, not one pick at a time: greedy sequential fairness.

    Each member's scores are first min-max normalised to :math:`\hat s_{mi} \in [0, 1]` over the candidates
    (the items that are not ``-inf``; a member who scores every candidate alike gets 1 everywhere). Member
    :math:`m`'s satisfaction with a set :math:`S` is the share of the best they could have had with as many items,

    .. math:: \mathrm{sat}_m(S) = \frac{\sum_{i \in S} \hat s_{mi}}{\sum_{i \in \mathrm{top}_{|S|}(m)} \hat s_{mi}},

    and each step adds the candidate :math:`i` that maximises

    .. math:: (1 - \beta)\, \min_m \mathrm{sat}_m(S \cup \{i\}) + \beta\, \frac1M \sum_m \mathrm{sat}_m(S \cup \{i\}),

    :math:`\beta` = ``balance`` (0: the worst-off member first, 1: the members' mean satisfaction); ties go to
    the lower position. With one member the list is that member's own top k. With ``balance=1`` it is *not* the
    ``average`` strategy's list: each member's normalised scores are weighted by :math:`1 / \sum_{\mathrm{top}_{|S|}}`,
    so a member with few good candidates counts more. The idea: Lin, Zhang, Zhang, Gu, Liu & Ma (2017),
    "Fairness-aware group recommendation with Pareto efficiency", RecSys; Serbos, Qi, Mamoulis, Pitoura & Tsaparas
    (2017), "Fairness in package-to-group recommendations", WWW. Cost :math:`O(k \cdot M \cdot n)`.

    Parameters
    ----------
    scores : array (members, items)
        Higher = better; ``-inf`` = not a candidate.
    k : int
        Length of the list (shorter if there are fewer candidates).
    balance : float in [0, 1]
    return_objective : bool
        Also return the objective's value after each step (what ``GroupRecommender(..., "fair")`` reports as score).

    Returns
    -------
    ndarray of item positions, best first (and the objective per step with ``return_objective``).

    Raises
    ------
    ValueError
        ``k`` not a positive integer, ``balance`` outside [0, 1], bad ``scores`` (as :func:`average`).
    """
    check_int("fair_list", "k", k)
    check_number("fair_list", "balance", balance)
    if balance > 1:
        raise ValueError(f"fair_list: balance must be between 0 (the worst-off member) and 1 (the mean), got "
                         f"{balance!r}")
    arr, ok = _as_scores(scores)
    cand = np.flatnonzero(ok)
    n = min(k, len(cand))
    if n == 0:
        return (np.zeros(0, np.int64), np.zeros(0)) if return_objective else np.zeros(0, np.int64)
    s = np.ascontiguousarray(arr[:, cand])                          # fancy indexing gives column-major
    low = s.min(1, keepdims=True)
    span = s.max(1, keepdims=True) - low
    norm = np.divide(s - low, span, out=np.ones_like(s), where=span > 0)
    top = -np.sort(-np.partition(norm, norm.shape[1] - n, axis=1)[:, norm.shape[1] - n:], axis=1)
    inverse_best = 1.0 / np.cumsum(top, axis=1)                      # (members, n): 1 / sum of each one's top t
    chosen = np.zeros(len(cand), dtype=bool)
    got = np.zeros(len(arr))
    picks, objective = [], []
    for t in range(n):
        sat = (got[:, None] + norm) * inverse_best[:, t:t + 1]       # (members, candidates)
        value = sat.min(0) if balance == 0 else (1 - balance) * sat.min(0) + balance * sat.mean(0)
        value[chosen] = -np.inf
        j = int(np.argmax(value))                                    # ties: the lower position
        chosen[j] = True
        got += norm[:, j]
        picks.append(cand[j])
        objective.append(float(value[j]))
    picks = np.asarray(picks, dtype=np.int64)
    return (picks, np.asarray(objective)) if return_objective else picks

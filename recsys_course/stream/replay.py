r"""Replaying the ratings in time order and scoring a strategy on them: prequential (test-then-train) evaluation.

* :func:`warmup_split` — the ratings before a point in time (the warm-up history a strategy is fitted on) and
  the stream after it, in time order.
* :func:`prequential` — for each step of the stream, in order: the strategy recommends to the user (films the
  user already rated excluded), the step is scored, **then** the strategy learns it. One row per scored step.
* :func:`sessions` — a session number per event (a user's events less than ``gap`` apart).
* :func:`rolling` — moving-window HR@k and NDCG@k over stream time, for the plot; :func:`stream_table` — one row
  per strategy: the numbers to compare.

**Timestamps are entry times.** A MovieLens timestamp is when the rating was *entered*, not when the film was
watched, and users enter many ratings in one sitting (on ml-latest-small, the 20 k ratings after the 80 % cut come
in about 1.2 k sessions of 116 users, 30-minute gap). Scored event by event, "the next event" is then mostly
another film of the same sitting, often in the order the website listed them, and a strategy that learns the
sitting's first ratings is rewarded for tracking a burst, not a taste. ``session_gap="30min"`` makes a whole
session one step: the strategy recommends once before the session, the list is scored against every film of the
session, and the session is then learned as a whole. (The session is learned at its first event's time, so its
later ratings reach other users' strategies — shared co-counts, a periodic refit — a few minutes early.)
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..checks import check_choice, check_int, is_int, is_number
from ..config import ITEM, RATING, TIME, USER
from ..data import DataError, check_ratings
from ..metrics import hit_rate_from_hits, ndcg_from_hits
from ..progress import progress as _progress
from .updaters import Strategy, as_seconds

__all__ = ["warmup_split", "sessions", "prequential", "rolling", "stream_table", "USERS"]

#: ``prequential(users=...)``: whose steps are scored
USERS = ("history", "all")
#: the columns of :func:`prequential`'s frame
COLUMNS = ("strategy", TIME, USER, ITEM, RATING, "n_events", "n_relevant", "rank", "hit", "ndcg", "recommend_us",
           "learn_us", "retrain_s")


def _as_time(value, name: str) -> int:
    """Seconds since 1970 from an integer or anything ``pd.Timestamp`` reads (naive = UTC)."""
    if is_int(value):
        return int(value)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        stamp = None
    if stamp is None or stamp is pd.NaT:
        raise ValueError(f"{name} must be a share of the ratings strictly between 0 and 1, a Unix timestamp "
                         f"(integer seconds) or a date pd.Timestamp reads ('2016-01-01'); got {value!r}")
    return int((stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).timestamp())


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Time order; ties by userId then movieId (a deterministic order for events of the same second)."""
    return frame.sort_values([TIME, USER, ITEM], kind="stable").reset_index(drop=True)


def warmup_split(ratings: pd.DataFrame, at=0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cut the ratings at a point in time: ``(history, stream)``.

    ``at``: a share in (0, 1) — the cut is that quantile of the timestamps (``0.8``: the first 80 % of the ratings
    are history) — or a point in time (Unix seconds, or a date such as ``"2016-01-01"``). History holds the ratings
    with ``timestamp <= cut``, the stream the later ones; both are sorted by time (ties: userId, movieId). The
    stream may hold users and films the history has never seen: that is the point.

    Raises DataError for a bad ratings frame (missing columns, NaN timestamps, duplicates), ValueError for a cut
    that leaves one side empty (the message gives the data's time range).
    """
    check_ratings(ratings, name="ratings", require_time=True)
    t = ratings[TIME].to_numpy()
    if is_number(at) and not is_int(at):
        if not 0 < at < 1:
            raise ValueError(f"at must be a share strictly between 0 and 1 (or a point in time), got {at!r}")
        cut = int(np.quantile(t, at, method="lower"))
    else:
        cut = _as_time(at, "at")
    if not t.min() <= cut < t.max():
        first, last = (pd.Timestamp(int(x), unit="s") for x in (t.min(), t.max()))
        raise ValueError(f"the warm-up cut {cut} ({pd.Timestamp(cut, unit='s')}) leaves the history or the stream "
                         f"empty: the ratings run from {t.min()} ({first}) to {t.max()} ({last}); pick a cut in "
                         "between, or a share such as at=0.8")
    late = t > cut
    return _ordered(ratings[~late]), _ordered(ratings[late])


def sessions(stream: pd.DataFrame, gap="30min") -> pd.Series:
    """A session number per event (aligned with ``stream``'s index): a user's event starts a new session when it
    comes more than ``gap`` after that user's previous event (``gap``: seconds, or ``"30min"``, ``"1h"``).
    Sessions are numbered 0, 1, ... in the order they start."""
    gap_s = as_seconds(gap, "gap")
    _check_stream_frame(stream)
    order = np.lexsort((stream[TIME].to_numpy(), stream[USER].to_numpy()))
    users, times = stream[USER].to_numpy()[order], stream[TIME].to_numpy()[order]
    new = np.r_[True, (users[1:] != users[:-1]) | (np.diff(times) > gap_s)]
    label = np.empty(len(order), dtype=np.int64)
    label[order] = np.cumsum(new) - 1
    # renumber by start: the first event (in stream order) of each session
    first = pd.Series(np.arange(len(label))).groupby(label).min().sort_values()
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[first.index.to_numpy()] = np.arange(len(first))
    return pd.Series(renumber[label], index=stream.index, name="session")


def _check_stream_frame(stream) -> None:
    check_ratings(stream, name="stream", require_time=True)
    if not pd.api.types.is_numeric_dtype(stream[TIME]):
        raise DataError(f"stream[{TIME!r}] must be numeric (Unix seconds), got dtype {stream[TIME].dtype}")


def _steps(stream: pd.DataFrame, session_gap) -> list[np.ndarray]:
    """Row positions of each step, in the order the steps start (one event, or one user's session)."""
    if session_gap is None:
        return [np.array([i]) for i in range(len(stream))]
    label = sessions(stream, session_gap).to_numpy()
    order = np.argsort(label, kind="stable")
    bounds = np.flatnonzero(np.diff(label[order])) + 1
    return np.split(order, bounds)


def prequential(strategy: Strategy, history: pd.DataFrame, stream: pd.DataFrame, *, k: int = 10,
                relevance_threshold: float | None = None, users: str = "history", session_gap=None, sample=None,
                seed: int = 0, fit: bool = True, progress: bool = True) -> pd.DataFrame:
    r"""Test-then-train evaluation of ``strategy`` on ``stream``, after fitting it on ``history``.

    For every step in time order (an event; with ``session_gap``, a user's session — see the module docstring):
    stream time advances (:meth:`Periodic.advance` may retrain), the strategy scores the whole catalogue for the
    user, the films the user rated before (in history or earlier in the stream) are excluded, the step is
    scored, and only **then** does the strategy learn it. A film is therefore never ranked by a strategy that
    has already learned that the user rated it.

    Each scored step gets the **rank** of its film in the strategy's whole ranking (1 = top; ties → the lower
    catalogue column, as :func:`~recsys_course.metrics.top_k`). ``rank`` is NaN when the strategy cannot rank
    the film: a film outside its catalogue (first rated after its last training) or one it scores ``-inf``; that
    is a miss. With one relevant film, :math:`\mathrm{hit@k} = \mathbb 1[\mathrm{rank} \le k]` and
    :math:`\mathrm{NDCG@k} = \mathbb 1[\mathrm{rank} \le k] / \log_2(1 + \mathrm{rank})`; a session step is scored
    against all its relevant films :math:`F` (:func:`~recsys_course.metrics.ndcg_from_hits`: DCG over those in the
    top k, divided by the ideal DCG of :math:`\min(|F|, k)` hits), with ``rank`` its best-ranked one.

    Parameters
    ----------
    strategy : a :class:`~recsys_course.stream.Strategy` (unfitted, or fitted with ``fit=False``)
    history, stream : ratings frames with timestamps (:func:`warmup_split`); ``stream`` must be in time order
    k : int
        Length of the list.
    relevance_threshold : float or None
        Only events rated at least this are scored (``4.0``: "did it find the films the user liked?"); ``None``:
        every rated film counts (the next-item view). Every event is learned either way.
    users : ``"history"`` or ``"all"``
        ``"history"`` (default): score only users who have ratings in ``history`` — every strategy can serve them
        from the start, so strategies compare on the same steps. ``"all"``: also users new in the stream, from the
        moment the strategy knows them; steps of users it cannot serve yet (a :class:`Static` model never can) are
        learned but not scored, and counted (``attrs["n_unserved"]``) — compare strategies on this setting only
        with the counts beside the rates.
    session_gap : None, seconds or a string such as ``"30min"``
        ``None``: every event is a step; otherwise a user's session is one step.
    sample : None, an int or a share in (0, 1)
        Score only a seeded random sample of the eligible steps (eligible: the user and threshold filters pass);
        **every** step is still learned, in order. The sampled rates are unbiased estimates of the full-stream
        rates with a binomial standard error of about :math:`\sqrt{p(1-p)/n}` (``n`` = scored steps: 1,000 steps
        at HR 0.1 give ±0.01); the same ``seed`` and stream pick the same steps for every strategy, so a comparison
        between strategies is paired and its difference is much less noisy than either rate.
    seed : int
        The sample's seed.
    fit : bool
        ``False``: the strategy is already fitted on ``history`` (it is not refitted).
    progress : bool
        A text progress bar over the steps.

    Returns
    -------
    DataFrame, one row per scored step: ``strategy, timestamp, userId, movieId, rating`` (the step's first event;
    for a session its best-ranked relevant film), ``n_events`` (events in the step), ``n_relevant``, ``rank``,
    ``hit``, ``ndcg``, ``recommend_us`` (µs to score and rank), ``learn_us`` (µs to learn the step), ``retrain_s``
    (seconds of retraining triggered just before it, 0 if none; a retrain before an unscored step is counted in
    ``attrs``). ``attrs`` holds the totals: ``n_events``, ``n_steps``, ``n_eligible``, ``n_scored``,
    ``n_unserved``, ``fit_s``, ``learn_s`` (every step), ``learn_us_per_event``, ``retrain_s``, ``n_retrains``,
    ``n_skipped`` (events the strategy could not use), ``seconds`` (the whole run), ``k``.

    Raises
    ------
    TypeError (not a strategy), DataError (bad frames: missing columns, NaN), ValueError (a stream not in time
    order, ``k`` ≤ 0, a bad ``users``, ``sample``, ``session_gap``), NotFittedError (``fit=False`` on an unfitted
    strategy).
    """
    if not isinstance(strategy, Strategy):
        raise TypeError(f"prequential needs a stream strategy (Static, Periodic, OnlineFoldInStrategy, OnlineItemKNN, "
                        f"SequenceStrategy), got {type(strategy).__name__}; wrap a model: Static(model)")
    check_int("prequential", "k", k)
    check_choice("prequential", "users", users, USERS)
    if relevance_threshold is not None and not is_number(relevance_threshold):
        raise ValueError(f"prequential: relevance_threshold must be a number or None, got {relevance_threshold!r}")
    check_int("prequential", "seed", seed, low=0)
    check_ratings(history, name="history", require_time=True)
    _check_stream_frame(stream)
    t = stream[TIME].to_numpy()
    if (np.diff(t) < 0).any():
        at = int(np.flatnonzero(np.diff(t) < 0)[0]) + 1
        raise ValueError(f"stream is not in time order (row {at} is earlier than row {at - 1}); sort it: "
                         f"stream.sort_values([{TIME!r}, {USER!r}, {ITEM!r}]), or take it from warmup_split")
    start_all = time.perf_counter()
    if fit:
        strategy.fit(history)
    else:
        strategy._check_fitted()
    stream = stream.reset_index(drop=True)
    steps = _steps(stream, session_gap)
    s_user, s_item = stream[USER].to_numpy(), stream[ITEM].to_numpy()
    s_rating, s_time = stream[RATING].to_numpy(np.float64), stream[TIME].to_numpy()
    relevant_event = np.ones(len(stream), dtype=bool) if relevance_threshold is None else \
        s_rating >= relevance_threshold
    warm = set(history[USER].unique().tolist())
    eligible = np.array([relevant_event[rows].any() and (users == "all" or s_user[rows[0]] in warm)
                         for rows in steps], dtype=bool)
    scored = _sample(eligible, sample, seed)
    seen: dict = {}
    for u, part in history.groupby(USER)[ITEM]:
        seen[u] = set(part.tolist())
    out, n_unserved, learn_total, retrain_total = [], 0, 0.0, 0.0
    bar = _progress(total=len(steps), desc=strategy.name, disable=not progress)
    for n, rows in enumerate(steps):
        user = s_user[rows[0]].item()
        retrain = strategy.advance(s_time[rows[0]].item())
        retrain_total += retrain
        row = None
        if scored[n]:
            if strategy.known(user):
                row = _score_step(strategy, user, rows, relevant_event, seen.get(user, ()), s_item, k)
            else:
                n_unserved += 1
        start = time.perf_counter()
        if len(rows) == 1:
            i = rows[0]
            strategy.learn(user, s_item[i].item(), s_rating[i].item(), s_time[i].item())
        else:
            strategy.learn_user(user, s_item[rows], s_rating[rows], s_time[rows])
        learn_s = time.perf_counter() - start
        learn_total += learn_s
        seen.setdefault(user, set()).update(s_item[rows].tolist())
        if row is not None:
            best, n_rel, rank, hit, ndcg, rec_us = row
            out.append((s_time[rows[0]].item(), user, best, float(s_rating[rows][s_item[rows] == best][0]),
                        len(rows), n_rel, rank, hit, ndcg, rec_us, learn_s * 1e6, retrain))
        bar.update(1)
    bar.close()
    frame = pd.DataFrame(out, columns=list(COLUMNS[1:]))
    frame = frame.astype({TIME: np.int64, USER: np.int64, ITEM: np.int64, "n_events": np.int64,
                          "n_relevant": np.int64, "hit": bool})
    frame.insert(0, "strategy", strategy.name)
    n_events = len(stream)
    frame.attrs.update({
        "strategy": strategy.name, "k": k, "n_events": n_events, "n_steps": len(steps),
        "n_eligible": int(eligible.sum()), "n_scored": len(frame), "n_unserved": n_unserved,
        "fit_s": strategy.fit_seconds_, "learn_s": learn_total,
        "learn_us_per_event": learn_total / max(n_events, 1) * 1e6, "retrain_s": retrain_total,
        "n_retrains": len(strategy.retrains_), "n_skipped": strategy.n_skipped_,
        "seconds": time.perf_counter() - start_all})
    return frame


def _sample(eligible: np.ndarray, sample, seed: int) -> np.ndarray:
    """Which steps are scored: every eligible one, or a seeded sample of them."""
    if sample is None:
        return eligible
    where = np.flatnonzero(eligible)
    if is_int(sample) and sample >= 1:
        n = min(int(sample), len(where))
    elif is_number(sample) and not is_int(sample) and 0 < sample < 1:
        n = int(round(sample * len(where)))
    else:
        raise ValueError(f"prequential: sample must be None, a number of steps (an integer >= 1) or a share "
                         f"strictly between 0 and 1, got {sample!r}")
    chosen = np.random.default_rng(seed).choice(where, size=n, replace=False)
    out = np.zeros_like(eligible)
    out[chosen] = True
    return out


def _score_step(strategy, user, rows, relevant_event, seen, s_item, k):
    """(best film, n relevant, rank of the best, hit, ndcg, µs) of one step, before the strategy learns it."""
    start = time.perf_counter()
    s = np.array(strategy.scores(user), dtype=np.float64)
    if seen:
        pos = strategy.positions(np.fromiter(seen, dtype=np.int64, count=len(seen)))
        s[pos[pos >= 0]] = -np.inf
    films = s_item[rows][relevant_event[rows]]
    films = pd.unique(films)
    cols = strategy.positions(films)
    ranks = np.full(len(films), np.nan)
    for j, c in enumerate(cols):
        if c >= 0 and np.isfinite(s[c]):
            v = s[c]
            ranks[j] = 1 + np.count_nonzero(s > v) + np.count_nonzero(s[:c] == v)
    rec_us = (time.perf_counter() - start) * 1e6
    hits = np.zeros((1, k), dtype=bool)
    inside = ranks[np.isfinite(ranks) & (ranks <= k)].astype(np.int64)
    hits[0, inside - 1] = True
    ndcg = ndcg_from_hits(hits, np.array([len(films)]))
    hit = hit_rate_from_hits(hits, None) > 0
    best_j = int(np.nanargmin(ranks)) if np.isfinite(ranks).any() else 0
    return int(films[best_j]), len(films), ranks[best_j], hit, ndcg, rec_us


def rolling(frame: pd.DataFrame, window="30D") -> pd.DataFrame:
    """Moving-window HR@k and NDCG@k over stream time, per strategy: the curve to plot.

    ``window``: a duration (``"30D"``; the mean over the scored steps of the last 30 days of stream time) or an
    integer n (the mean over the last n scored steps). Returns ``strategy, time`` (a datetime), ``hr``, ``ndcg``,
    ``n`` (steps in the window), one row per scored step.
    """
    missing = [c for c in ("strategy", TIME, "hit", "ndcg") if c not in getattr(frame, "columns", ())]
    if missing:
        raise ValueError(f"rolling needs prequential's frame (columns strategy, {TIME}, hit, ndcg); missing {missing}")
    by_n = is_int(window)
    if by_n:
        check_int("rolling", "window", window)
    else:
        as_seconds(window, "window")
    parts = []
    for name, part in frame.groupby("strategy", sort=False):
        part = part.sort_values(TIME, kind="stable")
        when = pd.to_datetime(part[TIME].to_numpy(), unit="s")
        values = pd.DataFrame({"hr": part["hit"].astype(float).to_numpy(), "ndcg": part["ndcg"].to_numpy(),
                               "n": 1.0}, index=when)
        roll = values.rolling(window if by_n else pd.Timedelta(window), min_periods=1)
        means = roll.mean()
        means["n"] = roll["n"].sum().to_numpy()
        means = means.reset_index(names="time")
        means.insert(0, "strategy", name)
        parts.append(means)
    if not parts:
        return pd.DataFrame(columns=["strategy", "time", "hr", "ndcg", "n"])
    out = pd.concat(parts, ignore_index=True)
    out["n"] = out["n"].astype(np.int64)
    return out


def stream_table(*frames: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy from :func:`prequential` frames: ``HR@k``, ``NDCG@k``, ``MRR`` (mean 1/rank, 0 when
    unranked), ``scored`` steps, ``unserved`` steps, ``fit_s``, ``us_per_event`` (µs to learn an event, every
    event of the stream), ``us_per_recommend``, ``retrains``, ``retrain_s``, ``total_s`` (the whole run)."""
    rows = []
    for f in frames:
        if "strategy" not in getattr(f, "columns", ()) or "n_scored" not in f.attrs:
            raise ValueError("stream_table takes the frames prequential returns (one per strategy)")
        a = f.attrs
        k = a["k"]
        rank = f["rank"].to_numpy(np.float64)
        rows.append({"strategy": a["strategy"], f"HR@{k}": float(f["hit"].mean()) if len(f) else np.nan,
                     f"NDCG@{k}": float(f["ndcg"].mean()) if len(f) else np.nan,
                     "MRR": float(np.where(np.isfinite(rank), 1 / np.where(np.isfinite(rank), rank, 1), 0).mean())
                     if len(f) else np.nan,
                     "scored": a["n_scored"], "unserved": a["n_unserved"], "fit_s": a["fit_s"],
                     "us_per_event": a["learn_us_per_event"],
                     "us_per_recommend": float(f["recommend_us"].mean()) if len(f) else np.nan,
                     "retrains": a["n_retrains"], "retrain_s": a["retrain_s"], "total_s": a["seconds"]})
    return pd.DataFrame(rows)

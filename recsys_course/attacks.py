r"""Shilling attacks on a recommender and a detector for them (notebook 14).

A *push attack* (Lam & Riedl 2004; Mobasher et al. 2007, "Toward trustworthy recommender systems") creates fake
user profiles that give one **target** film the top rating, hidden among **filler** ratings that make the
profile look ordinary. Three classic profile shapes, for a rating scale :math:`[r_\min, r_\max]`:

* ``"random"`` — filler films rated :math:`\mathcal N(\bar r, \sigma^2)`, the global mean and standard deviation
  of train (the attacker needs only two numbers about the system);
* ``"average"`` — each filler film :math:`i` rated :math:`\mathcal N(\bar r_i, \sigma^2)` around *its own* mean
  (more knowledge, a more plausible profile);
* ``"bandwagon"`` — the ``n_popular`` most-rated films at :math:`r_\max` (everybody has seen them, so the fake
  profile looks similar to many real ones), plus random-attack filler.

Every profile rates the target :math:`r_\max`. Ratings are rounded to the scale's step (0.5 on
ml-latest-small, 1 on ml-1m) and clipped to the scale. ``size`` is the number of fake profiles per target as a
share of the real users (0.03 of 610 = 18), ``filler`` the share of the catalogue's films each profile rates
besides the target (and the popular films), drawn uniformly from the films of train.

**Measuring an attack.** :func:`target_hit_ratio` is the share of real users who have not rated the target
with the target in their top ``k`` (the same list :meth:`Recommender.recommend` returns: seen films excluded,
ties to the smaller catalogue position), read from ``score`` without building the lists.

**Detecting fake profiles** (Chirita, Nejdl & Zamfir 2005; Burke et al. 2006): per user :math:`u` with
ratings :math:`I_u`, film means :math:`\bar r_i` and film counts :math:`n_i` over the frame (fakes included:
the detector never sees labels),

.. math:: \mathrm{RDMA}_u = \frac{1}{|I_u|}\sum_{i \in I_u} \frac{|r_{ui} - \bar r_i|}{n_i}, \qquad
          \mathrm{WDMA}_u = \frac{1}{|I_u|}\sum_{i \in I_u} \frac{|r_{ui} - \bar r_i|}{n_i^2},

the mean absolute deviation from the film means :math:`\mathrm{dev}_u = \frac{1}{|I_u|}\sum |r_{ui} - \bar
r_i|`, and the mean log-popularity of the films rated, :math:`\mathrm{pop}_u = \frac{1}{|I_u|}\sum \log(1 +
n_i)` (fake filler drawn uniformly from the catalogue is mostly obscure). :func:`suspicion` turns each chosen
feature into a robust z-score :math:`z = (x - \mathrm{median}) / (1.4826\,\mathrm{MAD})`, signed so that
*larger is more suspicious* (``pop`` enters with a minus sign), and averages them; :func:`detect` flags the
users above a threshold fixed in advance (3.5, the usual cut-off for a robust z-score; Iglewicz & Hoaglin
1993) — no fake label is used to choose it.

Cost: :func:`inject` is :math:`O(\text{fakes} \times \text{filler})`; :func:`profile_stats` one pass over the
ratings; :func:`target_hit_ratio` one ``score`` call per block of users.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .checks import check_choice, check_int, check_number, check_share
from .config import ITEM, RATING, TIME, USER
from .data import check_ratings

__all__ = ["KINDS", "FEATURES", "SUSPICIOUS_SIGN", "THRESHOLD", "Detection", "inject", "pick_targets",
           "target_ranks", "target_hit_ratio", "profile_stats", "robust_z", "suspicion", "detect"]

#: The attack profiles :func:`inject` builds.
KINDS = ("random", "average", "bandwagon")
#: Columns of :func:`profile_stats`.
FEATURES = ("n_ratings", "rdma", "wdma", "dev", "pop")
#: +1 where a large value is suspicious, -1 where a small one is (obscure films: low ``pop``).
SUSPICIOUS_SIGN = {"n_ratings": 1.0, "rdma": 1.0, "wdma": 1.0, "dev": 1.0, "pop": -1.0}
#: The robust z-score above which :func:`detect` flags a profile (Iglewicz & Hoaglin 1993).
THRESHOLD = 3.5
_MAD_TO_SD = 1.4826  # MAD × 1.4826 estimates σ for normal data


def _with_fix(check, fix: str, *args, **kwargs):
    """Run a :mod:`recsys_course.checks` check and add how to fix the mistake to its message."""
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        raise ValueError(f"{exc}; {fix}") from None


def _targets(train: pd.DataFrame, target) -> np.ndarray:
    targets = np.atleast_1d(np.asarray(target))
    if targets.ndim != 1 or targets.size == 0:
        raise ValueError(f"inject: target must be a movieId or a non-empty list of movieIds, got {target!r}")
    missing = targets[~np.isin(targets, train[ITEM].unique())]
    if missing.size:
        raise ValueError(f"inject: target film(s) {missing[:5].tolist()} are not in train's catalogue; pick movieIds "
                         "that train has ratings for, e.g. with pick_targets(train)")
    if len(np.unique(targets)) != len(targets):
        raise ValueError(f"inject: target lists a film twice ({targets.tolist()}); give each target once")
    return targets


def _new_user_ids(existing: pd.Series, n: int) -> np.ndarray:
    """``n`` user ids that no existing user has: the next integers after the largest, or ``"fake-<j>"``."""
    if pd.api.types.is_numeric_dtype(existing):
        start = int(existing.max()) + 1
        return np.arange(start, start + n, dtype=existing.dtype)
    taken, out, j = set(existing.astype(str)), [], 0
    while len(out) < n:
        name = f"fake-{j}"
        if name not in taken:
            out.append(name)
        j += 1
    return np.array(out, dtype=object)


def _scale(ratings: np.ndarray) -> tuple[float, float, float]:
    """(lowest, highest, step) of the rating scale seen in train (step 1 if only one value occurs)."""
    values = np.unique(ratings)
    step = float(np.diff(values).min()) if len(values) > 1 else 1.0
    return float(values[0]), float(values[-1]), step


def inject(train: pd.DataFrame, target, kind: str, size: float, *, filler: float = 0.01, n_popular: int = 10,
           seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Append fake push-attack profiles to ``train``; return ``(attacked frame, fake user ids)``.

    Parameters
    ----------
    train : DataFrame
        The ratings the attacker poisons (``userId, movieId, rating`` and, if present, ``timestamp``).
    target : movieId or list of movieIds
        The film(s) to push; each target gets its own group of ``round(size × n_real_users)`` profiles (at
        least 1), and no profile rates another group's target.
    kind : ``"random"``, ``"average"`` or ``"bandwagon"``
        The profile shape (module docstring).
    size : float in (0, 1)
        Fake profiles per target as a share of train's users.
    filler : float in (0, 1)
        Share of train's films each profile rates as camouflage (at least one film), drawn uniformly.
    n_popular : int
        Bandwagon only: how many of the most-rated films each profile rates at the maximum.
    seed : int
        Every random choice (filler films, their ratings).

    Returns
    -------
    The frame with the fake rows appended (new user ids that cannot clash with real ones; timestamps after the
    last real one, one second apart, so any split or model accepts them), and the fake ids, target by target.
    """
    check_ratings(train, name="train")
    _with_fix(check_choice, "e.g. kind='average' (see recsys_course.attacks.KINDS)", "inject", "kind", kind, KINDS)
    _with_fix(check_share, "e.g. size=0.03 adds fake profiles numbering 3 % of the real users", "inject", "size",
              size)
    _with_fix(check_share, "e.g. filler=0.01 makes each profile rate 1 % of the catalogue", "inject", "filler",
              filler)
    _with_fix(check_int, "e.g. n_popular=10 (the bandwagon profiles' popular films)", "inject", "n_popular",
              n_popular)
    _with_fix(check_int, "pass a seed such as 0", "inject", "seed", seed, low=0)
    targets = _targets(train, target)
    rng = np.random.default_rng(seed)

    ratings = train[RATING].to_numpy(np.float64)
    low, high, step = _scale(ratings)
    mu, sigma = float(ratings.mean()), float(ratings.std())
    by_film = train.groupby(ITEM)[RATING]
    counts = by_film.size()
    film_mean = by_film.mean()
    catalogue = counts.index.to_numpy()
    popular = counts.sort_values(ascending=False, kind="stable").index.to_numpy()
    popular = popular[~np.isin(popular, targets)][:n_popular] if kind == "bandwagon" else popular[:0]
    pool = catalogue[~np.isin(catalogue, np.concatenate([targets, popular]))]
    n_fill = min(max(1, int(round(filler * len(catalogue)))), len(pool))
    n_per_target = max(1, int(round(size * train[USER].nunique())))
    fake_ids = _new_user_ids(train[USER], n_per_target * len(targets))

    users, items, values = [], [], []
    for j, uid in enumerate(fake_ids):
        films = rng.choice(pool, size=n_fill, replace=False)
        centre = film_mean.reindex(films).to_numpy() if kind == "average" else np.full(n_fill, mu)
        noisy = np.clip(np.round(rng.normal(centre, sigma) / step) * step, low, high)
        chosen = np.concatenate([[targets[j // n_per_target]], popular, films])
        users.append(np.full(len(chosen), uid, dtype=fake_ids.dtype))
        items.append(chosen)
        values.append(np.concatenate([np.full(1 + len(popular), high), noisy]))
    fake = pd.DataFrame({USER: np.concatenate(users), ITEM: np.concatenate(items), RATING: np.concatenate(values)})
    if TIME in train.columns:
        fake[TIME] = int(train[TIME].max()) + 1 + np.arange(len(fake))
    extra = [c for c in train.columns if c not in fake.columns]
    if extra:
        raise ValueError(f"inject: train has columns {extra} that a fake profile cannot fill; keep only "
                         f"{[USER, ITEM, RATING, TIME]}, e.g. train[{[USER, ITEM, RATING, TIME]}]")
    fake = fake[list(train.columns)].astype(train.dtypes.to_dict())  # the real rows' dtypes, e.g. int64 ids
    attacked = pd.concat([train, fake], ignore_index=True)
    return attacked, fake_ids


def pick_targets(train: pd.DataFrame, n: int = 5, *, min_ratings: int = 5, max_ratings: int = 20,
                 seed: int = 0) -> np.ndarray:
    """``n`` films drawn (seeded) among those with ``min_ratings`` to ``max_ratings`` ratings in train, sorted.

    Unpopular but not empty: the films an attacker would push, and ones every model of the course can score
    (EASE models only films with at least ``min_item_count`` = 5 ratings). A catalogue without such a long tail
    (fewer than ``4 n`` films in the range, e.g. the synthetic stand-in for ml-1m, whose least-rated film has
    85 ratings) gets its ``4 n`` least-rated films with at least ``min_ratings`` ratings as the pool instead.
    """
    check_ratings(train, name="train")
    check_int("pick_targets", "n", n)
    check_int("pick_targets", "min_ratings", min_ratings)
    check_int("pick_targets", "max_ratings", max_ratings, low=min_ratings)
    counts = train[ITEM].value_counts()
    eligible = np.sort(counts.index[(counts >= min_ratings) & (counts <= max_ratings)].to_numpy())
    if len(eligible) < 4 * n:
        enough = counts[counts >= min_ratings]
        eligible = np.sort(enough.index.to_numpy()[np.lexsort((enough.index.to_numpy(), enough.to_numpy()))][:4 * n])
    if len(eligible) < n:
        raise ValueError(f"pick_targets: only {len(eligible)} film(s) have at least {min_ratings} ratings, fewer "
                         f"than n={n}; lower min_ratings or ask for fewer targets")
    return np.sort(np.random.default_rng(seed).choice(eligible, size=n, replace=False))


def target_ranks(model, users, targets, *, batch_size: int = 256) -> pd.DataFrame:
    """Each target film's rank (1 = first) in each user's list of unseen films: users × targets.

    The rank is the position the film would take in ``model.recommend(users, k)`` for a large enough ``k``
    (seen films excluded, ties to the smaller catalogue position), read from ``model.score``: 1 + the number of
    unseen films that score higher, + the tied ones earlier in the catalogue. NaN where the user has rated the
    target; ``inf`` where the model cannot score it (``-inf``) or never saw the film.
    """
    check_int(None, "batch_size", batch_size)
    users = np.asarray(users)
    targets = np.atleast_1d(np.asarray(targets))
    cols = model.item_positions(targets)
    rows = model.user_positions(users)
    out = np.full((len(users), len(targets)), np.inf)
    for start in range(0, len(users), batch_size):
        block = slice(start, start + batch_size)
        scores = model.score(users[block])
        seen = model.seen_[rows[block]].toarray().astype(bool)
        scores[seen] = -np.inf
        for t, col in enumerate(cols):
            if col < 0:  # the model never saw the film: nobody has rated it, nobody gets it
                continue
            own = scores[:, col][:, None]
            rank = 1.0 + (scores > own).sum(1) + (scores[:, :col] == own).sum(1)
            out[block, t] = np.where(seen[:, col], np.nan, np.where(np.isfinite(own[:, 0]), rank, np.inf))
    return pd.DataFrame(out, index=pd.Index(users, name=USER), columns=pd.Index(targets, name=ITEM))


def target_hit_ratio(model, users, targets, k: int = 10, *, batch_size: int = 256) -> pd.Series:
    """For each target film, the share of ``users`` who have not rated it with it in their top ``k``.

    The top ``k`` is the list ``model.recommend(users, k)`` would give (:func:`target_ranks` ≤ ``k``). A target
    the model cannot score or never saw is a miss. Returns a Series indexed by target (name ``hit@k``); users
    who have rated a target are left out of that target's share (NaN if none is left).
    """
    check_int(None, "k", k)
    ranks = target_ranks(model, users, targets, batch_size=batch_size)
    eligible = ranks.notna().sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks <= k).sum() / eligible.where(eligible > 0)).rename(f"hit@{k}")


def profile_stats(ratings: pd.DataFrame) -> pd.DataFrame:
    """One row per user (sorted ids): ``n_ratings``, ``rdma``, ``wdma``, ``dev``, ``pop`` (module docstring).

    Film means and counts come from ``ratings`` itself, fake profiles included — what a platform sees.
    """
    check_ratings(ratings)
    by_film = ratings.groupby(ITEM)[RATING]
    n_i = by_film.transform("size").to_numpy(np.float64)
    gap = (ratings[RATING] - by_film.transform("mean")).abs().to_numpy(np.float64)
    parts = pd.DataFrame({USER: ratings[USER].to_numpy(), "n_ratings": 1.0, "rdma": gap / n_i,
                          "wdma": gap / n_i ** 2, "dev": gap, "pop": np.log1p(n_i)})
    out = parts.groupby(USER).agg({"n_ratings": "sum", "rdma": "mean", "wdma": "mean", "dev": "mean",
                                   "pop": "mean"})
    return out[list(FEATURES)]


def robust_z(values) -> np.ndarray:
    """:math:`(x - \\mathrm{median}) / (1.4826\\,\\mathrm{MAD})`; 0 everywhere if the MAD is 0."""
    x = np.asarray(values, dtype=np.float64)
    med = np.median(x)
    mad = np.median(np.abs(x - med)) * _MAD_TO_SD
    return (x - med) / mad if mad > 0 else np.zeros_like(x)


def suspicion(stats: pd.DataFrame, features=("rdma", "wdma", "pop")) -> pd.Series:
    """The mean signed robust z-score of ``features`` of :func:`profile_stats` (larger = more suspicious)."""
    features = list(features)
    if not features:
        raise ValueError(f"suspicion: features is empty; choose some of {list(FEATURES)}")
    for f in features:
        check_choice("suspicion", "features", f, FEATURES)
    z = np.mean([SUSPICIOUS_SIGN[f] * robust_z(stats[f]) for f in features], axis=0)
    return pd.Series(z, index=stats.index, name="suspicion")


@dataclass
class Detection:
    """What :func:`detect` found: every user's score, the flagged ids and the threshold used."""

    scores: pd.Series
    flagged: np.ndarray
    threshold: float

    def precision_recall(self, fake_ids) -> tuple[float, float]:
        """(precision, recall) of the flags against the true fake ids (precision 0 if nothing is flagged)."""
        fake = np.isin(self.flagged, np.asarray(fake_ids))
        precision = float(fake.mean()) if len(self.flagged) else 0.0
        recall = float(fake.sum() / len(fake_ids)) if len(fake_ids) else float("nan")
        return precision, recall


def detect(ratings: pd.DataFrame, features=("rdma", "wdma", "pop"), threshold: float = THRESHOLD) -> Detection:
    """Flag the users whose :func:`suspicion` exceeds ``threshold`` (fixed in advance: no labels are used)."""
    _with_fix(check_number, "the usual robust z-score cut-off is 3.5", "detect", "threshold", threshold,
              positive=True)
    scores = suspicion(profile_stats(ratings), features)
    return Detection(scores=scores, flagged=scores.index[scores.to_numpy() > threshold].to_numpy(),
                     threshold=float(threshold))

"""Train/test splits, and the two canonical splits of the leaderboard.

Three families, from most to least leaky:

* :func:`random_split` — a seeded random share of all ratings. Train then contains ratings made *after*
  test ratings of the same user: the model sees the future. Common in papers, optimistic in practice.
* :func:`leave_last_n` / :func:`per_user_temporal_split` — each user's most recent ratings go to test. No
  user's future is in their own train rows, but other users' later ratings still are.
* :func:`temporal_split` — one global cut in time. Nothing after the cut is in train: the honest
  simulation of deployment. Users who first appear after the cut have no history ("cold-start users").

The leaderboard uses

* rating track (RMSE, MAE): :func:`rating_split` = each user's last 20 % of ratings in test;
* ranking track (P/R/NDCG/MAP/HR/MRR@10): :func:`ranking_split` = each user's last 10 ratings in test,
  relevant = test rating ≥ 4.

Both keep every test user in train (no cold-start users, so every model can be ranked on every user) and
never let a user's own future leak into train. Ties in time are broken by movieId, so splits are
deterministic.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .config import ITEM, TIME, USER
from .data import DataError, check_ratings

RATING_TEST_SHARE = 0.2
RANKING_TEST_N = 10


def _chronological(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values([USER, TIME, ITEM], kind="stable")


def _check_share(test_size: float) -> None:
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be a share strictly between 0 and 1, got {test_size}")


def random_split(ratings: pd.DataFrame, test_size: float = 0.2, seed: int = 42):
    """Move a random ``test_size`` share of all ratings (seeded) to test. Returns ``(train, test)``."""
    check_ratings(ratings)
    _check_share(test_size)
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(ratings), dtype=bool)
    is_test[rng.choice(len(ratings), size=int(round(test_size * len(ratings))), replace=False)] = True
    return ratings[~is_test].copy(), ratings[is_test].copy()


def temporal_split(ratings: pd.DataFrame, cutoff=None, test_size: float = 0.2):
    """One global cut in time: ratings with ``timestamp <= cutoff`` train, later ones test.

    ``cutoff`` is a Unix timestamp (or anything ``pd.Timestamp`` understands); by default it is the time
    that leaves ``test_size`` of the ratings after it. Returns ``(train, test)``; test may contain users and
    movies that train has never seen.
    """
    check_ratings(ratings, require_time=True)
    if cutoff is None:
        _check_share(test_size)
        cutoff = int(np.quantile(ratings[TIME].to_numpy(), 1 - test_size, method="lower"))
    elif not isinstance(cutoff, (int, np.integer, float)):
        stamp = pd.Timestamp(cutoff)  # naive times are UTC; aware ones keep their zone
        cutoff = int((stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).timestamp())
    is_test = ratings[TIME].to_numpy() > cutoff
    if is_test.all() or not is_test.any():
        raise DataError(f"cutoff {cutoff} puts every rating on one side of the split; pick a time between "
                        f"{ratings[TIME].min()} and {ratings[TIME].max()}")
    return ratings[~is_test].copy(), ratings[is_test].copy()


def leave_last_n(ratings: pd.DataFrame, n: int = 1, min_train: int = 1):
    """Each user's ``n`` most recent ratings go to test (ties in time broken by movieId).

    Users with fewer than ``n + min_train`` ratings stay entirely in train, so every test user has at least
    ``min_train`` training ratings. Returns ``(train, test)``.
    """
    check_ratings(ratings, require_time=True)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    df = _chronological(ratings)
    size = df.groupby(USER)[ITEM].transform("size").to_numpy()
    from_end = size - df.groupby(USER).cumcount().to_numpy()  # 1 for the most recent rating
    is_test = (from_end <= n) & (size >= n + min_train)
    if not is_test.any():
        raise DataError(f"no user has more than {n + min_train - 1} ratings, so leave_last_n(n={n}) leaves an "
                        "empty test set; use a smaller n")
    return df[~is_test].copy(), df[is_test].copy()


def per_user_temporal_split(ratings: pd.DataFrame, test_size: float = 0.2):
    """Each user's most recent ``test_size`` share of ratings (at least one, at most all but one) to test."""
    check_ratings(ratings, require_time=True)
    _check_share(test_size)
    df = _chronological(ratings)
    size = df.groupby(USER)[ITEM].transform("size").to_numpy()
    n_test = np.clip(np.round(size * test_size), 1, size - 1)
    from_end = size - df.groupby(USER).cumcount().to_numpy()
    is_test = (from_end <= n_test) & (size >= 2)
    if not is_test.any():
        raise DataError("no user has two or more ratings, so per_user_temporal_split leaves an empty test set")
    return df[~is_test].copy(), df[is_test].copy()


def rating_split(ratings: pd.DataFrame):
    """The leaderboard's rating-track split: each user's last 20 % of ratings in test."""
    return per_user_temporal_split(ratings, test_size=RATING_TEST_SHARE)


def ranking_split(ratings: pd.DataFrame):
    """The leaderboard's ranking-track split: each user's last 10 ratings in test (relevant = rating ≥ 4)."""
    return leave_last_n(ratings, n=RANKING_TEST_N)


#: How a model's validation slice can be cut from its train (``val_split``): mirror the evaluation split.
VALIDATION_SPLITS = ("last", "random")


def validation_split(train: pd.DataFrame, how: str = "last", size: int | float = 10, *, seed: int = 0,
                     min_train: int = 1):
    """Cut a validation slice out of ``train`` the way the test was cut out of the data. Returns ``(fit, val)``.

    * ``how="last"`` (mirrors :func:`leave_last_n` / :func:`per_user_temporal_split`, the leaderboard's
      tracks): an integer ``size`` holds out each user's ``size`` most recent ratings (users with fewer than
      ``size + min_train`` keep all theirs); a share holds out each user's most recent ``size`` share.
    * ``how="random"`` (mirrors :func:`random_split`): a share holds out that random share of all ratings; an
      integer holds out ``size`` random ratings of every user who has at least ``size + min_train``.

    Models stop early on this slice (``val_split`` and ``val_size`` of every torch model), so what they are
    tuned for resembles what they are tested on.
    """
    from .checks import check_choice, check_int, check_size

    check_choice("validation_split", "how", how, VALIDATION_SPLITS)
    check_size("validation_split", "size", size, allow_none=False)
    check_int("validation_split", "min_train", min_train)
    is_share = isinstance(size, (float, np.floating))
    if how == "last":
        return per_user_temporal_split(train, test_size=size) if is_share else \
            leave_last_n(train, n=size, min_train=min_train)
    check_ratings(train, name="train")
    if is_share:
        return random_split(train, test_size=size, seed=seed)
    rng = np.random.default_rng(seed)
    key = rng.random(len(train))
    users = train[USER].to_numpy()
    order = np.lexsort((key, users))
    counts = np.bincount(pd.factorize(users[order])[0])
    rank = np.arange(len(train)) - np.repeat(np.cumsum(counts) - counts, counts)  # 0.. within each user
    held = np.zeros(len(train), dtype=bool)
    held[order] = (rank < size) & (np.repeat(counts, counts) >= size + min_train)
    if not held.any():
        raise DataError(f"no user has {size + min_train} or more ratings, so a validation slice of {size} random "
                        "ratings per user is empty; use a smaller val_size")
    return train[~held].copy(), train[held].copy()


def known_only(test: pd.DataFrame, train: pd.DataFrame, *, users: bool = True, items: bool = False):
    """Drop test rows whose user (and, with ``items=True``, movie) never appears in train.

    Returns ``(kept, dropped)`` so a notebook can say how much it left out.
    """
    keep = np.ones(len(test), dtype=bool)
    if users:
        keep &= test[USER].isin(train[USER].unique()).to_numpy()
    if items:
        keep &= test[ITEM].isin(train[ITEM].unique()).to_numpy()
    return test[keep].copy(), test[~keep].copy()


# --------------------------------------------------------------------------------------------
# leakage diagnostics (notebook 01)
# --------------------------------------------------------------------------------------------
def future_in_train(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    r"""For each test row (in ``test``'s order): does train hold a *later* rating by the same user?

    :math:`\mathrm{leak}(u, t) = \mathbb 1[t < \max\{t' : (u, \cdot, t') \in \mathrm{train}\}]` — the test rating
    was made before the user's newest training rating, so a model fitted on train has seen that user's
    future. Ties in time do not count (the ratings were made at the same second). Test users absent from
    train cannot leak and get ``False``.
    """
    check_ratings(train, name="train", require_time=True)
    check_ratings(test, name="test", require_time=True, allow_empty=True)
    newest = train.groupby(USER)[TIME].max()
    limit = test[USER].map(newest).to_numpy(dtype=float)  # NaN for users unseen in train
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(test[TIME].to_numpy(dtype=float) < limit, nan=0).astype(bool)


def leakage_report(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    r"""How much of the future a split lets a model see, and how many test users/items it has never seen.

    Returns a dict with

    * ``train_ratings``, ``test_ratings``, ``test_users``, ``test_items`` — sizes;
    * ``cold_start_users`` / ``cold_start_items`` — test users / movies with no rating in train;
    * ``user_future_share`` — share of test ratings made before the same user's newest train rating
      (:func:`future_in_train`): :math:`\frac{1}{|T|}\sum_{(u,i,t) \in T} \mathbb 1[t < \max_{(u,\cdot,t')
      \in \mathrm{train}} t']`. 0 for per-user temporal splits, close to 1 for a random split (only a user's very last ratings can
      escape it);
    * ``global_future_share`` — share of test ratings made before the newest train rating of *anyone*:
      :math:`\frac{1}{|T|}\sum_{(u,i,t) \in T} \mathbb 1[t < \max_{\mathrm{train}} t']`. 0 only for a global
      temporal cut: any other split trains on ratings made after some test ratings.
    """
    check_ratings(train, name="train", require_time=True)
    check_ratings(test, name="test", require_time=True)
    user_leak = future_in_train(train, test)
    global_leak = test[TIME].to_numpy() < train[TIME].max()
    train_users, train_items = set(train[USER].unique()), set(train[ITEM].unique())
    test_users, test_items = test[USER].unique(), test[ITEM].unique()
    return {
        "train_ratings": int(len(train)),
        "test_ratings": int(len(test)),
        "test_users": int(len(test_users)),
        "test_items": int(len(test_items)),
        "cold_start_users": int(sum(u not in train_users for u in test_users)),
        "cold_start_items": int(sum(i not in train_items for i in test_items)),
        "user_future_share": float(user_leak.mean()),
        "global_future_share": float(global_leak.mean()),
    }


def item_cold_start_split(ratings: pd.DataFrame, share: float = 0.1, seed: int = 42):
    """Hold out a seeded random ``share`` of the rated films *entirely*: all their ratings go to test.

    Returns ``(train, test)``; no test film occurs in train (every test film is a cold-start item, the
    setting of :func:`recsys_course.evaluate.evaluate_cold_items`). Test users who have nothing left in train
    (all their ratings were on held-out films) are dropped from test, so every test user has a history to
    build a profile from.
    """
    from .checks import check_share

    check_ratings(ratings)
    check_share("item_cold_start_split", "share", share)
    films = np.sort(ratings[ITEM].unique())
    n_out = int(round(share * len(films)))
    if n_out == 0 or n_out == len(films):
        raise DataError(f"share={share} of {len(films)} films holds out {n_out}; choose a share that leaves films "
                        "on both sides")
    held = np.random.default_rng(seed).choice(films, size=n_out, replace=False)
    is_test = ratings[ITEM].isin(held).to_numpy()
    train, test = ratings[~is_test].copy(), ratings[is_test].copy()
    test = test[test[USER].isin(train[USER].unique())].copy()
    return train, test

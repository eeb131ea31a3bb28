"""Solutions to the exercises of notebook 00 (setup and data).

* ``00.dense_core_density`` — count ratings per user and per movie on the *full* frame, keep the users with at
  least ``min_user`` ratings (the rows of the block) and the movies with at least ``min_item`` ratings (its
  columns), and divide the number of ratings inside the block by rows × columns. A qualifying user with no
  rating on a qualifying movie is still a row (an empty one). With no rows or no columns the block is empty
  and the density is defined as 0. On MovieLens (100, 50) the block is 248 users × 450 movies and ≈ 28 %
  full — sixteen times denser than the whole matrix: the active users and popular movies are where the data is.
* ``00.half_star_share`` — a rating r is a half star when 2·r is odd; the mean of that boolean column is the
  share (≈ 30 % on MovieLens).
* ``00.busiest_year`` — turn the Unix-second timestamps into UTC years, count ratings per year and take the
  year with the largest count, the earliest one on a tie (2000 on MovieLens).
"""
from __future__ import annotations

import pandas as pd


def dense_core_density(ratings: pd.DataFrame, min_user: int, min_item: int) -> float:
    per_user = ratings.groupby("userId").size()
    per_item = ratings.groupby("movieId").size()
    users = per_user.index[per_user >= min_user]
    items = per_item.index[per_item >= min_item]
    if len(users) == 0 or len(items) == 0:
        return 0.0
    inside = ratings["userId"].isin(users) & ratings["movieId"].isin(items)
    return float(inside.sum()) / (len(users) * len(items))


def half_star_share(ratings: pd.DataFrame) -> float:
    doubled = (ratings["rating"] * 2).round().astype(int)
    return float((doubled % 2 == 1).mean())


def busiest_year(ratings: pd.DataFrame) -> int:
    years = pd.to_datetime(ratings["timestamp"], unit="s", utc=True).dt.year
    counts = years.value_counts()
    return int(counts[counts == counts.max()].index.min())


SOLUTIONS = {
    "00.dense_core_density": dense_core_density,
    "00.half_star_share": half_star_share,
    "00.busiest_year": busiest_year,
}

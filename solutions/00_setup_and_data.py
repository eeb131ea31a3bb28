"""Solutions to the exercises of notebook 00 (setup and data).

* ``00.dense_core_density`` — count ratings per user and per movie on the *full* frame, keep the users with at
  least ``min_user`` ratings (the rows of the block) and the movies with at least ``min_item`` ratings (its
  columns), and divide the number of ratings inside the block by rows × columns. A qualifying user with no
  rating on a qualifying movie is still a row (an empty one); measuring the density of the filtered ratings
  frame would drop it and overstate the density. With no rows or no columns the block is empty and the density
  is defined as 0. On MovieLens (100, 50) the block is 248 users × 450 movies and 28 % full — about 17 times
  denser than the whole matrix (1.7 %): the active users and popular movies are where the data is.
* ``00.half_stars_by_user`` — mark the half stars (2r is odd), take each user's share among their own ratings
  (a group mean per user), then the plain mean of those shares over the users. On MovieLens the average user
  gives 23.6 % of their ratings as half stars, while 30.1 % of all ratings are half stars: the share over
  ratings weighs each user by their number of ratings, so heavy raters pull it up — and on this data they use
  half stars more often (on average 33 % of their ratings for the 61 most active users, 22 % for the others).
  241 users (40 %) never gave a half star, and 237 of them gave all their ratings before 15 May 2003.
* ``00.top_rater_share`` — turn the Unix seconds into UTC calendar years, keep the ratings of ``year``, count
  them per user and divide the largest count by the number of ratings that year; a year without ratings gives
  0. On MovieLens one user gave 1,684 of 2017's 8,198 ratings (20.5 %) and, in 1998, 25.8 % of that year's
  507 ratings — the largest share of any year. A yearly count says more about a handful of users than about
  the site.
* ``00.selection_gap`` (experiment) — rebuild the synthetic world of section 6 with the same sizes and seed,
  changing only ``temperature``, and subtract the mean of ``true_ratings()`` over all pairs from the mean
  observed rating. The truth is the same for every temperature (it is drawn before the choices), so only the
  choice of what to rate moves the gap. In the lesson run: T = 0.5 → 1.11, T = 1 (section 6) → 0.72,
  T = 2 → 0.41, T = 1000 → about 0 (−0.0008). The pickier the users, the more the observed ratings overstate the
  average taste; when they choose at random, the observed ratings are an unbiased sample of the truth.
* ``quiz`` — the reasons are printed by ``show_solution("00.quiz")``.
"""
from __future__ import annotations

import pandas as pd

from recsys_course.synthetic import make_synthetic


def dense_core_density(ratings, min_user, min_item):
    per_user = ratings.groupby("userId").size()
    per_item = ratings.groupby("movieId").size()
    users = per_user.index[per_user >= min_user]
    items = per_item.index[per_item >= min_item]
    if len(users) == 0 or len(items) == 0:
        return 0.0
    inside = ratings["userId"].isin(users) & ratings["movieId"].isin(items)
    return float(inside.sum()) / (len(users) * len(items))


def half_star_share_by_user(ratings):
    half = (ratings["rating"] * 2).round() % 2 == 1
    return float(half.groupby(ratings["userId"]).mean().mean())


def top_rater_share(ratings, year):
    years = pd.to_datetime(ratings["timestamp"], unit="s", utc=True).dt.year
    in_year = ratings[years == year]
    if in_year.empty:
        return 0.0
    return float(in_year.groupby("userId").size().max() / len(in_year))


def selection_gap(n_users, n_items, ratings_per_user):
    gaps = {}
    for temperature in (0.5, 2.0, 1000.0):
        synth = make_synthetic(n_users=n_users, n_items=n_items, ratings_per_user=ratings_per_user,
                               temperature=temperature, seed=0)
        gaps[temperature] = float(synth.ratings["rating"].mean() - synth.true_ratings().mean())
    return gaps


SOLUTIONS = {
    "00.dense_core_density": dense_core_density,
    "00.half_stars_by_user": half_star_share_by_user,
    "00.top_rater_share": top_rater_share,
    "00.selection_gap": selection_gap,
    "00.quiz": {1: "b", 2: "b", 3: "c", 4: 38, 5: 0.75},
}

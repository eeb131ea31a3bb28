"""Solutions to the exercises of notebook 01 (evaluation).

* ``01.average_precision`` — at the j-th hit, at position p, the list cut there holds j hits in p films, so its
  precision is j / p. AP@k adds these terms for the hits within the first k positions and divides by
  min(|Rel|, k), the most hits a list of length k can hold (so a perfect list scores 1 even when the user has
  more relevant films than k). The worked example: (1/2 + 2/5) / 3 = 0.3.
* ``01.random_hit_rate`` — a list of k distinct films drawn at random misses every relevant film with
  probability C(n − r, k) / C(n, k) = ∏ (n − r − i) / (n − i) over i = 0 … k − 1, and the hit rate is 1 minus
  that. For the ranking track's typical user (about 6 relevant films among about 9,000 candidates) it is 0.0067:
  Popularity's 0.25 is about 37 times what chance gives, small as it looks. Drawing with replacement or
  multiplying k by r / n gives almost the same number here, but not for small catalogues.
* ``01.train_future_share`` — the oldest test timestamp of each user (``groupby().min()``), mapped onto the
  training rows; a row is from the user's future when its timestamp is strictly larger. Users with no test
  rating map to NaN and compare False. On section 2's random split 96.6 % of the training ratings were made
  after some test rating of the same user — the model learns mostly from the future it is asked to predict;
  the per-user splits and the global cut give 0.
* ``01.random_holdout`` (experiment) — ``split.validation_split(ratings, how="random", size=10, seed=0)`` holds
  out 10 random ratings of every user (every user has at least 20), then Popularity is fitted on the rest and
  scored with ``evaluate``. In the lesson run its NDCG@10 is 0.098 (hit rate 0.41) against 0.0545 (0.25) with
  each user's last 10 ratings: the same users and the same number of test ratings, only *which* ratings are
  held out changed, and the score is 1.8 times as high. A random hold-out flatters the ranking track as much
  as the random 20 % flattered section 3.
* ``quiz`` — the reasons are printed by ``show_solution("01.quiz")``.
"""
from __future__ import annotations

import math

from recsys_course import split
from recsys_course.evaluate import evaluate
from recsys_course.models import Popularity


def average_precision_from_hits(hit_positions, n_relevant, k):
    total = 0.0
    for j, position in enumerate(sorted(hit_positions), start=1):
        if position > k:
            break
        total += j / position
    return total / min(n_relevant, k)


def random_hit_rate(n_candidates, n_relevant, k):
    return 1.0 - math.comb(n_candidates - n_relevant, k) / math.comb(n_candidates, k)


def train_future_share(train, test):
    oldest = train["userId"].map(test.groupby("userId")["timestamp"].min())
    return float((train["timestamp"] > oldest).mean())


def random_holdout_ndcg(ratings):
    train, test = split.validation_split(ratings, how="random", size=10, seed=0)
    return float(evaluate(Popularity().fit(train), train, test)["ndcg@10"])


SOLUTIONS = {
    "01.average_precision": average_precision_from_hits,
    "01.random_hit_rate": random_hit_rate,
    "01.train_future_share": train_future_share,
    "01.random_holdout": random_holdout_ndcg,
    "01.quiz": {1: "c", 2: "b", 3: "a", 4: "b", 5: 1 / 32},
}

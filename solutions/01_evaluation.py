"""Solutions to the exercises of notebook 01 (evaluation).

* ``average_precision_at_k`` — walk down the top k; at every hit add the precision so far (hits / position);
  divide by ``min(|relevant|, k)``, the most hits a list of length k could have, so a perfect list scores 1
  even when the user has more than k relevant items.
* ``future_leak_share`` — the newest training timestamp of each user (``groupby().max()``), mapped onto the
  test rows; a row leaks when its own timestamp is strictly smaller. Users unseen in train map to NaN and
  compare False, so they count as non-leaking rows.
* ``reciprocal_rank_at_k`` — 1 / (position of the first relevant item in the top k), 0 when there is none.
"""
from __future__ import annotations

import pandas as pd


def average_precision_at_k(recommended, relevant, k: int) -> float:
    hits, total = 0, 0.0
    for position, item in enumerate(list(recommended)[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / position
    return total / min(len(relevant), k)


def future_leak_share(train: pd.DataFrame, test: pd.DataFrame) -> float:
    newest = test["userId"].map(train.groupby("userId")["timestamp"].max())
    return float((test["timestamp"] < newest).mean())


def reciprocal_rank_at_k(recommended, relevant, k: int) -> float:
    for position, item in enumerate(list(recommended)[:k], start=1):
        if item in relevant:
            return 1.0 / position
    return 0.0


SOLUTIONS = {
    "01.average_precision": average_precision_at_k,
    "01.future_leak_share": future_leak_share,
    "01.reciprocal_rank": reciprocal_rank_at_k,
}

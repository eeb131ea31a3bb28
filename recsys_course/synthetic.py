r"""A seeded synthetic world with known ground truth, for controlled experiments.

Every user has a latent taste vector :math:`p_u`, every item a vector :math:`q_i` (grouped into ``n_genres``
"genres", one cluster centre each). The true affinity is :math:`s_{ui} = p_u^\top q_i + b_i` and the
true rating is :math:`\mathrm{clip}(\mu + s_{ui} + \varepsilon)` rounded to half stars. Users pick what to
rate with probability :math:`\propto \exp(s_{ui}/T)` — they rate what they expect to like, so the ratings are
*missing not at random*, as in MovieLens.

Options: ``drift`` moves each user's taste along a random direction over time (interest drift); ``n_groups``
draws users from that many taste clusters and returns each user's group (group recommendation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import GENRES, ITEM, RATING, TIME, TITLE, USER

START = 1_262_304_000  # 2010-01-01 UTC
YEAR_SECONDS = 365 * 24 * 3600


@dataclass
class SyntheticData:
    """``ratings`` and ``movies`` as MovieLens-shaped frames, plus the truth that produced them."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    user_factors: np.ndarray       # (n_users, n_factors) taste at time 0
    user_factors_end: np.ndarray   # (n_users, n_factors) taste at the end of the period (= start if no drift)
    item_factors: np.ndarray       # (n_items, n_factors)
    item_bias: np.ndarray          # (n_items,)
    item_genre: np.ndarray         # (n_items,) genre index of each item
    user_group: np.ndarray | None  # (n_users,) group index, or None
    mu: float

    def true_scores(self, at: float = 0.0) -> np.ndarray:
        """True affinity of every user for every item at time fraction ``at`` (0 = start, 1 = end)."""
        p = (1 - at) * self.user_factors + at * self.user_factors_end
        return p @ self.item_factors.T + self.item_bias

    def true_ratings(self, at: float = 0.0) -> np.ndarray:
        return np.clip(self.mu + self.true_scores(at), 0.5, 5.0)


def make_synthetic(n_users: int = 200, n_items: int = 300, n_factors: int = 4, ratings_per_user: int = 30,
                   n_genres: int = 6, noise: float = 0.5, temperature: float = 1.0, drift: float = 0.0,
                   n_groups: int = 0, years: float = 2.0, seed: int = 0) -> SyntheticData:
    """Generate a synthetic MovieLens-like data set (see the module docstring). Same seed, same data."""
    if min(n_users, n_items, n_factors, ratings_per_user, n_genres) < 1:
        raise ValueError("n_users, n_items, n_factors, ratings_per_user and n_genres must all be >= 1")
    if ratings_per_user > n_items:
        raise ValueError(f"ratings_per_user={ratings_per_user} exceeds n_items={n_items}")
    if noise < 0 or temperature <= 0 or drift < 0 or n_groups < 0 or years <= 0:
        raise ValueError("need noise >= 0, temperature > 0, drift >= 0, n_groups >= 0 and years > 0")
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(n_factors)
    centres = rng.normal(0, 1, (n_genres, n_factors))
    item_genre = rng.integers(0, n_genres, n_items)
    q = (centres[item_genre] + 0.5 * rng.normal(0, 1, (n_items, n_factors))) * scale
    b_i = rng.normal(0, 0.3, n_items)
    if n_groups:
        group_centres = rng.normal(0, 1, (n_groups, n_factors))
        user_group = rng.integers(0, n_groups, n_users)
        p0 = group_centres[user_group] + 0.4 * rng.normal(0, 1, (n_users, n_factors))
    else:
        user_group = None
        p0 = rng.normal(0, 1, (n_users, n_factors))
    direction = rng.normal(0, 1, (n_users, n_factors))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    p1 = p0 + drift * direction * np.sqrt(n_factors)
    mu = 3.0

    rows = []
    for u in range(n_users):
        t = np.sort(rng.uniform(0, 1, ratings_per_user))  # the user's rating times as fractions of the period
        available = np.ones(n_items, dtype=bool)
        for frac in t:
            p = (1 - frac) * p0[u] + frac * p1[u]
            s = q @ p + b_i
            logits = np.where(available, s / temperature, -np.inf)
            prob = np.exp(logits - logits.max())
            prob /= prob.sum()
            i = rng.choice(n_items, p=prob)
            available[i] = False
            r = np.clip(np.round(2 * (mu + s[i] + rng.normal(0, noise))) / 2, 0.5, 5.0)
            rows.append((u + 1, i + 1, float(r), int(START + frac * years * YEAR_SECONDS)))
    ratings = pd.DataFrame(rows, columns=[USER, ITEM, RATING, TIME])
    genre_names = [f"genre_{g}" for g in range(n_genres)]
    movies = pd.DataFrame({ITEM: np.arange(1, n_items + 1), TITLE: [f"Item {i}" for i in range(1, n_items + 1)],
                           GENRES: [[genre_names[g]] for g in item_genre]})
    return SyntheticData(ratings, movies, p0, p1, q, b_i, item_genre, user_group, mu)

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

from .config import GENRES, ITEM, RATING, TIME, TITLE, USER, YEAR

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


def make_synthetic(n_users: int = 200, n_items: int = 300, n_factors: int = 4, ratings_per_user=30,
                   n_genres: int = 6, noise: float = 0.5, temperature: float = 1.0, drift: float = 0.0,
                   n_groups: int = 0, years: float = 2.0, seed: int = 0) -> SyntheticData:
    """Generate a synthetic MovieLens-like data set (see the module docstring). Same seed, same data.

    ``ratings_per_user`` is one count for every user or a sequence of ``n_users`` counts (a long-tailed
    activity, as in MovieLens: see :func:`movielens_shaped`).

    Without drift a user's tastes do not move, so the films she rates are drawn all at once: adding Gumbel
    noise to the logits :math:`s_{ui}/T` and keeping the ``k`` largest is exactly sampling ``k`` films without
    replacement with probability :math:`\\propto \\exp(s_{ui}/T)`, one after the other (the Gumbel-top-k trick,
    Kool et al. 2019), and the order of the keys is the order of the draws. That is what makes a million
    ratings take seconds. With drift the tastes change between two ratings, and each draw is made in turn.
    """
    counts = _counts(ratings_per_user, n_users, n_items)
    if min(n_users, n_items, n_factors, n_genres) < 1:
        raise ValueError("n_users, n_items, n_factors and n_genres must all be >= 1")
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

    draw = _draw_static if drift == 0 else _draw_drifting
    users, items, affinity, frac = draw(rng, counts, p0, p1, q, b_i, temperature)
    stars = np.clip(np.round(2 * (mu + affinity + rng.normal(0, noise, len(items)))) / 2, 0.5, 5.0)
    ratings = pd.DataFrame({USER: users + 1, ITEM: items + 1, RATING: stars.astype(np.float64),
                            TIME: (START + frac * years * YEAR_SECONDS).astype(np.int64)})
    genre_names = [f"genre_{g}" for g in range(n_genres)]
    year = np.random.default_rng([seed, 1]).integers(1920, 2010, n_items)  # a separate stream: tastes unchanged
    movies = pd.DataFrame({ITEM: np.arange(1, n_items + 1), TITLE: [f"Item {i}" for i in range(1, n_items + 1)],
                           YEAR: pd.array(year, dtype="Int64"), GENRES: [[genre_names[g]] for g in item_genre]})
    return SyntheticData(ratings, movies, p0, p1, q, b_i, item_genre, user_group, mu)


def _counts(ratings_per_user, n_users: int, n_items: int) -> np.ndarray:
    """Each user's number of ratings, checked: one int for everyone or one per user, each in 1..n_items."""
    counts = np.asarray(ratings_per_user)
    if counts.ndim == 0:
        counts = np.full(max(int(n_users), 0), counts)
    if counts.ndim != 1 or len(counts) != n_users or not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(f"ratings_per_user must be an integer or {n_users} integers (one per user), got "
                         f"{ratings_per_user!r:.80}")
    if len(counts) and counts.min() < 1:
        raise ValueError(f"every user needs at least 1 rating; ratings_per_user has {counts.min()}")
    if len(counts) and counts.max() > n_items:
        raise ValueError(f"ratings_per_user={counts.max()} exceeds n_items={n_items}")
    return counts.astype(np.int64)


def _draw_static(rng, counts, p0, p1, q, b_i, temperature, block: int = 512):
    """Gumbel-top-k draws for tastes that do not move; users in blocks, so memory stays block × items."""
    users, items, affinity, frac = [], [], [], []
    for start in range(0, len(counts), block):
        stop = min(start + block, len(counts))
        s = p0[start:stop] @ q.T + b_i
        keys = s / temperature + rng.gumbel(size=s.shape)
        order = np.argsort(-keys, axis=1, kind="stable")
        for row, u in enumerate(range(start, stop)):
            picked = order[row, :counts[u]]
            users.append(np.full(len(picked), u))
            items.append(picked)
            affinity.append(s[row, picked])
            frac.append(np.sort(rng.uniform(0, 1, len(picked))))
    return tuple(np.concatenate(x) if x else np.zeros(0) for x in (users, items, affinity, frac))


def _draw_drifting(rng, counts, p0, p1, q, b_i, temperature):
    """One draw at a time: the user's taste at the moment of each rating decides it."""
    n_items = len(q)
    users, items, affinity, frac = [], [], [], []
    for u, k in enumerate(counts):
        t = np.sort(rng.uniform(0, 1, k))  # the user's rating times as fractions of the period
        available = np.ones(n_items, dtype=bool)
        for at in t:
            s = q @ ((1 - at) * p0[u] + at * p1[u]) + b_i
            logits = np.where(available, s / temperature, -np.inf)
            prob = np.exp(logits - logits.max())
            i = rng.choice(n_items, p=prob / prob.sum())
            available[i] = False
            users.append(u)
            items.append(i)
            affinity.append(s[i])
            frac.append(at)
    return tuple(np.asarray(x) for x in (users, items, affinity, frac))


# --------------------------------------------------------------------------------------------
# MovieLens-shaped synthetic data sets: test code at a release's scale without downloading it
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """A MovieLens release's size: users, films and ratings, and each user's fewest and most ratings."""

    n_users: int
    n_items: int
    n_ratings: int
    min_per_user: int
    max_per_user: int


#: The published sizes (GroupLens' README of each release): ml-1m has 6,040 users, 3,706 rated films,
#: 1,000,209 ratings and 20 to 2,314 ratings per user; ml-latest-small 610 users, 9,724 films, 100,836 ratings.
SHAPES = {
    "1m": Shape(6_040, 3_706, 1_000_209, 20, 2_314),
    "small": Shape(610, 9_724, 100_836, 20, 2_698),
}


def activity(shape: Shape, seed: int = 0) -> np.ndarray:
    """Ratings per user with MovieLens' long tail: log-normal, clipped to the release's fewest and most, and
    adjusted (one rating at a time, on random users) so that they add up to exactly ``shape.n_ratings``."""
    rng = np.random.default_rng(seed)
    mean = shape.n_ratings / shape.n_users
    sigma = 1.0  # MovieLens' per-user counts: median about 0.6 × mean, i.e. a log-normal with sigma ≈ 1
    raw = rng.lognormal(np.log(mean) - sigma ** 2 / 2, sigma, shape.n_users)
    counts = np.clip(np.round(raw), shape.min_per_user, shape.max_per_user).astype(np.int64)
    while (gap := shape.n_ratings - int(counts.sum())) != 0:
        room = counts < shape.max_per_user if gap > 0 else counts > shape.min_per_user
        chosen = rng.choice(np.flatnonzero(room), size=min(abs(gap), int(room.sum())), replace=False)
        counts[chosen] += np.sign(gap)
    return counts


def movielens_shaped(name: str = "1m", seed: int = 0) -> SyntheticData:
    """Synthetic data with the size and per-user activity of a MovieLens release (``"1m"`` or ``"small"``):
    16 latent factors, 18 genres as in MovieLens. A million ratings take a few seconds."""
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; choose one of {list(SHAPES)}")
    shape = SHAPES[name]
    data = make_synthetic(n_users=shape.n_users, n_items=shape.n_items, n_factors=16,
                          ratings_per_user=activity(shape, seed), n_genres=18, years=3.0, seed=seed)
    data.movies[TITLE] = titles(data.item_genre, seed)
    return data


def titles(item_genre: np.ndarray, seed: int = 0, words_per_genre: int = 40, common_words: int = 200) -> list[str]:
    """Made-up film titles whose words carry a little of the genre, as real titles do ("Star Wars" and "Star
    Trek" share a word and a genre): one to four pseudo-words, each from the film's genre's own words with
    probability 0.6, else from a pool shared by all. Content and text models then have something to read."""
    rng = np.random.default_rng([seed, 2])
    syllables = np.array(["ka", "lo", "mi", "ra", "ten", "vo", "shi", "dor", "el", "an", "qu", "ris", "po", "la",
                          "mar", "ul", "zen", "fa", "bri", "ost"])

    def words(n):
        return ["".join(rng.choice(syllables, rng.integers(2, 4))).capitalize() for _ in range(n)]

    n_genres = int(item_genre.max()) + 1 if len(item_genre) else 0
    own = [words(words_per_genre) for _ in range(n_genres)]
    pool = words(common_words)
    out = []
    for g in item_genre:
        n = rng.integers(1, 5)
        out.append(" ".join(own[g][rng.integers(words_per_genre)] if rng.random() < 0.6 else
                            pool[rng.integers(common_words)] for _ in range(n)))
    return out


# --------------------------------------------------------------------------------------------
# embedding-like vectors, for nearest-neighbour search (notebook 11)
# --------------------------------------------------------------------------------------------
def synthetic_vectors(n: int, dim: int = 384, *, n_clusters: int | None = None, spread: float = 0.5,
                      seed: int = 0) -> np.ndarray:
    r"""``n`` unit vectors of dimension ``dim`` (float32), drawn around random cluster centres: stand-ins for
    the embeddings of a large catalogue, for timing and testing nearest-neighbour indexes.

    Vector :math:`x = (c_{z} + \varepsilon) / \lVert c_z + \varepsilon\rVert` with a centre :math:`c_z` (a random
    unit vector; the cluster :math:`z` uniform over ``n_clusters``, default :math:`\lceil\sqrt n\,\rceil`) and
    noise :math:`\varepsilon \sim \mathcal N(0, (\text{spread}^2/\text{dim}) I)`, so :math:`\lVert\varepsilon\rVert
    \approx` ``spread``: a vector's cosine with its centre is about :math:`1/\sqrt{1 + \text{spread}^2}`.

    Real embedding sets are clustered like this (films of a genre, sentences on a topic). Uniform random vectors in
    high dimension are the worst case for every approximate index — every vector is almost equally far from
    every other, so nothing narrows the search — and would make approximate search look worse than it is.

    Built block by block into one preallocated array (no copies): :math:`10^6 \times 384` takes a few seconds and
    the memory of the result (about 1.5 GB). Same arguments, same vectors.
    """
    from .checks import check_int, check_number

    check_int("synthetic_vectors", "n", n)
    check_int("synthetic_vectors", "dim", dim)
    check_int("synthetic_vectors", "n_clusters", n_clusters, allow_none=True)
    check_number("synthetic_vectors", "spread", spread)
    check_int("synthetic_vectors", "seed", seed, low=0)
    n_clusters = int(np.ceil(np.sqrt(n))) if n_clusters is None else n_clusters
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    scale = np.float32(spread / np.sqrt(dim))
    block = max(1, (1 << 22) // dim)
    for start in range(0, n, block):
        part = out[start:start + block]
        rng.standard_normal(part.shape, dtype=np.float32, out=part)
        part *= scale
        part += centres[rng.integers(0, n_clusters, len(part))]
        part /= np.linalg.norm(part, axis=1, keepdims=True)
    return out

r"""The feedback loop in the synthetic world: users can only rate what they are shown.

:func:`feedback_loop` runs rounds of *fit → recommend → users respond → the responses join the data* in a world
whose true tastes are known (:func:`recsys_course.synthetic.make_synthetic`). Round :math:`t`:

1. the model is fitted, from scratch, on every rating observed so far (``make_model()`` builds it);
2. each user gets ``k`` films they have not rated, the model's top k — except that each slot, with probability
   :math:`\varepsilon`, shows instead a film drawn uniformly from the user's unrated films not already in the list
   (ε-greedy exploration; :math:`\varepsilon = 1` is uniform random exploration);
3. the user responds to what is shown, and only to that (``response=``):

   * ``"rating"`` — they rate every film shown, as the world's users rate:
     :math:`r_{ui} = \mathrm{clip}(\mathrm{round}_{1/2}(\mu + s_{ui} + \varepsilon_{ui}))`,
     :math:`\varepsilon_{ui} \sim N(0, \text{noise}^2)`, with :math:`s_{ui}` the true affinity
     (:meth:`SyntheticData.true_scores`);
   * ``"click"`` — they open a shown film with probability :math:`\sigma(s_{ui})` and rate only what they open.

Recorded per round (columns of the returned frame):

* ``coverage`` — the share of the catalogue shown at least once, rounds 1..t (cumulative);
* ``gini`` — :func:`recsys_course.eda.gini` of every film's times shown, rounds 1..t (0 = equal exposure);
* ``utility`` — the mean true affinity :math:`s_{ui}` of the films shown this round (what the round delivered);
* ``precision`` — the share of the shown films that are among the user's true top ``k`` of the films they had
  not rated before the round (1 = the best possible list, whatever has been consumed);
* ``explored`` — the share of slots filled by exploration; ``observed`` — ratings known after the round.

Films never observed are not in the model's catalogue, so only exploration can ever show them: that is how the
loop narrows what is seen. Same world, model, arguments and seed → the same numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..checks import check_choice, check_int, check_number
from ..config import ITEM, RATING, TIME, USER
from ..eda import gini
from ..progress import progress as _progress
from ..synthetic import SyntheticData

__all__ = ["feedback_loop", "RESPONSES"]

#: how users respond to what they are shown
RESPONSES = ("rating", "click")


def feedback_loop(world: SyntheticData, make_model, *, rounds: int = 10, k: int = 10, epsilon: float = 0.0,
                  n_initial: int = 5, response: str = "rating", noise: float = 0.5, seed: int = 0,
                  progress: bool = False) -> pd.DataFrame:
    """Run the loop (see the module docstring) and return one row per round.

    Parameters
    ----------
    world : SyntheticData (:func:`~recsys_course.synthetic.make_synthetic`)
    make_model : a callable returning an unfitted course model (``Popularity``, ``lambda: ALS(n_factors=8)``);
        called once per round
    rounds : int ≥ 1
    k : int ≥ 1, films shown per user per round
    epsilon : share in [0, 1], the probability that a slot is explored
    n_initial : int ≥ 1, the ratings each user starts with: their first ``n_initial`` ratings of ``world``
        (chosen by the users themselves, by taste — the world's missing-not-at-random ratings)
    response : ``"rating"`` or ``"click"``
    noise : the standard deviation of the rating noise (the world's default is 0.5)
    seed : int, the exploration, rating-noise and click draws

    Returns
    -------
    DataFrame ``round, coverage, gini, utility, precision, explored, observed`` (round 1..rounds); ``attrs["shown"]``
    is the log, one row per slot shown: ``round, userId, movieId, explored, rated`` (the rating, NaN if not rated).

    Raises ValueError for rounds or k ≤ 0 (or k larger than a user's unrated films), ε outside [0, 1], a bad
    ``response``; TypeError when ``world`` is not a SyntheticData or ``make_model`` not callable.
    """
    if not isinstance(world, SyntheticData):
        raise TypeError(f"feedback_loop needs the synthetic world make_synthetic returns (true tastes known), got "
                        f"{type(world).__name__}")
    if not callable(make_model):
        raise TypeError(f"make_model must build an unfitted model when called (e.g. Popularity, or "
                        f"lambda: ALS(n_factors=8)), got {make_model!r}")
    check_int("feedback_loop", "rounds", rounds)
    check_int("feedback_loop", "k", k)
    check_int("feedback_loop", "n_initial", n_initial)
    check_int("feedback_loop", "seed", seed, low=0)
    check_number("feedback_loop", "noise", noise)
    check_choice("feedback_loop", "response", response, RESPONSES)
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.integer, np.floating)) \
            or not 0 <= epsilon <= 1:
        raise ValueError(f"feedback_loop: epsilon must be a probability between 0 and 1 (0: no exploration, 1: "
                         f"every slot random), got {epsilon!r}")
    true = world.true_scores()
    n_users, n_items = true.shape
    if n_initial + rounds * k > n_items:
        raise ValueError(f"feedback_loop: {n_initial} initial ratings + {rounds} rounds × k={k} films exceed the "
                         f"{n_items} films of the world; use fewer rounds or a smaller k")
    rng = np.random.default_rng(seed)
    first = world.ratings.sort_values([USER, TIME, ITEM], kind="stable").groupby(USER).head(n_initial)
    observed = first[[USER, ITEM, RATING]].assign(**{TIME: 0})
    rated = np.zeros((n_users, n_items), dtype=bool)
    rated[first[USER].to_numpy() - 1, first[ITEM].to_numpy() - 1] = True
    shown_count = np.zeros(n_items, dtype=np.int64)
    users = np.arange(1, n_users + 1)
    rows, logs = [], []
    for t in _progress(range(1, rounds + 1), desc="feedback loop", disable=not progress):
        model = make_model()
        model.fit(observed)
        lists, explored = _lists(model, users, rated, k, epsilon, rng)
        cols = lists - 1  # movieIds are 1..n_items
        u_rows = np.repeat(np.arange(n_users), k)
        flat = cols.ravel()
        s = true[u_rows, flat]
        # the best possible list: each user's true top k of the films they had not rated before the round
        masked = np.where(rated, -np.inf, true)
        kth = -np.sort(-masked, axis=1)[:, k - 1]
        precision = float(np.mean(s >= kth[u_rows]))
        if response == "rating":
            take = np.ones(len(flat), dtype=bool)
        else:
            take = rng.random(len(flat)) < 1 / (1 + np.exp(-s))
        stars = np.clip(np.round(2 * (world.mu + s + rng.normal(0, noise, len(flat)))) / 2, 0.5, 5.0)
        new = pd.DataFrame({USER: u_rows[take] + 1, ITEM: flat[take] + 1, RATING: stars[take], TIME: t})
        observed = pd.concat([observed, new], ignore_index=True)
        rated[u_rows[take], flat[take]] = True
        np.add.at(shown_count, flat, 1)
        rows.append({"round": t, "coverage": float(np.mean(shown_count > 0)), "gini": gini(shown_count),
                     "utility": float(s.mean()), "precision": precision, "explored": float(explored.mean()),
                     "observed": len(observed)})
        logs.append(pd.DataFrame({"round": t, USER: u_rows + 1, ITEM: flat + 1, "explored": explored.ravel(),
                                  "rated": np.where(take, stars, np.nan)}))
    out = pd.DataFrame(rows)
    out.attrs["shown"] = pd.concat(logs, ignore_index=True)
    return out


def _lists(model, users, rated, k, epsilon, rng):
    """Each user's k films (movieIds, users × k): the model's top k of their unrated films, each slot explored
    with probability ε (a uniform draw from the unrated films not already in the list)."""
    n_users, n_items = rated.shape
    scores = np.full((n_users, n_items), -np.inf)
    cols = model.item_positions(np.arange(1, n_items + 1))
    known = cols >= 0
    scores[:, known] = model.score(users)[:, cols[known]]
    scores[rated] = -np.inf
    explore = rng.random((n_users, k)) < epsilon
    lists = np.zeros((n_users, k), dtype=np.int64)
    for u in range(n_users):
        # the model's list; slots beyond what it can rank (too few catalogue films) are explored too
        order = np.argsort(-scores[u], kind="stable")[:k]
        finite = np.isfinite(scores[u, order])
        explore[u] |= ~finite
        picked = np.where(explore[u], -1, order)
        if explore[u].any():
            pool = np.flatnonzero(~rated[u])
            pool = pool[~np.isin(pool, picked[picked >= 0])]
            picked[explore[u]] = rng.choice(pool, size=int(explore[u].sum()), replace=False)
        lists[u] = picked + 1
    return lists, explore

r"""Several domains: one catalogue cut in two by genre, and recommending across the cut (notebook 13, section 4).

A *domain* is a set of films. MovieLens has one catalogue, so two domains are made from it by genre
(:func:`genre_domains`): e.g. Drama + Comedy as the **source** (where users have a long history) and
Horror + Sci-Fi as the **target** (where we want to recommend). :func:`overlap_table` counts, for candidate
pairs, what transfer needs: films and ratings per domain, users active in both, users with a long target history.

**The protocol** (:func:`domain_split`). Test users are a seeded random share of the users with at least
``min_target`` target ratings (and ``min_source`` source ratings). Each keeps its first ``n`` target ratings in time in train; its target
ratings from position ``test_after`` on (by default ``n``) are the test; every source rating and every other
user's target ratings are train. With ``test_after`` fixed at the largest ``n`` compared, every ``n`` is scored
on the same test ratings. Ranking: the target films other users rated in train (the candidates) minus the films the user rated in
train; relevant = a test rating :math:`\ge 4`; NDCG@k and HR@k per user (:func:`per_user_ranking`, built on
:mod:`recsys_course.metrics`).

**Transfer through the users** (:class:`SourceToTarget`). With :math:`R_s` the users × source-films rating matrix
(missing = 0) and PureSVD's :math:`R_s \approx U_k \Sigma_k V_k^\top`, every user carries the source vector

.. math:: p_u = r^{s}_u V_k \qquad (= (U_k \Sigma_k)_u),

which exists with no target rating at all. The target films' factors are learned with the users fixed, by one
half-step of implicit ALS (:func:`recsys_course.models.factorization.implicit_als_half_step`): every (user,
target film) cell counts, preference :math:`\pi_{ui} = \mathbb 1[r_{ui} \text{ observed}]`, confidence
:math:`c_{ui} = 1 + \alpha r_{ui}`,

.. math:: q_i = \big(P^\top C_i P + \lambda I\big)^{-1} P^\top C_i\, \pi_i, \qquad s_{ui} = p_u^\top q_i .

The target films' factors see the test user's first ``n`` target ratings (they are in train), the user's own
vector does not: it is the source's. Merging both domains into one PureSVD (users shared) is the simplest
alternative that uses both.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import check_choice, check_int, check_number, is_number, require_known_users
from .config import GENRES, ITEM, RATING, RELEVANCE_THRESHOLD, TIME, USER
from .data import DataError, check_ratings
from .drift import NO_GENRE
from .metrics import hit_rate_from_hits, ndcg_from_hits, top_k
from .models.base import Recommender
from .models.factorization import PureSVD, implicit_als_half_step

__all__ = ["BOTH_CHOICES", "Domains", "genre_domains", "overlap_table", "DomainSplit", "domain_split",
           "candidate_scores", "per_user_ranking", "SourceToTarget"]

#: Users whose (user, film) pairs ``candidate_scores`` sends to ``predict`` at once (memory: pairs × model size).
_PREDICT_USERS = 16

#: Where a film carrying genres of both lists goes: to the target, to the source, or to neither.
BOTH_CHOICES = ("target", "source", "drop")


# --------------------------------------------------------------------------------------------
# two domains from one catalogue
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Domains:
    """Two disjoint sets of films: ``source_items`` and ``target_items`` (sorted movieIds).

    ``n_both`` films carry genres of both lists; ``both`` says where they went (:data:`BOTH_CHOICES`).
    """

    source_genres: tuple[str, ...]
    target_genres: tuple[str, ...]
    source_items: np.ndarray
    target_items: np.ndarray
    n_both: int
    both: str

    @property
    def name(self) -> str:
        """``"Drama+Comedy → Horror+Sci-Fi"``."""
        return f"{'+'.join(self.source_genres)} → {'+'.join(self.target_genres)}"

    def domain_of(self, items) -> np.ndarray:
        """``"source"``, ``"target"`` or ``""`` (in neither) for each movieId."""
        items = np.asarray(items)
        out = np.full(items.shape, "", dtype=object)
        out[np.isin(items, self.source_items)] = "source"
        out[np.isin(items, self.target_items)] = "target"
        return out


def _genre_list(value, name: str) -> tuple[str, ...]:
    genres = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else None
    if not genres or not all(isinstance(g, str) for g in genres):
        raise ValueError(f"{name} must be a genre name or a non-empty list of genre names, e.g. ['Drama', "
                         f"'Comedy'], got {value!r}")
    return tuple(dict.fromkeys(genres))


def genre_domains(movies: pd.DataFrame, source, target, both: str = "target") -> Domains:
    """Cut the catalogue into a source and a target domain by genre.

    A film belongs to the source if it has any genre of ``source``, to the target if it has any genre of
    ``target``; a film with genres of both lists goes where ``both`` says (``"target"``: the target domain is
    every film of its genres and the source keeps none of them, so whatever transfers is not the target's own
    genres in disguise; ``"source"``; ``"drop"``: to neither). Films with neither list's genres are left out.

    Raises
    ------
    ValueError
        For a genre absent from ``movies`` (the message lists the genres there are), the same genre in both
        lists, an unknown ``both``, or a domain without films.
    """
    if ITEM not in movies.columns or GENRES not in movies.columns:
        raise ValueError(f"movies needs the columns '{ITEM}' and '{GENRES}' (a list of genres per film, as "
                         "load_dataset() returns them)")
    source, target = _genre_list(source, "source"), _genre_list(target, "target")
    check_choice("genre_domains", "both", both, BOTH_CHOICES)
    lists = [set(g) if isinstance(g, (list, tuple, np.ndarray)) else set() for g in movies[GENRES]]
    known = sorted(set().union(*lists) - {NO_GENRE})
    unknown = [g for g in source + target if g not in known]
    if unknown:
        raise ValueError(f"unknown genre(s) {unknown}: the genres of this catalogue are {known} (names are "
                         "case-sensitive)")
    shared = sorted(set(source) & set(target))
    if shared:
        raise ValueError(f"genre(s) {shared} are in both source and target; the two lists must not overlap — "
                         "remove them from one list")
    ids = movies[ITEM].to_numpy()
    in_source = np.array([bool(g & set(source)) for g in lists])
    in_target = np.array([bool(g & set(target)) for g in lists])
    in_both = in_source & in_target
    if both == "target":
        in_source &= ~in_both
    elif both == "source":
        in_target &= ~in_both
    else:
        in_source &= ~in_both
        in_target &= ~in_both
    for side, mask, genres in (("source", in_source, source), ("target", in_target, target)):
        if not mask.any():
            raise ValueError(f"the {side} domain {list(genres)} has no film (with both={both!r}); choose "
                             "more or other genres, or another value of both")
    return Domains(source, target, np.sort(ids[in_source]), np.sort(ids[in_target]), int(in_both.sum()), both)


def overlap_table(ratings: pd.DataFrame, movies: pd.DataFrame, pairs, both: str = "target",
                  min_target: int = 20) -> pd.DataFrame:
    """What each candidate (source genres, target genres) pair offers for transfer, one row per pair.

    Columns: ``source films``, ``target films``, ``films in both lists`` (placed per ``both``), ``source
    ratings``, ``target ratings``, ``users in both`` (at least one rating in each domain) and ``users ≥
    {min_target} target`` (of those, the ones with at least ``min_target`` target ratings: the possible test
    users). ``pairs`` is a list of ``(source, target)`` genre lists, each checked as in :func:`genre_domains`.
    """
    check_ratings(ratings)
    check_int("overlap_table", "min_target", min_target)
    rows = {}
    for source, target in pairs:
        d = genre_domains(movies, source, target, both=both)
        side = d.domain_of(ratings[ITEM].to_numpy())
        per_user = pd.crosstab(ratings[USER], side)
        n_src = per_user.get("source", pd.Series(0, index=per_user.index))
        n_tgt = per_user.get("target", pd.Series(0, index=per_user.index))
        active = (n_src > 0) & (n_tgt > 0)
        rows[d.name] = {"source films": len(d.source_items), "target films": len(d.target_items),
                        "films in both lists": d.n_both, "source ratings": int((side == "source").sum()),
                        "target ratings": int((side == "target").sum()), "users in both": int(active.sum()),
                        f"users ≥ {min_target} target": int((active & (n_tgt >= min_target)).sum())}
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------------------------
# the protocol
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DomainSplit:
    """``train`` (every source rating, the target ratings the protocol keeps), ``test`` (the test users' held-out
    target ratings), ``users`` (the test users, sorted), ``candidates`` (the target films some *other* user rated
    in train, sorted: what every method ranks, the same for every ``n``) and the ``domains``."""

    train: pd.DataFrame
    test: pd.DataFrame
    users: np.ndarray
    candidates: np.ndarray
    domains: Domains


def domain_split(ratings: pd.DataFrame, domains: Domains, n: int, *, test_after: int | None = None,
                 min_target: int = 30, min_source: int = 1, share: float = 0.5, seed: int = 42) -> DomainSplit:
    """The cross-domain protocol: test users keep only their first ``n`` target ratings (in time) in train.

    * eligible users: at least ``min_target`` target ratings and ``min_source`` source ratings; the test users
      are a random ``share`` of them (seeded, the same for every ``n``), so that the target domain keeps users
      with long histories to learn from (``share=1``: every eligible user);
    * a test user's target ratings at positions ``0 .. n-1`` (time order, ties by movieId) are train, those from
      position ``test_after`` (default ``n``) on are the test, the ones in between are left out — so that with
      ``test_after`` = the largest ``n`` compared, every ``n`` is scored on the same test ratings;
    * every source rating and every other user's target ratings are train; ratings of films in neither
      domain are dropped.

    Raises
    ------
    ValueError
        If ``n < 0``, ``test_after < n``, ``min_target <= test_after`` (a test user would have nothing to test) or
        ``share`` is not in (0, 1].
    DataError
        If no user qualifies as a test user (lower ``min_target``, or choose domains with more overlap).
    """
    check_ratings(ratings, require_time=True)
    check_int("domain_split", "n", n, low=0)
    test_after = n if test_after is None else test_after
    check_int("domain_split", "test_after", test_after, low=n)
    check_int("domain_split", "min_target", min_target, low=test_after + 1)
    check_int("domain_split", "min_source", min_source, low=0)
    check_int("domain_split", "seed", seed, low=0)
    if not (is_number(share) and 0 < share <= 1):
        raise ValueError(f"domain_split: share must be a number in (0, 1] (the share of eligible users held out "
                         f"as test users), got {share!r}")
    side = domains.domain_of(ratings[ITEM].to_numpy())
    kept = ratings[side != ""].assign(_side=side[side != ""])
    target = kept[kept["_side"] == "target"].sort_values([USER, TIME, ITEM], kind="stable")
    n_tgt = target.groupby(USER).size()
    n_src = kept[kept["_side"] == "source"].groupby(USER).size().reindex(n_tgt.index, fill_value=0)
    eligible = np.sort(n_tgt.index[(n_tgt >= min_target) & (n_src >= min_source)].to_numpy())
    if len(eligible) == 0:
        raise DataError(f"no user has >= {min_target} target ratings and >= {min_source} source ratings in "
                        f"{domains.name}; lower min_target or choose domains with more overlap")
    n_test = max(1, int(round(share * len(eligible))))
    users = np.sort(np.random.default_rng(seed).choice(eligible, size=n_test, replace=False))
    position = target.groupby(USER).cumcount().to_numpy()
    is_test_user = target[USER].isin(users).to_numpy()
    held = is_test_user & (position >= test_after)
    dropped = is_test_user & (position >= n) & ~held
    columns = list(ratings.columns)
    train = pd.concat([kept.loc[kept["_side"] == "source", columns], target.loc[~held & ~dropped, columns]])
    train = train.sort_index(kind="stable")
    test = target.loc[held, columns].sort_index(kind="stable")
    candidates = np.sort(target.loc[~is_test_user, ITEM].unique())
    return DomainSplit(train, test, users, candidates, domains)


# --------------------------------------------------------------------------------------------
# scoring and metrics
# --------------------------------------------------------------------------------------------
def candidate_scores(model, users, items, fallback=None) -> np.ndarray:
    """Scores ``(len(users), len(items))`` of a fitted model for the given films, in their order.

    Films in the model's catalogue come from ``score``; the others from ``predict`` (a text model scores any
    film with a text; a factor model gives ``-inf``). Users the model does not know get the rows of
    ``fallback`` (a fitted model that handles new users, e.g. the target domain's Popularity); without one,
    an unknown user raises :class:`~recsys_course.models.base.UnknownIdError`.
    """
    users, items = np.asarray(users), np.asarray(items)
    known = model.user_positions(users) >= 0
    out = np.empty((len(users), len(items)))
    if fallback is not None and not known.all():
        out[~known] = candidate_scores(fallback, users[~known], items)
        users_here = users[known]
    else:
        users_here, known = users, np.ones(len(users), dtype=bool)
    cols = model.item_positions(items)
    block = np.full((len(users_here), len(items)), -np.inf)
    if len(users_here):
        inside = cols >= 0
        block[:, inside] = model.score(users_here)[:, cols[inside]]
        outside = items[~inside]
        for start in range(0, len(users_here) if len(outside) else 0, _PREDICT_USERS):
            some = users_here[start:start + _PREDICT_USERS]
            pairs = model.predict(np.repeat(some, len(outside)), np.tile(outside, len(some)))
            block[start:start + len(some), ~inside] = pairs.reshape(len(some), len(outside))
    out[known] = block
    return out


def per_user_ranking(scores: np.ndarray, users, items, train: pd.DataFrame, test: pd.DataFrame, k: int = 10,
                     relevance_threshold: float = RELEVANCE_THRESHOLD) -> pd.DataFrame:
    r"""NDCG@k and HR@k of every test user, ranking ``items`` by ``scores`` (one row per user of ``users``).

    The films a user rated in ``train`` are excluded; relevant = the user's ``test`` ratings
    :math:`\ge` ``relevance_threshold``, also those of films outside ``items`` (they can only be misses, as in
    :func:`recsys_course.evaluate.evaluate`); ties go to the lower column (:func:`recsys_course.metrics.top_k`).
    The formulas are :func:`recsys_course.metrics.ndcg_from_hits` and ``hit_rate_from_hits``, one user at a
    time. Users without a relevant test film are left out. Returns a frame indexed by userId with columns
    ``ndcg@k``, ``hit@k`` (their means are the usual metrics; their standard errors are the noise).
    """
    check_int("per_user_ranking", "k", k)
    check_number("per_user_ranking", "relevance_threshold", relevance_threshold)
    users, items = np.asarray(users), np.asarray(items)
    scores = np.array(scores, dtype=np.float64)
    if scores.shape != (len(users), len(items)):
        raise ValueError(f"scores has shape {scores.shape} but there are {len(users)} users and {len(items)} "
                         "items; pass one row per user and one column per item, in their order")
    relevant = test[test[RATING] >= relevance_threshold]
    rel_sets = relevant.groupby(USER)[ITEM].apply(set)
    keep = np.isin(users, rel_sets.index)
    if not keep.any():
        raise DataError(f"no user of users has a test rating >= {relevance_threshold}: nothing to rank")
    users, scores = users[keep], scores[keep]
    u_pos = pd.Index(users).get_indexer(train[USER])
    i_pos = pd.Index(items).get_indexer(train[ITEM])
    seen = (u_pos >= 0) & (i_pos >= 0)
    scores[u_pos[seen], i_pos[seen]] = -np.inf
    top = top_k(scores, k)
    ranked = items[top]
    finite = np.isfinite(np.take_along_axis(scores, top, 1))
    hits = np.zeros((len(users), k), dtype=bool)
    hits[:, :top.shape[1]] = [[i in rel_sets[u] for i in row] for u, row in zip(users, ranked)]
    hits[:, :top.shape[1]] &= finite
    n_rel = np.array([len(rel_sets[u]) for u in users])
    per_user = {f"ndcg@{k}": [ndcg_from_hits(hits[r:r + 1], n_rel[r:r + 1]) for r in range(len(users))],
                f"hit@{k}": [hit_rate_from_hits(hits[r:r + 1], n_rel[r:r + 1]) for r in range(len(users))]}
    return pd.DataFrame(per_user, index=pd.Index(users, name=USER))


# --------------------------------------------------------------------------------------------
# transfer through the users' vectors
# --------------------------------------------------------------------------------------------
class SourceToTarget(Recommender):
    r"""Users' vectors learned on the source domain, carried over to the target domain.

    1. PureSVD on the source ratings of train (the rows whose film is not in ``target_items``):
       :math:`p_u = r^s_u V_k`, one vector per user with a source rating (0 for the others).
    2. Target films' factors with the users fixed, one half-step of implicit ALS over every (user, target film)
       cell: :math:`q_i = (P^\top C_i P + \lambda I)^{-1} P^\top C_i \pi_i`, :math:`c_{ui} = 1 + \alpha r_{ui}`.

    Score :math:`s_{ui} = p_u^\top q_i` for a target film; for a source film PureSVD's own
    :math:`p_u^\top v_i`. The columns of ``score`` are the whole catalogue of train (both domains): rank the
    target films with :func:`candidate_scores`. A user with neither a source nor a target rating in train does
    not exist for the model; ``recommend`` and ``score`` raise :class:`~recsys_course.models.base.UnknownIdError`
    for users absent from train, ``predict`` gives them 0 and unknown films ``-inf``.

    ``n_factors`` (PureSVD's default), ``reg`` and ``alpha`` (ImplicitALS' defaults) are the values tuned in
    notebook 04; cost: one sparse SVD of the source and one :math:`O(\mathrm{nnz}_t k^2 + n_t k^3)` half-step.

    After ``fit``: ``source_`` (the fitted PureSVD), ``user_factors_`` (n_users × k), ``item_factors_``
    (n_items × k), ``is_target_`` (bool per catalogue film), ``fit_seconds_``.
    """

    def __init__(self, target_items=None, n_factors: int = 32, reg: float = 10.0, alpha: float = 0.3,
                 seed: int = 0):
        self.target_items = target_items
        self.n_factors = n_factors
        self.reg = reg
        self.alpha = alpha
        self.seed = seed

    def _fit(self, train, users, items):
        if self.target_items is None:
            raise TypeError("SourceToTarget needs target_items: pass target_items=domains.target_items (the "
                            "movieIds of the target domain, from recsys_course.domains.genre_domains)")
        check_int(self, "n_factors", self.n_factors)
        check_number(self, "reg", self.reg, positive=True)
        check_number(self, "alpha", self.alpha)
        check_int(self, "seed", self.seed, low=0)
        start = time.perf_counter()
        self.is_target_ = np.isin(self.item_ids_, np.asarray(self.target_items))
        on_target = self.is_target_[items]
        if on_target.all() or not on_target.any():
            side = "source" if on_target.all() else "target"
            raise DataError(f"SourceToTarget: train has no {side} rating; it needs ratings of both domains "
                            "(target films = target_items, source films = the rest)")
        self.source_ = PureSVD(n_factors=self.n_factors, seed=self.seed).fit(train[~on_target])
        P = np.zeros((self.n_users, self.n_factors))
        P[self.user_positions(self.source_.user_ids_)] = self.source_.user_factors_
        target_cols = np.flatnonzero(self.is_target_)
        col = np.full(self.n_items, -1)
        col[target_cols] = np.arange(len(target_cols))
        R = sp.csr_matrix((train[RATING].to_numpy(np.float64)[on_target], (users[on_target], col[items[on_target]])),
                          shape=(self.n_users, len(target_cols)))
        Q = implicit_als_half_step(R.T.tocsr(), P, self.reg, self.alpha)
        F = np.zeros((self.n_items, self.n_factors))
        F[target_cols] = Q
        F[self.item_positions(self.source_.item_ids_)] = self.source_.item_factors_
        self.user_factors_, self.item_factors_ = P, F
        self.fit_seconds_ = time.perf_counter() - start

    def _predict(self, users, items):
        out = np.where(items >= 0, 0.0, -np.inf)
        ok = (users >= 0) & (items >= 0)
        out[ok] = np.einsum("nk,nk->n", self.user_factors_[users[ok]], self.item_factors_[items[ok]])
        return out

    def _score_users(self, users):
        require_known_users(self, users)
        return self.user_factors_[users] @ self.item_factors_.T

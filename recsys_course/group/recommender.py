r"""One list for a whole group, from any fitted model of the course.

Two ways to recommend to a group (Jameson & Smyth 2007, "Recommendation to groups", The Adaptive Web):

* **score aggregation** — every member's scores from the base model (``base_model.score(members)``), combined
  per film by a strategy of :mod:`recsys_course.group.strategies`, or into a fair list (:func:`fair_list`);
* **profile aggregation** — the members' histories merged into one pseudo-user, whom the base model scores
  with its own fold-in (:func:`profile_scores`: EASE, TextProfile, ALS).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..checks import check_choice, check_int, check_number
from ..config import GROUP, ITEM, RANK, SCORE, USER
from ..metrics import top_k
from ..models.base import NotFittedError, Recommender, UnknownIdError
from .groups import as_groups, group_members
from .strategies import STRATEGIES, aggregate, check_strategy_params, fair_list, rank_normalise

__all__ = ["GroupRecommender", "profile_scores", "PROFILE_MODELS", "GROUP_STRATEGIES", "EXCLUDE_SEEN", "NORMALISE"]

#: the strategies of :class:`GroupRecommender`: the score aggregations, then profile aggregation and the fair list
GROUP_STRATEGIES = STRATEGIES + ("profile", "fair")
EXCLUDE_SEEN = ("any", "all", "none")
#: how each member's scores may be put on a common scale before a score strategy (None: as the model gives them)
NORMALISE = (None, "rank")
#: the models whose own fold-in :func:`profile_scores` uses
PROFILE_MODELS = ("EASE", "TextProfile", "ALS")
#: groups whose members are scored at once (memory: their distinct members × n_items floats)
_GROUP_BATCH = 256


def _check_base(base_model) -> None:
    if not isinstance(base_model, Recommender):
        raise TypeError(f"base_model must be a fitted model of the course (recsys_course.models), got "
                        f"{type(base_model).__name__}")
    if not base_model.is_fitted:
        raise NotFittedError(f"the base model {type(base_model).__name__} is not fitted yet: call "
                             "base_model.fit(train) first, then build the group recommender on it")


def _member_positions(model, groups, unknown: str = "raise"):
    """(group ids, member ids per group, member positions per group), unknown members raised or dropped.

    A model that handles unknown users (Popularity, BiasBaseline) keeps them (position -1, nothing seen).
    """
    frame = as_groups(groups)
    pos = model.user_positions(frame[USER])
    if (pos < 0).any() and not model.handles_unknown_users:
        bad = pd.unique(frame[USER].to_numpy()[pos < 0])
        if unknown == "raise":
            raise UnknownIdError(
                f"{type(model).__name__} has never seen {len(bad)} group member(s) (e.g. {bad[:5].tolist()}), so it "
                "cannot score them: pass unknown='drop' to leave them out of their groups, or refit the base "
                "model on ratings that include them")
        keep = pos >= 0
        emptied = np.asarray(sorted(set(frame[GROUP]) - set(frame.loc[keep, GROUP]), key=str)).tolist()
        if emptied:
            raise ValueError(f"group(s) {emptied[:5]} have no member the model knows, so unknown='drop' leaves them "
                             "empty; remove those groups, or refit the base model with their members")
        frame = frame[keep]
    gids, members = group_members(frame)
    return gids, members, [model.user_positions(m) for m in members]


def _seen_mask(model, positions: np.ndarray, exclude_seen: str) -> np.ndarray | None:
    """Films to rule out for one group (bool, n_items), or None: seen by any / every member of ``positions``."""
    if exclude_seen == "none":
        return None
    known = positions[positions >= 0]
    count = np.asarray(model.seen_[known].sum(0)).ravel()
    return count > 0 if exclude_seen == "any" else count >= len(positions)


class GroupRecommender:
    r"""Recommend one list per group from a fitted base model.

    For a group :math:`g` with members :math:`m = 1..M`, the members' scores :math:`s_{mi}` come from
    ``base_model.score(members)`` (columns = ``base_model.item_ids_``); films ruled out by ``exclude_seen`` are
    set to :math:`-\infty` for every member; then

    * a score strategy of :data:`~recsys_course.group.strategies.STRATEGIES` gives
      :math:`G_i = \mathrm{aggregate}(s_{\cdot i})` and the list is the top k of :math:`G` (with
      ``normalise="rank"``, of each member's percentiles :func:`~recsys_course.group.strategies.rank_normalise`
      instead of the raw scores);
    * ``"profile"`` scores the merged history instead (:func:`profile_scores`; EASE, TextProfile or ALS);
    * ``"fair"`` builds the list with :func:`~recsys_course.group.strategies.fair_list` (``balance=``), and its
      ``score`` column is the fairness objective after adding each film (not a per-film score).

    Ties are broken by catalogue position (ascending movieId). A group of one member with ``"average"`` gets
    exactly the base model's own ``recommend`` list.

    Parameters
    ----------
    base_model : a fitted model of :mod:`recsys_course.models`
    strategy : str
        One of :data:`GROUP_STRATEGIES`.
    exclude_seen : "any", "all" or "none"
        Rule out the films *any* member rated in train (the default: nobody has to sit through a film again),
        only those *every* member rated, or none.
    unknown : "raise" or "drop"
        Members the base model never saw: raise :class:`UnknownIdError` (naming them), or leave them out of
        their groups (a group left empty raises). A model that handles new users (Popularity, BiasBaseline)
        scores them with its fallback instead.
    normalise : None or "rank"
        Score strategies only: ``"rank"`` replaces each member's scores by their percentile among the group's
        candidates, in (0, 1] (:func:`~recsys_course.group.strategies.rank_normalise`), so that a threshold, a
        product or a minimum compares members on one scale — needed for a ranking model such as EASE, whose
        scores are not ratings and grow with a user's history. Thresholds are then percentiles (0.9 = the
        member's top 10 %).
    **params
        ``threshold=`` for ``average_without_misery`` / ``approval`` — checked against (0, 1) with
        ``normalise="rank"``, else against ``base_model.rating_range_`` when the base model predicts ratings;
        ``balance=`` (in [0, 1], default 0) for ``"fair"``.

    Raises
    ------
    NotFittedError
        The base model is not fitted (fit it first).
    TypeError
        Not a model of the course; a missing / superfluous parameter; ``"profile"`` on an unsupported model.
    ValueError
        Unknown strategy (lists the valid ones), ``exclude_seen``, ``unknown`` or ``normalise``; ``normalise``
        with ``"profile"`` or ``"fair"``; a threshold outside the rating scale (or outside 0–1 with
        ``normalise="rank"``); a bad balance.
    """

    def __init__(self, base_model, strategy: str = "average", *, exclude_seen: str = "any", unknown: str = "raise",
                 normalise: str | None = None, **params):
        _check_base(base_model)
        check_choice("GroupRecommender", "strategy", strategy, GROUP_STRATEGIES)
        check_choice("GroupRecommender", "exclude_seen", exclude_seen, EXCLUDE_SEEN)
        check_choice("GroupRecommender", "unknown", unknown, ("raise", "drop"))
        check_choice("GroupRecommender", "normalise", normalise, NORMALISE)
        if normalise is not None and strategy in ("profile", "fair"):
            raise ValueError(f"GroupRecommender: normalise= applies to the score strategies only; {strategy!r} "
                             + ("scores a merged history" if strategy == "profile" else
                                "normalises each member's scores itself (min-max)") + ": drop normalise=")
        self.base_model = base_model
        self.strategy = strategy
        self.exclude_seen = exclude_seen
        self.unknown = unknown
        self.normalise = normalise
        if strategy == "fair":
            extra = sorted(set(params) - {"balance"})
            if extra:
                raise TypeError(f"GroupRecommender: strategy 'fair' takes only balance=, not {extra}")
            self.balance = float(check_number("GroupRecommender", "balance", params.get("balance", 0.0)))
            fair_list(np.zeros((1, 1)), 1, balance=self.balance)  # checks balance <= 1
            self.params = {"balance": self.balance}
        elif strategy == "profile":
            if params:
                raise TypeError(f"GroupRecommender: strategy 'profile' takes no parameters, got {sorted(params)}")
            _profile_kind(base_model)
            self.params = {}
        else:
            scale = (0.0, 1.0) if normalise == "rank" else base_model.rating_range_ if base_model.predicts_ratings \
                else None
            self.params = check_strategy_params(strategy, params, scale)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items())
        if self.normalise is not None:
            extra = f", normalise={self.normalise!r}{extra}"
        return (f"GroupRecommender({type(self.base_model).__name__}, {self.strategy!r}, "
                f"exclude_seen={self.exclude_seen!r}{extra})")

    def _member_scores(self, positions_list, members_list):
        """Yield each group's (member scores with the excluded films at -inf, positions), in batches."""
        model = self.base_model
        for start in range(0, len(members_list), _GROUP_BATCH):
            batch = members_list[start:start + _GROUP_BATCH]
            ids, inverse = np.unique(np.concatenate(batch), return_inverse=True)
            scores = model.score(ids)
            bounds = np.cumsum([0] + [len(m) for m in batch])
            for j in range(len(batch)):
                block = scores[inverse[bounds[j]:bounds[j + 1]]]
                positions = positions_list[start + j]
                mask = _seen_mask(model, positions, self.exclude_seen)
                if mask is not None:
                    block[:, mask] = -np.inf
                yield block

    def group_scores(self, groups) -> tuple[np.ndarray, np.ndarray]:
        """Every film's group score, after the exclusion of seen films (``-inf``).

        Parameters
        ----------
        groups : DataFrame ``groupId, userId`` or mapping ``{groupId: [userId, ...]}`` (:func:`as_groups`)

        Returns
        -------
        (group ids in input order, array (n_groups, n_items)); column j is ``base_model.item_ids_[j]``.

        Raises
        ------
        ValueError
            For ``"fair"``, which builds a list rather than a score per film (use :meth:`recommend`); bad groups.
        UnknownIdError
            A member unknown to the base model with ``unknown="raise"``.
        """
        if self.strategy == "fair":
            raise ValueError("strategy 'fair' builds a list step by step, it has no score per film: use "
                             ".recommend(groups, k)")
        gids, members, positions = _member_positions(self.base_model, groups, self.unknown)
        if self.strategy == "profile":
            out = _profile_matrix(self.base_model, positions)
            for g, pos in enumerate(positions):
                mask = _seen_mask(self.base_model, pos, self.exclude_seen)
                if mask is not None:
                    out[g, mask] = -np.inf
            return gids, out
        out = np.empty((len(gids), self.base_model.n_items))
        for g, block in enumerate(self._member_scores(positions, members)):
            if self.normalise == "rank":
                block = rank_normalise(block)
            out[g] = aggregate(block, self.strategy, **self.params)
        return gids, out

    def recommend(self, groups, k: int = 10) -> pd.DataFrame:
        """Each group's top ``k`` films, best first.

        Parameters
        ----------
        groups : DataFrame ``groupId, userId`` or mapping ``{groupId: [userId, ...]}``
        k : int
            Films per group (fewer if fewer can be recommended).

        Returns
        -------
        DataFrame ``groupId, movieId, score, rank`` (rank 1..k; ties in score go to the smaller movieId).

        Raises
        ------
        ValueError
            ``k`` not a positive integer, bad groups. UnknownIdError: see the class.
        """
        check_int("GroupRecommender.recommend", "k", k)
        ids = self.base_model.item_ids_
        frames = []
        if self.strategy == "fair":
            gids, members, positions = _member_positions(self.base_model, groups, self.unknown)
            for gid, block in zip(gids, self._member_scores(positions, members)):
                picks, objective = fair_list(block, k, balance=self.balance, return_objective=True)
                frames.append(pd.DataFrame({GROUP: [gid] * len(picks), ITEM: ids[picks], SCORE: objective,
                                            RANK: np.arange(1, len(picks) + 1)}))
            return pd.concat(frames, ignore_index=True)
        gids, scores = self.group_scores(groups)
        top = top_k(scores, k)
        top_scores = np.take_along_axis(scores, top, 1)
        kk = top.shape[1]
        frame = pd.DataFrame({GROUP: np.repeat(gids, kk), ITEM: ids[top.ravel()], SCORE: top_scores.ravel(),
                              RANK: np.tile(np.arange(1, kk + 1), len(gids))})
        return frame[np.isfinite(frame[SCORE].to_numpy())].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# profile aggregation
# --------------------------------------------------------------------------------------------
def _profile_kind(model) -> str:
    from ..models.factorization import ALS, EASE
    from ..models.text_models import TextProfile

    for kind in (EASE, TextProfile, ALS):
        if type(model) is kind:
            return kind.__name__
    raise TypeError(f"profile aggregation needs the base model's own fold-in of a merged history, which only "
                    f"{', '.join(PROFILE_MODELS)} have; {type(model).__name__} is not one of them. Use a score "
                    f"strategy instead (GroupRecommender(model, 'average'), or any of {list(STRATEGIES)})")


def profile_scores(base_model, groups) -> np.ndarray:
    r"""Profile aggregation: each group as one pseudo-user whose history is the members' merged history, scored
    by the base model's own fold-in (no refit).

    * **EASE**: :math:`x_g = \sum_{m \in g} x_m` (the members' rows of ``X_``; a film rated by two members counts
      the sum of their ratings, so it weighs as much as two members' votes), :math:`s_g = x_g B`; films EASE
      does not model are ``-inf``, as in EASE.
    * **TextProfile**: each member's films with that member's own weights :math:`d_{mi}`
      (:func:`recsys_course.models.text_models.profile_weights`, kept in ``weights_``), summed over the members,
      :math:`p_g = \sum_m \sum_{i \in R(m)} d_{mi} e_i`, normalised; :math:`s_{gi} = \cos(p_g, e_i)`.
    * **ALS**: the ridge fold-in over the merged ratings' residuals,
      :math:`p_g = (Q_g^\top Q_g + \lambda I)^{-1} Q_g^\top e_g` with :math:`Q_g^\top Q_g = \sum_m Q_m^\top Q_m`
      (a film rated by two members is two observations), and :math:`s_{gi} = \mu + \bar b_g + b_i + p_g^\top q_i`
      (:math:`\bar b_g` the members' mean bias, a constant). ALS keeps factors, not ratings, so
      :math:`Q_m^\top e_m` comes from each member's own normal equations,
      :math:`Q_m^\top e_m = (Q_m^\top Q_m + \lambda I)\, p_m`: exact when :math:`p_m` is the ridge solution for the
      final item factors (ALS's last half-step updates the items, so it is close, and closer with more
      ``n_iters``).

    For a group of one member every fold-in gives the base model's own scores (up to rounding). Cost: one sparse
    product (EASE, TextProfile) or one :math:`k \times k` solve per group (ALS).

    Parameters
    ----------
    base_model : a fitted EASE, TextProfile or ALS
    groups : DataFrame ``groupId, userId`` or mapping ``{groupId: [userId, ...]}``

    Returns
    -------
    array (n_groups, n_items), rows in the groups' input order, columns ``base_model.item_ids_``; seen films are
    *not* excluded here (:class:`GroupRecommender` does that).

    Raises
    ------
    TypeError
        Any other model (the message names the supported ones and suggests a score strategy).
    NotFittedError, UnknownIdError
        The base model is not fitted; a member it never saw.
    """
    _check_base(base_model)
    _profile_kind(base_model)
    return _profile_matrix(base_model, _member_positions(base_model, groups)[2])


def _profile_matrix(model, positions: list) -> np.ndarray:
    kind = _profile_kind(model)
    sizes = [len(p) for p in positions]
    rows = np.repeat(np.arange(len(positions)), sizes)
    member_of = sp.csr_matrix((np.ones(len(rows)), (rows, np.concatenate(positions))),
                              shape=(len(positions), model.n_users))           # groups × users indicator
    if kind == "EASE":
        out = np.full((len(positions), model.n_items), -np.inf)
        merged = (member_of @ model.X_.astype(np.float64)).astype(model.X_.dtype)
        out[:, model.modelled_] = np.asarray(merged @ model.B_, dtype=np.float64)
        return out
    if kind == "TextProfile":
        from ..models.text_models import unit_profiles

        vectors = model.catalogue_vectors_
        return unit_profiles(member_of @ model.weights_, vectors) @ vectors.T
    Q, P, lam = model.item_factors_, model.user_factors_, float(model.reg)
    eye = lam * np.eye(Q.shape[1])
    factors = np.empty((len(positions), Q.shape[1]))
    for g, pos in enumerate(positions):
        gram, rhs = np.zeros_like(eye), np.zeros(Q.shape[1])
        for m in pos:
            Qm = Q[model.seen_[m].indices]
            Gm = Qm.T @ Qm
            gram += Gm
            rhs += (Gm + eye) @ P[m]
        factors[g] = np.linalg.solve(gram + eye, rhs)
    base = model.mu_ + np.array([model.user_bias_[p].mean() for p in positions])
    return base[:, None] + model.item_bias_[None, :] + factors @ Q.T

r"""The two-stage system: retrieve a few hundred candidates cheaply, then rank only those with the ranker.

Scoring every film with a heavy ranker costs :math:`O(n_{\text{items}})` ranker calls per user; a production
system first *retrieves* :math:`N \ll n_{\text{items}}` candidates (dot products over embeddings, an item-item
model, popularity), then *ranks* only those. The quality lost is bounded by candidate recall (a relevant film
that is not retrieved can never be recommended); the time saved is the ranker's work on the other films.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..checks import check_int
from ..models.base import Recommender
from .candidates import EmbeddingRetriever, fitted_on, merge_candidates, retrieve

__all__ = ["TwoStage"]


class TwoStage(Recommender):
    r"""Retrieve with several retrievers, merge, rank the candidates with one ranker: a model of the course.

    For user :math:`u`: each retriever :math:`r` gives its ``n_candidates`` best unseen films :math:`C_u^{(r)}`
    (a course model through :func:`~recsys_course.retrieval.candidates.retrieve`, or an
    :class:`~recsys_course.retrieval.candidates.EmbeddingRetriever` through its index); they are merged
    round-robin into :math:`C_u` of ``n_candidates`` films
    (:func:`~recsys_course.retrieval.candidates.merge_candidates`); then

    .. math:: s(u, i) = \begin{cases} \mathrm{ranker.score}(u, i) & i \in C_u \\ -\infty & \text{otherwise,}
              \end{cases}

    so ``recommend`` and :func:`recsys_course.evaluate.evaluate` rank the candidates only. The ranker is called
    on the :math:`|C_u|` pairs alone, never on the whole catalogue — that is the point. With
    ``n_candidates = n_items`` every unseen film is a candidate and the system ranks exactly like the ranker.
    The candidates' scores are the ranker's ``score`` values computed for those pairs only (``_pair_values``):
    for the rating models whose ``predict`` clips to the rating scale (BiasBaseline, BiasedMF, ALS, the text
    models) the unclipped values, so the films above 5 stars do not tie.

    Parameters
    ----------
    retrievers : list, or dict name -> retriever
        Course models (fitted or not) and/or :class:`EmbeddingRetriever`\ s. A dict names them (``candidates``
        is the same either way; the names are in ``retriever_names_``).
    ranker : a course model, fitted or not
    n_candidates : int
        :math:`N`, the candidates per user (each retriever is asked for :math:`N`, the union is cut to :math:`N`).

    ``fit(train)`` fits each component unless it is fitted on this very train already (the same number of
    ratings and the same user and item ids), so one fitted ranker can serve both the full-catalogue and the
    two-stage run. All components must share the catalogue ``item_ids_``. After every ``score`` (and so
    ``recommend``): ``timing_ = {"retrieve_s", "rank_s", "n_users"}``. ``predicts_ratings = False``: the scores
    are the ranker's, but only on the candidates. Users absent from train raise :class:`UnknownIdError`.
    """

    predicts_ratings = False

    def __init__(self, retrievers, ranker, n_candidates: int = 200):
        self.retrievers = retrievers
        self.ranker = ranker
        self.n_candidates = n_candidates

    def _components(self) -> list:
        retrievers = self.retrievers
        if isinstance(retrievers, dict):
            self.retriever_names_ = [str(name) for name in retrievers]
            retrievers = list(retrievers.values())
        else:
            retrievers = list(retrievers) if isinstance(retrievers, (list, tuple)) else [retrievers]
            self.retriever_names_ = [repr(r) if isinstance(r, EmbeddingRetriever) else type(r).__name__
                                     for r in retrievers]
        if not retrievers:
            raise ValueError("TwoStage needs at least one retriever")
        for r in [*retrievers, self.ranker]:
            if not isinstance(r, (Recommender, EmbeddingRetriever)):
                raise TypeError(f"TwoStage: {type(r).__name__} is not a course model or an EmbeddingRetriever")
        return retrievers

    def _fit(self, train, users, items):
        check_int(self, "n_candidates", self.n_candidates)
        retrievers = self._components()
        self.reused_ = []
        for component in [*retrievers, self.ranker]:
            reuse = fitted_on(component, train)
            if isinstance(component, EmbeddingRetriever):
                component.fit(train)  # skips the model's fit when it is fitted on train; builds the index
            elif not reuse:
                component.fit(train)
            self.reused_.append(reuse)
            if not np.array_equal(component.item_ids_, self.item_ids_):
                raise ValueError(f"TwoStage: {type(component).__name__}'s catalogue ({len(component.item_ids_)} "
                                 f"films) differs from train's ({len(self.item_ids_)}): fit every component on the "
                                 "same train")
        self.timing_ = {"retrieve_s": 0.0, "rank_s": 0.0, "n_users": 0}

    def candidates(self, users) -> np.ndarray:
        """The merged candidates of ``users`` (ids): int64 array (len(users), n_candidates) of catalogue positions
        (columns of ``item_ids_``), round-robin over the retrievers, seen films excluded, ``-1`` padding."""
        self._check_fitted()
        users = np.asarray(users).reshape(-1)
        self._known_user_positions(users)  # unknown users raise here, naming them
        lists = []
        for r in self._components():
            if isinstance(r, EmbeddingRetriever):
                lists.append(r.retrieve(users, self.n_candidates, exclude_seen=True))
            else:
                lists.append(retrieve(r, users, self.n_candidates, exclude_seen=True))
        return merge_candidates(lists, self.n_candidates)

    def _score_users(self, users):
        start = time.perf_counter()
        ids = self.user_ids_[users]
        cand = self.candidates(ids)
        middle = time.perf_counter()
        rows, cols = np.nonzero(cand >= 0)
        out = np.full((len(users), self.n_items), -np.inf)
        if len(rows):
            items = cand[rows, cols]
            ranker = self.ranker  # its catalogue is this model's (checked in fit), so positions carry over
            out[rows, items] = ranker._pair_values(ranker.user_positions(ids[rows]), items)
        timing = self.timing_
        timing["retrieve_s"] += middle - start
        timing["rank_s"] += time.perf_counter() - middle
        timing["n_users"] += len(users)
        return out

    def score(self, users) -> np.ndarray:
        """The ranker's scores on each user's candidates, ``-inf`` elsewhere (see the class); sets ``timing_``."""
        self.timing_ = {"retrieve_s": 0.0, "rank_s": 0.0, "n_users": 0}
        return super().score(users)

    def recommend(self, users, k: int = 10, exclude_seen: bool = True, batch_size: int = 1024) -> pd.DataFrame:
        """Each user's top ``k`` candidates by the ranker (the protocol's ``recommend``); sets ``timing_``."""
        self.timing_ = {"retrieve_s": 0.0, "rank_s": 0.0, "n_users": 0}
        return super().recommend(users, k=k, exclude_seen=exclude_seen, batch_size=batch_size)

    def _predict(self, users, items):
        out = np.full(len(users), -np.inf)
        known = np.flatnonzero((users >= 0) & (items >= 0))
        if len(known) == 0:
            return out
        ids = np.unique(users[known])
        cand = self.candidates(self.user_ids_[ids])
        row = pd.Index(ids).get_indexer(users[known])
        inside = (cand[row] == items[known][:, None]).any(1)
        chosen = known[inside]
        if len(chosen):
            ranker = self.ranker
            out[chosen] = ranker._pair_values(ranker.user_positions(self.user_ids_[users[chosen]]), items[chosen])
        return out

r"""Recommenders on the knowledge graph of :mod:`recsys_course.graph` (notebook 13).

* :class:`RandomWalk` — personalised PageRank: a random walk with restart from the user's node over users,
  films, genres, tags and decades; a film's score is how often the walk visits it. No training.
* :class:`TransE` — translating embeddings (Bordes et al. 2013): every node and relation is a vector,
  a true triple :math:`(h, r, t)` should satisfy :math:`e_h + r \approx e_t`; a film is recommended to a user
  by how well it fits :math:`e_u + r_{\text{rated}}`.

Both build their graph from the training ratings plus ``movies`` (and ``tags``), so a film of ``movies`` that
nobody rated is a node too, linked to its genres, tags and decade: ``predict`` scores it (a cold-start film),
``score`` / ``recommend`` rank the training catalogue ``item_ids_`` as every model does. Import them by path::

    from recsys_course.models.graph import RandomWalk, TransE
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..checks import check_bool, check_int, check_number, check_share
from ..graph import RELATIONS, KnowledgeGraph, build_graph, random_walk_with_restart, transition_matrix
from .base import Recommender, UnknownIdError, _as_array
from .torch_train import TorchRecommender, TrainingSetup

__all__ = ["RandomWalk", "TransE"]


def _graph_of(model, frame: pd.DataFrame) -> KnowledgeGraph:
    if model.movies is not None and not isinstance(model.movies, pd.DataFrame):
        raise TypeError(f"{type(model).__name__}: movies must be a DataFrame (pass movies=ml.movies) or None, got "
                        f"{type(model.movies).__name__}")
    if model.tags is not None and not isinstance(model.tags, pd.DataFrame):
        raise TypeError(f"{type(model).__name__}: tags must be a DataFrame (pass tags=ml.tags) or None, got "
                        f"{type(model.tags).__name__}")
    return build_graph(frame, model.movies, model.tags, min_rating=model.min_rating,
                       rating_weights=getattr(model, "rating_weights", False), min_tag_count=model.min_tag_count,
                       relation_weights=getattr(model, "relation_weights", None))


def _known_users(model, users: np.ndarray) -> np.ndarray:
    pos = model.user_positions(users)
    if (pos < 0).any():
        raise UnknownIdError(f"{type(model).__name__} has no node for {int((pos < 0).sum())} user(s) absent from "
                             f"its training data (e.g. {list(users[pos < 0][:5])}), so it cannot score them; "
                             "recommend to them with Popularity, or refit with their ratings in train")
    return pos


# --------------------------------------------------------------------------------------------
# RandomWalk
# --------------------------------------------------------------------------------------------
class RandomWalk(Recommender):
    r"""Random walk with restart (personalised PageRank) on the knowledge graph; films ranked by visit probability.

    With :math:`P` the column-stochastic transition matrix of the graph (:func:`recsys_course.graph.transition_matrix`),
    :math:`e_u` the user's node and :math:`\alpha` = ``restart``, the visit probabilities solve
    :math:`p_u = (1-\alpha) P p_u + \alpha e_u` (power iteration, :func:`recsys_course.graph.random_walk_with_restart`),
    and film :math:`i` scores

    .. math:: s(u, i) = p_u[i] \,/\, d_i^{\beta},

    :math:`d_i` the film node's weighted degree. ``beta = 0`` is the plain walk, which favours films with many
    edges (popular ones); ``beta > 0`` divides that out, as in RP3β (Paudel et al. 2016). Nothing is trained:
    ``fit`` builds the graph (:func:`recsys_course.graph.build_graph` on train, ``movies``, ``tags``) and the
    walks run when users are scored, in blocks of ``batch_users``, in float32 (cost per block:
    ``nnz(P) * batch_users`` per step; with ``tol=1e-4`` and ``restart=0.8`` about 8 steps). The defaults
    ``restart=0.8, beta=0.3`` were chosen on a validation slice of the ranking split (notebook 13).

    Fallbacks. A film with no path from the user (or no node: absent from train and from ``movies``) scores 0,
    and ties go to the smaller movieId in ``recommend`` (the protocol's rule) and to a random order in
    :func:`recsys_course.evaluate.evaluate_cold_items`. ``predict`` scores any film of ``movies``, also one absent
    from train (through its genre, tag and decade nodes). A user absent from train raises
    :class:`~recsys_course.models.base.UnknownIdError`; a user whose node has no edge raises ``ValueError``.

    Parameters
    ----------
    movies, tags : DataFrame or None
        ``ml.movies`` and ``ml.tags`` (``None``: no film metadata / no tag nodes; MovieLens 1M has no tags).
    restart : float
        :math:`\alpha`, the probability of jumping back to the user at each step, strictly between 0 and 1.
    beta : float
        Degree correction exponent :math:`\beta \ge 0`.
    min_rating, rating_weights, min_tag_count, relation_weights
        How the graph is built (:func:`recsys_course.graph.build_graph`).
    tol, max_iter
        Stopping rule of the power iteration.
    batch_users : int
        Users walked at once (memory: ``n_nodes × batch_users`` floats).

    After ``fit``: ``graph_`` (the :class:`~recsys_course.graph.KnowledgeGraph`), ``transition_`` (:math:`P`),
    ``user_nodes_`` (node of each user of ``user_ids_``), ``catalogue_nodes_`` (node of each film of
    ``item_ids_``), ``film_degree_`` (:math:`d_i` of every node, 0 for non-films).
    """

    def __init__(self, movies: pd.DataFrame | None = None, tags: pd.DataFrame | None = None, restart: float = 0.8,
                 beta: float = 0.3, min_rating: float | None = 4.0, rating_weights: bool = False,
                 min_tag_count: int = 2, relation_weights: dict | None = None, tol: float = 1e-4,
                 max_iter: int = 100, batch_users: int = 256):
        self.movies = movies
        self.tags = tags
        self.restart = restart
        self.beta = beta
        self.min_rating = min_rating
        self.rating_weights = rating_weights
        self.min_tag_count = min_tag_count
        self.relation_weights = relation_weights
        self.tol = tol
        self.max_iter = max_iter
        self.batch_users = batch_users

    def _fit(self, train, users, items):
        check_share(self, "restart", self.restart)
        check_number(self, "beta", self.beta)
        check_number(self, "min_rating", self.min_rating, allow_none=True)
        check_bool(self, "rating_weights", self.rating_weights)
        check_int(self, "min_tag_count", self.min_tag_count)
        check_number(self, "tol", self.tol, positive=True)
        check_int(self, "max_iter", self.max_iter)
        check_int(self, "batch_users", self.batch_users)
        self.graph_ = _graph_of(self, train)
        self.transition_ = transition_matrix(self.graph_.adjacency).astype(np.float32)
        self.user_nodes_ = self.graph_.positions("user", self.user_ids_)
        self.catalogue_nodes_ = self.graph_.positions("film", self.item_ids_)
        degree = self.graph_.degree
        self.film_degree_ = np.where(self.graph_.nodes["kind"].to_numpy() == "film", degree, 0.0)

    def visit_probabilities(self, users) -> np.ndarray:
        """The walk's visit probability of every node of ``graph_``: shape ``(len(users), n_nodes)``, rows sum to 1."""
        self._check_fitted()
        return self._walk(_known_users(self, _as_array(users, "users")))

    def _walk(self, pos: np.ndarray) -> np.ndarray:
        out = np.empty((len(pos), self.graph_.n_nodes))
        for s in range(0, len(pos), self.batch_users):
            nodes = self.user_nodes_[pos[s:s + self.batch_users]]
            start = np.zeros((self.graph_.n_nodes, len(nodes)))
            start[nodes, np.arange(len(nodes))] = 1.0
            out[s:s + len(nodes)] = random_walk_with_restart(self.transition_, start, self.restart, tol=self.tol,
                                                             max_iter=self.max_iter, dtype=np.float32).T
        return out

    def _node_scores(self, pos: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Scores (len(pos), len(nodes)) of film nodes (-1: no node, score 0)."""
        p = self._walk(pos)
        safe = np.where(nodes >= 0, nodes, 0)
        d = self.film_degree_[safe]
        scale = np.divide(1.0, d ** self.beta, out=np.zeros_like(d), where=d > 0) if self.beta else (d > 0) * 1.0
        return np.where(nodes >= 0, p[:, safe] * scale, 0.0)

    def predict(self, users, items) -> np.ndarray:
        """Score of each (user, film) pair; any film of ``movies`` can be scored, also one absent from train.

        A film without a node, or without a path from the user, scores 0; an unknown user raises.
        """
        self._check_fitted()
        users, items = _as_array(users, "users"), _as_array(items, "items")
        if users.shape != items.shape:
            raise ValueError(f"users and items must pair up: got {users.size} users and {items.size} items")
        if not len(users):
            return np.zeros(0)
        distinct, row = np.unique(users, return_inverse=True)
        nodes = self.graph_.positions("film", items)
        out = np.zeros(len(users))
        scores = self._node_scores(_known_users(self, distinct), nodes)
        out[:] = scores[row, np.arange(len(users))]
        return out

    def _score_users(self, users):
        return self._node_scores(users, self.catalogue_nodes_)


# --------------------------------------------------------------------------------------------
# TransE
# --------------------------------------------------------------------------------------------
class TransE(TorchRecommender):
    r"""TransE (Bordes, Usunier, García-Durán, Weston & Yakhnenko 2013) on the knowledge graph, in PyTorch.

    Every node :math:`x` of :func:`recsys_course.graph.build_graph` (users, films, genres, tags, decades) gets
    a vector :math:`e_x \in \mathbb R^k` and every relation (``rated``, ``has_genre``, ``has_tag``,
    ``from_decade``) a translation :math:`r`; a true triple should satisfy :math:`e_h + r \approx e_t`:

    .. math:: d(h, r, t) = \lVert e_h + r - e_t \rVert_2, \qquad
              \mathcal L = \frac{1}{|\mathcal B|\, m} \sum_{(h,r,t) \in \mathcal B} \sum_{j=1}^{m}
              \big[\gamma + d(h, r, t) - d(h, r, t'_j)\big]_+ ,

    with :math:`\gamma` = ``margin`` and :math:`m` = ``n_negatives`` corrupted tails :math:`t'_j` drawn each
    epoch uniformly among the nodes of the true tail's kind (a film for ``rated``, a genre for ``has_genre``;
    a draw may by chance be another true tail, as in the paper). Before each mini-batch the entity vectors it
    touches are scaled back to unit norm (the paper's constraint). The recommender scores film :math:`i` for
    user :math:`u` by :math:`s(u, i) = -d(u, \text{rated}, i)`.

    A film absent from train but present in ``movies`` has a vector trained only by its ``has_genre``,
    ``has_tag`` and ``from_decade`` triples, so ``predict`` can score it (a cold-start film). A film without a
    node scores ``-inf``; a user absent from train raises :class:`~recsys_course.models.base.UnknownIdError`;
    :meth:`triple_scores` with a relation that has no triple in training raises ``ValueError``.

    Training follows :class:`~recsys_course.models.torch_train.TorchRecommender`: with ``val_size`` set,
    early stopping on the NDCG@10 of a validation slice of train (then ``refit``); with ``val_size=None``
    (the default, the epochs having been chosen that way) ``n_epochs`` epochs on all of train. The network
    (:class:`recsys_course.networks.graph.TransENet`). Cost per epoch: :math:`O(|\text{triples}|\, k\, m)`.

    Parameters
    ----------
    movies, tags : DataFrame or None
        ``ml.movies`` and ``ml.tags`` for the graph (``None``: no metadata / no tag nodes).
    n_factors, margin, lr, weight_decay, n_negatives, n_epochs, batch_size, patience, val_size, val_split,
    refit, seed, device, verbose
        As in the glossary; ``margin`` is :math:`\gamma > 0`.
    min_rating, min_tag_count
        Graph construction (:func:`recsys_course.graph.build_graph`).

    After ``fit``: ``graph_``, ``entity_vectors_`` (nodes × k), ``relation_vectors_`` (a row per relation of
    ``relations_``, the relations that have triples), ``user_nodes_``, ``catalogue_nodes_``, ``loss_``.
    """

    def __init__(self, movies: pd.DataFrame | None = None, tags: pd.DataFrame | None = None, n_factors: int = 32,
                 margin: float = 0.5, lr: float = 0.003, weight_decay: float = 0.0, n_negatives: int = 4,
                 min_rating: float | None = 4.0, min_tag_count: int = 2, n_epochs: int = 6,
                 batch_size: int = 1024, patience: int | None = 3, val_size: int | float | None = None,
                 val_split: str = "last", refit: bool = True, device=None, seed: int = 0, verbose: bool = True):
        self.movies = movies
        self.tags = tags
        self.n_factors = n_factors
        self.margin = margin
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_negatives = n_negatives
        self.min_rating = min_rating
        self.min_tag_count = min_tag_count
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_size = val_size
        self.val_split = val_split
        self.refit = refit
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        check_int(self, "n_factors", self.n_factors)
        check_number(self, "margin", self.margin, positive=True)
        check_int(self, "n_negatives", self.n_negatives)
        check_number(self, "min_rating", self.min_rating, allow_none=True)
        check_int(self, "min_tag_count", self.min_tag_count)

    def _setup(self, frame: pd.DataFrame, generator) -> TrainingSetup:
        import torch

        from ..networks.graph import TransENet, margin_ranking_loss

        graph = _graph_of(self, frame)
        relations = [r for r in RELATIONS if (graph.triples["relation"] == r).any()]
        rel_index = pd.Index(relations)
        triples = graph.triples
        h = torch.as_tensor(triples["head"].to_numpy().copy(), dtype=torch.int64)
        r = torch.as_tensor(rel_index.get_indexer(triples["relation"]), dtype=torch.int64)
        t = torch.as_tensor(triples["tail"].to_numpy().copy(), dtype=torch.int64)
        # corrupted tails: uniform over the nodes of the true tail's kind
        kinds = graph.nodes["kind"].to_numpy()[triples["tail"].to_numpy()]
        first = {k: graph.kind_slice(k).start for k in set(kinds)}
        count = {k: graph.kind_slice(k).stop - graph.kind_slice(k).start for k in set(kinds)}
        low = torch.as_tensor(np.array([first[k] for k in kinds], dtype=np.int64))
        span = torch.as_tensor(np.array([count[k] for k in kinds], dtype=np.float64))
        n_neg = self.n_negatives

        def data(epoch, gen):
            draw = torch.rand(len(h), n_neg, generator=gen, dtype=torch.float64)
            return h, r, t, low[:, None] + (draw * span[:, None]).long()

        network = TransENet(graph.n_nodes, len(relations), self.n_factors, generator)
        margin = float(self.margin)

        def loss(m, hh, rr, tt, neg):
            with torch.no_grad():  # Bordes et al.: entity vectors on the unit sphere
                touched = torch.unique(torch.cat([hh, tt, neg.reshape(-1)]))
                m.E[touched] = m.E[touched] / m.E[touched].norm(dim=1, keepdim=True).clamp_min(1e-12)
            positive = m.distance(hh, rr, tt)
            negative = m.distance(hh[:, None], rr[:, None], neg)
            return margin_ranking_loss(positive, negative, margin)

        state = {"graph": graph, "relations": relations,
                 "user_nodes": graph.positions("user", self.user_ids_),
                 "catalogue_nodes": graph.positions("film", self.item_ids_)}
        return TrainingSetup(network, loss, data, state=state)

    def _validation_scores(self, setup: TrainingSetup, network, users: np.ndarray):
        import torch

        state = setup.state
        nodes = state["catalogue_nodes"]
        out = torch.full((len(users), len(nodes)), -torch.inf, device=self.device_)
        have = torch.as_tensor(np.flatnonzero(nodes >= 0), device=self.device_)
        heads = torch.as_tensor(state["user_nodes"][users], device=self.device_)
        tails = torch.as_tensor(nodes[nodes >= 0], device=self.device_)
        out[:, have] = network.tail_scores(heads, state["relations"].index("rated"), tails)
        return out

    def _store(self, setup: TrainingSetup, frame: pd.DataFrame) -> None:
        self.graph_ = setup.state["graph"]
        self.relations_ = tuple(setup.state["relations"])
        self.entity_vectors_ = setup.network.E.detach().cpu().numpy().astype(np.float64)
        self.relation_vectors_ = setup.network.R.detach().cpu().numpy().astype(np.float64)
        # the vectors as the last step left them; scores use them as they are (unit norm up to one Adam step)
        self.user_nodes_ = self.graph_.positions("user", self.user_ids_)
        self.catalogue_nodes_ = self.graph_.positions("film", self.item_ids_)

    # ---- scoring -------------------------------------------------------------------------------
    def relation_vector(self, relation: str) -> np.ndarray:
        """The learned translation of ``relation``; ``ValueError`` for a relation with no triple in training."""
        self._check_fitted()
        if relation not in self.relations_:
            why = (" (the graph had no tags: pass tags=ml.tags, if the data set has any)"
                   if relation == "has_tag" else "")
            raise ValueError(f"TransE: relation {relation!r} has no triple in the training graph{why}, so it has no "
                             f"vector; the learned relations are {list(self.relations_)}")
        return self.relation_vectors_[self.relations_.index(relation)]

    def triple_scores(self, heads, relation: str, tails) -> np.ndarray:
        """:math:`-d(h, r, t)` of node positions ``heads``, ``tails`` (of ``graph_``) paired up, for one relation."""
        r = self.relation_vector(relation)
        heads, tails = _as_array(heads, "heads").astype(np.int64), _as_array(tails, "tails").astype(np.int64)
        if heads.shape != tails.shape:
            raise ValueError(f"heads and tails must pair up: got {heads.size} and {tails.size}")
        bad = (heads < 0) | (tails < 0) | (heads >= self.graph_.n_nodes) | (tails >= self.graph_.n_nodes)
        if bad.any():
            raise ValueError(f"TransE: node positions must lie in 0..{self.graph_.n_nodes - 1} (graph_.positions "
                             f"turns ids into positions), got e.g. {heads[bad][:3].tolist()} / {tails[bad][:3].tolist()}")
        E = self.entity_vectors_
        return -np.linalg.norm(E[heads] + r - E[tails], axis=1)

    def _film_scores(self, pos: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """(len(pos), len(nodes)) scores of film nodes for user positions; -inf where a film has no node."""
        E = self.entity_vectors_
        query = E[self.user_nodes_[pos]] + self.relation_vector("rated")
        films = E[np.where(nodes >= 0, nodes, 0)]
        sq = (query ** 2).sum(1)[:, None] + (films ** 2).sum(1)[None, :] - 2 * query @ films.T
        return np.where(nodes[None, :] >= 0, -np.sqrt(np.maximum(sq, 0.0)), -np.inf)

    def predict(self, users, items) -> np.ndarray:
        """:math:`-d(u, \\text{rated}, i)` of each pair; any film of ``movies`` can be scored, also one absent from
        train. A film without a node scores ``-inf``; an unknown user raises."""
        self._check_fitted()
        users, items = _as_array(users, "users"), _as_array(items, "items")
        if users.shape != items.shape:
            raise ValueError(f"users and items must pair up: got {users.size} users and {items.size} items")
        pos = _known_users(self, users)
        nodes = self.graph_.positions("film", items)
        out = np.full(len(users), -np.inf)
        ok = nodes >= 0
        if ok.any():
            out[ok] = self.triple_scores(self.user_nodes_[pos[ok]], "rated", nodes[ok])
        return out

    def _score_users(self, users):
        return self._film_scores(users, self.catalogue_nodes_)

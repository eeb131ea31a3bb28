r"""A small knowledge graph of MovieLens, and random walks with restart on it (notebook 13).

**The graph.** :func:`build_graph` turns ratings, film metadata and user tags into one typed, undirected graph:

* nodes of five kinds — ``user``, ``film``, ``genre``, ``tag``, ``decade`` — in that order, each kind sorted by
  its key (userId, movieId, genre name, lower-cased tag, first year of the decade);
* triples :math:`(h, r, t)` with four relations: ``rated`` (user → film; with ``min_rating`` only the ratings at
  or above it, the films the user *liked*), ``has_genre`` (film → genre), ``has_tag`` (film → tag: tags
  lower-cased and stripped, kept when they were put on at least ``min_tag_count`` distinct films — a tag of one
  film links nothing) and ``from_decade`` (film → decade of its year);
* a symmetric weighted adjacency :math:`A` (``scipy.sparse`` CSR): :math:`A_{ht} = A_{th} = w_r \cdot w_{ht}`,
  with :math:`w_r` the relation's weight (``relation_weights``, default 1) and :math:`w_{ht}` the edge's own
  weight (1, or the rating itself for ``rated`` with ``rating_weights=True``).

Every film of ``movies`` is a node, also one that nobody rated: it is reached through its genres, tags and
decade, which is what lets a walk score a film absent from the ratings (a cold-start film). Without ``tags``
(MovieLens 1M has none) there are no tag nodes and no ``has_tag`` triples.

**Random walk with restart** (personalised PageRank; Page et al. 1999, Tong, Faloutsos & Pan 2006). A walker
starts at the user's node; at each step it jumps back to the start with probability :math:`\alpha`, otherwise
it moves to a neighbour chosen in proportion to the edge weights. With the column-stochastic transition
matrix :math:`P = A D^{-1}` (:math:`D` the diagonal of weighted degrees, :func:`transition_matrix`) and
:math:`e_u` the indicator of the start, the long-run visit probabilities solve

.. math:: p = (1-\alpha)\, P\, p + \alpha\, e_u \quad\Longleftrightarrow\quad
          p = \alpha\, \big(I - (1-\alpha) P\big)^{-1} e_u ,

and the power iteration :math:`p_{k+1} = (1-\alpha) P p_k + \alpha e_u` converges to it geometrically (the
error shrinks by a factor :math:`1-\alpha` per step, since :math:`\lVert P \rVert_1 = 1`).
:func:`random_walk_with_restart` runs it for many users at once: ``start`` is a nodes × users matrix whose
columns are the :math:`e_u`, so one sparse × dense product per step serves every user.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import check_bool, check_int, check_number
from .config import GENRES, ITEM, RATING, TAG, TITLE, USER, YEAR
from .data import check_ratings

__all__ = ["KINDS", "RELATIONS", "KnowledgeGraph", "build_graph", "transition_matrix", "random_walk_with_restart"]

#: The node kinds, in the order their nodes are numbered.
KINDS = ("user", "film", "genre", "tag", "decade")
#: relation -> (kind of the head, kind of the tail)
RELATIONS = {"rated": ("user", "film"), "has_genre": ("film", "genre"), "has_tag": ("film", "tag"),
             "from_decade": ("film", "decade")}


@dataclass(frozen=True, repr=False, eq=False)
class KnowledgeGraph:
    """The typed graph :func:`build_graph` returns.

    ``nodes``: one row per node (its position is its id in ``adjacency`` and ``triples``), columns ``kind``,
    ``key`` (userId, movieId, genre, tag or decade) and ``label`` (readable: the film's title, "1990s").
    ``triples``: columns ``head``, ``relation``, ``tail`` (node positions; the relation's name) and ``weight``.
    ``adjacency``: the symmetric nodes × nodes CSR matrix of the module docstring. ``has_tags``: whether tag
    nodes could be built (False without a tags frame, e.g. MovieLens 1M).
    """

    nodes: pd.DataFrame
    triples: pd.DataFrame
    adjacency: sp.csr_matrix
    has_tags: bool

    def __repr__(self) -> str:
        counts = self.nodes["kind"].value_counts().reindex(KINDS, fill_value=0)
        rel = self.triples["relation"].value_counts()
        return (f"KnowledgeGraph({len(self.nodes):,} nodes: "
                + ", ".join(f"{n:,} {k}" for k, n in counts.items())
                + f"; {len(self.triples):,} triples: "
                + ", ".join(f"{rel.get(r, 0):,} {r}" for r in RELATIONS) + ")")

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def degree(self) -> np.ndarray:
        """Weighted degree of every node (row sums of ``adjacency``)."""
        return np.asarray(self.adjacency.sum(axis=1)).ravel()

    def kind_slice(self, kind: str) -> slice:
        """The positions of one kind's nodes (they are contiguous)."""
        if kind not in KINDS:
            raise ValueError(f"unknown node kind {kind!r}; the kinds are {list(KINDS)}")
        where = np.flatnonzero(self.nodes["kind"].to_numpy() == kind)
        return slice(int(where[0]), int(where[-1]) + 1) if len(where) else slice(0, 0)

    def positions(self, kind: str, keys) -> np.ndarray:
        """Node position of each key of ``kind`` (userIds for ``"user"``, movieIds for ``"film"``, ...); -1 where
        the graph has no such node."""
        part = self.kind_slice(kind)
        index = pd.Index(self.nodes["key"].to_numpy()[part])
        found = index.get_indexer(pd.Index(np.atleast_1d(np.asarray(keys, dtype=object))))
        return np.where(found >= 0, found + part.start, -1)

    def neighbourhood(self, node: int, max_nodes: int = 30) -> np.ndarray:
        """``node`` and its strongest neighbours (by edge weight, then position), at most ``max_nodes`` in all:
        what a small picture of one user's corner of the graph shows."""
        row = self.adjacency.getrow(int(node))
        order = np.lexsort((row.indices, -row.data))[:max(max_nodes - 1, 0)]
        return np.concatenate([[int(node)], row.indices[order]])

    def to_networkx(self, nodes=None):
        """The subgraph on ``nodes`` (all if None) as a ``networkx.Graph`` with ``kind``/``label`` node attributes
        and ``weight`` edge attributes (for drawing small pictures and for checks against networkx)."""
        import networkx as nx

        keep = np.arange(self.n_nodes) if nodes is None else np.asarray(nodes, dtype=np.int64)
        sub = self.adjacency[keep][:, keep].tocoo()
        graph = nx.Graph()
        for pos in keep:
            graph.add_node(int(pos), kind=self.nodes["kind"].iat[pos], label=str(self.nodes["label"].iat[pos]))
        graph.add_weighted_edges_from((int(keep[a]), int(keep[b]), float(w))
                                      for a, b, w in zip(sub.row, sub.col, sub.data) if a < b)
        return graph


def _tag_pairs(tags: pd.DataFrame | None, film_ids: np.ndarray, min_tag_count: int) -> pd.DataFrame:
    """Distinct (movieId, tag) pairs of the kept tags (lower-cased, stripped, on >= min_tag_count films)."""
    empty = pd.DataFrame({ITEM: np.array([], dtype=np.int64), TAG: np.array([], dtype=object)})
    if tags is None or len(tags) == 0:
        return empty
    missing = [c for c in (ITEM, TAG) if c not in tags.columns]
    if missing:
        raise ValueError(f"tags is missing column(s) {missing}; pass ml.tags (columns movieId, tag) or None")
    pairs = tags[[ITEM, TAG]].dropna()
    pairs = pairs.assign(**{TAG: pairs[TAG].astype(str).str.lower().str.strip()})
    pairs = pairs[(pairs[TAG] != "") & pairs[ITEM].isin(film_ids)].drop_duplicates()
    films_per_tag = pairs.groupby(TAG)[ITEM].transform("size")
    return pairs[films_per_tag >= min_tag_count].reset_index(drop=True)


def build_graph(ratings: pd.DataFrame, movies: pd.DataFrame | None = None, tags: pd.DataFrame | None = None, *,
                min_rating: float | None = 4.0, rating_weights: bool = False, min_tag_count: int = 2,
                relation_weights: dict | None = None) -> KnowledgeGraph:
    """Build the :class:`KnowledgeGraph` of ``ratings`` (the training frame), ``movies`` and ``tags``.

    Parameters
    ----------
    ratings : DataFrame
        ``userId, movieId, rating``: the ``rated`` triples. Build it from the *training* ratings only.
    movies : DataFrame or None
        ``movieId, title, year, genres`` (``ml.movies``): every film becomes a node, with its ``has_genre`` and
        ``from_decade`` triples. ``None``: only the rated films, no metadata.
    tags : DataFrame or None
        ``movieId, tag`` (``ml.tags``); ``None`` or empty (MovieLens 1M): no tag nodes.
    min_rating : float or None
        A ``rated`` triple only for ratings at or above it (the user liked the film); ``None``: every rating.
        A user none of whose ratings reaches it keeps all their ratings as ``rated`` triples, so every user of
        ``ratings`` has an edge.
    rating_weights : bool
        Weight each ``rated`` edge by the rating itself instead of 1.
    min_tag_count : int
        Keep a tag only if it was put on at least this many distinct films.
    relation_weights : dict or None
        Relation -> weight multiplying its edges in ``adjacency`` (missing relations: 1; 0 drops the edges
        from the adjacency, the triples stay).

    A node without edges (a user whose ``rated`` weight is 0) is isolated, and
    :func:`random_walk_with_restart` refuses to start from it. Cost: linear in the number of triples.
    """
    check_ratings(ratings, name="ratings")
    check_number("build_graph", "min_rating", min_rating, allow_none=True)
    check_bool("build_graph", "rating_weights", rating_weights)
    check_int("build_graph", "min_tag_count", min_tag_count)
    weights = {r: 1.0 for r in RELATIONS}
    for name, value in (relation_weights or {}).items():
        if name not in RELATIONS:
            raise ValueError(f"build_graph: unknown relation {name!r} in relation_weights; the relations are "
                             f"{list(RELATIONS)}")
        weights[name] = float(check_number("build_graph", f"relation_weights[{name!r}]", value))
    if movies is not None:
        if not isinstance(movies, pd.DataFrame):
            raise TypeError(f"build_graph: movies must be a DataFrame (ml.movies) or None, got {type(movies).__name__}")
        missing = [c for c in (ITEM, GENRES) if c not in movies.columns]
        if missing:
            raise ValueError(f"build_graph: movies is missing column(s) {missing}; pass ml.movies")
        if movies[ITEM].duplicated().any():
            raise ValueError("build_graph: movies has duplicated movieIds; keep one row per film")

    user_ids = np.sort(ratings[USER].unique())
    film_ids = np.sort(pd.unique(np.concatenate([ratings[ITEM].to_numpy(),
                                                 [] if movies is None else movies[ITEM].to_numpy()])))
    meta = (movies.set_index(ITEM).reindex(film_ids) if movies is not None
            else pd.DataFrame(index=pd.Index(film_ids, name=ITEM)))
    genre_lists = (meta[GENRES] if GENRES in meta.columns else pd.Series([[]] * len(film_ids), index=meta.index))
    genre_lists = genre_lists.map(lambda gs: list(gs) if isinstance(gs, (list, tuple, np.ndarray)) else [])
    exploded = genre_lists.explode().dropna()
    genre_pairs = pd.DataFrame({ITEM: exploded.index.to_numpy(), "genre": exploded.to_numpy(dtype=object)})
    years = pd.to_numeric(meta[YEAR], errors="coerce") if YEAR in meta.columns else pd.Series(np.nan, index=meta.index)
    decade = (years // 10 * 10).dropna().astype(np.int64)
    tag_pairs = _tag_pairs(tags, film_ids, min_tag_count)

    genre_keys = np.sort(genre_pairs["genre"].unique()).astype(object)
    tag_keys = np.sort(tag_pairs[TAG].unique()).astype(object)
    decade_keys = np.sort(decade.unique())
    titles = meta[TITLE].fillna("").astype(str).to_numpy() if TITLE in meta.columns else film_ids.astype(str)
    keys = [user_ids, film_ids, genre_keys, tag_keys, decade_keys]
    labels = [[f"user {u}" for u in user_ids], [t or f"film {f}" for t, f in zip(titles, film_ids)],
              list(genre_keys), list(tag_keys), [f"{d}s" for d in decade_keys]]
    nodes = pd.DataFrame({"kind": np.repeat(KINDS, [len(k) for k in keys]),
                          "key": np.concatenate([np.asarray(k, dtype=object) for k in keys]),
                          "label": [lab for part in labels for lab in part]})
    starts = np.cumsum([0] + [len(k) for k in keys])

    def at(kind: int, values, universe) -> np.ndarray:
        return starts[kind] + pd.Index(universe).get_indexer(values)

    liked = ratings
    if min_rating is not None:  # a user who liked nothing keeps every rating, or no walk could start from them
        best = ratings.groupby(USER)[RATING].transform("max")
        liked = ratings[(ratings[RATING] >= min_rating) | (best < min_rating)]
    parts = [
        ("rated", at(0, liked[USER], user_ids), at(1, liked[ITEM], film_ids),
         liked[RATING].to_numpy(np.float64) if rating_weights else np.ones(len(liked))),
        ("has_genre", at(1, genre_pairs[ITEM], film_ids), at(2, genre_pairs["genre"], genre_keys),
         np.ones(len(genre_pairs))),
        ("has_tag", at(1, tag_pairs[ITEM], film_ids), at(3, tag_pairs[TAG], tag_keys), np.ones(len(tag_pairs))),
        ("from_decade", at(1, decade.index, film_ids), at(4, decade.to_numpy(), decade_keys), np.ones(len(decade))),
    ]
    triples = pd.DataFrame({
        "head": np.concatenate([p[1] for p in parts]).astype(np.int64),
        "relation": np.repeat([p[0] for p in parts], [len(p[1]) for p in parts]),
        "tail": np.concatenate([p[2] for p in parts]).astype(np.int64),
        "weight": np.concatenate([p[3] for p in parts]),
    })
    w = triples["weight"].to_numpy() * triples["relation"].map(weights).to_numpy(np.float64)
    h, t = triples["head"].to_numpy(), triples["tail"].to_numpy()
    n = len(nodes)
    adjacency = sp.csr_matrix((np.concatenate([w, w]), (np.concatenate([h, t]), np.concatenate([t, h]))),
                              shape=(n, n))
    adjacency.eliminate_zeros()
    adjacency.sort_indices()
    return KnowledgeGraph(nodes, triples, adjacency, has_tags=len(tag_keys) > 0)


def transition_matrix(adjacency) -> sp.csr_matrix:
    r"""The column-stochastic :math:`P = A D^{-1}`: :math:`P_{ij} = A_{ij} / \sum_k A_{kj}`, the probability
    that a walker at node :math:`j` steps to node :math:`i`. An isolated node's column stays 0."""
    A = sp.csr_matrix(adjacency, dtype=np.float64)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"adjacency must be square, got shape {A.shape}")
    if A.nnz and A.data.min() < 0:
        raise ValueError("adjacency has negative weights; a walk needs weights >= 0")
    degree = np.asarray(A.sum(axis=0)).ravel()
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return (A @ sp.diags(inverse)).tocsr()


def random_walk_with_restart(transition, start, alpha: float = 0.3, *, tol: float = 1e-6, max_iter: int = 100,
                             dtype=np.float64, return_iterations: bool = False):
    r"""Visit probabilities of walks with restart, by power iteration, for every column of ``restart`` at once.

    Iterates :math:`X_{k+1} = (1-\alpha)\,P X_k + \alpha R` from :math:`X_0 = R` (:math:`R` = ``start``) until the largest column-wise
    L1 change :math:`\max_c \lVert X_{k+1} - X_k\rVert_1` is below ``tol`` (or ``max_iter`` steps); the error
    to the fixed point is then at most ``tol`` :math:`(1-\alpha)/\alpha` per column.

    Parameters
    ----------
    transition : sparse (n, n)
        Column-stochastic :math:`P` (:func:`transition_matrix`).
    start : array or sparse (n, b) or (n,)
        Each column a restart distribution (an :math:`e_u`, or any distribution summing to 1). Its mass must
        sit on nodes with at least one edge: a walk cannot leave an isolated node (``ValueError``).
    alpha : float
        Restart probability, strictly between 0 and 1: high = stay close to the start.
    tol, max_iter
        Stopping rule.
    dtype : numpy float type
        ``float64`` (default) or ``float32``, three times faster on a large graph and precise to about 1e-7,
        plenty for ranking (what :class:`~recsys_course.models.graph.RandomWalk` uses).
    return_iterations : bool
        Also return the number of steps taken.

    Returns ``X`` (n, b) of ``dtype`` (or (n,) for a 1-d ``start``), and the step count with ``return_iterations``.
    Each column sums to 1 (in an undirected graph a walk that starts on nodes with edges only meets nodes with
    edges). Nodes with no path from the start keep probability exactly 0. Cost: ``nnz(P) * b`` per step.
    """
    if not (isinstance(alpha, (int, float, np.floating)) and 0 < alpha < 1):
        raise ValueError(f"alpha (the restart probability) must be strictly between 0 and 1, got {alpha!r}")
    check_number("random_walk_with_restart", "tol", tol, positive=True)
    check_int("random_walk_with_restart", "max_iter", max_iter)
    P = sp.csr_matrix(transition)
    R = start.toarray() if sp.issparse(start) else np.asarray(start, dtype=np.float64)
    flat = R.ndim == 1
    R = R.reshape(len(R), -1)
    if P.shape != (R.shape[0], R.shape[0]):
        raise ValueError(f"transition is {P.shape} but start has {R.shape[0]} rows; they must match the nodes")
    stuck = np.flatnonzero((np.abs(R).sum(axis=1) > 0) & (np.asarray(abs(P).sum(axis=0)).ravel() == 0))
    if len(stuck):
        raise ValueError(f"the walk would start on {len(stuck)} node(s) without any edge (e.g. positions "
                         f"{stuck[:5].tolist()}): it could never leave them. Give those nodes an edge (for a "
                         "user: a rating at or above min_rating) or start elsewhere")
    dtype = np.dtype(dtype)
    P = P.astype(dtype)
    rows, cols = np.nonzero(R)
    teleport = (alpha * R[rows, cols]).astype(dtype)  # the restart term, added only where R is non-zero
    X = R.astype(dtype)
    steps = 0
    while steps < max_iter:
        new = P @ X
        new *= dtype.type(1 - alpha)
        new[rows, cols] += teleport
        change = np.abs(new - X).sum(axis=0).max() if X.size else 0.0
        X, steps = new, steps + 1
        if change < tol:
            break
    out = X.ravel() if flat else X
    return (out, steps) if return_iterations else out

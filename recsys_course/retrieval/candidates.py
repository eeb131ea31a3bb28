r"""Candidate generation: a few hundred films per user, cheaply, for a ranker to order.

* :func:`retrieve` — any fitted course model as a retriever: its ``score`` row, seen films removed, the top n.
* :func:`factor_vectors` — a factor model's scores as one inner product, :math:`s_{ui} = x_u^\top y_i`, so that a
  nearest-neighbour index can answer "the best n films for u" (:class:`EmbeddingRetriever`).
* :func:`merge_candidates` — the union of several retrievers' lists, round-robin.
* :func:`candidate_recall` — the share of a user's relevant test films that survive retrieval.

Candidates are *catalogue positions*: columns of the model's ``item_ids_`` (``-1`` pads a short list).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..checks import check_bool, check_int
from ..config import ITEM, RATING, RELEVANCE_THRESHOLD, USER
from ..metrics import mask_seen, top_k
from ..models.base import NotFittedError, Recommender, UnknownIdError, _as_array
from .index import build_index

__all__ = ["FACTOR_MODELS", "retrieve", "factor_vectors", "EmbeddingRetriever", "merge_candidates",
           "candidate_recall"]

#: the models :func:`factor_vectors` turns into user and item vectors
FACTOR_MODELS = ("BiasedMF", "ALS", "PureSVD", "ImplicitALS", "BPR", "TextProfile")
#: users scored at once by :func:`retrieve` (memory: this many × n_items floats)
_BATCH = 512


def _check_fitted(model, caller: str) -> None:
    if not isinstance(model, Recommender):
        raise TypeError(f"{caller} needs a fitted model of the course (recsys_course.models), got "
                        f"{type(model).__name__}")
    if not model.is_fitted:
        raise NotFittedError(f"{type(model).__name__} is not fitted yet: call .fit(train) before {caller}")


def _top_positions(scores: np.ndarray, n: int) -> np.ndarray:
    """Each row's ``n`` best columns, best first; ``-1`` where fewer than ``n`` are finite."""
    top = top_k(scores, n)
    top[~np.isfinite(np.take_along_axis(scores, top, 1))] = -1
    if top.shape[1] < n:
        top = np.pad(top, ((0, 0), (0, n - top.shape[1])), constant_values=-1)
    return top


def retrieve(model, users, n: int, *, exclude_seen: bool = True) -> np.ndarray:
    """Any fitted course model as a retriever: each user's ``n`` best catalogue positions, best first.

    The numbers ranked are ``model.score(users)`` (films the user rated in train set to ``-inf`` with
    ``exclude_seen``), ordered by :func:`recsys_course.metrics.top_k` (ties to the smaller position, as in
    ``recommend``). ``-inf`` films are never returned: if fewer than ``n`` films have a finite score, the row is
    padded with ``-1``. Users are scored in batches (memory: 512 × n_items floats).

    Returns
    -------
    int64 array (len(users), n) of columns of ``model.item_ids_``.

    Raises
    ------
    TypeError, NotFittedError
        Not a fitted course model.
    ValueError
        ``n`` not a positive integer.
    UnknownIdError
        Users the model never saw (unless it handles new users).
    """
    _check_fitted(model, "retrieve")
    check_int("retrieve", "n", n)
    check_bool("retrieve", "exclude_seen", exclude_seen)
    users = _as_array(users, "users")
    out = np.empty((len(users), n), dtype=np.int64)
    for start in range(0, len(users), _BATCH):
        ids = users[start:start + _BATCH]
        scores = np.array(model.score(ids), dtype=np.float64)
        if exclude_seen:
            pos = model.user_positions(ids)
            known = np.flatnonzero(pos >= 0)
            mask_seen(scores, model.seen_[pos[known]], rows=known)
        out[start:start + len(ids)] = _top_positions(scores, n)
    return out


def factor_vectors(model) -> tuple[np.ndarray, np.ndarray]:
    r"""User and item vectors whose inner products rank every user's catalogue exactly as ``model.score`` does.

    Per-user constants are dropped (they do not change a user's order):

    * **BiasedMF, ALS** — :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`: users :math:`[p_u, 1]`, items
      :math:`[q_i, b_i]` (:math:`\mu + b_u` dropped);
    * **BPR** — :math:`x_{ui} = p_u^\top q_i + b_i`: users :math:`[p_u, 1]`, items :math:`[q_i, b_i]`;
    * **PureSVD, ImplicitALS** — :math:`s_{ui} = x_u^\top y_i`: the factors as they are;
    * **TextProfile** — :math:`\cos(p_u, e_i)` with unit profiles :math:`p_u` and film text vectors :math:`e_i`
      (films without a text are zero rows, score 0, as in the model).

    Returns
    -------
    (user_vectors (n_users, d), item_vectors (n_items, d)), float64, rows in ``user_ids_`` / ``item_ids_`` order.

    Raises
    ------
    TypeError
        Any other model (the message lists :data:`FACTOR_MODELS`); NotFittedError before ``fit``.
    """
    from ..models.factorization import ALS, BPR, BiasedMF, ImplicitALS, PureSVD
    from ..models.text_models import TextProfile

    _check_fitted(model, "factor_vectors")
    if isinstance(model, (BiasedMF, ALS, BPR)):
        bias = model.item_bias_
        users = np.hstack([model.user_factors_, np.ones((model.n_users, 1))])
        items = np.hstack([model.item_factors_, bias[:, None]])
        return users, items
    if isinstance(model, (PureSVD, ImplicitALS)):
        return np.asarray(model.user_factors_, np.float64), np.asarray(model.item_factors_, np.float64)
    if isinstance(model, TextProfile):
        return np.asarray(model.profiles_, np.float64), np.asarray(model.catalogue_vectors_, np.float64)
    raise TypeError(f"factor_vectors: {type(model).__name__} has no user and item vectors whose inner product is "
                    f"its score; the supported models are {list(FACTOR_MODELS)}. Use retrieve(model, users, n) "
                    "instead: it works with every model")


class EmbeddingRetriever:
    """A retriever that answers "the best n films for u" with a nearest-neighbour index over
    :func:`factor_vectors` — the way a production system retrieves from millions of items.

    ``fit(train)`` fits the model (unless it is already fitted on a frame of that size with the same ids) and
    builds the index; an already-fitted model is indexed at the first ``retrieve``. Inner product (``metric="ip"``)
    by default, so the order is the model's own (approximately, for ``"hnsw"`` / ``"ivf"``).

    Parameters
    ----------
    model : a course model of :data:`FACTOR_MODELS`, fitted or not
    kind : str
        The index kind of :func:`~recsys_course.retrieval.index.build_index` (default ``"hnsw"``).
    **index_params
        Passed to ``build_index`` (``M``, ``ef_search``, ``nlist``, ``nprobe``, ``metric``...).

    After fitting: ``index_`` (a :class:`~recsys_course.retrieval.index.VectorIndex`), ``user_vectors_``,
    ``item_ids_``, ``n_train_``, ``user_ids_`` (the model's).
    """

    def __init__(self, model, kind: str = "hnsw", **index_params):
        self.model = model
        self.kind = kind
        self.index_params = index_params

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.index_params.items())
        return f"EmbeddingRetriever({type(self.model).__name__}, kind={self.kind!r}{params})"

    @property
    def is_fitted(self) -> bool:
        return isinstance(self.model, Recommender) and self.model.is_fitted

    def fit(self, train: pd.DataFrame) -> EmbeddingRetriever:
        """Fit the model on ``train`` (skipped if it is fitted on this train already) and build the index."""
        if not fitted_on(self.model, train):
            self.model.fit(train)
        self._build()
        return self

    def _build(self) -> None:
        _check_fitted(self.model, "EmbeddingRetriever")
        self.user_vectors_, items = factor_vectors(self.model)
        self.index_ = build_index(items, self.kind, **self.index_params)
        self._indexed = self.model.n_train_, self.model.item_ids_

    @property
    def item_ids_(self) -> np.ndarray:
        """The model's catalogue: the films the candidate positions index."""
        return self.model.item_ids_

    def retrieve(self, users, n: int, exclude_seen: bool = True) -> np.ndarray:
        """Each user's ``n`` best catalogue positions from the index, best first; the contract of :func:`retrieve`.

        Excluding seen films: the index is asked for ``n + s`` films, ``s`` the most films any user of the batch
        rated in train (users go in batches sorted by that count, so one heavy user does not slow the rest), the
        seen ones are dropped and the first ``n`` kept. Rows are padded with ``-1`` if fewer remain (an
        approximate index can return fewer than asked).

        Raises UnknownIdError for users the model never saw, ValueError for a bad ``n``.
        """
        check_int("EmbeddingRetriever.retrieve", "n", n)
        check_bool("EmbeddingRetriever.retrieve", "exclude_seen", exclude_seen)
        if getattr(self, "_indexed", None) is None or self._indexed[0] != self.model.n_train_ \
                or self._indexed[1] is not self.model.item_ids_:
            self._build()
        users = _as_array(users, "users")
        pos = self.model.user_positions(users)
        if (pos < 0).any():
            bad = users[pos < 0]
            raise UnknownIdError(f"EmbeddingRetriever: {type(self.model).__name__} has no vector for {len(bad)} "
                                 f"user(s) absent from its training data (e.g. {bad[:5].tolist()}); fold them in "
                                 "(recsys_course.retrieval.fold_in) or retrieve for them with Popularity")
        seen = self.model.seen_
        counts = np.diff(seen.indptr)[pos] if exclude_seen else np.zeros(len(pos), dtype=np.int64)
        order = np.argsort(counts, kind="stable")
        out = np.full((len(users), n), -1, dtype=np.int64)
        for start in range(0, len(order), 256):
            rows = order[start:start + 256]
            k = int(min(self.index_.ntotal, n + counts[rows].max()))
            _, found = self.index_.search(self.user_vectors_[pos[rows]], k)
            for row, cand in zip(rows, found):
                cand = cand[cand >= 0]
                if exclude_seen:
                    cand = cand[~np.isin(cand, seen.indices[seen.indptr[pos[row]]:seen.indptr[pos[row] + 1]])]
                out[row, :min(n, len(cand))] = cand[:n]
        return out


def fitted_on(model, train: pd.DataFrame) -> bool:
    """Whether ``model`` is fitted on ``train`` already: as many training ratings, the same user and item ids."""
    if isinstance(model, EmbeddingRetriever):
        model = model.model
    if not (isinstance(model, Recommender) and model.is_fitted) or model.n_train_ != len(train):
        return False
    items, users = np.sort(train[ITEM].unique()), np.sort(train[USER].unique())
    return np.array_equal(model.item_ids_, items) and np.array_equal(model.user_ids_, users)


def merge_candidates(lists, n: int) -> np.ndarray:
    """The union of several retrievers' lists, round-robin: every list's rank 1, then every list's rank 2, ...
    (in the order of ``lists``), a film already taken skipped, until ``n`` per user.

    Parameters
    ----------
    lists : sequence of int arrays (n_users, n_j)
        Catalogue positions per user, best first, ``-1`` = no film (skipped). Same number of users in each.
    n : int

    Returns
    -------
    int64 array (n_users, n), padded with ``-1`` where the union has fewer than ``n`` films.
    """
    check_int("merge_candidates", "n", n)
    arrays = [np.atleast_2d(np.asarray(a, dtype=np.int64)) for a in lists]
    if not arrays:
        raise ValueError("merge_candidates needs at least one list of candidates")
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(f"every list must have one row per user; got {[len(a) for a in arrays]} rows")
    width = max(a.shape[1] for a in arrays)
    padded = [np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=-1) for a in arrays]
    interleaved = np.stack(padded, axis=2).reshape(len(arrays[0]), -1)   # rank 1 of each, rank 2 of each, ...
    out = np.full((len(interleaved), n), -1, dtype=np.int64)
    for row, values in enumerate(interleaved):
        values = values[values >= 0]
        _, first = np.unique(values, return_index=True)
        keep = values[np.sort(first)][:n]
        out[row, :len(keep)] = keep
    return out


def candidate_recall(model_item_ids, users, candidates, test: pd.DataFrame, *,
                     relevance_threshold: float | None = RELEVANCE_THRESHOLD) -> float:
    r"""Candidate recall@N: the share of each user's relevant test films that survive retrieval, averaged,

    .. math:: \mathrm{recall@}N = \frac{1}{|U|}\sum_{u \in U} \frac{|C_u \cap \mathrm{Rel}(u)|}{|\mathrm{Rel}(u)|},

    with :math:`C_u` the user's N candidates and :math:`\mathrm{Rel}(u)` their test films rated at least
    ``relevance_threshold`` (``None``: every test film), as in :func:`recsys_course.evaluate.evaluate`. Relevant
    films the catalogue does not hold count as misses (no retriever can find them). :math:`U` = the ``users`` with
    at least one relevant test film (the others have no defined recall and are skipped). It bounds what any
    ranker can reach on those candidates.

    Parameters
    ----------
    model_item_ids : the catalogue (``model.item_ids_``), which ``candidates`` index
    users : user ids, one per row of ``candidates``
    candidates : int array (len(users), N), ``-1`` = no film
    test : ratings frame

    Raises ValueError if ``users`` and ``candidates`` do not pair up, or no user has a relevant test film.
    """
    item_ids = np.asarray(model_item_ids)
    users = _as_array(users, "users")
    cand = np.atleast_2d(np.asarray(candidates))
    if len(cand) != len(users):
        raise ValueError(f"candidates has {len(cand)} rows but there are {len(users)} users; one row per user")
    rel = test if relevance_threshold is None else test[test[RATING] >= relevance_threshold]
    rel = rel[rel[USER].isin(users)]
    if rel.empty:
        raise ValueError("none of these users has a relevant test film, so candidate recall is undefined")
    row_of = pd.Index(users).get_indexer(rel[USER])
    found = cand >= 0
    chosen = pd.MultiIndex.from_arrays([np.repeat(users, cand.shape[1])[found.ravel()], item_ids[cand[found]]])
    hit = pd.MultiIndex.from_arrays([rel[USER], rel[ITEM]]).isin(chosen)
    per_user = pd.DataFrame({"row": row_of, "hit": hit}).groupby("row")["hit"].mean()
    return float(per_user.mean())

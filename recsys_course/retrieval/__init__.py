r"""Personalised search (notebook 11): two-stage retrieval and ranking, nearest-neighbour indexes, text queries,
users with no history.

* :mod:`~recsys_course.retrieval.index` — :func:`normalise`, :func:`exact_search` (maximum inner-product search by
  hand in NumPy), :func:`build_index` → :class:`VectorIndex` (``"numpy"``, ``"exact"``, ``"hnsw"``, ``"ivf"``;
  ``search``, ``set_params``, ``save``) and :func:`load_index`; :func:`recall_at_k`, :func:`query_latency`,
  :func:`latency_summary`, :func:`one_faiss_thread`;
* :mod:`~recsys_course.retrieval.candidates` — :func:`retrieve` (any model as a retriever), :func:`factor_vectors`,
  :class:`EmbeddingRetriever`, :func:`merge_candidates`, :func:`candidate_recall`;
* :mod:`~recsys_course.retrieval.two_stage` — :class:`TwoStage`, retrieve then rank, a model of the course;
* :mod:`~recsys_course.retrieval.search` — :func:`check_query`, :func:`query_scores`, :func:`personalised_scores`,
  :class:`PersonalisedSearch`, :func:`film_queries`, :func:`taste_texts`;
* :mod:`~recsys_course.retrieval.foldin` — :func:`fold_in`, :func:`fold_in_recommend` (new users, no retraining).

Positions are catalogue columns (a model's ``item_ids_``) or rows of the indexed vectors; ``-1`` pads a short list.
Ties are broken by the smaller position, as everywhere in the course. Importing this package imports neither torch
nor faiss: faiss (``pip install faiss-cpu``; ``faiss-gpu`` on a GPU machine) loads when an index needs it, the text
encoder when a query is embedded.
"""
from .candidates import FACTOR_MODELS, EmbeddingRetriever, candidate_recall, factor_vectors, merge_candidates, retrieve
from .foldin import FOLD_IN_MODELS, FoldIn, fold_in, fold_in_recommend
from .index import (
    INDEX_PARAMS,
    KINDS,
    SEARCH_PARAMS,
    VectorIndex,
    build_index,
    exact_search,
    latency_summary,
    load_index,
    normalise,
    one_faiss_thread,
    query_latency,
    recall_at_k,
)
from .search import PersonalisedSearch, check_query, film_queries, personalised_scores, query_scores, taste_texts
from .two_stage import TwoStage

__all__ = ["KINDS", "INDEX_PARAMS", "SEARCH_PARAMS", "FACTOR_MODELS", "FOLD_IN_MODELS", "normalise", "exact_search",
           "build_index", "VectorIndex", "load_index", "recall_at_k", "query_latency", "latency_summary",
           "one_faiss_thread", "retrieve", "factor_vectors", "EmbeddingRetriever", "merge_candidates",
           "candidate_recall", "TwoStage", "check_query", "query_scores", "personalised_scores", "PersonalisedSearch",
           "film_queries", "taste_texts", "fold_in", "fold_in_recommend", "FoldIn"]

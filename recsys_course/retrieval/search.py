r"""Text queries, personalised: "dark sci-fi about artificial intelligence", for this user.

A typed query is embedded with the course's sentence encoder (:func:`recsys_course.text.load_text_encoder`, the
packaged all-MiniLM-L6-v2, cached) and scored against the films' text vectors by cosine,
:math:`c_i = \cos(\mathrm{BERT}(\text{query}), e_i)`. Personalised, the user's own scores :math:`s_{ui}` from any
course model join in (:func:`personalised_scores`):

.. math:: \mathrm{score}_{ui} = \lambda\,\tilde c_i + (1 - \lambda)\,\tilde s_{ui},

with :math:`\tilde{\cdot}` each row's percentile ranks, so that a cosine and, say, a predicted rating are on one
scale. :class:`PersonalisedSearch` puts it together; :func:`film_queries` and :func:`taste_texts` build the texts
an honest evaluation needs (a film's query never contains its title; a user's taste only their own history).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..checks import check_bool, check_choice, check_int, check_number, is_int
from ..config import GENRES, ITEM, RANK, RATING, SCORE, TAG, TITLE, USER
from ..group.strategies import rank_normalise
from ..metrics import top_k
from ..models.base import NotFittedError, Recommender, UnknownIdError
from .index import normalise

__all__ = ["check_query", "query_scores", "personalised_scores", "PersonalisedSearch", "film_queries",
           "taste_texts"]


def check_query(text) -> str:
    """The query stripped of surrounding white space. Raises ValueError for a non-string, an empty query or one
    of only white space (the message says what to pass instead)."""
    if not isinstance(text, str):
        raise ValueError(f"a query must be a string of words, e.g. 'funny animated film for children', got "
                         f"{type(text).__name__} {text!r:.60}")
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"the query {text!r} is empty or only white space: type a few words describing the film "
                         "(or search with user= alone and no text: use the user's recommendations instead)")
    return stripped


def query_scores(queries, item_vectors, encoder=None) -> np.ndarray:
    r"""Cosine of each query with each film: :math:`\cos(\mathrm{BERT}(q), e_i)`.

    Parameters
    ----------
    queries : str or list of str
        Checked with :func:`check_query`.
    item_vectors : array (n_items, dim)
        The films' text vectors (zero rows allowed: a film without a text scores 0).
    encoder : anything with ``encode(list[str]) -> ndarray``, or None
        ``None``: the course's packaged encoder, loaded once (:func:`recsys_course.text.default_encoder`).

    Returns
    -------
    float64 array (n_queries, n_items) (one row for a single string).
    """
    texts = [check_query(q) for q in ([queries] if isinstance(queries, str) else list(queries))]
    if encoder is None:
        from ..text import default_encoder

        encoder = default_encoder()
    q = normalise(np.asarray(encoder.encode(texts)), zero="keep")
    films = normalise(item_vectors, zero="keep")
    if q.shape[1] != films.shape[1]:
        raise ValueError(f"the encoder gives vectors of dimension {q.shape[1]} but the film vectors have dimension "
                         f"{films.shape[1]}: embed the films with the same encoder as the queries")
    return (q @ films.T).astype(np.float64)


def _check_lam(owner: str, lam) -> float:
    check_number(owner, "lam", lam)
    if lam > 1:
        raise ValueError(f"{owner}: lam must be between 0 (the user's scores only) and 1 (the query only), got "
                         f"{lam!r}")
    return float(lam)


def _percentiles(scores: np.ndarray) -> np.ndarray:
    """Each row's :func:`~recsys_course.group.strategies.rank_normalise` percentiles, row by row (every row has its
    own ``-inf`` films)."""
    return np.vstack([rank_normalise(row[None, :]) for row in scores])


def personalised_scores(query_scores, user_scores, lam: float) -> np.ndarray:
    r"""Mix a query's scores with a user's: :math:`\lambda\,\tilde c_i + (1 - \lambda)\,\tilde s_{ui}`.

    :math:`\tilde c` and :math:`\tilde s` are each row's percentile ranks over the films with a finite score,
    :func:`~recsys_course.group.strategies.rank_normalise`: :math:`(\text{points} + 1) / n \in (0, 1]`, 1 for the
    row's best film, ties sharing the mean. Why percentiles and not the raw numbers or z-scores: a cosine lives in
    about [0.1, 0.6], a predicted rating in [0.5, 5], an EASE score anywhere, and their spreads and skews differ —
    only ranks put any two models on one scale, so that :math:`\lambda` means the same thing whatever the model
    (a z-score still lets one long tail dominate). :math:`\lambda = 1` ranks by the query alone, :math:`\lambda = 0`
    by the user's model alone.

    Parameters
    ----------
    query_scores : array (n_items,) or (n_rows, n_items)
        Cosines of the query (one row, broadcast to every user row, or one row per user row).
    user_scores : array (n_items,) or (n_rows, n_items)
        The model's ``score`` rows; ``-inf`` = a film the model cannot score (or a seen film): it stays ``-inf``,
        the worst, at every :math:`\lambda` — never NaN.
    lam : float in [0, 1]

    Returns
    -------
    float64 array (n_rows, n_items) (a 1-d result for two 1-d inputs).

    Raises ValueError for a :math:`\lambda` outside [0, 1], shapes that do not match, NaN or +inf.
    """
    _check_lam("personalised_scores", lam)
    q, u = np.asarray(query_scores, dtype=np.float64), np.asarray(user_scores, dtype=np.float64)
    one = q.ndim == 1 and u.ndim == 1
    q, u = np.atleast_2d(q), np.atleast_2d(u)
    if q.shape[1] != u.shape[1] or (len(q) != len(u) and len(q) != 1 and len(u) != 1):
        raise ValueError(f"query_scores {q.shape} and user_scores {u.shape} must score the same films (columns) and "
                         "have one row, or the same number of rows")
    nq, nu = _percentiles(q), _percentiles(u)
    excluded = ~np.isfinite(nq) | ~np.isfinite(nu)
    out = lam * np.where(np.isfinite(nq), nq, 0.0) + (1 - lam) * np.where(np.isfinite(nu), nu, 0.0)
    out = np.where(excluded, -np.inf, out)
    return out[0] if one else out


class PersonalisedSearch:
    r"""Search the catalogue with a typed query, optionally for a user: ``search(query, user, k, lam)``.

    Parameters
    ----------
    model : a fitted course model
        The user side: its ``score`` rows are :math:`s_{ui}` in :func:`personalised_scores`.
    item_vectors : array (model.n_items, dim)
        The films' text vectors, **one row per film of** ``model.item_ids_``, in that order (e.g.
        ``TextProfile.catalogue_vectors_``, or ``embed_texts(item_texts(...).reindex(model.item_ids_))``).
    encoder : anything with ``encode(list[str]) -> ndarray``, or None
        The query encoder (``None``: the course's packaged one, loaded at the first search). It must be the one
        that made ``item_vectors``.

    Raises TypeError / NotFittedError for a model that is not a fitted course model, ValueError when
    ``item_vectors`` has not one row per catalogue film.
    """

    def __init__(self, model, item_vectors, encoder=None):
        if not isinstance(model, Recommender):
            raise TypeError(f"PersonalisedSearch needs a fitted course model, got {type(model).__name__}")
        if not model.is_fitted:
            raise NotFittedError(f"{type(model).__name__} is not fitted yet: call .fit(train) first")
        vectors = normalise(item_vectors, zero="keep")
        if len(vectors) != model.n_items:
            raise ValueError(f"item_vectors has {len(vectors)} rows but the model's catalogue has {model.n_items} "
                             "films: pass one row per film of model.item_ids_, in that order")
        self.model = model
        self.item_vectors = vectors
        self.encoder = encoder

    def query_scores(self, query) -> np.ndarray:
        """Cosine of the query with every catalogue film (float64, n_items)."""
        return query_scores(query, self.item_vectors, self.encoder)[0]

    def search(self, query, user=None, k: int = 10, lam: float = 0.5, exclude_seen: bool = False,
               unknown: str = "raise") -> pd.DataFrame:
        r"""The top ``k`` films for ``query`` (and ``user``): :math:`\lambda\,\tilde c_i + (1-\lambda)\,\tilde s_{ui}`.

        Parameters
        ----------
        query : str
        user : a userId, or None
            ``None``: the query alone (the score is the cosine).
        k : int, 1..n_items
        lam : float in [0, 1]
            Weight of the query (1: query only, 0: the user's own recommendations).
        exclude_seen : bool
            Leave out the films the user rated in train (needs a known user).
        unknown : "raise" or "query"
            A user the model never saw: ``"raise"`` raises :class:`UnknownIdError` (the message gives both fixes);
            ``"query"`` answers with the query alone and says so in the ``personalised`` column (False) — what a
            service does for a visitor it does not know yet.

        Returns
        -------
        DataFrame ``movieId, score, rank, personalised`` (rank from 1; ties to the smaller movieId). ``score`` is
        the cosine for a query-only search, the mixed percentile score otherwise.

        Raises
        ------
        ValueError
            An empty / blank query, a bad k, lam, unknown or exclude_seen (for a query-only search).
        UnknownIdError
            An unknown user with ``unknown="raise"``.
        """
        check_choice("search", "unknown", unknown, ("raise", "query"))
        check_bool("search", "exclude_seen", exclude_seen)
        _check_lam("search", lam)
        n_items = self.model.n_items
        if not is_int(k) or k < 1 or k > n_items:
            raise ValueError(f"k must be an integer from 1 to the catalogue's {n_items} films, got {k!r}")
        cos = self.query_scores(query)
        personal = user is not None
        if personal and self.model.user_positions([user])[0] < 0 and not self.model.handles_unknown_users:
            if unknown == "raise":
                raise UnknownIdError(
                    f"{type(self.model).__name__} has never seen user {user!r}, so it cannot personalise: search "
                    "with user=None for the query alone (or unknown='query' to fall back to it), or fold the user "
                    "in from a few ratings with recsys_course.retrieval.fold_in")
            personal = False
        if exclude_seen and not personal:
            raise ValueError("exclude_seen=True needs a user the model knows (their seen films); pass user=, or "
                             "exclude_seen=False for a query-only search")
        if personal:
            user_scores = np.array(self.model.score([user])[0], dtype=np.float64)
            scores = personalised_scores(cos, user_scores, lam)
            if exclude_seen:
                scores[self.model.seen_[self.model.user_positions([user])[0]].indices] = -np.inf
        else:
            scores = cos
        top = top_k(scores[None, :], k)[0]
        top = top[np.isfinite(scores[top])]
        return pd.DataFrame({ITEM: self.model.item_ids_[top], SCORE: scores[top], RANK: np.arange(1, len(top) + 1),
                             "personalised": personal})


# --------------------------------------------------------------------------------------------
# texts for an honest evaluation
# --------------------------------------------------------------------------------------------
def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", str(text).lower()))


def _tag_lists(tags: pd.DataFrame | None) -> dict:
    """movieId -> its distinct tags (lower-cased, stripped), most frequent first (ties alphabetical)."""
    if tags is None or len(tags) == 0:
        return {}
    t = pd.DataFrame({ITEM: tags[ITEM].to_numpy(), TAG: tags[TAG].astype(str).str.strip().str.lower()})
    counts = t[t[TAG] != ""].groupby([ITEM, TAG]).size().rename("n").reset_index()
    counts = counts.sort_values([ITEM, "n", TAG], ascending=[True, False, True], kind="stable")
    return counts.groupby(ITEM)[TAG].agg(list).to_dict()


def film_queries(movies: pd.DataFrame, tags: pd.DataFrame | None, items, *, n_tags: int = 3, n_genres: int = 2,
                 seed: int = 0) -> pd.Series:
    """A search query for each film of ``items``, as someone looking for it might type it — built from the
    film's own tags and genres, **never from its title**.

    For each film: its distinct tags (lower-cased) and genres, minus every tag or genre that shares a word with
    the title (words = runs of letters and digits, lower-cased: "toy" is dropped for *Toy Story*, and so is a tag
    "story time"); then ``n_tags`` of the remaining tags and ``n_genres`` of the genres, drawn at random
    (``numpy.random.default_rng([seed, movieId])``: the same film gets the same query whatever else is asked),
    joined by ", ", tags first: e.g. ``"pixar, friendship, animation, comedy"``. A film with no usable tag gets
    a genres-only query; a film with neither is left out (nothing to search for).

    Parameters
    ----------
    movies : DataFrame ``movieId, title, genres`` (genres a list)
    tags : DataFrame ``movieId, tag`` or None
        Only the tags the query writer may know (e.g. not the held-out user's own tags, if that matters).
    items : movieIds to build queries for
    n_tags, n_genres : int >= 0
    seed : int >= 0

    Returns
    -------
    Series movieId -> query text (name ``"query"``), in the order of ``items`` (films left out as above).

    Raises ValueError for a film of ``items`` absent from ``movies``, or bad counts.
    """
    check_int("film_queries", "n_tags", n_tags, low=0)
    check_int("film_queries", "n_genres", n_genres, low=0)
    check_int("film_queries", "seed", seed, low=0)
    items = np.asarray(items.to_numpy() if isinstance(items, (pd.Series, pd.Index)) else items).reshape(-1)
    info = movies.set_index(ITEM)
    missing = pd.Index(items).difference(info.index)
    if len(missing):
        raise ValueError(f"{len(missing)} film(s) of items are not in movies (e.g. {missing[:5].tolist()}); pass "
                         "the movies frame of the same data set")
    tag_lists = _tag_lists(tags)
    out = {}
    for movie in items:
        title = _words(info.at[movie, TITLE])
        genres = info.at[movie, GENRES] if isinstance(info.at[movie, GENRES], (list, tuple)) else []
        own_tags = [t for t in tag_lists.get(movie, []) if not _words(t) & title]
        own_genres = [g.lower() for g in genres if not _words(g) & title]
        rng = np.random.default_rng([seed, int(movie)])
        picked = [own_tags[j] for j in sorted(rng.permutation(len(own_tags))[:n_tags])]
        picked += [own_genres[j] for j in sorted(rng.permutation(len(own_genres))[:n_genres])]
        if picked:
            out[movie] = ", ".join(picked)
    return pd.Series(out, name="query", dtype=object).rename_axis(ITEM)


def taste_texts(ratings: pd.DataFrame, movies: pd.DataFrame, tags: pd.DataFrame | None, *, min_rating: float = 4.0,
                n_genres: int = 3, n_tags: int = 5) -> pd.Series:
    """A short text of each user's taste, in their own words, for serving a user with no usable history from
    text alone: e.g. ``"genres: comedy, drama, romance; tags: quirky, feel-good"``.

    How: the user's liked films among the rows of ``ratings`` (rating ≥ ``min_rating``; a user who liked nothing
    that much: their highest-rated films); the ``n_genres`` genres most frequent among them (ties alphabetical);
    the ``n_tags`` tags the user themself wrote most often (``tags`` rows with their userId, on films among their
    ``ratings`` rows; ties alphabetical). Only the rows passed in are read — pass only the part of a hidden user's
    history the experiment may use. The wording mirrors the films' texts (``genres: ...; tags: ...``,
    :func:`recsys_course.text.item_texts`), so the encoder compares like with like.

    Returns
    -------
    Series userId -> text (name ``"text"``), sorted by userId; ``""`` for a user with neither genres nor tags.
    """
    check_number("taste_texts", "min_rating", min_rating)
    check_int("taste_texts", "n_genres", n_genres, low=0)
    check_int("taste_texts", "n_tags", n_tags, low=0)
    best = ratings.groupby(USER)[RATING].transform("max")
    liked = ratings[(ratings[RATING] >= min_rating) | ((best < min_rating) & (ratings[RATING] == best))]
    genre_of = movies.set_index(ITEM)[GENRES]
    g = liked[[USER, ITEM]].assign(genre=genre_of.reindex(liked[ITEM]).to_numpy()).explode("genre").dropna()
    g["genre"] = g["genre"].str.lower()
    top_genres = _most_frequent(g, "genre", n_genres)
    top_tags = {}
    if tags is not None and len(tags) and n_tags:
        own = tags.merge(ratings[[USER, ITEM]], on=[USER, ITEM])
        own = own.assign(tag=own[TAG].astype(str).str.strip().str.lower())
        top_tags = _most_frequent(own[own["tag"] != ""], "tag", n_tags)
    users = np.sort(ratings[USER].unique())
    texts = []
    for u in users:
        parts = []
        if top_genres.get(u):
            parts.append("genres: " + ", ".join(top_genres[u]))
        if top_tags.get(u):
            parts.append("tags: " + ", ".join(top_tags[u]))
        texts.append("; ".join(parts))
    return pd.Series(texts, index=pd.Index(users, name=USER), name="text")


def _most_frequent(frame: pd.DataFrame, column: str, n: int) -> dict:
    """userId -> the ``n`` most frequent values of ``column`` in their rows (ties alphabetical)."""
    if n == 0 or frame.empty:
        return {}
    counts = frame.groupby([USER, column]).size().rename("n").reset_index()
    counts = counts.sort_values([USER, "n", column], ascending=[True, False, True], kind="stable")
    return counts.groupby(USER).head(n).groupby(USER)[column].agg(list).to_dict()

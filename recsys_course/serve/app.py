r"""The course's recommendation service: a FastAPI app over an :class:`~recsys_course.stream.OnlineFoldIn` and a
durable :class:`~recsys_course.serve.events.EventLog`.

==========================================  =========================================================================
endpoint                                    answer
==========================================  =========================================================================
``GET /recommend?user=U&k=10``              ``{"items": [{"movieId", "score", "rank"}, ...]}``: the user's top k,
                                            films they rated (in training or in an event) left out. 404 for a user
                                            with no rating at all (a new user is served after their first event).
``GET /search?q=TEXT&user=U&k=10&lam=0.5``  ``{"items": [...], "personalised": bool}``: films for a typed query,
                                            personalised by the user's scores (notebook 11's
                                            :math:`\lambda\,\tilde c_i + (1-\lambda)\,\tilde s_{ui}`, percentiles).
                                            Without ``user``, or for a user the service does not know: the query
                                            alone, ``"personalised": false``. Seen films are *not* left out (a
                                            search may look for a film one has seen).
``POST /events``                            body ``{"userId", "movieId", "rating", "timestamp"}`` → 201
                                            ``{"id", ...}`` once the event is committed to the log and folded into
                                            the user's state: the next ``/recommend`` reflects it.
``GET /health``                             ``{"status", "model", "n_events", "uptime_seconds", "search", ...}``
==========================================  =========================================================================

Bad input gets a 4xx with ``{"detail": "<what is wrong and how to fix it>"}`` — never a 500, never a silent
default. Order of work for an event: check it (a film the model knows, a rating on the scale) → commit it to the
log → fold it in → answer. Events are logged one at a time, and each user's events are folded in in log order
(the user's lock is taken before the next event may be logged), so a replay rebuilds exactly the state the
clients were answered from; different users' events are folded in concurrently.

Start-up: the model (the course's default: ALS on all of ml-latest-small, about a second), then the whole event log
replayed (``update_many``: one fold-in per user) — only then does the server listen, so a restarted service answers
from every acknowledged event. The films' text vectors for ``/search`` are computed in a **background thread at
start-up** (the packaged MiniLM encoder: ~35 s for 9,742 films on a cold cache, 0.1 s from the cache in
``data/cache``); until they are ready ``/search`` answers 503 with a ``Retry-After`` header and ``/health`` says
``"search": "building"``. Tests inject the vectors and a stand-in encoder instead.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import asynccontextmanager
from typing import Annotated

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ..config import ITEM, RANK, RATING, RATING_COLUMNS, SCORE, TIME, USER
from ..metrics import top_k
from ..models.base import UnknownIdError
from ..stream import OnlineFoldIn, UnknownFilmError
from .events import EventLog, EventLogError, default_event_log

__all__ = ["create_app", "run", "EXAMPLE_EVENT"]

#: what the error messages show as a well-formed event
EXAMPLE_EVENT = '{"userId": 1, "movieId": 296, "rating": 4.5, "timestamp": 1700000000}'
#: seconds a client is told to wait while the search vectors are being computed
_RETRY_AFTER = 5


class EventIn(BaseModel):
    """The body of ``POST /events``: exactly these four fields (a misspelt or extra field is an error, not ignored)."""

    model_config = ConfigDict(extra="forbid")

    userId: StrictInt  # MovieLens' own column names, as everywhere in the course
    movieId: StrictInt
    rating: Annotated[float, Field(strict=True, allow_inf_nan=False)]
    timestamp: StrictInt


def create_app(model: OnlineFoldIn | None = None, *, event_log=None, search: bool = True, movies=None, tags=None,
               encoder=None, item_vectors=None) -> FastAPI:
    """The service as a FastAPI app (serve it with :func:`run`, or any ASGI server).

    Parameters
    ----------
    model : a fitted :class:`~recsys_course.stream.OnlineFoldIn`, or None
        ``None``: the course's default online model, ALS fitted on all of the vendored ml-latest-small (whose films
        and tags then feed ``/search``).
    event_log : path, or None
        The durable event log (:class:`~recsys_course.serve.events.EventLog`); ``None``:
        :func:`~recsys_course.serve.events.default_event_log`. Its events are replayed into ``model`` before the
        app is returned.
    search : bool
        Serve ``/search`` (False: it answers 503 saying search is off).
    movies, tags : DataFrames, or None
        The films' texts for ``/search`` (:func:`recsys_course.text.item_texts`); needed with a ``model`` of your
        own unless ``item_vectors`` is given.
    encoder : anything with ``encode(list[str]) -> ndarray``, or None
        Embeds the films' texts and the queries (``None``: the course's packaged MiniLM).
    item_vectors : array (n_items, dim), or None
        The films' text vectors, one row per film of ``model.item_ids_``, made by ``encoder``: search is ready at
        once (no background thread).

    Raises
    ------
    EventLogError
        The log is not an event log, or holds events this model cannot apply (another data set's films).
    TypeError, ValueError
        ``model`` is not a fitted OnlineFoldIn; ``search`` without texts or vectors.
    """
    if model is None:
        from ..data import load_movielens

        ml = load_movielens()
        model = OnlineFoldIn().fit(ml.ratings)
        movies = ml.movies if movies is None else movies
        tags = ml.tags if tags is None else tags
    if not isinstance(model, OnlineFoldIn) or not model.is_fitted:
        raise TypeError(f"create_app needs a fitted OnlineFoldIn (OnlineFoldIn(ALS()).fit(train)), got {model!r}")
    if search and item_vectors is None and movies is None:
        raise ValueError("search=True needs the films' texts or vectors: pass movies= (and tags=), or "
                         "item_vectors= made by encoder=, or search=False")
    service = _Service(model, EventLog(event_log or default_event_log()))
    if search:
        service.start_search(movies, tags, encoder, item_vectors)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.log.close()

    app = FastAPI(title="recsys-course recommendation service", lifespan=lifespan,
                  description="Notebook 12's service: recommendations, personalised search and a durable event log.")
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _explain(exc.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):  # a bug, not bad input: say so, in JSON
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}: {exc}); this is a bug in the "
                                       "service, not in the request: please report it"}, status_code=500)

    @app.get("/health")
    def health():
        """Liveness and what the service holds."""
        return service.health()

    @app.get("/recommend")
    def recommend(user: int, k: int = 10):
        """Top-k films for a known user, films they rated left out."""
        return {"items": service.recommend(user, k)}

    @app.get("/search")
    def search_films(q: str, user: int | None = None, k: int = 10, lam: float = 0.5):
        """Films for a typed query, personalised by a known user's scores (query only otherwise)."""
        return service.search(q, user, k, lam)

    @app.post("/events", status_code=201)
    def post_event(event: EventIn):
        """A new rating: committed to the log, folded in, then acknowledged."""
        return service.post(event)

    return app


class _Service:
    """The state behind the endpoints: the online model, the log, the search, one write lock."""

    def __init__(self, online: OnlineFoldIn, log: EventLog):
        self.online, self.log = online, log
        self.started = time.monotonic()
        self.write_lock = threading.Lock()  # one event logged at a time: the log's order is the order of the state
        self.user_locks: dict = {}
        self.search_lock = threading.Lock()  # a tokenizer must not encode two queries at once
        self.searcher, self.search_status = None, "off"
        events = log.frame()
        try:
            online.update_many(events[list(RATING_COLUMNS)])
        except (UnknownIdError, ValueError) as exc:
            log.close()
            raise EventLogError(f"the event log {log.path} holds events this model cannot apply ({exc}); it was "
                                "written by a service over other data. Serve the data it was written for, or start "
                                "with another --event-log") from None
        self.n_events = len(events)

    # ---- search ---------------------------------------------------------------------------------
    def start_search(self, movies, tags, encoder, item_vectors) -> None:
        if item_vectors is not None:
            self._make_search(item_vectors, encoder)
            return
        self.search_status = "building"
        threading.Thread(target=self._build_search, args=(movies, tags, encoder), daemon=True,
                         name="search-vectors").start()

    def _build_search(self, movies, tags, encoder) -> None:
        try:
            from ..text import default_encoder, item_texts

            encoder = encoder or default_encoder()
            texts = item_texts(movies, tags).reindex(self.online.item_ids_)
            has_text = texts.notna().to_numpy()
            found = np.asarray(encoder.encode(list(texts[has_text])))
            vectors = np.zeros((len(texts), found.shape[1]), dtype=found.dtype)
            vectors[has_text] = found  # a film without a text: a zero row, cosine 0 with every query
            self._make_search(vectors, encoder)
        except Exception as exc:  # reported by /health and /search, never silently
            self.search_status = f"failed: {type(exc).__name__}: {exc}"

    def _make_search(self, vectors, encoder) -> None:
        from ..retrieval import PersonalisedSearch

        self.searcher = PersonalisedSearch(self.online.model, vectors, encoder=encoder)
        self.search_status = "ready"

    # ---- endpoints ------------------------------------------------------------------------------
    def health(self) -> dict:
        return {"status": "ok", "model": repr(self.online.model), "n_items": self.online.n_items,
                "n_events": self.n_events, "uptime_seconds": round(time.monotonic() - self.started, 3),
                "search": self.search_status, "event_log": str(self.log.path)}

    def _check_k(self, k: int) -> None:
        n = self.online.n_items
        if not 1 <= k <= n:
            raise HTTPException(422, f"k must be from 1 to {n} (the number of films in the catalogue), got {k}")

    def recommend(self, user: int, k: int) -> list[dict]:
        self._check_k(k)
        if not self.online.is_known(user):
            raise HTTPException(404, f"user {user} is unknown: no rating of theirs, in the training data or in an "
                                     f"event. A new user is served after their first rating: POST /events with "
                                     f"{EXAMPLE_EVENT.replace('1,', f'{user},', 1)}, then ask again. Until then, "
                                     "GET /search?q=... (without user) works for anyone.")
        recs = self.online.recommend([user], k=k)
        return _items(recs[ITEM].tolist(), recs[SCORE].tolist(), recs[RANK].tolist())

    def search(self, q: str, user: int | None, k: int, lam: float) -> dict:
        from ..retrieval import check_query, personalised_scores

        try:
            query = check_query(q)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        self._check_k(k)
        if not 0 <= lam <= 1:
            raise HTTPException(422, f"lam must be from 0 (the user's taste only) to 1 (the query only), got {lam}")
        if self.searcher is None:
            if self.search_status == "building":
                raise HTTPException(503, "search is starting: the films' text vectors are still being computed "
                                         "(about 35 s the first time, then cached); retry in a few seconds",
                                    headers={"Retry-After": str(_RETRY_AFTER)})
            raise HTTPException(503, f"search is not available in this service ({self.search_status}); start it "
                                     "without --no-search (and with the text encoder installed)")
        if user is None or not self.online.is_known(user):  # the query alone: PersonalisedSearch as it is
            with self.search_lock:
                found = self.searcher.search(query, None, k=k)
            return {"items": _items(found[ITEM].tolist(), found[SCORE].tolist(), found[RANK].tolist()),
                    "personalised": False}
        with self.search_lock:
            cosines = self.searcher.query_scores(query)
        # the user's *current* scores (events included), mixed as PersonalisedSearch mixes a model's own
        mixed = personalised_scores(cosines, self.online.score([user])[0], lam)
        top = top_k(mixed[None, :], k)[0]
        top = top[np.isfinite(mixed[top])]
        return {"items": _items(self.online.item_ids_[top].tolist(), mixed[top].tolist(), range(1, len(top) + 1)),
                "personalised": True}

    def post(self, event: EventIn) -> dict:
        try:
            self.online.check_event(event.userId, event.movieId, event.rating, event.timestamp)
        except UnknownFilmError as exc:
            raise HTTPException(422, f"{exc}; GET /recommend or /search lists films it knows") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        row = {USER: event.userId, ITEM: event.movieId, RATING: event.rating, TIME: event.timestamp}
        with self.write_lock:
            try:
                event_id = self.log.append(row)  # committed (durable) when it returns
            except sqlite3.Error as exc:
                raise HTTPException(503, f"the event could NOT be stored ({type(exc).__name__}: {exc}); it was not "
                                         "recorded: send it again") from None
            self.n_events += 1
            # lock coupling: take the user's lock before letting the next event be logged, so that one user's
            # events are folded in in log order, while other users' events are logged and folded in meanwhile
            user_lock = self._user_lock(event.userId)
            user_lock.acquire()
        try:
            self.online.update(event.userId, event.movieId, event.rating, event.timestamp)
        finally:
            user_lock.release()
        return {"id": event_id, **row}

    def _user_lock(self, user: int) -> threading.Lock:
        return self.user_locks.setdefault(user, threading.Lock())  # called under write_lock


def _items(movies, scores, ranks) -> list[dict]:
    return [{ITEM: int(m), SCORE: float(s), RANK: int(r)} for m, s, r in zip(movies, scores, ranks)]


_WHERE = {"query": "query parameter", "body": "field", "path": "path parameter", "header": "header"}


def _explain(errors) -> str:
    """FastAPI's validation errors as one sentence a person can act on."""
    parts = []
    for error in errors:
        loc, kind = tuple(error.get("loc", ())), error.get("type", "")
        where = _WHERE.get(loc[0], str(loc[0])) if loc else "request"
        name = ".".join(str(x) for x in loc[1:])
        if kind == "json_invalid":
            why = error.get("ctx", {}).get("error", "")
            parts.append(f"the body is not valid JSON ({why}): send one object like {EXAMPLE_EVENT}")
        elif kind == "missing" and loc[:1] == ("body",) and not name:
            parts.append(f"the request has no body: send one JSON object like {EXAMPLE_EVENT}")
        elif kind == "missing":
            example = (f"e.g. {EXAMPLE_EVENT}" if loc[0] == "body" else
                       "e.g. /recommend?user=1&k=10 or /search?q=space+adventure&k=10")
            parts.append(f"missing {where} {name!r} ({example})")
        elif kind == "extra_forbidden":
            parts.append(f"unexpected field {name!r}: an event has exactly the fields userId, movieId, rating, "
                         "timestamp (check the spelling)")
        elif kind in ("model_attributes_type", "dict_type", "model_type") and isinstance(error.get("input"), bytes):
            parts.append(f"the body is not JSON: send it with the header Content-Type: application/json, one object "
                         f"like {EXAMPLE_EVENT}")
        elif kind in ("model_attributes_type", "dict_type", "model_type"):
            parts.append(f"the body must be one JSON object like {EXAMPLE_EVENT}, got {error.get('input')!r:.80}")
        else:
            parts.append(f"{where} {name!r}: {error.get('msg', kind)} (got {error.get('input')!r:.80})")
    return "; ".join(parts) or "the request is malformed"


def run(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Serve ``app`` with uvicorn until Ctrl-C (SIGINT) or SIGTERM, which stop it cleanly (open requests finish,
    the log is closed). Blocks."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
    uvicorn.Server(config).run()

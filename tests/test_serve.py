"""recsys_course.serve: the REAL service (uvicorn in a subprocess on 127.0.0.1, a free port) and its event log.

The server runs this very file as a script (``python tests/test_serve.py --port P --event-log PATH``): a small
synthetic world (60 users, 80 films), ALS with 6 factors, the word-hash stand-in encoder of notebook 07's tests —
start-up takes about a second and no text model is loaded. ``test_cli_serves_movielens...`` starts the real
``recsys-course serve`` on the vendored data once (about 3 s: not marked slow). Every wait has a timeout; every server is killed in ``finally``.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.models import ALS
from recsys_course.serve import EventLog, EventLogError
from recsys_course.stream import OnlineFoldIn
from recsys_course.synthetic import make_synthetic

HERE = Path(__file__).resolve()
START_TIMEOUT = 60  # seconds for a server to answer /health
T0 = 1_700_000_000


# --------------------------------------------------------------------------------------------
# the small world and the server process
# --------------------------------------------------------------------------------------------
def small_world():
    return make_synthetic(n_users=60, n_items=80, ratings_per_user=15, seed=3)


def small_online(world):
    return OnlineFoldIn(ALS(n_factors=6, n_iters=3)).fit(world.ratings)


def serve_small_world(port: int, event_log: str) -> None:
    """The server process: the small world's app on 127.0.0.1:port (search vectors built in the background
    thread, as in the real service, with the stand-in encoder)."""
    from recsys_course.exercises.nb07 import _WordHashEncoder
    from recsys_course.serve import create_app, run

    world = small_world()
    app = create_app(small_online(world), event_log=event_log, movies=world.movies, encoder=_WordHashEncoder())
    run(app, host="127.0.0.1", port=port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A service in a subprocess: ``start()`` waits until /health answers, ``kill()`` / ``stop()`` end it."""

    def __init__(self, command: list[str], port: int, output: Path):
        self.command, self.port, self.output = command, port, output
        self.url = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self) -> Server:
        self.out = open(self.output, "ab")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(self.command, stdout=self.out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not answer within {START_TIMEOUT} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.output.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()
        self.out.close()


def small_server(tmp: Path, log: Path) -> Server:
    port = free_port()
    return Server([sys.executable, str(HERE), "--port", str(port), "--event-log", str(log)], port,
                  tmp / f"server-{port}.txt")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    with small_server(tmp, tmp / "events.sqlite") as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            deadline = time.monotonic() + 30
            while client.get("/health").json()["search"] != "ready" and time.monotonic() < deadline:
                time.sleep(0.1)
            srv.client = client
            yield srv


@pytest.fixture(scope="module")
def world():
    return small_world()


def _event(user, movie, rating=4.0, t=T0):
    return {USER: int(user), ITEM: int(movie), RATING: float(rating), TIME: int(t)}


# --------------------------------------------------------------------------------------------
# bad input: a clear 4xx, never a 500
# --------------------------------------------------------------------------------------------
BAD = [
    ("GET", "/recommend?user=100000&k=5", None, 404, r"user 100000 is unknown.*first rating: POST /events"),
    ("GET", "/recommend?user=1&k=0", None, 422, r"k must be from 1 to 80"),
    ("GET", "/recommend?user=1&k=-3", None, 422, r"k must be from 1 to 80"),
    ("GET", "/recommend?user=1&k=81", None, 422, r"k must be from 1 to 80 \(the number of films"),
    ("GET", "/recommend?user=1&k=ten", None, 422, r"query parameter 'k'.*integer"),
    ("GET", "/recommend?k=5", None, 422, r"missing query parameter 'user'"),
    ("GET", "/search?q=%20%20&k=5", None, 422, r"empty or only white space"),
    ("GET", "/search?q=&k=5", None, 422, r"empty or only white space"),
    ("GET", "/search?k=5", None, 422, r"missing query parameter 'q'"),
    ("GET", "/search?q=drama&k=0", None, 422, r"k must be from 1 to 80"),
    ("GET", "/search?q=drama&lam=2", None, 422, r"lam must be from 0"),
    ("POST", "/events", {"json": _event(1, 99999)}, 422, r"film 99999 is not in the model's catalogue"),
    ("POST", "/events", {"json": _event(1, 1, rating=7)}, 422, r"outside the rating scale 0.5 to 5"),
    ("POST", "/events", {"json": _event(1, 1, rating=0)}, 422, r"outside the rating scale 0.5 to 5"),
    ("POST", "/events", {"json": _event(1, 1, t=-1)}, 422, r"timestamp must be seconds since 1970"),
    ("POST", "/events", {"json": {USER: 1, ITEM: 1, RATING: 4.0}}, 422, r"missing field 'timestamp'"),
    ("POST", "/events", {"json": {**_event(1, 1), "user": 1}}, 422, r"unexpected field 'user'"),
    ("POST", "/events", {"json": {**_event(1, 1), RATING: "good"}}, 422, r"field 'rating'"),
    ("POST", "/events", {"json": [1, 2, 3]}, 422, r"one JSON object like"),
    ("POST", "/events", {"content": b'{"userId": 1,', "headers": {"content-type": "application/json"}}, 422,
     r"not valid JSON"),
    ("POST", "/events", {"content": b"userId=1"}, 422, r"not JSON.*Content-Type: application/json"),
    ("POST", "/events", {}, 422, r"no body"),
]


@pytest.mark.parametrize("method, path, body, status, message", BAD, ids=[f"{m} {p} {s}" for m, p, _, s, _ in BAD])
def test_bad_input_gets_a_clear_4xx(server, method, path, body, status, message):
    before = server.client.get("/health").json()["n_events"]
    answer = server.client.request(method, path, **(body or {}))
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and re.search(message, detail), detail
    assert server.client.get("/health").json()["n_events"] == before  # nothing logged


def test_health(server):
    health = server.client.get("/health").json()
    assert health["status"] == "ok" and health["search"] == "ready" and health["n_items"] == 80
    assert health["model"].startswith("ALS(") and health["uptime_seconds"] > 0


# --------------------------------------------------------------------------------------------
# behaviour
# --------------------------------------------------------------------------------------------
def test_an_event_is_visible_in_the_next_recommend(server, world):
    user = 5
    first = server.client.get(f"/recommend?user={user}&k=5").json()["items"]
    assert [i["rank"] for i in first] == [1, 2, 3, 4, 5] and set(first[0]) == {ITEM, "score", "rank"}
    top = first[0][ITEM]
    answer = server.client.post("/events", json=_event(user, top, rating=0.5))
    assert answer.status_code == 201 and answer.json()["id"] >= 1
    after = server.client.get(f"/recommend?user={user}&k=80").json()["items"]
    assert top not in {i[ITEM] for i in after}  # rated now: left out
    seen = set(world.ratings.loc[world.ratings[USER] == user, ITEM]) | {top}
    assert not seen & {i[ITEM] for i in after} and len(after) == 80 - len(seen)
    before, now = {i[ITEM]: i["score"] for i in first}, {i[ITEM]: i["score"] for i in after}
    assert any(now[m] != s for m, s in before.items() if m in now)  # the user's vector was re-solved


def test_a_new_user_is_served_after_their_first_event(server, world):
    new = 70_000
    assert server.client.get(f"/recommend?user={new}").status_code == 404
    film = int(world.ratings[ITEM].iloc[0])
    assert server.client.post("/events", json=_event(new, film, 5.0)).status_code == 201
    items = server.client.get(f"/recommend?user={new}&k=3").json()["items"]
    assert len(items) == 3 and film not in {i[ITEM] for i in items}


def test_search_personalised_for_known_users_only(server):
    plain = server.client.get("/search?q=genre_2%20Item&k=5").json()
    assert plain["personalised"] is False and len(plain["items"]) == 5
    mine = server.client.get("/search?q=genre_2%20Item&k=5&user=1").json()
    assert mine["personalised"] is True and len(mine["items"]) == 5
    stranger = server.client.get("/search?q=genre_2%20Item&k=5&user=123456").json()
    assert stranger == plain  # unknown user: the query alone, said so
    only_query = server.client.get("/search?q=genre_2%20Item&k=5&user=1&lam=1").json()["items"]
    assert [i[ITEM] for i in only_query][:1] == [i[ITEM] for i in plain["items"]][:1]


def test_concurrent_posts_lose_nothing(server, world):
    films = np.sort(world.ratings[ITEM].unique())
    acked, errors = [], []

    def client(user):
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for j in range(25):
                event = _event(user, films[(user * 11 + j) % len(films)], 0.5 + (j % 10) / 2, T0 + j)
                answer = c.post("/events", json=event)
                (acked if answer.status_code == 201 else errors).append((answer.json(), event))

    before = server.client.get("/health").json()["n_events"]
    threads = [threading.Thread(target=client, args=(u,)) for u in (11, 12, 13, 14)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(acked) == 100
    assert server.client.get("/health").json()["n_events"] == before + 100
    with EventLog(Path(server.client.get("/health").json()["event_log"])) as log:
        logged = {e.id: e for e in log.replay()}
    for answer, event in acked:
        e = logged[answer["id"]]
        assert (e.userId, e.movieId, e.rating, e.timestamp) == tuple(event.values())


# --------------------------------------------------------------------------------------------
# durability: SIGKILL in the middle of a burst, restart, nothing acknowledged is lost
# --------------------------------------------------------------------------------------------
def test_sigkill_during_a_burst_loses_no_acknowledged_event(tmp_path, world):
    log_path = tmp_path / "events.sqlite"
    films = np.sort(world.ratings[ITEM].unique())
    acked, stop = [], threading.Event()

    def burst(user, srv):
        with httpx.Client(base_url=srv.url, timeout=5) as c:
            j = 0
            while not stop.is_set():
                event = _event(user, films[(user * 7 + j) % len(films)], 0.5 + (j % 10) / 2, T0 + j)
                try:
                    answer = c.post("/events", json=event)
                except httpx.TransportError:
                    return  # the server is gone: this request was never acknowledged
                if answer.status_code == 201:
                    acked.append((answer.json()["id"], event))
                j += 1

    srv = small_server(tmp_path, log_path)
    try:
        srv.start()
        threads = [threading.Thread(target=burst, args=(u, srv)) for u in (1, 2, 100_001)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(srv.proc.pid, signal.SIGKILL)  # no chance to flush, close or clean up
        srv.proc.wait(timeout=10)
    finally:
        stop.set()
        srv.kill()
        srv.out.close()
    for t in threads:
        t.join(timeout=10)
    assert len(acked) >= 60, srv.log_text()
    with EventLog(log_path) as log:
        events = log.frame()
    logged = events.set_index("id")
    for event_id, event in acked:  # every 2xx is in the log, as sent
        assert event_id in logged.index
        row = logged.loc[event_id]
        assert (row[USER], row[ITEM], row[RATING], row[TIME]) == tuple(event.values())
    assert len(events) >= len(acked)  # (an unacknowledged one may have been committed too)

    with small_server(tmp_path, log_path) as again, httpx.Client(base_url=again.url, timeout=10) as c:
        assert c.get("/health").json()["n_events"] == len(events)
        replica = small_online(world)
        replica.update_many(events[[USER, ITEM, RATING, TIME]])
        for user in (1, 2, 100_001):  # applied: the restarted service answers exactly as the log says
            served = c.get(f"/recommend?user={user}&k=10").json()["items"]
            expected = replica.recommend([user], k=10)
            assert [i[ITEM] for i in served] == expected[ITEM].tolist()
            np.testing.assert_allclose([i["score"] for i in served], expected["score"], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# the event log on its own
# --------------------------------------------------------------------------------------------
def test_a_file_that_is_not_an_event_log_is_refused(tmp_path, world):
    text = tmp_path / "notes.sqlite"
    text.write_text("my shopping list\n" * 200)
    with pytest.raises(EventLogError, match=r"notes\.sqlite is not an event log.*move it aside.*never starts a new"):
        EventLog(text)
    assert text.read_text().startswith("my shopping list")  # untouched
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    with pytest.raises(EventLogError, match="other tables"):
        EventLog(other)
    foreign = tmp_path / "foreign.sqlite"
    with EventLog(foreign) as log:
        log.append(_event(1, 99999))  # a film this world does not have
    from recsys_course.serve import create_app

    with pytest.raises(EventLogError, match="cannot apply.*another --event-log"):
        create_app(small_online(world), event_log=foreign, search=False)


def test_search_answers_503_while_the_vectors_are_being_built(tmp_path, world):
    from fastapi.testclient import TestClient

    from recsys_course.exercises.nb07 import _WordHashEncoder
    from recsys_course.serve import create_app

    gate = threading.Event()

    class SlowEncoder(_WordHashEncoder):  # the first call (the films' texts) waits for the gate
        def encode(self, texts, batch_size=32):
            gate.wait(timeout=30)
            return super().encode(texts, batch_size)

    app = create_app(small_online(world), event_log=tmp_path / "events.sqlite", movies=world.movies,
                     encoder=SlowEncoder())
    with TestClient(app) as client:
        assert client.get("/health").json()["search"] == "building"
        answer = client.get("/search?q=drama")
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert "still being computed" in answer.json()["detail"]
        assert client.get("/recommend?user=1&k=3").status_code == 200  # the rest serves meanwhile
        gate.set()
        deadline = time.monotonic() + 10
        while client.get("/health").json()["search"] != "ready" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/search?q=drama").status_code == 200


_WRITER = """
import sys
from recsys_course.serve import EventLog
with EventLog(sys.argv[1]) as log:
    for j in range(40):
        log.append({"userId": int(sys.argv[2]), "movieId": j, "rating": 3.0, "timestamp": j})
"""


def test_several_writer_processes_and_threads(tmp_path):
    path = tmp_path / "events.sqlite"
    with EventLog(path) as log:
        procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(u)]) for u in (1, 2)]

        def write(user):
            for j in range(40):
                log.append(_event(user, j, 3.0, j))

        threads = [threading.Thread(target=write, args=(u,)) for u in (3, 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert [p.wait(timeout=60) for p in procs] == [0, 0]
        events = log.frame()
        assert len(log) == 160 and events["id"].tolist() == list(range(1, 161))
        assert events.groupby(USER).size().to_dict() == {1: 40, 2: 40, 3: 40, 4: 40}
        for _, mine in events.groupby(USER):  # each writer's events in its own order
            assert mine[ITEM].tolist() == list(range(40))
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --------------------------------------------------------------------------------------------
# the command, on the real data
# --------------------------------------------------------------------------------------------
def test_cli_serves_movielens_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "recsys_course", "serve", "--port", str(port), "--event-log",
               str(tmp_path / "events.sqlite"), "--no-search"]
    srv = Server(command, port, tmp_path / "cli.txt")
    try:
        srv.start()
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            health = c.get("/health").json()
            assert health["n_items"] == 9724 and health["search"] == "off"
            items = c.get("/recommend?user=1&k=10").json()["items"]
            assert len(items) == 10
            assert c.post("/events", json=_event(1, items[0][ITEM], 1.0)).status_code == 201
            assert items[0][ITEM] not in {i[ITEM] for i in c.get("/recommend?user=1&k=10").json()["items"]}
            assert c.get("/search?q=space").status_code == 503
        srv.proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert srv.proc.wait(timeout=20) == 0
        output = srv.log_text()
        assert "serving on http://127.0.0.1:" in output and "Ctrl-C" in output and "stopped" in output
    finally:
        srv.kill()
        srv.out.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="serve the tests' small world (used by the tests above)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--event-log", required=True)
    options = parser.parse_args()
    serve_small_world(options.port, options.event_log)

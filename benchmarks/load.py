"""Load-test the recommendation service over loopback: throughput and p50 / p95 / p99 latency of /recommend,
/search and /events with N concurrent clients, and a check that every acknowledged event is in the event log.

A benchmark, not a test: it prints numbers (the service's speed goals). By default it starts the real service
(``recsys-course serve``: ALS on all of ml-latest-small, search with the packaged MiniLM) on a free port with a
fresh event log in a temporary folder, waits until search is ready, and stops it at the end::

    .venv/bin/python benchmarks/load.py                        # 8 clients, 10 s per endpoint
    .venv/bin/python benchmarks/load.py --clients 16 --seconds 30
    .venv/bin/python benchmarks/load.py --url http://127.0.0.1:8000 --event-log data/cache/serve/events.sqlite

With ``--url`` it drives a service already running (the default model on ml-latest-small: users and films are
drawn from that data); the event check needs the log's path (``--event-log``), otherwise it compares counts from
``/health``. **Careful**: the events it posts are real events — they stay in that service's log.

Each client is a thread with its own ``httpx.Client`` (keep-alive), sending one request after another for
``--seconds`` per endpoint; latency is measured at the client, so it includes the client's own Python time and,
on a small machine, the clients and the server sharing the CPU. First, in-process lines (no HTTP): the cost of one
:meth:`OnlineFoldIn.update <recsys_course.stream.OnlineFoldIn.update>` (µs per event) and of one durable
:meth:`EventLog.append <recsys_course.serve.EventLog.append>` (a commit with fsync) on this disk.

Goals (a 2-core machine): /recommend p99 ≤ 50 ms at 8 concurrent clients; /events ≥ 200 events/s with
every acknowledged event in the log.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from recsys_course.config import ITEM, RATING, TIME, USER
from recsys_course.data import load_movielens
from recsys_course.retrieval import latency_summary
from recsys_course.serve import EventLog
from recsys_course.stream import OnlineFoldIn

QUERIES = ["space adventure", "funny animated film for children", "dark sci-fi about artificial intelligence",
           "romantic comedy in paris", "world war two drama", "heist thriller", "classic western",
           "horror in a haunted house", "coming of age story", "superhero action", "documentary about music",
           "crime mafia family", "time travel", "feel-good musical", "martial arts", "courtroom drama"]
GOAL_RECOMMEND_P99_MS = 50.0
GOAL_EVENTS_PER_S = 200.0


def in_process_costs(ratings: pd.DataFrame, n: int = 2000) -> None:
    """µs per OnlineFoldIn.update and per EventLog.append, no HTTP."""
    online = OnlineFoldIn().fit(ratings)
    rng = np.random.default_rng(0)
    users = rng.choice(ratings[USER].unique(), n)
    films = rng.choice(online.item_ids_, n)
    stars = rng.integers(1, 11, n) / 2
    times = []
    for u, m, r in zip(users, films, stars):
        start = time.perf_counter()
        online.update(int(u), int(m), float(r), 1_700_000_000)
        times.append(time.perf_counter() - start)
    t = np.asarray(times) * 1e6
    sizes = ratings.groupby(USER).size()
    print(f"OnlineFoldIn.update (in-process, {n} events, ALS {online.model.n_factors} factors, {online.n_items} "
          f"films, histories of {sizes.min()}-{sizes.max()} ratings): median {np.median(t):.0f} µs, p99 "
          f"{np.percentile(t, 99):.0f} µs per event")
    with tempfile.TemporaryDirectory() as tmp, EventLog(Path(tmp) / "events.sqlite") as log:
        times = []
        for j in range(300):
            start = time.perf_counter()
            log.append({USER: 1, ITEM: 1, RATING: 4.0, TIME: j})
            times.append(time.perf_counter() - start)
        t = np.asarray(times) * 1e6
        print(f"EventLog.append (in-process, a commit with WAL + synchronous=FULL on this disk): median "
              f"{np.median(t):.0f} µs, p99 {np.percentile(t, 99):.0f} µs per event")


def drive(url: str, endpoint: str, clients: int, seconds: float, ratings: pd.DataFrame, films: np.ndarray,
          seed: int) -> tuple[pd.DataFrame, list]:
    """Every request of ``clients`` threads for ``seconds``: a frame (client, latency in s, status), and the
    acknowledged events as (id, event)."""
    users = np.sort(ratings[USER].unique())
    rows, acked, lock = [], [], threading.Lock()
    start_line = threading.Barrier(clients)

    def client(c: int) -> None:
        rng = np.random.default_rng([seed, c])
        mine, my_acks = [], []
        with httpx.Client(base_url=url, timeout=30) as http:
            start_line.wait(timeout=60)
            deadline = time.monotonic() + seconds
            j = 0
            while time.monotonic() < deadline:
                event = None
                if endpoint == "/recommend":
                    request = ("GET", "/recommend", {"params": {"user": int(rng.choice(users)), "k": 10}})
                elif endpoint == "/search":
                    params = {"q": QUERIES[rng.integers(len(QUERIES))], "k": 10}
                    if rng.random() < 0.5:
                        params["user"] = int(rng.choice(users))
                    request = ("GET", "/search", {"params": params})
                else:
                    # a known user most of the time, a brand-new one (ids above MovieLens') now and then
                    user = int(rng.choice(users)) if rng.random() < 0.9 else 1_000_000 + c * 100_000 + j
                    event = {USER: user, ITEM: int(rng.choice(films)), RATING: float(rng.integers(1, 11) / 2),
                             TIME: int(time.time())}
                    request = ("POST", "/events", {"json": event})
                method, path, options = request
                t0 = time.perf_counter()
                answer = http.request(method, path, **options)
                mine.append((c, time.perf_counter() - t0, answer.status_code))
                if event is not None and answer.status_code == 201:
                    my_acks.append((answer.json()["id"], event))
                j += 1
        with lock:
            rows.extend(mine)
            acked.extend(my_acks)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    return pd.DataFrame(rows, columns=["client", "seconds", "status"]), acked


def summarise(endpoint: str, frame: pd.DataFrame, seconds: float, clients: int) -> dict:
    ok = frame[(frame["status"] >= 200) & (frame["status"] < 300)]
    summary = latency_summary(ok["seconds"]) if len(ok) else {"p50_ms": np.nan, "p99_ms": np.nan, "mean_ms": np.nan}
    return {"endpoint": endpoint, "clients": clients, "requests": len(frame), "errors": len(frame) - len(ok),
            "per_s": len(ok) / seconds, "p50_ms": summary["p50_ms"],
            "p95_ms": float(np.percentile(ok["seconds"], 95) * 1000) if len(ok) else np.nan,
            "p99_ms": summary["p99_ms"], "max_ms": float(ok["seconds"].max() * 1000) if len(ok) else np.nan}


def check_events(acked: list, log_path: Path | None, url: str, n_before: int) -> bool:
    """Every acknowledged event in the log, as sent (or, without the log's path, the count in /health)."""
    if log_path is None or not log_path.exists():
        n_after = httpx.get(url + "/health", timeout=10).json()["n_events"]
        ok = n_after - n_before >= len(acked)
        print(f"events: {len(acked)} acknowledged; /health counts {n_after - n_before} new "
              f"({'ok' if ok else 'MISSING EVENTS'}; pass --event-log to check each one)")
        return ok
    with EventLog(log_path) as log:
        logged = log.frame().set_index("id")
    missing = [i for i, e in acked if i not in logged.index
               or tuple(logged.loc[i, [USER, ITEM, RATING, TIME]]) != (e[USER], e[ITEM], e[RATING], e[TIME])]
    print(f"events: {len(acked)} acknowledged, {len(acked) - len(missing)} of them in the log {log_path} as sent"
          + (" — all there" if not missing else f" — MISSING or different: {missing[:10]}"))
    return not missing


def start_service(log: Path, output: Path, wait: float) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with open(output, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "recsys_course", "serve", "--port", str(port), "--event-log",
                                 str(log)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited with {proc.returncode}:\n{output.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).json()["search"] == "ready":
                return proc, url
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the service was not ready (search included) within {wait:.0f} s:\n"
                     f"{output.read_text()[-3000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service (default: start one on a free port, stop it at the end)")
    parser.add_argument("--event-log", type=Path, help="with --url: its event log, to check every acknowledged event")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (threads; default 8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per endpoint (default 10)")
    parser.add_argument("--endpoints", nargs="*", default=["/recommend", "/search", "/events"])
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process cost lines")
    parser.add_argument("--start-timeout", type=float, default=600.0,
                        help="seconds to wait for a started service (its search vectors: ~35 s on a cold cache)")
    args = parser.parse_args(argv)
    ml = load_movielens()
    print(f"machine: {os.cpu_count()} CPU(s); {args.clients} clients, {args.seconds:g} s per endpoint, over loopback")
    if not args.no_in_process:
        in_process_costs(ml.ratings)
    tmp = tempfile.TemporaryDirectory()
    proc = None
    try:
        if args.url:
            url, log_path = args.url.rstrip("/"), args.event_log
        else:
            log_path = Path(tmp.name) / "events.sqlite"
            started = time.perf_counter()
            proc, url = start_service(log_path, Path(tmp.name) / "service.txt", args.start_timeout)
            print(f"service: started at {url} in {time.perf_counter() - started:.1f} s (search ready), "
                  f"event log in a temporary folder")
        health = httpx.get(url + "/health", timeout=10).json()
        print(f"service: {health['model']}, {health['n_items']} films, {health['n_events']} events so far")
        films = np.sort(ml.ratings[ITEM].unique())
        for endpoint in args.endpoints:  # warm up: first calls load the tokenizer, fill caches
            drive(url, endpoint, 1, 1.0, ml.ratings, films, seed=99)
        n_before = httpx.get(url + "/health", timeout=10).json()["n_events"]
        rows, acked_all = [], []
        for e, endpoint in enumerate(args.endpoints):
            frame, acked = drive(url, endpoint, args.clients, args.seconds, ml.ratings, films, seed=e)
            rows.append(summarise(endpoint, frame, args.seconds, args.clients))
            acked_all += acked
        table = pd.DataFrame(rows)
        print()
        print(table.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
        print()
        ok = True
        if "/events" in args.endpoints:
            ok = check_events(acked_all, log_path, url, n_before)
        by = table.set_index("endpoint")
        if "/recommend" in by.index:
            p99 = by.loc["/recommend", "p99_ms"]
            print(f"goal /recommend p99 <= {GOAL_RECOMMEND_P99_MS:g} ms at {args.clients} clients: "
                  + ("met" if p99 <= GOAL_RECOMMEND_P99_MS else f"MISSED by {p99 - GOAL_RECOMMEND_P99_MS:.1f} ms")
                  + f" ({p99:.1f} ms)")
        if "/events" in by.index:
            rate = by.loc["/events", "per_s"]
            print(f"goal /events >= {GOAL_EVENTS_PER_S:g} events/s: "
                  + ("met" if rate >= GOAL_EVENTS_PER_S else f"MISSED by {GOAL_EVENTS_PER_S - rate:.0f} events/s")
                  + f" ({rate:.0f} events/s)")
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())

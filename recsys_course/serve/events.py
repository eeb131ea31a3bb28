r"""The service's durable event log: one SQLite row per rating event, committed before the service answers.

**Durability here means**: once ``POST /events`` has answered 2xx, the event survives any crash of the service —
because :meth:`EventLog.append` returns only after SQLite has *committed* the row, and the HTTP answer is sent
only after ``append`` returns. On restart the service rebuilds its state from the model plus :meth:`EventLog.replay`,
so an acknowledged event is never lost. An event whose request got no answer (the service died first) may or may
not be in the log: the client was never told it was, and should send it again.

How SQLite makes a commit durable:

* **Write-ahead logging** (``PRAGMA journal_mode=WAL``): a commit appends the new pages to ``events.sqlite-wal``
  and is complete once that append is on disk; readers keep reading the old pages meanwhile, so a reader never
  blocks a writer. The WAL is folded back into the database file now and then (a *checkpoint*); after a crash the
  next open replays the committed part of the WAL and drops any half-written tail.
* **synchronous=FULL**: SQLite calls ``fsync`` on the WAL at every commit, so a commit survives not only the death
  of the process but a power cut or an operating-system crash (``NORMAL`` would survive the first only).

What the tests prove: ``kill -9`` (SIGKILL: the process gets no chance to flush or clean up) in the middle of a
burst of events, then a restart, loses no acknowledged event. That covers a crash of the *process*; a power cut is
what ``synchronous=FULL``'s ``fsync`` is for, which a test on one machine cannot pull the plug on.

Concurrency: each thread gets its own connection (SQLite connections are not shared across threads); several
threads or processes may append at once — SQLite lets one writer commit at a time and the others wait up to
``busy_timeout`` seconds. Ids come from ``AUTOINCREMENT`` under the write lock, so id order is commit order and
:meth:`replay` yields the events in the order they were acknowledged.

A file at the log's path that is not this log (another database, a text file, a damaged file) raises
:class:`EventLogError` naming the file and the fix — it is never silently replaced by a new, empty log, which
would throw away acknowledged events.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import ITEM, RATING, TIME, USER, cache_dir

__all__ = ["EVENT_COLUMNS", "Event", "EventLog", "EventLogError", "default_event_log"]

#: the columns of the log (and of :meth:`EventLog.frame`), in order
EVENT_COLUMNS = ("id", USER, ITEM, RATING, TIME, "received_at")

_SCHEMA = f"""CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {USER} INTEGER NOT NULL,
    {ITEM} INTEGER NOT NULL,
    {RATING} REAL NOT NULL,
    {TIME} INTEGER NOT NULL,
    received_at REAL NOT NULL
)"""


def default_event_log() -> Path:
    """Where ``recsys-course serve`` keeps its events unless told otherwise: ``<cache>/serve/events.sqlite``
    (the course's cache folder, :func:`recsys_course.config.cache_dir`; git-ignored)."""
    return cache_dir() / "serve" / "events.sqlite"


class EventLogError(RuntimeError):
    """The event log cannot be opened or read: the message names the file and the fix."""


@dataclass(frozen=True)
class Event:
    """One logged event: its id (commit order), the rating, and when the service received it (seconds since 1970,
    the service's clock; ``timestamp`` is the client's time of the rating)."""

    id: int
    userId: int  # MovieLens' own column names, as everywhere in the course
    movieId: int
    rating: float
    timestamp: int
    received_at: float


class EventLog:
    """An append-only SQLite log of rating events (see the module docstring for what "durable" means).

    Parameters
    ----------
    path : str or Path
        The database file; created (with its folder) if absent. Its ``-wal`` and ``-shm`` companions live beside
        it: move or delete the three together.
    busy_timeout : float
        Seconds a writer waits for another writer's commit before giving up (``sqlite3.OperationalError``).

    Raises :class:`EventLogError` if ``path`` exists and is not an event log.
    """

    def __init__(self, path, *, busy_timeout: float = 30.0):
        self.path = Path(path).expanduser()
        self.busy_timeout = float(busy_timeout)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = self._db()
            db.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables - {"events", "sqlite_sequence"}:
                raise EventLogError(self._not_a_log(f"it is a SQLite database with other tables {sorted(tables)}"))
            db.execute(_SCHEMA)
            columns = tuple(row[1] for row in db.execute("PRAGMA table_info(events)"))
        except sqlite3.DatabaseError as exc:
            self.close()
            raise EventLogError(self._not_a_log(f"SQLite says: {exc}")) from exc
        except EventLogError:
            self.close()
            raise
        if columns != EVENT_COLUMNS:
            self.close()
            raise EventLogError(self._not_a_log(f"its events table has columns {list(columns)}, not "
                                                f"{list(EVENT_COLUMNS)}"))

    def _not_a_log(self, why: str) -> str:
        return (f"{self.path} is not an event log of the course's service ({why}). It may hold something else, or "
                f"be damaged: move it aside (mv {self.path} {self.path}.bak, with its -wal and -shm files if any) "
                "or choose another file with --event-log. The service never starts a new log over an existing "
                "file, so that no acknowledged event is thrown away.")

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use): autocommit, WAL, synchronous=FULL, busy timeout."""
        db = getattr(self._local, "db", None)
        if db is None:
            # isolation_level=None: autocommit, each INSERT its own transaction, committed when execute returns;
            # check_same_thread=False only so that close() may close every thread's connection
            db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA synchronous=FULL")  # per connection: fsync the WAL at every commit
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def append(self, event: Mapping) -> int:
        """Commit one event and return its id. The row is durable when this returns (see the module docstring).

        ``event`` is a mapping with ``userId, movieId, rating, timestamp`` (already checked by the caller: the log
        stores what it is given). ``received_at`` is set here, from this machine's clock.
        """
        row = (int(event[USER]), int(event[ITEM]), float(event[RATING]), int(event[TIME]), time.time())
        cursor = self._db().execute(
            f"INSERT INTO events ({USER}, {ITEM}, {RATING}, {TIME}, received_at) VALUES (?, ?, ?, ?, ?)", row)
        return int(cursor.lastrowid)

    def replay(self, after: int = 0) -> Iterator[Event]:
        """Every event with an id above ``after``, in id order (the order they were committed and acknowledged)."""
        try:
            rows = self._db().execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE id > ? ORDER BY id",
                                      (int(after),))
            for row in rows:
                yield Event(*row)
        except sqlite3.DatabaseError as exc:
            raise EventLogError(self._not_a_log(f"reading it failed: {exc}")) from exc

    def frame(self) -> pd.DataFrame:
        """The whole log as a DataFrame with :data:`EVENT_COLUMNS`, in id order (what ``update_many`` takes)."""
        try:
            rows = self._db().execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY id").fetchall()
        except sqlite3.DatabaseError as exc:
            raise EventLogError(self._not_a_log(f"reading it failed: {exc}")) from exc
        frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
        return frame.astype({"id": "int64", USER: "int64", ITEM: "int64", RATING: "float64", TIME: "int64",
                             "received_at": "float64"})

    def __len__(self) -> int:
        return int(self._db().execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        """Close every thread's connection (the log stays on disk, complete)."""
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventLog({str(self.path)!r})"

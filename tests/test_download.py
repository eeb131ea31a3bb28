"""recsys_course.data.fetch: on-demand download, checksum, atomic write, retries — against a local server.

Nothing here touches the network: a tiny ``ml-100k.zip`` is built in the test and served by ``http.server``
on 127.0.0.1 (a random free port) in a background thread.
"""
from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import recsys_course.data as data
from recsys_course.config import GENRES, ITEM, RATING, TIME, TITLE, USER, YEAR
from recsys_course.data import DataError, RemoteDataset, fetch, load_movielens

# --------------------------------------------------------------------------------------------
# the fixture archive
# --------------------------------------------------------------------------------------------
U_DATA = [  # user item rating timestamp
    (1, 1, 5, 874965758),
    (1, 2, 3, 876893171),
    (2, 1, 4, 888550871),
    (2, 3, 1, 888551000),
    (3, 2, 2, 881250949),
]
#               unknown Action Adventure Animation Children's Comedy ... (19 flags)
U_ITEM = [
    (1, "Toy Story (1995)", [0, 0, 0, 1, 1, 1] + [0] * 13),
    (2, "GoldenEye (1995)", [0, 1, 1] + [0] * 13 + [1, 0, 0]),  # Action, Adventure, Thriller
    (3, "Café au lait (Métisse) (1993)", [1] + [0] * 18),  # only "unknown": no genres
]


def _u_item_bytes() -> bytes:
    lines = []
    for movie_id, title, flags in U_ITEM:
        assert len(flags) == 19
        fields = [str(movie_id), title, "01-Jan-1995", "", "http://us.imdb.com/M/title-exact?x", *map(str, flags)]
        assert len(fields) == 24
        lines.append("|".join(fields))
    return ("\n".join(lines) + "\n").encode("latin-1")


def _u_data_bytes() -> bytes:
    return "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in U_DATA).encode()


def build_zip(folder: str = "ml-100k") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{folder}/u.data", _u_data_bytes())
        zf.writestr(f"{folder}/u.item", _u_item_bytes())
        zf.writestr(f"{folder}/README", "tiny test fixture\n")
    return buf.getvalue()


ZIP = build_zip()
ZIP_MD5 = hashlib.md5(ZIP).hexdigest()


# --------------------------------------------------------------------------------------------
# the local server
# --------------------------------------------------------------------------------------------
class Server:
    """Serves ``/ml-100k.zip``. ``plan`` is a list of behaviours consumed one per request ("ok", "corrupt",
    "fail", "truncate", "cut"); when it runs out, requests get ``default``."""

    def __init__(self):
        self.requests = 0
        self.plan: list[str] = []
        self.default = "ok"
        self.body = ZIP
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with server.lock:
                    server.requests += 1
                    action = server.plan.pop(0) if server.plan else server.default
                if action == "fail":
                    self.send_error(503, "try again later")
                    return
                body = server.body
                length = len(body)
                if action == "corrupt":
                    body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
                elif action == "truncate":  # a short file, announced as such
                    body = body[: len(body) // 2]
                    length = len(body)
                elif action == "cut":  # the connection drops halfway through the announced length
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/ml-100k.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def spec(self, md5: str = ZIP_MD5, folder: str = "ml-100k") -> RemoteDataset:
        return RemoteDataset("100k", self.url, md5, folder)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


def _leftovers(cache):
    """Temporary files or folders fetch may leave behind (it must not)."""
    return sorted(p.name for p in cache.iterdir() if p.name.startswith(".") or p.name.endswith(".part"))


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------
def test_fixture_zip_is_what_we_think():
    with zipfile.ZipFile(io.BytesIO(ZIP)) as zf:
        assert sorted(zf.namelist()) == ["ml-100k/README", "ml-100k/u.data", "ml-100k/u.item"]
        first = zf.read("ml-100k/u.item").decode("latin-1").splitlines()[0]
    assert len(first.split("|")) == 24


def test_download_unzip_verify_and_no_second_request(server, tmp_cache):
    folder = fetch("100k", remote=server.spec(), retries=1, backoff=0, timeout=10)
    assert server.requests == 1
    assert folder == tmp_cache / "ml-100k"
    assert (folder / "u.data").read_bytes() == _u_data_bytes()
    assert (folder / "u.item").read_bytes() == _u_item_bytes()
    assert (folder / ".verified").read_text().strip() == ZIP_MD5
    archive = tmp_cache / "ml-100k.zip"
    assert archive.read_bytes() == ZIP
    assert _leftovers(tmp_cache) == []

    again = fetch("100k", remote=server.spec(), retries=1, backoff=0, timeout=10)
    assert again == folder
    assert server.requests == 1  # served from the verified cache


def test_verified_archive_in_cache_is_not_downloaded(server, tmp_cache):
    """The manual fix the error message suggests: copy the zip into the cache folder."""
    tmp_cache.mkdir(parents=True)
    (tmp_cache / "ml-100k.zip").write_bytes(ZIP)
    folder = fetch("100k", remote=server.spec(), retries=1, backoff=0)
    assert server.requests == 0
    assert (folder / ".verified").exists()
    assert (folder / "u.data").read_bytes() == _u_data_bytes()


def test_stale_archive_in_cache_is_replaced(server, tmp_cache):
    tmp_cache.mkdir(parents=True)
    (tmp_cache / "ml-100k.zip").write_bytes(b"not the archive")
    folder = fetch("100k", remote=server.spec(), retries=1, backoff=0)
    assert server.requests == 1
    assert (tmp_cache / "ml-100k.zip").read_bytes() == ZIP
    assert (folder / ".verified").exists()


def test_unverified_folder_is_refetched(server, tmp_cache):
    """A folder without the .verified marker (e.g. an interrupted unzip) is not trusted."""
    (tmp_cache / "ml-100k").mkdir(parents=True)
    (tmp_cache / "ml-100k" / "u.data").write_text("garbage\n")
    folder = fetch("100k", remote=server.spec(), retries=1, backoff=0)
    assert server.requests == 1
    assert (folder / "u.data").read_bytes() == _u_data_bytes()
    assert (folder / ".verified").exists()


@pytest.mark.parametrize("action", ["corrupt", "truncate"])
def test_corrupted_download_fails_and_leaves_nothing(server, tmp_cache, action):
    server.default = action
    with pytest.raises(DataError) as err:
        fetch("100k", remote=server.spec(), retries=2, backoff=0, timeout=10)
    msg = str(err.value)
    assert "checksum" in msg
    assert ZIP_MD5 in msg
    assert server.url in msg
    assert server.requests == 2  # every attempt was made
    assert not (tmp_cache / "ml-100k.zip").exists()
    assert not (tmp_cache / "ml-100k").exists()
    assert list(tmp_cache.glob("*.part")) == [] and list(tmp_cache.glob(".*")) == []
    assert _leftovers(tmp_cache) == []


def test_wrong_expected_md5_is_a_checksum_error(server, tmp_cache):
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch("100k", remote=server.spec(md5="0" * 32), retries=1, backoff=0)
    assert list(tmp_cache.iterdir()) == []


def test_fails_once_then_succeeds(server, tmp_cache):
    server.plan = ["fail"]
    folder = fetch("100k", remote=server.spec(), retries=3, backoff=0, timeout=10)
    assert server.requests == 2
    assert (folder / ".verified").exists()
    assert _leftovers(tmp_cache) == []


def test_corrupt_once_then_succeeds(server, tmp_cache):
    server.plan = ["corrupt"]
    folder = fetch("100k", remote=server.spec(), retries=2, backoff=0, timeout=10)
    assert server.requests == 2
    assert (folder / "u.item").read_bytes() == _u_item_bytes()
    assert _leftovers(tmp_cache) == []


def test_connection_dropped_midway_is_retried(server, tmp_cache):
    server.plan = ["cut"]
    folder = fetch("100k", remote=server.spec(), retries=2, backoff=0, timeout=10)
    assert server.requests == 2
    assert (folder / "u.data").read_bytes() == _u_data_bytes()
    assert _leftovers(tmp_cache) == []


def test_connection_dropped_every_time(server, tmp_cache):
    server.default = "cut"
    with pytest.raises(DataError, match="after 2 attempt") as err:
        fetch("100k", remote=server.spec(), retries=2, backoff=0, timeout=10)
    assert server.url in str(err.value)
    assert list(tmp_cache.iterdir()) == []


def test_server_error_every_time(server, tmp_cache):
    server.default = "fail"
    with pytest.raises(DataError, match="after 3 attempt") as err:
        fetch("100k", remote=server.spec(), retries=3, backoff=0, timeout=10)
    assert "503" in str(err.value)
    assert server.requests == 3
    assert list(tmp_cache.iterdir()) == []


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_names_url_and_manual_fix(tmp_cache):
    url = f"http://127.0.0.1:{_closed_port()}/ml-100k.zip"
    spec = RemoteDataset("100k", url, ZIP_MD5, "ml-100k")
    with pytest.raises(DataError) as err:
        fetch("100k", remote=spec, retries=2, backoff=0, timeout=5)
    msg = str(err.value)
    assert url in msg
    assert "after 2 attempt(s)" in msg
    # the manual fix: where to put the file, which md5 it must have, or which variable to set
    assert str(tmp_cache / "ml-100k.zip") in msg
    assert ZIP_MD5 in msg
    assert "RECSYS_COURSE_CACHE" in msg
    assert list(tmp_cache.iterdir()) == []


def test_zip_without_the_expected_folder(server, tmp_cache):
    server.body = build_zip(folder="something-else")
    spec = server.spec(md5=hashlib.md5(server.body).hexdigest())
    with pytest.raises(DataError, match="does not contain the folder ml-100k/"):
        fetch("100k", remote=spec, retries=1, backoff=0)
    assert not (tmp_cache / "ml-100k").exists()
    assert _leftovers(tmp_cache) == []  # the staging folder is cleaned up


def test_unknown_remote_name(tmp_cache):
    with pytest.raises(DataError, match="downloadable ones are"):
        fetch("latest-small")


def test_load_movielens_100k_end_to_end(server, tmp_cache, monkeypatch):
    monkeypatch.setitem(data.REMOTE, "100k", server.spec())
    ml = load_movielens("100k")
    assert ml.name == "100k"
    assert server.requests == 1

    r = ml.ratings
    assert list(r.columns) == [USER, ITEM, RATING, TIME]
    assert r[USER].dtype == np.int64 and r[ITEM].dtype == np.int64 and r[TIME].dtype == np.int64
    assert r[RATING].dtype == np.float64
    assert list(r.itertuples(index=False, name=None)) == [(u, i, float(x), t) for u, i, x, t in U_DATA]

    movies = ml.movies.set_index(ITEM)
    assert list(ml.movies.columns) == [ITEM, TITLE, YEAR, GENRES]
    assert movies.loc[1, TITLE] == "Toy Story" and movies.loc[1, YEAR] == 1995
    assert movies.loc[1, GENRES] == ["Animation", "Children's", "Comedy"]
    assert movies.loc[2, GENRES] == ["Action", "Adventure", "Thriller"]
    assert movies.loc[3, GENRES] == []  # "unknown" is not a genre
    assert movies.loc[3, TITLE] == "Café au lait (Métisse)"  # latin-1 decoded, year stripped
    assert movies.loc[3, YEAR] == 1993
    assert ml.tags.empty

    # loading again is served from the cache
    assert len(load_movielens("ml-100k").ratings) == len(U_DATA)
    assert server.requests == 1

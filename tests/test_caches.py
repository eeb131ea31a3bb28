"""The caches heal themselves: the text-embedding cache (`text.EmbeddingCache`) moves a damaged file aside with
one line and starts again, and two processes can write it at once; the download cache (`data.fetch`) fetches a
partial or corrupt archive again. Nothing here touches the network (the download server is on 127.0.0.1)."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from test_download import ZIP, ZIP_MD5, Server, _u_data_bytes

from recsys_course.data import fetch
from recsys_course.text import EmbeddingCache


def _aside(path) -> list:
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name + ".corrupt-"))


def _one_line(err: str, path) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert str(path) in lines[0] and "moved aside" in lines[0] and "new cache is built" in lines[0]
    return lines[0]


def _vectors(n: int, dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"k{i}": rng.normal(size=dim).astype(np.float32) for i in range(n)}


# --------------------------------------------------------------------------------------------
# the text-embedding cache
# --------------------------------------------------------------------------------------------
def test_a_file_that_is_not_a_database_is_moved_aside_and_rebuilt(tmp_path, capsys):
    path = tmp_path / "text_embeddings.sqlite"
    path.write_bytes(b"\x00garbage left by a full disk " * 200)
    cache = EmbeddingCache(path)
    line = _one_line(capsys.readouterr().err, path)
    assert "not a readable SQLite database" in line
    [aside] = _aside(path)
    assert aside.read_bytes().startswith(b"\x00garbage") and aside.name in line
    items = _vectors(3, 8)
    cache.put(items)
    assert all(np.array_equal(cache.get(list(items))[k], v) for k, v in items.items())
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_file_damaged_after_opening_is_healed_on_the_next_call(tmp_path, capsys):
    path = tmp_path / "e.sqlite"
    cache = EmbeddingCache(path, dim=8)
    cache.put(_vectors(5, 8))
    for suffix in ("", "-wal", "-shm"):  # an interrupted copy over the cache
        if (tmp_path / f"e.sqlite{suffix}").exists():
            (tmp_path / f"e.sqlite{suffix}").write_bytes(b"not sqlite" * 100)
    assert cache.get(["k0", "k1"]) == {}  # nothing usable: recomputed by the caller
    _one_line(capsys.readouterr().err, path)
    cache.put({"k0": np.ones(8, np.float32)})
    assert np.array_equal(cache.get(["k0"])["k0"], np.ones(8))


@pytest.mark.parametrize("schema, says", [
    ("CREATE TABLE emb (key TEXT PRIMARY KEY, value BLOB)", "another schema (table emb with columns key, value)"),
    ("CREATE TABLE events (id INTEGER)", "holds other tables (events)"),
])
def test_a_database_with_another_schema_is_moved_aside(tmp_path, capsys, schema, says):
    path = tmp_path / "e.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(schema)
    db.close()
    cache = EmbeddingCache(path)
    assert says in _one_line(capsys.readouterr().err, path)
    assert len(_aside(path)) == 1
    cache.put({"a": np.arange(4, dtype=np.float32)})
    assert np.array_equal(EmbeddingCache(path).get(["a"])["a"], np.arange(4))
    assert capsys.readouterr().err == ""  # a healthy cache says nothing


def test_vectors_of_the_wrong_length_for_the_model_are_not_returned(tmp_path, capsys):
    path = tmp_path / "e.sqlite"
    EmbeddingCache(path).put(_vectors(4, 8))  # e.g. another model saved under the same name
    cache = EmbeddingCache(path, dim=16)
    assert capsys.readouterr().err == ""  # opening is cheap: the rows are checked when they are read
    assert cache.get(["k0", "k1"]) == {}
    assert "holds vectors of length 8 for this model, which makes vectors of length 16" in _one_line(
        capsys.readouterr().err, path)
    fresh = _vectors(2, 16, seed=1)
    cache.put(fresh)
    assert np.array_equal(cache.get(["k1"])["k1"], fresh["k1"])


def test_a_vector_whose_bytes_do_not_match_its_length_is_damage(tmp_path, capsys):
    path = tmp_path / "e.sqlite"
    cache = EmbeddingCache(path)
    cache.put(_vectors(2, 8))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE emb SET vec = substr(vec, 1, 10) WHERE key = 'k0'")  # a torn write
    db.close()
    assert cache.get(["k0", "k1"]) == {}
    assert "stored length does not match" in _one_line(capsys.readouterr().err, path)


def test_a_locked_database_is_waited_for(tmp_path, monkeypatch):
    path = tmp_path / "e.sqlite"
    cache = EmbeddingCache(path)
    monkeypatch.setattr(EmbeddingCache, "TIMEOUT", 0.02)  # SQLite gives up at once: the retries must do it
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    other.execute("INSERT INTO emb VALUES ('theirs', 1, ?)", (np.ones(1, np.float32).tobytes(),))
    threading.Timer(0.4, lambda: other.execute("COMMIT")).start()
    start = time.perf_counter()
    cache.put({"mine": np.zeros(2, np.float32)})
    assert time.perf_counter() - start >= 0.3
    other.close()
    assert set(cache.get(["mine", "theirs"])) == {"mine", "theirs"}


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from recsys_course.text import EmbeddingCache

    path, tag, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.01)
    cache = EmbeddingCache(path, dim=16)
    for i in range(60):
        cache.put({f"{tag}-{i}-{j}": np.full(16, i * 100 + j, np.float32) for j in range(25)})
        got = cache.get([f"{tag}-{i}-0", f"{tag}-{max(i - 1, 0)}-24"])
        assert len(got) == 2 and got[f"{tag}-{i}-0"][0] == i * 100, got
    print("done", tag)
""")


def test_two_processes_writing_one_cache_at_once(tmp_path):
    """Two notebooks (or `make course` and JupyterLab) filling the same new cache at the same moment."""
    path, go = tmp_path / "text_embeddings.sqlite", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    time.sleep(1.0)  # both have started Python; they create the file together once `go` appears
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert out.startswith("done") and err == ""  # no damage found, nothing skipped
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM emb").fetchone()[0] == 2 * 60 * 25
    db.close()
    got = EmbeddingCache(path, dim=16).get(["a-59-24", "b-7-3"])
    assert got["a-59-24"][0] == 5924 and got["b-7-3"][0] == 703
    assert _aside(path) == []


def test_the_text_encoder_survives_a_damaged_cache(tmp_cache, capsys):
    """The issue's case: `text_embeddings.sqlite` overwritten with garbage no longer stops load_text_encoder."""
    from recsys_course.text import load_text_encoder

    path = tmp_cache / "text_embeddings.sqlite"
    tmp_cache.mkdir(parents=True)
    path.write_bytes(b"garbage " * 1000)
    enc = load_text_encoder()
    _one_line(capsys.readouterr().err, path)
    first = enc.encode(["Heat (1995) genres: Action, Crime, Thriller"])
    assert first.shape == (1, enc.dim)
    # vectors of another length stored for this model's keys are never returned: recomputed, the file replaced
    with sqlite3.connect(path) as db:
        db.execute("UPDATE emb SET dim = 8, vec = zeroblob(32)")
    db.close()
    again = load_text_encoder().encode(["Heat (1995) genres: Action, Crime, Thriller"])
    assert np.array_equal(again, first)
    assert f"which makes vectors of length {enc.dim}" in _one_line(capsys.readouterr().err, path)
    assert len(_aside(path)) == 2


# --------------------------------------------------------------------------------------------
# the download cache
# --------------------------------------------------------------------------------------------
@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


def test_a_partial_archive_in_the_cache_is_fetched_again(server, tmp_cache, capsys):
    tmp_cache.mkdir(parents=True)
    (tmp_cache / "ml-100k.zip").write_bytes(ZIP[: len(ZIP) // 2])  # an interrupted copy
    folder = fetch("100k", remote=server.spec(), retries=1, backoff=0, timeout=10)
    assert server.requests == 1
    assert (tmp_cache / "ml-100k.zip").read_bytes() == ZIP
    assert (folder / "u.data").read_bytes() == _u_data_bytes()
    line = capsys.readouterr().err.strip()
    assert "ml-100k.zip does not match its md5" in line and "fetching it again" in line and "\n" not in line


def test_a_folder_verified_for_another_archive_is_unzipped_again(server, tmp_cache):
    folder = fetch("100k", remote=server.spec(), retries=1, backoff=0, timeout=10)
    (folder / ".verified").write_text("0" * 32 + "\n")  # unzipped from some other archive
    (folder / "u.data").write_text("garbage\n")
    again = fetch("100k", remote=server.spec(), retries=1, backoff=0, timeout=10)
    assert server.requests == 1  # the cached archive passes its md5: unzipped again, not downloaded
    assert (again / "u.data").read_bytes() == _u_data_bytes()
    assert (again / ".verified").read_text().strip() == ZIP_MD5

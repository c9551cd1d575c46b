"""A LangChain retriever over ``rag.Index``: hybrid search with page, offsets and quote kept.

Needs ``pip install 'rag[langchain]'`` (``langchain-core``). Each passage becomes a LangChain
``Document`` whose ``page_content`` is the passage and whose ``metadata`` carries where it is:
``source`` (path), ``name``, ``page``, ``start``/``end`` (character offsets in the page text),
``quote`` (the best-matching sentence, verbatim) with ``quote_start``/``quote_end``, ``score``,
``rank`` and ``chunk_id``; ``Document.id`` is the chunk id.

Example:
    >>> from rag import Index
    >>> from rag.integrations.langchain import RagRetriever
    >>> retriever = RagRetriever(index=Index.open("index/"), k=4)
    >>> docs = retriever.invoke("Who called for UN visits?")
    >>> docs[0].metadata["name"], docs[0].metadata["page"], docs[0].metadata["quote"]
    >>> retriever.invoke("Who called for UN visits?", k=1, sources=["report.pdf"])   # per call

``metadata["score"]`` is the fused rank score (dense + BM25), comparable within one query's
results only: not a 0-1 similarity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.index import Index
from rag.integrations import hit_metadata, search_arguments

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError:  # pragma: no cover - depends on the environment
    raise RagError("the LangChain retriever needs langchain-core: pip install 'rag[langchain]'") from None

__all__ = ["RagRetriever"]


class RagRetriever(BaseRetriever):
    """LangChain ``BaseRetriever`` that searches a ``rag.Index`` (dense + BM25, fused).

    Attributes:
        index: the index to search (``Index.open(folder, collection=...)``).
        k: passages per query.
        search_kwargs: passed to ``Index.search``, e.g. ``{"sources": ["report.pdf"]}`` or
            ``{"k": 2}``; keyword arguments of ``invoke`` override them for one call.

    Example:
        >>> retriever = RagRetriever.from_folder("index/", collection="reports", k=3)
        >>> [d.metadata["page"] for d in retriever.invoke("revenue in 2023")]
    """

    index: Index
    k: int = 5
    search_kwargs: dict[str, Any] = {}

    @classmethod
    def from_folder(cls, folder: str | Path, collection: str | None = None, k: int = 5) -> RagRetriever:
        """A retriever over the index in ``folder`` (or one of its collections)."""
        return cls(index=Index.open(folder, collection=collection), k=k)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        # LangChain hands the keyword arguments of invoke() on only to a method that takes them.
        k, arguments = search_arguments(query, self.k, {**self.search_kwargs, **kwargs})
        hits = self.index.search(query, k, **arguments)
        return [Document(page_content=hit.text, metadata=hit_metadata(hit), id=hit.chunk.id) for hit in hits]

"""Adapters that let other frameworks use an ``Index``; each needs its own optional extra.

- ``rag.integrations.langchain.RagRetriever``: a LangChain ``BaseRetriever`` (``pip install 'rag[langchain]'``).
- ``rag.integrations.llama_index.RagRetriever``: a LlamaIndex retriever (``pip install 'rag[llamaindex]'``).

Nothing here is imported by ``rag`` itself, so neither framework is needed to use the library.
"""

from __future__ import annotations

from typing import Any

from ..formats.registry import page_word
from ..types import Hit


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """Where a passage is, as plain values both frameworks can store.

    Example:
        >>> # hit_metadata(index.search("Who called for UN visits?")[0])["quote"]
    """
    return {"source": hit.source, "name": hit.name, "page": hit.page, "unit": page_word(hit.source),
            "start": hit.chunk.start, "end": hit.chunk.end, "quote": hit.quote.text, "quote_start": hit.quote.start,
            "quote_end": hit.quote.end, "score": hit.score, "rank": hit.rank, "chunk_id": hit.chunk.id}

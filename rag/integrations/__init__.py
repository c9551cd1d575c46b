"""Adapters that let other frameworks use an ``Index``; each needs its own optional extra.

- ``rag.integrations.langchain.RagRetriever``: a LangChain ``BaseRetriever`` (``pip install 'rag[langchain]'``).
- ``rag.integrations.llama_index.RagRetriever``: a LlamaIndex retriever (``pip install 'rag[llamaindex]'``).

Nothing here is imported by ``rag`` itself, so neither framework is needed to use the library.
"""

from __future__ import annotations

from typing import Any

from rag.errors import QueryError
from rag.limits import check_k
from rag.file_types import page_word
from rag.settings import Settings
from rag.types import Hit

SEARCH_FILTERS = ("sources", "pages", "history")
"""The keyword arguments of ``Index.search`` besides ``k``; any ``Settings`` field is a per-query override too."""


def search_arguments(query: object, k: object, arguments: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``k`` and the other ``Index.search`` arguments of one retriever call, checked.

    ``arguments`` may hold ``k`` (it wins over the retriever's own). A query that is not text,
    a ``k`` that is not a whole number of at least 1, or an argument ``Index.search`` does not
    take is a ``QueryError`` naming it, before any search.

    Example:
        >>> search_arguments("revenue", 5, {"k": 2, "sources": ["report.pdf"]})
        (2, {'sources': ['report.pdf']})
    """
    if not isinstance(query, str):
        raise QueryError(f"the query must be text (str), not {type(query).__name__}")
    rest = dict(arguments)
    k = rest.pop("k", k)
    k = check_k(k)
    known = set(SEARCH_FILTERS) | set(Settings.__dataclass_fields__)
    unknown = sorted(set(rest) - known)
    if unknown:
        raise QueryError(f"unknown search argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                         f"use k, {', '.join(SEARCH_FILTERS)} or a Settings field such as fusion or mmr")
    return k, rest


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """Where a passage is, as plain values both frameworks can store.

    Example:
        >>> # hit_metadata(index.search("Who called for UN visits?")[0])["quote"]
    """
    return {"source": hit.source, "name": hit.name, "page": hit.page, "unit": page_word(hit.source),
            "start": hit.chunk.start, "end": hit.chunk.end, "quote": hit.quote.text, "quote_start": hit.quote.start,
            "quote_end": hit.quote.end, "score": hit.score, "rank": hit.rank, "chunk_id": hit.chunk.id}

"""A LlamaIndex retriever over ``rag.Index``: hybrid search with page, offsets and quote kept.

Needs ``pip install 'rag[llamaindex]'`` (``llama-index-core``). Each passage becomes a
``NodeWithScore`` holding a ``TextNode`` (``id_`` is the chunk id, ``text`` the passage) whose
``metadata`` carries ``source``, ``name``, ``page``, ``start``/``end`` (character offsets in the page
text), ``quote`` (the best-matching sentence, verbatim) with ``quote_start``/``quote_end``,
``score``, ``rank`` and ``chunk_id``. The node's ``start_char_idx``/``end_char_idx`` are the same
page offsets. Only file, page and quote are shown to an LLM; the rest is for citing.

Example:
    >>> from rag import Index
    >>> from rag.integrations.llama_index import RagRetriever
    >>> retriever = RagRetriever(Index.open("index/"), k=4)
    >>> nodes = retriever.retrieve("Who called for UN visits?")
    >>> nodes[0].node.metadata["page"], nodes[0].node.metadata["quote"], nodes[0].score
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import RagError
from ..index import Index
from . import hit_metadata

try:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError:  # pragma: no cover - depends on the environment
    raise RagError("the LlamaIndex retriever needs llama-index-core: pip install 'rag[llamaindex]'") from None

__all__ = ["RagRetriever"]

# Offsets and scores help a program cite; in an LLM prompt they are noise.
_NOT_FOR_THE_LLM = ["source", "start", "end", "quote_start", "quote_end", "score", "rank", "chunk_id"]


class RagRetriever(BaseRetriever):
    """LlamaIndex ``BaseRetriever`` that searches a ``rag.Index`` (dense + BM25, fused).

    Args:
        index: the index to search (``Index.open(folder, collection=...)``).
        k: passages per query.
        search_kwargs: passed to ``Index.search``, e.g. ``{"pages": (3, 5)}``.

    Example:
        >>> retriever = RagRetriever.from_folder("index/", collection="reports", k=3)
        >>> from llama_index.core.query_engine import RetrieverQueryEngine   # with your LLM set
    """

    def __init__(self, index: Index, k: int = 5, search_kwargs: dict[str, Any] | None = None,
                 callback_manager: CallbackManager | None = None) -> None:
        if k < 1:
            raise RagError(f"k must be at least 1, not {k}")
        self.index = index
        self.k = k
        self.search_kwargs = dict(search_kwargs or {})
        super().__init__(callback_manager=callback_manager)

    @classmethod
    def from_folder(cls, folder: str | Path, collection: str | None = None, k: int = 5) -> RagRetriever:
        """A retriever over the index in ``folder`` (or one of its collections)."""
        return cls(Index.open(folder, collection=collection), k=k)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.index.search(query_bundle.query_str, self.k, **self.search_kwargs)
        return [NodeWithScore(node=TextNode(id_=hit.chunk.id, text=hit.text, metadata=hit_metadata(hit),
                                            start_char_idx=hit.chunk.start, end_char_idx=hit.chunk.end,
                                            excluded_llm_metadata_keys=list(_NOT_FOR_THE_LLM),
                                            excluded_embed_metadata_keys=list(_NOT_FOR_THE_LLM)),
                              score=hit.score)
                for hit in hits]

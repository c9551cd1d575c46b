"""A LlamaIndex retriever over ``rag.Index``: hybrid search with page, offsets and quote kept.

Needs ``pip install 'rag[llamaindex]'`` (``llama-index-core``). Each passage becomes a
``NodeWithScore`` holding a ``TextNode`` (``id_`` is the chunk id, ``text`` the passage) whose
``metadata`` carries ``source``, ``name``, ``page``, ``start``/``end`` (character offsets in the page
text), ``quote`` (the best-matching sentence, verbatim) with ``quote_start``/``quote_end``,
``score``, ``rank`` and ``chunk_id``. The node's ``start_char_idx``/``end_char_idx`` are the same
page offsets. Only file, page and quote are shown to an LLM; the rest is for citing. Each node's
``SOURCE`` relationship is its file (``node.ref_doc_id`` is the source path), so passages group
by document as LlamaIndex's own do.

``NodeWithScore.score`` is the fused rank score (dense + BM25, ``Settings.fusion``): higher is
better and it orders one query's results, but it is not a 0-1 similarity and not comparable
across queries, so a ``SimilarityPostprocessor(similarity_cutoff=...)`` tuned for cosine
similarities does not apply to it.

Example:
    >>> from rag import Index
    >>> from rag.integrations.llama_index import RagRetriever
    >>> retriever = RagRetriever(Index.open("index/"), k=4)
    >>> nodes = retriever.retrieve("Who called for UN visits?")
    >>> nodes[0].node.metadata["page"], nodes[0].node.metadata["quote"], nodes[0].score
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.index import Index
from rag.integrations import hit_metadata, search_arguments
from rag.types import Hit

try:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
except ImportError:  # pragma: no cover - depends on the environment
    raise RagError("the LlamaIndex retriever needs llama-index-core: pip install 'rag[llamaindex]'") from None

__all__ = ["RagRetriever"]

# Offsets and scores help a program cite; in an LLM prompt they are noise.
_NOT_FOR_THE_LLM = ["source", "start", "end", "quote_start", "quote_end", "score", "rank", "chunk_id"]


class RagRetriever(BaseRetriever):
    """LlamaIndex ``BaseRetriever`` that searches a ``rag.Index`` (dense + BM25, fused).

    Args:
        index: the index to search (``Index.open(folder, collection=...)``).
        k: passages per query (``similarity_top_k``, LlamaIndex's name for it, is the same).
        search_kwargs: passed to ``Index.search``, e.g. ``{"pages": (3, 5)}``; a ``"k"`` in them
            wins over ``k``.

    Example:
        >>> retriever = RagRetriever.from_folder("index/", collection="reports", k=3)
        >>> from llama_index.core.query_engine import RetrieverQueryEngine   # with your LLM set
    """

    def __init__(self, index: Index, k: int = 5, search_kwargs: dict[str, Any] | None = None,
                 callback_manager: CallbackManager | None = None, *, similarity_top_k: int | None = None) -> None:
        # Checked now, so that a wrong argument fails where it is written rather than at the first query.
        self.k, self.search_kwargs = search_arguments("", k if similarity_top_k is None else similarity_top_k,
                                                      dict(search_kwargs or {}))
        self.index = index
        super().__init__(callback_manager=callback_manager)

    @property
    def similarity_top_k(self) -> int:
        """Passages per query, under LlamaIndex's name for it."""
        return self.k

    @classmethod
    def from_folder(cls, folder: str | Path, collection: str | None = None, k: int = 5) -> RagRetriever:
        """A retriever over the index in ``folder`` (or one of its collections)."""
        return cls(Index.open(folder, collection=collection), k=k)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        k, arguments = search_arguments(query_bundle.query_str, self.k, self.search_kwargs)
        return [_node(hit) for hit in self.index.search(query_bundle.query_str, k, **arguments)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # The search is CPU work (embedding, FAISS, BM25): in a thread, the event loop stays free.
        return await asyncio.to_thread(self._retrieve, query_bundle)


def _node(hit: Hit) -> NodeWithScore:
    node = TextNode(id_=hit.chunk.id, text=hit.text, metadata=hit_metadata(hit),
                    start_char_idx=hit.chunk.start, end_char_idx=hit.chunk.end,
                    excluded_llm_metadata_keys=list(_NOT_FOR_THE_LLM),
                    excluded_embed_metadata_keys=list(_NOT_FOR_THE_LLM),
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=hit.source,
                                                                            metadata={"name": hit.name})})
    return NodeWithScore(node=node, score=hit.score)

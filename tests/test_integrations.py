"""The LangChain and LlamaIndex retrievers, run by the real framework packages over a real index."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import Index

DELEGATIONS = "She said it is essential for international delegations to visit Iran"
QUESTION = "Who called for UN visits?"


@pytest.fixture(scope="module")
def seed_index(seed_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index.build([seed_file], tmp_path_factory.mktemp("integrations-index"))


def _check_first(text: str, metadata: dict, index: Index) -> None:
    assert DELEGATIONS in text and DELEGATIONS in metadata["quote"]
    assert metadata["name"] == "000_17d6ea71f6fbed30.txt" and metadata["page"] == 1 and metadata["rank"] == 1
    page = index.page_text(metadata["source"], metadata["page"])
    assert page is not None
    # Offsets are into the stored page text: the passage and its quote are exact slices of it.
    assert page[metadata["start"]:metadata["end"]] == text
    assert page[metadata["quote_start"]:metadata["quote_end"]] == metadata["quote"]


def test_langchain_retriever_returns_the_delegations_passage_first(seed_index: Index) -> None:
    pytest.importorskip("langchain_core", reason="the langchain extra is not installed: pip install 'rag[langchain]'")
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from rag.integrations.langchain import RagRetriever

    retriever = RagRetriever(index=seed_index, k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(QUESTION)                     # LangChain's own Runnable entry point
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    _check_first(docs[0].page_content, docs[0].metadata, seed_index)
    assert docs[0].id == docs[0].metadata["chunk_id"]
    # Batch runs through LangChain's executor, on the same thread-safe index.
    assert [d[0].id for d in retriever.batch([QUESTION, QUESTION])] == [docs[0].id] * 2


def test_llama_index_retriever_returns_the_delegations_passage_first(seed_index: Index) -> None:
    pytest.importorskip("llama_index.core", reason="the llamaindex extra is not installed: pip install 'rag[llamaindex]'")
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import MetadataMode, NodeWithScore

    from rag.integrations.llama_index import RagRetriever

    retriever = RagRetriever(seed_index, k=3)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve(QUESTION)
    assert len(nodes) == 3 and all(isinstance(n, NodeWithScore) for n in nodes)
    assert nodes[0].score >= nodes[1].score >= nodes[2].score
    first = nodes[0].node
    _check_first(first.get_content(), first.metadata, seed_index)
    assert (first.start_char_idx, first.end_char_idx) == (first.metadata["start"], first.metadata["end"])
    # What an LLM would be shown names the file, page and quote, not the offsets.
    shown = first.get_content(metadata_mode=MetadataMode.LLM)
    assert "page: 1" in shown and "chunk_id" not in shown

"""The LangChain and LlamaIndex retrievers, run by the real framework packages over a real index."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from typing import Any

import pytest

from rag import Index

DELEGATIONS = "She said it is essential for international delegations to visit Iran"
QUESTION = "Who called for UN visits?"


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


# LangChain's own standard suite for retrievers, run against ours (langchain-tests, in the test extra).
if importlib.util.find_spec("langchain_tests") and importlib.util.find_spec("langchain_core"):
    from langchain_tests.integration_tests import RetrieversIntegrationTests

    from rag.integrations.langchain import RagRetriever as LangChainRetriever

    @pytest.mark.usefixtures("langchain_index")
    @pytest.mark.anyio  # its async tests run on anyio's pytest plugin (anyio comes with httpx)
    class TestLangChainStandard(RetrieversIntegrationTests):
        index: Index

        @pytest.fixture
        def anyio_backend(self) -> str:
            return "asyncio"

        @pytest.fixture(scope="class")
        def langchain_index(self, request: pytest.FixtureRequest, seed_index: Index) -> None:
            request.cls.index = seed_index

        @property
        def retriever_constructor(self) -> type[LangChainRetriever]:
            return LangChainRetriever

        @property
        def retriever_constructor_params(self) -> dict[str, Any]:
            return {"index": self.index}

        @property
        def retriever_query_example(self) -> str:
            return QUESTION


def test_langchain_retriever_takes_k_and_filters_per_call_and_refuses_bad_input(seed_index: Index) -> None:
    pytest.importorskip("langchain_core", reason="the langchain extra is not installed: pip install 'rag[langchain]'")
    from rag import QueryError
    from rag.integrations.langchain import RagRetriever

    assert len(RagRetriever(index=seed_index, search_kwargs={"k": 2}).invoke(QUESTION)) == 2
    retriever = RagRetriever(index=seed_index, k=4)
    assert len(retriever.invoke(QUESTION, k=1)) == 1 and len(retriever.invoke(QUESTION)) == 4
    name = retriever.invoke(QUESTION)[0].metadata["name"]
    assert {d.metadata["name"] for d in retriever.invoke(QUESTION, sources=[name])} == {name}
    with pytest.raises(QueryError, match="unknown search argument colour"):
        retriever.invoke(QUESTION, colour="red")
    with pytest.raises(QueryError, match="k must be a whole number of at least 1, not 0"):
        retriever.invoke(QUESTION, k=0)
    with pytest.raises(QueryError, match="the query must be text"):
        retriever.invoke(42)  # type: ignore[arg-type]


def test_llama_index_retriever_search_runs_off_the_event_loop_and_groups_by_file(seed_index: Index) -> None:
    pytest.importorskip("llama_index.core", reason="the llamaindex extra is not installed: pip install 'rag[llamaindex]'")
    from llama_index.core.schema import NodeRelationship

    from rag import QueryError
    from rag.integrations.llama_index import RagRetriever

    threads: list[int] = []

    class NotingIndex:
        """The real index, noting which thread each search runs on."""

        def search(self, *args: Any, **kwargs: Any) -> Any:
            threads.append(threading.get_ident())
            return seed_index.search(*args, **kwargs)

    async def run() -> tuple[int, list[Any]]:
        retriever = RagRetriever(NotingIndex(), k=2)  # type: ignore[arg-type]
        return threading.get_ident(), await retriever.aretrieve(QUESTION)

    loop_thread, nodes = asyncio.run(run())
    assert len(nodes) == 2 and threads and loop_thread not in threads
    first = nodes[0].node
    assert first.ref_doc_id == first.metadata["source"]
    assert first.relationships[NodeRelationship.SOURCE].node_id == first.metadata["source"]

    assert len(RagRetriever(seed_index, search_kwargs={"k": 1}).retrieve(QUESTION)) == 1
    top = RagRetriever(seed_index, similarity_top_k=2)
    assert top.similarity_top_k == 2 and len(top.retrieve(QUESTION)) == 2
    with pytest.raises(QueryError, match="unknown search argument top_n"):
        RagRetriever(seed_index, search_kwargs={"top_n": 3})
    with pytest.raises(QueryError, match="not 0"):
        RagRetriever(seed_index, similarity_top_k=0)

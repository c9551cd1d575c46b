"""``rag mcp`` spawned over stdio and driven by the official MCP SDK's own client."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_index

pytest.importorskip("mcp", reason="the MCP extra is not installed: pip install 'rag[mcp]'")

import anyio  # noqa: E402 - after the skip: anyio comes with mcp
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from rag import Index  # noqa: E402
from rag.collection_paths import COLLECTIONS, has_index  # noqa: E402

DELEGATIONS = "She said it is essential for international delegations to visit Iran"


@pytest.fixture(scope="module")
def news_folder(seed_index: Index, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index folder whose "news" collection holds the seed article."""
    folder = tmp_path_factory.mktemp("mcp-index")
    copy_index(seed_index, folder / COLLECTIONS / "news")
    return folder


def _run(folder: Path, calls: list[tuple[str, dict[str, Any]]],
         collection: str | None = "news") -> tuple[list[str], list[Any]]:
    """Start ``rag mcp`` as a client would (on ``collection``, or none named), list its tools, make
    ``calls``; tool names and results."""

    async def session() -> tuple[list[str], list[Any]]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "rag.serve.cli", "mcp", "--index", str(folder),
                                          *(("--collection", collection) if collection else ())],
            env={"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                 "PATH": os.environ.get("PATH", "")})
        with open(os.environ.get("RAG_TEST_MCP_LOG", os.devnull), "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as client:
                await client.initialize()
                tools = sorted(t.name for t in (await client.list_tools()).tools)
                results = [await client.call_tool(name, args, read_timeout_seconds=120) for name, args in calls]
        return tools, results

    return anyio.run(session)


def test_mcp_client_lists_the_tools_and_asks(news_folder: Path) -> None:
    tools, (ask, search, docs, collections, missing) = _run(news_folder, [
        ("ask", {"question": "Who called for UN visits?"}),
        ("search", {"question": "Who called for UN visits?", "k": 3}),
        ("list_documents", {}),
        ("list_collections", {}),
        ("ask", {"question": "Who called for UN visits?", "collection": "nowhere"}),
    ])
    assert tools == ["ask", "list_collections", "list_documents", "search"]

    assert not ask.is_error
    answer = ask.structured_content
    assert answer["found"] and "Maryam Rajavi" in answer["answer"]
    assert "[1]" in answer["answer"]
    first = answer["citations"][0]
    assert DELEGATIONS in first["text"] and first["name"] == "000_17d6ea71f6fbed30.txt" and first["page"] == 1
    assert first["end"] - first["start"] == len(first["text"])
    # The same answer is in the text content, for clients that only read text.
    assert json.loads(ask.content[0].text)["answer"] == answer["answer"]

    hits = search.structured_content["result"]
    assert len(hits) == 3 and DELEGATIONS in hits[0]["quote"]
    assert [d["name"] for d in docs.structured_content["result"]] == ["000_17d6ea71f6fbed30.txt"]
    # One shape of a document, as `rag docs --json` prints it (Document.to_dict).
    assert set(docs.structured_content["result"][0]) == {"source", "name", "pages", "unit", "chunks", "size"}
    assert collections.structured_content["result"] == ["news"]

    # A collection that does not exist is the tool's error, in words, not a dead server.
    assert missing.is_error and "no collection 'nowhere'" in missing.content[0].text


def test_mcp_over_streamable_http_answers_its_client_and_refuses_a_foreign_host(news_folder: Path) -> None:
    import subprocess
    import urllib.error
    import urllib.request

    from conftest import free_port, stop, wait_until
    from mcp.client.streamable_http import streamable_http_client

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen([sys.executable, "-m", "rag.serve.cli", "mcp", "--http", "--port", str(port),
                                "--index", str(news_folder), "--collection", "news"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"

    def answering() -> bool:
        assert process.poll() is None, f"rag mcp --http exited with {process.returncode}"
        try:
            urllib.request.urlopen(url, timeout=2)
        except urllib.error.HTTPError:
            return True  # it answers (a bare GET is refused by the protocol)
        except OSError:
            return False
        return True

    try:
        wait_until(answering, "rag mcp --http to answer", every=0.5)

        async def ask() -> Any:
            async with streamable_http_client(url) as streams, ClientSession(streams[0], streams[1]) as client:
                await client.initialize()
                return await client.call_tool("ask", {"question": "Who called for UN visits?"},
                                              read_timeout_seconds=120)

        answer = anyio.run(ask).structured_content
        assert answer["found"] and "Maryam Rajavi" in answer["answer"]
        # DNS rebinding: a page on attacker.example, resolved to 127.0.0.1, must not reach the tools.
        request = urllib.request.Request(url, data=b"{}", method="POST", headers={
            "Host": f"attacker.example:{port}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 421
        foreign = urllib.request.Request(url, data=b"{}", method="POST", headers={
            "Origin": "http://attacker.example", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(foreign, timeout=30)
        assert refused.value.code == 403
    finally:
        stop(process)


def test_a_lan_bind_is_guarded_too_with_its_own_name_allowed() -> None:
    # The SDK guards only loopback binds by itself.
    from rag.serve.mcp_server import transport_security

    guard = transport_security("192.168.1.5")
    assert guard.enable_dns_rebinding_protection
    assert "192.168.1.5:*" in guard.allowed_hosts and "localhost:*" in guard.allowed_hosts
    assert "[::1]:*" in guard.allowed_hosts and not any("attacker" in h for h in guard.allowed_hosts)


def test_every_tool_argument_is_described_bounded_and_read_only(news_folder: Path) -> None:
    # as long as a question may be (rag.limits.MAX_QUESTION_CHARS), the question at its end
    long_question = "Please answer carefully. " * 150 + "Who called for UN visits?"

    async def session() -> tuple[list[Any], list[Any]]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "rag.serve.cli", "mcp", "--index", str(news_folder), "--collection", "news"],
            env={"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                 "PATH": os.environ.get("PATH", "")})
        async with stdio_client(params, errlog=open(os.devnull, "w")) as (read, write), \
                ClientSession(read, write) as client:
            await client.initialize()
            tools = (await client.list_tools()).tools
            calls = [("search", {"question": "Who called for UN visits?", "k": 0}),
                     ("search", {"question": "Who called for UN visits?", "k": 51}),
                     ("search", {"question": "Who called for UN visits?", "k": 2, "collection": None}),
                     ("ask", {"question": long_question, "k": 1}),
                     ("ask", {"question": "Who called for UN visits?", "pages": [3, 1]})]
            results = [await client.call_tool(name, args, read_timeout_seconds=120) for name, args in calls]
        return tools, results

    tools, (zero, many, null_collection, long_ask, backwards) = anyio.run(session)
    for tool in tools:
        assert tool.annotations is not None and tool.annotations.read_only_hint is True, tool.name
        for name, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"
    for name in ("search", "ask"):
        properties = next(t for t in tools if t.name == name).input_schema["properties"]
        assert (properties["k"]["minimum"], properties["k"]["maximum"]) == (1, 50)
        assert {"type": "null"} in properties["collection"]["anyOf"]
    # A wrong argument is the tool's error in rag's one line, as the CLI and /v1 say it.
    said = [result.content[0].text for result in (zero, many, backwards) if result.is_error]
    assert said == ["Error executing tool search: k must be a whole number from 1 to 50, not 0",
                    "Error executing tool search: k must be a whole number from 1 to 50, not 51",
                    "Error executing tool ask: pages must be [first, last], page numbers from 1, e.g. [3, 5], not [3, 1]"]
    assert not null_collection.is_error and len(null_collection.structured_content["result"]) == 2
    assert not long_ask.is_error and long_ask.structured_content["found"]
    # The client knows its question: the reply does not carry it back (twice, and again in the text).
    assert "Please answer carefully" not in long_ask.content[0].text
    assert "question" not in long_ask.structured_content
    assert long_ask.structured_content["query"] == "Who called for UN visits?", "what was searched, when it differs"


def test_without_a_collection_the_tools_ask_the_demo_of_a_folder_of_collections(
        seed_index: Index, tmp_path: Path) -> None:
    # As `make run` leaves index/: demo and my-documents, no index of its own. A client configured with
    # `rag mcp --index index/` alone gets answers from demo, not "no collection 'default'".
    for name in ("demo", "my-documents"):
        copy_index(seed_index, tmp_path / COLLECTIONS / name)
    _, (collections, ask) = _run(tmp_path, [("list_collections", {}),
                                            ("ask", {"question": "Who called for UN visits?"})], collection=None)
    assert collections.structured_content["result"] == ["demo", "my-documents"]
    assert not ask.is_error and "Maryam Rajavi" in ask.structured_content["answer"]
    assert not has_index(tmp_path), "no default collection was made"

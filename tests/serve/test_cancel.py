"""An answer whose caller has gone stops at its next stage (``Index.ask(..., stop=...)``, ``rag.cancel``).

Through ``/v1`` (a real uvicorn server in this process, real HTTP clients) and the page's queue
(a real Gradio server, its own queue protocol over HTTP), in LLM answer mode against a small
OpenAI-compatible endpoint started here: a client that leaves while its follow-up is being
rewritten by the LLM never costs the answer's LLM request. See docs/reliability.md.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from conftest import ask, browser_page, free_port, v1_server, wait_until

from rag import AnswerCancelled, Index
from rag.search.conversation import CONDENSE_PROMPT

HISTORY = [{"role": "user", "content": "Who called for UN visits?"},
           {"role": "assistant", "content": "Mrs. Maryam Rajavi"}]
FOLLOW_UP = "What did she say they should assess?"


# -- Index.ask ------------------------------------------------------------------------------------


def test_ask_stops_when_told_and_answers_as_before_when_not(seed_index: Index) -> None:
    question = "Who called for UN visits?"
    with pytest.raises(AnswerCancelled, match="stopped before the search"):
        seed_index.ask(question, stop=lambda: True)
    asked: list[str] = []

    def never() -> bool:
        asked.append("asked")
        return False

    plain = seed_index.ask(question).to_dict()
    assert seed_index.ask(question, stop=None).to_dict() == plain
    assert seed_index.ask(question, stop=never).to_dict() == plain
    assert "Maryam Rajavi" in plain["answer"] and len(asked) == 2   # before the search, before the reading

    # A caller that leaves during the search: the passages are found, never read.
    with pytest.raises(AnswerCancelled, match="stopped before reading"):
        seed_index.ask(question, stop=lambda: bool(asked.append("again")) or len(asked) > 3)
    # A summary stops before it is made.
    with pytest.raises(AnswerCancelled, match="stopped before the summary"):
        seed_index.ask("Summarize this document", stop=lambda: True)


# -- a local LLM endpoint -------------------------------------------------------------------------


class LLM:
    """An OpenAI-compatible endpoint on 127.0.0.1 that holds each follow-up rewrite until ``release``."""

    def __init__(self) -> None:
        self.rewrites: list[str] = []
        """The follow-ups it was asked to rewrite (the conversation's condense request)."""
        self.answers: list[str] = []
        """The answer requests it got (the passages and the question)."""
        self.release = threading.Event()
        self.hold_answers = False
        """When set, answer requests too wait for ``release``."""
        llm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                messages = body["messages"]
                if messages[0]["content"] == CONDENSE_PROMPT:
                    llm.rewrites.append(messages[-1]["content"])
                    llm.release.wait(60)
                    reply = "What did Mrs. Maryam Rajavi say they should assess?"
                else:
                    llm.answers.append(messages[-1]["content"])
                    if llm.hold_answers:
                        llm.release.wait(60)
                    reply = "NOT FOUND"
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def ask_through_me(self, index: Index) -> None:
        index.settings = index.settings.replace(answer_mode="llm", llm_base_url=self.url, llm_model="local-test")


@pytest.fixture()
def llm() -> Iterator[LLM]:
    server = LLM()
    try:
        yield server
    finally:
        server.release.set()
        server.httpd.shutdown()


# -- /v1 ------------------------------------------------------------------------------------------


class API(NamedTuple):
    url: str
    slots: Any
    """The router's ``ReaderSlots``."""


@pytest.fixture()
def api(seed_index: Index, llm: LLM) -> Iterator[API]:
    """The ``/v1`` API on a real uvicorn server in this process, answering through ``llm``."""
    from rag.collections import Collections
    from rag.serve.slots import ReaderSlots

    library = Collections(seed_index.folder)
    llm.ask_through_me(library.get(""))   # an Index of its own: the shared seed_index keeps its settings
    slots = ReaderSlots()
    with v1_server(library, slots) as (url, _):
        try:
            yield API(url, slots)
        finally:
            llm.release.set()


def _follow_up(stream: bool) -> dict[str, Any]:
    return {"model": "default", "stream": stream, "messages": [*HISTORY, {"role": "user", "content": FOLLOW_UP}]}


def test_a_v1_client_that_left_never_costs_the_llm_answer(api: API, llm: LLM,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # Before: the worker thread ran on to the end for nobody, its LLM answer request included.
    caplog.set_level(logging.INFO, logger="rag.serve.slots")
    body = json.dumps(_follow_up(False)).encode()
    address = httpx.URL(api.url)
    with httpx.Client(timeout=60) as client:
        # A streaming client reads the reply's first chunk and hangs up while the LLM rewrites its follow-up.
        with client.stream("POST", f"{api.url}/chat/completions", json=_follow_up(True)) as reply:
            lines = reply.iter_lines()   # kept: a dropped iterator closes the connection at once
            assert next(lines).startswith("data: ")
            wait_until(lambda: len(llm.rewrites) == 1, "the LLM to be asked to rewrite the follow-up")
        # A plain client does the same.
        with socket.create_connection((address.host, address.port or 80)) as raw:
            raw.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.host}:{address.port}\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            wait_until(lambda: len(llm.rewrites) == 2, "the LLM to be asked to rewrite the second follow-up")
        wait_until(lambda: api.slots.abandoned == 2 and not api.slots.full, "the server to see both clients leave")
        llm.release.set()   # the rewrites come back: the answers stop there, before reading
        wait_until(lambda: api.slots.stopped == 2 and api.slots.orphans == 0, "the two answers to stop")
        assert llm.answers == []
        # A client that stays gets its answer from the LLM, as before.
        reply = client.post(f"{api.url}/chat/completions", json=_follow_up(False))
        assert reply.status_code == 200 and reply.json()["found"] is False
        assert len(llm.answers) == 1 and "Maryam Rajavi" in llm.answers[0]
    stopped = [r for r in caplog.records if r.name == "rag.serve.slots"]
    assert [r.getMessage() for r in stopped] == ["an answer whose client left was stopped: the answer was no "
                                                 "longer wanted: stopped before the search"] * 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info], caplog.text


# -- the page's queue -----------------------------------------------------------------------------


def test_a_closed_tab_never_costs_the_llm_answer(seed_index: Index, llm: LLM, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    # Before: Gradio dropped a closed tab's waiting questions, but one being answered ran to its end.
    from rag.serve.web import build_app, launch

    caplog.set_level(logging.INFO, logger="rag.serve.web.api")
    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.5")   # the queue notices a closed stream sooner
    index = Index.open(seed_index.folder)
    llm.ask_through_me(index)
    port = free_port()
    demo = launch(build_app(index), "127.0.0.1", port, block=False)
    base = f"http://127.0.0.1:{port}/gradio_api"
    try:
        with httpx.Client(timeout=60) as client:
            config = client.get(f"http://127.0.0.1:{port}/config").json()
            ask = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "ask")
            # Gradio's own client protocol: join the queue, then read the session's event stream.
            joined = client.post(f"{base}/queue/join", json={
                "data": [FOLLOW_UP, 5, HISTORY, "", None], "fn_index": ask, "session_hash": "closing-tab",
                "event_data": None, "trigger_id": None})
            assert joined.status_code == 200, joined.text
            with client.stream("GET", f"{base}/queue/data", params={"session_hash": "closing-tab"}) as events:
                assert next(events.iter_lines()).startswith("data: ")
                wait_until(lambda: len(llm.rewrites) == 1, "the LLM to be asked to rewrite the follow-up")
            # The tab is gone: once the queue has noticed, the rewrite comes back.
            wait_until(lambda: not any(e.alive for job in demo._queue.active_jobs if job for e in job),
                       "the page's queue to notice the closed tab")
            llm.release.set()
            wait_until(lambda: any("was stopped" in r.getMessage() for r in caplog.records),
                       "the answer to stop")
            time.sleep(0.5)   # an answer request, were one sent, would have arrived by now
            assert llm.answers == []
    finally:
        demo.close()
    stopped = [r.getMessage() for r in caplog.records if r.name == "rag.serve.web.api"]
    assert stopped == ["an /ask call whose client left was stopped: the answer was no longer wanted: "
                       "stopped before the search"]


@pytest.mark.browser
def test_a_chat_tab_closed_during_its_follow_up_never_costs_the_llm_answer(
        seed_index: Index, llm: LLM, browser_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # The chat as a person uses it, in headless Chromium: a question, a follow-up, and the tab closed
    # while the LLM rewrites the follow-up.
    from rag.serve.web import build_app, launch

    caplog.set_level(logging.INFO, logger="rag.serve.web.chat")
    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.5")
    index = Index.open(seed_index.folder)
    llm.ask_through_me(index)
    port = free_port()
    demo = launch(build_app(index), "127.0.0.1", port, block=False)
    try:
        with browser_page(browser_path, tmp_path / "chromium-profile") as page:
            page.goto(f"http://127.0.0.1:{port}/")
            ask(page, "Who called for UN visits?")
            assert len(llm.answers) == 1   # the first question, answered by the LLM
            page.fill("#rag-question textarea", FOLLOW_UP)
            page.click("#rag-ask")
            wait_until(lambda: len(llm.rewrites) == 1, "the LLM to be asked to rewrite the follow-up")
            page.close()
            wait_until(lambda: not any(e.alive for job in demo._queue.active_jobs if job for e in job),
                       "the page's queue to notice the closed tab")
            llm.release.set()
            wait_until(lambda: any("was stopped" in r.getMessage() for r in caplog.records), "the answer to stop")
            time.sleep(0.5)   # an answer request, were one sent, would have arrived by now
            assert len(llm.answers) == 1
    finally:
        demo.close()
    stopped = [r.getMessage() for r in caplog.records if r.name == "rag.serve.web.chat"]
    assert stopped == ["a page question whose tab closed was stopped: the answer was no longer wanted: "
                       "stopped before the search"]


# -- MCP ------------------------------------------------------------------------------------------


def test_an_mcp_call_its_client_gives_up_on_is_told_to_stop(seed_index: Index, llm: LLM,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    # The SDK's own client in this process: a call past its read timeout is cancelled
    # (``notifications/cancelled``), and the tool's answer is told to stop at its next stage.
    pytest.importorskip("mcp", reason="the MCP extra is not installed: pip install 'rag[mcp]'")
    import anyio
    from mcp import Client
    from mcp.shared.exceptions import MCPError

    from rag.serve.mcp_server import build_server

    caplog.set_level(logging.INFO, logger="rag.serve.mcp_server")
    for name, value in {"RAG_ANSWER_MODE": "llm", "RAG_LLM_BASE_URL": llm.url, "RAG_LLM_MODEL": "local-test"}.items():
        monkeypatch.setenv(name, value)
    llm.hold_answers = True
    server = build_server(seed_index.folder)

    async def scenario() -> Any:
        async with Client(server) as client:
            with pytest.raises(MCPError, match="[Tt]imed out"):
                await client.call_tool("ask", {"question": "Who called for UN visits?"}, read_timeout_seconds=3)
            await anyio.to_thread.run_sync(lambda: wait_until(
                lambda: any("cancelled by its client" in r.getMessage() for r in caplog.records),
                "the server to see the call cancelled"))
            llm.release.set()
            return await client.call_tool("ask", {"question": "Who called for UN visits?"}, read_timeout_seconds=60)

    again = anyio.run(scenario)
    assert not again.is_error and len(llm.answers) == 2
    told = [r.getMessage() for r in caplog.records if r.name == "rag.serve.mcp_server"]
    assert told == ["an MCP tool call was cancelled by its client: its answer stops at its next stage"]

"""Hostile input, round three (issue #34): each test replays an attack on loopback (127.0.0.1).

Denial of service through long conversations and dropped streams, questions without limit,
and the web server's origin, file and log handling. See docs/reliability.md.
"""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag import Index, QuestionTooLongError, RagError
from rag.conversation import normalise, resolve
from rag.limits import MAX_HISTORY_TURNS, MAX_QUESTION_CHARS, clean_question
from rag.openai_api import chat_router, parse_messages

DELEGATIONS = "She said it is essential for international delegations to visit Iran"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def long_conversation(turns: int, words: int = 100) -> list[dict[str, str]]:
    rng = random.Random(2)
    vocab = [f"topic{i}" for i in range(5000)] + ["Maryam", "Rajavi", "UN", "Geneva"]
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": " ".join(rng.choices(vocab, k=words))}
            for i in range(turns)]


# -- 1. conversations and questions without limit -------------------------------------------------


def test_a_thousand_long_turns_are_read_as_their_recent_turns() -> None:
    # Before: 3.1 s at 250 messages of 100 words, 36 s at 1,000 (a set rebuilt per word); 10,000
    # held a core for minutes. Now the history is cut to its recent turns and the resolver stops
    # at MAX_ADDED words, so 10,000 turns resolve as the last MAX_HISTORY_TURNS do.
    history = long_conversation(10_000)
    tail = history[-MAX_HISTORY_TURNS:]
    assert len(normalise(history)) == MAX_HISTORY_TURNS
    assert resolve("What did she say they should assess?", history) == resolve(
        "What did she say they should assess?", tail)
    # One giant message counts by its start only.
    giant = [{"role": "user", "content": "Geneva " * 200_000}, {"role": "assistant", "content": "x " * 200_000}]
    assert sum(len(t["content"]) for t in normalise(giant)) <= 2 * 8000


def test_the_resolver_is_unchanged_for_ordinary_conversations() -> None:
    first = [{"role": "user", "content": "Who called for UN visits?"},
             {"role": "assistant", "content": "Mrs. Maryam Rajavi [1]"}]
    assert resolve("What did she say they should assess?", first).read == \
        "What did Mrs. Maryam Rajavi say they should assess?"


def test_a_question_over_the_limit_is_a_clear_error_everywhere(tmp_path: Path, seed_file: Path) -> None:
    index = Index.build([seed_file], tmp_path / "idx")
    long = "Who called for UN visits? " * (MAX_QUESTION_CHARS // 20)
    for call in (lambda: index.ask(long), lambda: index.search(long), lambda: clean_question(long)):
        with pytest.raises(QuestionTooLongError, match=f"the limit is {MAX_QUESTION_CHARS:,}"):
            call()
    with pytest.raises(QuestionTooLongError):
        parse_messages([{"role": "user", "content": long}])
    # The anchor holds with the cleaning in place.
    answer = index.ask("Who called for UN visits?")
    assert answer.found and "Maryam Rajavi" in answer.text and DELEGATIONS in answer.citations[0].text


def test_lone_surrogates_in_a_question_are_cleaned(tmp_path: Path, seed_file: Path) -> None:
    index = Index.build([seed_file], tmp_path / "idx")
    answer = index.ask("Who called for UN visits?\ud800")
    assert "Maryam Rajavi" in answer.text
    json.dumps(answer.to_dict(), ensure_ascii=False).encode("utf-8")  # no lone half left to fail on
    # argv bytes that were not UTF-8 arrive as surrogate escapes: decoded, the bad byte as U+FFFD
    assert clean_question("caf\udcc3\udca9 \udcff?") == "café \ufffd?"
    with pytest.raises(RagError, match="must be text"):
        clean_question(None)


def test_parse_messages_reads_only_the_recent_turns() -> None:
    messages = long_conversation(5_001)
    question, history = parse_messages(messages)
    assert question == messages[-1]["content"] and len(history) <= MAX_HISTORY_TURNS
    assert history == messages[-1 - len(history):-1]


# -- 2. work for clients that have gone -----------------------------------------------------------


class GatedAnswerer:
    """An answerer (``rag.protocols.Answerer``) that waits for a gate, counting the questions it reads."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.read: list[str] = []
        self.lock = threading.Lock()
        self.waiting = threading.Semaphore(0)

    def __call__(self, question: str, hits: Any, settings: Any, pages: Any = None) -> Any:
        from rag.answer import answer

        with self.lock:
            self.read.append(question)
        self.waiting.release()
        self.gate.wait(60)
        return answer(question, hits, settings, pages)


@pytest.fixture()
def gated_api(tmp_path: Path, seed_file: Path) -> Iterator[tuple[str, GatedAnswerer]]:
    import uvicorn
    from fastapi import FastAPI

    from rag.collections import Collections

    Index.build([seed_file], tmp_path / "idx")
    library = Collections(tmp_path / "idx")
    gated = GatedAnswerer()
    index = library.get("")
    index.answerer = gated
    app = FastAPI()
    app.include_router(chat_router(library))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
        yield f"http://127.0.0.1:{port}/v1", gated
    finally:
        gated.gate.set()
        server.should_exit = True
        thread.join(30)


def _chat_body(question: str, stream: bool) -> dict[str, Any]:
    return {"model": "default", "stream": stream, "messages": [{"role": "user", "content": question}]}


def test_streams_dropped_after_their_first_chunk_are_never_answered(gated_api: tuple[str, GatedAnswerer]) -> None:
    # Before: 48 streams dropped after their first chunk kept /v1 answering them for about 85 s.
    url, gated = gated_api
    with httpx.Client(timeout=60) as client:
        # Four questions take the four reader slots and wait at the gate.
        holders = [threading.Thread(target=client.post, args=(f"{url}/chat/completions",),
                                    kwargs={"json": _chat_body(f"Who called for UN visits? {n}", False)})
                   for n in range(4)]
        for t in holders:
            t.start()
        for _ in holders:
            assert gated.waiting.acquire(timeout=60)
        # Twelve streams wait for a slot; each client reads its first chunk and hangs up.
        for n in range(12):
            with client.stream("POST", f"{url}/chat/completions",
                               json=_chat_body(f"dropped {n} who called for visits?", True)) as reply:
                assert next(reply.iter_lines()).startswith("data: ")
        gated.gate.set()
        for t in holders:
            t.join(60)
        reply = client.post(f"{url}/chat/completions", json=_chat_body("Who called for UN visits?", False))
    assert reply.status_code == 200 and "Maryam Rajavi" in reply.json()["choices"][0]["message"]["content"]
    assert not [q for q in gated.read if q.startswith("dropped")], gated.read


def test_a_full_queue_is_told_to_retry(gated_api: tuple[str, GatedAnswerer]) -> None:
    from rag.slots import QUEUE, READERS

    url, gated = gated_api
    replies: list[httpx.Response] = []
    with httpx.Client(timeout=60) as client:
        def post(n: int) -> None:
            replies.append(client.post(f"{url}/chat/completions", json=_chat_body(f"q{n} UN visits?", False)))

        callers = [threading.Thread(target=post, args=(n,)) for n in range(READERS + QUEUE + 3)]
        for t in callers:
            t.start()
        # The three over the queue are refused at once, while the others still wait at the gate.
        while len(replies) < 3:
            callers[-1].join(0.05)
        assert [r.status_code for r in replies] == [503] * 3
        assert all(r.headers["retry-after"] and "busy" in r.json()["error"]["message"] for r in replies)
        gated.gate.set()
        for t in callers:
            t.join(60)
    assert sorted(r.status_code for r in replies) == [200] * (READERS + QUEUE) + [503] * 3


def test_nested_and_oversized_json_are_400_and_413(gated_api: tuple[str, GatedAnswerer]) -> None:
    url, gated = gated_api
    gated.gate.set()
    nested = httpx.post(f"{url}/chat/completions", content=b"[" * 100_000 + b"]" * 100_000,
                        headers={"content-type": "application/json"}, timeout=60)
    assert nested.status_code == 400 and nested.json()["error"]["code"] == "invalid_json"
    huge = httpx.post(f"{url}/chat/completions", content=b'{"messages": "' + b"x" * (9 * 2**20) + b'"}',
                      headers={"content-type": "application/json"}, timeout=60)
    assert huge.status_code == 413
    surrogate = httpx.post(f"{url}/chat/completions", timeout=60, headers={"content-type": "application/json"},
                           content=b'{"messages": [{"role": "user", "content": "Who called for UN visits?\\ud800"}]}')
    assert surrogate.status_code == 200 and "Maryam Rajavi" in surrogate.json()["choices"][0]["message"]["content"]
    too_long = httpx.post(f"{url}/chat/completions", json=_chat_body("why? " * 2000, False), timeout=60)
    assert too_long.status_code == 400 and "the limit is" in too_long.json()["error"]["message"]

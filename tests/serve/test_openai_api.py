"""The OpenAI-compatible API of a really running ``rag serve``, driven by the real ``openai`` client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import copy_index, free_port

openai = pytest.importorskip("openai", reason="the openai client is not installed: pip install -e '.[test]'")

from rag import Index  # noqa: E402
from rag.collection_paths import COLLECTIONS  # noqa: E402
from rag.text import count_tokens  # noqa: E402
from rag.serve.openai_api import parse_messages  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DELEGATIONS = "She said it is essential for international delegations to visit Iran"
QUESTION = "Who called for UN visits?"
KEY = "test-key-0b7f"


def start_serve(folder: Path, port: int, *extra: str, log_name: str = "serve.log") -> subprocess.Popen[bytes]:
    log = open(folder / log_name, "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "rag.serve.cli", "serve", "--index", str(folder), "--port", str(port), *extra],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.fixture(scope="module")
def server(seed_index: Index, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, int]]:
    folder = tmp_path_factory.mktemp("api-index")
    copy_index(seed_index, folder / COLLECTIONS / "news")
    other = tmp_path_factory.mktemp("api-other")
    (other / "bakery.txt").write_text("The Saltmarsh bakery bakes rye bread every Tuesday.\n", encoding="utf-8")
    Index.build([other], folder, collection="bakery")
    port = free_port()
    process = start_serve(folder, port, "--collection", "news", "--api-key", KEY)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 1500  # a loaded 2-core machine can take minutes
        while True:
            assert process.poll() is None, (folder / "serve.log").read_text(errors="replace")
            try:
                if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "rag serve did not start in 1500 s"
            time.sleep(0.5)
        yield url, folder, port
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server: tuple[str, Path, int]) -> openai.OpenAI:
    return openai.OpenAI(base_url=server[0], api_key=KEY, timeout=1200, max_retries=0)


def test_models_are_the_collections(client: openai.OpenAI) -> None:
    assert sorted(m.id for m in client.models.list()) == ["bakery", "news"]


def test_chat_completion_names_the_person_and_carries_the_quote(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="news", messages=[{"role": "user", "content": QUESTION}])
    text = reply.choices[0].message.content
    assert "Maryam Rajavi" in text and "[1]" in text and DELEGATIONS in text
    assert reply.choices[0].finish_reason == "stop" and reply.model == "news"
    cited = reply.model_extra["citations"]
    assert reply.model_extra["found"] is True
    assert cited[0]["n"] == 1 and DELEGATIONS in cited[0]["text"]
    assert cited[0]["name"] == "000_17d6ea71f6fbed30.txt" and cited[0]["page"] == 1
    assert cited[0]["end"] - cited[0]["start"] == len(cited[0]["text"])


def test_streaming_sends_the_same_answer_in_chunks_then_the_citations(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="news", messages=[{"role": "user", "content": QUESTION}], stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "Maryam Rajavi" in text and DELEGATIONS in text
    assert len(chunks) > 3 and chunks[-1].choices[0].finish_reason == "stop"
    assert DELEGATIONS in chunks[-1].model_extra["citations"][0]["text"]
    whole = client.chat.completions.create(model="news", messages=[{"role": "user", "content": QUESTION}])
    assert text == whole.choices[0].message.content


def test_a_follow_up_with_the_earlier_messages_is_answered(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="news", messages=[{"role": "user", "content": QUESTION}])
    messages = [{"role": "system", "content": "You are helpful."},
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": [{"type": "text", "text": "Whom should international delegations "
                                                                      "meet when they visit Iran?"}]}]
    reply = client.chat.completions.create(model="news", messages=messages)
    assert "political prisoners" in reply.choices[0].message.content
    assert DELEGATIONS in reply.model_extra["citations"][0]["text"]


def test_a_follow_up_that_leans_on_the_conversation(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="news", messages=[{"role": "user", "content": QUESTION}])
    reply = client.chat.completions.create(model="news", messages=[
        {"role": "user", "content": QUESTION}, {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "What did she say they should assess?"}], stream=True)
    chunks = list(reply)
    assert "situation inside prisons" in "".join(c.choices[0].delta.content or "" for c in chunks)
    assert any("inside prisons" in c["text"] for c in chunks[-1].model_extra["citations"])


def test_collections_are_searched_one_at_a_time(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="bakery", messages=[{"role": "user", "content": QUESTION}])
    assert all(c["name"] == "bakery.txt" for c in reply.model_extra["citations"])
    assert "Maryam Rajavi" not in reply.choices[0].message.content


def test_wrong_key_and_unknown_model_are_the_clients_own_errors(server: tuple[str, Path, int],
                                                                client: openai.OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server[0], api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert "bakery, news" in str(info.value)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="news", messages=[{"role": "assistant", "content": "Hello."}])


def test_a_port_in_use_gets_rags_own_message(server: tuple[str, Path, int]) -> None:
    _, folder, port = server
    second = start_serve(folder, port, log_name="second.log")
    assert second.wait(timeout=120) == 1
    said = (folder / "second.log").read_text(errors="replace")
    assert f"port {port} on 127.0.0.1 is already in use" in said and "--port N" in said and "make run PORT=N" in said
    assert "Traceback" not in said


def test_messages_give_the_last_question_and_the_turns_before_it() -> None:
    question, history = parse_messages([
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who?"},
        {"role": "assistant", "content": "Her."}, {"role": "user", "content": " And when? "}])
    assert question == "And when?"
    assert history == [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "Her."}]


ASK = [{"role": "user", "content": QUESTION}]


@pytest.mark.parametrize(("options", "param"), [
    ({"n": 2}, "n"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}},
     "response_format"),
    ({"tool_choice": "required",
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}, "tool_choice"),
    ({"logprobs": True}, "logprobs"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
])
def test_what_cannot_be_honoured_is_a_400_naming_it(client: openai.OpenAI, options: dict[str, Any],
                                                      param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="news", messages=ASK, **options)
    assert info.value.param == param and info.value.body["type"] == "invalid_request_error"


@pytest.mark.parametrize(("extra", "message"), [
    ({"k": 0}, "k must be a whole number from 1 to 50, not 0"),
    ({"k": 51}, "k must be a whole number from 1 to 50, not 51"),
    ({"k": "3"}, "k must be a whole number from 1 to 50, not '3'"),
    ({"pages": [5, 2]}, "pages must be [first, last], page numbers from 1, e.g. [3, 5], not [5, 2]"),
    ({"sources": "news.txt"}, "sources must be a list of file names or paths, not str"),
    ({"sources": []}, "sources must be a non-empty list of file names or paths, not []"),
])
def test_a_bad_k_pages_or_sources_is_a_400_in_one_line(server: tuple[str, Path, int], client: openai.OpenAI,
                                                        extra: dict[str, Any], message: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="news", messages=ASK, extra_body=extra)
    assert info.value.body["message"] == message and info.value.body["type"] == "invalid_request_error"
    refused = httpx.post(f"{server[0]}/chat/completions", json={"model": "news", "messages": ASK, **extra},
                         headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert refused.status_code == 400 and refused.json()["error"]["message"] == message


def test_max_tokens_and_stop_are_honoured(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="news", messages=ASK).choices[0]
    assert whole.finish_reason == "stop" and "\n\n[1] " in whole.message.content
    for name in ("max_tokens", "max_completion_tokens"):
        short = client.chat.completions.create(model="news", messages=ASK, **{name: 3}).choices[0]
        assert short.finish_reason == "length" and whole.message.content.startswith(short.message.content)
        assert 0 < len(short.message.content) < 25
    stopped = client.chat.completions.create(model="news", messages=ASK, stop="\n\n").choices[0]
    assert stopped.finish_reason == "stop" and stopped.message.content == whole.message.content.split("\n\n")[0]
    streamed = client.chat.completions.create(model="news", messages=ASK, max_tokens=3, stream=True)
    chunks = list(streamed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == short.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_usage_is_counted_and_streamed_when_asked(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="news", messages=ASK)
    text = reply.choices[0].message.content
    assert reply.usage.prompt_tokens == 6 and reply.usage.completion_tokens == count_tokens([text])[0]
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    chunks = list(client.chat.completions.create(model="news", messages=ASK, stream=True,
                                                 stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens == count_tokens([text])[0]
    assert all(c.usage is None for c in chunks[:-1])
    plain = list(client.chat.completions.create(model="news", messages=ASK, stream=True))
    assert all(c.usage is None for c in plain)


def test_a_model_is_retrieved_and_a_missing_model_or_unknown_path_is_openais_error(
        server: tuple[str, Path, int], client: openai.OpenAI) -> None:
    assert client.models.retrieve("bakery").id == "bakery"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-4o")
    assert missing.value.body["code"] == "model_not_found"
    headers = {"Authorization": f"Bearer {KEY}"}
    for body, code in (({"messages": ASK}, "missing_required_parameter"), ({"model": 7, "messages": ASK}, "invalid_type")):
        refused = httpx.post(f"{server[0]}/chat/completions", json=body, headers=headers, timeout=60)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == code
        assert refused.json()["error"]["param"] == "model"
    for method, path in (("GET", "/embeddings"), ("POST", "/embeddings"), ("POST", "/completions")):
        unknown = httpx.request(method, f"{server[0]}{path}", json={}, headers=headers, timeout=60)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_url"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="news", input="tide")


def test_open_webuis_background_tasks_get_a_short_valid_reply(client: openai.OpenAI) -> None:
    history = f"<chat_history>\nUSER: {QUESTION}\nASSISTANT: Mrs. Maryam Rajavi [1]\n</chat_history>"
    title = ("### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n"
             "### Output:\nJSON format: { \"title\": \"your concise title here\" }\n### Chat History:\n" + history)
    tags = ("### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history.\n"
            "### Output:\nJSON format: { \"tags\": [\"tag1\", \"tag2\", \"tag3\"] }\n### Chat History:\n" + history)
    for prompt, expected in ((title, {"title": QUESTION}), (tags, {"tags": []})):
        reply = client.chat.completions.create(model="news", messages=[{"role": "user", "content": prompt}])
        assert json.loads(reply.choices[0].message.content) == expected
        assert reply.model_extra["citations"] == []

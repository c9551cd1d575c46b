"""An OpenAI-compatible chat API, so any chat client can use rag as a model.

``rag serve`` answers ``GET /v1/models`` (one model per collection: the collection's name is the
model's) and ``POST /v1/chat/completions`` beside the web page, on the same host and port. Open
WebUI, LibreChat, the ``openai`` Python client or anything that speaks that API can ask the
documents; ``"stream": true`` gets server-sent events (``data: {...}`` chunks, then
``data: [DONE]``).

A reply's text cites its quotes as ``[1]``, ``[2]``... and ends with the numbered quotes (file,
page, the quote itself), so even a client that shows nothing else shows the sources. The same
quotes come as data in a top-level ``citations`` list (``n``, ``text``, ``file``, ``source``,
``page``, ``start``, ``end``: offsets in the page text), in the last chunk when streaming, and
``found`` says whether the documents held the answer.

Request options are checked by ``rag.openai_options``: ``max_tokens``, ``stop`` and
``stream_options.include_usage`` are honoured, what rag cannot honour is a 400 naming it, and
Open WebUI's background tasks (title, tags) get a short JSON reply without a search. Any other
``/v1`` path is OpenAI's 404 error.

The question is the last user message. The earlier messages are handed to ``Index.ask`` as
``history`` when it accepts one; until then each question is answered on its own.

With an API key (``rag serve --api-key KEY`` or ``$RAG_API_KEY``) every ``/v1`` request must
carry ``Authorization: Bearer KEY``.

Example:
    >>> from openai import OpenAI
    >>> client = OpenAI(base_url="http://127.0.0.1:7860/v1", api_key="unused")
    >>> reply = client.chat.completions.create(
    ...     model="default", messages=[{"role": "user", "content": "Who called for UN visits?"}])
    >>> reply.choices[0].message.content, reply.citations[0]["name"]
"""

from __future__ import annotations

import hmac
import inspect
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from .collections import Collections
from .errors import IndexNotFoundError, RagError
from .index import Index
from .openai_options import OptionError, ReplyOptions, check_model, check_options, task_reply, usage
from .types import Answer

MAX_PASSAGES = 50
"""Most passages one request may ask for (``k`` in the request body); more only slows the answer."""

READERS = 4
"""Questions answered at the same time through the API; more would only queue on a few cores."""

_CHUNK_WORDS = 8
"""Words per streamed chunk: the answer is whole before the first word is sent, so this only
shapes how a client paints it."""


class ChatRequestError(RagError):
    """A chat request that cannot be answered as sent; its message says what to change."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _error(message: str, status: int, code: str, param: str | None = None) -> JSONResponse:
    # The shape OpenAI clients parse into their own exception (openai.NotFoundError and so on).
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


def message_text(content: Any) -> str:
    """The text of a chat message's ``content``: a string, or a list of parts of which the text ones count.

    Example:
        >>> message_text([{"type": "text", "text": "Who called"}, {"type": "text", "text": "for UN visits?"}])
        'Who called for UN visits?'
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise ChatRequestError("message content must be a string or a list of content parts")


def parse_messages(messages: Any) -> tuple[str, list[dict[str, str]]]:
    """The question (the last user message) and the conversation before it, as ``{role, content}``.

    System messages are dropped: rag's answerer takes no instructions, only questions.

    Example:
        >>> parse_messages([{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."},
        ...                 {"role": "user", "content": "Who called for UN visits?"}])
        ('Who called for UN visits?', [{'role': 'user', 'content': 'Hi?'}, {'role': 'assistant', 'content': 'Hello.'}])
    """
    if not isinstance(messages, list) or not messages:
        raise ChatRequestError("'messages' must be a non-empty list of {role, content}")
    turns: list[dict[str, str]] = []
    for message in messages:
        if not isinstance(message, dict) or "role" not in message:
            raise ChatRequestError("each message must be an object with a 'role' and a 'content'")
        if message["role"] in ("user", "assistant"):
            turns.append({"role": str(message["role"]), "content": message_text(message.get("content"))})
    while turns and turns[-1]["role"] != "user":
        turns.pop()
    if not turns or not turns[-1]["content"].strip():
        raise ChatRequestError("the last user message holds no question")
    return turns[-1]["content"].strip(), turns[:-1]


def citations(answer: Answer) -> list[dict[str, Any]]:
    """The answer's quotes as data, each ``{"n": ..., **Quote.to_dict()}`` (as ``Answer.to_dict`` has
    them); ``n`` is its ``[n]``."""
    return answer.to_dict()["citations"]


def reply_text(answer: Answer) -> str:
    """The answer with its numbered quotes after it, for clients that show only the text.

    Example:
        >>> # reply_text(index.ask("Who called for UN visits?"))
        >>> # 'Mrs. Maryam Rajavi [1]\\n\\n[1] 000_17d6ea71f6fbed30.txt, page 1: "She said it is essential ..."'
    """
    lines = [answer.text]
    if answer.citations:
        lines.append("")
        lines += [f'[{n}] {q.name}, page {q.page}: "{q.text}"' for n, q in enumerate(answer.citations, start=1)]
    elif not answer.found and answer.hits:
        lines += ["", "Closest passages:"]
        lines += [f'- {h.name}, page {h.page}: "{h.quote.text}"' for h in answer.hits[:3]]
    return "\n".join(lines)


def _accepts_history(index: Index) -> bool:
    # Conversation-aware asking is being added to Index.ask; until it is there, pass only the question.
    try:
        return "history" in inspect.signature(index.ask).parameters
    except (TypeError, ValueError):
        return False


def _pieces(text: str) -> list[str]:
    words = re.findall(r"\S+\s*|\s+", text)
    return ["".join(words[i:i + _CHUNK_WORDS]) for i in range(0, len(words), _CHUNK_WORDS)] or [""]


def chat_router(library: Collections, api_key: str | None = None) -> APIRouter:
    """The ``/v1`` routes over the collections of ``library``; mount with ``app.include_router``.

    Args:
        library: the collections to serve; each is a model of that name.
        api_key: when set, every request must send ``Authorization: Bearer <api_key>``.

    Example:
        >>> from fastapi import FastAPI
        >>> app = FastAPI()
        >>> app.include_router(chat_router(Collections("index/"), api_key="s3cret"))
    """
    router = APIRouter(prefix="/v1")
    readers = threading.BoundedSemaphore(READERS)

    def refused(request: Request) -> JSONResponse | None:
        if not api_key:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode()):
            return None
        return _error("a valid API key is needed: send Authorization: Bearer <key> (rag serve --api-key)",
                      401, "invalid_api_key")

    def model_index(model: Any) -> tuple[str, Index]:
        names = library.names()
        name = model if isinstance(model, str) and model else library.default
        if name not in names:
            raise ChatRequestError(f"no model (collection) {name!r}; the models are: {', '.join(names) or 'none'}",
                                   404, "model_not_found")
        return name, library.get(name)

    def answer(index: Index, question: str, history: list[dict[str, str]], k: int | None) -> Answer:
        with readers:
            if history and _accepts_history(index):
                return index.ask(question, k, history=history)
            return index.ask(question, k)

    def parse(body: Any) -> tuple[str, Index, str, list[dict[str, str]], int | None, bool]:
        if not isinstance(body, dict):
            raise ChatRequestError("the request body must be a JSON object")
        name, index = model_index(check_model(body.get("model")))
        question, history = parse_messages(body.get("messages"))
        k = body.get("k")
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_PASSAGES):
            raise ChatRequestError(f"'k' must be a whole number from 1 to {MAX_PASSAGES}")
        return name, index, question, history, k, bool(body.get("stream", False))

    @router.get("/models")
    async def models(request: Request) -> JSONResponse:
        if (no := refused(request)) is not None:
            return no
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "rag"} for name in library.names()]})

    @router.get("/models/{model_id}")
    async def model(model_id: str, request: Request) -> JSONResponse:
        if (no := refused(request)) is not None:
            return no
        if model_id not in library.names():
            return _error(f"no model (collection) {model_id!r}; the models are: {', '.join(library.names()) or 'none'}",
                          404, "model_not_found", "model")
        return JSONResponse({"id": model_id, "object": "model", "created": 0, "owned_by": "rag"})

    @router.post("/chat/completions")
    async def chat(request: Request) -> Any:
        if (no := refused(request)) is not None:
            return no
        try:
            body = await request.json()
        except ValueError:
            return _error("the request body is not JSON", 400, "invalid_json")
        try:
            name, index, question, history, k, stream = parse(body)
            options = check_options(body)
        except OptionError as exc:
            return _error(str(exc), 400, exc.code, exc.param)
        except ChatRequestError as exc:
            return _error(str(exc), exc.status, exc.code)
        except RagError as exc:
            return _error(str(exc), 400, "invalid_request")
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        task = task_reply(question)
        answerer = answer if task is None else _task_answer(task)
        if stream:
            return StreamingResponse(_stream(reply_id, created, name, answerer, index, question, history, k,
                                             options, body["messages"]),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        try:
            result = await run_in_threadpool(answerer, index, question, history, k)
        except IndexNotFoundError as exc:
            return _error(str(exc), 404, "model_not_found")
        except RagError as exc:
            return _error(str(exc), 500, "rag_error")
        text, finish = options.cut(reply_text(result))
        return JSONResponse({
            "id": reply_id, "object": "chat.completion", "created": created, "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                         "logprobs": None}],
            "usage": usage(body["messages"], text),
            "citations": citations(result), "found": result.found,
        })

    # Last: any other /v1 path is OpenAI's 404, not the web page's.
    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unknown(path: str, request: Request) -> JSONResponse:
        return _error(f"unknown path /v1/{path} ({request.method}): rag serves GET /v1/models, "
                      f"GET /v1/models/{{model}} and POST /v1/chat/completions", 404, "unknown_url")

    return router


def _task_answer(text: str) -> Any:
    """An answerer whose answer is ``text`` alone (a background task's reply): no search, no quotes."""

    def answer(index: Index, question: str, history: Any, k: int | None) -> Answer:
        return Answer(question=question, text=text, found=True, citations=(), hits=(), mode="extractive")

    return answer


async def _stream(reply_id: str, created: int, model: str, answer: Any, index: Index, question: str,
                  history: Sequence[dict[str, str]], k: int | None, options: ReplyOptions,
                  messages: Any) -> AsyncIterator[str]:
    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    # The role goes out at once, so a client sees the reply begin while the passages are read.
    yield event({"role": "assistant", "content": ""})
    try:
        result = await run_in_threadpool(answer, index, question, list(history), k)
    except RagError as exc:
        # Headers are sent already; an error object is what OpenAI's own streams send then.
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error', 'code': 'rag_error'}})}\n\n"
        yield "data: [DONE]\n\n"
        return
    text, finish = options.cut(reply_text(result))
    for piece in _pieces(text):
        yield event({"content": piece})
    yield event({}, finish, citations=citations(result), found=result.found)
    if options.include_usage:
        # OpenAI's usage chunk: after the last choice, with no choices of its own.
        chunk = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [], "usage": usage(messages, text)}
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"

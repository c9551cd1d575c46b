"""An OpenAI-compatible chat API, so any chat client can use rag as a model.

``rag serve`` answers ``GET /v1/models`` (one model per collection: the collection's name is the
model's) and ``POST /v1/chat/completions`` beside the web page, on the same host and port. Open
WebUI, LibreChat, the ``openai`` Python client or anything that speaks that API can ask the
documents; ``"stream": true`` gets server-sent events (``data: {...}`` chunks, then
``data: [DONE]``).

A reply's text cites its quotes as ``[1]``, ``[2]``... and ends with the numbered quotes (file,
page, the quote itself), so even a client that shows nothing else shows the sources. That text
is plain: images, links, addresses and HTML from the documents are made inert (``rag.serve.inert``). The same
quotes come as data in a top-level ``citations`` list (``n``, ``text``, ``file``, ``source``,
``page``, ``start``, ``end``: offsets in the page text), in the last chunk when streaming, and
``found`` says whether the documents held the answer.

Request options are checked by ``rag.serve.openai_options``: ``max_tokens``, ``stop`` and
``stream_options.include_usage`` are honoured, what rag cannot honour is a 400 naming it, and
Open WebUI's background tasks (title, tags) get a short JSON reply without a search. Any other
``/v1`` path is OpenAI's 404 error.

rag's own request fields: ``k`` (passages to read), ``sources`` and ``pages`` (ask one document),
and ``answerer`` (``"extractive"`` or ``"llm"``, else the server's ``RAG_ANSWER_MODE``); the
``openai`` client sends them as ``extra_body={"answerer": "llm"}``.

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
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from rag.collections import Collections
from rag.errors import ChatRequestError, ClientGone, IndexNotFoundError, OptionError, RagError, SlotsBusy
from rag.index import Index
from rag.limits import MAX_PASSAGES, cap_history, check_k, check_pages, check_sources, clean_question
from rag.serve.inert import inert
from rag.serve.openai_options import ReplyOptions, check_model, check_options, task_reply, usage
from rag.serve.public import public_message, public_records
from rag.serve.slots import READERS, ReaderSlots
from rag.settings import ANSWERERS
from rag.types import Answer

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 2**20
"""The largest request body read: a long conversation with every earlier turn is well under it."""

_INTERNAL = "internal error while answering (see the server log)"
"""What a client is told of an error that is not one of rag's own: its text stays in the server's log."""

_CHUNK_WORDS = 8
"""Words per streamed chunk: the answer is whole before the first word is sent, so this only
shapes how a client paints it."""


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
    # Within the limits every way in has (rag.limits): a clear 400 for a long question; of a long
    # conversation only the recent turns are read.
    return clean_question(turns[-1]["content"]), cap_history(turns[:-1])


def citations(answer: Answer, index: Index | None = None) -> list[dict[str, Any]]:
    """The answer's quotes as data, each ``{"n": ..., **Quote.to_dict()}`` (as ``Answer.to_dict`` has
    them); ``n`` is its ``[n]``. With ``index``, ``source`` is relative to the collection (``rag.serve.public``)."""
    cited = answer.to_dict()["citations"]
    return public_records(cited, index) if index is not None else cited


def reply_text(answer: Answer) -> str:
    """The answer with its numbered quotes after it, for clients that show only the text.

    Example:
        >>> # reply_text(index.ask("Who called for UN visits?"))
        >>> # 'Mrs. Maryam Rajavi [1]\\n\\n[1] 000_17d6ea71f6fbed30.txt, page 1: "She said it is essential ..."'
    """
    lines = [answer.text]
    if answer.citations:
        lines.append("")
        lines += [f'[{n}] {q.name}, {q.place}: "{q.text}"' for n, q in enumerate(answer.citations, start=1)]
    elif not answer.found and answer.hits:
        lines += ["", "Closest passages:"]
        lines += [f'- {h.name}, {h.place}: "{h.quote.text}"' for h in answer.hits[:3]]
    # Clients render this as Markdown: document text must not load images or make links
    # (rag.serve.inert); the verbatim quotes are in ``citations``.
    return inert("\n".join(lines))


def _filters(body: dict[str, Any]) -> dict[str, Any]:
    """The request's "sources" (file names or paths) and "pages" ([first, last]): ask one document."""
    filters = {"sources": check_sources(body.get("sources")), "pages": check_pages(body.get("pages"))}
    return {name: value for name, value in filters.items() if value is not None}


def _answerer(body: dict[str, Any]) -> dict[str, Any]:
    """The request's "answerer" ("extractive" or "llm"; the server's ``answer_mode`` when left out)."""
    name = body.get("answerer")
    if name is None:
        return {}
    if name not in ANSWERERS:
        raise ChatRequestError(f"'answerer' must be one of {', '.join(ANSWERERS)}, not {name!r:.40}")
    return {"answer_mode": name}


def _pieces(text: str) -> list[str]:
    words = re.findall(r"\S+\s*|\s+", text)
    return ["".join(words[i:i + _CHUNK_WORDS]) for i in range(0, len(words), _CHUNK_WORDS)] or [""]


def chat_router(library: Collections, api_key: str | None = None, slots: ReaderSlots | None = None) -> APIRouter:
    """The ``/v1`` routes over the collections of ``library``; mount with ``app.include_router``.

    Args:
        library: the collections to serve; each is a model of that name.
        api_key: when set, every request must send ``Authorization: Bearer <api_key>``.
        slots: the reader slots answers take (default: ``READERS`` of them, of this router's own).

    Example:
        >>> from fastapi import FastAPI
        >>> app = FastAPI()
        >>> app.include_router(chat_router(Collections("index/"), api_key="s3cret"))
    """
    router = APIRouter(prefix="/v1")
    readers = slots or ReaderSlots(READERS)

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

    def answerer(request: Request, filters: dict[str, Any]) -> Answerer:
        async def answer(index: Index, question: str, history: list[dict[str, str]], k: int | None) -> Answer:
            # A slot only for a client still there; one that leaves gives it back at once, and its
            # answer stops at its next stage, before any LLM request (rag.serve.slots, rag.cancel).
            return await readers.answer(lambda: _disconnected(request),
                                        lambda stop: index.ask(question, k, history=history or None, stop=stop,
                                                               **filters))

        return answer

    def parse(body: Any) -> tuple[str, Index, str, list[dict[str, str]], int | None, bool]:
        if not isinstance(body, dict):
            raise ChatRequestError("the request body must be a JSON object")
        name, index = model_index(check_model(body.get("model")))
        question, history = parse_messages(body.get("messages"))
        k = body.get("k")
        if k is not None:
            k = check_k(k, MAX_PASSAGES)
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
            body = await _json_body(request)
        except ClientDisconnect:  # gone while sending: nobody reads the reply, and it is no server error
            return _error("the client disconnected", 499, "client_closed_request")
        except _TooLarge:
            return _error(f"the request body is over {MAX_BODY_BYTES // 2**20} MB", 413, "request_too_large")
        except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
            return _error("the request body is not JSON (or is nested too deep)", 400, "invalid_json")
        try:
            name, index, question, history, k, stream = parse(body)
            options = check_options(body)
            filters = {**_filters(body), **_answerer(body)}
        except OptionError as exc:
            return _error(str(exc), 400, exc.code, exc.param)
        except ChatRequestError as exc:
            return _error(str(exc), exc.status, exc.code)
        except RagError as exc:
            return _error(public_message(str(exc)), 400, "invalid_request")
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        task = task_reply(question)
        reply = answerer(request, filters) if task is None else _task_answer(task)
        if stream:
            return StreamingResponse(_stream(reply_id, created, name, reply, index, question, history, k,
                                             options, body["messages"]),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        try:
            result = await reply(index, question, history, k)
        except SlotsBusy as exc:
            return _busy(str(exc))
        except ClientGone:
            return _error("the client disconnected", 499, "client_closed_request")
        except IndexNotFoundError as exc:
            return _error(public_message(str(exc)), 404, "model_not_found")
        except RagError as exc:
            return _error(public_message(str(exc)), 500, "rag_error")
        except Exception:  # noqa: BLE001 - its text may hold paths and internals: the log has it, the client a line
            log.exception("answering a chat request failed")
            return _error(_INTERNAL, 500, "rag_error")
        text, finish = options.cut(reply_text(result))
        return JSONResponse({
            "id": reply_id, "object": "chat.completion", "created": created, "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                         "logprobs": None}],
            "usage": usage(body["messages"], text),
            "citations": citations(result, index), "found": result.found,
        })

    # Last: any other /v1 path is OpenAI's 404, not the web page's.
    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unknown(path: str, request: Request) -> JSONResponse:
        return _error(f"unknown path /v1/{path} ({request.method}): rag serves GET /v1/models, "
                      f"GET /v1/models/{{model}} and POST /v1/chat/completions", 404, "unknown_url")

    return router


Answerer = Callable[[Index, str, list[dict[str, str]], "int | None"], Awaitable[Answer]]


def _task_answer(text: str) -> Answerer:
    """An answerer whose answer is ``text`` alone (a background task's reply): no search, no quotes."""

    async def answer(index: Index, question: str, history: Any, k: int | None) -> Answer:
        return Answer(question=question, text=text, found=True, citations=(), hits=(), mode="extractive")

    return answer


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body is read: the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class _TooLarge(Exception):
    pass


async def _json_body(request: Request) -> Any:
    """The request's JSON, read up to ``MAX_BODY_BYTES`` whatever ``Content-Length`` says."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY_BYTES:
            raise _TooLarge
    return json.loads(body)


def _busy(message: str) -> JSONResponse:
    response = _error(message, 503, "server_busy")
    response.headers["Retry-After"] = "2"
    return response


async def _stream(reply_id: str, created: int, model: str, answer: Answerer, index: Index, question: str,
                  history: Sequence[dict[str, str]], k: int | None, options: ReplyOptions,
                  messages: Any) -> AsyncIterator[str]:
    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    # The role goes out at once, so a client sees the reply begin while the passages are read.
    yield event({"role": "assistant", "content": ""})
    try:
        result = await answer(index, question, list(history), k)
    except ClientGone:
        return
    except Exception as exc:  # noqa: BLE001 - the stream must end with an error and [DONE], never cut off
        # Headers are sent already; an error object is what OpenAI's own streams send then.
        message = public_message(str(exc)) if isinstance(exc, RagError) else _INTERNAL
        if not isinstance(exc, RagError):
            log.exception("answering a streamed chat request failed")
        yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error', 'code': 'rag_error'}})}\n\n"
        yield "data: [DONE]\n\n"
        return
    text, finish = options.cut(reply_text(result))
    for piece in _pieces(text):
        yield event({"content": piece})
    yield event({}, finish, citations=citations(result, index), found=result.found)
    if options.include_usage:
        # OpenAI's usage chunk: after the last choice, with no choices of its own.
        chunk = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [], "usage": usage(messages, text)}
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"

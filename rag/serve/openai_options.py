"""What a chat request asks of the reply besides the question, checked against what rag can do.

An OpenAI client that sends an option rag cannot honour gets a 400 naming it, never a 200 that
silently ignores it and breaks the caller later (a ``json_object`` reply that is not JSON, ``n=3``
that returns one choice). What can be honoured is: ``max_tokens`` / ``max_completion_tokens`` (the
reply is cut at that many tokens, ``finish_reason: "length"``), ``stop`` (the reply ends before
the first stop sequence) and ``stream_options.include_usage`` (a last chunk with the token counts).
Tokens are counted with the same tiktoken encoding the chunker uses (``cl100k_base``).

Open WebUI also sends its background tasks (a chat title, tags, follow-up questions, search
queries) to the chat model; those prompts get a short valid JSON reply of their own
(``task_reply``) rather than a search of the documents for the prompt's words.

Example:
    >>> options = check_options({"model": "demo", "max_tokens": 50, "stop": ["\\n\\n"]})
    >>> options.cut("Mrs. Maryam Rajavi [1]\\n\\n[1] news.txt, page 1: ...")
    ('Mrs. Maryam Rajavi [1]', 'stop')
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from rag.errors import OptionError
from rag.text import count_tokens, encoding

MAX_STOP = 4
"""Stop sequences one request may send, as OpenAI allows."""


@dataclass(frozen=True)
class ReplyOptions:
    """How a reply is to be shaped: at most ``max_tokens`` tokens, ending before any of ``stop``."""

    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    include_usage: bool = False

    def cut(self, text: str) -> tuple[str, str]:
        """``text`` cut as asked, and the ``finish_reason`` that says why it ends.

        Example:
            >>> ReplyOptions(max_tokens=2).cut("one two three four")
            ('one two', 'length')
        """
        reason = "stop"
        ends = [text.find(s) for s in self.stop if s in text]
        if ends:
            text = text[:min(ends)]
        if self.max_tokens is not None:
            tokens = encoding().encode_ordinary(text)
            if len(tokens) > self.max_tokens:
                text, reason = encoding().decode(tokens[:self.max_tokens]), "length"
        return text, reason


def usage(messages: Any, reply: str) -> dict[str, int]:
    """OpenAI's ``usage`` of a request and its reply: tiktoken counts of the messages' text and the reply.

    Example:
        >>> usage([{"role": "user", "content": "Who called for UN visits?"}], "Mrs. Maryam Rajavi [1]")
        {'prompt_tokens': 6, 'completion_tokens': 9, 'total_tokens': 15}
    """
    texts = [m["content"] for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str)] \
        if isinstance(messages, list) else []
    prompt, completion = sum(count_tokens(texts)) if texts else 0, count_tokens([reply])[0]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def check_model(model: Any) -> str:
    """The ``model`` of a request: required, and text (a collection's name)."""
    if model is None:
        raise OptionError("you must provide a model parameter: the name of a collection (see GET /v1/models)",
                          "model", "missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise OptionError(f"'model' must be the name of a collection (a string), not {model!r}", "model",
                          "invalid_type")
    return model


def _whole(body: dict[str, Any], name: str, least: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise OptionError(f"'{name}' must be a whole number of at least {least}, not {value!r}", name,
                          "invalid_value")
    return value


def check_options(body: dict[str, Any]) -> ReplyOptions:
    """The reply options of a chat request, or an ``OptionError`` for the first one rag cannot honour.

    Example:
        >>> check_options({"n": 2})
        Traceback (most recent call last):
        rag.errors.OptionError: 'n' > 1 is not supported: rag gives one answer per question
    """
    n = _whole(body, "n", 1)
    if n is not None and n > 1:
        raise OptionError("'n' > 1 is not supported: rag gives one answer per question", "n")
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else response_format
    if kind not in (None, "text"):
        raise OptionError(f"response_format {kind!r} is not supported: rag answers in plain text with quotes "
                          f"(use \"text\" or leave it out)", "response_format")
    tool_choice = body.get("tool_choice")
    if tool_choice not in (None, "none", "auto"):
        # "auto" may answer without a tool call, which is all rag ever does; "required" or a named
        # function promise a tool call that never comes.
        raise OptionError("tool_choice 'required' or a named tool is not supported: rag answers from the "
                          "documents and calls no tools", "tool_choice")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise OptionError("logprobs are not supported: the answer is quoted from the documents, not sampled",
                          "logprobs")
    max_tokens = _whole(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _whole(body, "max_tokens", 1)
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop) if isinstance(stop, list) else stop
    if stops is not None and (not isinstance(stops, tuple) or len(stops) > MAX_STOP
                              or not all(isinstance(s, str) and s for s in stops)):
        raise OptionError(f"'stop' must be a string or a list of up to {MAX_STOP} non-empty strings", "stop",
                          "invalid_value")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise OptionError("'stream_options' must be an object such as {\"include_usage\": true}", "stream_options",
                          "invalid_type")
    include_usage = bool((stream_options or {}).get("include_usage"))
    return ReplyOptions(max_tokens=max_tokens, stop=stops or (), include_usage=include_usage)


_TASK = re.compile(r"^\s*###\s*Task:", re.IGNORECASE)
_KEY = re.compile(r'JSON format:\s*\{\s*"(\w+)"', re.IGNORECASE)
_HISTORY = re.compile(r"<chat_history>(.*?)</chat_history>", re.DOTALL | re.IGNORECASE)
_TITLE_WORDS = 8


def task_reply(prompt: str) -> str | None:
    """The reply to one of Open WebUI's background task prompts, or ``None`` for a real question.

    Open WebUI asks the chat model for a title (``{"title": ...}``), tags, follow-up questions and
    search queries, each a ``### Task:`` prompt that wants JSON. Searching the documents for such a
    prompt's words gives "Not found ... Closest passages", which Open WebUI then shows as the chat's
    title. The title is the first question's opening words; the lists are left empty (no tags, no
    follow-ups, no web search queries), which Open WebUI takes as "none".

    Example:
        >>> task_reply('### Task:\\nGenerate a title.\\n### Output:\\nJSON format: { "title": "..." }\\n'
        ...            '<chat_history>\\nUSER: Who signs the tide tables in Brest?\\n</chat_history>')
        '{"title": "Who signs the tide tables in Brest?"}'
    """
    if not _TASK.match(prompt):
        return None
    key = _KEY.search(prompt)
    name = key.group(1) if key else "title" if "title" in prompt.lower() else None
    if name is None:
        return None
    if name != "title":
        return json.dumps({name: []})
    history = _HISTORY.search(prompt)
    lines = (history.group(1) if history else "").splitlines()
    asked = next((line.split(":", 1)[1].strip() for line in lines if line.strip().upper().startswith("USER:")), "")
    words = asked.split()
    title = " ".join(words[:_TITLE_WORDS]) + (" ..." if len(words) > _TITLE_WORDS else "") if words else "Documents"
    return json.dumps({"title": title}, ensure_ascii=False)

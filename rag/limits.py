"""How much one request may bring, checked the same way in: the question, how many passages, which
pages and files, the conversation before it.

Every way in (the page, ``/v1``, MCP, the CLI and ``Index.ask``/``Index.search``) goes through
``clean_question``, so a question is the same everywhere: text only (lone UTF-16 halves and
undecodable bytes become U+FFFD), at most ``MAX_QUESTION_CHARS`` characters, else a
``QuestionTooLongError`` that says the limit. ``cap_history`` keeps the most recent turns of a
conversation within ``MAX_HISTORY_TURNS`` messages and ``MAX_HISTORY_CHARS`` characters: a chat
client sends its whole history with every question, and the follow-up resolver only reads the
last answer and the recent questions, so older turns are left out rather than refused.

``check_k``, ``check_pages`` and ``check_sources`` check the other arguments of a search or a question
where the call is made (``Index.search``/``Index.ask``, and the surfaces that cap ``k`` at
``MAX_PASSAGES``), so each wrong value is one ``QueryError`` with one message, whichever way it came in.

Example:
    >>> clean_question("Who called\\ud800 for UN visits?")
    'Who called� for UN visits?'
    >>> len(cap_history([{"role": "user", "content": "x" * 100}] * 500))
    40
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from rag.errors import QueryError, QuestionTooLongError, RagError

MAX_QUESTION_CHARS = 4000
"""The longest question answered (about 600 words): longer is a document pasted in the box, which
the answerer cannot read as a question and an LLM endpoint would be billed for."""

MAX_PASSAGES = 50
"""Most passages one request of the page, ``/v1`` or MCP may ask for (``k``); more only slows the answer."""

MAX_HISTORY_TURNS = 40
"""Messages of a conversation read before a question (the most recent): 20 questions and their
answers. The resolver reads the last answer and the earlier questions; older turns name topics long left."""

MAX_HISTORY_CHARS = 40_000
"""Characters of a conversation read before a question (the most recent messages first; one
message longer than this keeps its end). Bounds the resolver's work whatever a client sends."""

MAX_MESSAGE_CHARS = 8000
"""Characters of one earlier message read (its start): a long pasted answer names its topic early."""


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (JSON's ``\\ud800``, argv bytes that were not UTF-8) as U+FFFD.

    Example:
        >>> clean_text("a\\udcff b")
        'a\ufffd b'
    """
    if not _SURROGATE.search(text):
        return text
    try:
        # Bytes that were not UTF-8 in argv arrive as U+DC80..U+DCFF (surrogateescape): decode them back.
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_question(question: Any, limit: int = MAX_QUESTION_CHARS) -> str:
    """The question as text, cleaned (``clean_text``), stripped and within ``limit`` characters.

    Raises ``QuestionTooLongError`` (a ``RagError``) above ``limit`` and ``RagError`` for a value
    that is not text.

    Example:
        >>> clean_question("  Who called for UN visits?  ")
        'Who called for UN visits?'
    """
    if not isinstance(question, str):
        raise RagError(f"the question must be text, not {type(question).__name__}")
    question = clean_text(question).strip()
    if len(question) > limit:
        raise QuestionTooLongError(f"the question is {len(question):,} characters long; the limit is {limit:,} "
                                   f"(ask about one thing at a time, or search for a few of its words)")
    return question


def check_k(k: object, most: int | None = None) -> int:
    """``k`` (how many passages or hits) as asked: a whole number from 1, at most ``most`` when given.

    Raises ``QueryError`` naming the value otherwise; a ``bool`` is not a number here.

    Example:
        >>> check_k(5)
        5
        >>> check_k(0)
        Traceback (most recent call last):
        rag.errors.QueryError: k must be a whole number of at least 1, not 0
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or (most is not None and k > most):
        span = f"from 1 to {most}" if most is not None else "of at least 1"
        raise QueryError(f"k must be a whole number {span}, not {k!r}")
    return k


def check_pages(pages: object) -> tuple[int, int] | None:
    """A page range as asked (``(3, 5)`` or ``[3, 5]``, inclusive, from page 1) as a tuple; ``None`` stays.

    Example:
        >>> check_pages([3, 5])
        (3, 5)
    """
    if pages is None:
        return None
    if (not isinstance(pages, list | tuple) or len(pages) != 2 or not all(type(n) is int for n in pages)
            or not 1 <= pages[0] <= pages[1]):
        raise QueryError(f"pages must be [first, last], page numbers from 1, e.g. [3, 5], not {pages!r}")
    return pages[0], pages[1]


def check_sources(sources: object) -> list[str] | None:
    """The files a search is limited to (paths or file names), as a list; ``None`` stays (every file).

    A single string is refused rather than read as its letters, a mapping rather than read as its
    keys, and an empty list rather than searching nothing.

    Example:
        >>> check_sources(("report.pdf",))
        ['report.pdf']
    """
    if sources is None:
        return None
    if isinstance(sources, str | bytes | Mapping) or not isinstance(sources, Iterable):
        raise QueryError(f"sources must be a list of file names or paths, not {type(sources).__name__}")
    names = list(sources)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise QueryError(f"sources must be a non-empty list of file names or paths, not {names!r}")
    return names


M = TypeVar("M")


def cap_history(turns: Sequence[M], max_turns: int = MAX_HISTORY_TURNS,
                max_chars: int = MAX_HISTORY_CHARS) -> list[M]:
    """The most recent of ``turns`` (messages, oldest first) within ``max_turns`` and ``max_chars``.

    Characters are counted from each message's ``content`` (or ``text``) when it is a string;
    the newest message is always kept.

    Example:
        >>> [m["content"] for m in cap_history([{"content": "a" * 10}, {"content": "b" * 10}], max_chars=15)]
        ['bbbbbbbbbb']
    """
    kept: list[M] = []
    total = 0
    for message in reversed(turns[-max_turns:] if max_turns else ()):
        content = message.get("content", message.get("text")) if isinstance(message, dict) else None
        size = len(content) if isinstance(content, str) else 0
        if kept and total + size > max_chars:
            break
        kept.append(message)
        total += size
    kept.reverse()
    return kept

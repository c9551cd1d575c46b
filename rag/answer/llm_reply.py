"""The LLM's reply, parsed: the answer and the (passage number, quote) pairs, in the form the prompt
(``rag.answer.llm_prompt``) asks for, each part bounded so that a reply that goes on costs nothing.

Example:
    >>> parse_reply("NOT FOUND").found
    False
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """What the model said, parsed: the answer text and (passage number, quote) pairs."""

    found: bool
    text: str
    quotes: tuple[tuple[int, str], ...]


MAX_QUOTE_LINES = 40
"""QUOTE lines of a reply read (the prompt asks for one per passage cited, at most 50 passages
are read and a few cited): the rest of a reply that goes on is ignored."""

MAX_QUOTE_CHARS = 2000
"""Characters of one QUOTE line read: a quote is a sentence or two, never a page."""

MAX_WRAPPED_LINES = 20
"""Lines of one ANSWER or QUOTE a model may wrap it over; more are dropped."""

_QUOTE_LINE = re.compile(r"^\s*[*_]*QUOTE\s*\[?\s*(\d+)\s*\]?[*_]*\s*:?[*_]*\s*(.*?)\s*$", re.IGNORECASE)
_ANSWER_LINE = re.compile(r"^\s*[*_]*ANSWER[*_]*\s*:[*_]*\s*(.*)$", re.IGNORECASE)


def parse_reply(content: str) -> Reply:
    """The answer and the (passage, quote) pairs of a reply in the form the prompt asks for.

    A reply without an ``ANSWER:`` line is taken whole as the answer; "NOT FOUND" is a decline.

    Example:
        >>> parse_reply('ANSWER: Ann [1]\\nQUOTE [1]: "Ann called"')
        Reply(found=True, text='Ann [1]', quotes=((1, 'Ann called'),))
    """
    answer_lines: list[str] = []
    raw_quotes: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    for line in content.strip().splitlines():
        quote = _QUOTE_LINE.match(line)
        answer = _ANSWER_LINE.match(line)
        if quote:
            if len(raw_quotes) >= MAX_QUOTE_LINES:
                break   # each is checked against its passage: 20,000 of them took 35 s
            raw_quotes.append((int(quote.group(1)[:6]), [quote.group(2)[:MAX_QUOTE_CHARS]]))
            current = raw_quotes[-1][1]
        elif answer:
            answer_lines = [answer.group(1)]
            current = answer_lines
        elif current is not None and line.strip() and len(current) < MAX_WRAPPED_LINES:
            current.append(line.strip())  # a line the model wrapped
    quotes = [(n, text) for n, lines in raw_quotes if (text := _unquote(" ".join(lines)))]
    text = " ".join(part.strip() for part in answer_lines).strip() if answer_lines else content.strip()
    if not text or re.fullmatch(r"[*_\s]*NOT FOUND[.!*_\s]*", text, re.IGNORECASE):
        return Reply(False, "", ())
    return Reply(True, text, tuple(quotes))


def _unquote(text: str) -> str:
    text = text.strip()
    pairs = {'"': '"', "“": "”", "'": "'", "‘": "’", "«": "»"}
    if len(text) >= 2 and text[0] in pairs and text[-1] == pairs[text[0]]:
        text = text[1:-1].strip()
    # An elided end ("... the rest") is not part of what the passage says.
    return re.sub(r"^(?:…|\.\.\.)\s*|\s*(?:…|\.\.\.)$", "", text)

"""Answer spans made whole: the reader scores word pieces, and a span of pieces can stop inside a
number, a date, a URL or a pair of brackets; these rules widen and trim it to what a reader quotes.

Pure text rules, no model: ``rag.answer.reader`` finds the span, ``whole_span`` makes it whole.

Example:
    >>> t = "revenue rose to $1.6 billion in 2019"
    >>> a, b = whole_span(t, t.index("1.6") + 2, t.index("1.6") + 3)
    >>> t[a:b]
    '$1.6 billion'
"""

from __future__ import annotations

import re

_NUMBER_PART = re.compile(r"[\d.,]")
_UNIT_AFTER = re.compile(r"(?:%|\s?(?:percent|per cent|million|billion|trillion|thousand|bn|m)\b)", re.I)
_CURRENCY = "$€£¥"
_MONTH_BEFORE = re.compile(r"\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
                           r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?[ \t]+$")
_YEAR_AFTER = re.compile(r",?[ \t]+(?:1[5-9]|20)\d\d\b")
_TRIM = " \t\r\n,;:.!?\"'()[]"
_ADDRESS = re.compile(r"[<(\"'`]*((?:[a-z][a-z0-9+.-]*://|www\.)\S+?|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)[>)\"'`.,;:!?]*", re.I)
"""A URL or an e-mail address, with the brackets, quotes and punctuation that may wrap it."""
_CODE_MAX = 80
"""Longest inline code (`...`) an answer is widened to: longer ones are code blocks' lines."""
_CODE_WORDS = 3
"""Inline code of up to this many words is answered whole ("rag ingest"); in longer code the span
is widened to its whole option or argument ("--glob" of "rag ingest --glob '**/*.pdf'")."""


def _code_around(text: str, at: int) -> tuple[int, int] | None:
    """The backticks of the short inline code (`...`, on one line) that holds position ``at``."""
    line_start = text.rfind("\n", 0, at) + 1
    if text.count("`", line_start, at) % 2 == 0:
        return None
    opening, closing = text.rfind("`", line_start, at), text.find("`", at)
    if closing == -1 or closing - opening - 1 > _CODE_MAX or "\n" in text[opening:closing]:
        return None
    return opening, closing


def _whole_token(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a span that stops inside a URL, an e-mail address or inline code to all of it.

    A word-piece span of "http://127.0.0.1:7860" may be "127.0.0.1", and one of "`rag ingest`"
    may be "ingest`": neither is an answer anyone can use.
    """
    run_start = start
    while run_start > 0 and not text[run_start - 1].isspace():
        run_start -= 1
    run_end = end
    while run_end < len(text) and not text[run_end].isspace():
        run_end += 1
    address = _ADDRESS.fullmatch(text, run_start, run_end) if run_end - run_start > end - start else None
    if address:
        return address.start(1), address.end(1)
    code = _code_around(text, start)
    if code and code[1] + 1 >= end:  # the span starts inside inline code and ends with it
        opening, closing = code
        if len(text[opening + 1:closing].split()) <= _CODE_WORDS:
            return opening + 1, closing
        return max(run_start, opening + 1), min(run_end, closing)  # its option or argument, whole
    code = _code_around(text, end)
    if code and code[0] >= start:  # the span opens inline code and stops inside it
        return start, code[1] + 1
    return start, end


def whole_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a span to whole words and whole numbers, and trim the punctuation around it.

    The word-piece tokenizer splits "117,582" into "117", ",", "582" and "$1.6" into "$", "1",
    ".", "6", so a span can stop inside a number: it is widened to the whole number with its
    currency sign and unit ("$1.6 billion", never "31,"), and a day to its whole date
    ("December 31, 2017", never "31"). A web address, an e-mail address and short inline code are
    answered whole too (``_whole_token``), and brackets come in pairs (``_balanced``).

    Example:
        >>> t = "paid memberships were 117,582 at December 31, 2017"
        >>> a, b = whole_span(t, t.index("117"), t.index("117") + 3)
        >>> t[a:b]
        '117,582'
    """
    # Whole words: never stop inside a run of letters or digits.
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    token = _whole_token(text, start, end)
    if token != (start, end):
        return token
    # Whole numbers: digits joined by "," or "." belong together.
    while start > 1 and text[start - 1] in ",." and text[start - 2].isdigit() and text[start].isdigit():
        start -= 2
        while start > 0 and text[start - 1].isdigit():
            start -= 1
    while (end + 1 < len(text) and text[end] in ",." and text[end - 1].isdigit() and text[end + 1].isdigit()):
        end += 2
        while end < len(text) and text[end].isdigit():
            end += 1
    if start > 0 and text[start - 1] in _CURRENCY and start < len(text) and text[start].isdigit():
        start -= 1
    if end > start and text[end - 1].isdigit():
        unit = _UNIT_AFTER.match(text, end)
        if unit:
            end = unit.end()
    while start < end and text[start] in _TRIM and not (text[start] in "(\"" and text.find(
            ")" if text[start] == "(" else "\"", start + 1, end) > 0):
        start += 1
    while end > start and text[end - 1] in _TRIM:
        closing = text[end - 1]
        if closing == ")" and "(" in text[start:end - 1]:
            break
        if closing == "\"" and text[start:end - 1].count("\"") % 2 == 1:
            break
        if closing == "." and _ABBREVIATION.search(text, start, end - 1):
            break  # "Mrs." and "U.S." keep their dot
        end -= 1
    start, end = _balanced(text, start, end)
    # Whole dates: a day alone ("31" of "December 31, 2017") answers nothing; it is the date.
    if end - start <= 2 and text[start:end].isdigit():
        month = _MONTH_BEFORE.search(text, 0, start)
        if month:
            start = month.start()
            year = _YEAR_AFTER.match(text, end)
            end = year.end() if year else end
    return start, end


_CLOSE_WITHIN = 30
"""Characters past a span's end in which the ")" of a bracket it opened may be found and taken in."""
_SENTENCE_BREAK = re.compile(r"[.!?]\s|\n\s*\n")


def _balanced(text: str, start: int, end: int) -> tuple[int, int]:
    """The span with its brackets paired: "(RSOs" -> "(RSOs)", "1996) and ... (2002" -> "1996".

    A ")" the span never opened means it began inside a parenthesis: the span stops before it. A
    "(" it never closes takes in its ")" when that comes within ``_CLOSE_WITHIN`` characters, in
    the same sentence; otherwise the span stops before the "(".
    """
    depth = 0
    for i in range(start, end):
        depth += text[i] == "("
        depth -= text[i] == ")"
        if depth < 0:
            end = i
            break
    opened = []
    for i in range(start, end):
        if text[i] == "(":
            opened.append(i)
        elif text[i] == ")" and opened:
            opened.pop()
    if not opened:
        return start, _trimmed_end(text, start, end)
    after = text[end:end + _CLOSE_WITHIN]
    close = after.find(")")
    if len(opened) == 1 and close >= 0 and "(" not in after[:close] and not _SENTENCE_BREAK.search(after[:close]):
        return start, end + close + 1
    return start, _trimmed_end(text, start, opened[0])


def _trimmed_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in " \t\r\n,;:":
        end -= 1
    return end


_ABBREVIATION = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Inc|Ltd|Co|Corp)|\b[A-Z](?:\.[A-Z])*)$")

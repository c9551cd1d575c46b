"""The Markdown structure of a page: code fences, headings and tables, found by offsets.

The chunker cuts along them (a heading starts a chunk, a table is cut by rows) and the answerers
read them (a heading is no answer, a fence holds code); none of them parses Markdown fully, so
these few patterns are the one reading of it.
"""

from __future__ import annotations

import re

from rag.text import line_spans

HEADING = re.compile(r"#{1,6}\s")
"""A Markdown heading (a unit of its own: ``rag.text.split_sentences`` ends a block before it)."""
_FENCE = re.compile(r"^[ \t]*(```|~~~).*?(?:^[ \t]*\1|\Z)", re.MULTILINE | re.DOTALL)
"""A fenced code block, whose "# ..." lines are comments, not headings."""
TABLE_ROW = re.compile(r"[ \t]*\|.*\|[ \t]*")
"""A line of a Markdown table: ``| a | b |``."""
_TABLE_RULE = re.compile(r"[ \t]*\|?(?:[ \t]*:?-{3,}:?[ \t]*\|)+(?:[ \t]*:?-{3,}:?[ \t]*)?")
"""The line under a Markdown table's header: ``|---|:--:|``."""
_HEADING_LINE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def fenced_blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of each fenced code block of ``text`` (```...``` or ~~~...~~~), fences included.

    Example:
        >>> fenced_blocks("Run:\\n```\\nrag ingest docs\\n```\\nDone.")
        [(5, 28)]
    """
    return [m.span() for m in _FENCE.finditer(text)] if "```" in text or "~~~" in text else []


def heading_matches(text: str) -> list[re.Match[str]]:
    """The Markdown heading lines of ``text``, outside code fences (group 1 the #s, group 2 the title)."""
    if "#" not in text:
        return []
    fences = fenced_blocks(text)
    return [m for m in _HEADING_LINE.finditer(text) if not any(f <= m.start() < g for f, g in fences)]


def heading_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each Markdown heading line of ``text`` (a page or a chunk), outside code fences.

    Example:
        >>> heading_lines("## Collections\\nAn index folder can hold several collections.")
        [(0, 14)]
    """
    return [m.span() for m in heading_matches(text)]


def markdown_tables(text: str) -> list[tuple[int, int, int]]:
    """Markdown tables as (start, end of the header and its rule line, end), outside code fences.

    Example:
        >>> markdown_tables("Tides:\\n| city | tide |\\n|---|---|\\n| Brest | 7 m |\\nMore.")
        [(7, 32, 48)]
    """
    if "|" not in text:
        return []
    fences = fenced_blocks(text)
    lines = line_spans(text, 0, len(text))
    tables, k = [], 0
    while k + 1 < len(lines):
        (a, b), (c, d) = lines[k], lines[k + 1]
        if (TABLE_ROW.fullmatch(text, a, b) and _TABLE_RULE.fullmatch(text, c, d)
                and not any(f <= a < g for f, g in fences)):
            j = k + 2
            while j < len(lines) and TABLE_ROW.fullmatch(text, *lines[j]):
                j += 1
            tables.append((a, d, lines[j - 1][1]))
            k = j
        else:
            k += 1
    return tables

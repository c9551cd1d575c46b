"""What a chunk needs to be read alone: its file's title, its section heading, its table's header.

The context is embedded and searched with the chunk (``Chunk.searchable``) but never quoted; its
parts are joined by ``CONTEXT_SEPARATOR``, so a reader can find the table header again
(``table_header``).
"""

from __future__ import annotations

import re

from rag.ingest.markdown_blocks import heading_matches
from rag.types import Page

CONTEXT_SEPARATOR = " · "
"""Between the parts of a chunk's context: title, page heading, section, table header."""
_CONTEXT_WORDS = 16
"""A heading or title longer than this is cut: context names a passage, it does not repeat one."""
_BOILERPLATE = re.compile(r"(?i)(table of contents|contents|index|page \d+|part [ivx]+|item \d+[a-z]?\.?|[\divx .-]*)")
"""First lines of filing pages that name no topic ("Table of Contents", "PART II", "Item 8", "42")."""


def join_context(*parts: str) -> str:
    """The non-empty ``parts`` joined into one context."""
    return CONTEXT_SEPARATOR.join(p for p in parts if p)


def table_header(context: str) -> str:
    """The table header row in a chunk's context, or "" (the chunk is not inside a table).

    Example:
        >>> table_header("report · Sales › By city · | city | revenue |")
        '| city | revenue |'
    """
    return next((part for part in context.split(CONTEXT_SEPARATOR) if part.startswith("|")), "")


def page_title(page: Page) -> str:
    """The file's name as words, and for a PDF page its first line that names a topic.

    Example:
        >>> page_title(Page("/d/annual_report.pdf", 3, "Acme Inc.\\nConsolidated Balance Sheets\\n42"))
        'annual report · Acme Inc. Consolidated Balance Sheets'
    """
    stem = re.sub(r"[_\W]+", " ", page.source.rsplit("/", 1)[-1].rsplit(".", 1)[0]).strip()
    lines: list[str] = []
    if page.source.lower().endswith(".pdf"):
        # A statement's title is often its second line, under the company's name.
        for line in page.text.split("\n")[:8]:
            line = " ".join(line.split())
            if sum(ch.isalpha() for ch in line) >= 4 and not _BOILERPLATE.fullmatch(line):
                lines.append(line)
                if len(lines) == 2:
                    break
    return join_context(_cut_words(stem), _cut_words(" ".join(lines)))


def section_headings(text: str) -> list[tuple[int, str]]:
    """(offset, "Title › Section") of each Markdown heading, outside code fences.

    Example:
        >>> section_headings("# Guide\\nIntro.\\n## Install\\nRun it.")
        [(0, 'Guide'), (15, 'Guide › Install')]
    """
    found: list[tuple[int, str]] = []
    trail: list[tuple[int, str]] = []
    for match in heading_matches(text):
        level, title = len(match.group(1)), _cut_words(match.group(2))
        trail = [(lv, t) for lv, t in trail if lv < level] + [(level, title)]
        found.append((match.start(), " › ".join(t for _, t in trail[-2:])))
    return found


def heading_for(headings: list[tuple[int, str]], start: int, text: str) -> str:
    """The heading a chunk starting at ``start`` sits under, unless the chunk opens with it."""
    heading = ""
    for offset, title in headings:
        if offset > start:
            break
        heading = title if offset < start or not text.startswith("#", start) else ""
    return heading


def _cut_words(text: str) -> str:
    words = text.split()
    return " ".join(words[:_CONTEXT_WORDS]) + (" …" if len(words) > _CONTEXT_WORDS else "")

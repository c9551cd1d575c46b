"""Markdown as safe HTML, with a quote marked on exactly its characters.

Everything a document or a model wrote is untrusted. Markdown is rendered by markdown-it-py with
raw HTML off, so a ``<script>`` or an ``onerror=`` in a document is shown as the text it is;
links keep only ``http(s):`` and ``mailto:`` targets (``javascript:`` and ``data:`` stay text),
and images are never loaded (an image would fetch a URL the document chose; its description is
shown).

The quote's highlight must cover exactly the quote's characters, but a renderer keeps no
character offsets. So two private-use characters are put into the Markdown source at the quote's
ends, the source is rendered, and the marks are put where those characters came out, split at
every tag so that the HTML stays well nested. Where a boundary lands inside markup that does not
reach the page as text (a link's target), the passage is shown as plain text instead, with the
mark exact.

Example:
    >>> markdown_html("**Rajavi** called for *visits*", (0, 10))
    '<p><strong><mark>Rajavi</mark></strong> called for <em>visits</em></p>'
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

from rag.file_types import stored_as_markdown
from rag.ingest.chunk_context import table_header

_START, _END = "\ue000", "\ue001"
"""Private-use characters marking the quote's ends in the Markdown source (see the module doc)."""


def escape(text: object) -> str:
    """``text`` as HTML, quotes escaped too (safe inside an attribute's value)."""
    return html.escape(str(text), quote=True)


@lru_cache(maxsize=2)
def _renderer(links: bool) -> Any:
    # markdown-it loads with the first rendered passage
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])

    def image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        # Never loaded (it would fetch a URL the document chose): its description is shown.
        alt = self.renderInlineAsText(tokens[idx].children or [], options, env)
        return f'<span class="rag-image">[image: {escape(alt)}]</span>'

    md.add_render_rule("image", image)
    if not links:
        md.disable(["link", "autolink"])
        return md
    # markdown-it's own check lets some data: URLs through (images); only these may be links.
    def valid_link(url: str) -> bool:
        return url.strip().lower().startswith(("http://", "https://", "mailto:"))

    # Overriding validateLink per instance is markdown-it's documented hook; its hints call it a method.
    md.validateLink = valid_link  # type: ignore[method-assign]

    def link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("target", "_blank")
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return str(self.renderToken(tokens, idx, options, env))

    md.add_render_rule("link_open", link_open)
    return md


_MARKUP_LINE = re.compile(r"[ \t]*(?:(?:`{3,}|~{3,}).*|(?:[-*_][ \t]*){3,}|=+"
                          r"|\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*)?")
"""A line that is only Markdown structure (a code fence, a rule, a setext underline, a table's
delimiter row, or blank): a mark placed on it would break it, and none of it is shown."""
_LINE_PREFIX = re.compile(r"[ \t]*(?:(?:>[ \t]?|[-*+][ \t]+|\d{1,9}[.)][ \t]+|#{1,6}[ \t]+|\|[ \t]*)[ \t]*)*")
"""Block markers at a line's start (quote, list item, heading, table row): a mark goes after them,
where the shown text begins, or the line would stop being a heading or a list item."""


def _line(text: str, pos: int) -> tuple[int, int]:
    """(start, end) of the line holding ``text[pos]``."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def _shown_start(text: str, start: int, end: int) -> int:
    pos = start
    while pos < end:
        line_start, line_end = _line(text, pos)
        line = text[line_start:line_end]
        if _MARKUP_LINE.fullmatch(line):
            pos = line_end + 1
            continue
        return max(pos, min(line_start + _LINE_PREFIX.match(line).end(), end))  # type: ignore[union-attr]
    return start


def _shown_end(text: str, start: int, end: int) -> int:
    pos = end
    while pos > start:
        while pos > start and text[pos - 1].isspace():
            pos -= 1
        line_start, line_end = _line(text, pos - 1)
        line = text[line_start:line_end]
        prefix = _LINE_PREFIX.match(line)
        if _MARKUP_LINE.fullmatch(line) or (prefix is not None and pos <= line_start + prefix.end()):
            pos = line_start
            continue
        if line.lstrip().startswith("|"):
            # A table row's closing pipe: a mark after it would make a cell of its own.
            while pos > line_start and text[pos - 1] in "| \t":
                pos -= 1
        return pos
    return end


def _place_marks(rendered: str) -> str | None:
    """``rendered`` with ``<mark>`` around every run of text between the two sentinels, or None
    when a sentinel did not come out as text exactly once."""
    out: list[str] = []
    inside = opened = closed = marked = False
    for part in re.split(r"(<[^>]*>)", rendered):
        if part.startswith("<"):
            if _START in part or _END in part:
                return None
            out.append(part)
            continue
        for piece in re.split(f"([{_START}{_END}])", part):
            if piece == _START:
                if opened:
                    return None
                inside = opened = True
            elif piece == _END:
                if not inside:
                    return None
                inside, closed = False, True
            elif inside and piece and not (piece.isspace() and "\n" in piece):
                # (a newline alone sits between block tags, where a <mark> may not go)
                out.append(f"<mark>{piece}</mark>")
                marked = True
            else:
                out.append(piece)
    return "".join(out) if opened and closed and marked else None


def markdown_html(text: str, mark: tuple[int, int] | None = None, *, links: bool = True) -> str:
    """Markdown as safe HTML, with ``text[mark[0]:mark[1]]`` highlighted.

    Raw HTML in ``text`` is shown as text; links keep only http(s) and mailto targets (none at
    all with ``links=False``); images are not loaded.

    Example:
        >>> markdown_html("<b>x</b> [a](javascript:alert(1))")
        '<p>&lt;b&gt;x&lt;/b&gt; [a](javascript:alert(1))</p>'
    """
    # A document holding the sentinels themselves must not move the mark: same length, inert.
    source = text.replace(_START, "\ufffd").replace(_END, "\ufffd")
    md = _renderer(links)
    if mark is None:
        return str(md.render(source)).strip()
    start, end = max(0, min(mark[0], len(text))), max(0, min(mark[1], len(text)))
    a = _shown_start(source, start, end)
    b = max(a, _shown_end(source, a, end))
    if b > a:
        placed = _place_marks(str(md.render(source[:a] + _START + source[a:b] + _END + source[b:])).strip())
        if placed is not None:
            return placed
    return plain_html(text, (start, end))


def plain_html(text: str, mark: tuple[int, int] | None = None) -> str:
    """Text as it is (escaped, line breaks kept), with ``text[mark[0]:mark[1]]`` highlighted.

    Example:
        >>> plain_html("a <b> c", (2, 5))
        '<div class="rag-plain">a <mark>&lt;b&gt;</mark> c</div>'
    """
    body = escape(text) if mark is None else highlight(text, *mark)
    return f'<div class="rag-plain">{body}</div>'


def highlight(text: str, start: int, end: int, context: int | None = None) -> str:
    """``text`` as HTML with ``text[start:end]`` marked; with ``context``, cut to that many characters
    either side of the mark (at word boundaries, with an ellipsis).

    Example:
        >>> highlight("a <b> c", 2, 5)
        'a <mark>&lt;b&gt;</mark> c'
    """
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    a, b, lead, trail = _cut(text, start, end, context) if context is not None else (0, len(text), "", "")
    return f"{lead}{escape(text[a:start])}<mark>{escape(text[start:end])}</mark>{escape(text[end:b])}{trail}"


def _cut(text: str, start: int, end: int, context: int) -> tuple[int, int, str, str]:
    """Where to cut ``text`` to show ``context`` characters around ``[start, end)``: at a line
    break when one is near (Markdown then keeps its lines whole), else at a space."""
    a, b, lead, trail = 0, len(text), "", ""
    if start > context:
        window = text[start - context:start]
        newline, space = window.find("\n"), window.find(" ")
        if 0 <= newline:
            a = start - context + newline + 1
        else:
            a = start - context + (space + 1 if 0 <= space < context // 2 else 0)
            lead = "… "
    if len(text) - end > context:
        window = text[end:end + context]
        newline, space = window.rfind("\n"), window.rfind(" ")
        if newline >= 0:
            b = end + newline
        else:
            b = end + (space if space > context // 2 else context)
            trail = " …"
    return a, b, lead, trail


def _table_header(text: str, pos: int) -> str:
    """The header and delimiter rows of the Markdown table whose row holds ``text[pos]``, when
    the table starts before ``pos``'s line (a passage cut there would lose its columns' names)."""
    line_start, _ = _line(text, pos)
    rows: list[str] = []
    cursor = line_start
    while cursor > 0:
        previous_start, previous_end = _line(text, cursor - 1)
        line = text[previous_start:previous_end]
        if not line.lstrip().startswith("|"):
            break
        rows.insert(0, line)
        cursor = previous_start
    if len(rows) >= 2 and _MARKUP_LINE.fullmatch(rows[1]) and "-" in rows[1]:
        return rows[0] + "\n" + rows[1] + "\n"
    return ""


def renders_markdown(source: str) -> bool:
    """Markdown, HTML, Office, spreadsheet and EPUB files are stored as Markdown (headings, lists,
    tables; ``rag.file_types``); plain text, e-mail and PDF pages are shown as they are,
    where a ``*`` or a leading ``1.`` is just a character."""
    return stored_as_markdown(source)


def passage_html(text: str, mark: tuple[int, int], source: str, *, context: int | None = None,
                 header: str = "") -> str:
    """A passage of ``source`` with ``text[mark[0]:mark[1]]`` marked, cut to ``context`` characters
    around it; Markdown rendered for Markdown and HTML sources.

    A passage that starts inside a Markdown table gets the table's header and delimiter rows
    above it, from ``text`` before the cut or else from ``header`` (a chunk's context), so that
    its rows still render as a table with their columns named; the header is never marked.

    Example:
        >>> passage_html("# Tides\\n\\nHigh tide at 7 am.", (9, 27), "/d/tides.md")
        '<div class="rag-md"><h1>Tides</h1>\\n<p><mark>High tide at 7 am.</mark></p></div>'
    """
    start, end = max(0, min(mark[0], len(text))), max(0, min(mark[1], len(text)))
    a, b, lead, trail = _cut(text, start, end, context) if context is not None else (0, len(text), "", "")
    if not renders_markdown(source):
        return f'<div class="rag-plain">{lead}{highlight(text[a:b], start - a, end - a)}{trail}</div>'
    piece = text[a:b]
    top = ""
    if piece.lstrip().startswith("|"):
        top = _table_header(text, a) or _header_rows(header)
    source_md = top + lead + piece
    shift = len(top) + len(lead) - a
    rendered = markdown_html(source_md, (start + shift, end + shift))
    return f'<div class="rag-md">{rendered}{escape(trail)}</div>'


def _header_rows(context: str) -> str:
    """A table header for a passage from its chunk's context: header and delimiter rows given
    whole, or the header row alone (``rag.ingest.chunk_context.table_header``), given a delimiter row of as
    many columns."""
    lines = context.split("\n")
    for first, second in zip(lines, lines[1:]):
        if first.lstrip().startswith("|") and "-" in second and _MARKUP_LINE.fullmatch(second):
            return first + "\n" + second + "\n"
    row = table_header(context).strip()
    if not row:
        return ""
    columns = max(1, len(row.strip().strip("|").split("|")))
    return row + "\n|" + "---|" * columns + "\n"

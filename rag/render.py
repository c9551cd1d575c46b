"""HTML for the web chat: answers, source cards, the document viewer and the library panel.

Everything a document or a model wrote is untrusted, and reaches the page only through this
module. Markdown is rendered by markdown-it-py with raw HTML off, so a ``<script>`` or an
``onerror=`` in a document is shown as the text it is; links keep only ``http(s):`` and
``mailto:`` targets (``javascript:`` and ``data:`` stay text), images are never loaded (an image
would fetch a URL the document chose; its description is shown), and answers get no links at
all: an answer may be an LLM's prose, and a prompt-injected passage can make it write a phishing
address.

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

import base64
import html
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from .chunk import table_header
from .load import HTML_SUFFIXES, MARKDOWN_SUFFIXES
from .types import Answer, Document, Hit, IngestReport, LoadFailure, Quote, TextBox

CONTEXT_CHARS = 180
"""Characters of passage shown on each side of a quote before the passage is expanded."""

VIEW_CHARS = 200_000
"""Most characters of a document the viewer renders at once (around the quote); a whole 50 MB
text file would take the browser seconds to lay out."""

_START, _END = "\ue000", "\ue001"
"""Private-use characters marking the quote's ends in the Markdown source (see the module doc)."""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# --------------------------------------------------------------------------------------------
# Markdown


@lru_cache(maxsize=2)
def _renderer(links: bool) -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])

    def image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        # Never loaded (it would fetch a URL the document chose): its description is shown.
        alt = self.renderInlineAsText(tokens[idx].children or [], options, env)
        return f'<span class="rag-image">[image: {_e(alt)}]</span>'

    md.add_render_rule("image", image)
    if not links:
        md.disable(["link", "autolink"])
        return md
    # markdown-it's own check lets some data: URLs through (images); only these may be links.
    md.validateLink = lambda url: url.strip().lower().startswith(("http://", "https://", "mailto:"))

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
    body = _e(text) if mark is None else highlight(text, *mark)
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
    return f"{lead}{_e(text[a:start])}<mark>{_e(text[start:end])}</mark>{_e(text[end:b])}{trail}"


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
    """Markdown and HTML files are stored as Markdown (headings, lists, tables); plain text and
    PDF pages are shown as they are, where a ``*`` or a leading ``1.`` is just a character."""
    return Path(source).suffix.lower() in MARKDOWN_SUFFIXES | HTML_SUFFIXES


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
    return f'<div class="rag-md">{rendered}{_e(trail)}</div>'


def _header_rows(context: str) -> str:
    """A table header for a passage from its chunk's context: header and delimiter rows given
    whole, or the header row alone (``rag.chunk.table_header``), given a delimiter row of as
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


# --------------------------------------------------------------------------------------------
# Answers and their sources


class PageTexts(Protocol):
    """What the renderers read pages from: ``Index`` (``page_text``) or anything alike."""

    def page_text(self, source: str, page: int) -> str | None: ...


def shown_quotes(answer: Answer) -> tuple[Quote, ...]:
    """The quotes of the cards ``render_sources`` shows, in order: card ``i`` opens ``[i]``."""
    return answer.citations if answer.found else tuple(h.quote for h in answer.hits[:3])


def _passage(quote: Quote, hits: Sequence[Hit], pages: PageTexts) -> tuple[str, int, str]:
    """The passage to show around ``quote``, the offset of its first character in the page, and
    the chunk's context (a table header the passage may need)."""
    for hit in hits:
        chunk = hit.chunk
        if (chunk.source, chunk.page) == (quote.source, quote.page) and chunk.start <= quote.start \
                and quote.end <= chunk.end:
            return chunk.text, chunk.start, chunk.context
    # The quote lies outside the retrieved passages (e.g. the sentence naming whom "she" is):
    page = pages.page_text(quote.source, quote.page)
    if page is None or page[quote.start:quote.end] != quote.text:
        return quote.text, quote.start, ""
    # show its paragraph (or 600 characters either side, cut at spaces).
    a, b = max(0, quote.start - 600), min(len(page), quote.end + 600)
    newline, space = page.rfind("\n", a, quote.start), page.find(" ", a, quote.start)
    if newline >= 0:
        a = newline + 1
    elif a > 0 and space >= 0:
        a = space + 1
    newline, space = page.find("\n", quote.end, b), page.rfind(" ", quote.end, b)
    if newline >= 0:
        b = newline
    elif b < len(page) and space >= 0:
        b = space
    return page[a:b], a, ""


def _is_pdf(source: str) -> bool:
    return Path(source).suffix.lower() == ".pdf"


OCR_TAG = ('<span class="rag-ocr" title="This page had no text layer: its text was read from the image">'
           'read by OCR</span>')


def source_card(n: int, quote: Quote, hits: Sequence[Hit], pages: PageTexts, kind: str, cite: int) -> str:
    """One card of the sources panel; its button opens shown quote number ``cite`` (0-based)."""
    passage, offset, context = _passage(quote, hits, pages)
    mark = (quote.start - offset, quote.end - offset)
    snippet = passage_html(passage, mark, quote.source, context=CONTEXT_CHARS, header=context)
    whole = passage_html(passage, mark, quote.source, header=context)
    ocr = OCR_TAG if quote.ocr or any(h.chunk.ocr and h.source == quote.source and h.page == quote.page
                                      for h in hits) else ""
    opens = "Show the page" if _is_pdf(quote.source) else "Show in the document"
    return (
        f'<article class="rag-card rag-{kind}">'
        f'<header><span class="rag-n">{n}</span>'
        f'<span class="rag-file" title="{_e(quote.source)}">{_e(quote.name)}</span>{ocr}'
        f'<span class="rag-page">page {quote.page}</span></header>'
        f'<div class="rag-snippet">{snippet}</div>'
        f'<details><summary>Read the whole passage</summary><div class="rag-passage">{whole}</div></details>'
        f'<button type="button" class="rag-open" data-cite="{cite}">{opens}</button>'
        f'</article>'
    )


def render_sources(answer: Answer, pages: PageTexts) -> str:
    """The panel beside the chat: each citation highlighted in its passage, or the closest passages.

    Example:
        >>> html_text = render_sources(index.ask("Who called for UN visits?"), index)
    """
    parts = [f'<div class="rag-sources"><p class="rag-question">{_e(answer.question)}</p>']
    if answer.found:
        label = "Source" if len(answer.citations) == 1 else "Sources"
        parts.append(f'<h3>{label} <span class="rag-muted">quoted verbatim</span></h3>')
        parts += [source_card(n, q, answer.hits, pages, "citation", n - 1)
                  for n, q in enumerate(answer.citations, 1)]
    else:
        parts.append('<div class="rag-notfound"><strong>Not found in the indexed documents.</strong> '
                     'These passages came closest; none of them answers the question.</div>')
        if answer.hits:
            parts.append('<h3>Closest passages</h3>')
            parts += [source_card(h.rank, h.quote, answer.hits, pages, "closest", i)
                      for i, h in enumerate(answer.hits[:3])]
    parts += [f'<p class="rag-note">{_e(note)}</p>' for note in answer.notes]
    parts.append("</div>")
    return "".join(parts)


SOURCES_EMPTY = ('<div class="rag-sources rag-empty"><h3>Sources</h3><p>Ask a question: the quotes behind '
                 'the answer appear here, highlighted in their passages, with file and page. Click an '
                 'earlier answer to see its sources again.</p></div>')

_ADDRESSY = re.compile(r"[:@]|(?<=www)\.", re.IGNORECASE)


def _inert_addresses(rendered: str) -> str:
    """Text of ``rendered`` with ``:``, ``@`` and ``www.`` written as character references: they
    look the same, and no autolinker (the browser's, a client's, a copy into a Markdown editor's)
    finds an address in them."""
    parts = re.split(r"(<[^>]*>)", rendered)
    return "".join(p if p.startswith("<") else _ADDRESSY.sub(lambda m: f"&#{ord(m.group())};", p) for p in parts)


def message_html(text: str) -> str:
    """A message for the chat: Markdown without links, on one line.

    The chat (Gradio's Chatbot with its own Markdown off) shows this HTML after its sanitizer;
    one line, because it runs ``inspect.cleandoc`` over messages, which would strip a code
    block's indentation.
    """
    rendered = _inert_addresses(markdown_html(text, links=False))
    # Inside <pre> a newline is content; elsewhere it is only whitespace between tags.
    pieces = re.split(r"(<pre[\s>].*?</pre>)", rendered, flags=re.DOTALL)
    return "".join(p.replace("\n", "&#10;") if p.startswith("<pre") else p.replace("\n", " ") for p in pieces)


def question_html(question: str) -> str:
    """The user's question as the chat shows it: text, nothing rendered."""
    return f'<p class="rag-asked">{_inert_addresses(_e(question))}</p>'


def render_reply(answer: Answer) -> str:
    """The chat message for an answer: its text (Markdown, no links) and where its quotes are."""
    if not answer.found:
        searched = (f'<p class="rag-cited">searched: {_inert_addresses(_e(answer.query))}</p>'
                    if answer.query else "")
        return ("<p><strong>Not found in the indexed documents.</strong></p>"
                "<p>The closest passages are shown beside the chat; try other words, or add the document "
                "that holds the answer.</p>" + searched)
    places: dict[tuple[str, int], list[int]] = {}
    for n, quote in enumerate(answer.citations, start=1):
        places.setdefault((quote.name, quote.page), []).append(n)
    cited = " · ".join("".join(f"[{n}]" for n in numbers) + f" {_e(name)}, page {page}"
                       for (name, page), numbers in places.items())
    checked = ""
    if answer.mode == "llm":
        # The quotes are verified text; the prose is the model's, kept only where they support it.
        left_out = len(answer.unsupported)
        checked = (" · the model's words, each sentence checked against the quote it cites"
                   + (f"; {left_out} unsupported sentence{'s' if left_out != 1 else ''} left out (see the notes)"
                      if left_out else ""))
    searched = f" · searched: {_e(answer.query)}" if answer.query else ""
    return f'{message_html(answer.text)}<p class="rag-cited">{_inert_addresses(cited + checked + searched)}</p>'


# --------------------------------------------------------------------------------------------
# The viewer: a cited source, whole


def _window(text: str, start: int, end: int, size: int) -> tuple[int, int]:
    """At most ``size`` characters of ``text`` around ``[start, end)``, cut at line breaks."""
    if len(text) <= size:
        return 0, len(text)
    a = max(0, min(start, len(text)) - size // 2)
    b = min(len(text), a + size)
    a = max(0, b - size)
    if a > 0:
        newline = text.find("\n", a, start)
        a = newline + 1 if newline >= 0 else a
    if b < len(text):
        newline = text.rfind("\n", max(end, a), b)
        b = newline if newline >= 0 else b
    return a, b


def render_viewer(quote: Quote, page_text: str | None, *, png: bytes | None = None,
                  size: tuple[int, int] = (0, 0), boxes: Sequence[TextBox] = (), note: str = "") -> str:
    """The viewer of one cited source: the page image with ``boxes`` over the quote (PDF pages,
    given ``png``), or the passage in its whole document with the quote marked.

    The image travels inside the HTML as a ``data:`` URL: no file route is opened for it, so
    what the server serves stays what ``rag.webguard`` and Gradio's file rules allow.

    Example:
        >>> html_text = render_viewer(quote, index.page_text(quote.source, quote.page))
    """
    here = page_text is not None and page_text[quote.start:quote.end] == quote.text
    notes = [note] if note else []
    if page_text is not None and not here:
        notes.append("The page has changed since this answer: the quote is no longer at its place.")
    body = []
    if png is not None:
        width, height = size
        marks = "".join(
            f'<span class="rag-box" style="left:{b.x0 * 100:.3f}%;top:{b.y0 * 100:.3f}%;'
            f'width:{(b.x1 - b.x0) * 100:.3f}%;height:{(b.y1 - b.y0) * 100:.3f}%"></span>' for b in boxes)
        image = base64.b64encode(png).decode("ascii")
        body.append(f'<div class="rag-pageview" data-width="{width}" data-height="{height}">'
                    f'<img src="data:image/png;base64,{image}" width="{width}" height="{height}" '
                    f'alt="Page {quote.page} of {_e(quote.name)}">{marks}</div>')
        if not boxes:
            notes.append("The quote's place on the page image could not be found; its text is below.")
    if page_text is None:
        notes.append("The page's text is no longer in the index.")
    else:
        a, b = _window(page_text, quote.start, quote.end, VIEW_CHARS)
        if (a, b) != (0, len(page_text)):
            notes.append(f"Showing characters {a:,} to {b:,} of {len(page_text):,}, around the quote.")
        mark = (quote.start - a, quote.end - a) if here else None
        piece = page_text[a:b]
        if renders_markdown(quote.source):
            text = f'<div class="rag-md">{markdown_html(piece, mark)}</div>'
        else:
            text = plain_html(piece, mark)
        if png is not None:
            body.append(f'<details class="rag-pagetext"><summary>The page\'s text</summary>{text}</details>')
        else:
            body.append(f'<div class="rag-doc">{text}</div>')
    ocr = OCR_TAG if quote.ocr else ""
    said = "".join(f'<p class="rag-note">{_e(n)}</p>' for n in notes)
    return (
        f'<div class="rag-viewer" role="dialog" aria-modal="true" aria-label="{_e(quote.name)}, page {quote.page}">'
        f'<div class="rag-viewer-box"><header>'
        f'<span class="rag-file" title="{_e(quote.source)}">{_e(quote.name)}</span>{ocr}'
        f'<span class="rag-page">page {quote.page}</span>'
        f'<button type="button" class="rag-close" data-close aria-label="Close">×</button></header>'
        f'{said}<div class="rag-viewer-body">{"".join(body)}</div></div></div>'
    )


def viewer_error(message: str) -> str:
    """The viewer saying why a source cannot be shown."""
    return (f'<div class="rag-viewer" role="dialog" aria-modal="true" aria-label="Source"><div class="rag-viewer-box">'
            f'<header><span class="rag-file">Source</span><button type="button" class="rag-close" data-close '
            f'aria-label="Close">×</button></header><div class="rag-viewer-body"><div class="rag-failed">'
            f'<p>{_e(message)}</p></div></div></div></div>')


# --------------------------------------------------------------------------------------------
# The library


def render_stats(stats: dict[str, Any]) -> str:
    cells = "".join(f'<div><b>{stats[key]:,}</b><span>{label}</span></div>'
                    for key, label in (("documents", "documents"), ("pages", "pages"), ("chunks", "passages")))
    return f'<div class="rag-stats">{cells}</div>'


def render_documents(docs: Sequence[Document], uploads: Path) -> str:
    """The indexed files; those under ``uploads`` (added from the page) are tagged."""
    if not docs:
        return '<p class="rag-muted">Nothing is indexed yet. Add PDF, text, Markdown or HTML files above.</p>'
    rows = "".join(
        f'<tr><td class="rag-file" title="{_e(d.source)}">{_e(d.name)}'
        f'{" <span class=rag-tag>upload</span>" if Path(d.source).parent == uploads else ""}</td>'
        f'<td>{d.pages}</td><td>{d.chunks}</td></tr>' for d in docs)
    return (f'<table class="rag-docs"><thead><tr><th>Indexed files</th><th>Pages</th><th>Passages</th></tr>'
            f'</thead><tbody>{rows}</tbody></table>')


def render_ingest(stored: Sequence[tuple[str, Path]], failed: Sequence[LoadFailure],
                  report: IngestReport | None) -> str:
    """What an upload did: files added, files already indexed, and each failure with its reason."""
    names = {str(path): original for original, path in stored}
    items = []
    if report is not None:
        added = [names.get(s, Path(s).name) for s in report.added + report.updated]
        same = [names.get(s, Path(s).name) for s in report.unchanged]
        if added:
            items.append(f'<p class="rag-ok">Added {len(added)} file{"s" if len(added) != 1 else ""}: '
                         f'{_e(", ".join(added))}. The index is saved.</p>')
        if same:
            items.append(f'<p class="rag-muted">Already indexed: {_e(", ".join(same))}.</p>')
    if failed:
        rows = "".join(f'<li><b>{_e(f.source)}</b>: {_e(f.reason)}</li>' for f in failed)
        items.append(f'<div class="rag-failed"><p>Not added:</p><ul>{rows}</ul></div>')
    return "".join(items)


def render_failure(message: object) -> str:
    return f'<div class="rag-failed"><p>{_e(message)}</p></div>'


def render_removed(source: str) -> str:
    return f'<p class="rag-ok">Removed {_e(Path(source).name)}. The index is saved.</p>'


# --------------------------------------------------------------------------------------------
# Styles


CSS = """
.rag-brand { display: flex; align-items: center; gap: 10px; margin: 2px 0 4px; }
.rag-brand b { display: block; font-size: 1.15rem; line-height: 1.1; }
.rag-brand small { color: var(--body-text-color-subdued); font-size: .8rem; }
.rag-logo { display: inline-flex; align-items: center; justify-content: center; width: 34px; height: 34px;
  border-radius: 9px; background: var(--color-accent); color: white; font-weight: 800; font-size: 1.2rem; }
.rag-header { padding: 2px 4px 0; }
.rag-header h1 { font-size: 1.45rem; margin: 0 0 2px; font-weight: 650; }
.rag-header p { margin: 0; color: var(--body-text-color-subdued); }
.rag-stats { display: grid; grid-template-columns: repeat(3, 1fr); gap: 6px; }
.rag-stats div { background: var(--block-background-fill); border: 1px solid var(--border-color-primary);
  border-radius: 8px; padding: 6px 8px; text-align: center; }
.rag-stats b { display: block; font-size: 1.1rem; }
.rag-stats span { font-size: .75rem; color: var(--body-text-color-subdued); }
.rag-hint, .rag-muted { color: var(--body-text-color-subdued); font-size: .8rem; margin: 2px 0; }
.rag-ok { color: var(--color-green-600, #15803d); font-size: .88rem; margin: 2px 0; }
.rag-failed { font-size: .88rem; }
.rag-failed p { margin: 2px 0; color: #b91c1c; font-weight: 600; }
.rag-failed ul { margin: 2px 0 6px 18px; padding: 0; }
#rag-documents table.rag-docs { width: 100%; border-collapse: collapse; font-size: .84rem; border: 0 !important;
  margin: 0; }
#rag-documents .rag-docs tr { border: 0 !important; }
#rag-documents .rag-docs th, #rag-documents .rag-docs td { border: 0 !important;
  border-bottom: 1px solid var(--border-color-primary) !important; padding: 5px 4px; vertical-align: top;
  background: transparent !important; }
#rag-documents .rag-docs th { text-align: left; font-weight: 600; color: var(--body-text-color-subdued);
  font-size: .78rem; }
#rag-documents .rag-docs td:not(:first-child), #rag-documents .rag-docs th:not(:first-child) { text-align: right;
  width: 4.2em; white-space: nowrap; }
#rag-documents .rag-file { overflow-wrap: anywhere; }
.rag-tag { font-size: .68rem; background: var(--color-accent-soft); color: var(--color-accent); white-space: nowrap;
  border-radius: 4px; padding: 0 5px; margin-left: 4px; }
.rag-sources h3 { font-size: .95rem; margin: 8px 0; }
.rag-question { font-weight: 600; font-size: 1.02rem; margin: 0 0 4px; }
.rag-empty { border: 1px dashed var(--border-color-primary); border-radius: 12px; padding: 14px 16px; }
.rag-empty h3 { margin-top: 0; }
.rag-empty p { color: var(--body-text-color-subdued); margin: 0; }
.rag-card { border: 1px solid var(--border-color-primary); border-left: 4px solid var(--color-accent);
  border-radius: 10px; padding: 10px 12px; margin: 0 0 10px; background: var(--block-background-fill); }
.rag-closest { border-left-color: var(--neutral-400); }
.rag-card header { display: flex; align-items: center; gap: 8px; margin-bottom: 6px; }
.rag-n { display: inline-flex; align-items: center; justify-content: center; min-width: 22px; height: 22px;
  border-radius: 999px; background: var(--color-accent); color: white; font-size: .78rem; font-weight: 700; }
.rag-closest .rag-n { background: var(--neutral-400); }
.rag-card .rag-file { font-weight: 600; overflow-wrap: anywhere; }
.rag-page { margin-left: auto; font-size: .78rem; color: var(--body-text-color-subdued); white-space: nowrap;
  background: var(--background-fill-secondary); border-radius: 999px; padding: 1px 8px; }
.rag-snippet { margin: 0; line-height: 1.55; font-size: .92rem; }
.rag-passage { margin: 6px 0 0; line-height: 1.55; font-size: .9rem; padding: 8px 10px;
  border-radius: 8px; background: var(--background-fill-secondary); max-height: 22rem; overflow-y: auto; }
.rag-card mark, .rag-viewer mark { background: #fde68a; color: #1f2937; border-radius: 2px; padding: 0; }
.rag-plain { white-space: pre-wrap; }
/* Long unbroken runs (URLs, tokens, table rows) wrap instead of widening the page. */
.rag-plain, .rag-md, .rag-md *, .rag-card, .rag-viewer-body, #rag-chat .message { overflow-wrap: anywhere; }
.rag-md > :first-child { margin-top: 0; }
.rag-md > :last-child { margin-bottom: 0; }
.rag-md h1, .rag-md h2, .rag-md h3, .rag-md h4, .rag-md h5, .rag-md h6 { font-size: 1rem; margin: .6em 0 .3em;
  font-weight: 650; }
.rag-md h1 { font-size: 1.12rem; }
.rag-md p, .rag-md ul, .rag-md ol, .rag-md blockquote, .rag-md pre, .rag-md table { margin: .35em 0; }
.rag-md ul, .rag-md ol { padding-left: 1.4em; }
.rag-md blockquote { border-left: 3px solid var(--border-color-primary); padding-left: .7em;
  color: var(--body-text-color-subdued); }
.rag-md pre, #rag-chat pre { white-space: pre-wrap; background: var(--background-fill-secondary); padding: 6px 8px;
  border-radius: 6px; font-size: .85em; }
.rag-md code, #rag-chat code { font-family: var(--font-mono); font-size: .88em; }
.rag-md table { border-collapse: collapse; width: 100%; table-layout: fixed; font-size: .88em; }
.rag-md th, .rag-md td { border: 1px solid var(--border-color-primary); padding: 3px 6px; vertical-align: top;
  text-align: left; }
.rag-md th { background: var(--background-fill-secondary); font-weight: 600; }
.rag-ocr { font-size: .68rem; background: #e0f2fe; color: #075985; white-space: nowrap; border-radius: 4px;
  padding: 0 5px; }
.rag-open { margin-top: 6px; border: 1px solid var(--border-color-primary); background: transparent; cursor: pointer;
  color: var(--color-accent); border-radius: 6px; padding: 2px 8px; font-size: .8rem; }
.rag-open:hover { background: var(--color-accent-soft); }
#rag-viewer { position: static !important; }
.rag-viewer { position: fixed; inset: 0; z-index: 1000; background: rgba(15, 23, 42, .5); display: flex;
  align-items: center; justify-content: center; padding: 3vh 3vw; box-sizing: border-box; }
.rag-viewer-box { background: var(--background-fill-primary); color: var(--body-text-color); border-radius: 12px;
  width: min(980px, 100%); max-height: 94vh; display: flex; flex-direction: column; overflow: hidden;
  box-shadow: 0 20px 50px rgba(0, 0, 0, .35); }
.rag-viewer-box > header { display: flex; align-items: center; gap: 8px; padding: 10px 14px;
  border-bottom: 1px solid var(--border-color-primary); }
.rag-viewer-box > header .rag-file { font-weight: 650; overflow-wrap: anywhere; }
.rag-viewer-box > .rag-note { margin: 6px 14px 0; }
.rag-close { margin-left: 8px; border: 0; background: transparent; font-size: 1.5rem; line-height: 1; cursor: pointer;
  color: var(--body-text-color-subdued); padding: 0 4px; }
.rag-viewer-body { overflow: auto; padding: 12px 16px; line-height: 1.6; font-size: .95rem; }
.rag-pageview { position: relative; width: 100%; max-width: 100%; margin: 0 auto;
  box-shadow: 0 0 0 1px var(--border-color-primary); }
.rag-pageview img { display: block; width: 100%; height: auto; }
.rag-box { position: absolute; background: rgba(250, 204, 21, .35); outline: 2px solid rgba(217, 119, 6, .9);
  border-radius: 2px; pointer-events: none; }
.rag-pagetext { margin-top: 10px; }
.rag-pagetext summary { cursor: pointer; color: var(--color-accent); font-size: .85rem; }
.rag-card details { margin-top: 6px; }
.rag-card summary { cursor: pointer; color: var(--color-accent); font-size: .83rem; }
.rag-notfound { border-left: 4px solid #f59e0b; background: rgba(245, 158, 11, .1); padding: 8px 12px;
  border-radius: 6px; margin: 4px 0 10px; }
.rag-note { color: var(--body-text-color-subdued); font-size: .78rem; }
#rag-chat .rag-cited { font-size: .78rem; color: var(--body-text-color-subdued); margin-top: 6px; }
#rag-chat .rag-asked { margin: 0; white-space: pre-wrap; }
#rag-ask-row { align-items: stretch; }
.rag-jump { display: none; }
/* A phone: the chat first, the sources one tap below it. */
@media (max-width: 720px) {
  .rag-jump { display: inline-block; margin: 4px 0 0; padding: 4px 12px; border-radius: 999px; font-size: .85rem;
    background: var(--color-accent-soft); color: var(--color-accent); text-decoration: none; font-weight: 600; }
  #rag-chat { height: 60vh !important; }
  .rag-viewer { padding: 0; }
  .rag-viewer-box { max-height: 100vh; height: 100%; border-radius: 0; }
}
"""

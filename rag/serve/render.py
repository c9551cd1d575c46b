"""HTML for the web chat: answers, source cards, the document viewer and the library panel.

Everything a document or a model wrote is untrusted, and reaches the page only through this
module, escaped, or as Markdown rendered by ``rag.serve.markdown_marks`` (raw HTML off, only http(s)
and mailto links, images never loaded). Answers get no links at all: an answer may be an LLM's
prose, and a prompt-injected passage can make it write a phishing address. The page's styles
are ``rag/serve/static/page.css`` (``rag.serve.page_assets``).

Example:
    >>> html_text = render_sources(index.ask("Who called for UN visits?"), index)
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from rag.file_types import formats, has_page_images, page_word
from rag.serve.markdown_marks import escape, markdown_html, passage_html, plain_html, renders_markdown
from rag.serve.table_render import working_html
from rag.types import NOT_FOUND, POSSIBLY, Answer, Document, Hit, IngestReport, LoadFailure, Quote, TextBox

CONTEXT_CHARS = 180
"""Characters of passage shown on each side of a quote before the passage is expanded."""

VIEW_CHARS = 200_000
"""Most characters of a document the viewer renders at once (around the quote); a whole 50 MB
text file would take the browser seconds to lay out."""


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


OCR_TAG = ('<span class="rag-ocr" title="This page had no text layer: its text was read from the image">'
           'read by OCR</span>')


def source_card(n: int, quote: Quote, hits: Sequence[Hit], pages: PageTexts, kind: str, cite: int) -> str:
    """One card of the sources panel; its button opens shown quote number ``cite`` (0-based)."""
    passage, offset, context = _passage(quote, hits, pages)
    # The closest passages of a decline are shown around their best sentence, never marked: a
    # mark reads as "this answers", and none of them does.
    mark = (quote.start - offset, quote.end - offset) if kind != "closest" else (quote.start - offset,) * 2
    snippet = passage_html(passage, mark, quote.source, context=CONTEXT_CHARS, header=context)
    whole = passage_html(passage, mark, quote.source, header=context)
    ocr = OCR_TAG if quote.ocr or any(h.chunk.ocr and h.source == quote.source and h.page == quote.page
                                      for h in hits) else ""
    opens = f"Show the {page_word(quote.source)}" if has_page_images(quote.source) or page_word(quote.source) != "page" \
        else "Show in the document"
    return (
        f'<article class="rag-card rag-{kind}">'
        f'<header><span class="rag-n">{n}</span>'
        f'<span class="rag-file" title="{escape(quote.name)}">{escape(quote.name)}</span>{ocr}'
        f'<span class="rag-page">{quote.place}</span></header>'
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
    parts = [f'<div class="rag-sources"><p class="rag-question">{escape(answer.question)}</p>']
    if answer.found:
        label = "Source" if len(answer.citations) == 1 else "Sources"
        parts.append(f'<h3>{label} <span class="rag-muted">quoted verbatim</span></h3>')
        parts += [source_card(n, q, answer.hits, pages, "citation", n - 1)
                  for n, q in enumerate(answer.citations, 1)]
    else:
        parts.append(f'<div class="rag-notfound"><strong>{NOT_FOUND}</strong> '
                     'These passages came closest; none of them answers the question.</div>')
        if answer.hits:
            parts.append('<h3>Closest passages</h3>')
            parts += [source_card(h.rank, h.quote, answer.hits, pages, "closest", i)
                      for i, h in enumerate(answer.hits[:3])]
    if answer.working is not None:
        parts.append(working_html(answer, pages))
    parts += [f'<p class="rag-note">{escape(note)}</p>' for note in answer.notes]
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
    return f'<p class="rag-asked">{_inert_addresses(escape(question))}</p>'


def render_reply(answer: Answer) -> str:
    """The chat message for an answer: its text (Markdown, no links) and where its quotes are."""
    if not answer.found:
        searched = (f'<p class="rag-cited">searched: {_inert_addresses(escape(answer.query))}</p>'
                    if answer.query else "")
        guess = answer.text.partition(POSSIBLY)[2]
        # A best guess that came close is said in plain words, marked as uncertain, unquoted.
        possibly = f'<p class="rag-possibly">Possibly: {_inert_addresses(escape(guess))}</p>' if guess else ""
        return (f"<p><strong>{NOT_FOUND}</strong></p>" + possibly +
                "<p>The closest passages are shown with the sources; try other words, or add the document "
                "that holds the answer.</p>" + searched)
    places: dict[tuple[str, str], list[int]] = {}
    for n, quote in enumerate(answer.citations, start=1):
        places.setdefault((quote.name, quote.place), []).append(n)
    cited = " · ".join("".join(f"[{n}]" for n in numbers) + f" {escape(name)}, {place}"
                       for (name, place), numbers in places.items())
    checked = ""
    if answer.mode == "llm":
        # The quotes are verified text; the prose is the model's, kept only where they support it.
        left_out = len(answer.unsupported)
        checked = (" · the model's words, each sentence checked against the quote it cites"
                   + (f"; {left_out} unsupported sentence{'s' if left_out != 1 else ''} left out (see the notes)"
                      if left_out else ""))
    searched = f" · searched: {escape(answer.query)}" if answer.query else ""
    return (f'{_headline(answer)}{message_html(answer.text)}'
            f'<p class="rag-cited">{_inert_addresses(cited + checked + searched)}</p>')


def _headline(answer: Answer) -> str:
    """Above a fact's sentence (the text, its span in bold), the span alone as a short headline."""
    if answer.kind != "fact" or answer.mode != "extractive" or not answer.span:
        return ""
    return f'<p class="rag-headline">{_inert_addresses(escape(" ".join(answer.span.split())))}</p>'


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
    what the server serves stays what ``rag.serve.webguard`` and Gradio's file rules allow.

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
                    f'alt="Page {quote.page} of {escape(quote.name)}">{marks}</div>')
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
    said = "".join(f'<p class="rag-note">{escape(n)}</p>' for n in notes)
    return (
        f'<div class="rag-viewer" role="dialog" aria-modal="true" '
        f'aria-label="{escape(quote.name)}, {quote.place}">'
        f'<div class="rag-viewer-box"><header>'
        f'<span class="rag-file" title="{escape(quote.name)}">{escape(quote.name)}</span>{ocr}'
        f'<span class="rag-page">{quote.place}</span>'
        f'<button type="button" class="rag-close" data-close aria-label="Close">×</button></header>'
        f'{said}<div class="rag-viewer-body">{"".join(body)}</div></div></div>'
    )


def viewer_error(message: str) -> str:
    """The viewer saying why a source cannot be shown."""
    return (f'<div class="rag-viewer" role="dialog" aria-modal="true" aria-label="Source"><div class="rag-viewer-box">'
            f'<header><span class="rag-file">Source</span><button type="button" class="rag-close" data-close '
            f'aria-label="Close">×</button></header><div class="rag-viewer-body"><div class="rag-failed">'
            f'<p>{escape(message)}</p></div></div></div></div>')


# --------------------------------------------------------------------------------------------
# The library


def render_stats(stats: dict[str, Any]) -> str:
    cells = "".join(f'<div><b>{stats[key]:,}</b><span>{label}</span></div>'
                    for key, label in (("documents", "documents"), ("pages", "pages"), ("chunks", "passages")))
    return f'<div class="rag-stats">{cells}</div>'


def render_documents(docs: Sequence[Document], uploads: Path, shown: Mapping[str, str] | None = None) -> str:
    """The indexed files; those under ``uploads`` (added from the page) are tagged. ``shown`` maps a
    source to the path the page may show for it (``rag.serve.public``: relative to the collection)."""
    if not docs:
        return f'<p class="rag-muted">Nothing is indexed yet. Add {escape(_readable_kinds())} files above.</p>'
    shown = shown or {}
    rows = "".join(
        f'<tr><td class="rag-file" title="{escape(shown.get(d.source, d.name))}">{escape(d.name)}'
        f'{" <span class=rag-tag>upload</span>" if Path(d.source).parent == uploads else ""}</td>'
        f'<td>{d.pages}</td><td>{d.chunks}</td></tr>' for d in docs)
    return (f'<table class="rag-docs"><thead><tr><th>Indexed files</th><th>Pages</th><th>Passages</th></tr>'
            f'</thead><tbody>{rows}</tbody></table>')


def _readable_kinds() -> str:
    names = [fmt.name for fmt in formats()]
    return ", ".join(names[:-1]) + " or " + names[-1]


def render_ingest(stored: Sequence[tuple[str, Path]], failed: Sequence[LoadFailure],
                  report: IngestReport | None, *, collection: str = "", note: str = "") -> str:
    """What an upload did: files added (to ``collection``, when named), files already indexed, each
    failure with its reason, and ``note`` (what stayed in the collection the page showed)."""
    names = {str(path): original for original, path in stored}
    items = []
    into = f" to {escape(collection)}" if collection else ""
    if report is not None:
        added = [names.get(s, Path(s).name) for s in report.added + report.updated]
        same = [names.get(s, Path(s).name) for s in report.unchanged]
        if added:
            items.append(f'<p class="rag-ok">Added {len(added)} file{"s" if len(added) != 1 else ""}{into}: '
                         f'{escape(", ".join(added))}. The index is saved.</p>')
            if note:
                items.append(f'<p class="rag-muted">{escape(note)}</p>')
        if same:
            items.append(f'<p class="rag-muted">Already indexed: {escape(", ".join(same))}.</p>')
    if failed:
        rows = "".join(f'<li><b>{escape(f.source)}</b>: {escape(f.reason)}</li>' for f in failed)
        items.append(f'<div class="rag-failed"><p>Not added:</p><ul>{rows}</ul></div>')
    return "".join(items)


def render_failure(message: object) -> str:
    return f'<div class="rag-failed"><p>{escape(message)}</p></div>'


def render_removed(source: str) -> str:
    return f'<p class="rag-ok">Removed {escape(Path(source).name)}. The index is saved.</p>'

"""PowerPoint ``.pptx`` (python-pptx): one page per slide, cited as "slide 3".

A slide's page holds its title as a heading, its text frames in reading order (the slide's
shape order, as a screen reader reads it; groups opened), its tables as Markdown pipe tables, and its speaker notes under a
"Speaker notes" heading, so that a quote from the notes is seen to be one. The slide count is
read from the zip before python-pptx opens it (it parses every slide on open): a deck over
``MAX_SLIDES`` is refused, not half-read.

Example:
    >>> # read(Path("deck.pptx"), ReadContext()).pages[2].text
    >>> # '# Results\\n\\nRevenue grew 12%\\n\\n## Speaker notes\\n\\nMention the Q4 dip.'
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import LoadError
from rag.ingest.formats.common import MAX_SLIDES, markdown_table, open_zip
from rag.ingest.pdf import clean_text
from rag.ingest.reading import FileRead, ReadContext
from rag.types import Page

NOTES_HEADING = "## Speaker notes"
"""The line that opens a slide's speaker notes in its stored text."""

_SLIDE_PART = re.compile(r"ppt/slides/slide\d+\.xml")


def read(path: Path, context: ReadContext) -> FileRead:
    """The slides of a deck as pages (empty slides keep their number: "slide 7" is the seventh)."""
    import pptx  # python-pptx: imported by the first deck read

    source = str(path)
    with open_zip(path, "PowerPoint deck") as archive:
        slides = sum(1 for name in archive.namelist() if _SLIDE_PART.fullmatch(name))
    if slides > MAX_SLIDES:
        raise LoadError(source, f"the deck has {slides:,} slides, over the limit of {MAX_SLIDES:,}; split it "
                                "to index it")
    try:
        deck = pptx.Presentation(str(path))
        texts = [_slide_text(slide) for slide in deck.slides]
    except Exception as exc:  # noqa: BLE001 - python-pptx and lxml raise many kinds for a damaged file
        raise LoadError(source, f"damaged PowerPoint deck ({type(exc).__name__}: {exc})") from None
    pages = [Page(source=source, page=n, text=clean_text(text)) for n, text in enumerate(texts, 1)]
    if not any(page.text.strip() for page in pages):
        raise LoadError(source, "no text on any slide")
    # Empty slides are stored too (text ""), so that page numbers stay slide numbers.
    return FileRead(pages=pages)


def _slide_text(slide: Any) -> str:  # noqa: ANN401 - python-pptx ships no type hints
    parts: list[str] = []
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None and \
        title_shape.has_text_frame else ""
    if title:
        parts.append("# " + title)
    for shape in _reading_order(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
            if any(c.strip() for row in rows for c in row):
                parts.append(markdown_table(rows))
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            lines = [_paragraph(p) for p in shape.text_frame.paragraphs]
            text = "\n".join(line for line in lines if line)
            if text:
                parts.append(text)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        text = notes.text.strip() if notes is not None else ""
        if text:
            parts.append(NOTES_HEADING + "\n\n" + text)
    return "\n\n".join(parts)


def _paragraph(paragraph: Any) -> str:  # noqa: ANN401
    text = paragraph.text.replace("\v", "\n").strip()  # python-pptx writes a line break as a vertical tab
    # A bulleted body paragraph below the first level reads as a list item of its level.
    return ("  " * (paragraph.level - 1) + "- " + text) if text and paragraph.level > 0 else text


def _reading_order(shapes: Any) -> Iterator[Any]:  # noqa: ANN401
    """Shapes in the slide's own order, the one PowerPoint's screen reader follows (its Selection
    Pane, bottom up); a group's shapes in its place. Sorting by position instead cost 70% of the
    reading time (a placeholder's position is inherited from its layout, looked up per shape)."""
    for shape in shapes:
        if shape.shape_type is not None and int(shape.shape_type) == 6:  # MSO_SHAPE_TYPE.GROUP
            yield from _reading_order(shape.shapes)
        else:
            yield shape

"""Word ``.docx`` (python-docx): paragraphs in order, headings as Markdown headings, list items as
``-`` lines, tables as Markdown pipe tables, the headers and footers once at the end.

A Word file has no pages in it (pagination is the word processor's), so it is cut into sections
at its top heading level: one stored page per section, cited as "section 2", the section's
heading at its head (the chunker gives it to every passage as context).

Example:
    >>> from rag.ingest.reading import ReadContext
    >>> # read(Path("report.docx"), ReadContext()).pages[0].text
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rag.errors import LoadError
from rag.ingest.formats.common import markdown_table, open_zip, require_part
from rag.ingest.pdf import clean_text
from rag.ingest.reading import FileRead, ReadContext
from rag.types import Page

_HEADING = re.compile(r"(?:heading|título|titre|überschrift)\s*(\d)", re.IGNORECASE)


def read(path: Path, context: ReadContext) -> FileRead:
    """The sections of a Word document as pages."""
    import docx  # python-docx: imported by the first Word file read

    source = str(path)
    with open_zip(path, "Word document") as archive:
        require_part(archive, "word/document.xml", source, "a Word document")
    try:
        document = docx.Document(str(path))
        blocks = list(_blocks(document))
        furniture = _headers_and_footers(document)
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - python-docx and lxml raise many kinds for a damaged file
        raise LoadError(source, f"damaged Word document ({type(exc).__name__}: {exc})") from None
    if furniture:
        blocks.append((None, furniture))
    return FileRead(pages=sections_to_pages(source, blocks))


def sections_to_pages(source: str, blocks: list[tuple[int | None, str]]) -> list[Page]:
    """Blocks of text, each with the heading level it cuts at (None: not a cut), as pages cut at the
    top level that occurs; what comes before the first cut (a title, a preface) is the first
    section. Raises
    ``LoadError`` when there is no text at all."""
    levels = [level for level, _ in blocks if level is not None]
    top = min(levels) if levels else None
    sections: list[list[str]] = [[]]
    for level, text in blocks:
        if level is not None and level == top and any(part.strip() for part in sections[-1]):
            sections.append([])
        sections[-1].append(text)
    texts = [clean_text("\n\n".join(parts)) for parts in sections]
    pages = [Page(source=source, page=n, text=text) for n, text in enumerate((t for t in texts if t.strip()), 1)]
    if not pages:
        raise LoadError(source, "no text in the document")
    return pages


def _blocks(document: Any) -> Any:  # noqa: ANN401 - python-docx ships no type hints
    """(heading level or None, Markdown text) of each paragraph and table, in document order."""
    # python-docx loads with the first Word file
    from docx.table import Table

    # Style names by id, found once: python-docx's ``paragraph.style`` searches the styles part
    # for every paragraph, 85% of the reading time of a 500-paragraph document.
    names = {style.style_id: style.name or "" for style in document.styles}
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            table = _table(item)
            if table:
                yield None, table
            continue
        text = item.text.strip()
        if not text:
            continue
        style_id = item._p.style
        style = names.get(style_id, "") if style_id else ""
        level = _heading_level(style)
        if level is not None:
            # A document's title is a heading to read, but no section of its own: it stays with
            # the first section.
            yield (None if style.lower() == "title" else level), "#" * level + " " + " ".join(text.split())
        elif _is_list_item(item, style):
            yield None, "- " + text
        else:
            yield None, text


def _heading_level(style: str) -> int | None:
    if style.lower() == "title":
        return 1
    match = _HEADING.search(style)
    return min(int(match.group(1)), 6) if match else None


def _is_list_item(paragraph: Any, style: str) -> bool:  # noqa: ANN401
    if style.lower().startswith("list"):
        return True
    ppr = paragraph._p.pPr
    return ppr is not None and ppr.numPr is not None


def _table(table: Any) -> str:  # noqa: ANN401
    rows: list[list[str]] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # A merged cell comes back once per grid column it spans: keep its text once.
            cells.append("" if cell._tc is previous else cell.text)
            previous = cell._tc
        if any(c.strip() for c in cells):
            rows.append(cells)
    return markdown_table(rows) if rows else ""


def _headers_and_footers(document: Any) -> str:  # noqa: ANN401
    """The distinct header and footer texts of all sections, once each."""
    seen: dict[str, str] = {}
    for section in document.sections:
        for label, parts in (("Header", (section.header, section.first_page_header, section.even_page_header)),
                             ("Footer", (section.footer, section.first_page_footer, section.even_page_footer))):
            for part in parts:
                if part.is_linked_to_previous:
                    continue
                text = " ".join(" ".join(p.text.split()) for p in part.paragraphs if p.text.strip())
                if text and text not in seen:
                    seen[text] = label
    return "\n".join(f"{label}: {text}" for text, label in seen.items())

"""OpenDocument text ``.odt`` (LibreOffice, Google Docs' export) through the standard library:
``content.xml`` of the zip, read with ElementTree (which fetches no entity and runs nothing).

Headings (``text:h``) become Markdown headings of their outline level, list items ``-`` lines,
tables Markdown pipe tables; the document is cut into sections at its top heading level like a
Word file (``rag.ingest.formats.docx.sections_to_pages``), cited as "section 2". No dependency: odfpy
is maintained but adds nothing that the two dozen lines below do not.

Example:
    >>> # read(Path("minutes.odt"), ReadContext()).pages[0].text
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from rag.errors import LoadError
from rag.ingest.formats.common import markdown_table, open_zip, read_entry, require_part
from rag.ingest.formats.docx import sections_to_pages
from rag.ingest.reading import FileRead, ReadContext

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"


def read(path: Path, context: ReadContext) -> FileRead:
    """The sections of an OpenDocument text as pages."""
    source = str(path)
    with open_zip(path, "OpenDocument text") as archive:
        require_part(archive, "content.xml", source, "an OpenDocument file")
        if any(name == "META-INF/manifest.xml" for name in archive.namelist()) and \
                b"encryption-data" in read_entry(archive, "META-INF/manifest.xml", source):
            raise LoadError(source, "the document is password-protected; save an unprotected copy to index it")
        try:
            root = ET.fromstring(read_entry(archive, "content.xml", source))
        except ET.ParseError as exc:
            raise LoadError(source, f"damaged OpenDocument file: content.xml is not well-formed ({exc})") from None
    body = root.find(f"{_OFFICE}body/{_OFFICE}text")
    if body is None:
        raise LoadError(source, "not an OpenDocument text (no text body; a spreadsheet or drawing?)")
    return FileRead(pages=sections_to_pages(source, list(_blocks(body, in_list=False))))


def _blocks(element: ET.Element, in_list: bool) -> Iterator[tuple[int | None, str]]:
    for child in element:
        tag = child.tag
        if tag == f"{_TEXT}h":
            text = _inline(child)
            if text:
                level = min(int(child.get(f"{_TEXT}outline-level", "1") or 1), 6)
                yield level, "#" * level + " " + text
        elif tag == f"{_TEXT}p":
            text = _inline(child)
            if text:
                yield None, ("- " + text) if in_list else text
        elif tag in (f"{_TEXT}list", f"{_TEXT}list-item", f"{_TEXT}section", f"{_TEXT}list-header"):
            yield from _blocks(child, in_list or tag != f"{_TEXT}section")
        elif tag == f"{_TABLE}table":
            rows = [[" ".join(_inline(p) for p in cell.iter(f"{_TEXT}p")) for cell in row.iter(f"{_TABLE}table-cell")]
                    for row in child.iter(f"{_TABLE}table-row")]
            rows = [row for row in rows if any(cell.strip() for cell in row)]
            if rows:
                yield None, markdown_table(rows)


def _inline(element: ET.Element) -> str:
    """A paragraph's text: spans and links read, ``text:s`` as spaces, tabs and line breaks kept
    as spaces, notes' bodies left out of the sentence they interrupt."""
    parts: list[str] = []

    def walk(node: ET.Element) -> None:
        if node.tag in (f"{_TEXT}note", f"{_OFFICE}annotation"):
            return
        if node.tag == f"{_TEXT}s":
            parts.append(" " * int(node.get(f"{_TEXT}c", "1") or 1))
        elif node.tag in (f"{_TEXT}tab", f"{_TEXT}line-break"):
            parts.append(" ")
        if node.text:
            parts.append(node.text)
        for child in node:
            walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(element)
    return " ".join("".join(parts).split())

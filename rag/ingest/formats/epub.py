"""EPUB books (the standard library's zipfile and XML parser, and ``rag.ingest.load.html_to_text``): one
page per chapter, in the order of the book's spine, cited as "chapter 3".

Nothing in the book runs: scripts and styles are dropped by the HTML reader, no external entity
or DTD is fetched (ElementTree resolves none, and expat refuses entity-expansion bombs), and a
chapter is read only through the zip's checked entries. A book whose chapters are encrypted (DRM)
is refused with that reason; fonts obfuscated by the publisher are not chapters and do not matter.

Example:
    >>> # [p.text.splitlines()[0] for p in read(Path("book.epub"), ReadContext()).pages][:2]
    >>> # ['# Chapter 1. Loomings', '# Chapter 2. The Carpet-Bag']
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from urllib.parse import unquote

from rag.errors import LoadError
from rag.ingest.formats.common import MAX_CHAPTERS, open_zip, read_entry
from rag.ingest.load import decode_text, html_to_text
from rag.ingest.pdf import clean_text
from rag.ingest.reading import FileRead, ReadContext
from rag.types import Page

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_ENC = "{http://www.w3.org/2001/04/xmlenc#}"
_FONT_OBFUSCATION = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")
_HTML_TYPES = ("application/xhtml+xml", "text/html", "application/x-dtbook+xml")


def read(path: Path, context: ReadContext) -> FileRead:
    """The chapters of an EPUB, in spine order, as pages (chapters without text are left out)."""
    source = str(path)
    with open_zip(path, "EPUB book") as archive:
        chapters = _spine(archive, source)
        _refuse_drm(archive, source, set(chapters))
        notes: list[str] = []
        if len(chapters) > MAX_CHAPTERS:
            notes.append(f"chapters {MAX_CHAPTERS + 1}-{len(chapters)} over the limit of {MAX_CHAPTERS:,}")
            chapters = chapters[:MAX_CHAPTERS]
        texts = []
        for name in chapters:
            data = read_entry(archive, name, source)
            try:
                html = data.decode("utf-8")  # XHTML's own default; the binary-data check costs a third of a read
            except UnicodeDecodeError:
                html = decode_text(source, data)
            text = clean_text(html_to_text(html))
            if text.strip():
                texts.append(text)
    if not texts:
        raise LoadError(source, "no text in the book")
    return FileRead(pages=[Page(source=source, page=n, text=t) for n, t in enumerate(texts, 1)], notes=tuple(notes))


def _xml(archive: zipfile.ZipFile, name: str, source: str) -> ET.Element:
    try:
        return ET.fromstring(read_entry(archive, name, source))
    except ET.ParseError as exc:
        raise LoadError(source, f"damaged EPUB: {name} is not well-formed XML ({exc})") from None


def _spine(archive: zipfile.ZipFile, source: str) -> list[str]:
    """The zip names of the book's chapters, in reading order."""
    names = set(archive.namelist())
    if "META-INF/container.xml" not in names:
        raise LoadError(source, "damaged or not an EPUB (no META-INF/container.xml inside)")
    rootfile = _xml(archive, "META-INF/container.xml", source).find(f".//{_CONTAINER}rootfile")
    opf_name = rootfile.get("full-path") if rootfile is not None else None
    if not opf_name or opf_name not in names:
        raise LoadError(source, "damaged EPUB: its package document (.opf) is missing")
    opf = _xml(archive, opf_name, source)
    base = posixpath.dirname(opf_name)
    manifest = {item.get("id"): item for item in opf.iter(f"{_OPF}item")}
    chapters: list[str] = []
    for ref in opf.iter(f"{_OPF}itemref"):
        item = manifest.get(ref.get("idref"))
        if item is None or item.get("media-type") not in _HTML_TYPES or not item.get("href"):
            continue
        name = posixpath.normpath(posixpath.join(base, unquote(item.get("href", "").split("#")[0])))
        if name in names and name not in chapters:
            chapters.append(name)
    if not chapters:
        raise LoadError(source, "damaged EPUB: its spine names no chapter inside the file")
    return chapters


def _refuse_drm(archive: zipfile.ZipFile, source: str, chapters: set[str]) -> None:
    if "META-INF/encryption.xml" not in archive.namelist():
        return
    for data in _xml(archive, "META-INF/encryption.xml", source).iter(f"{_ENC}EncryptedData"):
        method = data.find(f"{_ENC}EncryptionMethod")
        algorithm = method.get("Algorithm", "") if method is not None else ""
        reference = data.find(f".//{_ENC}CipherReference")
        uri = unquote(reference.get("URI", "")) if reference is not None else ""
        if algorithm not in _FONT_OBFUSCATION and uri in chapters:
            raise LoadError(source, "the book is encrypted (DRM); only unprotected EPUB files can be read")

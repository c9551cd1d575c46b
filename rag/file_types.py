"""The table of file types: which module reads each, and what its pages are called.

Each format names its reader as ``"module:function"``, imported on first use, so that listing the
supported types (the upload box, ``find_files``) never imports python-docx, openpyxl or pypdf. A
format's ``unit`` is the word its citations use for a page ("slide 3", "sheet 2", "message 14");
``page_images`` says whether its pages can be drawn as images (PDF only): every other format is
shown as its stored text with the quote marked. A new paged format is one module (in ``rag.ingest.formats``) and
one line in ``FORMATS``, or, from outside the package, one ``register`` call; nothing else in ``rag`` names a
suffix. The table lives below everything so that a citation (``rag.types.Quote.place``) can name its place
without importing a reader.

Example:
    >>> format_for("/docs/Q3.xlsx").name, page_label("/docs/Q3.xlsx", 2)
    ('Excel workbook', 'sheet 2')
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Format:
    """One readable file type.

    Example:
        >>> Format("Word document", (".docx",), "rag.ingest.formats.docx:read", unit="section").unit
        'section'
    """

    name: str
    suffixes: tuple[str, ...]
    reader: str
    """``"module:function"``: the reader, imported when the first file of the type is read."""
    unit: str = "page"
    """What one of its pages is called in a citation."""
    page_images: bool = False
    """Its pages can be drawn (``rag.pageview``); otherwise the viewer shows their text."""
    markdown: bool = False
    """Its pages are stored as Markdown (headings, lists, pipe tables) and shown rendered."""


FORMATS: tuple[Format, ...] = (
    Format("PDF", (".pdf",), "rag.ingest.load:read_pdf_file", page_images=True),
    Format("text", (".txt", ".text"), "rag.ingest.load:read_text_file"),
    Format("Markdown", (".md", ".markdown"), "rag.ingest.load:read_text_file", markdown=True),
    Format("HTML", (".html", ".htm", ".xhtml"), "rag.ingest.load:read_text_file", markdown=True),
    Format("Word document", (".docx",), "rag.ingest.formats.docx:read", unit="section", markdown=True),
    Format("OpenDocument text", (".odt",), "rag.ingest.formats.odt:read", unit="section", markdown=True),
    Format("PowerPoint deck", (".pptx",), "rag.ingest.formats.pptx:read", unit="slide", markdown=True),
    Format("Excel workbook", (".xlsx", ".xlsm"), "rag.ingest.formats.sheets:read_xlsx", unit="sheet", markdown=True),
    Format("CSV table", (".csv", ".tsv"), "rag.ingest.formats.sheets:read_csv", unit="sheet", markdown=True),
    Format("EPUB book", (".epub",), "rag.ingest.formats.epub:read", unit="chapter", markdown=True),
    Format("e-mail", (".eml",), "rag.ingest.formats.email:read_eml", unit="message"),
    Format("mailbox", (".mbox",), "rag.ingest.formats.email:read_mbox", unit="message"),
)

_BY_SUFFIX = {suffix: fmt for fmt in FORMATS for suffix in fmt.suffixes}


def register(fmt: Format) -> None:
    """Read files with ``fmt``'s suffixes by its reader from now on, everywhere: ingest, watch, the
    upload box, the citations' word for a page. A suffix another format had is taken over.

    Example:
        >>> # register(Format("index cards", (".cards",), "mypackage.cards:read", unit="card"))
    """
    for suffix in fmt.suffixes:
        _BY_SUFFIX[suffix.lower()] = fmt


def formats() -> tuple[Format, ...]:
    """Every format read now: the built-in ``FORMATS`` and those registered since, in that order."""
    return tuple(dict.fromkeys(_BY_SUFFIX.values()))


def format_for(path: str | Path) -> Format | None:
    """The format that reads ``path`` (by its suffix, any case), or None."""
    return _BY_SUFFIX.get(Path(path).suffix.lower())


def supported_suffixes() -> frozenset[str]:
    """Every suffix some format reads, with its dot: ``{".pdf", ".docx", ...}``."""
    return frozenset(_BY_SUFFIX)


def page_word(source: str | Path) -> str:
    """What a page of ``source`` is called: "page", "slide", "sheet", "section", "chapter", "message"."""
    fmt = format_for(source)
    return fmt.unit if fmt is not None else "page"


def page_label(source: str | Path, page: int) -> str:
    """``"slide 3"`` for page 3 of a deck, ``"page 3"`` of a PDF: how a citation names the place."""
    return f"{page_word(source)} {page}"


def stored_as_markdown(source: str | Path) -> bool:
    """Whether pages of ``source`` are stored as Markdown (shown rendered; ``*`` in a text file is
    just a character)."""
    fmt = format_for(source)
    return fmt is not None and fmt.markdown


def has_page_images(source: str | Path) -> bool:
    """Whether pages of ``source`` can be drawn as images (PDF); others are shown as their text. A
    PDF attached to an e-mail is shown as its stored text: it exists only inside the message, and
    drawing it would mean decoding it from a file that may have changed since."""
    fmt = format_for(source)
    return fmt is not None and fmt.page_images and attached_to(source) is None


_ATTACHED = re.compile(r"^(?P<parent>.+)#(?:message-(?P<message>\d+)/)?attachment-(?P<number>\d+)/(?P<name>[^/\\]+)$")


def attachment_source(container: str | Path, number: int, name: str, message: int | None = None) -> str:
    """The source of a document read from an e-mail attachment: the e-mail file's path, then
    ``#attachment-N/NAME`` (``#message-M/attachment-N/NAME`` in a mailbox). It ends in the
    attachment's own name, so its suffix picks its format and its word for a page, and a filter by
    file name finds it; it starts with the e-mail's path, so the ingest removes or replaces it with
    the e-mail (``attached_to``). N counts the message's attachments from 1, so two attachments of
    one name stay two documents.

    Example:
        >>> attachment_source("/mail/invoice.eml", 1, "report.pdf")
        '/mail/invoice.eml#attachment-1/report.pdf'
        >>> attached_to(attachment_source("/mail/box.mbox", 2, "a/b.docx", message=14))
        ('/mail/box.mbox', 14, 'b.docx')
    """
    last = re.split(r"[/\\]", str(name))[-1]  # a name that brings a folder ("../x.pdf") keeps its own part
    clean = " ".join(re.sub(r"[\x00-\x1f]+", " ", last).split()) or "attachment"
    where = f"message-{message}/attachment-{number}" if message is not None else f"attachment-{number}"
    return f"{container}#{where}/{clean}"


def attached_to(source: str | Path) -> tuple[str, int | None, str] | None:
    """(the e-mail file, the message's number in a mailbox or None, the attachment's name) of an
    attachment's source (``attachment_source``); None for any other source."""
    found = _ATTACHED.match(str(source))
    if found is None:
        return None
    message = found.group("message")
    return found.group("parent"), int(message) if message else None, found.group("name")


def container_of(source: str | Path) -> str:
    """The file on disk a source was read from: the e-mail of an attachment, else the source itself."""
    found = attached_to(source)
    return found[0] if found is not None else str(source)


def display_name(source: str | Path) -> str:
    """A source's name as citations show it: the file's name, or for an attachment
    "report.pdf (attached to invoice.eml)" ("... to message 14 of box.mbox" in a mailbox).

    Example:
        >>> display_name("/mail/invoice.eml#attachment-1/report.pdf")
        'report.pdf (attached to invoice.eml)'
    """
    found = attached_to(source)
    if found is None:
        return Path(source).name
    parent, message, name = found
    where = f"message {message} of {Path(parent).name}" if message is not None else Path(parent).name
    return f"{name} (attached to {where})"


def skipped_summary(skipped: Iterable[str | Path]) -> str:
    """One line on the files of types not read: ``"3 files of types not read (.doc 2, .png)"``, or "".

    Example:
        >>> skipped_summary([Path("a.doc"), Path("b.doc"), Path("c.png")])
        'skipped 3 files of types not read (.doc 2, .png)'
    """
    counts: dict[str, int] = {}
    for path in skipped:
        suffix = Path(path).suffix.lower() or "(no suffix)"
        counts[suffix] = counts.get(suffix, 0) + 1
    total = sum(counts.values())
    if not total:
        return ""
    kinds = ", ".join(f"{s} {n}" if n > 1 else s for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"skipped {total} file{'s' if total != 1 else ''} of types not read ({kinds})"

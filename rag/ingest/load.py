"""Files -> pages. Which module reads a file is chosen by its suffix in ``rag.file_types``:
PDF (``rag.ingest.pdf``: one Page per PDF page), plain text, Markdown and HTML here, Office documents,
spreadsheets, EPUB and e-mail in ``rag.ingest.formats``.

A file that cannot be read raises ``LoadError`` naming the file and the reason in words a user
understands; ``find_files`` and the ingest loop turn that into a reported failure and go on.
"""

from __future__ import annotations

import codecs
import fnmatch
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import LoadError
from rag.file_types import format_for, supported_suffixes
from rag.ingest.pdf import PDF_TIME_LIMIT, OcrOptions, read_pdf
from rag.ingest.pdf import clean_text as _clean
from rag.ingest.reading import FileRead, ReadContext, read_with
from rag.settings import Settings
from rag.types import LoadFailure, Page

if TYPE_CHECKING:
    from rag.settings import Settings

log = logging.getLogger(__name__)

PDF_SUFFIXES = frozenset({".pdf"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})

# Skipped when walking a folder: our own index files, VCS folders and the like.
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules", ".rag-index"})


def find_files(paths: Iterable[str | Path], glob: str = "**/*", skipped: list[Path] | None = None
               ) -> tuple[list[Path], list[LoadFailure]]:
    """Expand files and folders (recursively, filtered by ``glob``) into supported files.

    A file named explicitly with an unsupported type, a path that does not exist, anything that is
    not a regular file (a FIFO, a device, a socket) and a folder that cannot be read are failures;
    unsupported files met while walking a folder are not failures (a folder holds many things) but
    are appended to ``skipped`` when it is given, so that the user hears of them
    (``rag.file_types.skipped_summary``). Nothing is opened here: a FIFO or ``/dev/zero`` is refused from its
    ``stat`` alone.

    Example:
        >>> files, failures = find_files(["docs/"])
    """
    found: dict[Path, None] = {}
    failures: list[LoadFailure] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            failures.append(LoadFailure(str(path), "no such file or folder"))
        elif path.is_dir():
            for file in _walk(path, glob, failures, skipped):
                found.setdefault(file.resolve(), None)
        elif path.suffix.lower() not in supported_suffixes():
            failures.append(LoadFailure(str(path.resolve()), f"unsupported file type {path.suffix or '(none)'!r}; "
                                        f"supported: {', '.join(sorted(supported_suffixes()))}"))
        elif (kind := special_file_kind(path)) is not None:
            # Named as the user named it: for a link, the target (/dev/zero) says less.
            failures.append(LoadFailure(str(path.absolute()), f"not a regular file ({kind}); only regular files "
                                                              "are read"))
        else:
            found.setdefault(path.resolve(), None)
    return sorted(found), failures


def special_file_kind(path: Path) -> str | None:
    """What ``path`` (followed through links) is when it is not a regular file, else None.

    Reading a FIFO blocks until a writer comes, and ``/dev/zero`` or ``/dev/urandom`` never end,
    so these are refused from ``stat`` before anything opens them.

    Example:
        >>> special_file_kind(Path("/dev/zero"))
        'a character device'
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # reported by whoever opens it, with the OS's reason
    if stat.S_ISREG(mode):
        return None
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "not a regular file"


def _walk(folder: Path, glob: str, failures: list[LoadFailure], skipped: list[Path] | None = None
          ) -> Iterator[Path]:
    """Supported regular files under ``folder``; links to folders are not followed (no loops).

    A sub-folder that cannot be listed is reported (its files would otherwise vanish from the
    index without a word). A link to a file outside ``folder`` is not followed: the index would
    hold the target under its own path, outside every folder ingested, so deleting the link
    could never remove it; such a file is indexed by naming it.
    """
    pattern = glob or "**/*"
    root = folder.resolve()

    def unreadable(exc: OSError) -> None:
        where = exc.filename or folder
        failures.append(LoadFailure(str(Path(where).resolve()), f"cannot read the folder ({exc.strerror or exc}); "
                                                                "its files were not indexed"))

    for top, dirs, names in os.walk(folder, onerror=unreadable, followlinks=False):
        base = Path(top)
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(names):
            path = base / name
            if name.startswith(".") or is_temporary(name):
                continue
            rel = path.relative_to(folder)
            if not _glob_match(rel.as_posix(), pattern) or special_file_kind(path) is not None:
                continue
            if path.suffix.lower() not in supported_suffixes():
                if skipped is not None:
                    skipped.append(path)
                continue
            if not path.is_file():
                continue  # a dangling link
            if path.is_symlink():
                target = path.resolve()
                if target != root and root not in target.parents:
                    log.info("%s: a link to %s, outside %s: not followed", path, target, folder)
                    continue
            yield path


def is_temporary(name: str) -> bool:
    """An editor's lock or temporary file, never a document: Office's ``~$report.docx``,
    LibreOffice's ``.~lock.report.odt#``, vim's ``.swp``, Emacs's ``#report.md#``, partial
    downloads and the ``*.tmp`` many programs save through.

    Example:
        >>> is_temporary("~$budget.xlsx"), is_temporary("budget.xlsx")
        (True, False)
    """
    lower = name.lower()
    return (lower.startswith(("~$", ".~lock.", "~wrl")) or (lower.startswith("#") and lower.endswith("#"))
            or lower.endswith(_TEMPORARY_ENDINGS))


_TEMPORARY_ENDINGS = (".tmp", ".temp", ".swp", ".swx", ".swo", "~", ".part", ".crdownload", ".download", ".partial",
                      ".bak", ".lock", ".lck")


def _glob_match(rel: str, pattern: str) -> bool:
    # "**/" also matches zero folders, as users expect from shells: "**/*.pdf" matches "a.pdf".
    if pattern.startswith("**/") and fnmatch.fnmatch(rel, pattern[3:]):
        return True
    return fnmatch.fnmatch(rel, pattern)


def load_file(path: str | Path, max_bytes: int | None = None, time_limit: float = PDF_TIME_LIMIT, *,
              settings: Settings | None = None, progress: Callable[[int, int], None] | None = None) -> list[Page]:
    """Read one file into pages (1-based page numbers). Raises ``LoadError`` with the reason.

    ``time_limit`` bounds the seconds spent reading one PDF (see ``rag.ingest.pdf.read_pdf``);
    ``settings`` chooses the PDF extractor and OCR (``Settings()`` when not given);
    ``progress(done, total)`` hears of pages read by OCR.

    Example:
        >>> pages = load_file("docs/guide.md")
        >>> pages[0].page
        1
    """
    return read_file(path, max_bytes, time_limit, settings=settings, progress=progress).pages


def read_file(path: str | Path, max_bytes: int | None = None, time_limit: float = PDF_TIME_LIMIT, *,
              settings: Settings | None = None, progress: Callable[[int, int], None] | None = None) -> FileRead:
    """``load_file``, with the notes on what was left unread (pages over the OCR budget)."""
    path = Path(path).resolve()
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in supported_suffixes():
        raise LoadError(source, f"unsupported file type {suffix or '(none)'!r}")
    kind = special_file_kind(path)
    if kind is not None:
        raise LoadError(source, f"not a regular file ({kind}); only regular files are read")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(source, f"cannot read the file ({exc.strerror or exc})") from None
    if size == 0:
        raise LoadError(source, "the file is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise LoadError(source, f"the file is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit "
                                "(raise max_file_bytes to index it)")
    fmt = format_for(path)
    if fmt is None:  # unreachable: the suffix was checked above
        raise LoadError(source, f"unsupported file type {suffix or '(none)'!r}")
    return read_with(fmt, path, ReadContext(settings=settings, time_limit=time_limit, progress=progress))


def read_pdf_file(path: Path, context: ReadContext) -> FileRead:
    """A PDF's pages (``rag.ingest.pdf.read_pdf``), with the extractor and OCR that the settings choose."""
    settings = context.settings
    if settings is None:
        settings = Settings()
    read = read_pdf(path, context.time_limit, settings.pdf_extractor,
                    OcrOptions(enabled=settings.ocr, page_limit=settings.ocr_page_limit), context.progress)
    return FileRead(pages=read.pages, notes=read.notes)


def read_text_file(path: Path, context: ReadContext) -> FileRead:
    """A text, Markdown or HTML file as one page (HTML as Markdown-like text: headings, lists, tables)."""
    source = str(path)
    text = decode_text(source, _read_bytes(path))
    if path.suffix.lower() in HTML_SUFFIXES:
        text = html_to_text(text)
    pages = [Page(source=source, page=1, text=_clean(text))]
    if not any(page.text.strip() for page in pages):
        raise LoadError(source, "no text in the file")
    return FileRead(pages=pages)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoadError(str(path), f"cannot read the file ({exc.strerror or exc})") from None


def decode_text(source: str, data: bytes) -> str:
    """UTF-8 (with or without BOM) and UTF-16/32 with a BOM; refuse binary data.

    Latin-1 and Windows-1252 text is accepted only when it looks like text, because both decode
    any byte sequence and would otherwise index binary junk as garbage.
    """
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise LoadError(source, f"invalid {encoding} text at byte {exc.start}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        legacy = _decode_legacy(data)
        if legacy is None:
            raise LoadError(source, f"not UTF-8 text (invalid byte at offset {exc.start}) and not recognisable "
                                    "as Latin-1 or UTF-16 text: binary data?") from None
        return legacy
    if _looks_binary(text):
        raise LoadError(source, "binary data, not text")
    return text


def _decode_legacy(data: bytes) -> str | None:
    sample = data[:65536]
    # UTF-16 without a BOM: every other byte is NUL for Latin script.
    if len(sample) >= 4 and sample.count(0) >= len(sample) * 0.3:
        for encoding in ("utf-16-le", "utf-16-be"):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            if not _looks_binary(text):
                return text
        return None
    text = data.decode("cp1252", errors="replace")
    return None if _looks_binary(text) else text


def _looks_binary(text: str) -> bool:
    sample = text[:65536]
    if not sample:
        return False
    control = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or ch == "\ufffd")
    return control / len(sample) > 0.05


class _TextExtractor(HTMLParser):
    """Visible text of an HTML document; iterative, so deep nesting cannot overflow a stack."""

    _INVISIBLE = frozenset({"script", "style", "noscript", "template", "head", "title", "svg", "iframe", "object"})
    _BLOCK = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
                        "footer", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr", "dd", "dt",
                        "main", "nav", "aside", "figure", "figcaption", "form", "td", "th"})
    _HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._pre = 0
        self._tables = 0
        self._row: list[str] | None = None
        """Cells of the table row being read: tables come out as Markdown tables, which the
        chunker cuts by rows with the header repeated (a nested table's text joins its cell)."""
        self._rows = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._tables += 1
            if self._tables == 1:
                self._rows = 0
                self.parts.append("\n\n")
                return
        if self._tables and not self._hidden and tag in self._BLOCK:
            if self._tables == 1 and tag == "tr":
                self._end_row()
                self._row = []
            elif self._tables == 1 and tag in ("td", "th") and self._row is not None:
                self._end_cell()
                self._cell = []
            elif self._cell is not None:
                self._cell.append(" ")
            return
        if tag in self._INVISIBLE:
            self._hidden += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre") else "\n")
            # Headings and list items written as Markdown: the chunker then starts a passage at
            # a heading, and the answerer reads a heading as the topic of the sentence below it.
            if tag in self._HEADINGS and not self._hidden:
                self.parts.append("#" * int(tag[1]) + " ")
            elif tag == "li" and not self._hidden:
                self.parts.append("- ")
        if tag == "pre":
            self._pre += 1

    def _end_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()).replace("|", "\\|"))
        self._cell = None

    def _end_row(self) -> None:
        self._end_cell()
        if self._row:
            self.parts.append("| " + " | ".join(self._row) + " |\n")
            if self._rows == 0:
                # The first row heads the table: a Markdown table needs the rule line under it.
                self.parts.append("|" + "---|" * len(self._row) + "\n")
            self._rows += 1
        self._row = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._tables:
            self._tables -= 1
            if self._tables == 0:
                self._end_row()
                self.parts.append("\n")
                return
        if self._tables and not self._hidden and tag in self._BLOCK:
            if self._tables == 1 and tag == "tr":
                self._end_row()
            elif self._tables == 1 and tag in ("td", "th"):
                self._end_cell()
            return
        if tag in self._INVISIBLE and self._hidden:
            self._hidden -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre") else "\n")
        if tag == "pre" and self._pre:
            self._pre -= 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._tables:
            if self._cell is not None:
                self._cell.append(data)
            elif data.strip():
                self.parts.append(" ".join(data.split()) + "\n")  # a caption: a line of its own
            return
        self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, paragraphs separated by blank lines.

    Example:
        >>> html_to_text("<p>Hi <b>there</b></p><script>x()</script>")
        'Hi there'
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    # A heading or list item with no text leaves its marker alone on a line: drop it.
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join("" if re.fullmatch(r"#{1,6}|-", line) else line for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()

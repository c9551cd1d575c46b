"""Files -> pages. PDF (pypdf, one Page per PDF page), plain text, Markdown and HTML.

A file that cannot be read raises ``LoadError`` naming the file and the reason in words a user
understands; ``find_files`` and the ingest loop turn that into a reported failure and go on.
"""

from __future__ import annotations

import codecs
import contextlib
import fnmatch
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path

from .errors import LoadError
from .types import LoadFailure, Page

log = logging.getLogger(__name__)

PDF_SUFFIXES = frozenset({".pdf"})
TEXT_SUFFIXES = frozenset({".txt", ".text"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
SUPPORTED_SUFFIXES = PDF_SUFFIXES | TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES

PDF_TIME_LIMIT = 600.0
"""Seconds one PDF may take to read; a 2,000-page text PDF takes about 1.3 s here."""

# Skipped when walking a folder: our own index files, VCS folders and the like.
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules", ".rag-index"})


def find_files(paths: Iterable[str | Path], glob: str = "**/*") -> tuple[list[Path], list[LoadFailure]]:
    """Expand files and folders (recursively, filtered by ``glob``) into supported files.

    A file named explicitly with an unsupported type, a path that does not exist, anything that is
    not a regular file (a FIFO, a device, a socket) and a folder that cannot be read are failures;
    unsupported files met while walking a folder are skipped silently (a folder holds many things).
    Nothing is opened here: a FIFO or ``/dev/zero`` is refused from its ``stat`` alone.

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
            for file in _walk(path, glob, failures):
                found.setdefault(file.resolve(), None)
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            failures.append(LoadFailure(str(path.resolve()), f"unsupported file type {path.suffix or '(none)'!r}; "
                                        f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"))
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


def _walk(folder: Path, glob: str, failures: list[LoadFailure]) -> Iterator[Path]:
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
            if name.startswith(".") or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            rel = path.relative_to(folder)
            if not _glob_match(rel.as_posix(), pattern) or special_file_kind(path) is not None:
                continue
            if not path.is_file():
                continue  # a dangling link
            if path.is_symlink():
                target = path.resolve()
                if target != root and root not in target.parents:
                    log.info("%s: a link to %s, outside %s: not followed", path, target, folder)
                    continue
            yield path


def _glob_match(rel: str, pattern: str) -> bool:
    # "**/" also matches zero folders, as users expect from shells: "**/*.pdf" matches "a.pdf".
    if pattern.startswith("**/") and fnmatch.fnmatch(rel, pattern[3:]):
        return True
    return fnmatch.fnmatch(rel, pattern)


def load_file(path: str | Path, max_bytes: int | None = None, time_limit: float = PDF_TIME_LIMIT) -> list[Page]:
    """Read one file into pages (1-based page numbers). Raises ``LoadError`` with the reason.

    ``time_limit`` bounds the seconds spent extracting the text of one PDF; it is checked between
    pages, so it stops a PDF of very many slow pages, not one page that never ends (pypdf's own
    limits on stream sizes and nesting cover those).

    Example:
        >>> pages = load_file("docs/guide.md")
        >>> pages[0].page
        1
    """
    path = Path(path).resolve()
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
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
    if suffix in PDF_SUFFIXES:
        with _pypdf_log().capture(source) as pypdf_said:
            pages = _load_pdf(path, time_limit)
        if pypdf_said.read_error is not None and not any(page.text.strip() for page in pages):
            # Not "image-only": pypdf skipped parts it could not read, and those held the text.
            raise LoadError(source, f"the PDF is damaged and no text could be read from it (pypdf: "
                                    f"{pypdf_said.read_error})")
    else:
        text = _decode(source, _read_bytes(path))
        if suffix in HTML_SUFFIXES:
            text = html_to_text(text)
        pages = [Page(source=source, page=1, text=_clean(text))]
    if not any(page.text.strip() for page in pages):
        if suffix in PDF_SUFFIXES:
            raise LoadError(source, f"no extractable text in {len(pages)} page(s): image-only or scanned PDF "
                                    "(OCR is not supported)")
        raise LoadError(source, "no text in the file")
    return pages


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoadError(str(path), f"cannot read the file ({exc.strerror or exc})") from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    # NUL characters come out of some PDFs and break downstream tools; nothing readable is lost.
    text = text.replace("\x00", "")
    # A PDF's ToUnicode map can name UTF-16 halves one at a time: pairs are joined here, and a
    # lone half, which no tokenizer, SQLite or JSON accepts, becomes U+FFFD.
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _decode(source: str, data: bytes) -> str:
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
        text = _decode_legacy(data)
        if text is None:
            raise LoadError(source, f"not UTF-8 text (invalid byte at offset {exc.start}) and not recognisable "
                                    "as Latin-1 or UTF-16 text: binary data?") from None
        return text
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


def _load_pdf(path: Path, time_limit: float) -> list[Page]:
    source = str(path)
    # Imported here so text-only use never pays for pypdf's import.
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    deadline = time.monotonic() + time_limit
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            # Many PDFs are encrypted only to restrict printing or copying: the empty user
            # password opens them, and their text is as readable as any other PDF's.
            try:
                opened = reader.decrypt("")
            except (FileNotDecryptedError, NotImplementedError) as exc:
                raise LoadError(source, f"the PDF is encrypted and cannot be opened ({_short(exc)})") from None
            if not opened:
                raise LoadError(source, "the PDF is encrypted with a password (it cannot be opened without it)")
        count = len(reader.pages)
    except LoadError:
        raise
    except FileNotDecryptedError:
        raise LoadError(source, "the PDF is encrypted with a password (it cannot be opened without it)") from None
    except DependencyError:
        raise LoadError(source, _AES_REASON) from None
    except MemoryError:
        raise  # the file is not damaged; the caller reports it as too large
    except Exception as exc:  # noqa: BLE001 - a parser fed hostile bytes can raise anything
        raise LoadError(source, _unreadable_reason(path, exc)) from None
    if count == 0:
        raise LoadError(source, "the PDF has no pages")
    pages = []
    failed: list[str] = []
    # Pages drawn by the same content stream with the same resources have the same text: an
    # 80 KB PDF whose 50 pages share one 70 MB stream took 275 s of CPU, parsing it 50 times.
    same_text: dict[tuple[object, ...], str] = {}
    for number in range(1, count + 1):
        if time.monotonic() > deadline:
            raise LoadError(source, f"reading took longer than {time_limit:.0f} s (stopped at page {number} of "
                                    f"{count}): the PDF is too large or too complex")
        try:
            page = reader.pages[number - 1]
            key = _same_text_key(page)
            if key is not None and key in same_text:
                text = same_text[key]
            else:
                text = page.extract_text() or ""
                if key is not None:
                    same_text[key] = text
        except DependencyError:
            raise LoadError(source, _AES_REASON) from None
        except Exception as exc:  # noqa: BLE001 - one bad page must not lose the other pages
            log.warning("%s: page %d: text extraction failed (%s); the page is indexed empty",
                        source, number, _short(exc))
            failed.append(f"page {number}: {type(exc).__name__}: {_short(exc)}")
            text = ""
        pages.append(Page(source=source, page=number, text=_clean(text)))
    if failed and not any(page.text.strip() for page in pages):
        raise LoadError(source, f"text extraction failed on {len(failed)} of {count} page(s) ({failed[0]})")
    return pages


class _PypdfLog(logging.Handler):
    """pypdf's warnings, each passed on at most ``REPEATS`` times per file, and counted.

    A damaged PDF can make pypdf warn once per object it meets: 50,000 nested dictionaries wrote
    16,504 identical lines to the server's log. Installed once on the ``pypdf`` logger (which then
    stops propagating), it forwards what it lets through to the root logger's handlers, so the
    application's logging set-up still decides where the lines go.
    """

    REPEATS = 3
    MOST = 10
    """Lines per file at most, whatever they say."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.local = threading.local()
        self.forward_level = logging.NOTSET
        """Records below this are counted and read here but not passed on (the level an
        application set on the ``pypdf`` logger to quiet it, as the CLI does)."""

    def emit(self, record: logging.LogRecord) -> None:
        capture: _Capture | None = getattr(self.local, "capture", None)
        if capture is not None:
            message = record.getMessage()
            # "at byte 0x7601", "object 12 0": the same warning about the next object is a repeat.
            kind = _NUMBERS.sub("#", message)
            capture.counts[kind] = seen = capture.counts.get(kind, 0) + 1
            if capture.read_error is None and _READ_ERROR.search(message):
                capture.read_error = message[:200]
            capture.total += 1
            if seen > self.REPEATS or capture.total - capture.suppressed > self.MOST:
                capture.suppressed += 1
                return
        if record.levelno >= self.forward_level:
            logging.getLogger().handle(record)

    @contextlib.contextmanager
    def capture(self, source: str) -> Iterator[_Capture]:
        outer = getattr(self.local, "capture", None)
        self.local.capture = capture = _Capture()
        try:
            yield capture
        finally:
            self.local.capture = outer
            if capture.suppressed and self.forward_level <= logging.WARNING:
                log.warning("%s: %d more repeats of pypdf's warnings above were not logged (%d warnings in all)",
                            source, capture.suppressed, capture.total)


class _Capture:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.suppressed = 0
        self.total = 0
        self.read_error: str | None = None


# pypdf logs what it skipped while reading a damaged object ("PdfReadError('Error reading PDF
# file.')", "RecursionError ..."); a page read that way is empty because it is damaged.
_READ_ERROR = re.compile(r"\b\w*Error\b")
_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")


def _pypdf_log() -> _PypdfLog:
    logger = logging.getLogger("pypdf")
    handler = next((h for h in logger.handlers if isinstance(h, _PypdfLog)), None)
    if handler is None:
        handler = _PypdfLog()
        logger.addHandler(handler)
        logger.propagate = False
    if logger.level > logging.WARNING:
        # Quieting the logger must not blind the damage check, which reads pypdf's warnings:
        # the level becomes what is passed on, and the warnings still reach this handler.
        handler.forward_level = logger.level
        logger.setLevel(logging.WARNING)
    elif logger.level < logging.WARNING:
        handler.forward_level = logging.NOTSET  # made louder again
    return handler


def _same_text_key(page: object) -> tuple[object, ...] | None:
    """What a page's extracted text depends on, when other pages can share it; else None.

    The content streams and the resources must be the very same objects of the file (indirect
    references), or resources written out identically; a page's own inline content has no key.
    """
    from pypdf.generic import ArrayObject, IndirectObject

    def ref(value: object) -> tuple[int, int] | None:
        return (value.idnum, value.generation) if isinstance(value, IndirectObject) else None

    contents = page.raw_get("/Contents") if "/Contents" in page else None  # type: ignore[attr-defined]
    if isinstance(contents, ArrayObject):
        streams = tuple(ref(item) for item in contents)
    else:
        streams = (ref(contents),)
    if not streams or None in streams:
        return None
    resources = page.raw_get("/Resources") if "/Resources" in page else None  # type: ignore[attr-defined]
    if resources is None or isinstance(resources, IndirectObject):
        shared = ref(resources)
    else:
        text = repr(resources)
        if len(text) > 100_000:
            return None  # not worth comparing
        shared = text
    return (streams, shared, repr(page.get("/Rotate", 0)))  # type: ignore[attr-defined]


_AES_REASON = ("the PDF is AES-encrypted and reading it needs the 'cryptography' package "
               "(pip install cryptography)")


def _unreadable_reason(path: Path, exc: Exception) -> str:
    """Why pypdf could not open a file, in the words most useful to its owner."""
    detail = f"{type(exc).__name__}: {_short(exc)}"
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
            f.seek(max(0, path.stat().st_size - 1024))
            tail = f.read()
    except OSError as err:
        return f"cannot read the file ({err.strerror or err})"
    if b"%PDF-" not in head:
        return f"not a PDF file (it does not start with %PDF-) ({detail})"
    if b"%%EOF" not in tail:
        return f"the PDF is incomplete: it ends before its end-of-file marker (a truncated copy?) ({detail})"
    return f"the PDF is damaged and cannot be read ({detail})"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


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

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
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

    def handle_endtag(self, tag: str) -> None:
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

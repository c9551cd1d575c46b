"""What pypdf says about a PDF: its warnings, passed on a few times each and read for damage, and
why a file it cannot open is unreadable, in words for the file's owner.

pypdf does not raise on most damage: it logs a warning and goes on, and a page read that way
comes out empty. ``rag.ingest.pdf`` reads each file inside ``pypdf_log().capture(source)``; the capture
holds the first warning that names an error, which tells a damaged PDF from an image-only one.

Example:
    >>> with pypdf_log().capture("/d/report.pdf") as said:
    ...     text = reader.pages[0].extract_text()
    >>> said.read_error       # None, or e.g. "PdfReadError('Error reading PDF file.')"
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("rag.ingest.pdf")
"""The reader's logger (not this module's name): the lines about a PDF stay under ``rag.ingest.pdf``."""


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


def pypdf_log() -> _PypdfLog:
    """The handler on the ``pypdf`` logger, installed on first use; its ``capture(source)`` reads a file's warnings."""
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


AES_REASON = ("the PDF is AES-encrypted and reading it needs the 'cryptography' package "
              "(pip install cryptography)")


def unreadable_reason(path: Path, exc: Exception) -> str:
    """Why pypdf could not open a file, in the words most useful to its owner."""
    detail = f"{type(exc).__name__}: {error_line(exc)}"
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


def error_line(exc: BaseException) -> str:
    """The first line of what ``exc`` says (at most 200 characters), or its type's name."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]

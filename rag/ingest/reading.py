"""What a file reader is given and gives back, and the one call that picks the reader by file type.

Every reader (``rag.ingest.load`` for PDF and text, ``rag.ingest.formats.*`` for the others) is a
``Reader``: a path and a ``ReadContext`` in, a ``FileRead`` out. ``read_with`` imports a format's
reader on first use, so that listing the supported types never imports python-docx or pypdf.

Example:
    >>> from rag.file_types import format_for
    >>> # read_with(format_for("deck.pptx"), Path("deck.pptx"), ReadContext()).pages[0].text
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.file_types import Format
from rag.settings import Settings
from rag.types import Page


@dataclass(frozen=True)
class Attached:
    """A document that came inside a file (an e-mail's attachment), indexed as a document of its
    own: its source (``rag.file_types.attachment_source``), its pages, and the sha256 and size of
    its bytes. It is written, replaced and removed with the file it came in."""

    source: str
    pages: list[Page]
    sha256: str
    size: int


@dataclass(frozen=True)
class FileRead:
    """One file's pages, notes for the user about what was left out (OCR budget, caps), and the
    documents that came inside it (an e-mail's attachments)."""

    pages: list[Page]
    notes: tuple[str, ...] = ()
    attached: tuple[Attached, ...] = ()


@dataclass(frozen=True)
class ReadContext:
    """What a reader may need besides the path: the settings (PDF extractor, OCR), the time a PDF
    may take, and whom to tell of OCR progress."""

    settings: Settings | None = None
    time_limit: float = 600.0
    progress: Callable[[int, int], None] | None = None


Reader = Callable[[Path, ReadContext], FileRead]


def read_with(fmt: Format, path: Path, context: ReadContext) -> FileRead:
    """Read ``path`` with ``fmt``'s reader (``"module:function"``, imported on first use)."""
    module, _, function = fmt.reader.partition(":")
    reader: Reader = getattr(importlib.import_module(module), function)
    return reader(path, context)

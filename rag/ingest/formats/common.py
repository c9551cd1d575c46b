"""What the readers share: their limits, the zip-bomb check, Markdown pipe tables and cell text.

The limits bound what one hostile file can cost, like the PDF ones (``rag.ingest.pdf``): a zip's
entries and uncompressed size are checked from its central directory before anything is
decompressed (``zipfile`` stops at each entry's declared size and fails its CRC when the data
lies, so declared sizes hold), and slides, sheets, rows and messages are counted as they are read.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Sequence
from pathlib import Path

from rag.errors import LoadError

MAX_ZIP_ENTRIES = 50_000
"""Entries in one .docx/.pptx/.xlsx/.epub/.odt (a 500-slide deck has about 1,500)."""
MAX_ZIP_BYTES = 1 << 30
"""Declared uncompressed bytes of one zip-based file (1 GiB; a 100k-row sheet is about 30 MB)."""
MAX_ENTRY_BYTES = 256 << 20
"""Declared uncompressed bytes of one entry that a reader loads whole (an XML part, a chapter)."""
MAX_SLIDES = 2_000
MAX_SHEETS = 200
MAX_ROWS = 500_000
"""Rows read from one workbook or CSV, all sheets together."""
MAX_COLUMNS = 1_000
MAX_EMPTY_ROWS = 10_000
"""Empty rows in a row after which the rest of a sheet is taken to be empty (a sheet formatted to
row 1,048,576 has a million empty rows and nothing else)."""
MAX_MESSAGES = 50_000
MAX_ATTACHMENT_BYTES = 16_000_000
"""Decoded bytes of one e-mail attachment that is read as a document."""
MAX_CHAPTERS = 5_000

_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def require_part(archive: zipfile.ZipFile, part: str, source: str, what: str) -> None:
    """``LoadError`` unless the zip holds ``part``: a file named like a Word document (``what``:
    "a Word document") that lacks its main part is damaged, or something else renamed."""
    if part not in archive.namelist():
        raise LoadError(source, f"damaged or not {what} (no {part} inside)")


def open_zip(path: Path, kind: str) -> zipfile.ZipFile:
    """``path`` opened as a zip, after its entry count and declared sizes are checked; raises
    ``LoadError`` naming the reason (damaged, password-protected, over a limit).

    Example:
        >>> with open_zip(Path("deck.pptx"), "PowerPoint deck") as z:
        ...     names = z.namelist()
    """
    source = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise LoadError(source, _not_a_zip(path, kind)) from None
    except OSError as exc:
        raise LoadError(source, f"cannot read the file ({exc.strerror or exc})") from None
    try:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise LoadError(source, f"the {kind} holds {len(infos):,} zip entries, over the limit of "
                                    f"{MAX_ZIP_ENTRIES:,} (a zip bomb?)")
        total = sum(info.file_size for info in infos)
        if total > MAX_ZIP_BYTES:
            raise LoadError(source, f"the {kind} would unpack to {total / 1e9:.1f} GB, over the limit of "
                                    f"{MAX_ZIP_BYTES / 1e9:.1f} GB (a zip bomb?)")
        big = max(infos, key=lambda info: info.file_size, default=None)
        if big is not None and big.file_size > MAX_ENTRY_BYTES:
            raise LoadError(source, f"its part {big.filename} would unpack to {big.file_size / 1e6:,.0f} MB, over "
                                    f"the limit of {MAX_ENTRY_BYTES / 1e6:,.0f} MB (a zip bomb?)")
        if any(info.flag_bits & 0x1 for info in infos):
            raise LoadError(source, f"the {kind} is password-protected (encrypted zip entries); save an "
                                    "unprotected copy to index it")
    except BaseException:
        archive.close()
        raise
    return archive


def _not_a_zip(path: Path, kind: str) -> str:
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if head == _CFB_MAGIC:
                f.seek(0)
                data = f.read(4 << 20)
                if "EncryptionInfo".encode("utf-16-le") in data:
                    return f"the {kind} is password-protected (encrypted); save an unprotected copy to index it"
                return (f"an old binary Office file (OLE), not a {kind}: save it in the current format "
                        f"({path.suffix.lower()}) to index it")
    except OSError as exc:
        return f"cannot read the file ({exc.strerror or exc})"
    return f"damaged or not a {kind} (not a readable zip archive)"


def read_entry(archive: zipfile.ZipFile, name: str, source: str) -> bytes:
    """One entry's bytes; a damaged entry is a ``LoadError`` naming it."""
    try:
        return archive.read(name)
    except KeyError:
        raise LoadError(source, f"damaged: the part {name} is missing") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise LoadError(source, f"damaged: cannot unpack {name} ({exc})") from None


def cell_text(value: object) -> str:
    """A cell value as a table shows it: dates in ISO form, whole floats without ".0", booleans
    as Excel writes them, whitespace (newlines included) collapsed to single spaces."""
    if isinstance(value, str):  # most cells, and every CSV cell: first, before the rarer types
        return " ".join(value.split())
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


def markdown_table(rows: Sequence[Sequence[str]], *, normalized: bool = False) -> str:
    """Rows as a GitHub Markdown pipe table: the first row is the header, then ``|---|`` and one
    line per row; every row padded to the widest, ``|`` in a cell escaped as ``\\|``.

    The table engine parses spreadsheets and Office tables from exactly this form. ``normalized``:
    the cells' whitespace is already collapsed (``cell_text``), so only ``|`` is escaped.

    Example:
        >>> print(markdown_table([["Year", "Sales"], ["2024", "1|2"]]))
        | Year | Sales |
        |---|---|
        | 2024 | 1\\|2 |
    """
    width = max((len(row) for row in rows), default=0)
    if width == 0:
        return ""

    def line(row: Sequence[str]) -> str:
        cells = [(cell if normalized else " ".join(cell.split())).replace("|", "\\|") for cell in row]
        cells += [""] * (width - len(cells))
        return "| " + " | ".join(cells) + " |"

    lines = [line(rows[0]), "|" + "---|" * width]
    lines += [line(row) for row in rows[1:]]
    return "\n".join(lines)


def trim_row(values: Sequence[object]) -> list[str]:
    """A row's cells as text, without its trailing empty cells."""
    cells = [cell_text(v) for v in values]
    while cells and not cells[-1]:
        cells.pop()
    return cells

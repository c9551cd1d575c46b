"""A PDF page as an image, and where a quote's characters sit on it.

The web page shows a cited PDF page with the quote highlighted. The image is rendered by PDFium
(pypdfium2) on demand and cached on disk under the index folder, keyed by the file's sha256, the
page and the scale, so a changed file can never show a stale image. The highlight comes from
PDFium's own character boxes of the page's text layer, or, for a page read by OCR, from the line
boxes stored with the OCR text.

The stored page text may come from another extractor (pypdf) than PDFium, so stored offsets are
not PDFium character indices: the two texts are aligned on their non-whitespace characters
(compared after NFKC and case folding, so a ligature "ﬁ" matches "fi"), which is exact wherever
both read the same glyphs and degrades to "fewer boxes" where they differ, never to wrong ones.
"""

from __future__ import annotations

import ctypes
import difflib
import functools
import io
import os
import struct
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rag.errors import PageViewError
from rag.file_types import attached_to, display_name, has_page_images
from rag.ingest.pdfium import LOCK as PDFIUM_LOCK
from rag.ingest.pdfium import capped_scale
from rag.ingest.pdfium import load as pdfium
from rag.store.snapshot import file_sha256
from rag.types import Page, TextBox

MIN_SCALE, MAX_SCALE = 0.25, 4.0
"""4.0 renders a Letter page at 2448 x 3168 pixels (about 31 MB of RGB before PNG compression)."""


@dataclass(frozen=True)
class PageImage:
    """One rendered page: PNG bytes and their size in pixels.

    Example:
        >>> # image = index.page_image("/docs/report.pdf", 2)
        >>> # Path("page2.png").write_bytes(image.png); image.width, image.height
    """

    png: bytes
    width: int
    height: int
    page: int
    scale: float


PAGE_CACHE_BYTES = 256 * 2**20
"""The default bound of the page-image cache (``Settings.page_cache_mb``)."""


def render_page(path: Path, page: int, scale: float, sha256: str, cache_dir: Path,
                cache_bytes: int = PAGE_CACHE_BYTES) -> PageImage:
    """The page (1-based) of the PDF at ``path`` as a PNG, from ``cache_dir`` when rendered before.

    ``sha256`` is the file's digest as indexed; the caller has checked that the file still has it.
    The cache holds at most ``cache_bytes``: the images used longest ago go first.
    """
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise PageViewError(f"scale must be between {MIN_SCALE} and {MAX_SCALE}. Currently, it is {scale}")
    cached = cache_dir / f"{sha256}-p{page}-s{scale:g}.png"
    try:
        data = cached.read_bytes()
        width, height = _png_size(data)
        try:
            os.utime(cached)  # its modification time is when it was last used: what pruning goes by
        except OSError:
            pass
        return PageImage(png=data, width=width, height=height, page=page, scale=scale)
    except (OSError, ValueError):
        pass  # not rendered yet, or a damaged cache file: render it again
    data, width, height = _render_png(path, page, scale)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Written whole then renamed: a reader in another thread or process never sees half a PNG.
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, cached)
    except OSError:
        Path(tmp).unlink(missing_ok=True)  # the cache is an optimisation; the image is still returned
    prune_page_cache(cache_dir, cache_bytes, keep=cached)
    return PageImage(png=data, width=width, height=height, page=page, scale=scale)


def prune_page_cache(cache_dir: Path, limit: int, keep: Path | None = None) -> int:
    """Delete the images used longest ago until the cache holds at most ``limit`` bytes (the one
    just rendered, ``keep``, stays even when it alone is larger). Returns the bytes freed."""
    entries = []
    for file in cache_dir.glob("*.png"):
        try:
            stat = file.stat()
        except OSError:
            continue  # removed by another process meanwhile
        entries.append((stat.st_mtime, stat.st_size, file))
    total = sum(size for _, size, _ in entries)
    freed = 0
    for _, size, file in sorted(entries):
        if total <= limit:
            break
        if file == keep:
            continue
        try:
            file.unlink()
        except OSError:
            continue
        total -= size
        freed += size
    return freed


def _render_png(path: Path, page: int, scale: float) -> tuple[bytes, int, int]:
    pdf = pdfium()
    with PDFIUM_LOCK:
        doc = _open(pdf, path)
        try:
            if not 1 <= page <= len(doc):
                raise PageViewError(f"{path.name} has {len(doc)} page(s); there is no page {page}")
            handle = doc[page - 1]
            try:
                # A giant MediaBox renders smaller, within MAX_RENDER_PIXELS, never as a huge bitmap.
                image = handle.render(scale=capped_scale(handle, scale), may_draw_forms=False).to_pil()
            finally:
                handle.close()
        finally:
            doc.close()
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue(), image.width, image.height


class _Document(Protocol):
    """What is used here of a ``pypdfium2.PdfDocument`` (pypdfium2 ships no type hints)."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Any: ...  # noqa: ANN401 - a pypdfium2 PdfPage
    def close(self) -> None: ...


def _open(pdf: Any, path: Path) -> _Document:  # noqa: ANN401 - the pypdfium2 module
    try:
        return pdf.PdfDocument(str(path), password="")
    except pdf.PdfiumError as exc:
        raise PageViewError(f"{path.name}: PDFium cannot open the file ({exc})") from None


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


# --------------------------------------------------------------------------------------------
# Character boxes


@dataclass(frozen=True)
class CharBoxes:
    """PDFium's characters of one page and their boxes as page fractions (origin top left)."""

    text: str
    """One character per PDFium character index (generated spaces and line breaks included)."""
    boxes: tuple[tuple[float, float, float, float], ...]
    """(x0, y0, x1, y1) per character; zero-area for generated characters."""


@functools.lru_cache(maxsize=64)
def char_boxes(path: str, sha256: str, page: int) -> CharBoxes:
    """Every character PDFium reads on ``page`` (1-based) with its loose box (font height), cached
    by file digest: the highlight of a line then has the line's height whatever its letters."""
    pdf = pdfium()
    raw = pdf.raw
    with PDFIUM_LOCK:
        doc = _open(pdf, Path(path))
        try:
            if not 1 <= page <= len(doc):
                raise PageViewError(f"{Path(path).name} has {len(doc)} page(s); there is no page {page}")
            handle = doc[page - 1]
            textpage = handle.get_textpage()
            try:
                # Page space to fractions of the rendered image, whatever the MediaBox origin or
                # the page's /Rotate: PDFium's own transform, on a fine integer grid.
                grid = 1_000_000
                dx, dy = ctypes.c_int(), ctypes.c_int()

                def to_device(x: float, y: float) -> tuple[float, float]:
                    raw.FPDF_PageToDevice(handle, 0, 0, grid, grid, 0, ctypes.c_double(x), ctypes.c_double(y),
                                          ctypes.byref(dx), ctypes.byref(dy))
                    return dx.value / grid, dy.value / grid

                chars, boxes = [], []
                for i in range(textpage.count_chars()):
                    code = raw.FPDFText_GetUnicode(textpage, i)
                    chars.append(chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd")
                    left, bottom, right, top = textpage.get_charbox(i, loose=True)
                    xa, ya = to_device(left, top)
                    xb, yb = to_device(right, bottom)
                    boxes.append((min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)))
            finally:
                textpage.close()
                handle.close()
        finally:
            doc.close()
    return CharBoxes(text="".join(chars), boxes=tuple(boxes))


def _visible(text: str) -> tuple[str, list[int]]:
    """The non-whitespace characters of ``text`` normalised for comparison, each with the index
    of the character it came from (NFKC may turn one character into several)."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        for norm in unicodedata.normalize("NFKC", ch).casefold():
            if not norm.isspace():
                out.append(norm)
                where.append(i)
    return "".join(out), where


def align(stored: str, pdfium_text: str) -> dict[int, int]:
    """Stored-text offsets -> PDFium character indices, for the characters both read alike."""
    a, a_at = _visible(stored)
    b, b_at = _visible(pdfium_text)
    mapping: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            mapping.setdefault(a_at[block.a + k], b_at[block.b + k])
    return mapping


def quote_alignment(stored: str, start: int, end: int, pdfium_text: str) -> dict[int, int]:
    """Offsets of ``stored[start:end]`` -> PDFium character indices.

    First the quote's visible characters are looked up whole in PDFium's: extractors may put the
    lines of a page in another order (PDFium reads a turned page's lines bottom up), which defeats
    any alignment of the whole page but not a search for one quote. Several matches (a repeated
    phrase) are told apart by where the page-wide alignment puts the quote; no whole match (the
    extractors read some glyph differently) falls back to that alignment, character by character.
    """
    quote, quote_at = _visible(stored[start:end])
    theirs, theirs_at = _visible(pdfium_text)
    if not quote:
        return {}
    hits: list[int] = []
    at = theirs.find(quote)
    while at >= 0 and len(hits) < 50:
        hits.append(at)
        at = theirs.find(quote, at + 1)
    page_wide: dict[int, int] | None = None
    if len(hits) != 1:
        page_wide = align(stored, pdfium_text)
    if hits:
        best = hits[0]
        if len(hits) > 1:
            assert page_wide is not None  # aligned above whenever there is not exactly one hit
            guesses = [page_wide[i] for i in range(start, end) if i in page_wide]
            if guesses:
                guess = sorted(guesses)[len(guesses) // 2]
                best = min(hits, key=lambda h: abs(theirs_at[h] - guess))
        mapping: dict[int, int] = {}
        for k in range(len(quote)):
            mapping.setdefault(start + quote_at[k], theirs_at[best + k])
        return mapping
    return {i: j for i, j in (page_wide or {}).items() if start <= i < end}


def text_layer_boxes(stored: str, start: int, end: int, chars: CharBoxes) -> tuple[TextBox, ...]:
    """Highlight rectangles of ``stored[start:end]``: one per run of characters on one line."""
    mapping = quote_alignment(stored, start, end, chars.text)
    runs: list[list[int]] = []  # [start, end, pdfium index of the last char] per run, stored offsets
    rects: list[list[float]] = []
    last: tuple[float, float, float, float] | None = None  # the box of the run's last character
    for offset in range(start, end):
        index = mapping.get(offset)
        if index is None:
            continue
        x0, y0, x1, y1 = chars.boxes[index]
        if x1 <= x0 or y1 <= y0:
            continue
        # Compared with the last character, not the run's rectangle: a run spanning a whole line
        # would "overlap" the next line's first character across the line on a turned page's axis.
        same = last is not None and _same_line(last, (x0, y0, x1, y1)) and index > runs[-1][2]
        last = (x0, y0, x1, y1)
        if same:
            runs[-1][1:] = [offset + 1, index]
            r = rects[-1]
            rects[-1] = [min(r[0], x0), min(r[1], y0), max(r[2], x1), max(r[3], y1)]
        else:
            runs.append([offset, offset + 1, index])
            rects.append([x0, y0, x1, y1])
    return tuple(TextBox(start=s, end=e, x0=r[0], y0=r[1], x1=r[2], y1=r[3]) for (s, e, _), r in zip(runs, rects))


def _same_line(run: Sequence[float], box: Sequence[float]) -> bool:
    """The box continues the line of the character box ``run``: the two overlap across the line
    by half a character's height and the gap along it is under two heights (a word space, a
    justified gap; not the next column or table cell). Either axis may be the line's, for text
    on turned pages."""
    for across, along in ((1, 0), (0, 1)):
        overlap = min(run[across + 2], box[across + 2]) - max(run[across], box[across])
        height = min(run[across + 2] - run[across], box[across + 2] - box[across])
        gap = max(box[along] - run[along + 2], run[along] - box[along + 2])
        if height > 0 and overlap >= 0.5 * height and gap <= 2 * height:
            return True
    return False


def ocr_boxes(start: int, end: int, lines: Sequence[TextBox]) -> tuple[TextBox, ...]:
    """Highlight rectangles of ``[start, end)`` from the stored OCR line boxes.

    OCR gives one box per line, not per character: a quote that covers part of a line gets the
    part of the box in proportion to the characters it covers (OCR text of one line is drawn
    in one font, so this is close).
    """
    out = []
    for line in lines:
        s, e = max(start, line.start), min(end, line.end)
        if s >= e or line.end <= line.start:
            continue
        width = line.x1 - line.x0
        n = line.end - line.start
        out.append(TextBox(start=s, end=e, x0=line.x0 + width * (s - line.start) / n, y0=line.y0,
                           x1=line.x0 + width * (e - line.start) / n, y1=line.y1))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# What Index delegates to


def indexed_pdf(snapshot: object, source: str) -> tuple[Path, str, int]:
    """(path, sha256, pages) of the indexed PDF named by its path or file name; raises
    ``PageViewError`` for anything else, and for a file changed since it was indexed (its image
    would not show the text that quotes are checked against)."""
    files = snapshot.files()  # type: ignore[attr-defined]
    record = files.get(source)
    if record is None:
        resolved = str(Path(source).expanduser().resolve()) if source else ""
        record = files.get(resolved)
    if record is None:
        named = [r for s, r in files.items() if Path(s).name == source]
        if len(named) > 1:
            raise PageViewError(f"{source}: {len(named)} indexed files have this name; give the full path")
        record = named[0] if named else None
    if record is None:
        raise PageViewError(f"{source}: not in the index")
    path = Path(record.source)
    if attached_to(record.source) is not None:
        raise PageViewError(f"{display_name(record.source)}: an e-mail's attachment has no page images (the index "
                            "keeps its text, not the file, and reading it again from the e-mail could show another "
                            "version); its text is shown")
    if not has_page_images(path):
        raise PageViewError(f"{path.name}: not a PDF; only PDF pages have images (its text is in the index)")
    try:
        stat = path.stat()
    except OSError as exc:
        raise PageViewError(f"{path.name}: the file is no longer readable ({exc.strerror or exc})") from None
    if (stat.st_size, stat.st_mtime) != (record.size, record.mtime) and file_sha256(path) != record.sha256:
        raise PageViewError(f"{path.name}: the file has changed since it was indexed; run rag ingest again "
                            "to show its pages")
    return path, record.sha256, int(record.pages)


def page_image(snapshot: object, cache_dir: Path, source: str, page: int, scale: float,
               cache_bytes: int = PAGE_CACHE_BYTES) -> PageImage:
    path, sha256, pages = indexed_pdf(snapshot, source)
    if not 1 <= page <= pages:
        raise PageViewError(f"{path.name} has {pages} page(s); there is no page {page}")
    return render_page(path, page, float(scale), sha256, cache_dir, cache_bytes)


def quote_boxes(snapshot: object, quote: object) -> tuple[TextBox, ...]:
    """Highlight boxes of a quote (``rag.types.Quote``); () for sources without page images,
    and for a quote that is not verbatim in the stored page (the index changed under it)."""
    source = quote.source  # type: ignore[attr-defined]
    if not has_page_images(source):
        return ()
    path, sha256, _ = indexed_pdf(snapshot, source)
    number, start, end = quote.page, quote.start, quote.end  # type: ignore[attr-defined]
    stored = _stored_page(snapshot, str(path), number)
    if stored is None or stored.text[start:end] != quote.text or start >= end:  # type: ignore[attr-defined]
        return ()
    if stored.ocr:
        return ocr_boxes(start, end, stored.boxes)
    return text_layer_boxes(stored.text, start, end, char_boxes(str(path), sha256, number))


def _stored_page(snapshot: object, source: str, number: int) -> Page | None:
    """The stored page with its OCR flag and boxes (``Snapshot.page``); an index written before
    those were stored has text-layer pages only."""
    read = getattr(snapshot, "page", None)
    if read is not None:
        return read(source, number)
    text = snapshot.page_text(source, number)  # type: ignore[attr-defined]
    return None if text is None else Page(source=source, page=number, text=text)

"""PDF files -> pages: the text layer read by pypdf or PDFium, and OCR for pages that have none.

Two extractors read the text layer (``Settings.pdf_extractor``):

- ``"pdfium"`` (the default): PDFium through pypdfium2, the engine of Chrome's PDF viewer. On
  the figures in docs/benchmarks.md ("PDF text extractors", ``bench/studies/pdf_extract.py``), over the
  1,377 pages of the 17 shared FinanceBench filings, it breaks 0.3 words in 1,000 (split apart,
  "me mbership", or run together, "reasonableassurance") where pypdf breaks 17.4, finds more of
  the annotators' evidence words on the evidence pages (96.8% against 95.9%), and reads 70 pages
  a second against pypdf's 4.6 (pypdf was the slowest step of an ingest, slower than the
  embedding). On pypdf's own expected-text files both make no character errors (only 1,012
  characters there: they cannot tell the two apart).
- ``"pypdf"``: pure Python, the reader of earlier versions.

Whichever extracts the text, the file is opened, decrypted, counted and checked for damage by
pypdf, so every guard holds alike: the time limit, encryption with the empty password, the
damage check that reads pypdf's warnings (``rag.ingest.pdf_diagnostics``), pages sharing one content
stream read once, and the true page count. A page that PDFium reads empty is read by pypdf too,
which also catches a decompression bomb as a failed page, as before. A file PDFium cannot open,
or counts otherwise, is read by pypdf.

A page without a text layer (or a garbage one, or a scan with a stamped page number) is rendered
by PDFium and read by OCR (``rag.ingest.ocr``), at most ``Settings.ocr_page_limit`` pages a file;
``Settings.ocr`` off refuses such pages as before. OCR'd pages carry ``Page.ocr`` and their line
boxes, and quotes are checked against the OCR text as stored, like any other.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import LoadError
from rag.ingest import ocr
from rag.ingest.pdf_diagnostics import AES_REASON, error_line, pypdf_log, unreadable_reason
from rag.ingest.pdfium import LOCK as PDFIUM_LOCK
from rag.ingest.pdfium import load as pdfium
from rag.types import Page

if TYPE_CHECKING:
    from pypdf import PageObject

log = logging.getLogger(__name__)

PDF_TIME_LIMIT = 600.0
"""Seconds one PDF may take to read (OCR included); a 2,000-page text PDF takes about 1.3 s here."""

EXTRACTORS = ("pdfium", "pypdf")
DEFAULT_EXTRACTOR = "pdfium"

OcrProgress = Callable[[int, int], None]
"""``progress(done, total)``: pages read by OCR in this file so far."""


@dataclass(frozen=True)
class PdfRead:
    """What ``read_pdf`` read: the pages, and what the user should know about the rest."""

    pages: list[Page]
    notes: tuple[str, ...] = ()
    """E.g. pages left unread because they were over the OCR budget, with the setting to raise."""


@dataclass(frozen=True)
class OcrOptions:
    enabled: bool = True
    page_limit: int = 50


def read_pdf(path: Path, time_limit: float = PDF_TIME_LIMIT, extractor: str = DEFAULT_EXTRACTOR,
             ocr: OcrOptions = OcrOptions(), progress: OcrProgress | None = None) -> PdfRead:
    """Read every page of the PDF at ``path``; raises ``LoadError`` with the reason.

    ``time_limit`` bounds the seconds spent on one PDF; it is checked between pages, so it stops
    a PDF of very many slow pages, not one page that never ends (pypdf's own limits on stream
    sizes and nesting cover those). Over the limit while reading the text layer the file is
    refused; while reading by OCR, the remaining pages are left unread and a note says so.
    """
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown PDF extractor {extractor!r}")
    source = str(path)
    deadline = time.monotonic() + time_limit
    with pypdf_log().capture(source) as pypdf_said:
        pages, failed = _text_layer(path, deadline, time_limit, extractor)
    if failed and not any(page.text.strip() for page in pages):
        raise LoadError(source, f"text extraction failed on {len(failed)} of {len(pages)} page(s) ({failed[0][1]})")
    if pypdf_said.read_error is not None and not any(page.text.strip() for page in pages):
        # Not "image-only": pypdf skipped parts it could not read, and those held the text.
        raise LoadError(source, f"the PDF is damaged and no text could be read from it (pypdf: "
                                f"{pypdf_said.read_error})")
    broken = {number for number, _ in failed}
    wanted = [page.page for page in pages if page.page not in broken and needs_ocr(page.text)]
    notes: list[str] = []
    if wanted:
        wanted = _with_ink(path, pages, wanted)
    if wanted and ocr.enabled:
        pages, notes = _ocr_pages(path, pages, wanted, ocr.page_limit, deadline, time_limit, progress)
    if not any(page.text.strip() for page in pages):
        count = len(pages)
        if not ocr.enabled:
            raise LoadError(source, f"no extractable text in {count} page(s): image-only or scanned PDF (OCR is "
                                    "off; turn it on with RAG_OCR=1 or Settings(ocr=True))")
        if notes:
            raise LoadError(source, f"no extractable text in {count} page(s): image-only or scanned PDF, and "
                                    + "; ".join(notes))
        if wanted:
            raise LoadError(source, f"no extractable text in {count} page(s): image-only or scanned PDF, and OCR "
                                    "found no text on its pages")
        raise LoadError(source, f"no extractable text in {count} page(s): the pages are blank")
    return PdfRead(pages=pages, notes=tuple(notes))


# --------------------------------------------------------------------------------------------
# The text layer


def _text_layer(path: Path, deadline: float, time_limit: float, extractor: str
                ) -> tuple[list[Page], list[tuple[int, str]]]:
    source = str(path)
    reader = _open_pypdf(path)
    count = len(reader.pages)
    if count == 0:
        raise LoadError(source, "the PDF has no pages")
    doc = _open_pdfium(path, count) if extractor == "pdfium" else None
    try:
        return _read_pages(path, reader, doc, count, deadline, time_limit)
    finally:
        if doc is not None:
            with PDFIUM_LOCK:
                doc.close()


def _open_pypdf(path: Path) -> Any:  # noqa: ANN401 - pypdf.PdfReader
    source = str(path)
    # Imported here so text-only use never pays for pypdf's import.
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            # Many PDFs are encrypted only to restrict printing or copying: the empty user
            # password opens them, and their text is as readable as any other PDF's.
            try:
                opened = reader.decrypt("")
            except (FileNotDecryptedError, NotImplementedError) as exc:
                raise LoadError(source, f"the PDF is encrypted and cannot be opened ({error_line(exc)})") from None
            if not opened:
                raise LoadError(source, "the PDF is encrypted with a password (it cannot be opened without it)")
        len(reader.pages)  # walks the page tree: a damaged one fails here, with the reasons below
    except LoadError:
        raise
    except FileNotDecryptedError:
        raise LoadError(source, "the PDF is encrypted with a password (it cannot be opened without it)") from None
    except DependencyError:
        raise LoadError(source, AES_REASON) from None
    except MemoryError:
        raise  # the file is not damaged; the caller reports it as too large
    except Exception as exc:  # noqa: BLE001 - a parser fed hostile bytes can raise anything
        raise LoadError(source, unreadable_reason(path, exc)) from None
    return reader


def _open_pdfium(path: Path, count: int) -> Any:  # noqa: ANN401 - pypdfium2.PdfDocument | None
    """PDFium's document, or None (with a log line) when pypdf should read this file alone."""
    pdf = pdfium()
    with PDFIUM_LOCK:
        try:
            doc = pdf.PdfDocument(str(path), password="")
        except pdf.PdfiumError as exc:
            log.info("%s: PDFium cannot open it (%s); its text is read by pypdf", path, exc)
            return None
        if len(doc) != count:
            # The two read the page tree differently (a damaged file): pypdf's count is the one
            # every other check uses, so pypdf reads it all.
            log.info("%s: PDFium counts %d pages, pypdf %d; its text is read by pypdf", path, len(doc), count)
            doc.close()
            return None
    return doc


def _read_pages(path: Path, reader: Any, doc: Any, count: int, deadline: float, time_limit: float  # noqa: ANN401
                ) -> tuple[list[Page], list[tuple[int, str]]]:
    # pypdf loads with the first PDF
    from pypdf.errors import DependencyError

    source = str(path)
    pages = []
    failed: list[tuple[int, str]] = []
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
                text = _pdfium_text(doc, number) if doc is not None else ""
                if not text.strip():
                    # pypdf reads what PDFium found empty: a font PDFium cannot map, or a
                    # decompression bomb that pypdf's limits stop (a failed page, as before).
                    text = page.extract_text() or ""
                if key is not None:
                    same_text[key] = text
        except DependencyError:
            raise LoadError(source, AES_REASON) from None
        except Exception as exc:  # noqa: BLE001 - one bad page must not lose the other pages
            log.warning("%s: page %d: text extraction failed (%s); the page is indexed empty",
                        source, number, error_line(exc))
            failed.append((number, f"page {number}: {type(exc).__name__}: {error_line(exc)}"))
            text = ""
        pages.append(Page(source=source, page=number, text=clean_text(text)))
    return pages, failed


def _same_text_key(page: PageObject) -> tuple[object, ...] | None:
    """What a page's extracted text depends on, when other pages can share it; else None.

    The content streams and the resources must be the very same objects of the file (indirect
    references), or resources written out identically; a page's own inline content has no key.
    """
    # pypdf loads with the first PDF
    from pypdf.generic import ArrayObject, IndirectObject

    def ref(value: object) -> tuple[int, int] | None:
        return (value.idnum, value.generation) if isinstance(value, IndirectObject) else None

    contents = page.raw_get("/Contents") if "/Contents" in page else None
    if isinstance(contents, ArrayObject):
        streams = tuple(ref(item) for item in contents)
    else:
        streams = (ref(contents),)
    if not streams or None in streams:
        return None
    resources = page.raw_get("/Resources") if "/Resources" in page else None
    shared: tuple[int, int] | str | None
    if resources is None or isinstance(resources, IndirectObject):
        shared = ref(resources)
    else:
        text = repr(resources)
        if len(text) > 100_000:
            return None  # not worth comparing
        shared = text
    return (streams, shared, repr(page.get("/Rotate", 0)))


def _pdfium_text(doc: Any, number: int) -> str:  # noqa: ANN401
    with PDFIUM_LOCK:
        page = doc[number - 1]
        try:
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range()
            finally:
                textpage.close()
        finally:
            page.close()
    return pdfium_clean(text)


_LINE_ENDS = re.compile(r"\r\n?")


def pdfium_clean(text: str) -> str:
    """PDFium's page text as stored: line breaks as ``\\n`` (PDFium writes ``\\r\\n``); the
    hyphen PDFium marks as a line-end hyphen (U+0002) written as the hyphen it is; a form
    feed, which PDFium writes for some marked-content breaks, as a line break."""
    return _LINE_ENDS.sub("\n", text).replace("\x02", "-").replace("\x0c", "\n").replace("\ufffe", "")


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text safe for every later step: no NUL characters, no lone UTF-16 halves.

    NUL characters come out of some PDFs and break downstream tools; nothing readable is lost.
    A PDF's ToUnicode map can name UTF-16 halves one at a time: pairs are joined here, and a
    lone half, which no tokenizer, SQLite or JSON accepts, becomes U+FFFD.
    """
    text = text.replace("\x00", "")
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


# --------------------------------------------------------------------------------------------
# Which pages OCR reads


def needs_ocr(text: str) -> bool:
    """Whether a page's text layer is missing or garbage, so that only OCR can read it.

    Garbage: mostly U+FFFD, control or private-use characters (a font without a Unicode map), or
    almost no letters or digits at all. A page with a little real text (a stamped page number on
    a scan) is decided by ``_with_ink``, which looks at its images.
    """
    visible = [ch for ch in text if not ch.isspace()]
    if len(visible) < _FEW_CHARS:
        return True
    bad = sum(1 for ch in visible if ch == "\ufffd" or unicodedata.category(ch) in ("Co", "Cc", "Cn"))
    if bad > 0.3 * len(visible):
        return True
    return sum(1 for ch in visible if ch.isalnum()) < 0.25 * len(visible)


_FEW_CHARS = 20
"""A page with fewer visible characters than this is OCR'd when images cover most of it."""


def _with_ink(path: Path, pages: list[Page], wanted: list[int]) -> list[int]:
    """The pages of ``wanted`` worth OCR: blank pages (nothing drawn) are not, and a page with a
    few characters of real text is only when images cover half of it (a scan with a stamp)."""
    pdf = pdfium()
    chosen = []
    with PDFIUM_LOCK:
        try:
            doc = pdf.PdfDocument(str(path), password="")
        except pdf.PdfiumError:
            return wanted  # OCR, which renders with PDFium too, will report it
        try:
            if len(doc) < max(wanted):
                return wanted
            for number in wanted:
                try:
                    page = doc[number - 1]
                except pdf.PdfiumError:
                    chosen.append(number)  # OCR renders with PDFium too, and will report the page
                    continue
                try:
                    text = pages[number - 1].text
                    few = 0 < sum(1 for ch in text if not ch.isspace()) < _FEW_CHARS and not _is_garbage(text)
                    if _image_share(pdf, page) >= 0.5 if few else _draws_anything(pdf, page):
                        chosen.append(number)
                finally:
                    page.close()
        finally:
            doc.close()
    return chosen


def _is_garbage(text: str) -> bool:
    visible = [ch for ch in text if not ch.isspace()]
    return bool(visible) and sum(1 for ch in visible if ch.isalnum()) < 0.5 * len(visible)


def _draws_anything(pdf: Any, page: Any) -> bool:  # noqa: ANN401
    return int(pdf.raw.FPDFPage_CountObjects(page)) > 0


def _image_share(pdf: Any, page: Any) -> float:  # noqa: ANN401
    """The share of the page that its images cover (overlaps counted twice, capped at 1)."""
    width, height = page.get_size()
    if width <= 0 or height <= 0:
        return 0.0
    covered = 0.0
    for obj in page.get_objects(filter=(pdf.raw.FPDF_PAGEOBJ_IMAGE,), max_depth=3):
        left, bottom, right, top = obj.get_bounds()
        covered += max(0.0, min(right, width) - max(left, 0.0)) * max(0.0, min(top, height) - max(bottom, 0.0))
    return min(1.0, covered / (width * height))


def _ocr_pages(path: Path, pages: list[Page], wanted: list[int], limit: int, deadline: float, time_limit: float,
               progress: OcrProgress | None) -> tuple[list[Page], list[str]]:
    chosen, over = wanted[:limit], wanted[limit:]
    notes = []
    done = 0
    engine = ocr.engine()
    pages = list(pages)
    for i, number in enumerate(chosen):
        if time.monotonic() > deadline:
            left = chosen[i:] + over
            notes.append(f"{len(left)} page(s) needing OCR were not read: reading took longer than "
                         f"{time_limit:.0f} s ({_page_list(left)})")
            over = []
            break
        if progress:
            progress(done, len(chosen))
        try:
            text, boxes = ocr.read_page(engine, path, number)
        except Exception as exc:  # noqa: BLE001 - pypdf opened what PDFium cannot render: say so, go on
            notes.append(f"page {number} could not be rendered for OCR ({type(exc).__name__}: {str(exc)[:120]})")
            done += 1
            continue
        if text.strip():
            pages[number - 1] = Page(source=str(path), page=number, text=clean_text(text), ocr=True, boxes=boxes)
        # else the page keeps what its text layer had (a stamp "Background" on a picture; nothing)
        done += 1
    if progress and chosen:
        progress(done, len(chosen))
    if over:
        notes.append(f"{len(over)} page(s) needing OCR were over the budget of {limit} a file and were not read "
                     f"({_page_list(over)}); raise RAG_OCR_PAGE_LIMIT (Settings.ocr_page_limit) to read them")
    return pages, notes


def _page_list(numbers: list[int]) -> str:
    """``pages 51-60, 63`` for the user, the long runs folded."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in runs[:8])
    return ("page " if len(numbers) == 1 else "pages ") + text + (", ..." if len(runs) > 8 else "")

"""OCR of a rendered PDF page: text in reading order, and a box for every line of it.

The engine is RapidOCR (PaddleOCR's PP-OCR models in ONNX, run by onnxruntime; Apache-2.0),
chosen on the figures in docs/benchmarks.md ("OCR engines", ``bench/studies/pdf_extract.py --ocr``): on
six rendered pages whose text is known (prose, filings with tables) it is as accurate as
Debian's Tesseract at the same resolution (1.08% of characters wrong against 1.05% at 144 dpi;
Tesseract reaches 0.95% at 288 dpi in 1.7 times the time) and 20% faster, and it installs from
PyPI with its models inside the wheel, so ``make test`` on a fresh machine needs no root and no
apt. Its models are named by path, from the installed wheel: it never downloads one.

Pages are rendered by PDFium at ``OCR_SCALE`` (2 = 144 dpi): 1.5 was 10% faster with a few more
errors (1.11%), 3 a quarter slower for 1.05%.

Example:
    >>> # text, boxes = read_page(engine(), Path("scan.pdf"), 1)
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rag.errors import RagError
from rag.ingest.pdfium import LOCK as PDFIUM_LOCK
from rag.ingest.pdfium import capped_scale
from rag.ingest.pdfium import load as pdfium
from rag.types import TextBox

OCR_SCALE = 2.0
MIN_SCORE = 0.5
"""Lines the recogniser is less sure of than this are dropped (RapidOCR's own default)."""


@dataclass(frozen=True)
class OcrLine:
    """One line of text read off an image; the box in fractions of the image, origin top left."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    score: float


class OcrEngine(Protocol):
    name: str

    def read(self, image: Any) -> list[OcrLine]:  # noqa: ANN401 - an RGB numpy array (h, w, 3)
        """The lines of text in the image, in any order."""
        ...


class RapidOcr:
    """RapidOCR with the models shipped in its wheel (detection, recognition; PP-OCR)."""

    name = "rapidocr"

    def __init__(self) -> None:
        try:
            # RapidOCR and its models load with the first scanned page
            import rapidocr
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise RagError(f"OCR needs the 'rapidocr' package (pip install rapidocr onnxruntime "
                           f"opencv-python-headless): {exc}") from None
        models = Path(rapidocr.__file__).parent / "models"
        det, rec = sorted(models.glob("*det*.onnx")), sorted(models.glob("*rec*.onnx"))
        if not det or not rec:
            raise RagError(f"the rapidocr wheel holds no models in {models}; reinstall it "
                           "(pip install --force-reinstall rapidocr)")
        # Model paths given: RapidOCR only downloads a model when it has none (offline rule).
        self._engine = RapidOCR(params={
            "Det.model_path": str(det[-1]), "Rec.model_path": str(rec[-1]),
            # Off: the angle model costs a third more on every page and turns single lines only;
            # a page upside down or on its side is turned whole instead (read_page).
            "Global.use_cls": False,
            "Global.log_level": "error", "Global.text_score": MIN_SCORE,
        })
        # It warns "The text detection result is empty" for every blank page: not news for a user.
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        # onnxruntime sessions may run from several threads, but RapidOCR keeps state between
        # its steps: one page at a time.
        self._lock = threading.Lock()

    def read(self, image: Any) -> list[OcrLine]:  # noqa: ANN401
        from rapidocr.utils.output import RapidOCROutput

        height, width = image.shape[:2]
        with self._lock:
            result = self._engine(image)
        if not isinstance(result, RapidOCROutput):
            # Detection without recognition: RapidOCR's recognition step failed (it logs why).
            raise RagError(f"RapidOCR found text but could not read it (it returned {type(result).__name__})")
        lines: list[OcrLine] = []
        if result.boxes is None or result.txts is None or result.scores is None:
            return lines
        for box, text, score in zip(result.boxes, result.txts, result.scores):
            xs, ys = [float(p[0]) for p in box], [float(p[1]) for p in box]
            text = " ".join(str(text).split())
            if text and float(score) >= MIN_SCORE:
                lines.append(OcrLine(text=text, x0=max(0.0, min(xs) / width), y0=max(0.0, min(ys) / height),
                                     x1=min(1.0, max(xs) / width), y1=min(1.0, max(ys) / height), score=float(score)))
        return lines


class TesseractOcr:
    """Debian's ``tesseract`` command (``apt-get install tesseract-ocr``), for comparison."""

    name = "tesseract"

    def __init__(self) -> None:
        command = shutil.which("tesseract")
        if command is None:
            raise RagError("the tesseract command is not installed (apt-get install tesseract-ocr)")
        self.command = command

    def read(self, image: Any) -> list[OcrLine]:  # noqa: ANN401
        import io

        # Pillow loads with the first scanned page
        from PIL import Image

        height, width = image.shape[:2]
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG")
        out = subprocess.run([self.command, "stdin", "stdout", "--psm", "3", "tsv"], input=png.getvalue(),
                             capture_output=True, check=True, timeout=300).stdout.decode("utf-8", "replace")
        words: dict[tuple[str, ...], list[tuple[str, float, float, float, float, float]]] = {}
        for row in out.splitlines()[1:]:
            cols = row.split("\t")
            if len(cols) < 12 or not cols[11].strip() or float(cols[10]) < 0:
                continue
            left, top, w, h = (float(c) for c in cols[6:10])
            words.setdefault(tuple(cols[1:5]), []).append((cols[11], left, top, left + w, top + h, float(cols[10])))
        lines = []
        for items in words.values():
            score = sum(i[5] for i in items) / len(items) / 100
            lines.append(OcrLine(text=" ".join(i[0] for i in items), x0=min(i[1] for i in items) / width,
                                 y0=min(i[2] for i in items) / height, x1=max(i[3] for i in items) / width,
                                 y1=max(i[4] for i in items) / height, score=score))
        return lines


ENGINES: dict[str, Callable[[], OcrEngine]] = {"rapidocr": RapidOcr, "tesseract": TesseractOcr}


@functools.lru_cache(maxsize=4)
def engine(name: str = "rapidocr") -> OcrEngine:
    """The OCR engine, loaded once per process (RapidOCR's models take about a second)."""
    return ENGINES[name]()


def render(path: Path, number: int, scale: float = OCR_SCALE) -> Any:  # noqa: ANN401 - numpy array
    """Page ``number`` (1-based) as an RGB array, as OCR reads it."""
    # OCR is optional: numpy loads with the first scanned page
    import numpy as np

    pdf = pdfium()
    with PDFIUM_LOCK:
        doc = pdf.PdfDocument(str(path), password="")
        try:
            page = doc[number - 1]
            try:
                # Through PIL: an RGB copy that outlives the bitmap, whatever PDFium's byte order.
                # Within MAX_RENDER_PIXELS whatever size the page claims (see rag.ingest.pdfium).
                image = np.asarray(page.render(scale=capped_scale(page, scale), may_draw_forms=False)
                                   .to_pil().convert("RGB"))
            finally:
                page.close()
        finally:
            doc.close()
    return image


def layout(lines: Sequence[OcrLine]) -> tuple[str, tuple[TextBox, ...]]:
    """Page text from OCR lines in reading order, with each line's box at its offsets.

    Lines are put in rows (top to bottom; lines whose middles sit within half a line height of
    each other share a row, left to right, joined by a space); rows are joined by a line break,
    and by a blank line where the gap above is more than a line high (a new paragraph, which the
    chunker's sentence splitter respects).
    """
    ordered = sorted(lines, key=lambda line: ((line.y0 + line.y1) / 2, line.x0))
    rows: list[list[OcrLine]] = []
    for line in ordered:
        middle = (line.y0 + line.y1) / 2
        if rows:
            last = rows[-1]
            top = min(box.y0 for box in last)
            bottom = max(box.y1 for box in last)
            if abs(middle - (top + bottom) / 2) <= 0.5 * (bottom - top):
                last.append(line)
                continue
        rows.append([line])
    parts: list[str] = []
    boxes: list[TextBox] = []
    at = 0
    previous_bottom: float | None = None
    for row in rows:
        row.sort(key=lambda line: line.x0)
        top, bottom = min(box.y0 for box in row), max(box.y1 for box in row)
        if parts:
            gap = "\n\n" if previous_bottom is not None and top - previous_bottom > (bottom - top) else "\n"
            parts.append(gap)
            at += len(gap)
        for k, line in enumerate(row):
            if k:
                parts.append(" ")
                at += 1
            parts.append(line.text)
            boxes.append(TextBox(start=at, end=at + len(line.text), x0=line.x0, y0=line.y0, x1=line.x1, y1=line.y1))
            at += len(line.text)
        previous_bottom = bottom
    return "".join(parts), tuple(boxes)


UPRIGHT_CONFIDENCE = 0.85
"""Below this mean score (weighted by characters) a page may be upside down, and is read turned
too. Measured on a rendered page: upright 0.99, the same page upside down 0.65 (the recogniser
reads mirrored glyphs as other letters with little confidence)."""


def _weight(lines: Sequence[OcrLine]) -> float:
    return sum(line.score * len(line.text) for line in lines)


def _confidence(lines: Sequence[OcrLine]) -> float:
    chars = sum(len(line.text) for line in lines)
    return _weight(lines) / chars if chars else 0.0


def _sideways(lines: Sequence[OcrLine], width: int, height: int) -> bool:
    """Most of the text sits in boxes much taller than wide: the page lies on its side (RapidOCR
    reads such lines, but a layout of vertical lines puts them in the wrong order)."""
    tall = sum(len(line.text) for line in lines if (line.y1 - line.y0) * height > 1.5 * (line.x1 - line.x0) * width)
    return tall > 0.5 * sum(len(line.text) for line in lines)


def _unturn(box: TextBox, turns: int) -> TextBox:
    """A box read on the image turned by ``np.rot90(image, turns)``, on the page as it is shown."""
    if turns == 2:
        x0, y0, x1, y1 = 1 - box.x1, 1 - box.y1, 1 - box.x0, 1 - box.y0
    elif turns == 1:  # a quarter turn anticlockwise: (x, y) on the page is (y, 1 - x) turned
        x0, y0, x1, y1 = 1 - box.y1, box.x0, 1 - box.y0, box.x1
    elif turns == 3:  # clockwise: (x, y) on the page is (1 - y, x) turned
        x0, y0, x1, y1 = box.y0, 1 - box.x1, box.y1, 1 - box.x0
    else:
        return box
    return TextBox(start=box.start, end=box.end, x0=x0, y0=y0, x1=x1, y1=y1)


def read_page(ocr: OcrEngine, path: Path, number: int, scale: float = OCR_SCALE) -> tuple[str, tuple[TextBox, ...]]:
    """OCR page ``number`` of the PDF at ``path``: its text and line boxes (offsets into the text).

    A page scanned upside down or on its side is read turned the right way up (a second or third
    OCR pass, only for a page that reads badly upright or lies on its side); its boxes are given
    on the page as PDFium shows it, so highlights land on the ink.
    """
    # OCR is optional: numpy loads with the first scanned page
    import numpy as np

    image = render(path, number, scale)
    height, width = image.shape[:2]
    lines, turns = ocr.read(image), 0
    tries: tuple[int, ...]
    if lines and _sideways(lines, width, height):
        tries = (1, 3)
    elif lines and _confidence(lines) < UPRIGHT_CONFIDENCE:
        tries = (2,)
    else:
        tries = ()
    best = -1.0 if tries and tries[0] != 2 else _weight(lines)  # a sideways layout is never kept
    for k in tries:
        turned = ocr.read(np.ascontiguousarray(np.rot90(image, k)))
        if _weight(turned) > best:
            lines, turns, best = turned, k, _weight(turned)
    text, boxes = layout(lines)
    return text, tuple(_unturn(box, turns) for box in boxes)

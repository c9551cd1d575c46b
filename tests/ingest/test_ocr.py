"""Scanned PDFs: pages with no text layer are read by OCR, through the real CLI, with the budget,
the switch, the progress and the line boxes that highlights are drawn from."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import write_pdf
from tests.test_protocols import HashingEmbedder

from rag import Index, LoadError, Settings
from rag.ingest.load import load_file
from rag.ingest.ocr import engine, layout, read_page
from rag.serve.cli import main

pytest.importorskip("rapidocr")
pdfium = pytest.importorskip("pypdfium2")

DELEGATIONS = "it is essential for international delegations to visit Iran"


def image_only_pdf(path: Path, pages: Sequence[str], scale: float = 2.0, rotate: int = 0) -> Path:
    """A PDF whose pages are pictures of text: written by fpdf2, rasterized by PDFium, saved as
    images only (Pillow's PDF writer), so no text layer is left; ``rotate`` degrees anticlockwise,
    as a page fed into a scanner the wrong way round."""
    from PIL import Image

    text_pdf = write_pdf(path.with_suffix(".text.pdf"), pages)
    doc = pdfium.PdfDocument(str(text_pdf))
    images: list[Image.Image] = [doc[i].render(scale=scale).to_pil().convert("L").rotate(rotate, expand=True)
                                 for i in range(len(doc))]
    doc.close()
    text_pdf.unlink()
    images[0].save(path, "PDF", save_all=True, append_images=images[1:], resolution=72 * scale)
    return path


def _latin1(text: str) -> str:
    """The seed in the Latin-1 that fpdf2's built-in Helvetica writes."""
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u2013", "-"), ("\u2014", "-")):
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


@pytest.fixture(scope="module")
def scanned_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import shared_path

    seed = _latin1((shared_path("seeds") / "000_17d6ea71f6fbed30.txt").read_text(encoding="utf-8"))
    paragraphs = [p for p in seed.split("\n\n") if p.strip()]
    half = len(paragraphs) // 2
    pages = ["\n\n".join(paragraphs[:half]), "\n\n".join(paragraphs[half:])]
    assert DELEGATIONS in pages[1]
    return image_only_pdf(tmp_path_factory.mktemp("scan") / "seed-scan.pdf", pages)


def test_the_scan_has_no_text_layer(scanned_seed: Path) -> None:
    from pypdf import PdfReader

    assert [p.extract_text().strip() for p in PdfReader(scanned_seed).pages] == ["", ""]


@pytest.fixture(scope="module")
def ingested(scanned_seed: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """The scan ingested by the real CLI: (index folder, exit status, what it printed)."""
    import contextlib

    index = tmp_path_factory.mktemp("idx")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["ingest", str(scanned_seed), "--index", str(index), "--no-progress"])
    return index, status, out.getvalue()


@pytest.fixture(scope="module")
def read_with_progress(scanned_seed: Path) -> tuple[list, list[tuple[int, int]]]:
    seen: list[tuple[int, int]] = []
    pages = load_file(scanned_seed, progress=lambda done, total: seen.append((done, total)))
    return pages, seen


def test_rag_ingest_reads_the_scan_by_ocr_and_search_finds_the_delegations_sentence_on_page_2(
        ingested: tuple[Path, int, str], capsys: pytest.CaptureFixture[str]) -> None:
    index, status, printed = ingested
    assert status == 0 and "added 1," in printed
    assert main(["search", "Who called for UN visits?", "--index", str(index), "--json"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["name"] == "seed-scan.pdf" and first["page"] == 2 and first["ocr"] is True
    assert "delegations" in first["text"] and "Rajavi" in first["text"]
    # The quote guarantee holds against the OCR text as stored.
    stored = Index.open(index).page_text(first["source"], 2)
    assert stored is not None and stored[first["quote_start"]:first["quote_end"]] == first["quote"]
    assert stored[first["start"]:first["end"]] == first["text"]
    assert main(["search", "Who called for UN visits?", "--index", str(index), "-k", "1"]) == 0
    assert capsys.readouterr().out.startswith("[1] seed-scan.pdf, page 2 (OCR), chars ")


def test_ocr_off_refuses_the_scan_with_a_reason(scanned_seed: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RAG_OCR", "0")
    assert main(["ingest", str(scanned_seed), "--index", str(tmp_path / "idx"), "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "seed-scan.pdf: no extractable text in 2 page(s): image-only or scanned PDF (OCR is off" in err


def test_the_cli_says_a_file_over_the_ocr_budget_was_indexed_in_part(scanned_seed: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RAG_OCR_PAGE_LIMIT", "1")
    assert main(["ingest", str(scanned_seed), "--index", str(tmp_path / "idx"), "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "rag ingest: 1 file indexed only in part (exit status 3)" in err and "could not be indexed" not in err


def test_pages_over_the_ocr_budget_are_skipped_and_the_report_says_so(scanned_seed: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    index = Index.build([scanned_seed], tmp_path / "idx", Settings(ocr_page_limit=1), embedder=HashingEmbedder(),
                        progress=lambda stage, done, total: seen.append((stage, done, total)))
    report = index.last_report
    assert report is not None and len(report.added) == 1
    (failure,) = report.failed
    assert failure.reason.startswith("partly indexed: 1 page(s) needing OCR were over the budget of 1 a file")
    assert "(page 2)" in failure.reason and "RAG_OCR_PAGE_LIMIT" in failure.reason and failure.partial
    assert index.documents()[0].pages == 2  # the true page count, page 2 empty
    assert index.page_text(str(scanned_seed), 2) == ""
    assert ("ocr", 1, 1) in seen and not any(total > 1 for stage, _, total in seen if stage == "ocr")
    with pytest.raises(LoadError, match=r"over the budget of 0 a file and were not read \(pages 1-2\)"):
        load_file(scanned_seed, settings=Settings(ocr_page_limit=0))


def test_ocr_progress_counts_pages(read_with_progress: tuple[list, list[tuple[int, int]]]) -> None:
    pages, seen = read_with_progress
    assert [p.ocr for p in pages] == [True, True]
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)


def test_ocr_boxes_sit_at_their_text(read_with_progress: tuple[list, list[tuple[int, int]]]) -> None:
    page = read_with_progress[0][1]
    assert page.ocr and page.boxes
    for box in page.boxes:
        assert 0 <= box.start < box.end <= len(page.text)
        assert page.text[box.start:box.end].strip() == page.text[box.start:box.end]
        assert 0 <= box.x0 < box.x1 <= 1 and 0 <= box.y0 < box.y1 <= 1
    ys = [b.y0 for b in page.boxes]
    assert ys == sorted(ys), "boxes in reading order, top to bottom"
    # Every character of the text but line breaks and spaces between lines is in a box.
    covered = {i for b in page.boxes for i in range(b.start, b.end)}
    assert all(page.text[i].isspace() for i in range(len(page.text)) if i not in covered)


def test_quote_boxes_of_an_ocr_page_come_from_its_line_boxes(ingested: tuple[Path, int, str]) -> None:
    from rag.types import Quote

    index = Index.open(ingested[0])
    source = index.documents()[0].source
    stored = index.page_text(source, 2)
    assert stored is not None
    start = stored.index("delegations")
    end = stored.index("prisons", start) + len("prisons")
    quote = Quote(text=stored[start:end], source=source, page=2, start=start, end=end, ocr=True)
    boxes = index.quote_boxes(quote)
    assert len(boxes) >= 2 and all(quote.start <= b.start < b.end <= quote.end for b in boxes)
    assert boxes[0].start == start and boxes[-1].end == end
    # On the rendered page, every highlight holds ink (the words, not the margin).
    from PIL import Image

    image = index.page_image(source, 2, scale=1.0)
    gray = Image.open(io.BytesIO(image.png)).convert("L")
    for b in boxes:
        crop = gray.crop((int(b.x0 * image.width), int(b.y0 * image.height), int(b.x1 * image.width) + 1,
                          int(b.y1 * image.height) + 1))
        assert sum(1 for v in crop.getdata() if v < 128) / (crop.width * crop.height) > 0.05


def test_layout_puts_lines_in_reading_order_with_offsets() -> None:
    from rag.ingest.ocr import OcrLine

    lines = [OcrLine("second line", 0.1, 0.15, 0.5, 0.18, 0.9), OcrLine("First", 0.1, 0.1, 0.2, 0.13, 0.9),
             OcrLine("right cell", 0.6, 0.1, 0.8, 0.13, 0.9), OcrLine("new paragraph", 0.1, 0.4, 0.6, 0.43, 0.9)]
    text, boxes = layout(lines)
    assert text == "First right cell\nsecond line\n\nnew paragraph"
    assert [text[b.start:b.end] for b in boxes] == ["First", "right cell", "second line", "new paragraph"]


def test_a_blank_page_is_not_sent_to_ocr_and_text_pages_are_not_either(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    with open(tmp_path / "blank.pdf", "wb") as f:
        writer.write(f)
    with pytest.raises(LoadError, match="the pages are blank"):
        load_file(tmp_path / "blank.pdf")
    pages = load_file(write_pdf(tmp_path / "text.pdf", ["A page with a text layer, read as it is."]))
    assert not pages[0].ocr and not pages[0].boxes


def test_ocr_reads_a_rendered_text_page_nearly_verbatim(tmp_path: Path) -> None:
    sentence = "The orchard of Miriam Okafor covers twelve hectares near Lyon."
    path = image_only_pdf(tmp_path / "one.pdf", [sentence])
    text, boxes = read_page(engine(), path, 1)
    assert " ".join(text.split()) == sentence and len(boxes) == 1


@pytest.mark.parametrize("rotate", [180, 90, 270])
def test_a_page_scanned_upside_down_or_on_its_side_is_read_the_right_way_up(tmp_path: Path, rotate: int) -> None:
    from PIL import Image

    from rag.ingest.ocr import render

    sentences = ["The orchard of Miriam Okafor covers twelve hectares near Lyon.",
                 "Its pears were picked late in the autumn of 2019."]
    path = image_only_pdf(tmp_path / f"turned-{rotate}.pdf", ["\n\n".join(sentences)], rotate=rotate)
    text, boxes = read_page(engine(), path, 1)
    assert " ".join(text.split()) == " ".join(sentences)
    # Each box lies over ink on the page as it is shown (turned), not on the page turned back.
    page = Image.fromarray(render(path, 1)).convert("L")
    for box in boxes:
        crop = page.crop((int(box.x0 * page.width), int(box.y0 * page.height),
                          int(box.x1 * page.width) + 1, int(box.y1 * page.height) + 1))
        dark = sum(1 for v in crop.getdata() if v < 128) / (crop.width * crop.height)
        assert dark > 0.05, (box, dark)

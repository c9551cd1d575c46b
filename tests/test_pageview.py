"""Page images and quote highlights, checked against PDFium's own character boxes and the ink of
the rendered page (not against the code under test)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from conftest import write_pdf
from tests.test_protocols import HashingEmbedder

from rag import Index, PageViewError
from rag.types import Quote

pdfium = pytest.importorskip("pypdfium2")
Image = pytest.importorskip("PIL.Image")

PAGES = [
    "Apples grow in orchards. " * 12 + "The orchard of Miriam Okafor covers twelve hectares near Lyon, and its "
    "cider press is the oldest in the valley. " + "Pears follow in autumn. " * 10,
    "Bananas ripen after harvest. The Cavendish banana is the most exported variety in the world, shipped "
    "green and ripened in warehouses near the ports where it lands. " + "Figs dry in the sun. " * 20,
]
QUOTE = "The Cavendish banana is the most exported variety in the world, shipped green and ripened in warehouses"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    folder = tmp_path_factory.mktemp("docs")
    write_pdf(folder / "fruit.pdf", PAGES)
    (folder / "notes.md").write_text("# Notes\n\nThe Cavendish banana is a note here.\n", encoding="utf-8")
    return Index.build([folder], tmp_path_factory.mktemp("idx"), embedder=HashingEmbedder())


def _quote(index: Index, name: str, page: int, text: str) -> Quote:
    source = next(d.source for d in index.documents() if d.name == name)
    stored = index.page_text(source, page)
    assert stored is not None
    # The stored text may break the line anywhere inside the sentence.
    match = re.search(r"\s+".join(map(re.escape, text.split())), stored)
    assert match, stored
    return Quote(text=match.group(0), source=source, page=page, start=match.start(), end=match.end())


def _pdfium_quote_chars(path: str, page: int, text: str) -> list[tuple[float, float, float, float]]:
    """PDFium's tight boxes (fractions, origin top left) of the quote's non-space characters, found
    by PDFium's own search in its own text."""
    doc = pdfium.PdfDocument(path)
    handle = doc[page - 1]
    width, height = handle.get_size()
    textpage = handle.get_textpage()
    full = textpage.get_text_range()
    words = text.split()
    match = re.search(r"\s+".join(map(re.escape, words)), full)
    assert match, "PDFium reads the quote too"
    boxes = []
    for i in range(match.start(), match.end()):
        if full[i].isspace():
            continue
        left, bottom, right, top = textpage.get_charbox(i)
        boxes.append((left / width, 1 - top / height, right / width, 1 - bottom / height))
    doc.close()
    return boxes


def _lines(chars: list[tuple[float, float, float, float]]) -> int:
    """How many text lines the boxes sit on: a new line where a box starts below the previous one."""
    lines, bottom = 0, -1.0
    for c in chars:
        if c[1] > bottom:
            lines += 1
        bottom = max(bottom, c[3]) if c[1] <= bottom else c[3]
    return lines


def test_quote_boxes_cover_exactly_pdfiums_character_boxes_of_the_quote(index: Index) -> None:
    quote = _quote(index, "fruit.pdf", 2, QUOTE)
    boxes = index.quote_boxes(quote)
    chars = _pdfium_quote_chars(quote.source, 2, quote.text)
    assert len(boxes) == _lines(chars) >= 2, "one box per line the quote spans"
    tolerance = 0.002
    for c in chars:  # every character of the quote is highlighted ...
        assert any(b.x0 - tolerance <= c[0] and c[2] <= b.x1 + tolerance and b.y0 - tolerance <= c[1]
                   and c[3] <= b.y1 + tolerance for b in boxes), c
    for b in boxes:  # ... and nothing else: each box spans its own characters, left to right
        inside = [c for c in chars if b.y0 <= (c[1] + c[3]) / 2 <= b.y1]
        assert inside
        assert abs(b.x0 - min(c[0] for c in inside)) < tolerance and abs(b.x1 - max(c[2] for c in inside)) < tolerance
        assert quote.start <= b.start < b.end <= quote.end
        assert 0 <= b.x0 < b.x1 <= 1 and 0 <= b.y0 < b.y1 <= 1
    assert boxes[0].start == quote.start and boxes[-1].end == quote.end


def test_page_image_is_a_png_of_the_page_cached_under_the_index(index: Index) -> None:
    source = next(d.source for d in index.documents() if d.name == "fruit.pdf")
    image = index.page_image(source, 2, scale=1.0)
    png = Image.open(io.BytesIO(image.png))
    assert png.format == "PNG" and png.size == (image.width, image.height)
    assert abs(image.width - 595.3) < 1 and abs(image.height - 841.9) < 1  # A4 at 72 dpi
    cached = list((index.folder / "cache" / "pages").glob("*.png"))
    assert len(cached) == 1 and cached[0].read_bytes() == image.png
    assert index.page_image("fruit.pdf", 2, scale=1.0) == image  # by file name, from the cache
    assert abs(index.page_image(source, 2).width - 595.3 * 1.5) < 1


def test_highlight_boxes_sit_on_the_ink_of_the_rendered_page(index: Index) -> None:
    quote = _quote(index, "fruit.pdf", 2, QUOTE)
    image = index.page_image(quote.source, 2, scale=2.0)
    gray = Image.open(io.BytesIO(image.png)).convert("L")
    for box in index.quote_boxes(quote):
        crop = gray.crop((int(box.x0 * image.width), int(box.y0 * image.height),
                          int(box.x1 * image.width) + 1, int(box.y1 * image.height) + 1))
        dark = sum(1 for v in crop.getdata() if v < 128) / (crop.width * crop.height)
        assert dark > 0.08, f"box {box} holds little ink ({dark:.2f})"


def test_rotated_page_boxes_follow_the_rotation(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    flat = write_pdf(tmp_path / "flat.pdf", PAGES[1:])
    writer = PdfWriter()
    for page in PdfReader(flat).pages:
        writer.add_page(page.rotate(90))
    with open(tmp_path / "docs.pdf", "wb") as f:
        writer.write(f)
    (tmp_path / "flat.pdf").unlink()
    index = Index.build([tmp_path / "docs.pdf"], tmp_path / "idx", embedder=HashingEmbedder())
    quote = _quote(index, "docs.pdf", 1, "The Cavendish banana is the most exported variety")
    image = index.page_image(quote.source, 1, scale=2.0)
    assert image.width > image.height  # the page is shown turned, as a viewer shows it
    gray = Image.open(io.BytesIO(image.png)).convert("L")
    boxes = index.quote_boxes(quote)
    assert boxes
    for box in boxes:
        assert box.y1 - box.y0 > box.x1 - box.x0  # the line runs down the turned page
        crop = gray.crop((int(box.x0 * image.width), int(box.y0 * image.height),
                          int(box.x1 * image.width) + 1, int(box.y1 * image.height) + 1))
        assert sum(1 for v in crop.getdata() if v < 128) / (crop.width * crop.height) > 0.08


def test_non_pdf_sources_have_no_boxes_and_no_image(index: Index) -> None:
    quote = _quote(index, "notes.md", 1, "The Cavendish banana is a note here.")
    assert index.quote_boxes(quote) == ()
    with pytest.raises(PageViewError, match="not a PDF"):
        index.page_image(quote.source, 1)
    with pytest.raises(PageViewError, match="not in the index"):
        index.page_image("elsewhere.pdf", 1)
    with pytest.raises(PageViewError, match="no page 3"):
        index.page_image("fruit.pdf", 3)
    with pytest.raises(PageViewError, match="scale"):
        index.page_image("fruit.pdf", 1, scale=50)


def test_a_quote_not_verbatim_in_the_stored_page_has_no_boxes(index: Index) -> None:
    quote = _quote(index, "fruit.pdf", 2, QUOTE)
    moved = Quote(text=quote.text, source=quote.source, page=quote.page, start=quote.start + 1, end=quote.end + 1)
    assert index.quote_boxes(moved) == ()


def test_a_file_changed_since_indexing_is_not_shown(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "a.pdf", ["First version of the page."])
    index = Index.build([path], tmp_path / "idx", embedder=HashingEmbedder())
    write_pdf(path, ["Second version, with other words on the page."])
    with pytest.raises(PageViewError, match="changed since it was indexed"):
        index.page_image(str(path), 1)


def test_quote_boxes_are_the_same_whichever_extractor_stored_the_text(index: Index, tmp_path: Path) -> None:
    from rag import Settings

    pdf = next(d.source for d in index.documents() if d.name == "fruit.pdf")
    other = Index.build([pdf], tmp_path / "idx", Settings(pdf_extractor="pypdf"), embedder=HashingEmbedder())
    a, b = _quote(index, "fruit.pdf", 2, QUOTE), _quote(other, "fruit.pdf", 2, QUOTE)
    assert other.page_text(pdf, 2) != index.page_text(pdf, 2) or a == b  # the stored texts may differ...
    boxes_a, boxes_b = index.quote_boxes(a), other.quote_boxes(b)
    assert len(boxes_a) == len(boxes_b) >= 2  # ... the highlights do not
    for x, y in zip(boxes_a, boxes_b):
        assert max(abs(x.x0 - y.x0), abs(x.y0 - y.y0), abs(x.x1 - y.x1), abs(x.y1 - y.y1)) < 1e-6
        assert b.text[y.start - b.start:y.end - b.start].split() == a.text[x.start - a.start:x.end - a.start].split()


def test_a_quote_from_the_start_of_a_line_over_two_lines_gets_a_box_per_line(tmp_path: Path) -> None:
    # A run that spans a whole line once swallowed the next line's first character, which lies
    # under it: both lines became one box.
    path = write_pdf(tmp_path / "vineyard.pdf", ["Tomasz Nowak planted the vineyard on the southern slope in 1987 "
                                                  "and tended its vines for thirty years before his daughter took "
                                                  "over the harvest. " * 2])
    index = Index.build([path], tmp_path / "idx", embedder=HashingEmbedder())
    stored = index.page_text(str(path), 1)
    assert stored is not None and stored.startswith("Tomasz")
    second_line = stored.index("\n") + 1
    end = stored.index(" ", second_line + 10)
    quote = Quote(text=stored[:end], source=str(path), page=1, start=0, end=end)
    boxes = index.quote_boxes(quote)
    assert len(boxes) == 2 == _lines(_pdfium_quote_chars(str(path), 1, quote.text))
    assert boxes[0].y1 <= boxes[1].y0 + 0.002 and boxes[1].start >= second_line


def test_the_page_cache_keeps_to_its_size_dropping_the_images_used_longest_ago(index: Index,
                                                                                tmp_path: Path) -> None:
    import os

    from rag.pageview import prune_page_cache, render_page

    source = next(d.source for d in index.documents() if d.name == "fruit.pdf")
    sha = index.snapshot().files()[source].sha256
    cache = tmp_path / "pages"
    render_page(Path(source), 1, 1.0, sha, cache)
    page2 = render_page(Path(source), 2, 1.0, sha, cache)
    render_page(Path(source), 2, 1.5, sha, cache)
    names = {n: cache / f"{sha}-{n}.png" for n in ("p1-s1", "p2-s1", "p2-s1.5")}
    for age, name in enumerate(names):
        os.utime(names[name], (age + 1, age + 1))  # used in this order, long ago
    size = {n: f.stat().st_size for n, f in names.items()}

    assert prune_page_cache(cache, size["p2-s1"] + size["p2-s1.5"]) == size["p1-s1"]
    assert not names["p1-s1"].exists() and names["p2-s1"].exists() and names["p2-s1.5"].exists()
    # A hit counts as a use: page 2 at scale 1 is shown again, so the other image is now the oldest.
    assert render_page(Path(source), 2, 1.0, sha, cache) == page2
    prune_page_cache(cache, size["p2-s1"])
    assert names["p2-s1"].exists() and not names["p2-s1.5"].exists()
    # The image just rendered stays even when it alone is over the bound.
    prune_page_cache(cache, 1, keep=names["p2-s1"])
    assert names["p2-s1"].exists()
    # Rendering prunes: with a one-byte bound only the new image is left.
    render_page(Path(source), 1, 1.0, sha, cache, cache_bytes=1)
    assert [p.name for p in cache.glob("*.png")] == [names["p1-s1"].name]

"""The two text extractors behind one loader: the setting, exact offsets either way, and which
pages are sent to OCR. (Hostile and shared PDFs: tests/ingest/test_load.py; OCR: tests/ingest/test_ocr.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_pdf
from tests.test_protocols import HashingEmbedder

from rag import Index, Settings, SettingsError
from rag.ingest.load import load_file
from rag.ingest.pdf import DEFAULT_EXTRACTOR, _page_list, needs_ocr, pdfium_clean

pytest.importorskip("pypdfium2")

TEXT = ["Apples grow in orchards. The orchard of Miriam Okafor covers twelve hectares near Lyon.",
        "Bananas ripen after harvest. The Cavendish banana is the most exported variety in the world."]


def test_the_extractor_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().pdf_extractor == DEFAULT_EXTRACTOR == "pdfium"
    assert Settings.from_env({"RAG_PDF_EXTRACTOR": "pypdf"}).pdf_extractor == "pypdf"
    with pytest.raises(SettingsError, match="pdf_extractor must be 'pdfium' or 'pypdf'. Currently, it is 'mupdf'"):
        Settings(pdf_extractor="mupdf")
    with pytest.raises(SettingsError, match="ocr_page_limit must be 0 or more"):
        Settings(ocr_page_limit=-1)
    assert Settings.from_env({"RAG_OCR": "off", "RAG_OCR_PAGE_LIMIT": "7"}).replace().ocr_page_limit == 7
    # Fingerprinted only off the default: indexes built before the setting existed keep opening.
    assert "pdf_extractor" not in Settings().index_fields()
    assert Settings(pdf_extractor="pypdf").index_fields()["pdf_extractor"] == "pypdf"
    assert Settings(pdf_extractor="pypdf").fingerprint() != Settings().fingerprint()
    assert Settings(ocr=False, ocr_page_limit=3).fingerprint() == Settings().fingerprint()


@pytest.mark.parametrize("extractor", ["pdfium", "pypdf"])
def test_either_extractor_reads_every_page_with_exact_offsets(tmp_path: Path, extractor: str) -> None:
    path = write_pdf(tmp_path / "fruit.pdf", TEXT)
    settings = Settings(pdf_extractor=extractor)
    pages = load_file(path, settings=settings)
    assert [p.page for p in pages] == [1, 2]
    assert all("\r" not in p.text and not p.ocr for p in pages)
    assert " ".join(pages[1].text.split()) == TEXT[1]
    index = Index.build([path], tmp_path / "idx", settings, embedder=HashingEmbedder())
    hit = index.search("Which banana variety is exported most?", k=1)[0]
    stored = index.page_text(hit.source, hit.page)
    assert stored == pages[hit.page - 1].text
    assert stored[hit.chunk.start:hit.chunk.end] == hit.chunk.text
    assert stored[hit.quote.start:hit.quote.end] == hit.quote.text


def test_an_index_built_with_one_extractor_is_not_silently_searched_as_the_other(tmp_path: Path) -> None:
    from rag import IndexMismatchError

    path = write_pdf(tmp_path / "fruit.pdf", TEXT)
    Index.build([path], tmp_path / "idx", Settings(pdf_extractor="pypdf"), embedder=HashingEmbedder())
    # (The message lists only the fields the opener asked for, so it cannot name pdf_extractor
    # here: rag.store.snapshot.check_settings should also list the index's own non-default fields.)
    with pytest.raises(IndexMismatchError, match="built with other settings"):
        Index.open(tmp_path / "idx", Settings(), embedder=HashingEmbedder())


def test_pdfium_text_is_stored_with_plain_line_breaks_and_real_hyphens() -> None:
    assert pdfium_clean("Net sales\r\nrose 5%\rin 2023; re\x02\r\nported") == "Net sales\nrose 5%\nin 2023; re-\nported"


@pytest.mark.parametrize(("text", "wanted"), [
    ("", True), ("   \n ", True), ("12", True),  # nothing, or too little to be a page's text
    ("\ufffd" * 40 + " ab", True),  # a font without a Unicode map
    ("!#$%& ()*+,-./:;<=> ?@[]^_`{|}~" * 3, True),  # glyph codes read as punctuation
    ("Net sales rose 5% to $1.2 billion in 2023, driven by volume.", False),
    ("| 2023 | 2022 |\n| 1,234 | 1,198 |\n| 5.6% | 4.9% |", False),  # a table of figures is text
])
def test_which_text_layers_need_ocr(text: str, wanted: bool) -> None:
    assert needs_ocr(text) is wanted


def test_page_lists_fold_runs() -> None:
    assert _page_list([2]) == "page 2"
    assert _page_list([51, 52, 53, 60]) == "pages 51-53, 60"
    assert _page_list(list(range(1, 40, 2))).endswith(", ...")

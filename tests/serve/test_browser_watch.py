"""``rag serve --corpus FOLDER --watch`` in headless Chromium: a slide deck saved into the watched
folder appears in the open page's library without a reload, is answered from with "slide 1",
and disappears from the library once deleted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import WAIT_MS, ask, rag_serve

pytestmark = pytest.mark.browser


def test_a_watched_folder_updates_the_open_page(browser_path: Path, page, tmp_path: Path,  # noqa: ANN001
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import expect

    # The server runs in tmp_path: this checkout's rag, not another one installed in the venv.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    import pptx

    deck = tmp_path / "made.pptx"
    made = pptx.Presentation()
    for title, body in (("Welcome", "The harbour authority's briefing."),
                        ("Ferry timetable", "The night ferry to Helsinki leaves at 23:15 from pier 4.")):
        slide = made.slides.add_slide(made.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text_frame.text = body
    made.save(str(deck))
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "harbour.md").write_text("# Harbour\n\nThe harbour opens at six in the morning.\n", encoding="utf-8")
    with rag_serve(tmp_path, "--index", str(tmp_path / "index"), "--corpus", str(folder), "--watch") as url:
        page.goto(url)
        documents = page.locator("#rag-documents")
        expect(documents).to_contain_text("harbour.md", timeout=WAIT_MS)
        shutil.copy(deck, folder / "deck.pptx")
        expect(documents).to_contain_text("deck.pptx", timeout=WAIT_MS)  # no reload: the page follows
        ask(page, "When does the night ferry to Helsinki leave?")
        card = page.locator("#rag-sources .rag-card", has=page.locator(".rag-file", has_text="deck.pptx")).first
        expect(card.locator(".rag-page")).to_have_text("slide 2")
        expect(card.locator("button.rag-open")).to_have_text("Show the slide")
        (folder / "deck.pptx").unlink()
        expect(documents).not_to_contain_text("deck.pptx", timeout=WAIT_MS)
    assert "watching" in (tmp_path / "serve.log").read_text()

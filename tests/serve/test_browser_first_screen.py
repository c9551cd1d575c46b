"""The first ten minutes on the page, in headless Chromium: what ``make run`` shows a new user.

The server is ``rag serve --collection demo --corpus docs/user-guide.md`` (``make run``). The
first screen says what the demo holds and offers example questions that answer; an upload says
where it went, and the collection it made is still in the menu after a reload. The layout is
checked at 1280 and 400 CSS pixels, light and dark, from the rendered boxes (nothing clipped,
wrapped or off screen) and from the screenshots themselves (the dark one is dark, each width lays
the page out differently). Same set-up as ``test_browser.py``; skipped without a browser.
``RAG_UPDATE_SCREENSHOT=1`` refreshes ``docs/screenshot.png`` from the answered demo question.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WAIT_MS, browser_page, rag_serve, settled, write_pdf

from rag import Index
from rag.serve.web.indexes import EXAMPLES

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PDF_NAME = "Lighthouse works 2019.pdf"

STILL = "() => !document.getAnimations().some((a) => a instanceof CSSTransition && a.playState === 'running')"
"""True once nothing slides any more (the sidebar closing on a phone, its toggle turning)."""

# Measured in the page: every box that must not be clipped or wrapped, and what the page says.
LAYOUT = """() => {
  const box = (sel) => { const e = document.querySelector(sel); if (!e) return null;
    const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height,
      right: r.right, bottom: r.bottom, text: e.innerText}; };
  const area = document.querySelector('#rag-question textarea');
  const lineHeight = (sel) => parseFloat(getComputedStyle(document.querySelector(sel)).lineHeight);
  const newChat = document.querySelector('#rag-new-chat');
  // A file name broken inside a word: some word of it spans two lines.
  const splitWords = [...document.querySelectorAll('#rag-documents .rag-file')].flatMap((cell) => {
    const text = cell.firstChild; if (!text || text.nodeType !== 3) return [];
    const words = [...text.data.matchAll(/\\S+/g)];
    return words.filter((m) => { const range = document.createRange();
      range.setStart(text, m.index); range.setEnd(text, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      return lines.size > 1; }).map((m) => m[0]);
  });
  return {
    width: window.innerWidth, height: window.innerHeight,
    question: box('#rag-question textarea'), ask: box('#rag-ask'), newChat: box('#rag-new-chat'),
    newChatLines: newChat.getBoundingClientRect().height / lineHeight('#rag-new-chat'),
    placeholderFits: area.scrollHeight <= area.clientHeight + 1,
    toggle: box('#rag-sidebar .toggle-button'),
    toggleLabel: getComputedStyle(document.querySelector('#rag-sidebar .toggle-button'), '::after').content,
    sidebarOpen: document.querySelector('#rag-sidebar').classList.contains('open'),
    chat: box('#rag-chat'), sources: box('#rag-sources'), welcome: box('.rag-welcome'), title: box('.rag-header h1'),
    text: document.body.innerText, splitWords,
  };
}"""


@pytest.fixture(scope="module")
def demo(browser_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``make run``'s server: the demo collection filled with this project's user guide."""
    work = tmp_path_factory.mktemp("serve-first-screen")
    index = work / "index"
    with rag_serve(work, "--index", str(index), "--collection", "demo", "--corpus",
                   str(ROOT / "docs" / "user-guide.md"), timeout=1500) as url:
        yield url, index


def _mean_luminance(png: bytes) -> float:
    from PIL import Image, ImageStat

    return float(ImageStat.Stat(Image.open(io.BytesIO(png)).convert("L")).mean[0])


@pytest.mark.parametrize("width", [1280, 400])
def test_the_first_screen_is_laid_out_whole_in_light_and_dark(demo: tuple[str, Path], browser_path: Path,
                                                               tmp_path: Path, width: int) -> None:
    from playwright.sync_api import expect

    url, _ = demo
    shots = {}
    for scheme in ("light", "dark"):
        with browser_page(browser_path, tmp_path / f"profile-{scheme}", width=width, height=860) as page:
            page.goto(url + ("?__theme=dark" if scheme == "dark" else ""))
            expect(page.locator("#rag-chat .example")).to_have_count(3, timeout=WAIT_MS)
            expect(page.locator("#rag-documents")).to_contain_text("user-guide.md", timeout=WAIT_MS)
            if width < 720:   # a phone: the library closes on load (narrow.js), sliding away
                expect(page.locator("#rag-sidebar")).not_to_have_class(re.compile(r"\bopen\b"))
            page.wait_for_function(STILL)
            layout = page.evaluate(LAYOUT)
            shots[scheme] = page.screenshot(path=str(tmp_path / f"first-screen-{width}-{scheme}.png"))

            # What the demo holds, its example questions, and the step to one's own documents.
            assert "This demo holds rag's own user guide" in layout["text"]
            assert [t.strip() for t in page.locator("#rag-chat .example").all_inner_texts()] == list(EXAMPLES)
            assert "Add documents" in layout["text"] and "my-documents" in layout["text"]
            assert layout["welcome"]["y"] >= layout["chat"]["y"], "the welcome's first line is not cut off"
            # The passages are below the chat on a phone, beside it on a wide screen: the page never says where.
            assert "beside the chat" not in layout["text"]
            if width < 720:
                assert layout["sources"]["y"] >= layout["chat"]["bottom"]
            else:
                assert layout["sources"]["x"] >= layout["chat"]["right"]
            # The question box fills its row and shows its whole placeholder; "New chat" is one line.
            assert layout["question"]["h"] >= layout["ask"]["h"] - 2, layout
            assert layout["placeholderFits"], layout["question"]
            assert layout["newChatLines"] < 1.6, layout["newChat"]
            for name in ("question", "ask", "newChat"):
                assert 0 <= layout[name]["x"] and layout[name]["right"] <= layout["width"], (name, layout[name])
            # The library's toggle is whole on screen and says what it opens when closed.
            toggle = layout["toggle"]
            assert toggle["x"] >= 0 and toggle["y"] >= 0 and toggle["right"] <= layout["width"], toggle
            assert layout["sidebarOpen"] == (width >= 720)
            if not layout["sidebarOpen"]:
                assert "Library" in layout["toggleLabel"] and toggle["w"] >= 60
            assert not layout["splitWords"]
            # The closed library's toggle sits over the top left corner: never over the title.
            if layout["sidebarOpen"]:
                page.locator("#rag-sidebar .toggle-button").click()
                expect(page.locator("#rag-sidebar")).not_to_have_class(re.compile(r"\bopen\b"))
                page.wait_for_function(STILL)
                layout = page.evaluate(LAYOUT)
            toggle, title = layout["toggle"], layout["title"]
            assert toggle["bottom"] <= title["y"] or toggle["right"] <= title["x"], (toggle, title)
            if width < 720:   # open on a phone, the library covers the page: its toggle leads back, whole
                page.locator("#rag-sidebar .toggle-button").click()
                expect(page.locator("#rag-sidebar")).to_have_class(re.compile(r"\bopen\b"))
                page.wait_for_function(STILL)
                opened = page.evaluate(LAYOUT)
                toggle = opened["toggle"]
                assert "Chat" in opened["toggleLabel"] and 0 <= toggle["x"] and toggle["right"] <= width, toggle
    # The screenshots themselves: dark is dark, light is light.
    assert _mean_luminance(shots["light"]) > 180 > 60 > _mean_luminance(shots["dark"])


def test_an_example_question_answers_and_an_upload_says_where_it_went_and_stays(
        demo: tuple[str, Path], browser_path: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    url, index = demo
    with browser_page(browser_path, tmp_path / "profile", width=1280, height=860) as page:
        page.goto(url)
        page.locator("#rag-chat .example").first.click()
        reply = page.locator("#rag-chat .message-row.bot-row").last
        expect(reply).to_contain_text("internet", timeout=WAIT_MS)
        settled(page)
        expect(page.locator("#rag-sources .rag-card").first.locator(".rag-file")).to_have_text("user-guide.md")
        if os.environ.get("RAG_UPDATE_SCREENSHOT") == "1":
            page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))
        for question in EXAMPLES:   # each example is answered from the guide, not "Not found"
            assert Index.open(index, collection="demo").ask(question).found, question

        # "Read the whole passage" replaces the preview instead of repeating it under it.
        card = page.locator("#rag-sources .rag-card").first
        expect(card.locator(".rag-snippet")).to_be_visible()
        card.locator("summary").click()
        expect(card.locator(".rag-passage")).to_be_visible()
        expect(card.locator(".rag-snippet")).to_be_hidden()

        # Remove says what it needs: disabled until a document is chosen.
        expect(page.locator("#rag-remove")).to_be_disabled()
        page.locator("#rag-remove-choice input").click()
        page.get_by_role("option", name="user-guide.md").click()
        expect(page.locator("#rag-remove")).to_be_enabled()

        pdf = write_pdf(tmp_path / PDF_NAME, [
            "Lighthouse works. The Skerryvore lighthouse was repainted in 2019 by the contractor Fenwick Marine "
            "Services. The work took eleven weeks."])
        notes = tmp_path / "harbour notes.md"
        notes.write_text("# Harbour notes\n\nThe pilot boat leaves at dawn from the north quay.\n")
        page.set_input_files("#rag-upload input[type=file]", [str(pdf), str(notes)])
        report = page.locator("#rag-ingest-report")
        expect(report.locator(".rag-ok")).to_contain_text("Added 2 files to my-documents:", timeout=WAIT_MS)
        expect(report).to_contain_text("user-guide.md stays in demo")
        expect(page.locator("#rag-collection input")).to_have_value("my-documents")
        page.reload()
        _pick_the_upload_collection(page)

    with browser_page(browser_path, tmp_path / "profile-new-tab", width=1280, height=860) as page:
        page.goto(url)
        _pick_the_upload_collection(page)


def _pick_the_upload_collection(page) -> None:  # noqa: ANN001 - playwright.sync_api.Page
    """A fresh page lists the collection an upload made (read from the index folder), and shows it."""
    from playwright.sync_api import expect

    expect(page.locator("#rag-collection input")).to_have_value("demo")
    expect(page.locator("#rag-documents")).to_contain_text("user-guide.md")
    page.locator("#rag-collection input").click()
    page.get_by_role("option", name="my-documents").click()
    expect(page.locator("#rag-documents")).to_contain_text(PDF_NAME)
    expect(page.locator("#rag-documents")).to_contain_text("harbour notes.md")
    expect(page.locator("#rag-chat .example")).to_have_count(0)   # the examples are the demo's

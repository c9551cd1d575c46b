"""A cited source, shown, in headless Chromium: Markdown rendered and inert, the quote marked in its
whole document, a PDF page as an image with boxes over the quote's characters, and the page at
a phone's width.

Same set-up as ``test_browser.py``: the real ``rag serve`` over real files in a subprocess,
Debian's chromium driven by Playwright; skipped without a browser. Where the highlight boxes of a
PDF page should be is computed here independently, from PDFium's own character boxes
(``PdfTextPage.get_charbox``) of the quote's characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WAIT_MS, ask, browser_page, rag_serve, write_pdf

pytestmark = pytest.mark.browser

LONG_TOKEN = "sha256:" + "0123456789abcdef" * 25
HARBOUR = f"""# Harbour notes

The harbour master Yannick Le Goff signs the tide tables every Monday.

<img src=x onerror="window.__owned = 1"><script>window.__owned = 2</script>
[a trap](javascript:window.__owned=3)

## Tide table

| port | high tide | master |
|---|---|---|
| Brest | 7.2 metres | Yannick Le Goff |
| Roscoff | 8.1 metres | Anne Kervella |

Checksum of the tide file: {LONG_TOKEN}
"""
ORCHARD = ["Apples grow in orchards across the valley. This page is about the valley's soil and its rivers.",
           "The orchard of Miriam Okafor covers twelve hectares near Lyon. It was planted in 1998."]
VINEYARD = ["The vineyard of Tomasz Nowak was planted on the southern slope in 2004 with cuttings brought from "
            "Burgundy, and it yields about forty barrels of red wine in a good year."]
"""One sentence over two lines of the page: its highlight is two boxes, one per line."""


@pytest.fixture(scope="module")
def server(browser_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``rag serve`` over a Markdown file and a PDF; yields (url, folder of the files)."""
    work = tmp_path_factory.mktemp("serve-sources")
    corpus = work / "corpus"
    corpus.mkdir()
    (corpus / "harbour.md").write_text(HARBOUR)
    write_pdf(corpus / "orchard.pdf", ORCHARD)
    write_pdf(corpus / "vineyard.pdf", VINEYARD)
    with rag_serve(work, "--index", str(work / "index"), "--corpus", str(corpus)) as url:
        yield url, corpus


def open_citation(page, n: int = 1):  # noqa: ANN001, ANN201 - playwright Page and Locator
    """Click citation ``n``'s button and return the viewer once it shows."""
    page.locator("#rag-sources .rag-card").nth(n - 1).locator("button.rag-open").click()
    viewer = page.locator("#rag-viewer .rag-viewer")
    viewer.wait_for(timeout=WAIT_MS)
    return viewer


def test_a_text_citation_opens_the_whole_document_with_the_quote_marked(server: tuple[str, Path],
                                                                         page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    url, _ = server
    page.goto(url)
    ask(page, "Who signs the tide tables?")
    expect(page.locator("#rag-chat .message-row.bot-row").last).to_contain_text("Yannick Le Goff")
    card = page.locator("#rag-sources .rag-card").first
    expect(card.locator(".rag-file")).to_have_text("harbour.md")
    quote = card.locator(".rag-snippet mark").all_inner_texts()
    assert "Yannick Le Goff signs the tide tables" in " ".join(quote)

    viewer = open_citation(page)
    expect(viewer.locator(".rag-file")).to_have_text("harbour.md")
    body = viewer.locator(".rag-viewer-body")
    # The whole document, rendered: its heading, and its Markdown table as a real table.
    expect(body.locator("h1")).to_have_text("Harbour notes")
    table = body.locator("table")
    expect(table).to_have_count(1)
    expect(table.locator("th")).to_have_text(["port", "high tide", "master"])
    expect(table.locator("tbody tr")).to_have_count(2)
    # The quote is marked, exactly, and in view.
    marks = body.locator("mark")
    assert " ".join(marks.all_inner_texts()).split() == " ".join(quote).split()
    box, view = marks.first.bounding_box(), body.bounding_box()
    assert box and view and view["y"] <= box["y"] and box["y"] + box["height"] <= view["y"] + view["height"]
    # The document's HTML is text: nothing of it ran, nothing became a link or an image.
    expect(body).to_contain_text('<img src=x onerror="window.__owned = 1"><script>window.__owned = 2</script>')
    expect(body).to_contain_text("[a trap](javascript:window.__owned=3)")
    assert body.locator("img, script, a[href^=javascript]").count() == 0
    # A long unbroken token wraps inside the viewer instead of widening it.
    assert page.evaluate("(el) => el.scrollWidth <= el.clientWidth", body.element_handle())
    page.keyboard.press("Escape")
    expect(page.locator("#rag-viewer .rag-viewer")).to_have_count(0)
    # Opened again (the same citation), it shows again.
    open_citation(page)
    page.locator("#rag-viewer .rag-close").click()
    expect(page.locator("#rag-viewer .rag-viewer")).to_have_count(0)
    assert page.evaluate("window.__owned") is None


def _quote_char_boxes(pdf: Path, page_number: int, quote: str) -> list[tuple[float, float, float, float]]:
    """PDFium's tight boxes of the quote's visible characters, as fractions of the page (origin top left)."""
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(pdf))
    try:
        handle = doc[page_number - 1]
        width, height = handle.get_size()
        text = handle.get_textpage()
        chars = [text.get_text_range(i, 1) for i in range(text.count_chars())]
        words = quote.split()
        # The quote as PDFium reads it: the same words, whatever whitespace PDFium put between lines.
        found = re.search(r"\s*".join(re.escape(w) for w in words), "".join(c[:1] or " " for c in chars))
        assert found, (quote, "".join(chars))
        boxes = []
        for i in range(found.start(), found.end()):
            if chars[i].strip():
                left, bottom, right, top = text.get_charbox(i)
                boxes.append((left / width, 1 - top / height, right / width, 1 - bottom / height))
        text.close()
        handle.close()
        return boxes
    finally:
        doc.close()


def check_page_highlight(page, corpus: Path, question: str, answer: str, name: str, number: int,  # noqa: ANN001
                         lines: int) -> None:
    """Ask, open the first citation (a PDF page) and check its boxes against PDFium's character boxes."""
    from playwright.sync_api import expect

    ask(page, question)
    expect(page.locator("#rag-chat .message-row.bot-row").last).to_contain_text(answer)
    card = page.locator("#rag-sources .rag-card").first
    expect(card.locator(".rag-file")).to_have_text(name)
    expect(card.locator(".rag-page")).to_have_text(f"page {number}")
    expect(card.locator("button.rag-open")).to_have_text("Show the page")
    quote = " ".join(card.locator(".rag-snippet mark").all_inner_texts())
    assert answer in quote

    viewer = open_citation(page)
    image = viewer.locator(".rag-pageview img")
    expect(image).to_be_visible()
    assert (image.get_attribute("src") or "").startswith("data:image/png;base64,"), "no file route is opened"
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    frame = image.bounding_box()
    assert frame
    drawn = []
    for element in viewer.locator(".rag-box").all():
        b = element.bounding_box()
        assert b
        drawn.append(((b["x"] - frame["x"]) / frame["width"], (b["y"] - frame["y"]) / frame["height"],
                      (b["x"] + b["width"] - frame["x"]) / frame["width"],
                      (b["y"] + b["height"] - frame["y"]) / frame["height"]))
    chars = _quote_char_boxes(corpus / name, number, quote)
    assert len(drawn) == lines, ("one box per line of the quote", drawn)
    slack_x, slack_y = 3 / frame["width"], 0.012  # a few pixels; the boxes are the font's line height
    for x0, y0, x1, y1 in chars:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        assert any(a - slack_x <= cx <= c + slack_x and b - slack_y <= cy <= d + slack_y for a, b, c, d in drawn), \
            ("a character of the quote is not highlighted", (cx, cy), drawn)
    def nearest(ch: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        # Lines are closer than the slack: a character belongs to the box of its own line.
        return min(drawn, key=lambda box: abs((box[1] + box[3]) / 2 - (ch[1] + ch[3]) / 2))

    for a, b, c, d in drawn:
        inside = [ch for ch in chars if nearest(ch) == (a, b, c, d)]
        assert inside, ("a box covers none of the quote", (a, b, c, d))
        # A box spans its line's characters of the quote: from the first one's left edge to the
        # last one's right, and their height (the font's, a little more than the letters').
        assert abs(a - min(ch[0] for ch in inside)) <= slack_x and abs(c - max(ch[2] for ch in inside)) <= slack_x
        assert b <= min(ch[1] for ch in inside) + slack_y and d >= max(ch[3] for ch in inside) - slack_y
        assert d - b <= 2 * max(ch[3] - ch[1] for ch in inside) + slack_y, ("a box taller than its line", (b, d))
    box = viewer.locator(".rag-box").first.bounding_box()
    body = viewer.locator(".rag-viewer-body").bounding_box()
    assert box and body and body["y"] <= box["y"] <= body["y"] + body["height"], "the quote is scrolled into view"
    page.keyboard.press("Escape")
    expect(page.locator("#rag-viewer .rag-viewer")).to_have_count(0)


def test_a_pdf_citation_opens_its_page_image_with_boxes_over_the_quote(server: tuple[str, Path],
                                                                         page) -> None:  # noqa: ANN001
    url, corpus = server
    page.goto(url)
    check_page_highlight(page, corpus, "How large is the orchard of Miriam Okafor?", "twelve hectares",
                         "orchard.pdf", 2, lines=1)


def test_a_quote_over_two_lines_of_a_pdf_gets_a_box_per_line(server: tuple[str, Path], page) -> None:  # noqa: ANN001
    url, corpus = server
    page.goto(url)
    check_page_highlight(page, corpus, "Who planted the vineyard on the southern slope?", "Tomasz Nowak",
                         "vineyard.pdf", 1, lines=2)


def test_at_a_phones_width_the_chat_comes_first_and_the_sources_are_one_tap_away(
        server: tuple[str, Path], browser_path: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    url, _ = server
    with browser_page(browser_path, tmp_path / "profile", width=400, height=800) as page:
        page.goto(url)
        # The library (a sidebar as wide as the screen here) does not cover the chat.
        question = page.locator("#rag-question textarea")
        expect(question).to_be_visible()
        expect(page.locator("#rag-sidebar")).not_to_have_class(re.compile(r"\bopen\b"))
        ask(page, "Who signs the tide tables?")
        chat, sources = page.locator("#rag-chat").bounding_box(), page.locator("#rag-sources").bounding_box()
        assert chat and sources and chat["y"] < sources["y"] and chat["y"] < 800, "the chat first, in view"
        assert page.evaluate("document.documentElement.scrollWidth") <= 400, "nothing widens the page"
        jump = page.locator(".rag-jump")
        expect(jump).to_be_visible()
        jump.click()
        card = page.locator("#rag-sources .rag-card").first
        expect(card).to_be_in_viewport()
        viewer = open_citation(page)
        frame = viewer.locator(".rag-viewer-box").bounding_box()
        assert frame and frame["width"] <= 400
        assert page.evaluate("document.documentElement.scrollWidth") <= 400

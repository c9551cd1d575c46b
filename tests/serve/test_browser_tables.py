"""A table answer in the web chat, in headless Chromium: the working shown, the operand cells
highlighted in their table, and a question asked of one document only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ask, rag_serve
from tests.ingest.test_tables import CSV_LIKE, SALES

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(browser_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("serve-tables")
    docs = work / "docs"
    docs.mkdir()
    (docs / "sales.md").write_text(SALES, encoding="utf-8")
    (docs / "regions.md").write_text(CSV_LIKE, encoding="utf-8")
    with rag_serve(work, "--index", str(work / "index"), "--host", "127.0.0.1", "--corpus", str(docs)) as url:
        yield url


def test_operands_highlighted_in_their_table(server: str, page, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.goto(server)
    expect(page.locator("#rag-documents")).to_contain_text("sales.md")
    ask(page, "What is the change in Other in 2019 from 2018?")
    expect(page.locator("#rag-chat .message-row.bot-row").last).to_contain_text(
        "−12.6 million (44.1 − 56.7: Other, 2019 and 2018)")
    working = page.locator("#rag-sources .rag-working")
    expect(working.locator(".rag-working-line")).to_contain_text("change: 44.1 − 56.7")
    operands = working.locator(".rag-grid td.rag-operand")
    expect(operands).to_have_count(2)
    expect(operands.nth(0)).to_have_text("44.1")
    expect(operands.nth(1)).to_have_text("56.7")
    expect(operands.nth(0)).to_have_attribute("title", "[1] Other · Years Ended September 30, 2019")
    # the cells beside them are shown, not marked
    expect(working.locator(".rag-grid td", has_text="70.8")).not_to_have_class("rag-operand")
    # the operand is marked: its cell's outline is drawn
    assert operands.nth(0).evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    cards = page.locator("#rag-sources .rag-card.rag-citation")
    expect(cards).to_have_count(2)
    expect(cards.nth(0).locator(".rag-snippet mark")).to_have_text("44.1")
    page.locator("#rag-sources .rag-working").screenshot(path=str(tmp_path / "working.png"))


def test_ask_about_this_document(server: str, page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.goto(server)
    expect(page.locator("#rag-documents")).to_contain_text("regions.md")
    page.locator("#rag-settings").get_by_text("Answer settings").click()
    page.locator("#rag-scope input").click()
    page.get_by_role("option", name="sales.md").click()
    ask(page, "What is the change in East from 2022 to 2023?")
    # East is a row of regions.md only: asked of sales.md, no table answers it
    expect(page.locator("#rag-sources .rag-working")).to_have_count(0)
    page.locator("#rag-scope input").click()
    page.get_by_role("option", name="All documents").click()
    ask(page, "What is the change in East from 2022 to 2023?")
    expect(page.locator("#rag-chat .message-row.bot-row").last).to_contain_text("−230 (1,980 − 2,210: East")
    expect(page.locator("#rag-sources .rag-working .rag-operand")).to_have_count(2)

"""The web chat as a person uses it, in headless Chromium: ask, read the sources, upload, ask, remove.

Runs Debian's chromium (``/usr/bin/chromium``, or ``$RAG_CHROMIUM``) through Playwright; no browser
is ever downloaded. The server is the real ``rag serve`` command in a subprocess. (The README's
screenshot comes from ``test_browser_first_screen.py``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WAIT_MS, ask, rag_serve, settled, write_pdf

pytestmark = pytest.mark.browser

SEED_NAME = "000_17d6ea71f6fbed30.txt"
PDF_NAME = "Harbour report 2019.pdf"


@pytest.fixture(scope="module")
def server(browser_path: Path, seed_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``rag serve`` over the seed article, on a free port; yields (url, index folder)."""
    work = tmp_path_factory.mktemp("serve")
    index = work / "index"
    with rag_serve(work, "--index", str(index), "--host", "127.0.0.1", "--corpus", str(seed_dir)) as url:
        yield url, index


def test_ask_read_sources_upload_ask_remove(server: tuple[str, Path], page, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    url, index = server
    page.goto(url)
    expect(page.locator("#rag-documents")).to_contain_text(SEED_NAME)

    ask(page, "Who called for UN visits?")
    reply = page.locator("#rag-chat .message-row.bot-row").last
    expect(reply).to_contain_text("Rajavi")
    # A fact: its span as the headline, then its sentence with the span in bold.
    expect(reply.locator(".rag-headline")).to_have_text("Mrs. Maryam Rajavi")
    expect(reply.locator("strong").first).to_have_text("Mrs. Maryam Rajavi")
    expect(reply).to_contain_text("delegations to visit Iran")
    card = page.locator("#rag-sources .rag-card").filter(
        has=page.locator(".rag-snippet mark", has_text="delegations to visit Iran"))
    expect(card).to_have_count(1)
    expect(card.locator(".rag-file")).to_have_text(SEED_NAME)
    expect(card.locator(".rag-page")).to_have_text("page 1")
    expect(card.locator(".rag-passage")).to_be_hidden()
    card.locator("summary").click()
    expect(card.locator(".rag-passage mark")).to_contain_text("delegations to visit Iran")

    pdf = write_pdf(tmp_path / PDF_NAME, [
        "Harbour authority annual report. This report covers the upkeep of the coastal lights of the northern "
        "district and the budget of the pilot service.",
        "The Skerryvore lighthouse was repainted in 2019 by the contractor Fenwick Marine Services. "
        "The work took eleven weeks and was paid from the reserve fund.",
    ])
    broken = tmp_path / "scan.pdf"
    broken.write_bytes(b"%PDF-1.4 this file was cut short")
    page.set_input_files("#rag-upload input[type=file]", [str(pdf), str(broken)])
    expect(page.locator("#rag-ingest-report .rag-ok")).to_contain_text(f"Added 1 file to default: {PDF_NAME}", timeout=WAIT_MS)
    expect(page.locator("#rag-ingest-report .rag-failed li")).to_contain_text("scan.pdf: ")
    expect(page.locator("#rag-documents")).to_contain_text(PDF_NAME)
    expect(page.locator("#rag-documents")).not_to_contain_text("scan.pdf")
    assert (index / "uploads" / PDF_NAME).is_file() and not (index / "uploads" / "scan.pdf").exists()

    ask(page, "Which contractor repainted the Skerryvore lighthouse?")
    expect(page.locator("#rag-chat .message-row.bot-row").last).to_contain_text("Fenwick Marine Services")
    card = page.locator("#rag-sources .rag-card").first
    expect(card.locator(".rag-file")).to_have_text(PDF_NAME)
    expect(card.locator(".rag-page")).to_have_text("page 2")
    expect(card.locator(".rag-snippet mark")).to_contain_text("Fenwick Marine Services")

    # A click on the first answer brings its sources back.
    page.locator("#rag-chat [data-testid=bot]").first.click()
    expect(page.locator("#rag-sources .rag-card").first.locator(".rag-file")).to_have_text(SEED_NAME)
    settled(page)

    page.locator("#rag-remove-choice input").click()
    page.get_by_role("option", name=PDF_NAME).click()
    # Removing asks first: a dismissed dialog removes nothing, an accepted one removes the file.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#rag-remove")
    page.wait_for_timeout(1500)
    expect(page.locator("#rag-documents")).to_contain_text(PDF_NAME)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#rag-remove")
    expect(page.locator("#rag-ingest-report .rag-ok")).to_contain_text(f"Removed {PDF_NAME}", timeout=WAIT_MS)
    expect(page.locator("#rag-documents")).not_to_contain_text(PDF_NAME)
    assert not (index / "uploads" / PDF_NAME).exists()


def test_three_turn_conversation_shows_what_was_searched_and_new_chat_forgets(server: tuple[str, Path],
                                                                              page) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    url, _ = server
    page.goto(url)
    ask(page, "Who called for UN visits?")
    expect(page.locator("#rag-chat .message-row.bot-row").last).to_contain_text("Rajavi")
    ask(page, "What did she say they should assess?")
    second = page.locator("#rag-chat .message-row.bot-row").last
    expect(second).to_contain_text("searched: What did Mrs. Maryam Rajavi say")
    expect(page.locator("#rag-sources")).to_contain_text("situation inside prisons")
    ask(page, "Whom should the delegations meet?")
    expect(page.locator("#rag-sources")).to_contain_text("political prisoners")
    expect(page.locator("#rag-chat .message-row.bot-row")).to_have_count(3)

    page.click("#rag-new-chat")
    expect(page.locator("#rag-chat .message-row.bot-row")).to_have_count(0)
    ask(page, "What did she say they should assess?")
    # A new conversation: nothing to lean on, so nothing was rewritten.
    expect(page.locator("#rag-chat .message-row.bot-row").last).not_to_contain_text("searched:")

"""The web chat as a person uses it, in headless Chromium: ask, read the sources, upload, ask, remove.

Runs Debian's chromium (``/usr/bin/chromium``, or ``$RAG_CHROMIUM``) through Playwright; no browser
is ever downloaded. The server is the real ``rag serve`` command in a subprocess. Set
``RAG_UPDATE_SCREENSHOT=1`` to refresh ``docs/screenshot.png`` from this run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import write_pdf

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("RAG_CHROMIUM", "/usr/bin/chromium"))
SEED_NAME = "000_17d6ea71f6fbed30.txt"
PDF_NAME = "Harbour report 2019.pdf"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000
"""Upper bound for one answer or one upload on a busy 2-core machine (a hang fails, slowness does not)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def browser_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium, or `make "
                    f"chromium`) or point RAG_CHROMIUM at one; the browser tests are skipped")
    pytest.importorskip("playwright.sync_api",
                        reason="the playwright package is not installed (pip install -e '.[test]')")
    return CHROMIUM


@pytest.fixture(scope="module")
def server(browser_path: Path, seed_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``rag serve`` over the seed article, on a free port; yields (url, index folder)."""
    work = tmp_path_factory.mktemp("serve")
    index = work / "index"
    port = free_port()
    log = open(work / "serve.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--host", "127.0.0.1", "--port", str(port),
         "--corpus", str(seed_dir)],
        cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                pytest.fail(f"rag serve exited with {process.returncode}:\n{(work / 'serve.log').read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rag serve did not answer on {url}:\n{(work / 'serve.log').read_text()}")
            time.sleep(0.5)
        yield url, index
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def page(browser_path: Path, tmp_path: Path):  # noqa: ANN201 - playwright.sync_api.Page
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(browser_path), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1440, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()


def ask(page, question: str) -> None:  # noqa: ANN001 - Page
    answers = page.locator("#rag-chat .message-row.bot-row").count()
    page.fill("#rag-question textarea", question)
    page.click("#rag-ask")
    page.locator("#rag-chat .message-row.bot-row").nth(answers).wait_for(timeout=WAIT_MS)
    settled(page)


def settled(page) -> None:  # noqa: ANN001 - Page
    """Wait until the sources panel has finished updating (Gradio fades a component while it is pending)."""
    from playwright.sync_api import expect

    expect(page.locator("#rag-sources .pending")).to_have_count(0, timeout=WAIT_MS)


def test_ask_read_sources_upload_ask_remove(server: tuple[str, Path], page, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    url, index = server
    page.goto(url)
    expect(page.locator("#rag-documents")).to_contain_text(SEED_NAME)

    ask(page, "Who called for UN visits?")
    reply = page.locator("#rag-chat .message-row.bot-row").last
    expect(reply).to_contain_text("Rajavi")
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
    expect(page.locator("#rag-ingest-report .rag-ok")).to_contain_text(f"Added 1 file: {PDF_NAME}", timeout=WAIT_MS)
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
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))
    if os.environ.get("RAG_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")

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

"""Collections on the page, in headless Chromium: the demo stays the demo, an upload gets its own.

As a new user meets it after ``make run``: the page shows the ``demo`` collection; a file uploaded
there goes to a new collection (``my-documents``), the page switches to it, and its questions are
answered from the upload only. Same set-up as ``test_browser.py`` (Debian's chromium, the real
``rag serve`` in a subprocess); skipped without a browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WAIT_MS, ask, rag_serve, write_pdf
from tests.serve.test_browser import SEED_NAME

from rag import Index

pytestmark = pytest.mark.browser

PDF_NAME = "Lighthouse works 2019.pdf"


@pytest.fixture(scope="module")
def demo_server(browser_path: Path, seed_dir: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[str, Path]]:
    """``rag serve --collection demo --corpus SEED`` (what ``make run`` does with the guide)."""
    work = tmp_path_factory.mktemp("serve-collections")
    index = work / "index"
    with rag_serve(work, "--index", str(index), "--collection", "demo", "--corpus", str(seed_dir),
                   timeout=1500) as url:
        yield url, index


def test_an_upload_to_the_demo_goes_to_its_own_collection(demo_server: tuple[str, Path], page,  # noqa: ANN001
                                                           tmp_path: Path) -> None:
    from playwright.sync_api import expect

    url, index = demo_server
    page.goto(url)
    expect(page.locator("#rag-collection input")).to_have_value("demo")
    expect(page.locator("#rag-documents")).to_contain_text(SEED_NAME)

    pdf = write_pdf(tmp_path / PDF_NAME, [
        "Lighthouse works. The Skerryvore lighthouse was repainted in 2019 by the contractor Fenwick Marine "
        "Services. The work took eleven weeks."])
    page.set_input_files("#rag-upload input[type=file]", [str(pdf)])
    expect(page.locator("#rag-ingest-report .rag-ok")).to_contain_text(f"Added 1 file to my-documents: {PDF_NAME}", timeout=WAIT_MS)
    expect(page.locator("#rag-ingest-report")).to_contain_text(f"{SEED_NAME} stays in demo")
    expect(page.locator("#rag-collection input")).to_have_value("my-documents")
    expect(page.locator("#rag-documents")).to_contain_text(PDF_NAME)
    expect(page.locator("#rag-documents")).not_to_contain_text(SEED_NAME)

    ask(page, "Which contractor repainted the Skerryvore lighthouse?")
    expect(page.locator("#rag-chat .message-row.bot-row").last).to_contain_text("Fenwick Marine Services")
    # The demo's article is not in the upload's collection: its question finds nothing there.
    ask(page, "Who called for UN visits?")
    expect(page.locator("#rag-chat .message-row.bot-row").last).not_to_contain_text("Rajavi")
    expect(page.locator("#rag-sources")).not_to_contain_text(SEED_NAME)

    assert [d.name for d in Index.open(index, collection="demo").documents()] == [SEED_NAME]
    assert [d.name for d in Index.open(index, collection="my-documents").documents()] == [PDF_NAME]
    assert (index / "collections" / "my-documents" / "uploads" / PDF_NAME).is_file()

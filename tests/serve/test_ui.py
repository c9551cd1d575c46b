"""The web chat without a browser: safe uploads, escaped rendering, the ``/ask`` API from gradio_client.

The server runs in a thread over a real index (real model, real FAISS, a real PDF); the API is
called exactly as another application would call it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, wait_until, write_pdf

from rag import Answer, Index
from rag.serve.markdown_marks import highlight
from rag.serve.render import render_reply, render_sources
from rag.serve.uploads import UPLOADS, add_uploads, remove_document, safe_filename, store_uploads
from rag.serve.web import build_app, launch, open_index

ROOT = Path(__file__).resolve().parents[2]
INJECTION = "<script>alert('owned')</script><img src=x onerror=alert(1)> **bold** [link](http://evil.example) $x$"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "tides.txt").write_text("The tide tables are printed every Monday. High tide in Brest reached 7.2 metres "
                                      "on 3 March. Harbour master Yannick Le Goff signs the tide tables.\n")
    (folder / "bees.md").write_text("# Bees\n\nA honey bee colony keeps one queen. Worker bees live about six weeks "
                                    "in summer.\n")
    (folder / "vault.txt").write_text(f"The vault key is kept by the archivist Ingrid Halvorsen. {INJECTION}\n")
    write_pdf(folder / "orchard.pdf", ["Apples grow in orchards across the valley.",
                                       "The orchard of Miriam Okafor covers twelve hectares near Lyon."])
    return folder


@pytest.fixture(scope="module")
def index(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index.build([corpus], tmp_path_factory.mktemp("idx"))


@pytest.fixture(scope="module")
def url(index: Index) -> Iterator[str]:
    demo = launch(build_app(index), "127.0.0.1", free_port(), block=False)
    try:
        yield demo.local_url
    finally:
        demo.close()


def found_answer(index: Index, question: str) -> Answer:
    """An answer citing the best sentence of each of the top two hits (real hits, real quotes)."""
    hits = index.search(question, k=3)
    return Answer(question=question, text="An answer [1][2]", found=True, citations=(hits[0].quote, hits[1].quote),
                  hits=tuple(hits), mode="extractive")


# -- uploads -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "safe"), [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\Windows\\win.ini.md", "win.ini.md"),
    (".hidden.md", "hidden.md"),
    ("...", "document"),
    ("-rf .TXT", "rf.txt"),
    ("Résumé (final) 2024.PDF", "Résumé (final) 2024.pdf"),
    ("a\x00b\nc\u202e.html", "a_b_c.html"),
    ("x" * 300 + ".md", "x" * 80 + ".md"),
])
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_store_uploads_keeps_safe_unique_copies_and_says_why_it_refuses(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "notes.md").write_text("# Notes\n\nFirst version.")
    (incoming / "tool.exe").write_bytes(b"MZ...")
    (incoming / "big.txt").write_text("x" * 2000)
    (incoming / "empty.txt").write_text("")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("# Notes\n\nAnother file with the same name.")
    target = tmp_path / "index" / UPLOADS

    stored, refused = store_uploads([incoming / "notes.md", incoming / "tool.exe", incoming / "big.txt",
                                     incoming / "empty.txt", other / "notes.md"], target, max_bytes=1000)

    assert [(original, path.name) for original, path in stored] == [("notes.md", "notes.md"),
                                                                     ("notes.md", "notes-2.md")]
    assert all(path.parent == target for _, path in stored)
    assert (target / "notes-2.md").read_text() == "# Notes\n\nAnother file with the same name."
    reasons = {failure.source: failure.reason for failure in refused}
    assert "unsupported file type '.exe'" in reasons["tool.exe"]
    assert "too large" in reasons["big.txt"] and "limit" in reasons["big.txt"]
    assert "empty" in reasons["empty.txt"]
    again, _ = store_uploads([incoming / "notes.md"], target)
    assert again[0][1] == target / "notes.md", "the same content under the same name is not copied twice"
    assert sorted(p.name for p in target.iterdir()) == ["notes-2.md", "notes.md"], "no temporary file left behind"


def test_add_uploads_ingests_reports_failures_and_remove_deletes_the_copy(tmp_path: Path) -> None:
    index = Index(tmp_path / "index")
    (tmp_path / "garden.md").write_text("# Garden\n\nThe greenhouse tomatoes were planted on 4 April by Tomasz Nowak.")
    (tmp_path / "broken.pdf").write_bytes(b"this is not a PDF at all")

    stored, failed, report = add_uploads(index, [tmp_path / "garden.md", tmp_path / "broken.pdf"])

    assert report is not None and [path.name for _, path in stored] == ["garden.md"]
    assert [f.source for f in failed] == ["broken.pdf"] and failed[0].reason
    assert not (index.folder / UPLOADS / "broken.pdf").exists(), "a copy the index cannot read is not kept"
    assert [d.name for d in index.documents()] == ["garden.md"]
    assert index.search("Who planted the greenhouse tomatoes?", k=1)[0].name == "garden.md"
    assert Index.open(index.folder).documents()[0].source == str(index.folder / UPLOADS / "garden.md")

    remove_document(index, str(index.folder / UPLOADS / "garden.md"))
    assert index.documents() == [] and not (index.folder / UPLOADS / "garden.md").exists()


# -- rendering ---------------------------------------------------------------------------------


def test_highlight_marks_the_span_and_escapes_everything() -> None:
    text = "before <b>bold</b> & the quoted <i>part</i> after"
    start = text.index("the quoted")
    end = text.index(" after")
    out = highlight(text, start, end)
    assert out == ("before &lt;b&gt;bold&lt;/b&gt; &amp; <mark>the quoted &lt;i&gt;part&lt;/i&gt;</mark> after")
    long = "word " * 100 + "QUOTE" + " word" * 100
    cut = highlight(long, 500, 505, context=40)
    assert cut.startswith("… ") and cut.endswith(" …") and "<mark>QUOTE</mark>" in cut and len(cut) < 120


def test_a_question_is_shown_as_text() -> None:
    from rag.serve.render import question_html

    out = question_html(INJECTION)
    assert "<script" not in out and "<img" not in out and "<strong>" not in out and "<a " not in out
    assert "**bold**" in out and "&lt;script&gt;" in out


def test_sources_show_each_quote_highlighted_in_its_passage(index: Index) -> None:
    answer = found_answer(index, "Who signs the tide tables?")
    html_text = render_sources(answer, index)
    assert html_text.count('class="rag-card rag-citation"') == 2
    first = answer.citations[0]
    assert f"<mark>{first.text}</mark>" in html_text
    # The card names the file, never its absolute path on the server (rag.serve.public).
    assert f'<span class="rag-file" title="{first.name}">{first.name}</span>' in html_text and first.source not in html_text
    assert f'<span class="rag-page">page {first.page}</span>' in html_text
    assert html_text.count("<details><summary>Read the whole passage</summary>") == 2
    reply = render_reply(answer)
    assert "[1]" in reply and f"{first.name}, page {first.page}" in reply
    assert 'data-cite="0"' in html_text and 'data-cite="1"' in html_text, "each card opens its quote"


def test_document_text_never_becomes_markup(index: Index) -> None:
    hits = index.search("Who keeps the vault key?", k=2)
    assert hits[0].name == "vault.txt" and "<script>" in hits[0].text
    answer = Answer(question="Who keeps the vault key? <script>x()</script>", text=f"Ingrid {INJECTION} [1]",
                    found=True, citations=(hits[0].quote,), hits=tuple(hits), mode="extractive")
    panel, reply = render_sources(answer, index), render_reply(answer)
    for html_text in (panel, reply):
        assert "<script" not in html_text and "<img" not in html_text
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in panel
    assert "<a " not in reply and "href" not in reply, "no link in an answer, whatever its text says"
    assert "<strong>bold</strong>" in reply, "an answer's Markdown is rendered"


def test_abstention_is_plain_and_offers_the_closest_passages(index: Index) -> None:
    hits = index.search("What is the boiling point of mercury?", k=5)
    answer = Answer(question="What is the boiling point of mercury?", text="Not found in the indexed documents.",
                    found=False, citations=(), hits=tuple(hits), mode="extractive", notes=("best guess: none",))
    html_text = render_sources(answer, index)
    assert "Not found in the indexed documents." in html_text and "Closest passages" in html_text
    assert html_text.count('class="rag-card rag-closest"') == min(3, len(hits)) > 0
    assert "best guess: none" in html_text
    assert render_reply(answer).startswith("<p><strong>Not found in the indexed documents.</strong></p>")


def test_a_quote_outside_the_retrieved_passages_is_shown_in_its_page(index: Index) -> None:
    hits = index.search("Who signs the tide tables?", k=1)
    page = index.page_text(hits[0].source, 1) or ""
    start = page.index("High tide in Brest")
    quote = type(hits[0].quote)(text=page[start:start + 18], source=hits[0].source, page=1, start=start,
                                end=start + 18)
    answer = Answer(question="q", text="a [1]", found=True, citations=(quote,), hits=(), mode="extractive")
    assert "<mark>High tide in Brest</mark> reached 7.2 metres" in render_sources(answer, index)


def test_a_citation_opens_its_whole_document_with_the_quote_marked(index: Index) -> None:
    from rag.serve.web.viewer import viewer_html

    hit = index.search("How long do worker bees live in summer?", k=1)[0]
    assert hit.name == "bees.md"
    out = viewer_html(index, hit.quote)
    assert out.count("<mark>") >= 1 and "<h1>Bees</h1>" in out, "the whole document, its Markdown rendered"
    assert hit.quote.text.replace("\n", " ")[:20] in out.replace("<mark>", "").replace("</mark>", "")
    assert 'role="dialog"' in out and "read by OCR" not in out


def test_an_upload_says_the_model_is_loading_before_it_reads(tmp_path: Path) -> None:
    # Before: the model loaded inside the ingest, after the first file was read, and the
    # page's "files" bar stood at 50% (two files) for the seconds the load took.
    index = Index(tmp_path / "index")
    (tmp_path / "a.md").write_text("# A\n\nThe first file.")
    (tmp_path / "b.md").write_text("# B\n\nThe second file.")
    seen: list[tuple[str, int, int]] = []
    add_uploads(index, [tmp_path / "a.md", tmp_path / "b.md"], progress=lambda *event: seen.append(event))
    stages = [stage for stage, _, _ in seen]
    assert seen[:2] == [("model", 0, 1), ("model", 1, 1)] and stages.index("files") == 2
    assert ("files", 2, 2) in seen and "embedding" in stages


def test_a_page_read_by_ocr_is_marked_on_its_card_and_in_its_viewer(tmp_path: Path) -> None:
    pytest.importorskip("rapidocr")
    pdfium = pytest.importorskip("pypdfium2")

    from rag.serve.web.viewer import viewer_html

    # A scan: the page of a real PDF as a picture, with no text layer left.
    text_pdf = write_pdf(tmp_path / "letter.text.pdf", ["The lighthouse keeper Ewan Macleod lit the lamp at dusk."])
    doc = pdfium.PdfDocument(str(text_pdf))
    picture = doc[0].render(scale=2.0).to_pil().convert("L")
    doc.close()
    picture.save(tmp_path / "letter.pdf", "PDF", resolution=144)
    text_pdf.unlink()
    index = Index.build([tmp_path / "letter.pdf"], tmp_path / "idx")

    hit = index.search("Who lit the lamp at dusk?", k=1)[0]
    assert hit.quote.ocr and "Macleod" in hit.quote.text
    answer = Answer(question="q", text="a [1]", found=True, citations=(hit.quote,), hits=(hit,), mode="extractive")
    assert "read by OCR" in render_sources(answer, index)
    viewer = viewer_html(index, hit.quote)
    assert "read by OCR" in viewer and "data:image/png;base64," in viewer
    assert viewer.count('class="rag-box"') >= 1, "the OCR line boxes are drawn over the image"


# -- the API, as another application uses it --------------------------------------------------


def test_ask_endpoint_returns_the_answer_with_quotes_files_and_pages(url: str, index: Index) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/ask", "/search"}, "the page's own handlers stay out of the public API"

    result = client.predict("Who signs the tide tables?", api_name="/ask")

    assert result["found"] is True and "Yannick Le Goff" in result["answer"]
    citation = result["citations"][0]
    assert citation["n"] == 1 and citation["name"] == "tides.txt" and citation["page"] == 1
    page = index.page_text(index.search("tide tables", k=1)[0].source, 1) or ""
    assert page[citation["start"]:citation["end"]] == citation["text"]
    assert result["hits"] and result["hits"][0]["name"] == "tides.txt"
    assert result == index.ask("Who signs the tide tables?").to_dict(), "the API serves Index.ask unchanged"


def test_ask_endpoint_takes_the_conversation(url: str) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    history = [{"role": "user", "content": "Who signs the tide tables?"},
               {"role": "assistant", "content": "Yannick Le Goff"}]
    result = client.predict("When does he sign them?", 5, history, api_name="/ask")
    assert "Yannick Le Goff" in result["query"] and result["query"] != result["question"]
    alone = client.predict("When does he sign them?", 5, None, api_name="/ask")
    assert alone["query"] == alone["question"]


@pytest.mark.parametrize(("args", "message"), [
    (("Who signs the tide tables?", 0), "k must be a whole number from 1 to 50, not 0"),
    (("Who signs the tide tables?", -3), "k must be a whole number from 1 to 50, not -3"),
    (("Who signs the tide tables?", 51), "not 51"),
    ((None, 5), "the question must be text, not NoneType"),
    (("   ", 5), "the question is empty"),
])
def test_the_api_refuses_a_bad_k_or_question_instead_of_changing_it(url: str, args: tuple[Any, ...],
                                                                     message: str) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(url, verbose=False)
    for endpoint in ("/ask", "/search"):
        with pytest.raises(AppError, match=re.escape(message)):
            client.predict(*args, api_name=endpoint)
    assert len(client.predict("Who signs the tide tables?", 2, api_name="/search")) == 2


def test_the_api_asks_the_collection_it_names_and_refuses_one_that_does_not_exist(
        corpus: Path, tmp_path: Path) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from rag.collections import Collections

    root = tmp_path / "index"
    Index.build([corpus / "tides.txt"], root, collection="harbour")
    Index.build([corpus / "bees.md"], root, collection="garden")
    library = Collections(root, default="harbour")
    demo = launch(build_app(library.get("harbour"), collections=library), "127.0.0.1", free_port(), block=False)
    try:
        client = Client(demo.local_url, verbose=False)
        bees = client.predict("How long do worker bees live?", 5, None, "garden", api_name="/ask")
        assert bees["found"] and {c["name"] for c in bees["citations"]} == {"bees.md"}
        tides = client.predict("Who signs the tide tables?", api_name="/ask")
        assert "Yannick Le Goff" in tides["answer"], "without a collection: the page's own"
        hits = client.predict("worker bees", 2, "garden", api_name="/search")
        assert hits and all(h["name"] == "bees.md" for h in hits)
        with pytest.raises(AppError, match="nowhere"):
            client.predict("Who signs the tide tables?", 5, None, "nowhere", api_name="/ask")
        assert "nowhere" not in library.names(), "the API never creates a collection"
    finally:
        demo.close()


def test_an_upload_is_not_left_downloadable_in_gradios_cache(url: str) -> None:
    # Before: Gradio kept its copy of every upload and served it (/gradio_api/file=...) for up to
    # an hour, so a document removed from the index could still be downloaded.
    import httpx

    from rag.serve.uploads import discard_uploaded_copies

    base = url.rstrip("/")
    stored = httpx.post(f"{base}/gradio_api/upload", files={"files": ("secret.txt", b"Private notes.", "text/plain")},
                        timeout=60).json()[0]
    assert httpx.get(f"{base}/gradio_api/file={stored}", timeout=60).text == "Private notes."
    discard_uploaded_copies([stored])  # what the page's upload handler does once the file is stored
    gone = httpx.get(f"{base}/gradio_api/file={stored}", timeout=60)
    assert gone.status_code in (403, 404) and "Private notes" not in gone.text  # Gradio says 403 for a file it lost
    assert not Path(stored).exists() and not Path(stored).parent.exists()
    outside = Path(__file__)
    discard_uploaded_copies([outside])  # never anything outside Gradio's cache
    assert outside.exists()


def test_llm_prose_is_labelled_and_no_url_in_it_becomes_a_link() -> None:
    import re

    answer = Answer(question="q", text="See http://evil.example/login or www.evil.example, mail a@evil.example [1].",
                    found=True, citations=(), hits=(), mode="llm", unsupported=("Re-enter your password.",))
    md = render_reply(answer)
    # The page's Markdown renderer (marked, GFM) links what its autolink rule matches at any position:
    autolink = re.compile(r"((?:ftp|https?):\/\/|www\.)(?:[a-zA-Z0-9\-]+\.?)+[^\s<]*"
                          r"|[A-Za-z0-9._+-]+@[a-zA-Z0-9-_]+(?:\.[a-zA-Z0-9-_]*[a-zA-Z0-9])+")
    assert not autolink.search(md), md
    assert "each sentence checked against the quote it cites" in md and "1 unsupported sentence left out" in md


def test_search_endpoint_returns_passages(url: str) -> None:
    from gradio_client import Client

    passages = Client(url, verbose=False).predict("twelve hectares orchard", 2, api_name="/search")
    assert len(passages) == 2
    assert passages[0]["name"] == "orchard.pdf" and passages[0]["page"] == 2
    assert passages[0]["quote"] in passages[0]["text"]


def test_two_clients_ask_at_the_same_time(url: str) -> None:
    from gradio_client import Client

    questions = {"Who signs the tide tables?": ("Yannick Le Goff", "tides.txt"),
                 "How long do worker bees live in summer?": ("six", "bees.md")}
    results: dict[str, Any] = {}
    start = threading.Barrier(len(questions))

    def ask(question: str) -> None:
        client = Client(url, verbose=False)
        start.wait()
        results[question] = client.predict(question, api_name="/ask")

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for question, (expected, file) in questions.items():
        assert results[question]["question"] == question
        assert results[question]["found"] and expected in results[question]["answer"]
        assert results[question]["citations"][0]["name"] == file


# -- starting ----------------------------------------------------------------------------------


def test_open_index_ingests_the_corpus_then_reuses_the_index(tmp_path: Path, corpus: Path) -> None:
    index = open_index(tmp_path / "idx", corpus=[corpus / "bees.md"])
    assert [d.name for d in index.documents()] == ["bees.md"]
    again = open_index(tmp_path / "idx")
    assert [d.name for d in again.documents()] == ["bees.md"], "a filled index is served as it is"


def test_app_py_is_a_few_lines_and_serves_the_page(tmp_path: Path, corpus: Path) -> None:
    source = (ROOT / "app.py").read_text()
    assert len([line for line in source.splitlines() if line.strip()]) <= 15
    port = free_port()
    env = {**os.environ, "RAG_INDEX": str(tmp_path / "idx"), "RAG_PORT": str(port), "RAG_CORPUS": str(corpus),
           "PYTHONUNBUFFERED": "1"}  # each line as it is printed, for the wait on the address below
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout or ():
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        page = ""
        while not page and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(0.5)
        assert "rag: answers from your documents" in page, process.poll()
        assert (tmp_path / "idx" / "CURRENT").exists()
        # The same server as `rag serve`: the OpenAI-compatible API answers beside the page (its
        # routes join the running app a moment after the page first answers).
        models: dict[str, Any] = {}
        while not models and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as response:
                    models = json.loads(response.read().decode())
            except OSError:
                time.sleep(0.5)
        assert models.get("object") == "list" and models["data"], models
        # The page can be served a moment before serve() prints its address.
        wait_until(lambda: any("rag web chat on http://" in line for line in lines), "app.py to print its address")
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(30)
    output = "".join(lines)
    assert "Indexing" in output and "rag web chat on http://127.0.0.1:" in output and "/v1" in output


def test_an_upload_report_names_its_collection_and_what_stayed_behind(tmp_path: Path) -> None:
    from rag.serve.render import render_ingest
    from rag.serve.web.library import stays_note
    from rag.types import Document, IngestReport

    stored = [("Harbour report.pdf", tmp_path / "a.pdf"), ("notes.md", tmp_path / "b.md")]
    report = IngestReport(added=(str(tmp_path / "a.pdf"), str(tmp_path / "b.md")))
    guide = Document(source="/x/user-guide.md", pages=1, chunks=42, sha256="0" * 64, size=1)
    note = stays_note([guide], "demo")
    assert note == "user-guide.md stays in demo: choose demo in the Collection menu to ask it."
    shown = render_ingest(stored, [], report, collection="my-documents", note=note)
    assert "Added 2 files to my-documents: Harbour report.pdf, notes.md." in shown and "user-guide.md stays in demo" in shown
    assert "Added 2 files: " in render_ingest(stored, [], report)       # one index, no collection to name
    assert stays_note([guide, guide], "demo").startswith("user-guide.md, user-guide.md stay in demo")
    assert stays_note([], "demo") == ""

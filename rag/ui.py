"""The web chat: a Gradio page built from ``Index`` alone (``rag serve``, ``python app.py``).

The page asks, searches, ingests and removes through ``Index`` and only formats what comes back.
Every piece of document text is HTML-escaped before it reaches the page, so a file can never
inject markup or script. Questions run on immutable index snapshots, several at once; uploads
and removals queue one at a time and never hold up the questions of other tabs.

Example:
    >>> from rag import Index
    >>> from rag.ui import build_app, launch
    >>> demo = build_app(Index.open("index/"))
    >>> launch(demo, "127.0.0.1", 7860)              # blocks; or: rag serve --index index/
"""

from __future__ import annotations

import html
import re
import shutil
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from .collections import DEFAULT_COLLECTION, DEMO_COLLECTION, UPLOADS_COLLECTION, Collections
from .errors import IndexNotFoundError, RagError
from .index import DEFAULT_FOLDER, Index
from .ingest import Progress
from .load import SUPPORTED_SUFFIXES
from .settings import Settings
from .store import current_generation, file_sha256, settings_from_manifest
from .types import Answer, Hit, IngestReport, LoadFailure, Quote
from .webguard import HostGuard, allowed_hosts


_CHECKOUT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = _CHECKOUT / "docs" / "user-guide.md" if (_CHECKOUT / "app.py").is_file() else None
"""This project's user guide, served when the index is empty so that a first run can answer
questions; only in a source checkout (an installed package has no docs/ of its own). Only the
guide: the benchmark tables beside it would crowd the answers (and hold FinanceBench questions)."""

UPLOADS = "uploads"
"""Subfolder of the index folder that keeps the files added from the page."""

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""Largest file accepted from the page (the loader's own limit still applies)."""

READERS = 4
"""Questions answered at the same time; more would only queue on the 2-4 cores this runs on."""

MAX_PASSAGES = 50
"""Most passages one question may read through the page or the API; more only slows the answer."""

WRITE_WAIT = 60.0
"""Seconds an upload or removal waits while another process (say ``rag ingest``) writes the index."""

_CONTEXT_CHARS = 180

CONFIRM_REMOVE = """(source, collection) => {
  // Removing cannot be undone from the page (an uploaded copy is deleted too): ask first.
  if (!source) return [null, collection];
  const name = String(source).split(/[\\/]/).pop();
  return [window.confirm(`Remove ${name} from the index?`) ? source : null, collection];
}"""
"""Runs in the browser before a removal: a cancelled dialog sends no document, so nothing happens."""
"""Characters of passage shown on each side of a quote before the passage is expanded."""


# --------------------------------------------------------------------------------------------
# Starting


def open_index(folder: str | Path = DEFAULT_FOLDER, corpus: Sequence[str | Path] | None = None) -> Index:
    """The index in ``folder``, first updated from ``corpus`` (incrementally).

    Without ``corpus``, an empty or missing index is filled from this project's ``docs/`` so the
    first page a person sees can already answer something. An existing index is checked (checksums)
    before it is served.

    Example:
        >>> index = open_index("index/", corpus=["~/papers"])
    """
    folder = Path(folder).expanduser().resolve()
    settings = settings_from_manifest(folder, Settings.from_env())
    index = Index.open(folder, settings) if current_generation(folder) is not None else Index(folder, settings)
    paths = [str(p) for p in corpus] if corpus else []
    if not paths and len(index) == 0 and DEFAULT_CORPUS is not None and DEFAULT_CORPUS.is_file():
        paths = [str(DEFAULT_CORPUS)]
    if paths:
        print(f"Indexing {', '.join(paths)} into {folder} ...", flush=True)
        report = index.ingest(paths)
        for failure in report.failed:
            print(f"  failed: {failure.source}: {failure.reason}", flush=True)
        print(f"  {report.summary()}", flush=True)
    return index


def serve(index_folder: str | Path = DEFAULT_FOLDER, host: str = "127.0.0.1", port: int = 7860,
          corpus: Sequence[str | Path] | None = None, *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
          allow_hosts: Sequence[str] = ()) -> None:
    """Open (or fill) the index and serve the web chat until interrupted.

    Example:
        >>> serve("index/", host="127.0.0.1", port=7860, corpus=["docs/"])
    """
    index = open_index(index_folder, corpus)
    launch(build_app(index, max_upload_bytes=max_upload_bytes), host, port, max_upload_bytes=max_upload_bytes,
           allow_hosts=allow_hosts)


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, *, block: bool = True,
           max_upload_bytes: int = MAX_UPLOAD_BYTES, allow_hosts: Sequence[str] = ()) -> gr.Blocks:
    """Start the server for a page made by ``build_app``; returns the page (``demo.close()`` stops it).

    The server answers only requests whose ``Host`` is a loopback name, ``host`` or one of
    ``allow_hosts``, and only same-site ones (``rag.webguard``): a web page the user visits can
    neither rebind its name to this server nor post to it.

    Example:
        >>> demo = launch(build_app(index), "127.0.0.1", 7861, block=False)
        >>> demo.close()
    """
    # Questions and writes have their own concurrency groups (see build_app); anything else runs alone.
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=host, server_port=port, prevent_thread_lock=True, inbrowser=False, share=False,
        max_file_size=max_upload_bytes, show_error=True, quiet=True, footer_links=["api"],
        run_history=False, ssr_mode=False, mcp_server=False, theme=_theme(), css=CSS,
        # No static-file workers (GRADIO_NUM_WORKERS): they would listen on ports of their own,
        # outside the guard.
        num_workers=0, _app=guarded_app(allowed_hosts(host, allow_hosts)),
    )
    if block:
        print(f"rag web chat on {demo.local_url} (Ctrl+C to stop)", flush=True)
        demo.block_thread()
    return demo


def guarded_app(hosts: frozenset[str]) -> Any:
    """Gradio's FastAPI app with ``HostGuard`` outside everything else it runs (routes, CORS, files).

    ``Blocks.launch`` adds its own middleware after any we could add, so a guard added the usual
    way would run after Gradio's CORS middleware had already answered a preflight. Building the
    app ourselves (``launch(_app=...)``, as ``gradio.Server`` does) lets the guard wrap the whole
    stack, and whatever else is later mounted on this app is behind it too.
    """
    from gradio.routes import App, ORJSONResponse

    class GuardedApp(App):
        def build_middleware_stack(self) -> Any:
            return HostGuard(super().build_middleware_stack(), hosts)

    return GuardedApp(default_response_class=ORJSONResponse)


# --------------------------------------------------------------------------------------------
# Uploads


def safe_filename(name: str) -> str:
    """A file name that is safe to create: no folders, no hidden file, no odd characters.

    Example:
        >>> safe_filename("../../etc/.Annual report (final).PDF")
        'Annual report (final).pdf'
    """
    base = unicodedata.normalize("NFKC", name.replace("\\", "/").rsplit("/", 1)[-1])
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    # Spaces and brackets stay (people name files that way); anything else odd becomes "_".
    stem = re.sub(r"[^\w .()-]+", "_", stem)
    stem = re.sub(r"\s+", " ", re.sub(r"_{2,}", "_", stem)).strip(" ._-")[:80].rstrip(" ._-") or "document"
    suffix = re.sub(r"[^\w]", "", suffix).lower()[:10]
    return f"{stem}.{suffix}" if suffix else stem


def store_uploads(files: Sequence[str | Path], folder: Path, max_bytes: int = MAX_UPLOAD_BYTES
                  ) -> tuple[list[tuple[str, Path]], list[LoadFailure]]:
    """Copy uploaded files into ``folder`` under safe, unique names.

    Returns ``(original name, stored path)`` pairs and the files refused, with the reason. A file
    whose content is already stored under the same name is not copied twice.

    Example:
        >>> stored, refused = store_uploads(["/tmp/gradio/ab/notes.md"], Path("index/uploads"))
    """
    stored: list[tuple[str, Path]] = []
    refused: list[LoadFailure] = []
    folder.mkdir(parents=True, exist_ok=True)
    for raw in files:
        path = Path(raw)
        original = path.name
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            refused.append(LoadFailure(original, f"unsupported file type {suffix or '(none)'!r}; "
                                                 f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"))
            continue
        try:
            size = path.stat().st_size
        except OSError as exc:
            refused.append(LoadFailure(original, f"the upload could not be read ({exc.strerror or exc})"))
            continue
        if size > max_bytes:
            refused.append(LoadFailure(original, f"too large ({_size(size)}; the limit is {_size(max_bytes)})"))
            continue
        if size == 0:
            refused.append(LoadFailure(original, "the file is empty"))
            continue
        try:
            stored.append((original, _copy_unique(path, folder, safe_filename(original))))
        except OSError as exc:
            refused.append(LoadFailure(original, f"could not be saved ({exc.strerror or exc})"))
    return stored, refused


def add_uploads(index: Index, files: Sequence[str | Path], max_bytes: int = MAX_UPLOAD_BYTES,
                progress: Progress | None = None
                ) -> tuple[list[tuple[str, Path]], list[LoadFailure], IngestReport | None]:
    """Store uploaded files in the index's ``uploads/`` folder and ingest them.

    Returns ``(original name, stored path)`` of the files indexed, the files refused or unreadable
    (by original name, with the reason), and the ingest report (None when nothing was left to
    ingest). A stored copy that could not be indexed is deleted again.

    Example:
        >>> stored, failed, report = add_uploads(index, ["/tmp/gradio/ab/report.pdf"])
    """
    stored, refused = store_uploads(files, index.folder / UPLOADS, max_bytes)
    if not stored:
        return stored, refused, None
    if progress is not None:
        progress("files", 0, len(stored))
    try:
        report = index.ingest([path for _, path in stored], progress=progress, wait=WRITE_WAIT)
    except RagError as exc:
        for _, path in stored:
            path.unlink(missing_ok=True)
        return [], refused + [LoadFailure(original, str(exc)) for original, _ in stored], None
    reasons = {failure.source: failure.reason for failure in report.failed}
    kept = []
    for original, path in stored:
        if str(path) in reasons:
            path.unlink(missing_ok=True)
            refused.append(LoadFailure(original, reasons[str(path)]))
        else:
            kept.append((original, path))
    return kept, refused, report


def discard_uploaded_copies(files: Sequence[str | Path]) -> None:
    """Delete Gradio's own copies of uploaded files once they are stored (or refused).

    Gradio keeps every upload in its cache folder and serves it from there (``/gradio_api/file=``)
    until its hourly sweep; a document removed from the index would stay downloadable meanwhile.
    The index keeps its own copy in ``uploads/``, so Gradio's is not needed after the upload.

    Example:
        >>> discard_uploaded_copies(["/tmp/gradio/3f2a.../report.pdf"])
    """
    cache = Path(gr.utils.get_upload_folder()).resolve()
    for raw in files:
        path = Path(raw).resolve()
        if cache not in path.parents:
            continue  # never anything outside Gradio's cache
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # Gradio makes one folder per upload
        except OSError:
            pass


def remove_document(index: Index, source: str) -> IngestReport:
    """Remove a document from the index, and its stored copy when it was uploaded from the page.

    Example:
        >>> remove_document(index, "/home/me/index/uploads/report.pdf")
    """
    report = index.remove([source], wait=WRITE_WAIT)
    path = Path(source)
    if path.parent == index.folder / UPLOADS:
        path.unlink(missing_ok=True)
    return report


def _copy_unique(path: Path, folder: Path, name: str) -> Path:
    digest = file_sha256(path)
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, 10_000):
        target = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
        try:
            # "x" creates the file only if the name is free, so two uploads can never share a name.
            with open(path, "rb") as source, open(target, "xb") as copy:
                try:
                    shutil.copyfileobj(source, copy, 1 << 20)
                except BaseException:
                    target.unlink(missing_ok=True)
                    raise
            return target
        except FileExistsError:
            if target.is_file() and file_sha256(target) == digest:
                return target
    raise OSError(f"no free file name for {name} in {folder}")


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


# --------------------------------------------------------------------------------------------
# The API's answer


def answer_payload(answer: Answer) -> dict[str, Any]:
    """The JSON form of an answer served by the ``/ask`` endpoint.

    Example:
        >>> payload = answer_payload(index.ask("Who called for UN visits?"))
        >>> payload["found"], payload["citations"][0]["file"], payload["citations"][0]["page"]
    """
    return {
        "question": answer.question,
        "query": answer.query or answer.question,
        "answer": answer.text,
        "found": answer.found,
        "span": answer.span,
        "mode": answer.mode,
        "confidence": round(float(answer.confidence), 4),
        "notes": list(answer.notes),
        "unsupported": list(answer.unsupported),
        "citations": [{"n": n, "text": q.text, "file": q.name, "page": q.page, "start": q.start, "end": q.end}
                      for n, q in enumerate(answer.citations, start=1)],
        "passages": [hit_payload(hit) for hit in answer.hits],
    }


def hit_payload(hit: Hit) -> dict[str, Any]:
    """The JSON form of a passage served by the ``/search`` endpoint and in an answer's ``passages``.

    Example:
        >>> hit_payload(index.search("Who called for UN visits?", k=1)[0])["file"]
    """
    return {"rank": hit.rank, "file": hit.name, "page": hit.page, "start": hit.chunk.start, "end": hit.chunk.end,
            "score": round(float(hit.score), 4), "text": hit.chunk.text, "quote": hit.quote.text}


# --------------------------------------------------------------------------------------------
# Rendering (every document string goes through html.escape)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# ":" too: with "http\://" and "www\." escaped, the renderer's autolinker (GFM, which needs a
# literal "http://", "www." or "a@b.c") never turns a URL in generated or document text into a link.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$:])")


def markdown_text(text: str) -> str:
    """Document text made inert for a Markdown renderer: no markup, no links, no maths.

    Example:
        >>> markdown_text("<b>*x*</b>")
        '&lt;b&gt;\\\\*x\\\\*&lt;/b&gt;'
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def highlight(text: str, start: int, end: int, context: int | None = None) -> str:
    """``text`` as HTML with ``text[start:end]`` marked; with ``context``, cut to that many characters
    either side of the mark (at word boundaries, with an ellipsis).

    Example:
        >>> highlight("a <b> c", 2, 5)
        'a <mark>&lt;b&gt;</mark> c'
    """
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    before, marked, after = text[:start], text[start:end], text[end:]
    lead = trail = ""
    if context is not None:
        if len(before) > context:
            cut = before[-context:]
            space = cut.find(" ")
            before, lead = (cut[space + 1:] if 0 <= space < context // 2 else cut), "… "
        if len(after) > context:
            cut = after[:context]
            space = cut.rfind(" ")
            after, trail = (cut[:space] if space > context // 2 else cut), " …"
    return f"{lead}{_e(before)}<mark>{_e(marked)}</mark>{_e(after)}{trail}"


def _passage(quote: Quote, hits: Sequence[Hit], index: Index) -> tuple[str, int]:
    """The passage to show around ``quote`` and the offset of its first character in the page."""
    for hit in hits:
        chunk = hit.chunk
        if (chunk.source, chunk.page) == (quote.source, quote.page) and chunk.start <= quote.start \
                and quote.end <= chunk.end:
            return chunk.text, chunk.start
    # The quote lies outside the retrieved passages (e.g. the sentence naming whom "she" is):
    page = index.page_text(quote.source, quote.page)
    if page is None or page[quote.start:quote.end] != quote.text:
        return quote.text, quote.start
    # show its paragraph (or 600 characters either side, cut at spaces).
    a, b = max(0, quote.start - 600), min(len(page), quote.end + 600)
    newline, space = page.rfind("\n", a, quote.start), page.find(" ", a, quote.start)
    if newline >= 0:
        a = newline + 1
    elif a > 0 and space >= 0:
        a = space + 1
    newline, space = page.find("\n", quote.end, b), page.rfind(" ", quote.end, b)
    if newline >= 0:
        b = newline
    elif b < len(page) and space >= 0:
        b = space
    return page[a:b], a


def _source_card(n: int, quote: Quote, hits: Sequence[Hit], index: Index, kind: str) -> str:
    passage, offset = _passage(quote, hits, index)
    a, b = quote.start - offset, quote.end - offset
    snippet = highlight(passage, a, b, context=_CONTEXT_CHARS)
    whole = highlight(passage, a, b)
    title = _e(quote.source)
    return (
        f'<article class="rag-card rag-{kind}">'
        f'<header><span class="rag-n">{n}</span>'
        f'<span class="rag-file" title="{title}">{_e(quote.name)}</span>'
        f'<span class="rag-page">page {quote.page}</span></header>'
        f'<p class="rag-snippet">{snippet}</p>'
        f'<details><summary>Read the whole passage</summary><p class="rag-passage">{whole}</p></details>'
        f'</article>'
    )


def render_sources(answer: Answer, index: Index) -> str:
    """The panel beside the chat: each citation highlighted in its passage, or the closest passages.

    Example:
        >>> html_text = render_sources(index.ask("Who called for UN visits?"), index)
    """
    parts = [f'<div class="rag-sources"><p class="rag-question">{_e(answer.question)}</p>']
    if answer.found:
        label = "Source" if len(answer.citations) == 1 else "Sources"
        parts.append(f'<h3>{label} <span class="rag-muted">quoted verbatim</span></h3>')
        parts += [_source_card(n, q, answer.hits, index, "citation") for n, q in enumerate(answer.citations, 1)]
    else:
        parts.append('<div class="rag-notfound"><strong>Not found in the indexed documents.</strong> '
                     'These passages came closest; none of them answers the question.</div>')
        if answer.hits:
            parts.append('<h3>Closest passages</h3>')
            parts += [_source_card(h.rank, h.quote, answer.hits, index, "closest") for h in answer.hits[:3]]
    parts += [f'<p class="rag-note">{_e(note)}</p>' for note in answer.notes]
    parts.append("</div>")
    return "".join(parts)


def render_reply(answer: Answer) -> str:
    """The chat message for an answer (Markdown, document text escaped)."""
    if not answer.found:
        searched = f"\n\n<sub>searched: {markdown_text(answer.query)}</sub>" if answer.query else ""
        return ("**Not found in the indexed documents.**\n\n"
                "The closest passages are shown beside the chat; try other words, or add the document "
                "that holds the answer." + searched)
    places: dict[tuple[str, int], list[int]] = {}
    for n, quote in enumerate(answer.citations, start=1):
        places.setdefault((quote.name, quote.page), []).append(n)
    cited = " · ".join("".join(f"\\[{n}\\]" for n in numbers) + f" {markdown_text(name)}, page {page}"
                       for (name, page), numbers in places.items())
    checked = ""
    if answer.mode == "llm":
        # The quotes are verified text; the prose is the model's, kept only where they support it.
        left_out = len(answer.unsupported)
        checked = (" · the model's words, each sentence checked against the quote it cites"
                   + (f"; {left_out} unsupported sentence{'s' if left_out != 1 else ''} left out (see the notes)"
                      if left_out else ""))
    searched = f" · searched: {markdown_text(answer.query)}" if answer.query else ""
    return f"{markdown_text(answer.text)}\n\n<sub>{cited}{checked}{searched}</sub>"


SOURCES_EMPTY = ('<div class="rag-sources rag-empty"><h3>Sources</h3><p>Ask a question: the quotes behind '
                 'the answer appear here, highlighted in their passages, with file and page. Click an '
                 'earlier answer to see its sources again.</p></div>')


def render_stats(index: Index) -> str:
    stats = index.stats()
    cells = "".join(f'<div><b>{stats[key]:,}</b><span>{label}</span></div>'
                    for key, label in (("documents", "documents"), ("pages", "pages"), ("chunks", "passages")))
    return f'<div class="rag-stats">{cells}</div>'


def render_documents(index: Index) -> str:
    docs = index.documents()
    if not docs:
        return '<p class="rag-muted">Nothing is indexed yet. Add PDF, text, Markdown or HTML files above.</p>'
    uploads = index.folder / UPLOADS
    rows = "".join(
        f'<tr><td class="rag-file" title="{_e(d.source)}">{_e(d.name)}'
        f'{" <span class=rag-tag>upload</span>" if Path(d.source).parent == uploads else ""}</td>'
        f'<td>{d.pages}</td><td>{d.chunks}</td></tr>' for d in docs)
    return (f'<table class="rag-docs"><thead><tr><th>Indexed files</th><th>Pages</th><th>Passages</th></tr>'
            f'</thead><tbody>{rows}</tbody></table>')


def render_ingest(stored: Sequence[tuple[str, Path]], failed: Sequence[LoadFailure],
                  report: IngestReport | None) -> str:
    """What an upload did: files added, files already indexed, and each failure with its reason."""
    names = {str(path): original for original, path in stored}
    items = []
    if report is not None:
        added = [names.get(s, Path(s).name) for s in report.added + report.updated]
        same = [names.get(s, Path(s).name) for s in report.unchanged]
        if added:
            items.append(f'<p class="rag-ok">Added {len(added)} file{"s" if len(added) != 1 else ""}: '
                         f'{_e(", ".join(added))}. The index is saved.</p>')
        if same:
            items.append(f'<p class="rag-muted">Already indexed: {_e(", ".join(same))}.</p>')
    if failed:
        rows = "".join(f'<li><b>{_e(f.source)}</b>: {_e(f.reason)}</li>' for f in failed)
        items.append(f'<div class="rag-failed"><p>Not added:</p><ul>{rows}</ul></div>')
    return "".join(items)


# --------------------------------------------------------------------------------------------
# The page


def build_app(index: Index, *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
              collections: Collections | None = None) -> gr.Blocks:
    """The Gradio page over ``index``: chat with sources, library (upload, list, remove), settings.

    With ``collections`` (``rag.collections``), the page has a collection selector: questions,
    the document list and removals work on the chosen collection, and an upload made while the
    demo collection is shown goes to a collection of its own (``my-documents``), never the demo.

    Also registers the API endpoints ``/ask`` (question -> answer with quotes, files and pages) and
    ``/search`` (question -> passages) for ``gradio_client``.

    Example:
        >>> demo = build_app(Index.open("index/"))
    """
    settings = index.settings
    max_bytes = min(max_upload_bytes, settings.max_file_bytes)
    shown = collections.default if collections is not None else DEFAULT_COLLECTION

    def passages(k: float | None) -> int:
        return max(1, min(MAX_PASSAGES, int(k))) if k else settings.k

    def pick(collection: str | None) -> Index:
        # Each tab has its own choice (the selector's value), so two tabs never see each other's.
        if collections is None or not collection or collection == shown:
            return index
        try:
            return collections.get(collection)
        except IndexNotFoundError:
            return collections.create(collection)

    def collection_choices() -> list[str]:
        return sorted({shown, *collections.names()}) if collections is not None else [shown]

    def ask(question: str, k: int = settings.k, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Answer a question from the indexed documents, with verbatim quotes and their files and pages.

        Args:
            question: the question, in plain words.
            k: how many passages to read.
            history: the earlier turns, oldest first, as [{"role": "user"|"assistant", "content": ...}];
                a follow-up is searched with what they were about ("query" says what was searched).

        Returns:
            answer (text with [n] markers), found (false when the documents do not answer), citations
            [{n, text, file, page, start, end}] and the passages read.
        """
        try:
            return answer_payload(index.ask(question, passages(k), history=history or None))
        except RagError as exc:
            raise gr.Error(str(exc)) from None

    def search(question: str, k: int = settings.k) -> list[dict[str, Any]]:
        """The passages that best match a question: [{rank, file, page, start, end, score, text, quote}]."""
        try:
            hits = index.search(question, passages(k))
        except RagError as exc:
            raise gr.Error(str(exc)) from None
        return [hit_payload(hit) for hit in hits]

    def post_question(question: str, history: list[dict[str, Any]]) -> tuple[Any, ...]:
        question = (question or "").strip()
        if not question:
            return gr.skip(), gr.skip(), ""
        return "", history + [{"role": "user", "content": markdown_text(question)}], question

    def reply(question: str, history: list[dict[str, Any]], panels: dict[int, str], k: float, mode: str,
              collection: str | None = None, conversation: list[dict[str, str]] | None = None) -> tuple[Any, ...]:
        if not question:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        index = pick(collection)
        # The chatbot holds rendered Markdown; the conversation state holds what was asked and
        # answered in plain words, which is what the follow-up resolver reads.
        conversation = list(conversation or [])
        try:
            answer = index.ask(question, passages(k), history=conversation or None, answer_mode=mode)
        except IndexNotFoundError:
            text, panel = ("No documents are indexed yet. Add files under **Library** on the left, "
                           "then ask again."), SOURCES_EMPTY
        except RagError as exc:
            text, panel = f"**Could not answer:** {markdown_text(str(exc))}", SOURCES_EMPTY
        else:
            text, panel = render_reply(answer), render_sources(answer, index)
            conversation += [{"role": "user", "content": question},
                             {"role": "assistant", "content": answer.span if answer.found and answer.span
                              else answer.text}]
        history = history + [{"role": "assistant", "content": text}]
        return history, {**panels, len(history) - 1: panel}, panel, conversation

    def show_sources(panels: dict[int, str], evt: gr.SelectData) -> Any:
        # A click on a question shows the sources of the answer that follows it.
        message = int(evt.index if isinstance(evt.index, int) else evt.index[0])
        panel = panels.get(message) or panels.get(message + 1)
        return panel if panel else gr.skip()

    def library(collection: str | None = None) -> tuple[Any, ...]:
        index = pick(collection)
        docs = index.documents()
        choices = [(f"{d.name}  ({d.pages} p.)", d.source) for d in docs]
        return render_stats(index), render_documents(index), gr.update(choices=choices, value=None)

    def add_files(files: list[str] | None, collection: str | None = None,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        if not files:
            return (gr.skip(),) * 6
        # The demo collection stays the user guide: a user's own files start their own collection.
        target = UPLOADS_COLLECTION if collections is not None and (collection or shown) == DEMO_COLLECTION \
            else collection
        index = pick(target)
        stages = {"files": ("Reading files", "files"), "embedding": ("Embedding passages", "passages")}

        def on_progress(stage: str, done: int, total: int) -> None:
            desc, unit = stages.get(stage, (stage, "steps"))
            progress((done, total), desc=desc, unit=unit)

        progress(0, desc="Saving the uploads")
        stored, failed, report = add_uploads(index, files, max_bytes, on_progress)
        discard_uploaded_copies(files)
        names = collection_choices()   # a first upload that failed whole made no collection
        choice = gr.update(choices=names, value=target if target in names else (collection or shown))
        return (None, render_ingest(stored, failed, report)) + library(target) + (choice,)

    def remove(source: str | None, collection: str | None = None) -> tuple[Any, ...]:
        if not source:
            return (gr.skip(),) * 4
        try:
            remove_document(pick(collection), source)
        except RagError as exc:
            return (f'<div class="rag-failed"><p>{_e(exc)}</p></div>',) + library(collection)
        return ((f'<p class="rag-ok">Removed {_e(Path(source).name)}. The index is saved.</p>',)
                + library(collection))

    def switch(collection: str | None) -> tuple[Any, ...]:
        # Answers shown so far came from the other collection: start the conversation afresh.
        return library(collection) + ([], {}, SOURCES_EMPTY, "", [])

    llm = settings.llm_configured
    # Gradio keeps its own copy of every upload; an hourly sweep stops documents piling up in /tmp.
    with gr.Blocks(title="rag: answers from your documents", analytics_enabled=False, fill_width=True,
                   delete_cache=(3600, 3600)) as demo:
        panels = gr.State({})
        pending = gr.State("")
        conversation = gr.State([])
        with gr.Sidebar(label="Library", open=True, width=350, elem_id="rag-sidebar"):
            gr.HTML('<div class="rag-brand"><span class="rag-logo">r</span><div><b>rag</b>'
                    '<small>answers from your documents</small></div></div>')
            collection_box = gr.Dropdown(choices=collection_choices(), value=shown, label="Collection",
                                         info="Questions search this collection only.", allow_custom_value=False,
                                         visible=collections is not None, elem_id="rag-collection")
            stats = gr.HTML(render_stats(index), elem_id="rag-stats")
            upload = gr.File(label="Add documents", file_count="multiple", elem_id="rag-upload",
                             file_types=sorted(SUPPORTED_SUFFIXES), height=110)
            gr.HTML(f'<p class="rag-hint">PDF, text, Markdown or HTML, up to {_size(max_bytes)} each. '
                    f'Files are kept in the index folder.</p>')
            ingest_report = gr.HTML(elem_id="rag-ingest-report")
            documents = gr.HTML(render_documents(index), elem_id="rag-documents")
            gr.HTML('<p class="rag-hint">Remove a document from the index:</p>')
            with gr.Row(equal_height=True, elem_id="rag-remove-row"):
                chosen = gr.Dropdown(choices=[], value=None, show_label=False, container=False, scale=3,
                                     label="Document to remove", elem_id="rag-remove-choice")
                remove_button = gr.Button("Remove", variant="stop", size="sm", scale=1, min_width=80,
                                          elem_id="rag-remove")
            with gr.Accordion("Answer settings", open=False, elem_id="rag-settings"):
                k = gr.Slider(1, 20, value=settings.k, step=1, label="Passages to read",
                              info="More passages find more, but the answer takes a little longer.")
                mode = gr.Radio([("Extractive (offline)", "extractive"), ("LLM", "llm")],
                                value=settings.answer_mode if llm else "extractive", label="Answer mode",
                                interactive=llm,
                                info=(f"LLM: {settings.llm_model}" if llm else
                                      "LLM answers need RAG_LLM_BASE_URL and RAG_LLM_MODEL."))
        gr.HTML('<header class="rag-header"><h1>Ask your documents</h1><p>Every answer is backed by quotes '
                'checked word for word against the indexed pages.</p></header>')
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=420):
                chatbot = gr.Chatbot(
                    label="Conversation", show_label=False, height="66vh", elem_id="rag-chat",
                    placeholder="**Ask anything about your documents.**<br>Each answer cites its sources; "
                                "the quotes appear beside the chat.",
                    # No copy button: it would copy the escaped Markdown; selecting text copies it clean.
                    latex_delimiters=[], feedback_options=None, buttons=[], layout="bubble",
                )
                with gr.Row(equal_height=True, elem_id="rag-ask-row"):
                    question = gr.Textbox(placeholder="Ask a question about your documents",
                                          show_label=False, container=False, scale=8, autofocus=True,
                                          lines=1, max_lines=4, elem_id="rag-question", submit_btn=False)
                    ask_button = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="rag-ask")
                    new_chat = gr.Button("New chat", variant="secondary", scale=1, min_width=90,
                                         elem_id="rag-new-chat")
            with gr.Column(scale=4, min_width=360):
                sources = gr.HTML(SOURCES_EMPTY, elem_id="rag-sources", max_height="74vh", padding=False)

        read = {"concurrency_limit": READERS, "concurrency_id": "read"}
        write = {"concurrency_limit": 1, "concurrency_id": "write"}
        for trigger in (question.submit, ask_button.click):
            trigger(post_question, [question, chatbot], [question, chatbot, pending], queue=False,
                    api_visibility="private").then(
                reply, [pending, chatbot, panels, k, mode, collection_box, conversation],
                [chatbot, panels, sources, conversation],
                api_visibility="private",
                show_progress="minimal", **read)
        chatbot.clear(lambda: ({}, SOURCES_EMPTY, []), None, [panels, sources, conversation], queue=False,
                      api_visibility="private")
        new_chat.click(lambda: ([], {}, SOURCES_EMPTY, []), None, [chatbot, panels, sources, conversation],
                       queue=False, api_visibility="private")
        chatbot.select(show_sources, panels, sources, queue=False, api_visibility="private")
        upload.upload(add_files, [upload, collection_box],
                      [upload, ingest_report, stats, documents, chosen, collection_box],
                      show_progress_on=[upload], api_visibility="private", **write)
        remove_button.click(remove, [chosen, collection_box], [ingest_report, stats, documents, chosen],
                            api_visibility="private", js=CONFIRM_REMOVE,
                            **write)
        demo.load(library, collection_box, [stats, documents, chosen], api_visibility="private", queue=False)
        collection_box.change(switch, collection_box,
                              [stats, documents, chosen, chatbot, panels, sources, pending, conversation],
                              api_visibility="private", queue=False)
        gr.api(ask, api_name="ask", **read)
        # Searches have slots of their own: an LLM answer may take its whole timeout, and four of
        # them would otherwise hold every slot a search needs (a search waited 148 s behind them).
        gr.api(search, api_name="search", concurrency_limit=READERS, concurrency_id="search")
    return demo


def _theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                          font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"])


CSS = """
.rag-brand { display: flex; align-items: center; gap: 10px; margin: 2px 0 4px; }
.rag-brand b { display: block; font-size: 1.15rem; line-height: 1.1; }
.rag-brand small { color: var(--body-text-color-subdued); font-size: .8rem; }
.rag-logo { display: inline-flex; align-items: center; justify-content: center; width: 34px; height: 34px;
  border-radius: 9px; background: var(--color-accent); color: white; font-weight: 800; font-size: 1.2rem; }
.rag-header { padding: 2px 4px 0; }
.rag-header h1 { font-size: 1.45rem; margin: 0 0 2px; font-weight: 650; }
.rag-header p { margin: 0; color: var(--body-text-color-subdued); }
.rag-stats { display: grid; grid-template-columns: repeat(3, 1fr); gap: 6px; }
.rag-stats div { background: var(--block-background-fill); border: 1px solid var(--border-color-primary);
  border-radius: 8px; padding: 6px 8px; text-align: center; }
.rag-stats b { display: block; font-size: 1.1rem; }
.rag-stats span { font-size: .75rem; color: var(--body-text-color-subdued); }
.rag-hint, .rag-muted { color: var(--body-text-color-subdued); font-size: .8rem; margin: 2px 0; }
.rag-ok { color: var(--color-green-600, #15803d); font-size: .88rem; margin: 2px 0; }
.rag-failed { font-size: .88rem; }
.rag-failed p { margin: 2px 0; color: #b91c1c; font-weight: 600; }
.rag-failed ul { margin: 2px 0 6px 18px; padding: 0; }
#rag-documents table.rag-docs { width: 100%; border-collapse: collapse; font-size: .84rem; border: 0 !important;
  margin: 0; }
#rag-documents .rag-docs tr { border: 0 !important; }
#rag-documents .rag-docs th, #rag-documents .rag-docs td { border: 0 !important;
  border-bottom: 1px solid var(--border-color-primary) !important; padding: 5px 4px; vertical-align: top;
  background: transparent !important; }
#rag-documents .rag-docs th { text-align: left; font-weight: 600; color: var(--body-text-color-subdued);
  font-size: .78rem; }
#rag-documents .rag-docs td:not(:first-child), #rag-documents .rag-docs th:not(:first-child) { text-align: right;
  width: 4.2em; white-space: nowrap; }
#rag-documents .rag-file { overflow-wrap: anywhere; }
.rag-tag { font-size: .68rem; background: var(--color-accent-soft); color: var(--color-accent); white-space: nowrap;
  border-radius: 4px; padding: 0 5px; margin-left: 4px; }
.rag-sources h3 { font-size: .95rem; margin: 8px 0; }
.rag-question { font-weight: 600; font-size: 1.02rem; margin: 0 0 4px; }
.rag-empty { border: 1px dashed var(--border-color-primary); border-radius: 12px; padding: 14px 16px; }
.rag-empty h3 { margin-top: 0; }
.rag-empty p { color: var(--body-text-color-subdued); margin: 0; }
.rag-card { border: 1px solid var(--border-color-primary); border-left: 4px solid var(--color-accent);
  border-radius: 10px; padding: 10px 12px; margin: 0 0 10px; background: var(--block-background-fill); }
.rag-closest { border-left-color: var(--neutral-400); }
.rag-card header { display: flex; align-items: center; gap: 8px; margin-bottom: 6px; }
.rag-n { display: inline-flex; align-items: center; justify-content: center; min-width: 22px; height: 22px;
  border-radius: 999px; background: var(--color-accent); color: white; font-size: .78rem; font-weight: 700; }
.rag-closest .rag-n { background: var(--neutral-400); }
.rag-card .rag-file { font-weight: 600; overflow-wrap: anywhere; }
.rag-page { margin-left: auto; font-size: .78rem; color: var(--body-text-color-subdued); white-space: nowrap;
  background: var(--background-fill-secondary); border-radius: 999px; padding: 1px 8px; }
.rag-snippet { margin: 0; line-height: 1.55; font-size: .92rem; }
.rag-passage { margin: 6px 0 0; line-height: 1.55; white-space: pre-wrap; font-size: .9rem; padding: 8px 10px;
  border-radius: 8px; background: var(--background-fill-secondary); max-height: 22rem; overflow-y: auto; }
.rag-card mark { background: #fde68a; color: #1f2937; border-radius: 3px; padding: 0 2px; }
.rag-card details { margin-top: 6px; }
.rag-card summary { cursor: pointer; color: var(--color-accent); font-size: .83rem; }
.rag-notfound { border-left: 4px solid #f59e0b; background: rgba(245, 158, 11, .1); padding: 8px 12px;
  border-radius: 6px; margin: 4px 0 10px; }
.rag-note { color: var(--body-text-color-subdued); font-size: .78rem; }
#rag-chat sub { font-size: .78rem; color: var(--body-text-color-subdued); vertical-align: baseline; }
#rag-ask-row { align-items: stretch; }
"""

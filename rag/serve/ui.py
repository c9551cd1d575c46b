"""The web chat: a Gradio page built from ``Index`` alone (``rag serve``, ``python app.py``).

The page asks, searches, ingests and removes through ``Index`` and only wires what comes back to
the page: the HTML is made by ``rag.serve.render`` (which makes every document and model string inert),
its styles and scripts are ``rag.serve.page_assets``, the API serves ``Answer.to_dict``/``Hit.to_dict``, uploads are
stored by ``rag.serve.uploads``, and the server sits behind ``rag.serve.webguard``. Questions run on immutable
index snapshots, several at once; uploads and removals queue one at a time and never hold up the
questions of other tabs.

Example:
    >>> from rag import Index
    >>> from rag.serve.ui import build_app, launch
    >>> demo = build_app(Index.open("index/"))
    >>> launch(demo, "127.0.0.1", 7860)              # blocks; or: rag serve --index index/
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import gradio as gr

from rag.collections import DEFAULT_COLLECTION, DEMO_COLLECTION, UPLOADS_COLLECTION, Collections
from rag.errors import IndexNotFoundError, QueryError, RagError
from rag.file_types import has_page_images
from rag.index import DEFAULT_FOLDER, Index
from rag.ingest.load import SUPPORTED_SUFFIXES
from rag.limits import MAX_PASSAGES, MAX_QUESTION_CHARS, cap_history, check_k, clean_question
from rag.serve.logsafe import install
from rag.serve.page_assets import CONFIRM_REMOVE, CSS, NARROW_JS, OPEN_SOURCE_JS, VIEWER_JS, theme
from rag.serve.public import public_message, public_sources
from rag.serve.render import (
    SOURCES_EMPTY,
    question_html,
    render_documents,
    render_failure,
    render_ingest,
    render_removed,
    render_reply,
    render_sources,
    render_stats,
    render_viewer,
    shown_quotes,
    viewer_error,
)
from rag.serve.servertemp import use_private_folder
from rag.serve.slots import READERS
from rag.serve.uploads import (
    MAX_UPLOAD_BYTES,
    UPLOADS,
    WRITE_WAIT,
    add_uploads,
    discard_uploaded_copies,
    received_uploads,
    remove_document,
    safe_filename,
    size_text,
    store_uploads,
)
from rag.serve.webguard import allowed_hosts, guarded_app, key_login
from rag.settings import Settings
from rag.store.snapshot import current_generation, settings_from_manifest
from rag.types import Quote

__all__ = ["MAX_UPLOAD_BYTES", "UPLOADS", "WRITE_WAIT", "add_uploads", "build_app",
           "discard_uploaded_copies", "launch", "open_index", "remove_document",
           "render_reply", "render_sources", "safe_filename", "serve", "store_uploads", "viewer_html"]

_CHECKOUT = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = _CHECKOUT / "docs" / "user-guide.md" if (_CHECKOUT / "app.py").is_file() else None
"""This project's user guide, served when the index is empty so that a first run can answer
questions; only in a source checkout (an installed package has no docs/ of its own). Only the
guide: the benchmark tables beside it would crowd the answers (and hold FinanceBench questions)."""

PAGE_SCALE = 1.5
"""PDF pages are shown at 108 pixels per inch (a Letter page is 918 x 1188): sharp at the viewer's
width, and a few hundred KB inside the page's HTML."""

EXAMPLES = ("Does rag need an internet connection?", "How are answers checked against the documents?",
            "How can other machines on the network reach the chat?")
"""The example questions of the demo's first screen: answered well by the user guide (checked in
tests/test_browser_first_screen.py), and what a new user wants to know first."""

STAGES = {"model": ("Loading the embedding model", None), "files": ("Reading files", "files"),
          "ocr": ("Reading scanned pages (OCR)", "pages"), "embedding": ("Embedding passages", "passages")}
"""What an upload's progress says at each stage of ``rag.pipeline`` (and ``add_uploads``). The model
loads first, as a stage of its own (Gradio shows no words without a bar: a stage without a unit
shows its name at 0%): loaded inside the ingest, it held the "files" bar still at 50% of two
files for the seconds it took."""

SESSIONS = 500
"""Page sessions kept at once (Gradio's default is 10,000); the oldest goes first. Each holds its
conversation and source panels, bounded below, so 500 sessions stay within tens of MB."""

STATE_TTL = 4 * 3600
"""Seconds a session's state lives after its last change: abandoned sessions (a tab left open,
a client that never closes) are dropped; a person back after four hours starts a new conversation."""

KEPT_PANELS = 20
"""Source panels kept per session (the latest answers'); a click on an older question shows none."""


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
    use_private_folder(index_folder)
    index = open_index(index_folder, corpus)
    launch(build_app(index, max_upload_bytes=max_upload_bytes), host, port, max_upload_bytes=max_upload_bytes,
           allow_hosts=allow_hosts)


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, *, block: bool = True,
           max_upload_bytes: int = MAX_UPLOAD_BYTES, allow_hosts: Sequence[str] = (),
           api_key: str | None = None) -> gr.Blocks:
    """Start the server for a page made by ``build_app``; returns the page (``demo.close()`` stops it).

    The server answers only requests whose ``Host`` is a loopback name, ``host`` or one of
    ``allow_hosts``, and only same-site ones (``rag.serve.webguard``): a web page the user visits can
    neither rebind its name to this server nor post to it. With ``api_key``, the page and its API
    ask for the key too (Gradio's login: any user name, the key as password; ``gradio_client``
    passes ``auth=("rag", key)``).

    Example:
        >>> demo = launch(build_app(index), "127.0.0.1", 7861, block=False)
        >>> demo.close()
    """
    install()   # control characters from requests are escaped in every log line
    # Questions and writes have their own concurrency groups (see build_app); anything else runs alone.
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=host, server_port=port, prevent_thread_lock=True, inbrowser=False, share=False,
        max_file_size=max_upload_bytes, show_error=False, quiet=True, footer_links=["api"],
        run_history=False, ssr_mode=False, mcp_server=False, theme=theme(), css=CSS,
        # No static-file workers (GRADIO_NUM_WORKERS): they would listen on ports of their own,
        # outside the guard.
        num_workers=0, _app=guarded_app(allowed_hosts(host, allow_hosts)),
        state_session_capacity=SESSIONS, auth=key_login(api_key) if api_key else None,
        auth_message="This server is protected by its API key: enter it as the password (any user name).",
    )
    if block:
        print(f"rag web chat on {demo.local_url} (Ctrl+C to stop)", flush=True)
        demo.block_thread()
    return demo


# --------------------------------------------------------------------------------------------
# The page


class _Concurrency(TypedDict):
    """The queue options of an event listener (passed as ``**`` keywords)."""

    concurrency_limit: int
    concurrency_id: str


LIBRARY_REFRESH_SECONDS = 3.0
"""How often an open page looks for a new generation of its collection (a watched folder's update)."""


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
        # Read from the index folder each time: a collection made by an upload, in this tab or
        # another, is in the menu after a reload.
        return sorted({shown, *collections.names()}) if collections is not None else [shown]

    def first_screen(collection: str | None) -> dict[str, Any]:
        """The empty chat of ``collection``: what it holds and how to start (examples for the demo)."""
        demo = collections is not None and (collection or shown) == DEMO_COLLECTION
        return {"placeholder": welcome_html(demo, len(pick(collection)) == 0),
                "examples": [{"text": q} for q in EXAMPLES] if demo else []}

    def existing(collection: str | None) -> Index:
        # The API reads collections and never makes one: a typo must be an error, not an empty answer.
        if not collection or collection == shown:
            return index
        if collections is None:
            raise IndexNotFoundError(f"no collection {collection!r}: this page serves one index")
        return collections.get(collection)

    def ask(question: str, k: int = settings.k, history: list[dict[str, Any]] | None = None,
            collection: str = "", sources: list[str] | None = None) -> dict[str, Any]:
        """Answer a question from the indexed documents, with verbatim quotes and their files and pages.

        Args:
            question: the question, in plain words.
            k: how many passages to read.
            history: the earlier turns, oldest first, as [{"role": "user"|"assistant", "content": ...}];
                a follow-up is searched with what they were about ("query" says what was searched).
            collection: which collection to ask (empty: the one the page opens with).
            sources: only read these documents (file names or paths; empty: all).

        Returns:
            answer (text with [n] markers), found (false when the documents do not answer), citations
            [{n, text, source, name, page, start, end, ocr}] and the passages read (hits): Answer.to_dict.
        """
        try:
            return existing(collection).ask(api_question(question), api_passages(k), history=history or None,
                                            sources=sources or None).to_dict()
        except RagError as exc:
            raise gr.Error(public_message(str(exc))) from None

    def search(question: str, k: int = settings.k, collection: str = "") -> list[dict[str, Any]]:
        """The passages that best match a question, each as Hit.to_dict: {rank, score, source, name, page,
        start, end, text, quote, ...}.

        Args:
            question: the question, in plain words.
            k: how many passages.
            collection: which collection to search (empty: the one the page opens with).
        """
        try:
            hits = existing(collection).search(api_question(question), api_passages(k))
        except RagError as exc:
            raise gr.Error(public_message(str(exc))) from None
        return [hit.to_dict() for hit in hits]

    def post_example(history: list[dict[str, Any]], evt: gr.SelectData) -> tuple[Any, ...]:
        value = evt.value if isinstance(evt.value, dict) else {}
        return post_question(str(value.get("text") or ""), history)

    def post_question(question: str, history: list[dict[str, Any]]) -> tuple[Any, ...]:
        try:
            question = clean_question(question or "")
        except RagError as exc:
            raise gr.Error(public_message(str(exc))) from None
        if not question:
            return gr.skip(), gr.skip(), ""
        return "", history + [{"role": "user", "content": question_html(question)}], question

    def reply(question: str, history: list[dict[str, Any]], panels: dict[int, Any], k: float, mode: str,
              collection: str | None, conversation: list[dict[str, str]], scope: str | None = None) -> tuple[Any, ...]:
        if not question:
            return (gr.skip(),) * 6
        index = pick(collection)
        # The chatbot holds rendered HTML; the conversation state holds what was asked and
        # answered in plain words, which is what the follow-up resolver reads.
        conversation = list(conversation or [])
        quotes: tuple[Quote, ...] = ()
        try:
            answer = index.ask(question, passages(k), history=conversation or None, answer_mode=mode,
                               sources=[scope] if scope else None)
        except IndexNotFoundError:
            text, panel = ("<p>No documents are indexed yet. Add files under <b>Library</b> on the left, "
                           "then ask again.</p>"), SOURCES_EMPTY
        except RagError as exc:
            text, panel = f"<p><b>Could not answer:</b></p>{render_failure(exc)}", SOURCES_EMPTY
        else:
            text, panel, quotes = render_reply(answer), render_sources(answer, index), shown_quotes(answer)
            conversation += [{"role": "user", "content": question},
                             {"role": "assistant", "content": answer.span if answer.found and answer.span
                              else answer.text}]
        history = history + [{"role": "assistant", "content": text}]
        # The state keeps what a follow-up and a click need, not every answer ever shown.
        kept = {n: p for n, p in panels.items() if n >= len(history) - 2 * KEPT_PANELS}
        return history, {**kept, len(history) - 1: (panel, quotes)}, panel, quotes, cap_history(conversation), ""

    def show_sources(panels: dict[int, Any], evt: gr.SelectData) -> Any:
        # A click on a question shows the sources of the answer that follows it.
        message = int(evt.index if isinstance(evt.index, int) else evt.index[0])
        shown = panels.get(message) or panels.get(message + 1)
        return (shown[0], shown[1], "") if shown else (gr.skip(),) * 3

    def open_source(quotes: Sequence[Quote], collection: str | None, evt: gr.EventData) -> Any:
        data = getattr(evt, "_data", None)
        cite = data.get("cite") if isinstance(data, dict) else None
        if not isinstance(cite, int) or not 0 <= cite < len(quotes or ()):
            return gr.skip()  # a click beside the buttons, or a panel replaced meanwhile
        return viewer_html(pick(collection), quotes[cite])

    def library(collection: str | None = None, keep_choice: bool = False) -> tuple[Any, ...]:
        index = pick(collection)
        docs = index.documents()
        # The browser gets each document's path relative to its collection, never the absolute one
        # (rag.serve.public): the page's /config and its menus are readable by anyone who can load it.
        public = {source: key for key, source in public_sources(index).items()}
        choices = [(f"{d.name}  ({d.pages} p.)", public[d.source]) for d in docs]
        # A refresh from outside (a watched folder) keeps the document the user picked to remove.
        chosen_update = gr.update(choices=choices) if keep_choice else gr.update(choices=choices, value=None)
        return render_stats(index.stats()), render_documents(docs, index.folder / UPLOADS, public), chosen_update

    def on_load(collection: str | None) -> tuple[Any, ...]:
        return library(collection) + (gr.update(choices=collection_choices()),
                                      gr.update(**first_screen(collection)))

    def add_files(files: list[str] | None, collection: str | None = None,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 - gradio's documented idiom
        if not files:
            return (gr.skip(),) * 6
        try:
            return _add(files, collection, progress)
        finally:
            discard_uploaded_copies(files)   # on every outcome, a failure's too

    def _add(files: list[str], collection: str | None, progress: gr.Progress) -> tuple[Any, ...]:
        # The demo collection stays the user guide: a user's own files start their own collection.
        target = UPLOADS_COLLECTION if collections is not None and (collection or shown) == DEMO_COLLECTION \
            else collection
        index = pick(target)

        def on_progress(stage: str, done: int, total: int) -> None:
            desc, unit = STAGES.get(stage, (stage, "steps"))
            if unit is None:
                if done < total:
                    progress(0.0, desc=desc)
            else:
                progress((done, total), desc=desc, unit=unit)

        progress(0.0, desc="Saving the uploads")
        received, foreign = received_uploads(files)
        stored, failed, report = add_uploads(index, received, max_bytes, on_progress)
        failed = foreign + failed
        names = collection_choices()   # a first upload that failed whole made no collection
        now = target if target in names else (collection or shown)
        choice = gr.update(choices=names, value=now)
        into = (target or shown) if collections is not None else ""
        kept = stays_note(pick(collection).documents(), collection or shown) if now != (collection or shown) else ""
        return (None, render_ingest(stored, failed, report, collection=into, note=kept)) + library(target) + (choice,)

    def remove(chosen: str | None, collection: str | None = None) -> tuple[Any, ...]:
        if not chosen:
            return (gr.skip(),) * 4
        index = pick(collection)
        source = public_sources(index).get(chosen)
        if source is None:  # removed meanwhile (another tab, a watched folder)
            return (render_failure(f"{chosen}: not in the index"),) + library(collection)
        try:
            remove_document(index, source)
        except RagError as exc:
            return (render_failure(exc),) + library(collection)
        return (render_removed(source),) + library(collection)

    def refresh(collection: str | None, seen: Any) -> tuple[Any, ...]:  # noqa: ANN401 - a gr.State value
        # A watched folder (rag serve --watch) or another process writes new generations: the
        # library shows them without a reload, and only re-renders when the generation changed.
        snapshot = pick(collection).snapshot()
        now = [collection, snapshot.generation if snapshot is not None else None]
        if now == seen:
            return (gr.skip(),) * 4
        return library(collection, keep_choice=True) + (now,)

    def switch(collection: str | None) -> tuple[Any, ...]:
        # Answers shown so far came from the other collection: start the conversation afresh.
        return library(collection) + (gr.update(value=[], **first_screen(collection)), {}, SOURCES_EMPTY, (), "",
                                      [], "")

    llm = settings.llm_configured
    # Gradio keeps its own copy of every upload; an hourly sweep stops documents piling up in /tmp.
    with gr.Blocks(title="rag: answers from your documents", analytics_enabled=False, fill_width=True,
                   delete_cache=(3600, 3600)) as demo:
        panels = gr.State({}, time_to_live=STATE_TTL)
        pending = gr.State("", time_to_live=STATE_TTL)
        conversation = gr.State([], time_to_live=STATE_TTL)
        quotes = gr.State((), time_to_live=STATE_TTL)
        with gr.Sidebar(label="Library", open=True, width=350, elem_id="rag-sidebar"):
            gr.HTML('<div class="rag-brand"><span class="rag-logo">r</span><div><b>rag</b>'
                    '<small>answers from your documents</small></div></div>')
            collection_box = gr.Dropdown(choices=collection_choices(), value=shown, label="Collection",
                                         info="Questions search this collection only.", allow_custom_value=False,
                                         visible=collections is not None, elem_id="rag-collection")
            stats = gr.HTML(render_stats(index.stats()), elem_id="rag-stats")
            upload = gr.File(label="Add documents", file_count="multiple", elem_id="rag-upload",
                             file_types=sorted(SUPPORTED_SUFFIXES), height=110)
            gr.HTML(f'<p class="rag-hint">PDF, Word, PowerPoint, Excel, CSV, EPUB, e-mail, OpenDocument, text, '
                    f'Markdown or HTML, up to {size_text(max_bytes)} each. Files are kept in the index folder.</p>')
            ingest_report = gr.HTML(elem_id="rag-ingest-report")
            documents = gr.HTML(render_documents(index.documents(), index.folder / UPLOADS), elem_id="rag-documents")
            gr.HTML('<p class="rag-hint">Remove a document from the index: choose it, then Remove.</p>')
            with gr.Row(equal_height=True, elem_id="rag-remove-row"):
                chosen = gr.Dropdown(choices=[], value=None, show_label=False, container=False, scale=3,
                                     label="Document to remove", elem_id="rag-remove-choice")
                # Enabled once a document is chosen: a click with none chosen would do nothing.
                remove_button = gr.Button("Remove", variant="stop", size="sm", scale=1, min_width=80,
                                          elem_id="rag-remove", interactive=False)
            with gr.Accordion("Answer settings", open=False, elem_id="rag-settings"):
                k = gr.Slider(1, 20, value=settings.k, step=1, label="Passages to read",
                              info="More passages find more, but the answer takes a little longer.")
                mode = gr.Radio([("Extractive (offline)", "extractive"), ("LLM", "llm")],
                                value=settings.answer_mode if llm else "extractive", label="Answer mode",
                                interactive=llm,
                                info=(f"LLM: {settings.llm_model}" if llm else
                                      "LLM answers need RAG_LLM_BASE_URL and RAG_LLM_MODEL."))
                scope = gr.Dropdown(choices=[("All documents", "")], value="", label="Ask about",
                                    info="All documents, or this document only.", elem_id="rag-scope")
        with gr.Row(equal_height=True, elem_id="rag-top"):
            gr.HTML('<header class="rag-header"><h1>Ask your documents</h1><p>Every answer is backed by quotes '
                    'checked word for word against the indexed pages.</p>'
                    '<a class="rag-jump" href="#rag-sources">Sources ↓</a></header>')
            new_chat = gr.Button("New chat", variant="secondary", size="sm", scale=0, min_width=104,
                                 elem_id="rag-new-chat")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                chatbot = gr.Chatbot(
                    label="Conversation", show_label=False, height="66vh", elem_id="rag-chat",
                    **first_screen(shown),
                    # Messages are HTML made by rag.serve.render (Markdown rendered there, links never
                    # made); Gradio's own Markdown would link the addresses in an answer.
                    render_markdown=False, sanitize_html=True, allow_tags=False,
                    latex_delimiters=[], feedback_options=None, buttons=[], layout="bubble",
                )
                with gr.Row(equal_height=True, elem_id="rag-ask-row"):
                    question = gr.Textbox(placeholder="Ask a question about your documents",
                                          show_label=False, container=False, scale=8, autofocus=True,
                                          lines=1, max_lines=4, elem_id="rag-question", submit_btn=False,
                                          max_length=MAX_QUESTION_CHARS)
                    ask_button = gr.Button("Ask", variant="primary", scale=0, min_width=90, elem_id="rag-ask")
            with gr.Column(scale=4, min_width=320):
                # gradio annotates max_height as int | None, but documents and renders CSS units too.
                sources = gr.HTML(SOURCES_EMPTY, elem_id="rag-sources", max_height="74vh",  # type: ignore[arg-type]
                                  padding=False, js_on_load=OPEN_SOURCE_JS)
        viewer = gr.HTML("", elem_id="rag-viewer", js_on_load=VIEWER_JS, padding=False)

        read: _Concurrency = {"concurrency_limit": READERS, "concurrency_id": "read"}
        write: _Concurrency = {"concurrency_limit": 1, "concurrency_id": "write"}
        # A question is asked by Enter, by the Ask button or by a click on an example of the first screen.
        asked: list[tuple[Any, Any, list[Any]]] = [
            (question.submit, post_question, [question, chatbot]),
            (ask_button.click, post_question, [question, chatbot]),
            (chatbot.example_select, post_example, [chatbot])]
        for trigger, post, posted in asked:
            trigger(post, posted, [question, chatbot, pending], queue=False,
                    api_visibility="private").then(
                reply, [pending, chatbot, panels, k, mode, collection_box, conversation, scope],
                [chatbot, panels, sources, quotes, conversation, viewer],
                api_visibility="private",
                show_progress="minimal", **read)
        cleared = (SOURCES_EMPTY, (), "")
        chatbot.clear(lambda: ({}, *cleared, []), None, [panels, sources, quotes, viewer, conversation],
                      queue=False, api_visibility="private")
        new_chat.click(lambda: ([], {}, *cleared, []), None, [chatbot, panels, sources, quotes, viewer, conversation],
                       queue=False, api_visibility="private")
        chatbot.select(show_sources, panels, [sources, quotes, viewer], queue=False, api_visibility="private")
        # The viewer has slots of its own too: a page opened while four LLM answers are pending
        # must not wait for them.
        sources.click(open_source, [quotes, collection_box], viewer, api_visibility="private",
                      show_progress="minimal", concurrency_limit=2, concurrency_id="view")
        upload.upload(add_files, [upload, collection_box],
                      [upload, ingest_report, stats, documents, chosen, collection_box],
                      show_progress_on=[upload], api_visibility="private", **write)
        remove_button.click(remove, [chosen, collection_box], [ingest_report, stats, documents, chosen],
                            api_visibility="private", js=CONFIRM_REMOVE,
                            **write)
        chosen.change(lambda source: gr.update(interactive=bool(source)), chosen, remove_button,
                      api_visibility="private", queue=False)
        demo.load(on_load, collection_box, [stats, documents, chosen, collection_box, chatbot],
                  api_visibility="private", queue=False)
        first = pick(shown).snapshot()
        seen_generation = gr.State([shown, first.generation if first is not None else None], time_to_live=STATE_TTL)
        gr.Timer(LIBRARY_REFRESH_SECONDS).tick(refresh, [collection_box, seen_generation],
                                               [stats, documents, chosen, seen_generation],
                                               api_visibility="private", queue=False, show_progress="hidden")
        # The documents to ask about are listed afresh each time the list is opened (uploads change them).
        scope.focus(lambda c: gr.update(choices=[("All documents", "")] + [(Path(key).name, key) for key in
                                                                           public_sources(pick(c))]),
                    collection_box, scope, api_visibility="private", queue=False)
        demo.load(None, None, None, js=NARROW_JS, api_visibility="private", queue=False)
        collection_box.change(switch, collection_box,
                              [stats, documents, chosen, chatbot, panels, sources, quotes, pending, conversation,
                               viewer],
                              api_visibility="private", queue=False)
        gr.api(ask, api_name="ask", **read)
        # Searches have slots of their own: an LLM answer may take its whole timeout, and four of
        # them would otherwise hold every slot a search needs (a search waited 148 s behind them).
        gr.api(search, api_name="search", concurrency_limit=READERS, concurrency_id="search")
    return demo


def welcome_html(demo: bool, empty: bool) -> str:
    """The first screen of the chat: what the collection holds and the two ways to start."""
    if demo:
        return ('<div class="rag-welcome"><p><b>This demo holds rag\'s own user guide.</b> Try a question below, '
                'or type your own.</p><p><b>Your documents:</b> open <b>Library</b> and drop PDF, text, Markdown '
                'or HTML files on <i>Add documents</i>. They go to a collection of their own, <i>my-documents</i>.'
                '</p><p class="rag-muted">Every answer quotes its sources word for word; the quotes open in the '
                'Sources panel.</p></div>')
    if empty:
        return ('<div class="rag-welcome"><p><b>Nothing is indexed here yet.</b></p><p>Open <b>Library</b> and '
                'drop PDF, text, Markdown or HTML files on <i>Add documents</i>, then ask about them.</p></div>')
    return ('<div class="rag-welcome"><p><b>Ask anything about your documents.</b></p><p class="rag-muted">Every '
            'answer quotes its sources word for word; the quotes open in the Sources panel.</p></div>')


def stays_note(docs: Sequence[Any], collection: str) -> str:
    """What an upload redirected away from ``collection`` left there, e.g. "user-guide.md stays in demo"."""
    names = [d.name for d in docs]
    if not names:
        return ""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    one = len(names) == 1
    return (f"{shown} {'stays' if one else 'stay'} in {collection}: choose {collection} in the Collection menu "
            f"to ask {'it' if one else 'them'}.")


def api_question(question: object) -> str:
    """The question of an API call, or a ``QueryError`` saying why it is none (``None``, not text, blank)."""
    if not isinstance(question, str):
        raise QueryError(f"the question must be text, not {type(question).__name__}")
    if not question.strip():
        raise QueryError("the question is empty")
    return question


def api_passages(k: object) -> int:
    """``k`` of an API call, checked as the OpenAI API and the MCP tools check it: never changed silently.

    Example:
        >>> api_passages(3)
        3
    """
    # gradio_client sends a float for a number typed as int in some clients: 3.0 is 3, 2.5 is not.
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    return check_k(k, MAX_PASSAGES)


def viewer_html(index: Index, quote: Quote) -> str:
    """The viewer of a cited source: a PDF page as an image with the quote's region highlighted,
    or the passage in its whole document with the quote marked.

    Example:
        >>> html_text = viewer_html(index, index.ask("Who called for UN visits?").citations[0])
    """
    try:
        text = index.page_text(quote.source, quote.page)
        if not has_page_images(quote.source):
            return render_viewer(quote, text)
        try:
            image = index.page_image(quote.source, quote.page, scale=PAGE_SCALE)
            boxes = index.quote_boxes(quote)
        except RagError as exc:
            # (a file changed or moved since it was indexed): its stored text can still be shown.
            return render_viewer(quote, text, note=f"The page image cannot be shown: {exc}")
        return render_viewer(quote, text, png=image.png, size=(image.width, image.height), boxes=boxes)
    except RagError as exc:
        return viewer_error(str(exc))

"""The page's layout and wiring: which component shows what, and which handler each event runs.

The handlers live beside it: the chat's in ``chat.py``, the library's in ``library.py``, the API's
in ``api.py``, each given the page's ``PageIndexes`` (``indexes.py``). Questions and writes have
concurrency groups of their own, so an upload never holds up the questions of other tabs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import gradio as gr

from rag.collections import Collections
from rag.file_types import supported_suffixes
from rag.index import Index
from rag.limits import MAX_QUESTION_CHARS
from rag.serve.page_assets import CONFIRM_REMOVE, NARROW_JS, OPEN_SOURCE_JS, VIEWER_JS
from rag.serve.render import SOURCES_EMPTY, render_documents, render_stats
from rag.serve.uploads import MAX_UPLOAD_BYTES, UPLOADS, size_text
from rag.serve.web.api import api_endpoints
from rag.serve.web.chat import ChatHandlers, post_example, post_question, show_sources
from rag.serve.web.indexes import PageIndexes
from rag.serve.slots import READERS
from rag.serve.web.library import LIBRARY_REFRESH_SECONDS, LibraryHandlers

SESSIONS = 500
"""Page sessions kept at once (Gradio's default is 10,000); the oldest goes first. Each holds its
conversation and source panels, bounded below, so 500 sessions stay within tens of MB."""

STATE_TTL = 4 * 3600
"""Seconds a session's state lives after its last change: abandoned sessions (a tab left open,
a client that never closes) are dropped; a person back after four hours starts a new conversation."""


class _Concurrency(TypedDict):
    """The queue options of an event listener (passed as ``**`` keywords)."""

    concurrency_limit: int
    concurrency_id: str


@dataclass(frozen=True)
class _Sidebar:
    collection_box: gr.Dropdown
    stats: gr.HTML
    upload: gr.File
    ingest_report: gr.HTML
    documents: gr.HTML
    chosen: gr.Dropdown
    remove_button: gr.Button
    k: gr.Slider
    mode: gr.Radio
    scope: gr.Dropdown


@dataclass(frozen=True)
class _ChatPanes:
    new_chat: gr.Button
    chatbot: gr.Chatbot
    question: gr.Textbox
    ask_button: gr.Button
    sources: gr.HTML
    viewer: gr.HTML


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
    indexes = PageIndexes(index, collections)
    settings, shown = indexes.settings, indexes.shown
    chat = ChatHandlers(indexes)
    shelf = LibraryHandlers(indexes, min(max_upload_bytes, settings.max_file_bytes))
    ask, search = api_endpoints(indexes)

    # Gradio keeps its own copy of every upload; an hourly sweep stops documents piling up in /tmp.
    with gr.Blocks(title="rag: answers from your documents", analytics_enabled=False, fill_width=True,
                   delete_cache=(3600, 3600)) as demo:
        panels = gr.State({}, time_to_live=STATE_TTL)
        pending = gr.State("", time_to_live=STATE_TTL)
        conversation = gr.State([], time_to_live=STATE_TTL)
        quotes = gr.State((), time_to_live=STATE_TTL)
        side = _sidebar(indexes, shelf.max_bytes)
        panes = _chat_panes(indexes)

        read: _Concurrency = {"concurrency_limit": READERS, "concurrency_id": "read"}
        write: _Concurrency = {"concurrency_limit": 1, "concurrency_id": "write"}
        chatbot, sources, viewer = panes.chatbot, panes.sources, panes.viewer
        # A question is asked by Enter, by the Ask button or by a click on an example of the first screen.
        asked: list[tuple[Any, Any, list[Any]]] = [
            (panes.question.submit, post_question, [panes.question, chatbot]),
            (panes.ask_button.click, post_question, [panes.question, chatbot]),
            (chatbot.example_select, post_example, [chatbot])]
        for trigger, post, posted in asked:
            trigger(post, posted, [panes.question, chatbot, pending], queue=False,
                    api_visibility="private").then(
                chat.reply, [pending, chatbot, panels, side.k, side.mode, side.collection_box, conversation,
                             side.scope],
                [chatbot, panels, sources, quotes, conversation, viewer],
                api_visibility="private",
                show_progress="minimal", **read)
        cleared = (SOURCES_EMPTY, (), "")
        chatbot.clear(lambda: ({}, *cleared, []), None, [panels, sources, quotes, viewer, conversation],
                      queue=False, api_visibility="private")
        panes.new_chat.click(lambda: ([], {}, *cleared, []), None,
                             [chatbot, panels, sources, quotes, viewer, conversation],
                             queue=False, api_visibility="private")
        chatbot.select(show_sources, panels, [sources, quotes, viewer], queue=False, api_visibility="private")
        # The viewer has slots of its own too: a page opened while four LLM answers are pending
        # must not wait for them.
        sources.click(chat.open_source, [quotes, side.collection_box], viewer, api_visibility="private",
                      show_progress="minimal", concurrency_limit=2, concurrency_id="view")
        library = [side.stats, side.documents, side.chosen]
        side.upload.upload(shelf.add_files, [side.upload, side.collection_box],
                           [side.upload, side.ingest_report, *library, side.collection_box],
                           show_progress_on=[side.upload], api_visibility="private", **write)
        side.remove_button.click(shelf.remove, [side.chosen, side.collection_box], [side.ingest_report, *library],
                                 api_visibility="private", js=CONFIRM_REMOVE,
                                 **write)
        side.chosen.change(lambda source: gr.update(interactive=bool(source)), side.chosen, side.remove_button,
                           api_visibility="private", queue=False)
        demo.load(shelf.on_load, side.collection_box, [*library, side.collection_box, chatbot],
                  api_visibility="private", queue=False)
        first = indexes.pick(shown).snapshot()
        seen_generation = gr.State([shown, first.generation if first is not None else None], time_to_live=STATE_TTL)
        gr.Timer(LIBRARY_REFRESH_SECONDS).tick(shelf.refresh, [side.collection_box, seen_generation],
                                               [*library, seen_generation],
                                               api_visibility="private", queue=False, show_progress="hidden")
        side.scope.focus(shelf.scope_choices, side.collection_box, side.scope, api_visibility="private", queue=False)
        demo.load(None, None, None, js=NARROW_JS, api_visibility="private", queue=False)
        side.collection_box.change(shelf.switch, side.collection_box,
                                   [*library, chatbot, panels, sources, quotes, pending, conversation, viewer],
                                   api_visibility="private", queue=False)
        gr.api(ask, api_name="ask", **read)
        # Searches have slots of their own: an LLM answer may take its whole timeout, and four of
        # them would otherwise hold every slot a search needs (a search waited 148 s behind them).
        gr.api(search, api_name="search", concurrency_limit=READERS, concurrency_id="search")
    return demo


def _sidebar(indexes: PageIndexes, max_bytes: int) -> _Sidebar:
    """The library (collection, stats, uploads, documents, removal) and the answer settings."""
    index, settings, shown = indexes.index, indexes.settings, indexes.shown
    llm = settings.llm_configured
    with gr.Sidebar(label="Library", open=True, width=350, elem_id="rag-sidebar"):
        gr.HTML('<div class="rag-brand"><span class="rag-logo">r</span><div><b>rag</b>'
                '<small>answers from your documents</small></div></div>')
        collection_box = gr.Dropdown(choices=indexes.choices(), value=shown, label="Collection",
                                     info="Questions search this collection only.", allow_custom_value=False,
                                     visible=indexes.collections is not None, elem_id="rag-collection")
        stats = gr.HTML(render_stats(index.stats()), elem_id="rag-stats")
        upload = gr.File(label="Add documents", file_count="multiple", elem_id="rag-upload",
                         file_types=sorted(supported_suffixes()), height=110)
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
    return _Sidebar(collection_box, stats, upload, ingest_report, documents, chosen, remove_button, k, mode, scope)


def _chat_panes(indexes: PageIndexes) -> _ChatPanes:
    """The conversation with its question box, the sources panel beside it and the viewer below."""
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
                **indexes.first_screen(indexes.shown),
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
    return _ChatPanes(new_chat, chatbot, question, ask_button, sources, viewer)

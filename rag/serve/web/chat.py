"""The chat's handlers: a question posted, answered with its sources panel, a source opened.

The chatbot holds rendered HTML; the conversation state holds what was asked and answered in
plain words, which is what the follow-up resolver reads. Each answer's sources panel is kept in
the tab's state (the latest ``KEPT_PANELS``), so a click on an earlier question shows its sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr

from rag.errors import IndexNotFoundError, RagError
from rag.limits import cap_history, clean_question
from rag.serve.public import public_message
from rag.serve.render import SOURCES_EMPTY, question_html, render_failure, render_reply, render_sources, shown_quotes
from rag.serve.web.indexes import PageIndexes
from rag.serve.web.viewer import viewer_html
from rag.types import Quote

KEPT_PANELS = 20
"""Source panels kept per session (the latest answers'); a click on an older question shows none."""


def post_question(question: str, history: list[dict[str, Any]]) -> tuple[Any, ...]:
    """Show the question in the chat at once and hand it on (``pending``) to be answered."""
    try:
        question = clean_question(question or "")
    except RagError as exc:
        raise gr.Error(public_message(str(exc))) from None
    if not question:
        return gr.skip(), gr.skip(), ""
    return "", history + [{"role": "user", "content": question_html(question)}], question


def post_example(history: list[dict[str, Any]], evt: gr.SelectData) -> tuple[Any, ...]:
    value = evt.value if isinstance(evt.value, dict) else {}
    return post_question(str(value.get("text") or ""), history)


def show_sources(panels: dict[int, Any], evt: gr.SelectData) -> Any:
    # A click on a question shows the sources of the answer that follows it.
    message = int(evt.index if isinstance(evt.index, int) else evt.index[0])
    shown = panels.get(message) or panels.get(message + 1)
    return (shown[0], shown[1], "") if shown else (gr.skip(),) * 3


class ChatHandlers:
    """The handlers that need the tab's index: answering and opening a source."""

    def __init__(self, indexes: PageIndexes) -> None:
        self.indexes = indexes

    def reply(self, question: str, history: list[dict[str, Any]], panels: dict[int, Any], k: float, mode: str,
              collection: str | None, conversation: list[dict[str, str]],
              scope: str | None = None) -> tuple[Any, ...]:
        if not question:
            return (gr.skip(),) * 6
        index = self.indexes.pick(collection)
        conversation = list(conversation or [])
        quotes: tuple[Quote, ...] = ()
        try:
            answer = index.ask(question, self.indexes.passages(k), history=conversation or None, answer_mode=mode,
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

    def open_source(self, quotes: Sequence[Quote], collection: str | None, evt: gr.EventData) -> Any:
        data = getattr(evt, "_data", None)
        cite = data.get("cite") if isinstance(data, dict) else None
        if not isinstance(cite, int) or not 0 <= cite < len(quotes or ()):
            return gr.skip()  # a click beside the buttons, or a panel replaced meanwhile
        return viewer_html(self.indexes.pick(collection), quotes[cite])

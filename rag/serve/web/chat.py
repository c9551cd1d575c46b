"""The chat's handlers: a question posted, answered with its sources panel, a source opened.

The chatbot holds rendered HTML; the conversation state holds what was asked and answered in
plain words, which is what the follow-up resolver reads. Each answer's sources panel is kept in
the tab's state (the latest ``KEPT_PANELS``), so a click on an earlier question shows its sources.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
from gradio.context import LocalContext

from rag.errors import AnswerCancelled, IndexNotFoundError, RagError
from rag.limits import cap_history, clean_question
from rag.serve.public import public_message
from rag.serve.render import SOURCES_EMPTY, question_html, render_failure, render_reply, render_sources, shown_quotes
from rag.serve.web.indexes import PageIndexes
from rag.serve.web.viewer import viewer_html
from rag.types import Quote

KEPT_PANELS = 20
"""Source panels kept per session (the latest answers'); a click on an older question shows none."""

log = logging.getLogger(__name__)


def tab_gone() -> Callable[[], bool] | None:
    """For a page handler: a ``stop`` for ``Index.ask`` that turns true once the tab that asked is gone.

    Gradio drops the questions a closed tab left waiting in its queue by itself, but one being
    answered runs on: when the tab's event stream disconnects (noticed within about 10 s) the queue
    marks the running event not ``alive``, and a Stop (``/cancel``) takes it out of the queue's
    events; the handler is told of neither. So this reads the event the handler runs for
    (``LocalContext.event_id``, set by Gradio in the handler's thread) from the queue. ``None``
    outside a queued event (a direct call): nothing to watch.
    """
    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    events = getattr(getattr(blocks, "_queue", None), "event_ids_to_events", None)
    if not isinstance(events, dict) or event_id is None or (event := events.get(event_id)) is None:
        return None
    queued: dict[str, Any] = events
    return lambda: not event.alive or queued.get(event_id) is not event


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
                               sources=[scope] if scope else None, stop=tab_gone())
        except AnswerCancelled as exc:   # the tab closed: nobody to show anything to
            log.info("a page question whose tab closed was stopped: %s", exc)
            return (gr.skip(),) * 6
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

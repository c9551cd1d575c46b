"""The page's API for ``gradio_client``: ``/ask`` (question -> answer with quotes, files and pages)
and ``/search`` (question -> passages), checked as the OpenAI API and the MCP tools check theirs.

Example:
    >>> # Client("http://127.0.0.1:7860/").predict("Who called for UN visits?", 5, api_name="/ask")
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from rag.errors import AnswerCancelled, QueryError, RagError
from rag.serve.public import public_message
from rag.limits import MAX_PASSAGES, check_k
from rag.serve.web.chat import tab_gone
from rag.serve.web.indexes import PageIndexes

log = logging.getLogger(__name__)


def api_endpoints(indexes: PageIndexes) -> tuple[Callable[..., dict[str, Any]], Callable[..., list[dict[str, Any]]]]:
    """``ask`` and ``search`` over the page's collections, registered by ``build_app`` with ``gr.api``:
    their signatures (``k`` defaults to the settings' own) and docstrings are what the API page shows."""
    settings = indexes.settings

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
            return indexes.existing(collection).ask(api_question(question), api_passages(k), history=history or None,
                                                    sources=sources or None, stop=tab_gone()).to_dict()
        except AnswerCancelled as exc:   # the client left: one line in the log, no traceback
            log.info("an /ask call whose client left was stopped: %s", exc)
            raise gr.Error(public_message(str(exc)), print_exception=False) from None
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
            hits = indexes.existing(collection).search(api_question(question), api_passages(k))
        except RagError as exc:
            raise gr.Error(public_message(str(exc))) from None
        return [hit.to_dict() for hit in hits]

    return ask, search


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

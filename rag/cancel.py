"""Stopping an answer its caller no longer wants (``Index.ask(..., stop=...)``).

``stop`` is a function that says whether the caller has gone (the API's reader slots pass one
that turns true when the client disconnects, the web page one for a closed tab). ``Index.ask``
calls it between its stages, and the LLM client before every request it sends, through
``stop_point``; once it is true the answer ends there with ``AnswerCancelled``. A stage that has
begun is not interrupted (a search, the reading model's pass, an LLM request already sent): the
answer stops at the next stage. Without a ``stop`` nothing changes.

Example:
    >>> with stopping(lambda: True):
    ...     stop_point("reading")
    Traceback (most recent call last):
    ...
    rag.errors.AnswerCancelled: the answer was no longer wanted: stopped before reading
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rag.errors import AnswerCancelled

_STOP: ContextVar[Callable[[], bool] | None] = ContextVar("rag_stop", default=None)
"""The ``stop`` of the question being answered in this thread (a context variable: the LLM
client checks it without every function between ``Index.ask`` and it passing it on)."""


@contextmanager
def stopping(stop: Callable[[], bool] | None) -> Iterator[None]:
    """Within the block, ``stop_point`` asks ``stop`` (``None``: never stop)."""
    token = _STOP.set(stop)
    try:
        yield
    finally:
        _STOP.reset(token)


def stop_point(stage: str) -> None:
    """Raise ``AnswerCancelled`` before ``stage`` when the caller's ``stop`` says it has gone."""
    stop = _STOP.get()
    if stop is not None and stop():
        raise AnswerCancelled(f"the answer was no longer wanted: stopped before {stage}")

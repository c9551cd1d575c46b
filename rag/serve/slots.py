"""Reader slots for the API: a bounded queue, and no work for a client that has gone.

Answering takes a core for a fraction of a second to many seconds (an LLM answer); a client
that sends a question and hangs up must not hold a slot, and a crowd of them must not make the
queue grow without end. ``ReaderSlots.answer`` runs a question's work in a worker thread in one
of ``size`` slots while watching the connection:

- a client already gone when its question comes to a slot never takes one;
- a client that disconnects while waiting leaves the queue at once (its question is never answered);
- when ``queue`` requests already wait, a new one is refused (``SlotsBusy``, HTTP 503 with
  ``Retry-After``) instead of joining them;
- a client that disconnects while its question is being answered gets its slot given back at
  once, and its answer is told to stop: the work is handed a ``stop`` function that turns true
  when the client leaves, which ``Index.ask`` checks between its stages (``rag.cancel``): the
  thread ends at the next stage with ``AnswerCancelled`` (one log line), and an LLM request not
  yet sent is never sent. Up to ``size`` such abandoned answers finish their stage beside the
  slots; past that, a leaving client's slot waits for its thread, so at most twice ``size``
  answers ever take the cores.

Example:
    >>> slots = ReaderSlots(4, queue=16)
    >>> # answer = await slots.answer(lambda: disconnected(request), lambda stop: index.ask(question, stop=stop))
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from rag.errors import AnswerCancelled, ClientGone, SlotsBusy

log = logging.getLogger(__name__)

READERS = 4
"""Questions answered at the same time, through the page and through the API; more would only queue on the
2-4 cores this runs on."""

QUEUE = 16
"""Requests that may wait for a reader slot; one more is told to retry (HTTP 503)."""

Result = TypeVar("Result")
Stop = Callable[[], bool]
"""True once the client has gone: ``Index.ask``'s ``stop``."""


class ReaderSlots:
    """``size`` slots with at most ``queue`` waiters; clients that disconnect give theirs back."""

    def __init__(self, size: int = READERS, queue: int = QUEUE) -> None:
        self.size = size
        self.queue = queue
        self.waiting = 0
        self.started = 0
        """Questions that got a slot (answered or being answered), for tests and monitoring."""
        self.dropped = 0
        """Requests whose client left before a slot was theirs."""
        self.abandoned = 0
        """Questions whose client left while they were being answered."""
        self.orphans = 0
        """Abandoned answers whose worker thread still runs, their slot already given back."""
        self.stopped = 0
        """Abandoned answers whose work stopped early (``AnswerCancelled``) instead of running to its end."""
        self._free = asyncio.Semaphore(size)

    @property
    def full(self) -> bool:
        """Whether every slot is taken: the next question waits (or is refused past ``queue``)."""
        return self._free.locked()

    async def answer(self, gone: Callable[[], Awaitable[object]], work: Callable[[Stop], Result]) -> Result:
        """``work(stop)``'s result, computed in a worker thread while holding a slot.

        ``gone`` is awaited beside the wait and the work and returns when the client disconnects
        (for a Starlette request: a ``receive()`` that gets ``http.disconnect``); from then on
        ``stop()`` is true, for ``Index.ask(..., stop=stop)``. Raises ``SlotsBusy`` when the queue
        is full and ``ClientGone`` when the client left first.
        """
        watch = asyncio.ensure_future(gone())
        try:
            try:
                # One turn of the loop: a receive that holds the disconnect already returns without waiting.
                await asyncio.sleep(0)
                if watch.done():
                    raise ClientGone("the client disconnected before its question was answered")
                await self._take(watch)
            except (ClientGone, asyncio.CancelledError):  # cancelled: Starlette ends a left stream so
                self.dropped += 1
                raise
            return await self._run(watch, work)
        finally:
            watch.cancel()

    async def _take(self, watch: asyncio.Future[Any]) -> None:
        if not self.full:
            # A free slot is taken at once (the semaphore's fast path never suspends), so a
            # request that gets a slot is never counted among the waiters: counting it made a
            # burst refuse one request too many before the slot holders' waits returned.
            await self._free.acquire()
            return
        if self.waiting >= self.queue:
            raise SlotsBusy(f"the server is busy ({self.size} questions being answered, {self.waiting} waiting): "
                            f"retry in a few seconds")
        self.waiting += 1
        acquire = asyncio.ensure_future(self._free.acquire())
        try:
            await asyncio.wait({acquire, watch}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled (a stream whose client left): give back what was got
            self.waiting -= 1
            if not acquire.cancel():
                self._free.release()
            raise
        self.waiting -= 1
        if watch.done():
            if acquire.done() or not acquire.cancel():
                self._free.release()
            raise ClientGone("the client disconnected before its question was answered")

    async def _run(self, watch: asyncio.Future[Any], work: Callable[[Stop], Result]) -> Result:
        """``work(stop)`` in a worker thread, in the slot just taken; the slot is given back on every outcome."""
        self.started += 1
        left = threading.Event()

        def unless_left() -> Result:
            if left.is_set():   # the client left before the thread began: no work for nobody
                raise ClientGone("the client disconnected before its question was answered")
            return work(left.is_set)

        # A task of its own, never cancelled: cancelling a worker thread's await would wait for it.
        job = asyncio.ensure_future(run_in_threadpool(unless_left))
        try:
            await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: Starlette ends a stream this way when its client leaves
            self._abandon(job, left)
            raise
        if not job.done():
            self._abandon(job, left)
            raise ClientGone("the client disconnected while its question was answered")
        self._free.release()
        return job.result()

    def _abandon(self, job: asyncio.Future[Any], left: threading.Event) -> None:
        left.set()
        self.abandoned += 1
        if job.done():
            self._held_over_ended(job)
        elif self.orphans < self.size:
            self.orphans += 1
            self._free.release()   # the slot goes to the next client now, not when the thread ends
            job.add_done_callback(self._orphan_ended)
        else:
            job.add_done_callback(self._held_over_ended)

    def _orphan_ended(self, job: asyncio.Future[Any]) -> None:
        self.orphans -= 1
        self._ended(job)

    def _held_over_ended(self, job: asyncio.Future[Any]) -> None:
        self._free.release()
        self._ended(job)

    def _ended(self, job: asyncio.Future[Any]) -> None:
        """An abandoned answer's end: one line when it stopped early; its error retrieved either way,
        so asyncio logs no "exception was never retrieved" (nobody is there to be told of it)."""
        error = None if job.cancelled() else job.exception()
        if isinstance(error, AnswerCancelled):
            self.stopped += 1
            log.info("an answer whose client left was stopped: %s", error)

"""Reader slots for the API: a bounded queue, and no work for a client that has gone.

Answering takes a core for a fraction of a second to many seconds (an LLM answer); a client
that sends a question and hangs up must not hold a slot, and a crowd of them must not make the
queue grow without end. ``ReaderSlots.held`` waits for one of ``size`` slots while watching the
connection: a client that disconnects while waiting leaves the queue at once (its question is
never answered), and when ``queue`` requests already wait a new one is refused (``SlotsBusy``,
HTTP 503 with ``Retry-After``) instead of joining them.

Example:
    >>> slots = ReaderSlots(4, queue=16)
    >>> # async with slots.held(request): result = await run_in_threadpool(index.ask, question)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from rag.errors import ClientGone, SlotsBusy

READERS = 4
"""Questions answered at the same time, through the page and through the API; more would only queue on the
2-4 cores this runs on."""

QUEUE = 16
"""Requests that may wait for a reader slot; one more is told to retry (HTTP 503)."""


class ReaderSlots:
    """``size`` slots with at most ``queue`` waiters; waiters that disconnect leave the queue."""

    def __init__(self, size: int = READERS, queue: int = QUEUE) -> None:
        self.size = size
        self.queue = queue
        self.waiting = 0
        self.started = 0
        """Questions that got a slot (answered or being answered), for tests and monitoring."""
        self.dropped = 0
        """Requests whose client left before a slot was theirs."""
        self._free = asyncio.Semaphore(size)

    @asynccontextmanager
    async def held(self, gone: Callable[[], Awaitable[object]]) -> AsyncIterator[None]:
        """Hold a slot for the body of the ``async with``.

        ``gone`` is awaited beside the wait and returns when the client disconnects (for a
        Starlette request: a ``receive()`` that gets ``http.disconnect``). Raises ``SlotsBusy``
        when the queue is full and ``ClientGone`` when the client left while waiting.
        """
        if not self._free.locked():
            # A free slot is taken at once (the semaphore's fast path never suspends), so a
            # request that gets a slot is never counted among the waiters: counting it made a
            # burst refuse one request too many before the slot holders' waits returned.
            await self._free.acquire()
        else:
            await self._wait_for_slot(gone)
        self.started += 1
        try:
            yield
        finally:
            self._free.release()

    async def _wait_for_slot(self, gone: Callable[[], Awaitable[object]]) -> None:
        if self.waiting >= self.queue:
            raise SlotsBusy(f"the server is busy ({self.size} questions being answered, {self.waiting} waiting): "
                            f"retry in a few seconds")
        self.waiting += 1
        acquire = asyncio.ensure_future(self._free.acquire())
        watch = asyncio.ensure_future(gone())
        try:
            await asyncio.wait({acquire, watch}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled (a stream whose client left): give back what was got
            self.waiting -= 1
            watch.cancel()
            if not acquire.cancel():
                self._free.release()
            raise
        self.waiting -= 1
        left = watch.done()
        watch.cancel()
        got = acquire.done() or not acquire.cancel()
        if left:
            if got:
                self._free.release()
            self.dropped += 1
            raise ClientGone("the client disconnected before its question was answered")

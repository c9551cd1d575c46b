"""Folders kept in step with an index: a thread that watches them (watchfiles) and ingests what
changed through the same incremental, atomic ``Index.ingest``.

Changes are gathered until the folder has been quiet for ``quiet`` seconds (an editor's save is
several events; a copy of 100 files is one batch), then every changed file is waited on until
its size and time stop changing (a file still being written is read once it is complete), and
the watched paths are ingested: new and changed files read, deleted and renamed-away ones
removed. Editors' lock and temporary files (``~$x.docx``, ``.~lock.x.odt#``, ``x.swp``,
``x.tmp``) and hidden files never start an update. Searches meanwhile read the previous
generation, which stays whole until the new one is committed; a crash or SIGKILL during an
update leaves it as it was (``rag.store.writer``).

Example:
    >>> from rag import Index
    >>> index = Index.open("index/")
    >>> with index.watch(["~/Documents"]) as watcher:
    ...     ...  # serve, search: saved files become searchable within seconds
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from rag.errors import RagError
from rag.file_types import supported_suffixes
from rag.ingest.load import is_temporary
from rag.types import Document, IngestReport

log = logging.getLogger(__name__)


class WatchedIndex(Protocol):
    """What a watcher needs of an index (``rag.Index`` has it): its folder, its documents, and the
    incremental ``ingest`` and ``remove``."""

    folder: Path

    def documents(self) -> list[Document]: ...

    def ingest(self, paths: Sequence[str | Path], *, wait: float) -> IngestReport: ...

    def remove(self, sources: Sequence[str], *, wait: float) -> IngestReport: ...

QUIET_SECONDS = 0.4
"""Quiet time after the last event before a batch of changes is taken in."""
SETTLE_SECONDS = 0.3
"""A changed file is read once its size and time have not changed for this long."""
SETTLE_LIMIT = 120.0
"""Longest wait for a file being written (a slow copy); after it, the file is read as it is."""

_IGNORED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules"})


class Watcher:
    """A background thread keeping ``index`` in step with ``paths`` (folders or files).

    ``on_update(report)`` hears of each update (also of one that failed: ``report.failed``);
    ``updates`` counts the ingests done, and ``wait_for_update(n)`` waits for the ``n``-th.
    Started by ``Index.watch``; ``stop()`` (or leaving the ``with`` block) ends it cleanly, after
    the update in progress.

    Example:
        >>> watcher = index.watch(["~/Documents"])
        >>> watcher.wait_for_update(1, timeout=60)  # the first sync is done
        True
        >>> watcher.stop()
    """

    def __init__(self, index: WatchedIndex, paths: Sequence[str | Path], *,
                 on_update: Callable[[IngestReport], None] | None = None,
                 quiet: float = QUIET_SECONDS, settle: float = SETTLE_SECONDS) -> None:
        self.index = index
        self.paths = [Path(p).expanduser().resolve() for p in paths]
        missing = [str(p) for p in self.paths if not p.exists()]
        if missing:
            raise RagError(f"cannot watch {', '.join(missing)}: no such file or folder")
        self._files = {p for p in self.paths if not p.is_dir()}
        # A watched file's folder is what is watched: an editor that saves by writing a new file
        # and renaming it over the old one would otherwise end the watch on the first save.
        self._watched = sorted({p.parent if p in self._files else p for p in self.paths})
        self.on_update = on_update
        self.quiet = quiet
        self.settle = settle
        self.updates = 0
        self.last_report: IngestReport | None = None
        self.error: str = ""
        """The last update's error in words ("" after a good one); the watcher goes on."""
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._suffixes = supported_suffixes()
        self._thread = threading.Thread(target=self._run, name="rag-watch", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching; an update in progress is finished first (within ``timeout`` seconds)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Watcher:
        if not self._thread.is_alive() and not self._stop.is_set():
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_update(self, count: int, timeout: float | None = None) -> bool:
        """Wait until ``count`` updates have been done since the start; False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self.updates >= count, timeout)

    # -- the thread -------------------------------------------------------------------------

    def relevant(self, path: str | Path) -> bool:
        """Whether a change to ``path`` can change the index: a readable type (or a folder, whose
        files may have gone with it), not hidden, not an editor's temporary or lock file, not
        inside the index folder."""
        path = Path(path)
        if is_temporary(path.name) or any(part.startswith(".") or part in _IGNORED_DIRS for part in path.parts[1:]):
            return False
        if not any(path == p or (p not in self._files and p in path.parents) for p in self.paths):
            return False  # beside a watched file, in the folder watched for it
        folder = self.index.folder
        if path == folder or folder in path.parents:
            return False
        return path.suffix.lower() in self._suffixes or path.is_dir() or not path.suffix

    def _run(self) -> None:
        # watchfiles loads only when folders are watched
        import watchfiles

        self._sync()  # what changed while nobody watched
        try:
            for changes in watchfiles.watch(*self._watched, watch_filter=lambda _change, p: self.relevant(p),
                                            debounce=int(max(self.quiet * 5, 2.0) * 1000),
                                            step=int(self.quiet * 1000), stop_event=self._stop,
                                            rust_timeout=1000, raise_interrupt=False):
                if self._stop.is_set():
                    return
                self._settle([Path(p) for _, p in changes])
                if not self._stop.is_set():
                    self._sync()
        except Exception:  # noqa: BLE001 - the folder itself vanished, or the OS watcher failed
            log.exception("watching %s stopped", ", ".join(map(str, self.paths)))
            self.error = "watching stopped: see the log"
            with self._done:
                self._done.notify_all()

    def _settle(self, paths: Iterable[Path]) -> None:
        """Wait until none of ``paths`` still grows (bounded by ``SETTLE_LIMIT``)."""
        def state() -> dict[Path, tuple[int, int]]:
            out = {}
            for path in paths_:
                try:
                    st = path.stat()
                except OSError:
                    continue  # deleted, or renamed away
                out[path] = (st.st_size, st.st_mtime_ns)
            return out

        paths_ = [p for p in paths if p.suffix]
        deadline = time.monotonic() + SETTLE_LIMIT
        before = state()
        while before and time.monotonic() < deadline and not self._stop.wait(self.settle):
            after = state()
            if after == before:
                return
            before = after

    def _sync(self) -> None:
        try:
            report = self.index.ingest([str(p) for p in self.paths if p.exists()], wait=60.0)
            gone = {str(p) for p in self._files if not p.exists()} & {d.source for d in self.index.documents()}
            if gone:  # a watched file deleted: no folder scan can notice it
                removed = self.index.remove(sorted(gone), wait=60.0)
                report = dataclasses.replace(report, removed=report.removed + removed.removed,
                                             chunks_total=removed.chunks_total)
            self.error = ""
        except RagError as exc:
            log.warning("watched update failed: %s", exc)
            report = IngestReport()
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a watcher that dies silently is worse than one that logs
            log.exception("watched update failed")
            report = IngestReport()
            self.error = f"{type(exc).__name__}: {exc}"
        self.last_report = report
        if self.on_update is not None:
            try:
                self.on_update(report)
            except Exception:  # noqa: BLE001 - a failing display must not stop the watcher
                log.debug("on_update failed", exc_info=True)
        with self._done:
            self.updates += 1
            self._done.notify_all()

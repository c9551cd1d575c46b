"""Files -> a new index generation, embedding only what the cache has not seen.

Loading and chunking run beside the embedding, one or two files ahead of it: in a background
thread, or for larger PDF batches in a parsing process (pypdf is pure Python and would otherwise
hold the GIL the embedding loop needs). The model starts loading while the first files are
parsed, and embeds as soon as a batch is ready. Pages go to disk file by file: memory holds
vectors and the files in flight, not the corpus. ``IngestReport.extra`` times every stage.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.backends import EMBEDDERS
from rag.embed import EmbeddingCache, embedder_class, embedder_token_counter, load_embedder, model_token_counter
from rag.errors import LoadError
from rag.file_types import attached_to, container_of
from rag.ingest.chunk import CHUNKER_VERSION, Chunker, content_hash
from rag.ingest.load import PDF_SUFFIXES, find_files, read_file
from rag.protocols import Embedder
from rag.settings import Settings
from rag.store.snapshot import FileRecord, Snapshot, file_sha256
from rag.store.writer import GenerationWriter
from rag.types import PARTLY_INDEXED, Chunk, IngestReport, LoadFailure, Page

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: "files" (files read), "embedding" (chunks embedded) and
"ocr" (pages of the file being read that OCR has read, of those it will read)."""

_EMBED_GROUP = 256
"""Chunks gathered across small files before calling the model, so batches stay full and sort
well by length; fewer when the loader falls behind (the model never waits for a full group)."""


@dataclass
class _Loaded:
    record: FileRecord
    pages: list[Page]
    chunks: list[Chunk]
    hashes: list[str]
    status: str  # "added" or "updated"
    notes: tuple[str, ...] = ()
    """What was left unread (pages over the OCR budget): reported as a failure of the file."""
    attached: tuple[_Loaded, ...] = ()
    """The documents that came inside the file (an e-mail's attachments), written with it."""

    def documents(self) -> list[_Loaded]:
        """The file and the documents that came in it, in the order they are written."""
        return [self, *self.attached]


def plan(paths: Iterable[str | Path], settings: Settings, previous: Snapshot | None
         ) -> tuple[list[tuple[Path, str, FileRecord]], list[str], list[str], list[LoadFailure], list[Path]]:
    """Decide what to do with each file: (to_load, unchanged, removed, failures, skipped); skipped
    files are those met in folders whose type is not read.

    A file is unchanged when size and mtime match, or else when its content hash matches, unless
    the index was cut by an older chunker (``CHUNKER_VERSION``): then every file is read and cut
    again (text already embedded keeps its vectors). Files the index holds under the given folders
    that no longer exist are removed; files indexed from elsewhere are left alone. A document that
    came inside a file (an e-mail's attachment, ``rag.file_types.attached_to``) goes with its file.
    """
    paths = list(paths)
    skipped: list[Path] = []
    files, failures = find_files(paths, settings.glob, skipped)
    known = previous.files() if previous is not None else {}
    recut = previous is not None and previous.manifest.get("chunker_version", 1) != CHUNKER_VERSION
    to_load: list[tuple[Path, str, FileRecord]] = []
    unchanged: list[str] = []
    for path in files:
        source = str(path)
        try:
            stat = path.stat()
        except OSError as exc:
            failures.append(LoadFailure(source, f"cannot read the file ({exc.strerror or exc})"))
            continue
        old = known.get(source)
        if not recut and old is not None and old.size == stat.st_size and old.mtime == stat.st_mtime:
            unchanged.append(source)
            continue
        try:
            digest = file_sha256(path)
        except OSError as exc:
            failures.append(LoadFailure(source, f"cannot read the file ({exc.strerror or exc})"))
            continue
        if not recut and old is not None and old.sha256 == digest:
            unchanged.append(source)
            continue
        record = FileRecord(source=source, sha256=digest, size=stat.st_size, mtime=stat.st_mtime)
        to_load.append((path, "updated" if old is not None else "added", record))
    roots = [Path(p).expanduser().resolve() for p in paths]
    seen = {str(p) for p in files}
    removed = [source for source in known if (file := container_of(source)) not in seen
               and not Path(file).exists() and _under_any(Path(file), roots)]
    return to_load, unchanged, removed, failures, skipped


def _with_attached(sources: Iterable[str], known: Iterable[str]) -> set[str]:
    """``sources`` and every known document that came inside one of them (an e-mail's attachments)."""
    sources = set(sources)
    return sources | {source for source in known if (found := attached_to(source)) is not None
                      and found[0] in sources}


def _under_any(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def run(folder: Path, paths: Iterable[str | Path], settings: Settings, previous: Snapshot | None,
        progress: Progress | None = None, remove: Iterable[str] = (),
        embedder: Embedder | None = None) -> tuple[Snapshot | None, IngestReport]:
    """Ingest ``paths`` into a new generation of the index in ``folder`` (the caller holds the lock).

    ``embedder`` is the one to use; without it, the one ``settings`` names (loaded in the
    background while the first files are parsed). Returns the new snapshot (None when nothing
    changed) and the report.
    """
    started = time.perf_counter()
    to_load, unchanged, removed, failures, skipped_paths = plan(paths, settings, previous)
    skipped = tuple(str(p) for p in skipped_paths)
    timings = {"plan": time.perf_counter() - started, "load_chunk": 0.0, "wait": 0.0, "cache": 0.0, "embed": 0.0,
               "write": 0.0, "commit": 0.0}
    known = previous.files() if previous is not None else {}
    # A removed e-mail takes its attachments' documents with it (``plan`` finds those whose e-mail
    # is gone; ``remove`` names files).
    removed = sorted(_with_attached(set(removed) | set(remove), known))
    if not to_load and not removed:
        total = previous.count if previous is not None else 0
        return None, IngestReport(unchanged=tuple(unchanged), failed=tuple(failures), chunks_total=total,
                                  seconds=time.perf_counter() - started, skipped=skipped)
    counter, limit = embedder_token_counter(settings, embedder)
    chunker = Chunker(settings, counter, limit)
    helpers: list[threading.Thread] = []
    if to_load and embedder is None:
        # The model loads (seconds for torch) while the first files are parsed; an ingest that
        # finds every vector in the cache loses nothing but that load, whose errors the first
        # real use raises again. Not a daemon: a process that exits while the thread is inside
        # onnxruntime aborts, so the interpreter waits for it at exit.
        helpers.append(threading.Thread(target=_load_quietly, args=(settings,), name="rag-model"))
        helpers[-1].start()
    # A changed e-mail is read again with its attachments: their old documents go, whatever it holds now.
    drop = set(removed) | _with_attached({str(record.source) for _, status, record in to_load
                                          if status == "updated"}, known)
    dim = int(embedder.dim if embedder is not None else embedder_class(settings).dim)
    try:
        writer = GenerationWriter(folder, settings, dim, previous, drop)
    except BaseException:
        _join(helpers)
        raise
    batch = _Batch(folder, settings, dim, writer, embedder, progress, timings)
    stop = threading.Event()
    try:
        loaded: queue.Queue[_Loaded | LoadFailure | None] = queue.Queue(maxsize=4)
        producer = threading.Thread(target=_produce, args=(to_load, chunker, settings, loaded, stop, timings,
                                                           progress),
                                    name="rag-load", daemon=True)
        producer.start()
        helpers.append(producer)
        failures += _consume(loaded, batch, drop, len(to_load), settings.batch_size, timings, progress)
        producer.join()
        t0 = time.perf_counter()
        snapshot = writer.commit()
        timings["commit"] = time.perf_counter() - t0
        batch.close()
    except BaseException:
        stop.set()
        writer.abort()
        _join(helpers)
        raise
    report = IngestReport(added=tuple(batch.done["added"]), updated=tuple(batch.done["updated"]),
                          unchanged=tuple(unchanged), removed=tuple(removed), failed=tuple(failures),
                          chunks_embedded=batch.embedded, chunks_total=snapshot.count,
                          seconds=time.perf_counter() - started, extra=timings, skipped=skipped)
    return snapshot, report


def _consume(loaded: queue.Queue[_Loaded | LoadFailure | None], batch: _Batch, drop: set[str], files: int,
             batch_size: int, timings: dict[str, float], progress: Progress | None) -> list[LoadFailure]:
    """Take the loader's files as they come, embedding and writing them in batches; the failures."""
    failures: list[LoadFailure] = []
    files_done = 0
    while True:
        if loaded.empty() and batch.chunk_count >= batch_size:
            # The loader is still parsing: embed the full batches at hand instead of idling.
            batch.flush()
        t0 = time.perf_counter()
        item = loaded.get()
        timings["wait"] += time.perf_counter() - t0
        if item is None:
            break
        files_done += 1
        if isinstance(item, LoadFailure):
            if item.source in drop:
                # Its old version is out of date and is no longer indexed: say so.
                item = LoadFailure(item.source, item.reason + " (its previous version was removed from the index)")
            failures.append(item)
        else:
            if item.notes:
                # Indexed, but not whole: the user must hear which pages are missing and why.
                failures.append(LoadFailure(item.record.source, PARTLY_INDEXED + "; ".join(item.notes)))
            batch.add(item)
            if batch.chunk_count >= _EMBED_GROUP:
                batch.flush()
        if progress:
            progress("files", files_done, files)
    batch.flush()
    return failures


class _Batch:
    """Loaded files waiting for their vectors: embedded together (only the chunks the cache has
    not seen), then handed to the writer file by file."""

    def __init__(self, folder: Path, settings: Settings, dim: int, writer: GenerationWriter,
                 embedder: Embedder | None, progress: Progress | None, timings: dict[str, float]) -> None:
        self.folder, self.settings, self.dim, self.writer = folder, settings, dim, writer
        self.embedder, self.progress, self.timings = embedder, progress, timings
        self.pending: list[_Loaded] = []
        self.cache: EmbeddingCache | None = None  # opened by the first batch: a run with nothing to embed makes none
        self.embedded = 0
        """Chunks embedded by the model so far (the cache's are not counted)."""
        self.done: dict[str, list[str]] = {"added": [], "updated": []}
        """The sources written, by status."""

    @property
    def chunk_count(self) -> int:
        return sum(len(doc.chunks) for item in self.pending for doc in item.documents())

    def add(self, item: _Loaded) -> None:
        self.pending.append(item)

    def flush(self) -> None:
        """Embed and write every pending file."""
        if not self.pending:
            return
        documents = [doc for item in self.pending for doc in item.documents()]
        vectors = self._vectors([h for doc in documents for h in doc.hashes])
        t0 = time.perf_counter()
        for doc in documents:
            matrix = (np.stack([vectors[h] for h in doc.hashes]) if doc.hashes
                      else np.zeros((0, self.dim), np.float32))
            self.writer.add(doc.record, doc.pages, doc.chunks, doc.hashes, matrix)
            self.done[doc.status].append(doc.record.source)
        self.timings["write"] += time.perf_counter() - t0
        self.pending.clear()

    def _vectors(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """The vector of every hash: from the cache, or embedded now and cached."""
        t0 = time.perf_counter()
        if self.cache is None:
            self.cache = EmbeddingCache(self.folder / "cache" / "embeddings.sqlite", self.settings.fingerprint(),
                                        self.dim)
        vectors = self.cache.get_many(hashes)
        self.timings["cache"] += time.perf_counter() - t0
        missing = list(dict.fromkeys(h for h in hashes if h not in vectors))
        if not missing:
            return vectors
        texts = {h: c.searchable for item in self.pending for doc in item.documents()
                 for c, h in zip(doc.chunks, doc.hashes)}
        t0 = time.perf_counter()
        model = self.embedder if self.embedder is not None else load_embedder(self.settings)
        new = model.encode_documents([texts[h] for h in missing], self.settings.batch_size,
                                     self._embedding_progress(self.embedded))
        t1 = time.perf_counter()
        self.timings["embed"] += t1 - t0
        fresh = dict(zip(missing, new))
        self.cache.put_many(fresh)
        vectors.update(fresh)
        self.timings["cache"] += time.perf_counter() - t1
        self.embedded += len(missing)
        return vectors

    def _embedding_progress(self, base: int) -> Callable[[int, int], None]:
        """The model's progress, counted on from the ``base`` chunks earlier batches embedded."""
        def report(done: int, total: int) -> None:
            if self.progress:
                self.progress("embedding", base + done, base + total)
        return report

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def _join(threads: list[threading.Thread]) -> None:
    """Wait (a bounded time) for helper threads to leave native code (model loading, tokenizers)
    before an error reaches the caller: a process that exits while one of them is inside
    onnxruntime aborts ("terminate called without an active exception")."""
    for thread in threads:
        thread.join(timeout=60)


def _load_quietly(settings: Settings) -> None:
    try:
        load_embedder(settings)
    except Exception:  # noqa: BLE001 - raised again, to the caller, where the model is needed
        log.debug("loading the embedding model in the background failed", exc_info=True)


def _produce(to_load: list[tuple[Path, str, FileRecord]], chunker: Chunker, settings: Settings,
             out: queue.Queue, stop: threading.Event, timings: dict[str, float],
             progress: Progress | None = None) -> None:
    ocr_progress = _ocr_progress(progress)
    relay: threading.Thread | None = None
    try:
        pool, events = _parsing_pool(to_load, settings, progress is not None)
        if pool is None:
            for path, status, record in to_load:
                if stop.is_set():
                    return
                t0 = time.perf_counter()
                item = _load_one(path, status, record, settings, chunker, ocr_progress)
                timings["load_chunk"] += time.perf_counter() - t0
                _put(out, item, stop)
            return
        try:
            # Two files in flight: the process parses the next one while this thread hands over one.
            in_flight: collections.deque = collections.deque()
            jobs = iter(to_load)
            first = next(jobs)
            for job in itertools.islice(jobs, 2):
                in_flight.append((job, time.perf_counter(), pool.submit(_load_one, *job, settings)))
            if events is not None and progress is not None:
                relay = threading.Thread(target=_relay, args=(events, progress), name="rag-ocr-progress", daemon=True)
                relay.start()
            # The first file is read here while the process starts (about a second), so the
            # model gets its first batch as early as without a process.
            t0 = time.perf_counter()
            item = _load_one(*first, settings, chunker, ocr_progress)
            timings["load_chunk"] += time.perf_counter() - t0
            _put(out, item, stop)
            while not stop.is_set():
                for job in itertools.islice(jobs, 2 - len(in_flight)):
                    in_flight.append((job, time.perf_counter(), pool.submit(_load_one, *job, settings)))
                if not in_flight:
                    return
                (path, status, record), t0, future = in_flight.popleft()
                try:
                    item = future.result()
                except Exception:  # noqa: BLE001 - a dead or broken worker: read this file here instead
                    log.warning("the parsing process failed on %s; reading it in-process", path, exc_info=True)
                    item = _load_one(path, status, record, settings, chunker, ocr_progress)
                timings["load_chunk"] += time.perf_counter() - t0
                _put(out, item, stop)
        finally:
            pool.shutdown(wait=not stop.is_set(), cancel_futures=True)
            if events is not None:
                events.put(None)
                if relay is not None:
                    relay.join(timeout=5)
    finally:
        _put(out, None, stop)


def _ocr_progress(progress: Progress | None) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress("ocr", done, total)


def _relay(events: multiprocessing.Queue, progress: Progress) -> None:
    """Pass the parsing process's OCR progress on to the caller's callback, until None."""
    while True:
        try:
            event = events.get()
        except (EOFError, OSError):
            return
        if event is None:
            return
        try:
            progress(*event)
        except Exception:  # noqa: BLE001 - a failing display must not stop the ingest
            log.debug("progress callback failed", exc_info=True)


_EVENTS: multiprocessing.Queue | None = None
"""In the parsing process: where OCR progress goes (set by ``_init_worker``)."""


def _init_worker(events: multiprocessing.Queue | None) -> None:
    global _EVENTS
    _EVENTS = events


def _worker_progress(done: int, total: int) -> None:
    if _EVENTS is not None:
        _EVENTS.put(("ocr", done, total))


_PROCESS_MIN_PDF_BYTES = 1 << 20
"""PDF bytes to read before a parsing process pays for its start (about a second)."""


def _parsing_pool(to_load: list[tuple[Path, str, FileRecord]], settings: Settings,  # noqa: ANN202
                  report: bool = False):
    """A one-process pool for PDF parsing when there is enough of it, else None (parse in this
    thread); with a queue for its OCR progress when ``report``: (pool or None, queue or None).

    pypdf is pure Python: in a thread it holds the GIL that the embedding loop needs between
    model calls, and measured on 70 PDF pages with onnx-int8 the two slowed each other (the
    loader took twice its time alone, the model 15% more). A process shares no GIL. It is started
    with "spawn", which is safe beside the model's threads, unlike "fork".

    The process cuts with the packaged tokenizer (``_load_one``), the one the shipped backends
    count with; another embedder's counter lives in this process only, so its files are read here.
    """
    if settings.embed_backend not in EMBEDDERS:
        return None, None
    pdf_bytes = sum(record.size for path, _, record in to_load if path.suffix.lower() in PDF_SUFFIXES)
    if pdf_bytes < _PROCESS_MIN_PDF_BYTES or (os.cpu_count() or 1) < 2 or not _main_is_guarded():
        return None, None
    context = multiprocessing.get_context("spawn")
    events = context.Queue() if report else None
    return ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_init_worker,
                               initargs=(events,)), events


def _main_is_guarded() -> bool:
    """Whether a "spawn" child may import the program's main script without running it again.

    The child imports ``__main__`` by path; a script without an ``if __name__ == "__main__":``
    guard would run its top-level code (and its side effects) a second time there. Such scripts
    get the loader thread instead.
    """
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path:
        return True  # interactive, ``python -c`` or stdin: nothing to import
    try:
        source = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "__name__ == \"__main__\"" in source or "__name__ == '__main__'" in source


def _load_one(path: Path, status: str, record: FileRecord, settings: Settings,
              chunker: Chunker | None = None,
              ocr_progress: Callable[[int, int], None] | None = None) -> _Loaded | LoadFailure:
    """Read and chunk one file; every error becomes a reported failure. Runs in either place
    (in the parsing process, OCR progress goes to the queue ``_init_worker`` was given)."""
    if ocr_progress is None and _EVENTS is not None:
        ocr_progress = _worker_progress
    if chunker is None:
        counter, limit = model_token_counter()
        chunker = Chunker(settings, counter, limit)
    try:
        read = read_file(path, settings.max_file_bytes, settings=settings, progress=ocr_progress)
        attached = []
        for doc in read.attached:
            # Its record carries its own bytes' hash and size, and the time of the file it came in.
            inner = FileRecord(source=doc.source, sha256=doc.sha256, size=doc.size, mtime=record.mtime)
            attached.append(_chunked(inner, doc.pages, chunker, status))
        return dataclasses.replace(_chunked(record, read.pages, chunker, status), notes=read.notes,
                                   attached=tuple(attached))
    except LoadError as exc:
        return LoadFailure(exc.source, exc.reason)
    except (MemoryError, RecursionError) as exc:
        return LoadFailure(str(path), f"too large or too deeply nested to read ({type(exc).__name__})")
    except Exception as exc:  # noqa: BLE001 - one unreadable file never stops the others
        log.exception("unexpected error reading %s", path)
        return LoadFailure(str(path), f"unexpected error while reading: {type(exc).__name__}: {exc}")


def _chunked(record: FileRecord, pages: list[Page], chunker: Chunker, status: str) -> _Loaded:
    chunks = [c for page in pages for c in chunker.chunk(page)]
    return _Loaded(record=record, pages=pages, chunks=chunks, hashes=[content_hash(c.searchable) for c in chunks],
                   status=status)


def _put(out: queue.Queue, item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            out.put(item, timeout=0.5)
            return
        except queue.Full:
            continue

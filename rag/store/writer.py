"""Writing the index on disk (the format is ``rag.store.snapshot``'s): the one writer's lock, a new
generation written beside the live one, then switched to with an atomic rename and fsyncs, and the
generations no reader needs any more pruned."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rag.backends import dense_backend, lexical_backend
from rag.errors import IndexLockedError
from rag.ingest.chunk import CHUNKER_VERSION
from rag.ingest.tables import TABLES_VERSION, page_tables, tables_json
from rag.settings import FORMAT_VERSION, Settings
from rag.store.snapshot import (
    CHUNK_COLUMNS,
    CURRENT,
    LOCK,
    MANIFEST,
    META,
    PAGE_COLUMNS,
    SCHEMA,
    VECTORS,
    FileRecord,
    Snapshot,
    encode_boxes,
    file_sha256,
    select_list,
)
from rag.types import Chunk, Page, searchable_text

_VECTORS_PART = "vectors.f32.part"
"""Raw float32 rows appended while a generation is written; becomes ``VECTORS`` at commit."""
_COPY_ROWS = 65_536
"""Rows copied at a time (96 MiB of vectors): memory stays flat however large the index."""


class WriteLock:
    """An exclusive lock on an index folder, so two writers never interleave.

    The second process waits up to ``timeout`` seconds, then fails with ``IndexLockedError``.
    """

    def __init__(self, folder: Path, timeout: float = 0.0) -> None:
        # filelock loads with the first write
        from filelock import FileLock

        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.timeout = timeout
        self._lock = FileLock(str(folder / LOCK))

    def __enter__(self) -> WriteLock:
        # filelock loads with the first write
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=self.timeout)
        except Timeout:
            raise IndexLockedError(f"another process is writing the index in {self.folder}; wait for it to "
                                   "finish (or pass --wait SECONDS)") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class GenerationWriter:
    """Writes a new generation: the previous one minus removed sources, plus new documents.

    Documents are streamed in (``add``) so memory holds vectors, not page texts. Nothing is
    visible to readers until ``commit`` switches ``CURRENT``; ``abort`` (or a crash) leaves only
    a ``.tmp`` folder that the next writer deletes.
    """

    def __init__(self, folder: Path, settings: Settings, dim: int, previous: Snapshot | None,
                 drop_sources: set[str]) -> None:
        self.folder = folder
        self.settings = settings
        self.dim = dim
        self.name = f"gen-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.tmp = folder / (self.name + ".tmp")
        _remove_stale(folder)
        self.tmp.mkdir(parents=True)
        self.db = sqlite3.connect(self.tmp / META)
        self._vectors: BinaryIO | None = None  # None only until __init__ opens it (or fails and aborts)
        self._next_row = 0
        try:
            # Vectors go to disk as they come, not into memory: an ingest holds one batch of them.
            self._vectors = open(self.tmp / _VECTORS_PART, "wb")  # noqa: SIM115 - closed by commit/abort
            self.db.execute("PRAGMA journal_mode=OFF")
            self.db.execute("PRAGMA synchronous=OFF")
            self.db.executescript(SCHEMA)
            if previous is not None:
                self._copy_previous(previous, drop_sources)
        except BaseException:
            self.abort()  # a full disk while copying the previous generation leaves no half folder
            raise

    def _copy_previous(self, previous: Snapshot, drop: set[str]) -> None:
        self.db.execute("ATTACH DATABASE ? AS old", (f"file:{previous.path / META}?mode=ro&immutable=1",))
        keep_rows = np.array([row for row, _ in previous.iter_rows(drop)], dtype=np.int64)
        self.db.execute("CREATE TEMP TABLE dropped (source TEXT PRIMARY KEY)")
        self.db.executemany("INSERT INTO dropped VALUES (?)", [(s,) for s in drop])
        self.db.execute("INSERT INTO files SELECT * FROM old.files WHERE source NOT IN (SELECT source FROM dropped)")
        pages = select_list(self.db, "pages", PAGE_COLUMNS, "old")
        self.db.execute(f"INSERT INTO pages ({', '.join(PAGE_COLUMNS)}) SELECT {pages} FROM old.pages "
                        "WHERE source NOT IN (SELECT source FROM dropped)")
        # Rows are renumbered densely, in the old order, to stay aligned with the copied vectors.
        rest = select_list(self.db, "chunks", CHUNK_COLUMNS[1:], "old")
        self.db.execute(
            f"INSERT INTO chunks ({', '.join(CHUNK_COLUMNS)}) SELECT ROW_NUMBER() OVER (ORDER BY row) - 1, {rest} "
            "FROM old.chunks WHERE source NOT IN (SELECT source FROM dropped) ORDER BY row")
        if self.db.execute("SELECT 1 FROM old.sqlite_master WHERE type = 'table' AND name = 'grids'").fetchone():
            self.db.execute("INSERT INTO grids SELECT * FROM old.grids WHERE source NOT IN (SELECT source FROM dropped)"
                            " AND version = ?", (TABLES_VERSION,))
        self.db.commit()
        self.db.execute("DETACH DATABASE old")
        assert self._vectors is not None  # opened just before, in __init__
        for begin in range(0, len(keep_rows), _COPY_ROWS):
            part = previous.vectors[keep_rows[begin:begin + _COPY_ROWS]]
            self._vectors.write(np.ascontiguousarray(part, dtype=np.float32).tobytes())
        self._next_row = len(keep_rows)

    def add(self, record: FileRecord, pages: Sequence[Page], chunks: Sequence[Chunk],
            hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Add one file: its record, pages, chunks and their vectors (row-aligned)."""
        if len(chunks) != len(vectors) or len(chunks) != len(hashes):
            raise ValueError("chunks, hashes and vectors must have the same length")
        self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                        (record.source, record.sha256, record.size, record.mtime, len(pages), len(chunks)))
        self.db.executemany(f"INSERT INTO pages ({', '.join(PAGE_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
                            [(record.source, p.page, p.text, int(p.ocr), encode_boxes(p.boxes)) for p in pages])
        grids = [(record.source, p.page, TABLES_VERSION, tables_json(found)) for p in pages
                 if (found := page_tables(p.text, record.source, p.page))]
        self.db.executemany("INSERT INTO grids VALUES (?, ?, ?, ?)", grids)
        rows = range(self._next_row, self._next_row + len(chunks))
        self.db.executemany(f"INSERT INTO chunks ({', '.join(CHUNK_COLUMNS)}) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [(row, c.id, c.source, c.page, c.start, c.end, c.text, c.n_tokens, h, c.context,
                              int(c.ocr)) for row, c, h in zip(rows, chunks, hashes)])
        if len(chunks):
            block = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(chunks), self.dim)
            assert self._vectors is not None  # opened in __init__
            self._vectors.write(block.tobytes())
        self._next_row += len(chunks)

    def commit(self) -> Snapshot:
        """Write vectors, FAISS, BM25 and the manifest, then make this generation live."""
        self.db.commit()
        count = self._next_row
        assert self._vectors is not None  # opened in __init__
        self._vectors.close()
        part = self.tmp / _VECTORS_PART
        stored = np.lib.format.open_memmap(self.tmp / VECTORS, mode="w+", dtype=np.float32, shape=(count, self.dim))
        if count:
            raw = np.memmap(part, dtype=np.float32, mode="r", shape=(count, self.dim))
            for begin in range(0, count, _COPY_ROWS):
                stored[begin:begin + _COPY_ROWS] = raw[begin:begin + _COPY_ROWS]
            del raw
        stored.flush()
        del stored
        part.unlink()
        rows = _Rows(self.tmp, self.name, np.load(self.tmp / VECTORS, mmap_mode="r", allow_pickle=False), self.db)
        dense_cls = dense_backend(self.settings.dense_name)
        lexical_cls = lexical_backend(self.settings.lexical_name)
        dense = dense_cls.build(rows, self.settings)
        lexical = lexical_cls.build(rows, self.settings)
        dense_entry = {"backend": self.settings.dense_name, **dense.manifest()}
        lexical_entry = {"backend": self.settings.lexical_name, **(lexical.manifest() if lexical else {})}
        del rows, dense, lexical
        self.db.close()
        files = {}
        for file in sorted(p for p in self.tmp.rglob("*") if p.is_file()):
            files[file.relative_to(self.tmp).as_posix()] = {"size": file.stat().st_size, "sha256": file_sha256(file)}
        manifest = {
            "format_version": FORMAT_VERSION,
            "chunker_version": CHUNKER_VERSION,
            "tables_version": TABLES_VERSION,
            "fingerprint": self.settings.fingerprint(),
            "settings": self.settings.index_fields(),
            "dim": self.dim,
            "chunks": count,
            "dense_kind": dense_entry.get("kind", ""),
            "dense": dense_entry,
            "lexical": lexical_entry,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": files,
        }
        _write_atomic(self.tmp / MANIFEST, json.dumps(manifest, indent=2).encode())
        _fsync_tree(self.tmp)
        os.replace(self.tmp, self.folder / self.name)
        _fsync_dir(self.folder)
        _write_atomic(self.folder / CURRENT, (self.name + "\n").encode())
        _prune(self.folder, keep={self.name})
        for cls in {dense_cls, lexical_cls}:
            # A backend that keeps data outside the folder (Milvus) drops what no generation uses.
            prune = getattr(cls, "prune", None)
            if prune is not None:
                prune(self.folder, self.settings)
        return Snapshot(self.folder, self.name, verify=False, settings=self.settings)

    def abort(self) -> None:
        try:
            if self._vectors is not None:
                self._vectors.close()
            self.db.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


class _Rows:
    """A generation being written, as its backends see it (``rag.protocols.GenerationRows``)."""

    def __init__(self, folder: Path, name: str, vectors: np.ndarray, db: sqlite3.Connection) -> None:
        self.folder = folder
        self.name = name
        self.vectors = vectors
        self._db = db

    def texts(self) -> list[str]:
        # What is searched: a chunk's context (its table header, its page heading) and its text.
        return [searchable_text(text, context) for text, context in
                self._db.execute("SELECT text, context FROM chunks ORDER BY row")]

    def chunks(self, begin: int, end: int) -> list[Chunk]:
        return [Chunk(cid, source, page, start, end_, text, n, context, bool(ocr))
                for cid, source, page, start, end_, text, n, context, ocr in self._db.execute(
                    "SELECT id, source, page, start, end, text, n_tokens, context, ocr FROM chunks "
                    "WHERE row >= ? AND row < ? ORDER BY row", (begin, end))]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale(folder: Path) -> None:
    """Delete half-written generations left by a crashed writer (we hold the lock)."""
    for path in folder.glob("gen-*.tmp"):
        shutil.rmtree(path, ignore_errors=True)
    for path in folder.glob("*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)


def _prune(folder: Path, keep: set[str]) -> None:
    """Keep the live generation and the one before it (readers may still have it open)."""
    generations = sorted((p for p in folder.glob("gen-*") if p.is_dir() and not p.name.endswith(".tmp")),
                         key=lambda p: p.stat().st_mtime, reverse=True)
    for path in generations[2:]:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)

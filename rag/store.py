"""The index on disk: generations of chunk and page metadata (SQLite), vectors and a manifest.

The dense and the lexical index are backends (``rag.protocols``), chosen by name in ``Settings``
and recorded in the manifest: by default FAISS (``dense.faiss``) and bm25s (``bm25/``) files in the
generation folder; with ``store="milvus"`` a Milvus collection per generation instead.

Layout of an index folder::

    index/
      CURRENT                 name of the live generation (replaced atomically)
      gen-<id>/               one complete, immutable generation
        manifest.json         settings fingerprint, counts, backends used, sha256 of every file
        meta.sqlite           files, pages (full text, for quote checks) and chunks (row = vector id)
        vectors.npy           float32 [n, dim], row-aligned with the chunks table
        dense.faiss           FAISS index over the vectors (the faiss backend)
        bm25/                 bm25s index (numpy arrays + JSON, no pickle; the bm25s backend)
      cache/embeddings.sqlite vectors by content hash, shared by all generations
      .lock                   held by the one process that writes

A save writes a whole new generation beside the live one and then switches ``CURRENT`` with an
atomic rename: a crash at any moment leaves the previous generation as the live, consistent index.
Nothing on disk is a pickle: a user may be handed an index by someone else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backends import DENSE, LEXICAL, resolve
from .errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, RagError
from .protocols import DenseIndex, LexicalIndex
from .settings import FORMAT_VERSION, SAME_VECTORS, Settings
from .types import Chunk, Document, Page, TextBox, searchable_text

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
META = "meta.sqlite"
VECTORS = "vectors.npy"
_VECTORS_PART = "vectors.f32.part"
"""Raw float32 rows appended while a generation is written; becomes ``VECTORS`` at commit."""
_COPY_ROWS = 65_536
"""Rows copied at a time (96 MiB of vectors): memory stays flat however large the index."""
LOCK = ".lock"

_SCHEMA = """
CREATE TABLE files (source TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
                    mtime REAL NOT NULL, pages INTEGER NOT NULL, chunks INTEGER NOT NULL);
CREATE TABLE pages (source TEXT NOT NULL, page INTEGER NOT NULL, text TEXT NOT NULL,
                    ocr INTEGER NOT NULL DEFAULT 0, boxes TEXT NOT NULL DEFAULT '',
                    PRIMARY KEY (source, page));
CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT NOT NULL, source TEXT NOT NULL, page INTEGER NOT NULL,
                     start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL,
                     n_tokens INTEGER NOT NULL, hash TEXT NOT NULL,
                     context TEXT NOT NULL DEFAULT '', ocr INTEGER NOT NULL DEFAULT 0);
CREATE INDEX chunks_source ON chunks (source, page);
"""
_PAGE_COLUMNS = ("source", "page", "text", "ocr", "boxes")
_CHUNK_COLUMNS = ("row", "id", "source", "page", "start", "end", "text", "n_tokens", "hash", "context", "ocr")
_DEFAULTS = {"ocr": "0", "boxes": "''", "context": "''"}
"""What a generation written before a column existed holds there (its pages had no OCR and its
chunks no context): such indexes stay readable and are copied forward without a rebuild."""


def _select_list(db: sqlite3.Connection, table: str, columns: Sequence[str], schema: str = "main") -> str:
    """``columns`` of ``table`` as a SELECT list, with the default for each column it lacks."""
    have = {row[1] for row in db.execute(f"PRAGMA {schema}.table_info({table})")}
    return ", ".join(c if c in have else f"{_DEFAULTS[c]} AS {c}" for c in columns)


def encode_boxes(boxes: Sequence[TextBox]) -> str:
    """OCR boxes as stored: a JSON list of [start, end, x0, y0, x1, y1] (no pickle)."""
    if not boxes:
        return ""
    return json.dumps([[b.start, b.end, round(b.x0, 5), round(b.y0, 5), round(b.x1, 5), round(b.y1, 5)]
                       for b in boxes], separators=(",", ":"))


def decode_boxes(text: str) -> tuple[TextBox, ...]:
    if not text:
        return ()
    return tuple(TextBox(int(s), int(e), float(x0), float(y0), float(x1), float(y1))
                 for s, e, x0, y0, x1, y1 in json.loads(text))


@dataclass(frozen=True)
class FileRecord:
    """What the index remembers of a file to tell later whether it changed."""

    source: str
    sha256: str
    size: int
    mtime: float
    pages: int = 0
    chunks: int = 0


def rebuild_hint(folder: Path) -> str:
    return f"rebuild it with: rag ingest PATH... --index {folder} --rebuild"


# --------------------------------------------------------------------------------------------
# Reading


def backend_entries(manifest: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dense and lexical entries of a manifest; a manifest from before backends were
    recorded (it has ``dense_kind`` only) was written by FAISS and bm25s."""
    dense = manifest.get("dense") or {"backend": "faiss", "kind": manifest.get("dense_kind", "flat")}
    lexical = manifest.get("lexical") or {"backend": "bm25s"}
    if not (isinstance(dense, dict) and isinstance(lexical, dict)):
        raise ValueError("the manifest's backend entries are not objects")
    return dense, lexical


def _backend(kind: str, entry: dict[str, Any], table: dict[str, str], configured: str) -> Any:  # noqa: ANN401
    """The class a manifest names. A class path is imported only when the settings name it too:
    an index handed over by someone else must not make us import a module of its choosing."""
    name = str(entry.get("backend"))
    if name not in table and name != configured:
        setting = "dense_backend" if kind.startswith("dense") else "lexical_backend"
        raise IndexMismatchError(f"the index was built with the {kind} {name!r}, which is neither shipped nor "
                                 f"named in the settings: open it with {setting}={name!r} if you trust it")
    return resolve(kind, name, table)


class Snapshot:
    """One generation of the index, opened read-only. Immutable, so any thread may share it.

    ``dense`` and ``lexical`` are the backends the manifest names (``None`` for an empty index's
    lexical side); ``settings`` supplies what the manifest does not hold, such as a Milvus URI.
    """

    def __init__(self, folder: Path, generation: str, verify: bool = True, settings: Settings | None = None) -> None:
        self.folder = folder
        self.generation = generation
        self.path = folder / generation
        self.manifest = _read_manifest(self.path, folder)
        if verify:
            _verify_files(self.path, self.manifest, folder)
        self.count: int = int(self.manifest["chunks"])
        self.dim: int = int(self.manifest["dim"])
        self._local = threading.local()
        settings = settings or Settings()
        try:
            self.vectors = np.load(self.path / VECTORS, mmap_mode="r", allow_pickle=False)
            if self.vectors.shape != (self.count, self.dim):
                raise ValueError(f"shape {self.vectors.shape}, manifest says ({self.count}, {self.dim})")
            dense, lexical = backend_entries(self.manifest)
            self.dense: DenseIndex = _backend("dense index", dense, DENSE, settings.dense_name).load(
                self.path, dense, self.count, self.dim, settings)
            if len(self.dense) != self.count:
                raise ValueError(f"the dense index holds {len(self.dense)} vectors, manifest says {self.count}")
            self.lexical: LexicalIndex | None = _backend("lexical index", lexical, LEXICAL, settings.lexical_name).load(
                self.path, lexical, self.count, settings)
            with self._db() as db:
                (rows,) = db.execute("SELECT COUNT(*) FROM chunks").fetchone()
            if rows != self.count:
                raise ValueError(f"metadata holds {rows} chunks, manifest says {self.count}")
        except RagError:
            raise
        except (ValueError, OSError, RuntimeError, sqlite3.DatabaseError, json.JSONDecodeError, KeyError,
                TypeError, MemoryError, RecursionError) as exc:
            # MemoryError and RecursionError too: a doctored file must be refused, not crash the caller.
            raise IndexCorruptError(f"the index in {folder} is damaged ({type(exc).__name__}: {exc}); "
                                    f"{rebuild_hint(folder)}") from None

    @property
    def dense_kind(self) -> str:
        return self.dense.kind

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            uri = f"file:{self.path / META}?mode=ro&immutable=1"
            db = sqlite3.connect(uri, uri=True, check_same_thread=True)
            self._local.db = db
        return db

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        """Chunks by row (vector id), in the order asked."""
        if not rows:
            return []
        found: dict[int, Chunk] = {}
        db = self._db()
        unique = list(dict.fromkeys(int(r) for r in rows))
        columns = self._chunk_columns()
        for begin in range(0, len(unique), 500):
            part = unique[begin:begin + 500]
            marks = ",".join("?" * len(part))
            for row, cid, source, page, start, end, text, n_tokens, context, ocr in db.execute(
                    f"SELECT {columns} FROM chunks WHERE row IN ({marks})", part):
                found[row] = Chunk(cid, source, page, start, end, text, n_tokens, context, bool(ocr))
        return [found[int(r)] for r in rows]

    def _chunk_columns(self) -> str:
        columns = getattr(self, "_chunk_select", None)
        if columns is None:
            columns = self._chunk_select = _select_list(
                self._db(), "chunks", ("row", "id", "source", "page", "start", "end", "text", "n_tokens",
                                       "context", "ocr"))
        return columns

    def page_text(self, source: str, page: int) -> str | None:
        """The full text of a page as stored, or None when the index has no such page."""
        row = self._db().execute("SELECT text FROM pages WHERE source = ? AND page = ?", (source, page)).fetchone()
        return None if row is None else str(row[0])

    def page(self, source: str, page: int) -> Page | None:
        """A page as stored, with its OCR flag and boxes, or None when the index has no such page."""
        columns = _select_list(self._db(), "pages", ("text", "ocr", "boxes"))
        row = self._db().execute(f"SELECT {columns} FROM pages WHERE source = ? AND page = ?",
                                 (source, page)).fetchone()
        if row is None:
            return None
        text, ocr, boxes = row
        return Page(source=source, page=page, text=str(text), ocr=bool(ocr), boxes=decode_boxes(str(boxes)))

    def rows_where(self, sources: Iterable[str] | None = None, pages: tuple[int, int] | None = None) -> np.ndarray:
        """Rows of the chunks from some sources and/or a page range (inclusive), for filters."""
        clauses, args = [], []
        if sources is not None:
            names = list(sources)
            marks = ",".join("?" * len(names))
            clauses.append(f"(source IN ({marks}) OR {' OR '.join(['source LIKE ?'] * len(names))})")
            args += names + [f"%/{name}" for name in names]
        if pages is not None:
            clauses.append("page BETWEEN ? AND ?")
            args += [int(pages[0]), int(pages[1])]
        where = " AND ".join(clauses) or "1"
        rows = [r for (r,) in self._db().execute(f"SELECT row FROM chunks WHERE {where}", args)]
        return np.array(rows, dtype=np.int64)

    def files(self) -> dict[str, FileRecord]:
        return {r[0]: FileRecord(*r) for r in self._db().execute(
            "SELECT source, sha256, size, mtime, pages, chunks FROM files")}

    def documents(self) -> list[Document]:
        return [Document(source=r.source, pages=r.pages, chunks=r.chunks, sha256=r.sha256, size=r.size)
                for r in sorted(self.files().values(), key=lambda r: r.source)]

    def iter_rows(self, sources: set[str]) -> Iterator[tuple[int, str]]:
        """(row, content hash) of every chunk whose source is not in ``sources``, by row."""
        for row, source, digest in self._db().execute("SELECT row, source, hash FROM chunks ORDER BY row"):
            if source not in sources:
                yield row, digest


def current_generation(folder: Path) -> str | None:
    try:
        name = (folder / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"cannot read {folder / CURRENT} ({exc}); {rebuild_hint(folder)}") from None
    if not name.startswith("gen-") or "/" in name or not (folder / name).is_dir():
        raise IndexCorruptError(f"{folder / CURRENT} names no generation ({name!r}); {rebuild_hint(folder)}")
    return name


def open_snapshot(folder: Path, settings: Settings | None, verify: bool = True) -> Snapshot:
    """The live generation of an index folder; checks it was built with compatible settings."""
    generation = current_generation(folder)
    if generation is None:
        raise IndexNotFoundError(f"no index in {folder}: build one with: rag ingest PATH... --index {folder}")
    snapshot = Snapshot(folder, generation, verify=verify, settings=settings)
    if settings is not None:
        check_settings(snapshot.manifest, settings, folder)
    return snapshot


def check_settings(manifest: dict[str, Any], settings: Settings, folder: Path) -> None:
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(f"the index in {folder} has format version {manifest.get('format_version')}, "
                                 f"this version of rag reads {FORMAT_VERSION}; {rebuild_hint(folder)}")
    if manifest.get("fingerprint") != settings.fingerprint():
        stored = manifest.get("settings", {})
        wanted = settings.index_fields()
        # Fields fingerprinted only off their defaults are absent on one side: name those too.
        default = Settings.__dataclass_fields__
        diffs = [f"{key}={stored.get(key, getattr(default.get(key), 'default', None))!r} "
                 f"(asked: {wanted.get(key, getattr(settings, key, None))!r})"
                 for key in dict.fromkeys([*wanted, *stored]) if stored.get(key) != wanted.get(key)]
        raise IndexMismatchError(f"the index in {folder} was built with other settings: {', '.join(diffs)}; "
                                 f"open it with those settings, or {rebuild_hint(folder)}")


def settings_from_manifest(folder: Path, base: Settings) -> Settings:
    """``base`` with the index-shaping settings of the index in ``folder`` (if there is one)."""
    generation = current_generation(folder)
    if generation is None:
        return base
    stored = dict(_read_manifest(folder / generation, folder).get("settings", {}))
    if SAME_VECTORS.get(base.embed_backend, base.embed_backend) == stored.get("embed_backend"):
        stored.pop("embed_backend")  # the same vectors: keep the backend asked for (no torch for "onnx")
    # A class path ("package.module:Class") is taken only from the user's own settings, never from
    # an index: opening an index someone handed over must not import a module it names.
    return base.replace(**{k: v for k, v in stored.items() if k != "format_version" and hasattr(base, k)
                           and not (isinstance(v, str) and ":" in v and k.endswith("backend"))})


def _read_manifest(path: Path, folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"the index in {folder} has no manifest ({path / MANIFEST}); "
                                f"{rebuild_hint(folder)}") from None
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"the manifest {path / MANIFEST} is unreadable ({exc}); {rebuild_hint(folder)}") from None
    if not _manifest_is_whole(manifest):
        raise IndexCorruptError(f"the manifest {path / MANIFEST} is damaged (its fields are missing or do not "
                                f"agree); {rebuild_hint(folder)}")
    return manifest


def _manifest_is_whole(manifest: Any) -> bool:
    """Every field the reader relies on is there with its type, and the fingerprint matches the settings.

    The manifest holds the other files' checksums but has none of its own; the fingerprint, a
    hash of the settings beside it (as ``Settings.fingerprint`` makes it), catches a change to either.
    """
    if not isinstance(manifest, dict):
        return False
    files, settings = manifest.get("files"), manifest.get("settings")
    if not (isinstance(files, dict) and isinstance(settings, dict)
            and all(isinstance(entry, dict) and isinstance(entry.get("size"), int)
                    and isinstance(entry.get("sha256"), str) for entry in files.values())
            and all(type(manifest.get(key)) is int and manifest[key] >= 0 for key in ("chunks", "dim"))):
        return False
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return manifest.get("fingerprint") == digest


def _verify_files(path: Path, manifest: dict[str, Any], folder: Path) -> None:
    for name, expected in manifest["files"].items():
        file = path / name
        try:
            size = file.stat().st_size
        except OSError:
            raise IndexCorruptError(f"the index in {folder} is missing {name}; {rebuild_hint(folder)}") from None
        if size != expected["size"] or file_sha256(file) != expected["sha256"]:
            raise IndexCorruptError(f"the index file {file} is damaged (its checksum does not match the "
                                    f"manifest); {rebuild_hint(folder)}")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Writing


class WriteLock:
    """An exclusive lock on an index folder, so two writers never interleave.

    The second process waits up to ``timeout`` seconds, then fails with ``IndexLockedError``.
    """

    def __init__(self, folder: Path, timeout: float = 0.0) -> None:
        from filelock import FileLock

        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.timeout = timeout
        self._lock = FileLock(str(folder / LOCK))

    def __enter__(self) -> WriteLock:
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
        self._vectors = None
        self._next_row = 0
        try:
            # Vectors go to disk as they come, not into memory: an ingest holds one batch of them.
            self._vectors = open(self.tmp / _VECTORS_PART, "wb")  # noqa: SIM115 - closed by commit/abort
            self.db.execute("PRAGMA journal_mode=OFF")
            self.db.execute("PRAGMA synchronous=OFF")
            self.db.executescript(_SCHEMA)
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
        pages = _select_list(self.db, "pages", _PAGE_COLUMNS, "old")
        self.db.execute(f"INSERT INTO pages ({', '.join(_PAGE_COLUMNS)}) SELECT {pages} FROM old.pages "
                        "WHERE source NOT IN (SELECT source FROM dropped)")
        # Rows are renumbered densely, in the old order, to stay aligned with the copied vectors.
        rest = _select_list(self.db, "chunks", _CHUNK_COLUMNS[1:], "old")
        self.db.execute(
            f"INSERT INTO chunks ({', '.join(_CHUNK_COLUMNS)}) SELECT ROW_NUMBER() OVER (ORDER BY row) - 1, {rest} "
            "FROM old.chunks WHERE source NOT IN (SELECT source FROM dropped) ORDER BY row")
        self.db.commit()
        self.db.execute("DETACH DATABASE old")
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
        self.db.executemany(f"INSERT INTO pages ({', '.join(_PAGE_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
                            [(record.source, p.page, p.text, int(p.ocr), encode_boxes(p.boxes)) for p in pages])
        rows = range(self._next_row, self._next_row + len(chunks))
        self.db.executemany(f"INSERT INTO chunks ({', '.join(_CHUNK_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [(row, c.id, c.source, c.page, c.start, c.end, c.text, c.n_tokens, h, c.context,
                              int(c.ocr)) for row, c, h in zip(rows, chunks, hashes)])
        if len(chunks):
            self._vectors.write(np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(chunks), self.dim).tobytes())
        self._next_row += len(chunks)

    def commit(self) -> Snapshot:
        """Write vectors, FAISS, BM25 and the manifest, then make this generation live."""
        self.db.commit()
        count = self._next_row
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
        dense_cls = resolve("dense index", self.settings.dense_name, DENSE)
        lexical_cls = resolve("lexical index", self.settings.lexical_name, LEXICAL)
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

"""The index on disk: the format of a generation (chunk and page metadata in SQLite, vectors, a
manifest) and reading one; ``rag.store.writer`` writes them.

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
atomic rename (``rag.store.writer``): a crash at any moment leaves the previous generation as the
live, consistent index. Nothing on disk is a pickle: a user may be handed an index by someone else.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.backends import DENSE, LEXICAL, dense_backend, lexical_backend
from rag.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, RagError
from rag.protocols import DenseIndex, LexicalIndex
from rag.settings import FORMAT_VERSION, SAME_VECTORS, Settings
from rag.types import Chunk, Document, Page, TextBox

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
META = "meta.sqlite"
VECTORS = "vectors.npy"
LOCK = ".lock"

# The format is defined here once, for the reader below and the writer (rag.store.writer).
SCHEMA = """
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
CREATE TABLE grids (source TEXT NOT NULL, page INTEGER NOT NULL, version INTEGER NOT NULL, tables TEXT NOT NULL,
                    PRIMARY KEY (source, page));
"""
"""``grids``: the tables of a page read into grids (``rag.ingest.tables``), JSON, for the pages that have any;
``version`` is the ``TABLES_VERSION`` that read them (a generation written before the table existed
has none, and its pages' tables are read from the text when asked)."""
PAGE_COLUMNS = ("source", "page", "text", "ocr", "boxes")
CHUNK_COLUMNS = ("row", "id", "source", "page", "start", "end", "text", "n_tokens", "hash", "context", "ocr")
_DEFAULTS = {"ocr": "0", "boxes": "''", "context": "''"}
"""What a generation written before a column existed holds there (its pages had no OCR and its
chunks no context): such indexes stay readable and are copied forward without a rebuild."""


def select_list(db: sqlite3.Connection, table: str, columns: Sequence[str], schema: str = "main") -> str:
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


def _trusted(kind: str, entry: dict[str, Any], table: dict[str, str], configured: str) -> str:
    """The backend name a manifest gives. A class path is imported only when the settings name it too:
    an index handed over by someone else must not make us import a module of its choosing."""
    name = str(entry.get("backend"))
    if name not in table and name != configured:
        setting = "dense_backend" if kind.startswith("dense") else "lexical_backend"
        raise IndexMismatchError(f"the index was built with the {kind} {name!r}, which is neither shipped nor "
                                 f"named in the settings: open it with {setting}={name!r} if you trust it")
    return name


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
            self.dense: DenseIndex = dense_backend(_trusted("dense index", dense, DENSE, settings.dense_name)).load(
                self.path, dense, self.count, self.dim, settings)
            if len(self.dense) != self.count:
                raise ValueError(f"the dense index holds {len(self.dense)} vectors, manifest says {self.count}")
            lexical_cls = lexical_backend(_trusted("lexical index", lexical, LEXICAL, settings.lexical_name))
            self.lexical: LexicalIndex | None = lexical_cls.load(self.path, lexical, self.count, settings)
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
            columns = self._chunk_select = select_list(
                self._db(), "chunks", ("row", "id", "source", "page", "start", "end", "text", "n_tokens",
                                       "context", "ocr"))
        return columns

    def page_text(self, source: str, page: int) -> str | None:
        """The full text of a page as stored, or None when the index has no such page."""
        row = self._db().execute("SELECT text FROM pages WHERE source = ? AND page = ?", (source, page)).fetchone()
        return None if row is None else str(row[0])

    def page_grids(self, source: str, page: int, version: int) -> str | None:
        """The stored grids of a page as JSON (``rag.ingest.tables.tables_json``), when read by ``version``;
        "[]" for a page read without tables; None when the generation did not store them."""
        db = self._db()
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'grids'").fetchone():
            return None
        if not db.execute("SELECT 1 FROM grids WHERE version = ? LIMIT 1", (version,)).fetchone():
            return None
        row = db.execute("SELECT tables FROM grids WHERE source = ? AND page = ? AND version = ?",
                         (source, page, version)).fetchone()
        return "[]" if row is None else str(row[0])

    def page(self, source: str, page: int) -> Page | None:
        """A page as stored, with its OCR flag and boxes, or None when the index has no such page."""
        columns = select_list(self._db(), "pages", ("text", "ocr", "boxes"))
        row = self._db().execute(f"SELECT {columns} FROM pages WHERE source = ? AND page = ?",
                                 (source, page)).fetchone()
        if row is None:
            return None
        text, ocr, boxes = row
        return Page(source=source, page=page, text=str(text), ocr=bool(ocr), boxes=decode_boxes(str(boxes)))

    def rows_where(self, sources: Iterable[str] | None = None, pages: tuple[int, int] | None = None) -> np.ndarray:
        """Rows of the chunks from some sources and/or a page range (inclusive), for filters."""
        clauses: list[str] = []
        args: list[str | int] = []
        if sources is not None:
            # A name is the whole source or its last part ("report.pdf"), and a message's name
            # takes its attachments along ("budget.eml" -> "budget.eml#attachment-1/costs.csv").
            names = list(sources)
            marks = ",".join("?" * len(names))
            like = " OR ".join(["source LIKE ? ESCAPE '\\'"] * (3 * len(names)))
            clauses.append(f"(source IN ({marks}) OR {like})" if names else "0")
            args += names
            for name in names:
                plain = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                args += [f"%/{plain}", f"{plain}#attachment-%", f"%/{plain}#attachment-%"]
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
        raise IndexCorruptError(f"the manifest {path / MANIFEST} is unreadable ({exc}); "
                                f"{rebuild_hint(folder)}") from None
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

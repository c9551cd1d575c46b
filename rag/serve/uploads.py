"""Files added from the web page: safe names, size and type checks, stored copies, ingest.

An upload arrives as a temporary file with whatever name its sender chose. It is copied into the
index folder's ``uploads/`` under a name that is safe to create (no folders, no hidden files, no
control characters) and unique, refused with a reason when it is too large, empty or of a type
the loaders do not read, and deleted again when the index cannot read it. Gradio's own copy is
deleted once the upload is stored (``discard_uploaded_copies``).

Example:
    >>> stored, failed, report = add_uploads(index, ["/tmp/gradio/ab/report.pdf"])
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from rag.embed import load_embedder
from rag.errors import RagError
from rag.file_types import supported_suffixes
from rag.index import Index
from rag.pipeline import Progress
from rag.store.snapshot import file_sha256
from rag.types import IngestReport, LoadFailure

UPLOADS = "uploads"
"""Subfolder of the index folder that keeps the files added from the page."""

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""Largest file accepted from the page (the loader's own limit still applies)."""

UPLOAD_QUOTA_BYTES = 2 * 1024**3
"""Most bytes the ``uploads/`` folder of one index may hold; an upload past it is refused with the
reason (remove documents to make room). A page open to others cannot fill the disk."""

WRITE_WAIT = 60.0
"""Seconds an upload or removal waits while another process (say ``rag ingest``) writes the index."""


def safe_filename(name: str) -> str:
    """A file name that is safe to create: no folders, no hidden file, no odd characters.

    Example:
        >>> safe_filename("../../etc/.Annual report (final).PDF")
        'Annual report (final).pdf'
    """
    base = unicodedata.normalize("NFKC", name.replace("\\", "/").rsplit("/", 1)[-1])
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    # Spaces and brackets stay (people name files that way); anything else odd becomes "_".
    stem = re.sub(r"[^\w .()-]+", "_", stem)
    stem = re.sub(r"\s+", " ", re.sub(r"_{2,}", "_", stem)).strip(" ._-")[:80].rstrip(" ._-") or "document"
    suffix = re.sub(r"[^\w]", "", suffix).lower()[:10]
    return f"{stem}.{suffix}" if suffix else stem


def store_uploads(files: Sequence[str | Path], folder: Path, max_bytes: int = MAX_UPLOAD_BYTES,
                  quota_bytes: int = UPLOAD_QUOTA_BYTES) -> tuple[list[tuple[str, Path]], list[LoadFailure]]:
    """Copy uploaded files into ``folder`` under safe, unique names.

    Returns ``(original name, stored path)`` pairs and the files refused, with the reason. A file
    whose content is already stored under the same name is not copied twice.

    Example:
        >>> stored, refused = store_uploads(["/tmp/gradio/ab/notes.md"], Path("index/uploads"))
    """
    stored: list[tuple[str, Path]] = []
    refused: list[LoadFailure] = []
    folder.mkdir(parents=True, exist_ok=True)
    used = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    for raw in files:
        path = Path(raw)
        original = path.name
        suffix = path.suffix.lower()
        if suffix not in supported_suffixes():
            refused.append(LoadFailure(original, f"unsupported file type {suffix or '(none)'!r}; "
                                                 f"supported: {', '.join(sorted(supported_suffixes()))}"))
            continue
        try:
            size = path.stat().st_size
        except OSError as exc:
            refused.append(LoadFailure(original, f"the upload could not be read ({exc.strerror or exc})"))
            continue
        if size > max_bytes:
            refused.append(LoadFailure(original, f"too large ({size_text(size)}; the limit is "
                                                 f"{size_text(max_bytes)})"))
            continue
        if size == 0:
            refused.append(LoadFailure(original, "the file is empty"))
            continue
        if used + size > quota_bytes:
            refused.append(LoadFailure(original, f"the upload folder is full ({size_text(used)} of its "
                                                 f"{size_text(quota_bytes)} quota): remove documents to make room"))
            continue
        try:
            stored.append((original, _copy_unique(path, folder, safe_filename(original))))
            used += size
        except OSError as exc:
            refused.append(LoadFailure(original, f"could not be saved ({exc.strerror or 'disk error'})"))
    return stored, refused


def add_uploads(index: Index, files: Sequence[str | Path], max_bytes: int = MAX_UPLOAD_BYTES,
                progress: Progress | None = None
                ) -> tuple[list[tuple[str, Path]], list[LoadFailure], IngestReport | None]:
    """Store uploaded files in the index's ``uploads/`` folder and ingest them.

    Returns ``(original name, stored path)`` of the files indexed, the files refused or unreadable
    (by original name, with the reason), and the ingest report (None when nothing was left to
    ingest). A stored copy that could not be indexed is deleted again.

    Example:
        >>> stored, failed, report = add_uploads(index, ["/tmp/gradio/ab/report.pdf"])
    """
    stored, refused = store_uploads(files, index.folder / UPLOADS, max_bytes)
    if not stored:
        return stored, refused, None
    if progress is not None:
        # The model loads first, as a stage of its own: loaded inside the ingest it would hold a
        # "files" bar still (at 50% with two files) for the seconds it takes.
        progress("model", 0, 1)
        try:
            index.embedder or load_embedder(index.settings)
        except RagError:
            pass  # the ingest below meets the same error and reports it with the files
        progress("model", 1, 1)
        progress("files", 0, len(stored))
    try:
        report = index.ingest([path for _, path in stored], progress=progress, wait=WRITE_WAIT)
    except (RagError, OSError, sqlite3.Error) as exc:
        # A full disk reaches here as OSError or sqlite3.OperationalError: the index is unchanged
        # (saves are atomic), so the stored copies go too, or they would be neither listed nor removable.
        for _, path in stored:
            path.unlink(missing_ok=True)
        reason = str(exc) if isinstance(exc, RagError) else \
            f"could not be indexed ({_disk_reason(exc)}); the index is unchanged"
        return [], refused + [LoadFailure(original, reason) for original, _ in stored], None
    reasons = {failure.source: failure.reason for failure in report.failed}
    kept = []
    for original, path in stored:
        if str(path) in reasons:
            path.unlink(missing_ok=True)
            refused.append(LoadFailure(original, reasons[str(path)]))
        else:
            kept.append((original, path))
    return kept, refused, report


def _disk_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return "the disk is full" if "full" in text.lower() or getattr(exc, "errno", None) == 28 else text


def received_uploads(files: Sequence[str | Path]) -> tuple[list[str], list[LoadFailure]]:
    """The files that lie in this server's own upload folder (``rag.serve.servertemp``), and the others refused.

    The page's upload event names paths; only files Gradio received for this server are read,
    never a path a forged request names elsewhere on the machine.

    Example:
        >>> inside, refused = received_uploads(["/etc/passwd"])
        >>> refused[0].reason
        'not a file uploaded to this server'
    """
    from gradio.utils import get_upload_folder  # only the page uploads, and it has Gradio

    cache = Path(get_upload_folder()).resolve()
    inside: list[str] = []
    refused: list[LoadFailure] = []
    for raw in files:
        path = Path(raw).resolve()
        if cache in path.parents and path.is_file():
            inside.append(str(path))
        else:
            refused.append(LoadFailure(Path(raw).name, "not a file uploaded to this server"))
    return inside, refused


def discard_uploaded_copies(files: Sequence[str | Path]) -> None:
    """Delete Gradio's own copies of uploaded files once they are stored (or refused).

    Gradio keeps every upload in its cache folder and serves it from there (``/gradio_api/file=``)
    until its hourly sweep; a document removed from the index would stay downloadable meanwhile.
    The index keeps its own copy in ``uploads/``, so Gradio's is not needed after the upload.

    Example:
        >>> discard_uploaded_copies(["/tmp/gradio/3f2a.../report.pdf"])
    """
    from gradio.utils import get_upload_folder  # only the page uploads, and it has Gradio

    cache = Path(get_upload_folder()).resolve()
    for raw in files:
        path = Path(raw).resolve()
        if cache not in path.parents:
            continue  # never anything outside Gradio's cache
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # Gradio makes one folder per upload
        except OSError:
            pass


def remove_document(index: Index, source: str) -> IngestReport:
    """Remove a document from the index, and its stored copy when it was uploaded from the page.

    Example:
        >>> remove_document(index, "/home/me/index/uploads/report.pdf")
    """
    report = index.remove([source], wait=WRITE_WAIT)
    path = Path(source)
    if path.parent == index.folder / UPLOADS:
        path.unlink(missing_ok=True)
    return report


def _copy_unique(path: Path, folder: Path, name: str) -> Path:
    digest = file_sha256(path)
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, 10_000):
        target = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
        try:
            # "x" creates the file only if the name is free, so two uploads can never share a name.
            with open(path, "rb") as source, open(target, "xb") as copy:
                try:
                    shutil.copyfileobj(source, copy, 1 << 20)
                except BaseException:
                    target.unlink(missing_ok=True)
                    raise
            return target
        except FileExistsError:
            if target.is_file() and file_sha256(target) == digest:
                return target
    raise OSError(f"no free file name for {name} in {folder}")


def size_text(n: int) -> str:
    """A byte count in words.

    Example:
        >>> size_text(50 * 1024 * 1024)
        '50.0 MB'
    """
    size: float = n  # stays the int it is for "bytes"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"

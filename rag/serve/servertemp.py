"""A private folder for the web server's uploads, instead of the machine-wide ``/tmp/gradio``.

Gradio keeps uploads in ``$GRADIO_TEMP_DIR`` (default ``/tmp/gradio``, shared by every Gradio app
and user of the machine) and serves and accepts any file inside it: ``/gradio_api/file=`` returned
another app's upload, and an ``add_files`` call naming such a path ingested it, then deleted it.
``use_private_folder`` gives each server its own folder, mode 0700, under the index's
``cache/gradio/``, and points ``GRADIO_TEMP_DIR`` at it before the page is built. A server holds
an OS lock on its folder while it runs; the next server to start removes every folder whose lock
is free (a server that was killed), so aborted and half-sent uploads do not pile up.

Example:
    >>> folder = use_private_folder("index/")        # then build and launch the page
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import IO

BASE = Path("cache") / "gradio"
"""Where, under the index folder, the servers' private folders are made."""

_held: list[IO[bytes]] = []   # the lock files of this process's folders, open for its lifetime


def use_private_folder(index_folder: str | Path) -> Path:
    """Make this server's private upload folder, set ``GRADIO_TEMP_DIR`` to it and return it.

    Leftovers of servers that were killed are removed first; the folder itself is removed when
    the process exits.
    """
    base = Path(index_folder).expanduser().resolve() / BASE
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    clean_leftovers(base)
    folder = base / f"server-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)   # whatever the umask
    lock = open(folder.with_suffix(".lock"), "wb")  # noqa: SIM115 - held open for the process's life
    _lock(lock)
    _held.append(lock)
    atexit.register(_remove, folder, lock)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


def clean_leftovers(base: Path) -> list[Path]:
    """Remove the folders under ``base`` whose server is gone (their lock is free); returns them."""
    removed = []
    for lock_path in base.glob("server-*.lock"):
        with open(lock_path, "ab") as lock:
            try:
                _lock(lock)
            except OSError:
                continue   # a running server holds it
            folder = lock_path.with_suffix("")
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        lock_path.unlink(missing_ok=True)
    return removed


def _lock(handle: IO[bytes]) -> None:
    try:
        # POSIX only: Windows takes the branch below
        import fcntl
    except ImportError:  # Windows: msvcrt locks a byte range instead
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _remove(folder: Path, lock: IO[bytes]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.with_suffix(".lock").unlink()
    lock.close()

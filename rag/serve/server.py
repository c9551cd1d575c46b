"""``rag serve``: the web page and the OpenAI-compatible API on one host and port.

The page (``rag.serve.web``) shows one collection; the API (``rag.serve.openai_api``) serves them all, each as
a model. Both run in the one Gradio server, behind the same host guard.

Example:
    >>> from rag.serve.server import serve
    >>> serve("index/", "127.0.0.1", 7860, collection="demo", api_key="s3cret")     # blocks
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from rag.collections import DEFAULT_COLLECTION, DEMO_COLLECTION, Collections, collection_folder
from rag.errors import PortInUseError, RagError
from rag.index import DEFAULT_FOLDER
from rag.types import IngestReport


def port_in_use_message(host: str, port: int) -> str:
    return (f"port {port} on {host} is already in use (is another rag serve running?): choose another with "
            f"rag serve --port N, or make run PORT=N")


def check_port(host: str, port: int) -> None:
    """Raise ``PortInUseError`` when ``host:port`` cannot be bound, before minutes of indexing are spent.

    Example:
        >>> check_port("127.0.0.1", 7860)
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as uvicorn sets it: a port in TIME_WAIT from a server just stopped is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(port_in_use_message(host, port)) from None
            raise RagError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(index_folder: str | Path = DEFAULT_FOLDER, host: str = "127.0.0.1", port: int = 7860,
          corpus: Sequence[str | Path] | None = None, *, collection: str | None = None,
          api_key: str | None = None, watch: bool = False, **launch_options: Any) -> None:
    """Serve the page over ``collection`` of ``index_folder`` and the chat API over all its collections.

    Args:
        index_folder: the index folder (``--index``).
        host, port: where to listen (127.0.0.1 unless told otherwise).
        corpus: folders to index into the collection first (incrementally).
        watch: keep ``corpus`` in step while serving (``Index.watch``); the page's library follows.
        collection: the collection the page shows and the API's default model (default: the folder's own).
        api_key: when set, the ``/v1`` API asks for ``Authorization: Bearer <api_key>``, and the
            page and its API for the key as the login password.
        **launch_options: passed to ``rag.serve.web.launch``.

    Example:
        >>> serve("index/", port=7860, corpus=["docs/user-guide.md"], collection="demo")
    """
    check_port(host, port)                       # before Gradio is even imported: that takes seconds
    from rag.serve.servertemp import use_private_folder

    use_private_folder(index_folder)             # Gradio's uploads in a folder of this server's own
    _stop_on_terminate()                         # from here on, so the folder goes however early it stops
    from rag.serve.openai_api import chat_router
    from rag.serve.web import build_app, launch, open_index

    library = Collections(index_folder, default=collection)
    if corpus or library.default in (DEFAULT_COLLECTION, DEMO_COLLECTION):
        # The folder's own index and the demo are filled with the user guide when empty.
        index = open_index(collection_folder(index_folder, collection), corpus)
        library.put(library.default, index)
    else:
        index = library.create(library.default)   # a user's collection starts empty, never as the guide
    max_upload = {k: v for k, v in launch_options.items() if k == "max_upload_bytes"}
    try:
        demo = launch(build_app(index, collections=library, **max_upload), host, port, block=False,
                      api_key=api_key, **launch_options)
    except OSError as exc:
        if "port" not in str(exc).lower():
            raise
        # Taken between the check above and now (Gradio says so in words naming its own options).
        raise PortInUseError(port_in_use_message(host, port)) from exc
    # Added to the running app: Starlette looks routes up per request, and no one has the URL yet.
    demo.app.include_router(chat_router(library, api_key))
    url = cast(str, demo.local_url).rstrip("/")  # gradio types it None (its __init__ value); launch set a str
    if watch and corpus:
        index.watch(list(corpus), on_update=_print_update)
        print(f"watching {', '.join(map(str, corpus))} for saved, renamed and deleted files", flush=True)
    print(f"rag web chat on {url}/ ; OpenAI-compatible API on {url}/v1"
          f"{' (API key required)' if api_key else ''} (Ctrl+C to stop)", flush=True)
    demo.block_thread()                          # returns on Ctrl+C or SIGTERM, the server closed


def _stop_on_terminate() -> None:
    """Make SIGTERM (and SIGHUP: the terminal closed) stop the server as Ctrl+C does.

    Python's default for them ends the process on the spot, skipping ``atexit``: the server's private
    upload folder (``rag.serve.servertemp``) stayed on disk until the next start. As a
    ``KeyboardInterrupt`` in the main thread, Gradio's ``block_thread`` closes the server, ``serve``
    returns and the process exits cleanly, removing the folder (before the server runs, the CLI
    reports "interrupted", exit 130, and the folder goes all the same).
    """
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        return   # only the main thread may set handlers: a caller serving from a thread keeps its own
    for name in ("SIGTERM", "SIGHUP"):        # SIGHUP does not exist on Windows
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), interrupt)


def _print_update(report: IngestReport) -> None:
    if report.added or report.updated or report.removed or report.failed:
        for failure in report.failed:
            print(f"  failed: {failure.source}: {failure.reason}", flush=True)
        print(f"  watched folder: {report.summary()}", flush=True)

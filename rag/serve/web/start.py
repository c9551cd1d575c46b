"""Starting the page: the index it opens (filled with the user guide when empty) and the guarded
server it runs in (``rag serve`` adds the ``/v1`` API beside it, ``rag.serve.server``).

Example:
    >>> from rag.serve.web import build_app, launch, open_index
    >>> launch(build_app(open_index("index/")), "127.0.0.1", 7860)   # blocks
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gradio as gr

from rag.index import DEFAULT_FOLDER, Index
from rag.serve.logsafe import install
from rag.serve.page_assets import CSS, theme
from rag.serve.servertemp import use_private_folder
from rag.serve.uploads import MAX_UPLOAD_BYTES
from rag.serve.web.page import SESSIONS, build_app
from rag.serve.webguard import allowed_hosts, guarded_app, key_login
from rag.settings import Settings
from rag.store.snapshot import current_generation, settings_from_manifest

_CHECKOUT = Path(__file__).resolve().parents[3]
DEFAULT_CORPUS = _CHECKOUT / "docs" / "user-guide.md" if (_CHECKOUT / "app.py").is_file() else None
"""This project's user guide, served when the index is empty so that a first run can answer
questions; only in a source checkout (an installed package has no docs/ of its own). Only the
guide: the benchmark tables beside it would crowd the answers (and hold FinanceBench questions)."""


def open_index(folder: str | Path = DEFAULT_FOLDER, corpus: Sequence[str | Path] | None = None) -> Index:
    """The index in ``folder``, first updated from ``corpus`` (incrementally).

    Without ``corpus``, an empty or missing index is filled from this project's ``docs/`` so the
    first page a person sees can already answer something. An existing index is checked (checksums)
    before it is served.

    Example:
        >>> index = open_index("index/", corpus=["~/papers"])
    """
    folder = Path(folder).expanduser().resolve()
    settings = settings_from_manifest(folder, Settings.from_env())
    index = Index.open(folder, settings) if current_generation(folder) is not None else Index(folder, settings)
    paths = [str(p) for p in corpus] if corpus else []
    if not paths and len(index) == 0 and DEFAULT_CORPUS is not None and DEFAULT_CORPUS.is_file():
        paths = [str(DEFAULT_CORPUS)]
    if paths:
        print(f"Indexing {', '.join(paths)} into {folder} ...", flush=True)
        report = index.ingest(paths)
        for failure in report.failed:
            print(f"  failed: {failure.source}: {failure.reason}", flush=True)
        print(f"  {report.summary()}", flush=True)
    return index


def serve(index_folder: str | Path = DEFAULT_FOLDER, host: str = "127.0.0.1", port: int = 7860,
          corpus: Sequence[str | Path] | None = None, *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
          allow_hosts: Sequence[str] = ()) -> None:
    """Open (or fill) the index and serve the web chat until interrupted.

    Example:
        >>> serve("index/", host="127.0.0.1", port=7860, corpus=["docs/"])
    """
    use_private_folder(index_folder)
    index = open_index(index_folder, corpus)
    launch(build_app(index, max_upload_bytes=max_upload_bytes), host, port, max_upload_bytes=max_upload_bytes,
           allow_hosts=allow_hosts)


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, *, block: bool = True,
           max_upload_bytes: int = MAX_UPLOAD_BYTES, allow_hosts: Sequence[str] = (),
           api_key: str | None = None) -> gr.Blocks:
    """Start the server for a page made by ``build_app``; returns the page (``demo.close()`` stops it).

    The server answers only requests whose ``Host`` is a loopback name, ``host`` or one of
    ``allow_hosts``, and only same-site ones (``rag.serve.webguard``): a web page the user visits can
    neither rebind its name to this server nor post to it. With ``api_key``, the page and its API
    ask for the key too (Gradio's login: any user name, the key as password; ``gradio_client``
    passes ``auth=("rag", key)``).

    Example:
        >>> demo = launch(build_app(index), "127.0.0.1", 7861, block=False)
        >>> demo.close()
    """
    install()   # control characters from requests are escaped in every log line
    # Questions and writes have their own concurrency groups (see build_app); anything else runs alone.
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=host, server_port=port, prevent_thread_lock=True, inbrowser=False, share=False,
        max_file_size=max_upload_bytes, show_error=False, quiet=True, footer_links=["api"],
        run_history=False, ssr_mode=False, mcp_server=False, theme=theme(), css=CSS,
        # No static-file workers (GRADIO_NUM_WORKERS): they would listen on ports of their own,
        # outside the guard.
        num_workers=0, _app=guarded_app(allowed_hosts(host, allow_hosts)),
        state_session_capacity=SESSIONS, auth=key_login(api_key) if api_key else None,
        auth_message="This server is protected by its API key: enter it as the password (any user name).",
    )
    if block:
        print(f"rag web chat on {demo.local_url} (Ctrl+C to stop)", flush=True)
        demo.block_thread()
    return demo

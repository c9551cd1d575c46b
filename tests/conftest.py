"""Shared fixtures: paths to ../shared data (tests skip cleanly without it), the seed article's
index built once per session, PDF making, waiting on a condition, the real ``rag serve`` in a
subprocess and Debian's chromium driven by Playwright for the browser tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from bench.common import write_pdf
if TYPE_CHECKING:
    from rag import Index

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a clean skip when this machine has no such data."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (evaluation data lives beside the checkout, in ../shared)")
    return path


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    """The folder holding the seed news article."""
    return shared_path("seeds")


@pytest.fixture(scope="session")
def seed_file(seed_dir: Path) -> Path:
    return seed_dir / "000_17d6ea71f6fbed30.txt"


def _file_stamps(folder: Path) -> list[tuple[str, int, int]]:
    """(path, size, modification time) of every file under ``folder``: what a write changes."""
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="session")
def seed_index(seed_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """The seed article indexed with the default settings, built once for the whole session.

    Shared, so read-only: a test that ingests, removes or uploads works on its own copy
    (``copy_index``). The session fails at its end if any test wrote to this one.
    """
    from rag import Index

    index = Index.build([seed_file], tmp_path_factory.mktemp("seed-index"))
    built = _file_stamps(index.folder)
    yield index
    changed = sorted({name for name, *_ in set(_file_stamps(index.folder)) ^ set(built)})
    if changed:
        pytest.fail(f"a test wrote to the shared seed_index ({', '.join(changed[:3])}...): give it its own "
                    "copy (copy_index) or its own build", pytrace=False)


def copy_index(index: Index | Path, folder: Path) -> Path:
    """A copy of an index folder (``index`` or its folder) at ``folder``, for a test that writes to it."""
    shutil.copytree(index if isinstance(index, Path) else index.folder, folder)
    return folder


Truthy = TypeVar("Truthy")


def wait_until(condition: Callable[[], Truthy], what: str, timeout: float = 120.0, every: float = 0.05) -> Truthy:
    """Poll ``condition`` until it returns something true, and return that; fail saying ``what`` was
    awaited when ``timeout`` seconds pass first. For waits on state another thread or process
    changes: a deadline bounds a hang, it never measures speed (a busy machine is only slower).

    Example:
        >>> wait_until(lambda: (folder / "CURRENT").exists(), "the first generation")
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g} s for {what}")
        time.sleep(every)
    return value


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def v1_server(library: object, slots: object) -> Iterator[tuple[str, object]]:
    """The ``/v1`` API of a ``Collections`` on a real uvicorn server in this process, its answers
    queued on ``slots`` (a ``ReaderSlots``): yields the base URL and the ``uvicorn.Server``."""
    import threading

    import uvicorn
    from fastapi import FastAPI

    from rag.serve.openai_api import chat_router

    app = FastAPI()
    app.include_router(chat_router(library, slots=slots))  # type: ignore[arg-type]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the API server to start")
        yield f"http://127.0.0.1:{port}/v1", server
    finally:
        server.should_exit = True
        thread.join(30)


def write_fruit_and_notes(folder: Path) -> Path:
    """The small mixed corpus of the index and store tests: a three-page PDF and a Markdown note."""
    folder.mkdir(parents=True, exist_ok=True)
    write_pdf(folder / "fruit.pdf", [
        "Apples grow in orchards. The orchard of Miriam Okafor covers twelve hectares near Lyon.",
        "Bananas ripen after harvest. The Cavendish banana is the most exported variety in the world.",
        "Cherries bloom in spring. The cherry festival of Hirosaki draws two million visitors.",
    ])
    (folder / "notes.md").write_text("# Meeting notes\n\nThe quarterly budget review moved to Thursday. "
                                     "Olaf Svensson will present the storage migration plan.\n", encoding="utf-8")
    return folder


@pytest.fixture
def make_pdf(tmp_path: Path) -> Callable[[str, Sequence[str]], Path]:
    """make_pdf("name.pdf", ["page one text", "page two text"]) -> path in tmp_path."""

    def make(name: str, pages: Sequence[str]) -> Path:
        return write_pdf(tmp_path / name, pages)

    return make


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus server (Milvus Lite's gRPC server, the client API of a cluster) on 127.0.0.1,
    started for the session in a temporary folder and stopped at its end. Skips only when
    milvus-lite and pymilvus are not installed (``make test`` installs them)."""
    pytest.importorskip("pymilvus", reason='the Milvus store needs pip install -e ".[milvus]"')
    pytest.importorskip("milvus_lite", reason='the Milvus tests need pip install -e ".[milvus]"')
    command = shutil.which("milvus-lite", path=str(Path(sys.executable).parent)) or shutil.which("milvus-lite")
    if command is None:
        pytest.skip("the milvus-lite command is not installed")
    port = free_port()
    data = tmp_path_factory.mktemp("milvus")
    log = open(data / "server.log", "wb")  # noqa: SIM115 - closed below, after the server stops
    server = subprocess.Popen([command, "server", "--host", "127.0.0.1", "--port", str(port),
                               "--data-dir", str(data / "data")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"milvus-lite server did not start: {(data / 'server.log').read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)
        log.close()


def stop(process: subprocess.Popen) -> None:
    """Terminate a server started by a test; kill it if it has not gone in 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------------------------
# The browser tests: the real server, Debian's chromium (never a downloaded browser)

CHROMIUM = Path(os.environ.get("RAG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000
"""Upper bound for one answer or one upload on a busy 2-core machine (a hang fails, slowness does not)."""


@contextlib.contextmanager
def rag_serve(work: Path, *args: str, timeout: float = 240.0) -> Iterator[str]:
    """``rag serve ARGS --port N`` in a subprocess (its output in ``work/serve.log``), on a free
    port; yields the page's URL once it answers, and stops the server afterwards.

    Example:
        >>> # with rag_serve(tmp, "--index", str(tmp / "index"), "--corpus", str(docs)) as url: ...
    """
    port = free_port()
    log_path = work / "serve.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below, after the server stops
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.serve.cli", "serve", *args, "--port", str(port)],
        cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"rag serve exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rag serve did not answer on {url}:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="module")
def browser_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium, or `make "
                    f"chromium`) or point RAG_CHROMIUM at one; the browser tests are skipped")
    pytest.importorskip("playwright.sync_api",
                        reason="the playwright package is not installed (pip install -e '.[test]')")
    return CHROMIUM


@contextlib.contextmanager
def browser_page(browser_path: Path, profile: Path, width: int = 1440, height: int = 900) -> Iterator[object]:
    """A fresh headless chromium page of ``width`` x ``height`` CSS pixels."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(browser_path), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height})
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.fixture
def page(browser_path: Path, tmp_path: Path) -> Iterator[object]:
    """A desktop-sized page (1440 x 900); ``browser_page`` makes others."""
    with browser_page(browser_path, tmp_path / "chromium-profile") as made:
        yield made


def ask(page, question: str) -> None:  # noqa: ANN001 - playwright.sync_api.Page
    """Ask on the page and wait for the answer and its sources."""
    answers = page.locator("#rag-chat .message-row.bot-row").count()
    page.fill("#rag-question textarea", question)
    page.click("#rag-ask")
    page.locator("#rag-chat .message-row.bot-row").nth(answers).wait_for(timeout=WAIT_MS)
    settled(page)


def settled(page) -> None:  # noqa: ANN001 - playwright.sync_api.Page
    """Wait until the sources panel has finished updating (Gradio fades a component while it is pending)."""
    from playwright.sync_api import expect

    expect(page.locator("#rag-sources .pending")).to_have_count(0, timeout=WAIT_MS)

"""Shared fixtures: paths to ../shared data (tests skip cleanly without it) and PDF making."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

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


def write_pdf(path: Path, pages: Sequence[str]) -> Path:
    """A real PDF (fpdf2), one string per page, with text pypdf extracts back."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


@pytest.fixture
def make_pdf(tmp_path: Path) -> Callable[[str, Sequence[str]], Path]:
    """make_pdf("name.pdf", ["page one text", "page two text"]) -> path in tmp_path."""

    def make(name: str, pages: Sequence[str]) -> Path:
        return write_pdf(tmp_path / name, pages)

    return make


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus server (Milvus Lite's gRPC server, the client API of a cluster) on 127.0.0.1,
    started for the session in a temporary folder and stopped at its end. Skips only when
    milvus-lite and pymilvus are not installed (``make test`` installs them)."""
    import shutil
    import socket
    import subprocess
    import sys
    import time

    pytest.importorskip("pymilvus", reason='the Milvus store needs pip install -e ".[milvus]"')
    pytest.importorskip("milvus_lite", reason='the Milvus tests need pip install -e ".[milvus]"')
    command = shutil.which("milvus-lite", path=str(Path(sys.executable).parent)) or shutil.which("milvus-lite")
    if command is None:
        pytest.skip("the milvus-lite command is not installed")
    port = _free_port()
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
                    raise RuntimeError(f"milvus-lite server did not start: {(data / 'server.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()

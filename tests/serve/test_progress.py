"""Progress on stderr: tqdm bars on a terminal, plain lines anywhere else (logs, CI, pipes)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rag.serve.cli import main
from rag.serve.progress import StderrProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_and_each_stage_finishes_once() -> None:
    log = io.StringIO()
    progress = StderrProgress(log, interval=3600)
    progress("files", 1, 3)  # the first call of a stage is said at once
    progress("files", 2, 3)  # within the interval: quiet
    progress("embedding", 10, 10)
    progress("embedding", 10, 10)  # said already
    progress("embedding", 25, 25)  # more files brought more chunks: said again
    progress("files", 3, 3)
    progress.start("eval docs", "question")
    progress("eval docs", 4, 4)
    progress("files", 0, 0)  # nothing to count: nothing said
    progress.close()
    assert log.getvalue().splitlines() == ["files: 1/3 files", "embedding: 10/10 chunks", "embedding: 25/25 chunks",
                                           "files: 3/3 files", "eval docs: 4/4 questions"]
    assert "\x1b" not in log.getvalue() and "\r" not in log.getvalue()


def test_a_terminal_gets_bars() -> None:
    screen = Terminal()
    progress = StderrProgress(screen)
    progress("files", 1, 2)
    progress("files", 2, 2)
    progress.close()
    assert "files: 100%" in screen.getvalue() and "2/2" in screen.getvalue()


def test_ingest_logs_progress_without_cursor_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(3):
        (tmp_path / f"note{n}.txt").write_text(f"Note {n} says the ferry leaves at {n + 7} o'clock. " * 5)
    assert main(["ingest", str(tmp_path), "--index", str(tmp_path / "idx")]) == 0
    err = capsys.readouterr().err
    assert "files: 3/3 files" in err and "embedding: 3/3 chunks" in err
    assert "\x1b[A" not in err

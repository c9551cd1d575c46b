"""A watched folder (rag.watch, Index.watch): files added, edited, renamed and deleted while a
thread keeps searching; every search sees a whole generation, and each change is searchable (or
gone) after the watcher's next update. Waits are on the watcher's update count, never on sleeps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import wait_until

from rag import Index, RagError, Settings
from rag.watch import Watcher
from tests.ingest.test_formats import make_xlsx

FAST = Settings(embed_backend="onnx-int8")


def until(watcher: Watcher, condition: Callable[[], bool], updates: int = 8) -> bool:
    """Wait through up to ``updates`` more updates of ``watcher`` for ``condition`` to hold."""
    start = watcher.updates
    for n in range(start, start + updates + 1):
        if condition():
            return True
        if not watcher.wait_for_update(n + 1, timeout=90):
            return condition()
    return condition()


def names(index: Index) -> set[str]:
    return {d.name for d in index.documents()}


def found(index: Index, question: str, words: str) -> bool:
    return any(words in hit.text for hit in index.search(question, k=5))


def test_watched_folder_follows_adds_edits_renames_and_deletes(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "harbour.md").write_text("# Harbour\n\nThe harbour opens at six in the morning.\n", encoding="utf-8")
    index = Index.build([folder], tmp_path / "idx", settings=FAST)
    errors: list[BaseException] = []
    searched = [0]
    stop = threading.Event()

    def keep_searching() -> None:
        # Every search during the updates reads one whole generation: some hit, never an error.
        while not stop.is_set():
            try:
                hits = index.search("When does the harbour open?", k=3)
                assert hits and all(index.page_text(h.source, h.page) is not None or not Path(h.source).exists()
                                    for h in hits)
                searched[0] += 1
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)
                return

    reader = threading.Thread(target=keep_searching)
    with index.watch([folder]) as watcher:
        assert watcher.wait_for_update(1, timeout=120)  # the first sync: nothing new
        # One search before the threads race: CPython 3.11 can fail compiling two modules at once in
        # two threads ("AST constructor recursion depth mismatch"), as a fresh clone without .pyc
        # files does on its first imports.
        index.search("When does the harbour open?", k=3)
        reader.start()
        # Added, beside an editor's lock file and temporary file that must never be indexed.
        make_xlsx(folder / "q3.xlsx")
        (folder / "~$q3.xlsx").write_bytes(b"lock")
        (folder / ".~lock.q3.xlsx#").write_bytes(b"lock")
        (folder / "draft.tmp").write_bytes(b"temp")
        assert until(watcher, lambda: "q3.xlsx" in names(index))
        assert found(index, "Which office is Grace Kestrel in?", "Lisbon harbour office")
        assert names(index) == {"harbour.md", "q3.xlsx"}
        # Edited: the new text is found, the old is gone.
        (folder / "harbour.md").write_text("# Harbour\n\nThe harbour opens at nine since the winter timetable.\n",
                                           encoding="utf-8")
        assert until(watcher, lambda: found(index, "When does the harbour open?", "nine since the winter"))
        assert not found(index, "When does the harbour open?", "six in the morning")
        # Renamed: indexed under its new name only.
        os.replace(folder / "q3.xlsx", folder / "sales-q3.xlsx")
        assert until(watcher, lambda: names(index) == {"harbour.md", "sales-q3.xlsx"})
        # Deleted: no longer cited.
        (folder / "sales-q3.xlsx").unlink()
        assert until(watcher, lambda: names(index) == {"harbour.md"})
        assert not found(index, "Which office is Grace Kestrel in?", "Grace Kestrel")
        # A file written in pieces is read whole, once it stops growing.
        with (folder / "log.txt").open("w", encoding="utf-8") as f:
            f.write("The lighthouse keeper logged a storm ")
            f.flush()
            threading.Event().wait(0.2)  # the watcher hears of the half-written file (a pause, not a check)
            f.write("from the north-west on the third night.")
        assert until(watcher, lambda: found(index, "What did the lighthouse keeper log?", "third night"))
        stop.set()
    reader.join(timeout=60)
    assert not errors, errors
    assert searched[0] > 0
    assert not watcher.running
    report = watcher.last_report
    assert report is not None and report.failed == ()


def test_watch_names_a_missing_folder(tmp_path: Path) -> None:
    index = Index(tmp_path / "idx", FAST)
    with pytest.raises(RagError, match="cannot watch .*nowhere: no such file or folder"):
        index.watch([tmp_path / "nowhere"])


def test_rag_ingest_watch_takes_in_a_saved_file(tmp_path: Path) -> None:
    """The command line: ``rag ingest PATH --watch`` prints each update until stopped."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The ferry to Tallinn leaves at half past seven.", encoding="utf-8")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "rag.serve.cli", "ingest", str(folder), "--index", str(tmp_path / "idx"),
                                "--watch", "--no-progress", "--backend", "onnx-int8"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env, cwd=Path(__file__).resolve().parents[1])
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("watching "):
                break
        assert any("added 1" in line for line in lines), lines
        shutil.copy(Path(__file__).resolve().parents[1] / "docs" / "user-guide.md", folder / "guide.md")
        for line in process.stdout:
            lines.append(line)
            if "added 1" in line:
                break
        assert "added 1, updated 0, unchanged 1, removed 0, failed 0" in lines[-1], lines
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_a_watched_file_saved_by_rename_and_then_deleted(tmp_path: Path) -> None:
    """Editors save by writing a new file and renaming it over the old one; a watched single file
    must survive that, and its deletion must remove it (no folder scan notices a named file gone)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    target = folder / "plan.md"
    target.write_text("# Plan\n\nThe survey starts in May.\n", encoding="utf-8")
    (folder / "other.md").write_text("# Other\n\nNot watched: beside the watched file.\n", encoding="utf-8")
    index = Index(tmp_path / "idx", FAST)
    with index.watch([target]) as watcher:
        assert watcher.wait_for_update(1, timeout=120)
        assert names(index) == {"plan.md"}
        staged = folder / ".plan.md.new"
        staged.write_text("# Plan\n\nThe survey starts in September after the storms.\n", encoding="utf-8")
        os.replace(staged, target)
        assert until(watcher, lambda: found(index, "When does the survey start?", "September"))
        target.unlink()
        assert until(watcher, lambda: names(index) == set())  # and other.md, beside it, was never taken in


def test_sigkill_during_a_watched_update_loses_nothing(tmp_path: Path) -> None:
    """``rag ingest --watch`` killed with SIGKILL while it writes a generation (its ``.tmp`` folder
    exists): the index opens whole, with every file it held before; a new run takes in the rest."""
    import signal

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The ferry to Tallinn leaves at half past seven.", encoding="utf-8")
    index_folder = tmp_path / "idx"
    command = [sys.executable, "-m", "rag.serve.cli", "ingest", str(folder), "--index", str(index_folder), "--watch",
               "--no-progress", "--backend", "onnx-int8"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=Path(__file__).resolve().parents[1])
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("watching "):
                break
        guide = (Path(__file__).resolve().parents[1] / "docs" / "user-guide.md").read_text(encoding="utf-8")
        for n in range(12):
            (folder / f"guide{n}.md").write_text(f"# Copy {n}\n\n{guide}", encoding="utf-8")
        wait_until(lambda: list(index_folder.glob("gen-*.tmp")) or process.poll() is not None,
                   "an update to start writing a generation")
        assert list(index_folder.glob("gen-*.tmp")), "no update was caught in progress"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
    index = Index.open(index_folder)  # checksums verified
    assert "a.txt" in names(index) and found(index, "When does the ferry to Tallinn leave?", "half past seven")
    report = Index.build([folder], index_folder, settings=FAST).last_report
    assert report is not None and len(report.added) + len(report.unchanged) == 13 and not report.failed

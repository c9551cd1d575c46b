"""Many readers, one writer: threads and processes on one index.

Simultaneous questions get the answers sequential ones get; a reader never sees a half-updated
index while an ingest runs, in this process or another; and a second process that tries to
write the same index waits (``--wait``) or fails with a clear message, never corrupting it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import wait_until
from tests.store.test_crash import FAST

from bench.common import RAG, assert_consistent, write_corpus
from rag import Index, IndexLockedError
from rag.store.snapshot import current_generation
from rag.store.writer import WriteLock

QUESTIONS = [
    "Which glacier lost ice thickness?",
    "Who signs the tide tables?",
    "How long do worker bees live in summer?",
    "When is the budget review?",
    "What does the lighthouse keeper record?",
    "How many visitors come to the cherry festival?",
    "Which banana variety is exported most?",
    "Who presents the storage migration plan?",
]

FACTS = {
    "glacier.txt": "The Aletsch glacier lost 2.5 metres of ice thickness in 2023. Scientists measured it in "
                   "September. The glacier is the largest in the Alps.",
    "tides.txt": "The tide tables are printed every Monday. Harbour master Yannick Le Goff signs them. High "
                 "tide in Brest reached 7.2 metres on 3 March.",
    "bees.md": "# Bees\n\nA honey bee colony keeps one queen. Workers live about six weeks in summer. Drones "
               "do not sting.",
    "budget.md": "# Meeting notes\n\nThe quarterly budget review moved to Thursday. Olaf Svensson will present "
                 "the storage migration plan.",
    "light.txt": "The lighthouse keeper logs the weather every six hours. The lamp turns twice a minute.",
    "fruit.txt": "Cherries bloom in spring. The cherry festival of Hirosaki draws two million visitors. The "
                 "Cavendish banana is the most exported variety in the world.",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("facts")
    for name, text in FACTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def index(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index.build([corpus], tmp_path_factory.mktemp("idx"))


def _search_key(index: Index, question: str) -> list[tuple[str, float, str]]:
    return [(h.chunk.id, round(h.score, 5), h.quote.text) for h in index.search(question, k=4)]


def _answer_key(index: Index, question: str) -> tuple:
    answer = index.ask(question)
    return answer.text, answer.found, tuple((q.source, q.start, q.end) for q in answer.citations)


def test_simultaneous_searches_match_sequential_ones(index: Index) -> None:
    sequential = {q: _search_key(index, q) for q in QUESTIONS}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(q, pool.submit(_search_key, index, q)) for q in QUESTIONS * 2]
        for question, future in futures:
            assert future.result() == sequential[question], question


def test_simultaneous_asks_match_sequential_ones(index: Index) -> None:
    questions = QUESTIONS[:5]
    sequential = {q: _answer_key(index, q) for q in questions}
    assert sequential["Who signs the tide tables?"][1]  # the set holds real answers, not only abstentions
    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = [(q, pool.submit(_answer_key, index, q)) for q in questions]
        for question, future in futures:
            assert future.result() == sequential[question], question


def _check_hits(index: Index, question: str) -> None:
    for hit in index.search(question, k=3):
        page = index.page_text(hit.source, hit.page)
        assert page is not None and page[hit.chunk.start:hit.chunk.end] == hit.chunk.text


def test_readers_never_see_a_half_updated_index_during_an_ingest(corpus: Path, tmp_path: Path) -> None:
    index = Index.build([corpus], tmp_path / "idx")
    other = Index.open(index.folder)  # a second reader object, as a second process would hold
    before = len(index)
    new = tmp_path / "new"
    write_corpus(new, "live", files=6, sentences=20)
    errors: list[BaseException] = []
    seen: set[int] = set()
    writing = threading.Event()

    def read(reader: Index) -> None:
        try:
            while writing.is_set():
                snapshot = reader.snapshot()
                assert snapshot is not None
                seen.add(snapshot.count)
                # One snapshot's parts agree with each other...
                assert snapshot.vectors.shape[0] == len(snapshot.dense) == snapshot.count
                # ...and every hit is a verbatim slice of a page of the index it came from.
                _check_hits(reader, "Which trawler carried salt?")
                _check_hits(reader, QUESTIONS[1])
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    writing.set()
    readers = [threading.Thread(target=read, args=(r,)) for r in (index, index, other, other)]
    for thread in readers:
        thread.start()
    try:
        report = index.ingest([new])
    finally:
        writing.clear()
        for thread in readers:
            thread.join()
    assert not errors, errors[0]
    after = len(index)
    assert seen and seen <= {before, after}
    assert after > before
    assert len(other) == after  # the other reader picks up the new generation on its next call
    assert len(report.added) == 6


def test_queries_run_while_another_process_ingests(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    reader = Index.build([corpus], folder, settings=FAST)
    before = len(reader)
    new = tmp_path / "new"
    write_corpus(new, "proc", files=4, sentences=20)
    proc = subprocess.Popen([*RAG, "ingest", str(new), "--index", str(folder), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    counts = set()
    while proc.poll() is None:
        counts.add(len(reader))
        _check_hits(reader, "Which schooner left Oslo?")
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    counts.add(len(reader))
    assert counts <= {before, len(reader)} and len(reader) > before
    assert_consistent(folder)


def _start_writer(folder: Path, docs: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*RAG, "ingest", str(docs), "--index", str(folder), "--no-progress", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


WAITING_WRITER = """
import sys
from pathlib import Path

import filelock

from rag.serve.cli import main
from rag.store.snapshot import LOCK

# `rag ingest ARGS`, touching MARKER when it finds the index's lock taken and starts to wait for it.
marker, args = Path(sys.argv[1]), sys.argv[2:]
index_lock = str(Path(args[args.index("--index") + 1]) / LOCK)
acquire = filelock.FileLock.acquire


def acquire_noting_the_wait(self, *pargs, **kwargs):
    if self.lock_file == index_lock:
        try:
            return acquire(self, timeout=0)
        except filelock.Timeout:
            marker.touch()
    return acquire(self, *pargs, **kwargs)


filelock.FileLock.acquire = acquire_noting_the_wait
sys.exit(main(args))
"""


def test_second_writer_process_fails_clearly_or_waits(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    Index.build([corpus], folder, settings=FAST)
    docs = tmp_path / "docs"
    write_corpus(docs, "second", files=2, sentences=10)
    generation = current_generation(folder)
    with WriteLock(folder):  # this process is the first writer
        refused = subprocess.run([*RAG, "ingest", str(docs), "--index", str(folder), "--no-progress"],
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1
        assert "another process is writing the index" in refused.stderr and "--wait" in refused.stderr
        assert "Traceback" not in refused.stderr
        marker = tmp_path / "waiting"
        waiting = subprocess.Popen([sys.executable, "-c", WAITING_WRITER, str(marker), "ingest", str(docs), "--index",
                                    str(folder), "--no-progress", "--wait", "120"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def found_the_lock_taken() -> bool:
            assert waiting.poll() is None, f"the waiting writer exited: {waiting.communicate()}"
            return marker.exists()

        wait_until(found_the_lock_taken, "the second writer to find the index locked")
        # Still waiting: it has not started a generation, let alone switched to one.
        assert waiting.poll() is None and not list(folder.glob("gen-*.tmp"))
        assert current_generation(folder) == generation
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert {p.name for p in docs.iterdir()} <= {d.name for d in assert_consistent(folder).documents()}


def test_two_writer_processes_both_land(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    Index.build([corpus], folder, settings=FAST)
    batches = [tmp_path / "one", tmp_path / "two"]
    for n, batch in enumerate(batches):
        write_corpus(batch, f"writer{n}", files=3, sentences=15)
    writers = [_start_writer(folder, batch, "--wait", "300") for batch in batches]
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    names = {d.name for d in assert_consistent(folder).documents()}
    assert {p.name for batch in batches for p in batch.iterdir()} <= names


def test_lock_of_a_killed_writer_is_released(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    Index.build([corpus], folder, settings=FAST)
    docs = tmp_path / "docs"
    write_corpus(docs, "killed", files=4, sentences=20)
    writer = _start_writer(folder, docs)

    def writing() -> bool:  # it holds the lock from before this until it commits
        assert writer.poll() is None, writer.communicate()
        return bool(list(folder.glob("gen-*.tmp")))

    wait_until(writing, "the writer to start a generation", timeout=60, every=0.002)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    # The OS drops the lock with the process: no stale lock file blocks the next writer.
    report = Index.open(folder).ingest([docs])
    assert len(report.added) == 4
    assert_consistent(folder)


def test_two_writers_in_one_process_do_not_interleave(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    Index.build([corpus], folder, settings=FAST)
    one, two = Index.open(folder), Index.open(folder)
    docs_one, docs_two = tmp_path / "a", tmp_path / "b"
    write_corpus(docs_one, "a", files=3, sentences=15)
    write_corpus(docs_two, "b", files=3, sentences=15)
    errors: list[BaseException] = []

    def run(index: Index, docs: Path) -> None:
        try:
            index.ingest([docs], wait=300)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(one, docs_one)), threading.Thread(target=run, args=(two, docs_two))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    # Each writer started from the generation the other left: neither's files are lost.
    names = {d.name for d in assert_consistent(folder).documents()}
    assert {p.name for p in docs_one.iterdir()} | {p.name for p in docs_two.iterdir()} <= names


def test_second_writer_in_one_process_without_wait_is_refused(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    Index.build([corpus], folder, settings=FAST)
    docs = tmp_path / "docs"
    write_corpus(docs, "refused", files=1, sentences=5)
    with WriteLock(folder):
        with pytest.raises(IndexLockedError, match="another process is writing"):
            Index.open(folder).ingest([docs])
    assert len(Index.open(folder).ingest([docs]).added) == 1

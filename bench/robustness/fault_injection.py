"""Fault injection: kill ``rag ingest`` at random moments, damage index files, race two writers, fill the disk.

After every fault the index must open with its checksums and agree with itself (vectors, FAISS,
BM25 and metadata row for row; see ``bench.common.assert_consistent``), and a rerun must
complete the interrupted work. The default test run does a few of these (tests/store/test_crash.py,
tests/store/test_concurrency.py, tests/test_reliability.py); this script does many and writes a report.

    .venv/bin/python -m bench.robustness.fault_injection                       # 30 kills, 10 damages per file
    .venv/bin/python -m bench.robustness.fault_injection --kills 100 --damages 40 --seed 3

Results go to bench/results/fault_injection.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    RAG,
    RESULTS,
    assert_consistent,
    command,
    kill_ingest_when,
    machine,
    write,
    write_corpus,
)
from rag import Index, IndexCorruptError, IndexNotFoundError, RagError, Settings
from rag.store.snapshot import current_generation

STAGES = ("random", "writing", "committing", "sealing", "switching")


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:  # noqa: ANN003
    return subprocess.run([*RAG, *args], capture_output=True, text=True, timeout=900, **kwargs)


def kills(work: Path, count: int, rng: random.Random, files: int) -> tuple[list[list[str]], list[str]]:
    docs, folder = work / "docs", work / "index"
    write_corpus(docs / "base", "base", files=3, sentences=20)
    result = _run(["ingest", str(docs / "base"), "--index", str(folder), "--no-progress"])
    assert result.returncode == 0, result.stderr
    rows, problems, batches = [], [], []
    outcomes: collections.Counter[str] = collections.Counter()
    for trial in range(count):
        stage = STAGES[trial % len(STAGES)] if trial < len(STAGES) else rng.choice(STAGES)
        batch = docs / f"batch{trial:03d}"
        write_corpus(batch, f"k{trial}", files=files, sentences=30)
        batches.append(batch)
        before_gen = current_generation(folder)
        started = time.monotonic()
        try:
            outcome = kill_ingest_when(folder, [batch], stage, rng)
        except BaseException as exc:  # noqa: BLE001 - pytest.fail or an assertion: record and go on
            outcome = f"error: {exc}"
        seconds = time.monotonic() - started
        try:
            index = assert_consistent(folder)
            live = "previous" if current_generation(folder) == before_gen else "new"
            names = {d.name for d in index.documents()}
            new = {p.name for p in batch.iterdir()}
            whole = new <= names or not (new & names)
            check = "consistent" if whole else "HALF A BATCH"
            if not whole:
                problems.append(f"kill {trial} ({stage}): half of a batch is indexed")
        except Exception as exc:  # noqa: BLE001 - a finding, reported below
            live, check = "?", f"BROKEN: {type(exc).__name__}: {exc}"
            problems.append(f"kill {trial} ({stage}): {check}")
        outcomes[f"{stage}/{outcome}/{live}"] += 1
        rows.append([str(trial), stage, outcome, f"{seconds:.1f}", live, check])
        print(f"kill {trial:3d} {stage:10s} {outcome:8s} after {seconds:5.1f}s -> {live} generation, {check}",
              flush=True)
    result = _run(["ingest", *map(str, batches), "--index", str(folder), "--no-progress"])
    index = assert_consistent(folder)
    missing = {p.name for b in batches for p in b.iterdir()} - {d.name for d in index.documents()}
    rerun = f"rerun exit {result.returncode}, {len(index)} chunks, {len(missing)} files missing"
    if result.returncode or missing or list(folder.glob("gen-*.tmp")):
        problems.append(f"the rerun did not complete the work: {rerun}")
    print(rerun)
    rows.append(["rerun", "-", f"exit {result.returncode}", "-", "new", f"{len(missing)} files missing"])
    return rows, problems


def damages(work: Path, per_file: int, rng: random.Random) -> tuple[list[list[str]], list[str]]:
    pristine = work / "index"
    gen = current_generation(pristine)
    files = sorted(p.relative_to(pristine / gen).as_posix() for p in (pristine / gen).rglob("*") if p.is_file())
    question = "Which schooner carried wool?"
    expected = [h.chunk.id for h in Index.open(pristine).search(question, k=5)]
    rows, problems = [], []
    for name in [*files, "../CURRENT"]:
        counts: collections.Counter[str] = collections.Counter()
        for trial in range(per_file):
            copy = work / "damaged"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(pristine, copy, ignore=shutil.ignore_patterns("cache"))
            path = (copy / gen / name).resolve()
            data = bytearray(path.read_bytes())
            kind = ("truncate", "empty", "delete", "flip-1", "flip-64")[trial % 5]
            if kind == "truncate":
                data = data[:rng.randrange(len(data))]
            elif kind == "empty":
                data = bytearray()
            elif kind.startswith("flip"):
                for _ in range(int(kind.split("-")[1])):
                    i = rng.randrange(len(data))
                    data[i] ^= 1 << rng.randrange(8)
            if kind == "delete":
                path.unlink()
            else:
                path.write_bytes(bytes(data))
            try:
                same = [h.chunk.id for h in Index.open(copy).search(question, k=5)] == expected
                outcome = "opened, same answers" if same else "OPENED WITH OTHER ANSWERS"
                if not same:
                    problems.append(f"{name} ({kind}): damage passed silently")
            except IndexCorruptError:
                outcome = "IndexCorruptError"
            except IndexNotFoundError:
                # Without CURRENT no generation is live: "no index here, build one" is the truth.
                outcome = "IndexNotFoundError"
                if not (name.endswith("CURRENT") and kind == "delete"):
                    problems.append(f"{name} ({kind}): IndexNotFoundError")
            except RagError as exc:
                outcome = f"{type(exc).__name__}"
                problems.append(f"{name} ({kind}): {type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001 - a finding
                outcome = f"CRASH {type(exc).__name__}"
                problems.append(f"{name} ({kind}): {type(exc).__name__}: {exc}")
            counts[outcome] += 1
        rows.append([name.replace("../", ""), str(per_file), ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))])
        print(f"damage {name:32s} {dict(counts)}", flush=True)
    return rows, problems


def writers(work: Path) -> tuple[list[list[str]], list[str]]:
    folder, docs = work / "index", work / "docs"
    rows, problems = [], []
    batches = []
    for n in range(3):
        batch = docs / f"writer{n}"
        write_corpus(batch, f"w{n}", files=3, sentences=20)
        batches.append(batch)
    procs = [subprocess.Popen([*RAG, "ingest", str(b), "--index", str(folder), "--no-progress", "--wait", "600"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for b in batches]
    codes = [p.wait(timeout=900) for p in procs]
    names = {d.name for d in assert_consistent(folder).documents()}
    landed = all({p.name for p in b.iterdir()} <= names for b in batches)
    rows.append(["3 writers at once, --wait", str(codes), "all batches indexed" if landed else "BATCH LOST"])
    if not landed or any(codes):
        problems.append(f"concurrent writers with --wait: exit codes {codes}, all landed: {landed}")
    late = docs / "late"
    write_corpus(late, "late", files=8, sentences=30)
    first = subprocess.Popen([*RAG, "ingest", str(late), "--index", str(folder), "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list(folder.glob("gen-*.tmp")) and first.poll() is None:
        time.sleep(0.005)
    second = _run(["ingest", str(batches[0]), "--index", str(folder), "--no-progress"])
    first.wait(timeout=900)
    clear = second.returncode == 1 and "another process is writing" in second.stderr
    rows.append(["2nd writer without --wait", f"exit {second.returncode}", second.stderr.strip()[:120] or "-"])
    if not clear and second.returncode != 0:
        problems.append(f"second writer: {second.stderr.strip()}")
    assert_consistent(folder)
    return rows, problems


def full_disk(work: Path, rng: random.Random, trials: int) -> tuple[list[list[str]], list[str]]:
    folder, docs = work / "index", work / "docs"
    rows, problems = [], []
    for trial in range(trials):
        batch = docs / f"disk{trial}"
        write_corpus(batch, f"d{trial}", files=3, sentences=30)
        before = (current_generation(folder), len(Index.open(folder)))
        # Under the largest file of the live generation: the new generation cannot be written.
        # The first write to fail is the copy of the old metadata or the new embeddings going
        # into the cache (always larger than the limit by then), whichever comes first.
        live = folder / before[0]
        largest = max(p.stat().st_size for p in live.rglob("*") if p.is_file())
        limit = rng.randrange(largest // 10, largest + 1)

        def apply(limit: int = limit) -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        result = subprocess.run([*RAG, "ingest", str(batch), "--index", str(folder), "--no-progress"],
                                capture_output=True, text=True, preexec_fn=apply, timeout=900)
        index = assert_consistent(folder)
        after = (current_generation(folder), len(index))
        last = (result.stderr.strip().splitlines() or ["-"])[-1][:100]
        if result.returncode == 0:
            state = "completed"
        else:
            state = "previous index kept" if after == before else "CHANGED"
            if after != before:
                problems.append(f"full disk at {limit} bytes changed the index")
        if list(folder.glob("gen-*.tmp")):
            state += ", half-written generation left behind"
            problems.append(f"full disk at {limit} bytes left a half-written generation")
        if "Traceback" in result.stderr:
            problems.append(f"full disk at {limit} bytes printed a traceback")
        rows.append([f"{limit:,} bytes", f"exit {result.returncode}", state, last])
        print(f"disk limit {limit:>9,}: exit {result.returncode}, {state}: {last}", flush=True)
    return rows, problems


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="SIGKILL trials (default 30)")
    parser.add_argument("--files", type=int, default=6, help="new files per kill trial (default 6)")
    parser.add_argument("--damages", type=int, default=10, help="damages per index file (default 10)")
    parser.add_argument("--disk", type=int, default=5, help="full-disk trials (default 5)")
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"],
                        help="embedding backend of the index (default onnx-int8: it starts in 1 s, not 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "fault_injection.md")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    os.environ["RAG_EMBED_BACKEND"] = args.backend
    Settings.from_env()  # fail early on a bad backend name
    rng = random.Random(args.seed)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="rag-faults-"))
    try:
        kill_rows, kill_problems = kills(work, args.kills, rng, args.files)
        damage_rows, damage_problems = damages(work, args.damages, rng)
        writer_rows, writer_problems = writers(work)
        disk_rows, disk_problems = full_disk(work, rng, args.disk)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    problems = kill_problems + damage_problems + writer_problems + disk_problems
    report = f"""# Fault injection

- command: `{command(__spec__.name, argv).strip()}`
- date: {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, {time.time() - started:.0f} s
- machine: {machine()}
- embedding backend of the index: {args.backend}; seed {args.seed}

**Result: {"no problem found" if not problems else f"{len(problems)} problem(s)"}.**
{"".join(f"{chr(10)}- {p}" for p in problems)}

## SIGKILL during `rag ingest`

Stages: *random* (0.2-2 s after start), *writing* (just after a new generation folder appears),
*committing* (once vectors land in it), *sealing* (once its manifest is written: the fsyncs, the
rename and the CURRENT switch follow), *switching* (just after CURRENT changes, while old
generations are pruned). "live" says which generation the index
opened afterwards; every row was checked with `assert_consistent` (checksums, vectors = FAISS =
BM25 = metadata rows, vector rows = cached embeddings of their chunk texts, all of a batch or none).

{_table(["trial", "stage", "outcome", "seconds", "live", "check"], kill_rows)}

## Damaged index files

Each file of a live generation (and CURRENT) damaged {args.damages} times in turn: truncated at a
random point, emptied, deleted, one bit flipped, 64 bits flipped. Outcomes of `Index.open` and a search:

{_table(["file", "trials", "outcomes"], damage_rows)}

## Concurrent writers

{_table(["case", "exit codes", "result"], writer_rows)}

## Full disk (RLIMIT_FSIZE, writes past the limit fail with EFBIG)

Each failed ingest must end with one line on stderr (no traceback) and leave no half-written
generation behind.

{_table(["limit", "exit", "index afterwards", "last line of stderr"], disk_rows)}
"""
    write("fault_injection", report.splitlines(), args.out)
    print(f"\n{'no problem found' if not problems else chr(10).join(problems)}\nreport: {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the benchmarks share: where things are, the results header, one way to write results and to
run a child process, medians and peak memory, and the made inputs and index checks that the
robustness runs and the tests both use.

Every benchmark is a module run as ``python -m bench.<kind>.<name>`` from the checkout's root
(``bench.studies``: quality; ``bench.perf``: speed and memory; ``bench.robustness``: faults,
fuzzing, same-results checks), and writes ``bench/results/<name>.md`` with the exact command, the
date, the machine and what else was running (the machine is shared, so absolute timings are noisy:
compare the figures measured side by side in one run, and read ratios and medians).

``RAG_BENCH_RESULTS`` and ``RAG_BENCH_CACHE`` move the results and the cache elsewhere, and
``RAG_BENCH_SHARED`` reads the data from another folder: the smoke test (tests/bench/test_bench_smoke.py)
runs every benchmark on a tiny input into a temporary folder, leaving the real ones alone.
"""

from __future__ import annotations

import os
import platform
import random
import shlex
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# rag is imported inside the helpers that use it: compare_frameworks runs this module in a
# LangChain virtualenv that lacks rag's dependencies.
if TYPE_CHECKING:
    from rag import Index

ROOT = Path(__file__).resolve().parents[1]
"""The checkout's root: every child process runs here, so ``bench`` and the tree's ``rag`` import."""
SHARED = Path(os.environ.get("RAG_BENCH_SHARED") or ROOT.parent / "shared" / "data")
"""The evaluation data, beside the checkout (``../shared/data``)."""
CACHE = Path(os.environ.get("RAG_BENCH_CACHE") or ROOT / "bench" / ".cache")
"""Datasets unpacked, indexes and embeddings kept between runs (git-ignored)."""
RESULTS = Path(os.environ.get("RAG_BENCH_RESULTS") or ROOT / "bench" / "results")
"""The results files, which ``python -m bench.report`` assembles into docs/benchmarks.md."""


def machine() -> str:
    """``nproc``, CPU model, RAM and Python version, on one line."""
    cpu = platform.processor() or "unknown CPU"
    ram = "unknown RAM"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 ** 2:.0f} GiB RAM"
    except (OSError, ValueError):
        pass
    return f"{os.cpu_count()} CPUs (nproc), {cpu}, {ram}, Python {platform.python_version()}"


def shared_missing() -> bool:
    """True, after saying so on stderr, when the evaluation data in ``../shared`` is not here."""
    if (SHARED / "squad2-dev").exists():
        return False
    print(f"missing data: {SHARED} (../shared is beside the checkout)", file=sys.stderr)
    return True


def run_module(module: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    """``python -m module args`` in a child process at the checkout's root: the one way a benchmark
    runs itself (or another) apart, for a memory peak of its own, a fresh process, or a libFuzzer
    that ends the process it runs in. ``kwargs`` go to ``subprocess.run``."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, **kwargs)


def run_code(code: str, *args: str, pythonpath: Path = ROOT, **kwargs: Any) -> subprocess.CompletedProcess:
    """``python -c code args`` in a child process that imports ``rag`` from ``pythonpath`` (the
    working tree, or an earlier commit's ``rag`` unpacked elsewhere), for a measure that must not
    count a benchmark's own imports, or code that must run against another version of ``rag``.

    The child runs in ``pythonpath`` too: ``python -c`` puts its working directory first on
    ``sys.path``, ahead of ``PYTHONPATH``, so a child started at the checkout's root would import
    the working tree's ``rag`` whatever ``PYTHONPATH`` says."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=pythonpath, env=env, **kwargs)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def other_jobs(limit: int = 5) -> str:
    """The busiest other processes right now, so a reader knows what shared the CPU."""
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,args", "--sort=-pcpu", "--no-headers"], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    me = str(os.getpid())
    rows = []
    for line in out.splitlines():
        cpu, _, args = line.strip().partition(" ")
        if float(cpu or 0) < 5 or me in args or args.startswith("ps "):
            continue
        rows.append(f"{cpu}% `{args.strip()[:90]}`")
    return "; ".join(rows[:limit]) or "nothing else above 5% CPU"


def command(module: str, argv: Sequence[str]) -> str:
    """The command that runs ``module`` with ``argv``, as a results file shows it."""
    return f".venv/bin/python -m {module} " + " ".join(shlex.quote(a) for a in argv)


def header(title: str, argv: Sequence[str], module: str, notes: Sequence[str] = ()) -> list[str]:
    """The first lines of a results file: title, command, date, machine and the load around it.
    ``module`` is the benchmark's own (``__spec__.name``: ``bench.perf.ingest_speed``)."""
    return [
        f"# {title}", "",
        f"- command: `{command(module, argv).strip()}`",
        f"- date: {datetime.now(timezone.utc).astimezone().isoformat(timespec='seconds')}",
        f"- machine: {machine()}",
        f"- load average at the end (1, 5, 15 min): {load_average()}; other jobs at the end: {other_jobs()}",
        *[f"- {note}" for note in notes], "",
    ]


def write(name: str, lines: Sequence[str], path: Path | None = None) -> Path:
    """``bench/results/<name>.md`` (or ``path``, a benchmark's ``--out``), the one way every
    benchmark writes its results."""
    path = path or RESULTS / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return path


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """``rag.eval.metrics.percentile`` (numpy's linear interpolation, q in 0..100), but "nan" for no
    values: a table should show a figure that was not measured, not 0."""
    from rag.eval.metrics import percentile as interpolated

    return interpolated(values, q) if len(values) else float("nan")


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    """Start a new peak-memory window (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def clustered_vectors(n: int, dim: int = 384, seed: int = 0, clusters: int | None = None) -> np.ndarray:
    """``n`` unit float32 vectors drawn around random cluster centres, like topics in a corpus.

    Uniform random vectors are the worst case for approximate search (no neighbourhood is
    closer than another); text embeddings are clumped by topic. Here each vector is a centre plus
    Gaussian noise, with about 100 vectors per centre and a cosine of about 0.75 to its centre.
    The same seed always gives the same vectors, in blocks, so 1M vectors never need 2 copies.
    """
    clusters = clusters or max(10, n // 100)
    centres = np.random.default_rng(seed).standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    block = 100_000
    for begin in range(0, n, block):
        rng = np.random.default_rng((seed, begin))
        size = min(block, n - begin)
        part = centres[rng.integers(0, clusters, size)] + rng.standard_normal((size, dim), dtype=np.float32) * 0.045
        out[begin:begin + size] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out


# ------------------------------------------------------------------------------------------
# Made inputs and index checks, shared by the robustness runs and the tests (tests/store/test_crash.py,
# test_concurrency.py, test_reliability.py, test_load.py, test_fuzz.py import them from here)


def write_pdf(path: Path, pages: Sequence[str]) -> Path:
    """A real PDF (fpdf2, a test extra), one string per page, with text pypdf extracts back."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def pdf_bytes(objects: Sequence[bytes], xref: bool = True, trailer: bytes = b"") -> bytes:
    """A PDF whose objects 1..n are ``objects`` (object 1 is the catalog), with a correct xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    start = len(out)
    if xref:
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, start)
    return bytes(out)


def pdf_stream(data: bytes, extra: bytes = b"") -> bytes:
    """A PDF stream object holding ``data``."""
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


PDF_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
PDF_PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> %s>> " \
           b"/Contents %d 0 R >>"
"""A page object: its extra resources, then the number of its contents stream."""


def text_pdf(pages: Sequence[str]) -> bytes:
    """A minimal valid PDF written by hand, with one line of Helvetica text per page (ASCII only)."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", PDF_FONT]
    kids = []
    for text in pages:
        objects.append(pdf_stream(b"BT /F1 12 Tf 72 720 Td (" + text.encode("ascii") + b") Tj ET"))
        objects.append(PDF_PAGE % (b"", len(objects)))
        kids.append(len(objects))
    objects[1] = (b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids)
                  + b"] /Count %d >>" % len(kids))
    return pdf_bytes(objects)


RAG = [sys.executable, "-m", "rag.serve.cli"]
"""The ``rag`` command of this interpreter."""

_TOWNS = ["Aberdeen", "Bergen", "Cadiz", "Danzig", "Esbjerg", "Faro", "Galway", "Hull", "Izmir", "Jaffa",
          "Kiel", "Lisbon", "Malmo", "Nantes", "Oslo", "Porto", "Quimper", "Riga", "Split", "Tallinn"]


def write_corpus(folder: Path, tag: str, files: int, sentences: int = 40) -> list[Path]:
    """Text files with distinct facts, so every chunk is new to the embedding cache."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(tag)
    paths = []
    for n in range(files):
        town = _TOWNS[n % len(_TOWNS)]
        lines = [f"Harbour log {tag}-{n}: the {rng.choice(['ferry', 'trawler', 'barge', 'schooner'])} "
                 f"{rng.choice(['Aurora', 'Borealis', 'Cygnus', 'Delphine'])}{rng.randint(1, 10**6)} left {town} "
                 f"at {rng.randint(0, 23)}:{rng.randint(10, 59)} carrying {rng.randint(2, 900)} tonnes of "
                 f"{rng.choice(['salt', 'timber', 'coal', 'wool', 'cod', 'tin'])}." for _ in range(sentences)]
        path = folder / f"{tag}-{n:03d}.txt"
        path.write_text(" ".join(lines), encoding="utf-8")
        paths.append(path)
    return paths


def assert_consistent(folder: Path) -> Index:
    """The live generation opens with its checksums and every part agrees with the others."""
    from rag import Index
    from rag.ingest.chunk import content_hash
    from rag.types import searchable_text

    index = Index.open(folder)  # verifies every file's sha256 against the manifest
    snap = index.snapshot()
    assert snap is not None
    n = len(index)
    assert snap.vectors.shape == (n, snap.dim)
    assert len(snap.dense) == n
    assert (snap.lexical.count if n else 0) == n
    db = sqlite3.connect(f"file:{snap.path / 'meta.sqlite'}?mode=ro", uri=True)
    try:
        rows = [r for (r,) in db.execute("SELECT row FROM chunks ORDER BY row")]
        assert rows == list(range(n))
        per_file = dict(db.execute("SELECT source, COUNT(*) FROM chunks GROUP BY source"))
        for source, pages, chunks in db.execute("SELECT source, pages, chunks FROM files"):
            assert per_file.get(source, 0) == chunks
            assert db.execute("SELECT COUNT(*) FROM pages WHERE source = ?", (source,)).fetchone()[0] == pages
        # Row r of the vectors is the embedding of chunk r: compare with the cache, keyed by text.
        cache = sqlite3.connect(folder / "cache" / "embeddings.sqlite")
        model = index.settings.fingerprint()
        for row, text, context, digest in db.execute("SELECT row, text, context, hash FROM chunks ORDER BY row"):
            assert digest == content_hash(searchable_text(text, context))  # what was embedded
            (blob,) = cache.execute("SELECT vector FROM vectors WHERE model = ? AND hash = ?",
                                    (model, digest)).fetchone()
            assert np.array_equal(np.frombuffer(blob, dtype=np.float32), snap.vectors[row])
        cache.close()
    finally:
        db.close()
    return index


def _ingest_stage_reached(folder: Path, stage: str, rng: random.Random) -> Callable[[], bool]:
    """A condition that says "kill now" for one stage of an ingest.

    Stages are told apart by what any writer must visibly do, not by how this one names things:
    a new generation folder appears (writing), vectors land in it (committing), its manifest is
    written (sealing: the fsyncs, the rename and the switch follow), CURRENT changes (switching:
    the moments after the switch, while old generations are pruned).
    """
    from rag.store.snapshot import CURRENT, MANIFEST

    started = time.monotonic()
    delay, extra = rng.uniform(0.2, 2.0), rng.uniform(0.0, 0.3)
    old_generations = set(folder.glob("gen-*"))
    old_current = (folder / CURRENT).read_bytes() if (folder / CURRENT).exists() else b""
    seen: dict[str, float] = {}

    def due() -> bool:
        now = time.monotonic()
        if stage == "random":
            return now - started > delay
        if stage == "switching":
            return (folder / CURRENT).exists() and (folder / CURRENT).read_bytes() != old_current
        new = set(folder.glob("gen-*")) - old_generations
        if stage == "writing" and new:
            seen.setdefault("at", now)
            return now - seen["at"] >= extra
        wanted = {"committing": "vectors.npy", "sealing": MANIFEST}.get(stage)
        return wanted is not None and any((path / wanted).exists() for path in new)

    return due


def kill_ingest_when(folder: Path, paths: list[Path], stage: str, rng: random.Random) -> str:
    """Start ``rag ingest`` and SIGKILL it when ``stage`` is reached; say what happened."""
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a full pipe would stall the child
        proc = subprocess.Popen([*RAG, "ingest", *map(str, paths), "--index", str(folder), "--no-progress"],
                                stdout=subprocess.DEVNULL, stderr=stderr)
        due = _ingest_stage_reached(folder, stage, rng)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if due():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return "killed"
            time.sleep(0.001)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            raise AssertionError(f"rag ingest did not finish within 120 s at stage {stage}")
        stderr.seek(0)
        assert proc.returncode == 0, stderr.read().decode(errors="replace")
    return "finished"

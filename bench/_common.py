"""What the performance benchmarks share: the machine line, the results header, medians, peak memory.

Every benchmark writes ``bench/results/perf_<name>.md`` with the exact command, the date, the
machine and what else was running (the machine is shared, so absolute timings are noisy: compare
the figures measured side by side in one run, and read ratios and medians).
"""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"


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


def header(title: str, argv: Sequence[str], script: str, notes: Sequence[str] = ()) -> list[str]:
    """The first lines of a results file: title, command, date, machine and the load around it."""
    command = f".venv/bin/python bench/{script} " + " ".join(shlex.quote(a) for a in argv)
    return [
        f"# {title}", "",
        f"- command: `{command.strip()}`",
        f"- date: {datetime.now(timezone.utc).astimezone().isoformat(timespec='seconds')}",
        f"- machine: {machine()}",
        f"- load average at the end (1, 5, 15 min): {load_average()}; other jobs at the end: {other_jobs()}",
        *[f"- {note}" for note in notes], "",
    ]


def write(name: str, lines: Sequence[str]) -> Path:
    """``bench/results/<name>.md``, the one way every benchmark writes its results."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
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


def clustered_vectors(n: int, dim: int = 384, seed: int = 0, clusters: int | None = None):  # noqa: ANN201
    """``n`` unit float32 vectors drawn around random cluster centres, like topics in a corpus.

    Uniform random vectors are the worst case for approximate search (no neighbourhood is
    closer than another); text embeddings are clumped by topic. Here each vector is a centre plus
    Gaussian noise, with about 100 vectors per centre and a cosine of about 0.75 to its centre.
    The same seed always gives the same vectors, in blocks, so 1M vectors never need 2 copies.
    """
    import numpy as np

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

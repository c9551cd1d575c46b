"""``rag ask`` as a whole process on a one-file index, against importing torch + sentence-transformers.

Each round runs, one after another: ``python -c "import torch, sentence_transformers"``, then
``rag ask`` (default settings) on a one-file index built with each embedding backend: ``onnx``
(the default), ``onnx-int8``, and ``torch`` (an index from before ``onnx`` was the default: its
vectors are the same, so it is searched with ``onnx`` and no torch). The whole process each
time: interpreter start, imports, opening the index, the model, the answer. Rounds are interleaved so that the machine's load falls on all of them alike; the figure
is the median, and the ratio is ``rag ask`` over the torch import, both measured in the same run.

    .venv/bin/python -m bench.perf.cli_startup --rounds 7
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import CACHE, SHARED, header, median, write

QUESTION = "Who called for UN visits?"
SEED = SHARED.parent / "seeds" / "000_17d6ea71f6fbed30.txt"
FALLBACK = ("Mrs. Maryam Rajavi has called on the United Nations to act. She said it is essential for "
            "international delegations to visit Iran to meet with political prisoners.")


def rag_command() -> list[str]:
    script = Path(sys.executable).parent / "rag"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.serve.cli"]


def build(backend: str) -> Path:
    folder = CACHE / f"cli-startup-{backend}"
    corpus = CACHE / "cli-startup-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    target = corpus / "seed.txt"
    if not target.exists():
        if SEED.exists():
            shutil.copy(SEED, target)
        else:
            target.write_text(FALLBACK, encoding="utf-8")
    subprocess.run([*rag_command(), "ingest", str(corpus), "--index", str(folder), "--backend", backend,
                    "--no-progress"], check=True, capture_output=True)
    return folder


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-1000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--backends", nargs="+", choices=["onnx", "onnx-int8", "torch"],
                        default=["onnx", "onnx-int8", "torch"], help="the backends of the indexes asked")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    indexes = {backend: build(backend) for backend in args.backends}
    commands = {
        "import torch, sentence_transformers": [sys.executable, "-c", "import torch, sentence_transformers"],
        **{f"rag ask (index built with {b})": [*rag_command(), "ask", QUESTION, "--index", str(folder)]
           for b, folder in indexes.items()},
    }
    for command in commands.values():  # warm the page cache and the int8 model cache once
        timed(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, command in commands.items():
            times[name].append(timed(command))
    base = median(times["import torch, sentence_transformers"])
    lines = header("CLI start-up: `rag ask` as a whole process", argv, __spec__.name, [
        f"question: {QUESTION!r}, on a one-file index (the seed article, 5 chunks); {args.rounds} interleaved "
        "rounds after one warm-up round; wall time of the whole process",
        "target: `rag ask` at most 0.35 of the time of importing torch + sentence-transformers",
    ])
    lines += ["| process | median (s) | all rounds (s) | / torch import |", "| --- | ---: | --- | ---: |"]
    for name, values in times.items():
        lines.append(f"| `{name}` | {median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} | "
                     f"{median(values) / base:.2f} |")
    write("perf_cli_startup", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

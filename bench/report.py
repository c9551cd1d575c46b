"""Assemble ``docs/benchmarks.md`` from the result files in ``bench/results/``.

The summary at the top of ``docs/benchmarks.md`` (everything above the ``GENERATED`` marker) is
written by hand and kept; everything below it is replaced by the result files, in the order of
``SECTIONS``, each as its benchmark wrote it (command, date, machine, figures).

Usage:
    .venv/bin/python -m bench.report
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import RESULTS, ROOT

TARGET = ROOT / "docs" / "benchmarks.md"
MARKER = "<!-- GENERATED: everything below is bench/results/*.md, assembled by bench/report.py -->"

SECTIONS = (
    "retrieval.md", "fusion_study.md", "fusion_more.md", "squad_answer.md", "answer_text.md", "reader_rerank.md",
    "conversation.md",
    "financebench.md",
    "perf_embed_backends.md", "perf_ingest.md",
    "perf_ingest_memory.md", "perf_query.md", "perf_scale.md", "perf_compare.md", "fault_injection.md",
    "fuzz_atheris.md",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=TARGET, help="the page to write (default docs/benchmarks.md)")
    target = parser.parse_args(argv).out
    summary = target.read_text(encoding="utf-8").split(MARKER)[0].rstrip() if target.exists() else "# Benchmarks"
    parts = [summary, "", MARKER, ""]
    names = [n for n in SECTIONS if (RESULTS / n).exists()]
    names += sorted(p.name for p in RESULTS.glob("*.md") if p.name not in SECTIONS)
    for name in names:
        text = (RESULTS / name).read_text(encoding="utf-8").strip()
        # Each result file starts with its own level-1 title: one level down, under this page's title.
        lines = ["#" + line if line.startswith("#") else line for line in text.splitlines()]
        parts += [f"<a id=\"{name[:-3]}\"></a>", "", *lines, ""]
    target.write_text("\n".join(parts) + "\n", encoding="utf-8")
    print(f"wrote {target} from {len(names)} result files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

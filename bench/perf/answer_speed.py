"""Latency of ``Index.ask`` by kind of question, beside the span-only answerer, and of summaries.

Over the user guide (``docs/user-guide.md``, the demo corpus) and the seed article, each question
is asked through ``Index.ask`` (k=5: search, the reader, the sentence chooser, quote checks) and,
interleaved question by question on the same hits, through the answerer this one replaced (the
reader's span for every question, ``rag.answer.extractive.compose``): the difference is what answering in
sentences costs. Then ``Index.summarize`` of a 50-page PDF (a real filing from
``../shared/data/financebench`` when present, else one made with fpdf2) and of the seed.

Usage:
    .venv/bin/python -m bench.perf.answer_speed [--rounds 3]

Results: ``bench/results/answer_speed.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, SHARED, header, percentile, write, write_pdf

from rag import Index
from rag.answer.extractive import abstention, compose, read_spans
from rag.answer.kinds import classify
from rag.answer.reader import load_reader
from rag.search.retriever import CachedPages

QUESTIONS = {
    "guide": ["Which Python version does rag need?", "What is rag?", "How do I add documents to the index?",
              "Why does rag refuse to open an index?", "Which file types does rag read?",
              "Does rag need a GPU?", "How does hybrid retrieval work?", "What is the difference between "
              "the extractive and the llm answer modes?", "Where is the index saved?",
              "How do I remove a document?"],
    "seed": ["Who called for UN visits?", "Why is the regime nervous?", "What are Resistance Units?",
             "How many people has the outbreak killed?", "Which organisations did Mrs. Rajavi call on?"],
}


def fifty_pages(folder: Path) -> Path:
    """A real filing of about 50 pages, or a made one."""
    filings = sorted((SHARED / "financebench" / "pdfs").glob("*.pdf")) if (SHARED / "financebench").exists() else []
    from pypdf import PdfReader

    for pdf in filings:
        try:
            if 40 <= len(PdfReader(pdf).pages) <= 70:
                return pdf
        except Exception:  # noqa: BLE001 - any unreadable filing is simply not chosen
            continue
    return made_pdf(folder, 50)


def made_pdf(folder: Path, pages: int) -> Path:
    """A PDF of ``pages`` pages of 400 words each (fpdf2)."""
    words = "The harbour authority reported steady growth in container traffic across the year".split()
    return write_pdf(folder / f"made-{pages}-pages.pdf",
                     [" ".join(f"{words[(n + i) % len(words)]}" for i in range(400)) + "." for n in range(pages)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=None, help="only the first N questions of each corpus")
    parser.add_argument("--pages", type=int, default=None,
                        help="summarise a made PDF of N pages (default: a real filing of 40-70 pages)")
    args = parser.parse_args(argv)
    lines = header("Answer latency by kind, and summaries", sys.argv[1:] if argv is None else argv, __spec__.name,
                   ["k=5; each question asked once per round after a warm-up; the span-only answerer on the same "
                    "hits, interleaved"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpora = {"guide": [ROOT / "docs" / "user-guide.md"]}
        seed = SHARED.parent / "seeds"
        if seed.exists():
            corpora["seed"] = [seed]
        reader = load_reader()
        by_kind: dict[str, list[float]] = {}
        spans_only: list[float] = []
        for name, paths in corpora.items():
            index = Index.build(paths, folder / name)
            snapshot, retriever = index._require()
            questions = QUESTIONS[name][:args.questions]
            index.ask(questions[0])  # warm-up: models loaded
            for _ in range(args.rounds):
                for q in questions:
                    started = time.perf_counter()
                    index.ask(q)
                    by_kind.setdefault(classify(q), []).append(time.perf_counter() - started)
                    started = time.perf_counter()
                    hits = retriever.search(q, index.settings)
                    compose(q, hits, read_spans(q, hits, reader), abstention(index.settings, reader),
                            CachedPages(snapshot, {}))
                    spans_only.append(time.perf_counter() - started)
        everything = [t for times in by_kind.values() for t in times]
        lines += ["| answerer | kind | questions | p50 ms | p95 ms |", "| --- | --- | ---: | ---: | ---: |",
                  f"| span only (before) | all | {len(spans_only)} | {1000 * percentile(spans_only, 50):.0f} | "
                  f"{1000 * percentile(spans_only, 95):.0f} |",
                  f"| by kind (now) | all | {len(everything)} | {1000 * percentile(everything, 50):.0f} | "
                  f"{1000 * percentile(everything, 95):.0f} |"]
        lines += [f"| by kind (now) | {kind} | {len(times)} | {1000 * percentile(times, 50):.0f} | "
                  f"{1000 * percentile(times, 95):.0f} |" for kind, times in sorted(by_kind.items())]
        pdf = fifty_pages(folder) if args.pages is None else made_pdf(folder, args.pages)
        index = Index.build([pdf], folder / "pdf")
        document = index.documents()[0]
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            answer = index.summarize(document.name)
            times.append(time.perf_counter() - started)
        lines += ["", f"Summary of {document.name} ({document.pages} pages, {document.chunks} chunks): "
                      f"median {1000 * percentile(times, 50):.0f} ms over {args.rounds} runs, "
                      f"{len(answer.citations)} sentences."]
    print("\n".join(lines))
    write("answer_speed", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

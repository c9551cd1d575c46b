"""Latency of ``Index.ask`` by kind of question, and of a 50-page PDF's summary, beside an earlier commit.

Over rag's docs (``docs/``, the user guide among them) and the seed article, every question of the
docs, docs-newcomer and seed sets of ``eval_questions/`` and a list of first questions of every kind
is asked through ``Index.ask`` (k=5: search, tables, the reader, the sentence chooser, quote
checks) by the working tree and, with ``--before COMMIT``, by that commit's ``rag`` too: each
version runs in a process of its own with its models loaded, on the same indexes (built by the
working tree), asked question by question in turn (which goes first alternates). Then
``Index.summarize`` of a 50-page PDF (a real filing from ``../shared/data/financebench`` when
present, else one made with fpdf2).

Each answer's time is split by stage (``STAGES``: the search, the reader's pass, the shortlisted
sentences embedded, the rest). The timed rounds ask every question again, so an embedder that keeps
recent vectors finds more of them kept than on a question's first asking: the warm-up round's
times are shown too.

The answers of the two versions are compared too (text, found, kind, span, citations, confidence
to 1e-4): a change meant only to be faster must leave every one of them as it was.

Usage:
    .venv/bin/python -m bench.perf.answer_speed [--rounds 3] [--before 6451a98]

Results: ``bench/results/answer_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT, SHARED, header, load_average, percentile, write, write_pdf

FIRST_QUESTIONS = [
    "What is rag?", "How do I change the port?", "Why does rag run offline?", "Which file types can I add?",
    "Summarize the user guide", "How do I add my own documents?", "How do I run the tests?",
    "Does rag send my documents anywhere?", "What is a collection?", "How does hybrid retrieval work?",
    "Which Python version does rag need?", "Where is the index saved?", "How do I remove a document?",
    "What are the answer modes?", "Compare the extractive and llm answer modes", "Does rag need a GPU?",
    "How can I connect a local LLM like Ollama?", "Explain how quotes are verified",
    "What port does the server use?", "List the commands of the CLI",
]
"""What a new user asks first, every kind among them (the issue's list and more like it)."""
TOLERANCE = 1e-4
"""How far two confidences may differ and still be the same answer's (float rounding)."""

STAGES = {"search": (("rag.search.retriever", "Retriever", "context"), ("rag.search.retriever", "Retriever", "search")),
          "reading": (("rag.answer.reader", "Reader", "read_sentences"),),
          "shortlist": (("rag.answer.sentences", None, "similarities"),)}
"""Where an answer's time goes: the search (the question embedded, the passages found), the
reader's pass over the hits, the shortlisted sentences embedded; the rest is everything else."""

_CHILD = """
import collections, importlib, json, sys, time
from rag import Index
spent = collections.defaultdict(float)
inside = collections.Counter()
def timed(stage, function):
    def timing(*args, **kwargs):
        if inside[stage]:  # a search that makes its own context: counted once
            return function(*args, **kwargs)
        inside[stage] += 1
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[stage] += time.perf_counter() - started
            inside[stage] -= 1
    return timing
for stage, places in json.loads(sys.argv[1]).items():
    for module, owner, name in places:
        where = importlib.import_module(module)
        where = getattr(where, owner) if owner else where
        setattr(where, name, timed(stage, getattr(where, name)))
indexes = {}
for line in sys.stdin:
    job = json.loads(line)
    index = indexes.get(job["folder"]) or indexes.setdefault(job["folder"], Index.open(job["folder"]))
    time.sleep(0.02)  # the other version's last call has ended: its threads are idle
    spent.clear()
    started = time.perf_counter()
    a = index.summarize(job["document"]) if "document" in job else index.ask(job["question"])
    took = time.perf_counter() - started
    print(json.dumps({"seconds": took, "stages": spent, "text": a.text, "found": a.found, "kind": a.kind,
                      "span": a.span, "confidence": a.confidence,
                      "citations": [[c.text, c.source, c.page, c.start, c.end] for c in a.citations]}), flush=True)
"""


def questions(name: str) -> list[str]:
    """The questions of ``eval_questions/<name>.jsonl`` (its first line describes the set)."""
    lines = (ROOT / "eval_questions" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [q for q in (json.loads(line).get("question") for line in lines if line.strip()) if q]


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


class Version:
    """One version of ``rag`` in a process of its own, answering one job at a time."""

    def __init__(self, name: str, tree: Path) -> None:
        self.name = name
        self.process = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(STAGES)], cwd=tree, text=True,
                                        env={**os.environ, "PYTHONPATH": str(tree)},
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, job: dict[str, str]) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(job) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} process ended (exit {self.process.wait()}) on {job}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two answers: the fields, and the confidences when further apart than 1e-4."""
    fields = [f for f in ("text", "found", "kind", "span", "citations") if before[f] != now[f]]
    a, b = before["confidence"], now["confidence"]
    if (a is None) != (b is None) or a is not None and abs(a - b) > TOLERANCE:
        fields.append(f"confidence {a} -> {b}")
    return fields


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=None, help="only the first N questions of each corpus")
    parser.add_argument("--pages", type=int, default=None,
                        help="summarise a made PDF of N pages (default: a real filing of 40-70 pages)")
    parser.add_argument("--before", default=None, help="an earlier commit to measure beside the working tree")
    args = parser.parse_args(argv)
    from rag import Index

    corpora = {"docs": (ROOT / "docs", FIRST_QUESTIONS + questions("docs") + questions("docs-newcomer"))}
    seed = SHARED.parent / "seeds"
    if seed.exists():
        corpora["seed"] = (seed, questions("seed"))
    names = ["before", "now"] if args.before else ["now"]
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jobs = []
        for name, (path, asked) in corpora.items():
            Index.build([path], folder / name)
            jobs += [{"folder": str(folder / name), "question": q} for q in list(dict.fromkeys(asked))[:args.questions]]
        pdf = fifty_pages(folder) if args.pages is None else made_pdf(folder, args.pages)
        document = Index.build([pdf], folder / "pdf").documents()[0]
        summary = {"folder": str(folder / "pdf"), "document": document.name}
        trees = {"now": ROOT}
        if args.before:
            trees["before"] = folder / "before"
            trees["before"].mkdir()
            archive = subprocess.run(["git", "archive", args.before, "rag"], cwd=ROOT, check=True,
                                     capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(trees["before"])], input=archive.stdout, check=True)
        versions = {name: Version(name, trees[name]) for name in names}
        try:
            # Round 0 loads the models and gives the answers compared; the rounds after it are timed.
            answers: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for n, job in enumerate(jobs):
                for name in names[::-1] if n % 2 else names:
                    answers[name].append(versions[name].run(job))
            times: dict[str, dict[str, list[float]]] = {name: {} for name in names}
            stages: dict[str, dict[str, dict[str, list[float]]]] = {name: {} for name in names}
            summaries: dict[str, list[float]] = {name: [] for name in names}
            turn = 0
            for _ in range(args.rounds):
                for n, job in enumerate([*jobs, summary, summary, summary]):
                    turn += 1
                    for name in names[::-1] if turn % 2 else names:
                        result = versions[name].run(job)
                        if job is summary:
                            summaries[name].append(result["seconds"])
                        else:
                            kind = answers["now"][n]["kind"] or "none"
                            times[name].setdefault(kind, []).append(result["seconds"])
                            spent = stages[name].setdefault("facts" if kind == "fact" else "sentences", {})
                            for stage in [*STAGES, "rest"]:
                                spent.setdefault(stage, []).append(
                                    result["stages"].get(stage, 0.0) if stage != "rest"
                                    else result["seconds"] - sum(result["stages"].values()))
                    loads.append(os.getloadavg()[0])
        finally:
            for version in versions.values():
                version.close()
    lines = header("Answer latency by kind, and a 50-page PDF's summary", sys.argv[1:] if argv is None else argv,
                   __spec__.name,
                   [f"k=5; {len(jobs)} questions ({', '.join(corpora)}), each asked once per round after a "
                    "warm-up round, {} rounds".format(args.rounds),
                    f"1-minute load average during the run: {min(loads):.1f} to {max(loads):.1f}, mean "
                    f"{sum(loads) / len(loads):.1f} (2 cores: above 2, other jobs waited for a core); at the end "
                    f"{load_average()}"]
                   + ([f"before: commit {args.before}; now: the working tree; each in its own process, on the same "
                       "indexes, question by question in turn"] if args.before else []))
    differ = []
    if args.before:
        differ = [(job, d) for job, b, a in zip(jobs, answers["before"], answers["now"]) if (d := differences(b, a))]
        lines += [f"Answers: **{len(jobs) - len(differ)} of {len(jobs)} identical** before and now (text, found, "
                  f"kind, span, citations, confidence to {TOLERANCE:g})."]
        lines += [f"- differs: `{job['question']}`: {', '.join(d)}" for job, d in differ[:20]]
        lines.append("")
    every = {name: [t for ts in times[name].values() for t in ts] for name in names}
    columns = " | ".join(f"{name} p50 ms | {name} p95 ms" for name in names)
    lines += [f"| kind | asked | {columns} |", "| --- | ---: |" + " ---: | ---: |" * len(names)]

    def row(label: str, by_name: dict[str, list[float]]) -> str:
        cells = " | ".join(f"{1000 * percentile(by_name[name], 50):.0f} | {1000 * percentile(by_name[name], 95):.0f}"
                           for name in names)
        return f"| {label} | {len(by_name[names[-1]])} | {cells} |"

    lines.append(row("**all**", every))
    lines += [row(kind, {name: times[name].get(kind, []) for name in names}) for kind in sorted(times["now"])]
    # Asked the first time: the vectors an embedder keeps come only from the questions before it.
    # The first question of each index loads the models, and is left out.
    firsts = {job["folder"]: n for n, job in reversed(list(enumerate(jobs)))}
    first_time = {name: [a["seconds"] for n, a in enumerate(answers[name]) if n not in firsts.values()]
                  for name in names}
    lines.append(row("all, asked the first time (warm-up round)", first_time))
    lines += ["", "Where the time goes, p50 ms of each stage: the search (the question embedded, the passages "
              "found), the reader's pass over the hits, the shortlisted sentences embedded (the sentence kinds, "
              "and a fact that falls back to sentences), the rest.", "",
              "| answered as | version | " + " | ".join([*STAGES, "rest"]) + " |", "| --- | --- |" + " ---: |" * (len(STAGES) + 1)]
    lines += [f"| {group} | {name} | " + " | ".join(f"{1000 * percentile(stages[name][group][stage], 50):.0f}"
                                                    for stage in [*STAGES, "rest"]) + " |"
              for group in ("facts", "sentences") for name in names if group in stages[name]]
    lines += ["", f"Summary of {document.name} ({document.pages} pages, {document.chunks} chunks), median of "
                  f"{3 * args.rounds} runs: " + ", ".join(f"{name} {1000 * percentile(summaries[name], 50):.0f} ms"
                                                      for name in names) + "."]
    print("\n".join(lines))
    write("answer_speed", lines)
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Page-accurate retrieval on real filings: FinanceBench through ``rag eval``'s own code.

The 17 filings (10-K, 10-Q, 8-K, earnings releases; PDFs of up to ~190 pages) that the 33
questions of ``../shared/data/financebench`` cite are indexed together with the default
settings, and every question is searched. A passage is right when it comes from the question's
filing *and* from the page that FinanceBench's annotators marked as the evidence: this is the
check behind every citation's page number. Answers are not compared (FinanceBench's are an
analyst's words, "$1577.00" for a cell reading 1,577).

The questions whose gold answer is a bare number ("$1577.00", "30.8%") are also asked through
``Index.ask``: the answer is right when its span holds that number (the filing's "1,577" in a
table of millions counts for "$1577.00"; a figure the analyst computed, such as a ratio, is
rarely in the filing, so some of these cannot be answered by quoting).

Both fusions are run side by side (the default blend and dense alone, BM25 alone), on the same
index. Results go to ``bench/results/financebench.md``. The index is the one
``rag eval ../shared/data/financebench`` builds and keeps (in ``~/.cache/rag/eval-index/``), so
either reuses the other's; the first build reads every page of the filings.

Usage:
    .venv/bin/python -m bench.studies.financebench
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from pathlib import Path


from bench.common import SHARED, header, write

from rag import Index, Settings
from rag.eval.datasets import load_financebench
from rag.eval.runner import evaluate
from rag.serve.eval_cli import index_for_set

FOLDER = SHARED / "financebench"
METRICS = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "citation_validity", "search_p50_ms")


_NUMBER = re.compile(r"-?\(?\$?\d[\d,]*(?:\.\d+)?")


def numbers(text: str) -> list[float]:
    out = []
    for m in _NUMBER.finditer(text.replace("\u2212", "-")):  # rag writes a computed minus as U+2212
        raw = m.group().replace("$", "").replace(",", "").replace("(", "-" if m.group().startswith("(") else "")
        try:
            out.append(float(raw))
        except ValueError:
            pass
    return out


def numeric_gold(answer: str) -> float | None:
    """The number a bare-number gold answer states ("$1577.00", "30.8%", "-3.7"), else None."""
    if not re.fullmatch(r"\s*-?\$?\d[\d,]*(?:\.\d+)?%?\s*", answer):
        return None
    return numbers(answer)[0]


def same_number(got: float, gold: float) -> bool:
    return any(abs(got * scale - gold) <= max(0.005 * abs(gold), 0.006) for scale in (1, 1000, 0.001))


def numeric_rows(index, question_set) -> list[str]:  # noqa: ANN001
    """Bare-number questions asked through Index.ask: is the number in the answer span?"""
    gold = {}
    for line in (FOLDER / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            value = numeric_gold(record["answer"])
            if value is not None:
                gold[str(record["financebench_id"])] = (value, record["answer"])
    rows, right = [], 0
    for q in question_set.questions:
        if q.id not in gold:
            continue
        value, shown = gold[q.id]
        answer = index.ask(q.question, k=5)
        ok = answer.found and any(same_number(n, value) for n in numbers(answer.span))
        right += ok
        got = answer.span if answer.found else "(declined)"
        rows.append(f"| {q.question.split('?')[0][:90].replace('|', '/')}? | {shown} | "
                    f"{' '.join(got.split())[:60].replace('|', '/')} | {'yes' if ok else 'no'} |")
    return [f"Numeric questions (gold answer a bare number) answered with that number: **{right} of {len(rows)}**.",
            "", "| question | gold | answer span | right |", "|---|---|---|---|", *rows, ""]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not FOLDER.exists():
        print(f"missing data: {FOLDER} (../shared is beside the checkout)", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context", default="heading,title",
                        help="chunk_context values to compare, comma-separated (each builds its own index)")
    parser.add_argument("--numeric-only", action="store_true",
                        help="only the bare-number questions through Index.ask (bench/results/financebench_numeric.md)")
    parser.add_argument("--limit", type=int, default=None,
                        help="only the questions on the N smallest filings (a quick check)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    question_set = load_financebench(FOLDER)
    if args.limit:
        kept = sorted(question_set.corpus, key=lambda p: p.stat().st_size)[:args.limit]
        question_set = dataclasses.replace(
            question_set, corpus=tuple(kept),
            questions=tuple(q for q in question_set.questions if q.sources[0] in {p.name for p in kept}))
    default = Settings.from_env()
    if args.numeric_only:
        index, where = index_for_set(question_set, default)
        print(where, file=sys.stderr)
        rows = numeric_rows(index, question_set)
        write("financebench_numeric", header("FinanceBench: bare-number questions through Index.ask", argv,
                                             __spec__.name, [f"index: {where}",
                                                                 f"run time: {time.perf_counter() - started:.0f} s"])
              + rows)
        print("\n".join(rows))
        return 0
    contexts = [c.strip() for c in args.context.split(",") if c.strip()]
    runs = {}
    for context in contexts:
        # The index `rag eval` builds for this set with these settings (kept, so reruns reuse it).
        index, where = index_for_set(question_set, default.replace(chunk_context=context))
        print(where, file=sys.stderr)
        runs[context] = (index, where, {fusion: evaluate(index, question_set, k=10, fusion=fusion, answers=False)
                                        for fusion in ("blend", "dense", "bm25")})
    shown = default.chunk_context if default.chunk_context in runs else contexts[0]
    index, where, results = runs[shown]
    # The baseline beside it: the same index, questions searched as typed, instructions and all.
    as_typed = Index.open(index.folder, index.settings.replace(focus_question=False))
    typed = evaluate(as_typed, question_set, k=10, fusion="blend", answers=False)
    pages = sum(doc.pages for doc in index.documents())
    lines = header("FinanceBench: is the evidence page retrieved?", argv, __spec__.name, [
        f"data: {FOLDER.name}: {len(question_set.corpus)} filings (PDF, {pages} pages, {len(index)} chunks), "
        f"{len(question_set.questions)} questions; a hit is right when it is from the question's filing and from "
        "its evidence page (FinanceBench's `evidence_page_num`, 0-based there, 1-based here)",
        f"PDF extractor: {getattr(default, 'pdf_extractor', 'pypdf')}; "
        f"chunk context (`Settings.chunk_context`, default `{default.chunk_context}`): `heading` (Markdown "
        "headings and table headers, which these PDFs do not have), `title` (also the file's name and the page's "
        "first lines); the default was chosen on these 33 questions and rag's docs set, so this set is not held out",
        f"run time: {time.perf_counter() - started:.0f} s ({'; '.join(w for _, w, _ in runs.values())})",
    ])
    lines += ["| chunk context | fusion | " + " | ".join(METRICS) + " |", "|---|---|" + "---:|" * len(METRICS)]
    for context, (_, _, by_fusion) in runs.items():
        for fusion, result in by_fusion.items():
            cells = [f"{result.metrics[m]:.1f}" if m.endswith("_ms") else f"{result.metrics[m]:.3f}"
                     for m in METRICS]
            mark = " (default)" if fusion == "blend" and context == default.chunk_context else ""
            lines.append(f"| {context} | {fusion}{mark} | " + " | ".join(cells) + " |")
    cells = [f"{typed.metrics[m]:.1f}" if m.endswith("_ms") else f"{typed.metrics[m]:.3f}" for m in METRICS]
    lines.append(f"| {shown} | blend, the question as typed (`focus_question=False`) | " + " | ".join(cells) + " |")
    lines += ["", "`focus_question` (the default) searches a question without the instructions around it "
              "(\"Round your answer to two decimal places.\"; `rag.search.focus`); its rules were written "
              "with these questions in view, so this set is not held out for it either."]
    lines += ["", f"Misses and numeric answers below: chunk context `{shown}`.", "",
              *numeric_rows(index, question_set)]
    misses = results["blend"].failures()
    lines += ["", f"Questions whose evidence page is not in the default's top 10: {len(misses)} of "
              f"{len(question_set.questions)}.", ""]
    lines += ["| question | filing, evidence page | top hit |", "|---|---|---|"]
    for r in misses:
        top = r.hits[0] if r.hits else None
        got = f"{Path(top.source).name}, page {top.page}" if top else "nothing"
        question = r.question.question.split("?")[0][:110].replace("|", "\\|") + "?"
        lines.append(f"| {question} | {r.question.sources[0]}, page {', '.join(map(str, r.question.pages))} "
                     f"| {got} |")
    print(write("financebench", lines).read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Page-accurate retrieval on real filings: FinanceBench through ``rag eval``'s own code.

The 17 filings (10-K, 10-Q, 8-K, earnings releases; PDFs of up to ~190 pages) that the 33
questions of ``../shared/data/financebench`` cite are indexed together with the default
settings, and every question is searched. A passage is right when it comes from the question's
filing *and* from the page that FinanceBench's annotators marked as the evidence: this is the
check behind every citation's page number. Answers are not compared (FinanceBench's are an
analyst's words, "$1577.00" for a cell reading 1,577).

Both fusions are run side by side (the default blend and dense alone, BM25 alone), on the same
index. Results go to ``bench/results/financebench.md``. The index is the one
``rag eval ../shared/data/financebench`` builds and keeps (in ``~/.cache/rag/eval-index/``), so
either reuses the other's; the first build reads every page of the filings.

Usage:
    .venv/bin/python bench/financebench.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, SHARED, header  # noqa: E402

from rag import Settings  # noqa: E402
from rag.datasets import load_financebench  # noqa: E402
from rag.eval import evaluate, index_for_set  # noqa: E402

FOLDER = SHARED / "financebench"
METRICS = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "citation_validity", "search_p50_ms")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not FOLDER.exists():
        print(f"missing data: {FOLDER} (../shared is beside the checkout)", file=sys.stderr)
        return 1
    started = time.perf_counter()
    question_set = load_financebench(FOLDER)
    index, where = index_for_set(question_set, Settings())  # the index `rag eval` builds for this set
    print(where, file=sys.stderr)
    results = {fusion: evaluate(index, question_set, k=10, fusion=fusion, answers=False)
               for fusion in ("blend", "dense", "bm25")}
    pages = sum(doc.pages for doc in index.documents())
    lines = header("FinanceBench: is the evidence page retrieved?", argv, "financebench.py", [
        f"data: {FOLDER.name}: {len(question_set.corpus)} filings (PDF, {pages} pages, {len(index)} chunks), "
        f"{len(question_set.questions)} questions; a hit is right when it is from the question's filing and from "
        "its evidence page (FinanceBench's `evidence_page_num`, 0-based there, 1-based here)",
        f"run time: {time.perf_counter() - started:.0f} s ({where})",
    ])
    lines += ["| fusion | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for fusion, result in results.items():
        cells = [f"{result.metrics[m]:.1f}" if m.endswith("_ms") else f"{result.metrics[m]:.3f}" for m in METRICS]
        lines.append(f"| {fusion}{' (default)' if fusion == 'blend' else ''} | " + " | ".join(cells) + " |")
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "financebench.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    print(path.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

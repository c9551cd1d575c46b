"""Would the reader's margins order the passages better than retrieval does?

``Index.ask`` reads the top 5 passages and answers from the best span across them. This
measures, on the questions whose right passage is in the top 5, how often the first passage is
a right one (a) in retrieval's order (``Index.search``), (b) ordered by the reader's margin over
"no answer", and (c) in the order the answer weighs them (``Answer.hits``: the answer's passage
first, then by the margin less ``rag.answer.extractive.RANK_PENALTY`` a place; ``rag.answer.extractive.reader_order``),
on sets other than SQuAD (``bench/studies/squad_answer.py`` reports squad2-dev the same way):
- rag's docs set (``eval_questions/docs.jsonl``, the user guide), passages right by page and
  answer string;
- the seed article (``eval_questions/seed.jsonl``);
- FinanceBench (``../shared/data/financebench``: 17 filings, PDF), right by filing and evidence
  page; the index is the one ``rag eval`` and ``bench/studies/financebench.py`` keep (first build: minutes).
Nothing here was tuned on: the reader and ``RANK_PENALTY`` were fitted on SQuAD articles.

Usage:
    .venv/bin/python -m bench.studies.reader_rerank
"""

from __future__ import annotations

import argparse
import sys
import time


import numpy as np
from bench.common import ROOT, SHARED, header, write

from rag import Settings
from rag.answer.extractive import RANK_PENALTY, abstention, compose, read_spans
from rag.answer.reader import load_reader
from rag.eval.datasets import QuestionSet, load_financebench, load_question_set
from rag.eval.metrics import passage_relevant
from rag.serve.eval_cli import index_for_set

K = 5


def first_right(question_set: QuestionSet, settings: Settings) -> tuple[dict[str, float], int, int, str]:
    """hit@1 of the three orders over the questions with a right passage in the top ``K``."""
    index, where = index_for_set(question_set, settings)
    reader = load_reader()
    orders: dict[str, list[bool]] = {"retrieval": [], "margin": [], "answer": []}
    judged = 0
    for q in question_set.questions:
        if q.unanswerable or q.history:
            continue
        judged += 1
        hits = index.search(q.question, K)
        right = [passage_relevant(q, h) for h in hits]
        if not any(right):
            continue
        spans = read_spans(q.question, hits, reader)
        orders["retrieval"].append(right[0])
        orders["margin"].append(right[int(np.argmax([s.margin for s in spans]))])
        answer = compose(q.question, hits, spans, abstention(index.settings, reader), index)
        orders["answer"].append(passage_relevant(q, answer.hits[0]))
    return {name: float(np.mean(v)) if v else float("nan") for name, v in orders.items()}, \
        len(orders["retrieval"]), judged, where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=["docs", "seed", "financebench"],
                        default=["docs", "seed", "financebench"], help="these sets only (a quick check: seed)")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    started = time.perf_counter()
    loaders = {"docs": ("rag's docs set", lambda: load_question_set(ROOT / "eval_questions" / "docs.jsonl")),
               "seed": ("seed article", lambda: load_question_set(ROOT / "eval_questions" / "seed.jsonl")),
               "financebench": ("FinanceBench (17 filings, PDF)",
                                lambda: load_financebench(SHARED / "financebench"))}
    if "financebench" in args.only and not (SHARED / "financebench").exists():
        print(f"skipping FinanceBench: {SHARED / 'financebench'} is absent", file=sys.stderr)
        args.only.remove("financebench")
    sets = [loaders[name] for name in args.only]
    settings = Settings.from_env()
    rows, wheres = [], []
    for name, load in sets:
        figures, n, judged, where = first_right(load(), settings)
        wheres.append(where)
        rows.append(f"| {name} | {n} of {judged} | {figures['retrieval']:.3f} | {figures['margin']:.3f} | "
                    f"{figures['answer']:.3f} |")
        print(rows[-1], file=sys.stderr)
    lines = header("Reranking the top 5 passages by the reader's margin", argv, __spec__.name, [
        f"reader: rag/models/reader-int8.onnx ({load_reader().info.sha256[:12]}); top {K} passages of the "
        "default search; a set's questions counted when a right passage is among them",
        f"run time: {time.perf_counter() - started:.0f} s ({'; '.join(wheres)})",
    ])
    lines += ["| set | questions (right passage in the top 5) | first passage right: retrieval order (`Index.search`) "
              f"| by the reader's margin | the answer's order, margin less {RANK_PENALTY:g} a place (`Answer.hits`) |",
              "|---|---:|---:|---:|---:|", *rows]
    print(write("reader_rerank", lines).read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

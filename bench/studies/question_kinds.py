"""How often ``rag.answer.kinds.classify`` gives the kind of answer a question wants, per labelled set.

No index and no model: each question (with its conversation before it, where it has one) is
classified and compared with the set's label.

- **MTRAG human subset** (``../shared/data/conversation/mtrag-human-eval``): every task whose
  ``question_type`` maps to a kind (``rag.eval.datasets.MTRAG_KINDS``), answerable or not. The rules
  were chosen on the *tune* half (``mtrag_half``); the *report* half is measured, never read.
  The tune half's confusion (label by row, our kind by column) is printed too.
- **eval_questions/docs.jsonl**, **docs-newcomer.jsonl**, **seed.jsonl**: their ``kind`` labels (reported).
- **SQuAD 1.1 train** (``../shared/data/train/squad1.1-train.json.gz``, tuned on) and **SQuAD 2.0 dev
  half a** (its answerable questions, reported): every SQuAD answer is a short span, so the right
  kind is "fact".
- **doc2dial-a** has no question types: the share of each kind we give its user turns, first turns
  and follow-ups, is shown for the tune half (``doc2dial_half``) only, as a check that follow-ups
  are not all "keyword" or "fact".

``BEFORE`` holds the same figures for the rules at commit 6451a98, measured by this script.

Usage:
    .venv/bin/python -m bench.studies.question_kinds [--show-tune] [--tune-only]

``--show-tune`` prints the tune half's misclassified MTRAG questions (the only ones to read).
Results go to ``bench/results/question_kinds.md``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.common import ROOT, SHARED, header, write

from rag.answer.kinds import classify
from rag.eval.datasets import EvalQuestion, load_doc2dial, load_jsonl, load_mtrag
from rag.types import ANSWER_KINDS

MTRAG = SHARED / "conversation" / "mtrag-human-eval"
DOC2DIAL = SHARED / "conversation"
SQUAD_TRAIN = SHARED / "train" / "squad1.1-train.json.gz"
SQUAD_DEV = SHARED / "squad2-dev" / "squad2-dev-half-a.json"
JSONL = ("docs", "docs-newcomer", "seed")

BEFORE = {"MTRAG human, tune half": 0.387, "SQuAD 1.1 train (tune)": 0.884, "MTRAG human, report half": 0.403,
          "eval_questions/docs.jsonl": 0.821, "eval_questions/docs-newcomer.jsonl": 0.815,
          "eval_questions/seed.jsonl": 0.833, "SQuAD 2.0 dev half a (answerable)": 0.851}
"""Kind accuracy of the rules at 6451a98 (before issue 36's kind work), by set."""

NO_MTRAG_TYPE = ("definition", "yesno", "list")
"""Our kinds that no MTRAG question type maps to (``MTRAG_KINDS``): always a miss there."""

Labelled = list[tuple[str, str, list[dict[str, str]]]]
"""(question, expected kind, earlier turns as OpenAI-style messages)."""


def squad_questions(path: Path) -> Labelled:
    """A SQuAD file's answerable questions, each expecting a fact."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    return [(qa["question"], "fact", []) for article in data for paragraph in article["paragraphs"]
            for qa in paragraph["qas"] if qa.get("answers") and not qa.get("is_impossible")]


def labelled(questions: Sequence[EvalQuestion]) -> Labelled:
    return [(q.question, q.kind, q.messages()) for q in questions if q.kind]


def score(items: Labelled) -> tuple[float, list[tuple[str, str, str, list[dict[str, str]]]]]:
    """Accuracy, and the misses as (question, expected, got, history)."""
    misses = []
    for question, expected, history in items:
        got = classify(question, history)
        if got != expected:
            misses.append((question, expected, got, history))
    return (1 - len(misses) / len(items) if items else 0.0), misses


def confusion(items: Labelled) -> list[str]:
    """Markdown table: the label by row, our kind by column."""
    counts = Counter((expected, classify(question, history)) for question, expected, history in items)
    rows = [k for k in ANSWER_KINDS if any(e == k for e, _ in counts)]
    cols = [k for k in ANSWER_KINDS if any(g == k for _, g in counts)]
    lines = ["| label \\ ours | " + " | ".join(cols) + " | right |", "| --- |" + " ---: |" * (len(cols) + 1)]
    for row in rows:
        total = sum(n for (e, _), n in counts.items() if e == row)
        cells = [str(counts.get((row, col), "")) for col in cols]
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {counts.get((row, row), 0)}/{total} |")
    return lines


def distribution(items: Sequence[tuple[str, list[dict[str, str]]]]) -> str:
    counts = Counter(classify(q, h) for q, h in items)
    return ", ".join(f"{k} {counts[k] / len(items):.0%}" for k in ANSWER_KINDS if counts[k])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show-tune", action="store_true", help="print the tune half's misclassified MTRAG questions")
    parser.add_argument("--tune-only", action="store_true",
                        help="measure the sets the rules are chosen on only, and write nothing (while tuning)")
    args = parser.parse_args(argv)
    sets: dict[str, Labelled] = {
        "MTRAG human, tune half": labelled(load_mtrag(MTRAG, half="tune").questions),
        "SQuAD 1.1 train (tune)": squad_questions(SQUAD_TRAIN),
        "MTRAG human, report half": labelled(load_mtrag(MTRAG, half="report").questions),
        **{f"eval_questions/{name}.jsonl": labelled(load_jsonl(ROOT / "eval_questions" / f"{name}.jsonl",
                                                               require_corpus=False).questions)
           for name in JSONL},
        "SQuAD 2.0 dev half a (answerable)": squad_questions(SQUAD_DEV),
    }
    if args.tune_only:
        sets = {name: items for name, items in sets.items() if "tune" in name}
    rows = ["| set | questions | kind right | before (6451a98) |", "| --- | ---: | ---: | ---: |"]
    measured = {}
    for name, items in sets.items():
        accuracy, misses = score(items)
        measured[name] = round(accuracy, 3)
        before = f"{BEFORE[name]:.3f}" if name in BEFORE else "-"
        rows.append(f"| {name} | {len(items)} | {accuracy:.3f} | {before} |")
        if args.show_tune and name == "MTRAG human, tune half":
            for question, expected, got, history in sorted(misses, key=lambda m: (m[1], m[2])):
                previous = next((t["content"] for t in reversed(history) if t["role"] == "user"), "")
                print(f"{expected:>12} <- {got:<12} {question!r}   [after: {previous[:70]!r}]", file=sys.stderr)
    doc2dial = load_doc2dial(DOC2DIAL, half="tune").questions
    firsts = [(q.question, q.messages()) for q in doc2dial if not q.history]
    followups = [(q.question, q.messages()) for q in doc2dial if q.history]
    lines = header("Question kinds: how often the kind of answer a question wants is right", sys.argv[1:],
                   "bench.studies.question_kinds", notes=[
                       "Rules chosen on MTRAG's tune half, SQuAD 1.1 train and doc2dial's tune half only; the other "
                       "sets measured once. MTRAG labels mapped by `rag.eval.datasets.MTRAG_KINDS` (tasks labelled "
                       "only Composite or Non-Question left out); a SQuAD question expects a fact."])
    tune = sets["MTRAG human, tune half"]
    _, misses = score(tune)
    untyped = sum(1 for _, _, got, _ in misses if got in NO_MTRAG_TYPE)
    summarised = sum(1 for _, expected, got, _ in misses if expected == "summary" and got not in NO_MTRAG_TYPE)
    lines += ["## Kind accuracy", "", *rows, "",
              "## MTRAG tune half: label by row, our kind by column", "", *confusion(tune), "",
              f"Of the {len(misses)} misses, {untyped} are kinds MTRAG has no question type for "
              f"({', '.join(NO_MTRAG_TYPE)}: a yes/no question is its Factoid or Explanation, a definition its "
              f"Explanation) and {summarised} others are questions it labels Summarization: our summary is of a whole "
              "document and asked for as such (\"Summarize the report\"), so a question whose reference sums up "
              "several passages (\"Which rivers are navigable in the USA?\") gets the kind of what it asks.",
              "", "## doc2dial-a tune half (no labels): the kinds we give", "",
              f"- first turns ({len(firsts)}): {distribution(firsts)}",
              f"- follow-ups ({len(followups)}): {distribution(followups)}", ""]
    print("\n".join(lines))
    print(json.dumps(measured))
    if not args.tune_only:
        write("question_kinds", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

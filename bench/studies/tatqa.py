"""Table questions: TAT-QA dev, each context written as a Markdown file and asked of its own index.

TAT-QA (Zhu et al., ACL 2021; ``../shared/data/tables/tatqa-dev.json``, MIT) pairs a table from an
annual report with the paragraphs around it and asks questions of four answer types (a span, several
spans, a count, an arithmetic result) drawn from the table, the text or both. Each context is
written as one Markdown file (the table as a pipe table, its header rows first, then its paragraphs)
and indexed alone; every question is asked through ``Index.ask`` with the default settings.

Scoring follows the issue (and TAT-QA's own rule for numbers): a gold answer that is a number
matches when the answer's first number equals it to two decimals (the scale word and a percent sign
are the answer's, not part of the match, as in TAT-QA's scale-free EM); text answers match by SQuAD
normalisation (a multi-span answer when the sets of normalised spans are equal), F1 is SQuAD's token
F1 (for numbers, equal to EM). The answer compared is ``Answer.span`` (the bare figure or span, not
the working around it); a declined question answers "".

``--reader-only`` asks with the reader alone (the answerer before the table answerer existed), so
the before and after are measured by one script on one machine. ``--limit N`` takes the first N
contexts. Results go to ``bench/results/tatqa[_reader].md``: EM and F1 by answer type and by
``answer_from``, and the p50 / p95 latency of the questions the table answerer took.

Usage:
    .venv/bin/python -m bench.studies.tatqa [--reader-only] [--limit N]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


from bench.common import SHARED, header, percentile, write

from rag import Index, Settings

DATA = SHARED / "tables" / "tatqa-dev.json"


def markdown_table(rows: list[list[str]]) -> str:
    """TAT-QA's table as a GitHub pipe table: its first row heads it, the rest are rows."""
    width = max(len(r) for r in rows)

    def line(cells: list[str]) -> str:
        cells = [" ".join(c.split()).replace("|", "\\|") for c in cells] + [""] * (width - len(cells))
        return "| " + " | ".join(cells) + " |"

    return "\n".join([line(rows[0]), "|" + "---|" * width] + [line(r) for r in rows[1:]])


def context_markdown(context: dict[str, Any]) -> str:
    paragraphs = sorted(context["paragraphs"], key=lambda p: p["order"])
    return markdown_table(context["table"]["table"]) + "\n\n" + "\n\n".join(p["text"] for p in paragraphs) + "\n"


_NUM = re.compile(r"-?\(?\d[\d,]*(?:\.\d+)?\)?")


def first_number(text: str) -> float | None:
    text = text.replace("−", "-").replace("–", "-").replace("$", "")
    m = _NUM.search(text)
    if not m:
        return None
    raw = m.group()
    negative = raw.startswith("-") or (raw.startswith("(") and raw.endswith(")"))
    try:
        value = float(raw.strip("-()").replace(",", ""))
    except ValueError:
        return None
    return -value if negative else value


def normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(pred: str, gold: str) -> float:
    p, g = normalize(pred).split(), normalize(gold).split()
    if not p or not g:
        return float(p == g)
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def gold_number(gold: Any) -> float | None:
    if isinstance(gold, (int, float)):
        return float(gold)
    if isinstance(gold, list) and len(gold) == 1:
        text = str(gold[0]).strip()
        if re.fullmatch(r"[-−$(]*\s*\d[\d,]*(?:\.\d+)?\s*\)?%?", text):
            return first_number(text)
    return None


def same(pred: str, gold: str) -> bool:
    """One span of a multi-span answer: numbers to two decimals, text by SQuAD normalisation."""
    number = gold_number([gold])
    if number is not None:
        got = first_number(pred)
        return got is not None and round(got, 2) == round(number, 2)
    return normalize(pred) == normalize(gold)


def score(pred: str, gold: Any) -> tuple[float, float]:
    """(EM, F1) of a predicted answer against a TAT-QA gold answer."""
    number = gold_number(gold)
    if number is not None:
        got = first_number(pred)
        ok = got is not None and round(got, 2) == round(number, 2)
        return float(ok), float(ok)
    golds = [str(g) for g in gold] if isinstance(gold, list) else [str(gold)]
    if len(golds) == 1:
        return float(normalize(pred) == normalize(golds[0])), token_f1(pred, golds[0])
    splitter = r"\s*;\s*" if ";" in pred else r"\s*(?:,\s+and\s+|,\s+|\band\b)\s*"
    parts = [p for p in re.split(splitter, pred) if p.strip()]
    em = float(len(parts) == len(golds) and all(same(p, g) for p, g in zip(sorted(parts, key=normalize),
                                                                          sorted(golds, key=normalize)))
               or sorted(map(normalize, parts)) == sorted(map(normalize, golds)))
    return em, token_f1(" ".join(parts), " ".join(golds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader-only", action="store_true", help="the reader alone (the answerer before tables)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N contexts")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"missing data: {args.data}", file=sys.stderr)
        return 1
    contexts = json.loads(args.data.read_text(encoding="utf-8"))
    if args.limit:
        contexts = contexts[:args.limit]
    settings = Settings()
    by_type: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    by_from: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    by_kind: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    table_ms: list[float] = []
    misses: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n, context in enumerate(contexts):
            path = Path(tmp) / f"context-{n:03d}.md"
            path.write_text(context_markdown(context), encoding="utf-8")
            index = Index.build([path], Path(tmp) / f"index-{n:03d}", settings)
            if args.reader_only:
                from rag.answer.extractive import read_answer

                index.answerer = read_answer
            for q in context["questions"]:
                t0 = time.perf_counter()
                answer = index.ask(q["question"])
                ms = (time.perf_counter() - t0) * 1000
                pred = (answer.span or answer.text) if answer.found else ""
                em, f1 = score(pred, q["answer"])
                by_type[q["answer_type"]].append((em, f1))
                by_from[q["answer_from"]].append((em, f1))
                by_kind[answer.kind if answer.found else "declined"].append((em, f1))
                by_type["all"].append((em, f1))
                if answer.kind == "table":
                    table_ms.append(ms)
                if not em and len(misses) < 60:
                    misses.append(f"- {q['question']} | gold {q['answer']!r} ({q['answer_type']}, "
                                  f"{q.get('derivation') or '-'}) | got {pred[:80]!r}")
            print(f"{n + 1}/{len(contexts)} contexts, EM so far "
                  f"{sum(e for e, _ in by_type['all']) / len(by_type['all']):.3f}", file=sys.stderr, flush=True)

    def row(name: str, scores: list[tuple[float, float]]) -> str:
        return (f"| {name} | {len(scores)} | {sum(e for e, _ in scores) / len(scores):.3f} "
                f"| {sum(f for _, f in scores) / len(scores):.3f} |")

    name = "tatqa_reader" if args.reader_only else "tatqa"
    lines = header("TAT-QA dev: table questions, each context its own index",
                   sys.argv[1:] if argv is None else argv, __spec__.name,
                   [f"{len(contexts)} contexts, {len(by_type['all'])} questions; answerer: "
                    f"{'the reader alone' if args.reader_only else 'rag.answer.extractive.answer (table answerer, then reader)'}",
                    f"wall time {time.perf_counter() - started:.0f} s"])
    lines += ["| answer type | questions | EM | F1 |", "|---|---|---|---|"]
    lines += [row(k, v) for k, v in sorted(by_type.items(), key=lambda kv: kv[0] != "all")]
    lines += ["", "| answer from | questions | EM | F1 |", "|---|---|---|---|"]
    lines += [row(k, v) for k, v in sorted(by_from.items())]
    lines += ["", "| answered as | questions | EM | F1 |", "|---|---|---|---|"]
    lines += [row(k, v) for k, v in sorted(by_kind.items())]
    lines += ["", f"Table answers: {len(table_ms)}, latency (whole `Index.ask`) p50 {percentile(table_ms, 50):.0f} ms, "
              f"p95 {percentile(table_ms, 95):.0f} ms.", "", "First misses:", *misses]
    write(name, lines)
    print("\n".join(lines[lines.index("| answer type | questions | EM | F1 |"):][:20]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

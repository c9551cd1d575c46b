"""Answers people can use: the answer text against reference answers, on every set at once.

One run of ``rag.eval.runner.evaluate`` per set, each over its own index (built once into
``bench/.cache/answer_text/<set>``, incrementally after that), reported in one table:

- **MTRAG human subset** (``../shared/data/conversation/mtrag-human-eval``): 150 answerable tasks
  scored against their human-checked reference, beside the GPT-4o and Llama 3.1 405B responses
  the file holds (given the right passages) and beside two answers from our own search: the
  first sentence of the answer's top passage and that whole passage; 7 unanswerable tasks, right
  when declined. Broken down by MTRAG's question types. Also by half (``rag.eval.datasets.
  mtrag_half``, by conversation): answer rules were chosen on the tune half (the prose answers'
  ``FILL_WORDS``, a fact's fall-back to sentences, the question kinds' follow-up rules, with
  other data for the abstention line); the report half was never read.
- **doc2dial-a, report half, first turns** (``../shared/data/conversation``): the answer against
  the grounding span the agent answered from. The conversation rules were tuned on the other
  half (``rag.eval.datasets.doc2dial_half``); all 123 documents are indexed.
- **eval_questions/docs.jsonl**, **eval_questions/docs-newcomer.jsonl** (reference answers and
  kinds), **eval_questions/seed.jsonl** (the seed article, in ``../shared/seeds``).
- **SQuAD 2.0 half a** (``../shared/data/squad2-dev``): every ``--squad-every``-th question
  (default every 5th, all 8 articles; the whole file takes an hour on 2 shared cores): exact
  match on the answerable ones, and the share whose gold answer is in the answer or its first quote.

Nothing is tuned here, and nothing was tuned on these sets but MTRAG's tune half. ``--save-baseline``
keeps this run's figures as the baseline column
(``bench/results/answer_text-baseline.json``); later runs print theirs beside it. ``--only``
reruns some sets and keeps the figures of the others from the last run (``answer_text.json``).

Usage:
    .venv/bin/python -m bench.studies.answer_text [--limit N] [--squad-every 5] [--only NAME...] [--save-baseline]

Results go to ``bench/results/answer_text.md`` (and ``answer_text.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence


from bench.common import CACHE, RESULTS, ROOT, SHARED, header, write

from rag import Index, Settings
from rag.errors import CorpusMissingError, RagError
from rag.eval.datasets import (
    QuestionSet,
    load_doc2dial,
    load_jsonl,
    load_mtrag,
    load_squad,
)
from rag.eval.metrics import contains_answer
from rag.eval.runner import EvalResult, evaluate

K = 5
BASELINE = RESULTS / "answer_text-baseline.json"
LAST = RESULTS / "answer_text.json"


def say_every(name: str, n: int) -> Callable[[int, int], None]:
    """A progress callback that prints a line every ``n`` questions (the run is long on a shared machine)."""
    def progress(done: int, total: int) -> None:
        if done % n == 0 or done == total:
            print(f"{name}: {done}/{total}", file=sys.stderr, flush=True)
    return progress


def first_turns(qs: QuestionSet) -> QuestionSet:
    kept = tuple(q for q in qs.questions if not q.history)
    return dataclasses.replace(qs, name=qs.name + "-first", questions=kept,
                               description=qs.description + f"; first turns only: {len(kept)}")


def every(qs: QuestionSet, n: int) -> QuestionSet:
    kept = qs.questions[::n]
    return dataclasses.replace(qs, questions=kept, description=qs.description + f"; every {n}th question: {len(kept)}")


def sets(squad_every: int) -> list[tuple[str, Callable[[], QuestionSet]]]:
    conversation = SHARED / "conversation"
    return [
        ("MTRAG human subset", lambda: load_mtrag(conversation / "mtrag-human-eval", cache_dir=CACHE / "datasets")),
        ("MTRAG human subset, tune half (tuned on)",
         lambda: load_mtrag(conversation / "mtrag-human-eval", cache_dir=CACHE / "datasets", half="tune")),
        ("MTRAG human subset, report half",
         lambda: load_mtrag(conversation / "mtrag-human-eval", cache_dir=CACHE / "datasets", half="report")),
        ("doc2dial-a report half, first turns",
         lambda: first_turns(load_doc2dial(conversation, cache_dir=CACHE / "datasets", half="report"))),
        ("docs", lambda: load_jsonl(ROOT / "eval_questions" / "docs.jsonl")),
        ("docs-newcomer", lambda: load_jsonl(ROOT / "eval_questions" / "docs-newcomer.jsonl")),
        ("seed", lambda: load_jsonl(ROOT / "eval_questions" / "seed.jsonl")),
        (f"SQuAD 2.0 half a (every {squad_every}th)",
         lambda: every(load_squad(SHARED / "squad2-dev" / "squad2-dev-half-a.json", cache_dir=CACHE / "datasets"),
                       squad_every)),
    ]


def gold_in_answer_or_first_quote(result: EvalResult) -> float | None:
    """Share of the answerable questions with answer strings whose gold answer is in the answer's
    text or its first quote (abstentions count as misses)."""
    judged = [r for r in result.questions if r.question.answers and not r.question.unanswerable]
    if not judged:
        return None
    hits = 0
    for r in judged:
        a = r.answer
        if a is not None and a.found and (contains_answer(a.text, r.question.answers) or (
                a.citations and contains_answer(a.citations[0].text, r.question.answers))):
            hits += 1
    return hits / len(judged)


def figures(result: EvalResult) -> dict[str, float]:
    """The figures of one set that the table shows (absent when the set cannot measure them)."""
    m = result.metrics
    out = {name: m[name] for name in m if "/" not in name and name.endswith(("_f1", "_rouge_l"))}
    for name in ("exact_match", "kind_accuracy", "abstention_recall", "answer_words_p50", "hit@5"):
        if name in m:
            out[name] = m[name]
    answerable = [r for r in result.questions if not r.question.unanswerable and r.answer is not None]
    if answerable:
        out["answerable_declined"] = sum(1 for r in answerable if r.answer is not None and not r.answer.found) / len(answerable)
    gold = gold_in_answer_or_first_quote(result)
    if gold is not None:
        out["gold_in_answer_or_first_quote"] = gold
    return out


COLUMNS = [("questions", "questions"), ("answer_f1", "ours F1"), ("answer_rouge_l", "ours ROUGE-L"),
           ("first_sentence_f1", "first sentence F1"), ("top_passage_f1", "top passage F1"),
           ("gpt-4o_f1", "GPT-4o F1"), ("llama-3.1-405b-instruct_f1", "Llama 3.1 405B F1"),
           ("exact_match", "EM"), ("gold_in_answer_or_first_quote", "gold in answer or 1st quote"),
           ("kind_accuracy", "kind right"), ("abstention_recall", "unanswerable declined"),
           ("answerable_declined", "answerable declined"), ("answer_words_p50", "answer words p50")]
"""The main table's columns: (figure, heading)."""

KEY = ["answer_f1", "answer_rouge_l", "exact_match", "gold_in_answer_or_first_quote", "kind_accuracy",
       "abstention_recall", "answerable_declined"]
"""The figures compared with the baseline."""


def cell(value: float | None, name: str) -> str:
    if value is None:
        return ""
    return f"{value:.0f}" if name in ("questions", "answer_words_p50") else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions of each set")
    parser.add_argument("--squad-every", type=int, default=5, help="SQuAD: every Nth question (default 5)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="run only the sets whose name starts with NAME (e.g. MTRAG SQuAD); keep the others' "
                             "figures from the last run")
    parser.add_argument("--save-baseline", action="store_true", help="keep this run as the baseline column")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    baseline = json.loads(BASELINE.read_text(encoding="utf-8")) if BASELINE.exists() else None
    last = json.loads(LAST.read_text(encoding="utf-8")) if LAST.exists() and args.only else {}
    runs: dict[str, dict[str, float]] = {}
    tables: dict[str, list[str]] = {}
    ran: list[str] = []
    skipped: list[str] = []
    for name, load in sets(args.squad_every):
        if args.only and not any(name.startswith(prefix) for prefix in args.only):
            if name in last.get("figures", {}):
                runs[name], tables[name] = last["figures"][name], last.get("tables", {}).get(name, [])
            continue
        try:
            qs = load()
        except (CorpusMissingError, RagError, OSError) as exc:
            skipped.append(f"{name}: not run ({exc})")
            print(skipped[-1], file=sys.stderr)
            continue
        folder = CACHE / "answer_text" / "".join(c if c.isalnum() else "-" for c in name.split(" (")[0])
        index = Index.build(qs.corpus, folder, settings=Settings())
        print(f"{name}: {len(qs.questions)} questions over {len(index)} chunks", file=sys.stderr)
        result = evaluate(index, qs, k=K, answers=True, limit=args.limit, progress=say_every(name, 25))
        runs[name] = {"questions": float(result.counts["questions"]), **figures(result)}
        ran.append(name)
        tables[name] = [result.description, "", *(result.breakdown_table() or [
            "No reference answers in this set: its exact match, gold in answer or first quote and kind accuracy are "
            "in the table above."])]
        print(f"{name}: done, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    today = {"date": time.strftime("%Y-%m-%d"), "figures": runs, "tables": tables}
    LAST.parent.mkdir(parents=True, exist_ok=True)
    LAST.write_text(json.dumps(today, indent=1), encoding="utf-8")
    if args.save_baseline:
        BASELINE.write_text(json.dumps(today, indent=1), encoding="utf-8")
        baseline = today
    lines = header("Answer text against reference answers", sys.argv[1:], __spec__.name, [
        "data: MTRAG human-evaluated subset (IBM, Apache-2.0), doc2dial-a (report half: nothing was tuned on it), "
        "eval_questions/docs, docs-newcomer and seed, SQuAD 2.0 dev half a; nothing here was tuned on any of them "
        "but MTRAG's tune half (its report half and the whole subset are reported beside it)",
        *([f"--only: the figures of {', '.join(n for n in runs if n not in ran)} are those of the run of "
           f"{last.get('date')} (bench/results/answer_text.json)"] if args.only else []),
        f"each set over its own index, k={K}, default settings; an abstention scores 0; "
        "the answer text is scored without its citation marks and file labels (`rag.eval.metrics.answer_words`)",
    ])
    lines += ["| set | " + " | ".join(h for _, h in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name, figs in runs.items():
        lines.append(f"| {name} | " + " | ".join(cell(figs.get(c), c) for c, _ in COLUMNS) + " |")
    lines += ["", "Token F1 and ROUGE-L (LCS F) against the reference answer (doc2dial: the grounding span; MTRAG: "
              "the human-checked reference). First sentence and top passage: what our own search could show "
              "without an answerer (the answer's top passage). GPT-4o and Llama: the responses in MTRAG's file, "
              "written with the right passages given. EM and gold-in-answer-or-first-quote: on the answerable "
              "questions with short answer strings.", ""]
    if baseline is not None:
        lines += [f"### Against the baseline (today's figures, {baseline['date']})", "",
                  "| set | figure | baseline | this run |", "|---|---|---:|---:|"]
        for name, figs in runs.items():
            before = baseline["figures"].get(name, {})
            for key in KEY:
                if key in figs or key in before:
                    lines.append(f"| {name} | {key} | {cell(before.get(key), key)} | {cell(figs.get(key), key)} |")
        lines.append("")
    lines += ["### By kind and question type", "",
              "\"kind\": the kind of the answer given (`Answer.kind`); \"expected kind\": the set's label (MTRAG's "
              "question types mapped by `rag.eval.datasets.MTRAG_KINDS`); \"question type\": MTRAG's own labels (a task "
              "with several counts in each). Cells: F1 / ROUGE-L.", ""]
    for name, table in tables.items():
        lines += [f"#### {name}", "", *table, ""]
    lines += [*[f"- {s}" for s in skipped],
              f"run time: {time.perf_counter() - started:.0f} s"]
    print(write("answer_text", lines).read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

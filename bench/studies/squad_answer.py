"""The reader on SQuAD 2.0: answers, abstention, the reader alone, reranking, latency.

The eight articles of ``../shared/data/squad2-dev`` are indexed together (once, into
``bench/.cache/squad-index``) and every question of the *report* half (the four articles not in
``EARLIER_CALIBRATION``, so that figures stay comparable with the runs before the reader) is
asked of the whole index with ``k=5``. Nothing here is fitted: the abstention rule (the reader's
margin plus a weight times the best passage's dense similarity, against a threshold;
``rag.answer.extractive.Abstention``) was chosen by ``python -m train.reader --calibrate`` on SQuAD 2.0 articles
outside ``squad2-dev``, and it is the "shipped" row; the margin alone at its own calibrated
threshold and other thresholds are shown to say what the trade-off looks like, not to pick one.

Rows:
- end to end (retrieval, then the reader over the top 5 passages), at the shipped rule and a
  few others; the baseline beside it: the top hit's best sentence, as search shows it;
- the reader alone, given the gold paragraph (what the published SQuAD 2.0 reader figures mean);
- reranking: hit@1 of the gold passage in retrieval's order and in the reader's margin order;
- the seed article's question set (``eval_questions/seed.jsonl``) through ``Index.ask``;
- latency of ``Index.ask`` (k=5) on a sample.

Usage:
    .venv/bin/python -m bench.studies.squad_answer --latency 50

Results go to ``bench/results/squad_answer.md`` with the command, date and machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.common import CACHE, RESULTS, ROOT, SHARED, command, machine, percentile, write
from rag import Index, Settings
from rag.answer.extractive import RANK_PENALTY, Abstention, compose, read_spans
from rag.answer.reader import load_reader
from rag.eval.datasets import EvalQuestion, load_squad
from rag.eval.metrics import contains_answer, exact_match, f1_score
from rag.types import Answer, Hit

SQUAD = SHARED / "squad2-dev" / "squad2-dev-half-a.json"
EARLIER_CALIBRATION = ("1973_oil_crisis.txt", "Huguenot.txt", "Normans.txt", "Scottish_Parliament.txt")
"""Articles the answerer before the reader was fitted on; its figures were on the other four."""
BEFORE = {"exact_match": 0.143, "f1": 0.315, "answer_contains": 0.483, "answer_or_first_quote_contains": 0.640,
          "abstention_precision": 0.47, "abstention_recall": 0.25}
"""The rules-and-logistic answerer this reader replaced, on the same report questions
(bench/results/squad_answer.md as of 2026-11-30, commit 02d5d6e); its code is deleted."""
NEVER = -1e9


@dataclass
class Asked:
    question: EvalQuestion
    hits: list[Hit]
    answer: Answer
    """Answered with no margin (never abstains): the margin is applied afterwards."""
    margins: list[float]
    """The reader's margin for each hit, in retrieval order."""


def good(q: EvalQuestion, r: Answer) -> bool:
    """A gold answer in the answer text or its first quote."""
    return r.found and (contains_answer(r.span or r.text, q.answers)
                        or bool(r.citations) and contains_answer(r.citations[0].text, q.answers))


def at_margin(a: Asked, threshold: float, by_margin_alone: bool = False) -> Answer:
    """The answer declined when its confidence (or, ``by_margin_alone``, its widest margin) is below ``threshold``."""
    score = max(a.margins, default=NEVER) if by_margin_alone else a.answer.confidence
    if a.answer.found and score < threshold:
        return Answer(a.answer.question, "", False, (), a.answer.hits, a.answer.mode, a.answer.confidence)
    return a.answer


def metrics(asked: Sequence[Asked], threshold: float, by_margin_alone: bool = False) -> dict[str, float]:
    results = [at_margin(a, threshold, by_margin_alone) for a in asked]
    answerable = [(a.question, r) for a, r in zip(asked, results) if not a.question.unanswerable]
    unanswerable = [r for a, r in zip(asked, results) if a.question.unanswerable]
    declined = [a.question.unanswerable for a, r in zip(asked, results) if not r.found]

    def mean(values: Sequence[float]) -> float:
        return float(np.mean(values)) if values else 0.0

    return {
        "exact_match": mean([exact_match(r.span, q.answers) if r.found else 0.0 for q, r in answerable]),
        "f1": mean([f1_score(r.span, q.answers) if r.found else 0.0 for q, r in answerable]),
        "answer_contains": mean([r.found and contains_answer(r.span, q.answers) for q, r in answerable]),
        "answer_or_first_quote_contains": mean([good(q, r) for q, r in answerable]),
        "answered": mean([r.found for _, r in answerable]),
        "abstention_precision": mean(declined),
        "abstention_recall": sum(declined) / len(unanswerable) if unanswerable else 0.0,
    }


NAMES = ("exact_match", "f1", "answer_contains", "answer_or_first_quote_contains", "answered",
         "abstention_precision", "abstention_recall")


def table(rows: Sequence[tuple[str, dict[str, float]]]) -> list[str]:
    lines = ["| variant | " + " | ".join(NAMES) + " |", "|---|" + "---:|" * len(NAMES)]
    for label, m in rows:
        lines.append(f"| {label} | " + " | ".join(f"{m[n]:.3f}" if n in m else "–" for n in NAMES) + " |")
    return lines


def ask_all(index: Index, questions: Sequence[EvalQuestion], k: int = 5) -> list[Asked]:
    reader = load_reader()
    out = []
    for n, q in enumerate(questions):
        hits = index.search(q.question, k=k)
        spans = read_spans(q.question, hits, reader)
        answer = compose(q.question, hits, spans, Abstention(NEVER, reader.info.similarity_weight, NEVER), index)
        by_passage = {s.passage: s.margin for s in spans}
        out.append(Asked(q, hits, answer, [by_passage.get(i, -1e9) for i in range(len(hits))]))
        if n % 200 == 0:
            print(f"asked {n}/{len(questions)}", file=sys.stderr)
    return out


def holds_gold(q: EvalQuestion, hit: Hit) -> bool:
    return any(Path(hit.source).name == name and hit.chunk.start <= s and t <= hit.chunk.end
               for name, s, t in q.spans)


def rerank_rows(asked: Sequence[Asked]) -> list[str]:
    """hit@1 of the gold passage: retrieval's order vs the reader's margins (top 5 reordered)."""
    judged = [a for a in asked if not a.question.unanswerable and a.question.spans and a.hits]
    if not judged:
        return []
    retrieval = np.mean([holds_gold(a.question, a.hits[0]) for a in judged])
    by_reader = np.mean([holds_gold(a.question, a.hits[int(np.argmax(a.margins))]) for a in judged])
    by_answer = np.mean([holds_gold(a.question, a.answer.hits[0]) for a in judged])
    in_top5 = np.mean([any(holds_gold(a.question, h) for h in a.hits) for a in judged])
    return [f"| retrieval order (`Index.search`) | {retrieval:.3f} | {in_top5:.3f} |",
            f"| reordered by the reader's margin | {by_reader:.3f} | {in_top5:.3f} |",
            f"| the answer's order, margin less {RANK_PENALTY:g} a place (`Answer.hits`, shipped) | "
            f"{by_answer:.3f} | {in_top5:.3f} |"]


def gold_paragraph(questions: Sequence[EvalQuestion], data: list[dict], margin: float) -> dict[str, float]:
    """The reader alone: each question read against its own paragraph."""
    reader = load_reader()
    context = {}
    for article in data:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                context[qa["id"]] = p["context"]
    em, f1, declined, unanswerable = [], [], [], 0
    from rag.answer.spans import whole_span

    for q in questions:
        text = context[q.id]
        span = reader.read(q.question, [text])[0]
        a, b = whole_span(text, span.start, span.end)
        found = span.margin >= margin
        if q.unanswerable:
            unanswerable += 1
        else:
            em.append(exact_match(text[a:b], q.answers) if found else 0.0)
            f1.append(f1_score(text[a:b], q.answers) if found else 0.0)
        if not found:
            declined.append(q.unanswerable)
    return {"exact_match": float(np.mean(em)), "f1": float(np.mean(f1)),
            "abstention_precision": float(np.mean(declined)) if declined else 0.0,
            "abstention_recall": sum(declined) / unanswerable if unanswerable else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=int, default=50, help="questions timed through Index.ask (0: none)")
    parser.add_argument("--limit", type=int, default=None,
                        help="only the first N report questions, over the articles they come from (a quick check)")
    parser.add_argument("--out", type=Path, default=RESULTS / "squad_answer.md")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if not SQUAD.exists():
        print(f"{SQUAD} is absent: nothing to measure", file=sys.stderr)
        return 1
    started = time.perf_counter()
    question_set = load_squad(SQUAD, cache_dir=CACHE / "datasets")
    report = [q for q in question_set.questions if q.sources[0] not in EARLIER_CALIBRATION][:args.limit]
    corpus = question_set.corpus
    if args.limit:
        corpus = tuple(p for p in corpus if p.name in {q.sources[0] for q in report})
        question_set = dataclasses.replace(question_set, corpus=corpus)
    index = Index.build(corpus, CACHE / ("squad-index" if not args.limit else f"squad-index-{args.limit}"),
                        settings=Settings())
    info = load_reader().info
    shipped = info.no_answer_score
    asked = ask_all(index, report)
    rule = f"margin + {info.similarity_weight:g} x similarity"
    rows = [(f"**reader, shipped: {rule} below {shipped:.2f} declined**", metrics(asked, shipped)),
            (f"reader, the margin alone below {info.no_answer_margin:.2f} (its own calibration; "
             "the rule before 2026-12-03)", metrics(asked, info.no_answer_margin, by_margin_alone=True)),
            ("reader, never abstain", metrics(asked, NEVER))]
    for m in (shipped - 2, shipped - 1, shipped + 1, shipped + 2):
        rows.append((f"reader, {rule} below {m:.2f}", metrics(asked, m)))
    rows.append(("before: rules + logistic answerer (2026-11-30)", BEFORE))
    baseline = []
    for a in asked:
        quote = a.hits[0].quote if a.hits else None
        baseline.append(Asked(a.question, a.hits, Answer(
            a.question.question, quote.text if quote else "", bool(quote), (quote,) if quote else (),
            tuple(a.hits), "search", 1.0, span=quote.text if quote else ""), a.margins))
    rows.append(("baseline: top hit's best sentence (search), never abstain", metrics(baseline, NEVER)))

    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    alone = gold_paragraph(report, data, info.no_answer_margin)
    alone_never = gold_paragraph([q for q in report if not q.unanswerable], data, NEVER)

    seed_rows: list[tuple[str, dict[str, float]]] = []
    seed_failures: list[str] = []
    from rag.errors import CorpusMissingError
    from rag.eval.datasets import load_jsonl

    try:
        seed = load_jsonl(ROOT / "eval_questions" / "seed.jsonl")
        seed_index = Index.build(seed.corpus, CACHE / "seed-index", settings=Settings())
        seed_asked = ask_all(seed_index, seed.questions)
        seed_rows.append((f"seed article, {len(seed_asked)} questions, shipped rule", metrics(seed_asked, shipped)))
        for a in seed_asked:
            r = at_margin(a, shipped)
            ok = (not r.found) if a.question.unanswerable else good(a.question, r)
            if not ok:
                seed_failures.append(f"- {a.question.id} \"{a.question.question}\": "
                                     f"{'declined' if not r.found else repr(r.span)} "
                                     f"(confidence {a.answer.confidence:.2f})")
    except CorpusMissingError:
        pass

    latency_lines = []
    if args.latency:
        sample = report[:: max(1, len(report) // args.latency)][:args.latency]
        index.ask(sample[0].question)  # the models load outside the timing
        timings = []
        for q in sample:
            t0 = time.perf_counter()
            index.ask(q.question, k=5)
            timings.append((time.perf_counter() - t0) * 1000)
        latency_lines = [f"- `Index.ask` (k=5) over {len(sample)} report questions, models loaded: "
                         f"p50 {percentile(timings, 50):.0f} ms, p95 {percentile(timings, 95):.0f} ms"]
    checked = invalid = 0
    for a in asked:
        for quote in a.answer.citations:
            checked += 1
            text = index.page_text(quote.source, quote.page) or ""
            invalid += text[quote.start:quote.end] != quote.text

    n_un = sum(q.unanswerable for q in report)
    lines = [
        "# The reader on SQuAD 2.0",
        "",
        f"- command: `{command(__spec__.name, argv).strip()}`",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- model: `{info.path.name}` (sha256 {info.sha256[:12]}…), abstention rule (similarity weight "
        f"{info.similarity_weight:g}, threshold {shipped:.2f}; margin alone {info.no_answer_margin:.2f}) chosen by "
        "`python -m train.reader --calibrate` on SQuAD 2.0 articles outside squad2-dev (nothing here was tuned on)",
        f"- data: {SQUAD.name}: {len(question_set.corpus)} articles indexed together ({len(index)} chunks); "
        f"figures on the {len(report)} questions of the four articles not in {', '.join(EARLIER_CALIBRATION)} "
        f"({len(report) - n_un} answerable, {n_un} unanswerable)",
        "- EM and F1 (SQuAD's normalisation) over the answerable questions on the answer text with the citation "
        "marks removed (an abstention scores 0); `answer_contains`: a gold answer inside the answer text; "
        "`answer_or_first_quote_contains`: in the answer or its first quote; abstention precision: share of the "
        "declines that were right, recall: share of the unanswerable questions declined.",
        "",
        "## End to end (top 5 passages of the whole index)",
        "",
        *table(rows + seed_rows),
        "",
        *(["Seed questions missed:", "", *seed_failures, ""] if seed_failures else []),
        "## The reader alone (gold paragraph given)",
        "",
        "| variant | exact_match | f1 | abstention_precision | abstention_recall |",
        "|---|---:|---:|---:|---:|",
        f"| reader, margin {info.no_answer_margin:.2f} | {alone['exact_match']:.3f} | {alone['f1']:.3f} | "
        f"{alone['abstention_precision']:.3f} | {alone['abstention_recall']:.3f} |",
        f"| reader, answerable questions only, never abstain | {alone_never['exact_match']:.3f} | "
        f"{alone_never['f1']:.3f} | – | – |",
        "| anchor: published 12-layer MiniLM SQuAD 2.0 reader (full dev set) | 0.762 | 0.795 | – | – |",
        "",
        "## Reranking the passages by the reader's margin",
        "",
        "| order of the top 5 | gold passage first | gold passage in the top 5 |",
        "|---|---:|---:|",
        *rerank_rows(asked),
        "",
        "## Latency and quote checks",
        "",
        *latency_lines,
        f"- quotes returned: {checked} checked against their page text, {invalid} not verbatim",
        f"- run time: {time.perf_counter() - started:.0f} s",
        "",
    ]
    print("\n".join(lines))
    write("squad_answer", lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

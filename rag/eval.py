"""Running a question set through an Index: each question's hits, answer and quotes, scored with
``rag.metrics``, aggregated into an ``EvalResult`` with its Markdown report and failure table.

Unanswerable questions are left out of retrieval metrics and scored on abstention instead.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .datasets import EvalQuestion, QuestionSet
from .errors import RagError
from .index import Index
from .metrics import (
    CUTOFFS,
    contains_answer,
    document_mode,
    exact_match,
    f1_score,
    metric_help,
    percentile,
    retrieval_scores,
)
from .types import Answer, Hit, Quote

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each question."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class QuestionResult:
    """How one question went: its hits, what was relevant, the answer and why it failed (if it did)."""

    question: EvalQuestion
    hits: tuple[Hit, ...]
    judged: bool
    """Whether the question has retrieval judgements (answerable and with something to match)."""
    relevant_ranks: tuple[int, ...] = ()
    """1-based ranks of relevant results (documents or passages, see ``rag.metrics``)."""
    ranked: tuple[str, ...] = ()
    """File names in rank order (distinct documents in document mode, passages' files otherwise)."""
    scores: dict[str, float] = field(default_factory=dict)
    """Per-question metric values (hit@c, recall@c, mrr@10, ndcg@10, exact_match, f1, ...)."""
    answer: Answer | None = None
    invalid_quotes: tuple[Quote, ...] = ()
    search_seconds: float = 0.0
    answer_seconds: float | None = None
    problems: tuple[str, ...] = ()
    """Why this question failed, in words; empty when it passed."""

    @property
    def failed(self) -> bool:
        return bool(self.problems)


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one run of a question set, and every question's result.

    Example:
        >>> # result = evaluate(Index.open("index/"), load_question_set("eval_questions/docs.jsonl"))
        >>> # result.metrics["hit@5"], [r.question.question for r in result.failures()]
    """

    set_name: str
    description: str
    index_folder: str
    k: int
    fusion: str
    settings: dict[str, Any]
    metrics: dict[str, float]
    counts: dict[str, int]
    questions: tuple[QuestionResult, ...]
    seconds: float
    started: str
    notes: tuple[str, ...] = ()
    """What was not measured and why, for the reader."""

    def failures(self) -> list[QuestionResult]:
        return [r for r in self.questions if r.failed]

    def to_dict(self) -> dict[str, Any]:
        """Metrics, counts and failures as plain JSON values."""
        return {
            "set": self.set_name, "description": self.description, "index": self.index_folder, "k": self.k,
            "fusion": self.fusion, "started": self.started, "seconds": round(self.seconds, 3),
            "metrics": {name: round(value, 4) for name, value in self.metrics.items()},
            "counts": self.counts, "notes": list(self.notes),
            "failures": [failure_row(r) for r in self.failures()],
        }

    def to_markdown(self, max_failures: int = 200) -> str:
        """The report: what was run, the metrics with what each measures, and a failures table."""
        s = self.settings
        lines = [
            f"# rag eval: {self.set_name}", "",
            self.description or "", "",
            f"- questions: {self.counts['questions']} ({self.counts['answerable']} answerable, "
            f"{self.counts['unanswerable']} unanswerable; {self.counts['judged']} with retrieval judgements)",
            f"- index: `{self.index_folder}`",
            f"- retrieval: fusion `{self.fusion}`, k {self.k}, embedding {s.get('embed_model')} "
            f"({s.get('embed_backend')}), chunks of {s.get('chunk_tokens')} tokens, overlap {s.get('chunk_overlap')}",
            f"- run: {self.started}, {self.seconds:.1f} s",
            *[f"- note: {note}" for note in self.notes], "",
            "## Metrics", "", "| metric | value | what it measures |", "| --- | ---: | --- |",
        ]
        for name, value in self.metrics.items():
            shown = f"{value:.1f}" if name.endswith("_ms") else f"{value:.3f}"
            lines.append(f"| {name} | {shown} | {metric_help(name)} |")
        failures = self.failures()
        lines += ["", f"## Failures ({len(failures)} of {self.counts['questions']} questions)", ""]
        if not failures:
            lines.append("Every question passed.")
        else:
            lines += ["| id | question | why | expected | got | first quote | file, page |",
                      "| --- | --- | --- | --- | --- | --- | --- |"]
            for r in failures[:max_failures]:
                row = failure_row(r)
                lines.append("| " + " | ".join(table_cell(v) for v in (
                    row["id"], row["question"], "; ".join(row["why"]), row["expected"], row["got"],
                    row["first_quote"], row["where"])) + " |")
            if len(failures) > max_failures:
                lines.append(f"\n{len(failures) - max_failures} more failures are not shown.")
        return "\n".join(lines) + "\n"


def _expected(q: EvalQuestion) -> str:
    if q.unanswerable:
        return "(not in the documents)"
    if q.answers:
        return " / ".join(q.answers[:3])
    names = sorted(q.relevance, key=lambda n: -q.relevance[n]) if q.relevance else list(q.sources)
    where = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
    return where + (f" p. {', '.join(map(str, q.pages))}" if q.pages else "")


def failure_row(r: QuestionResult) -> dict[str, Any]:
    """A failed question as the report shows it: why, what was expected, what came back, the first quote."""
    answer = r.answer
    quote: Quote | None = None
    if answer is not None and answer.citations:
        quote = answer.citations[0]
    elif r.hits:
        quote = r.hits[0].quote
    if answer is not None:
        got = (answer.span or answer.text) if answer.found else "(abstained)"
    elif r.question.relevance:
        got = ", ".join(r.ranked[:3]) or "(nothing retrieved)"
    else:
        got = ", ".join(dict.fromkeys(f"{h.name} p. {h.page}" for h in r.hits[:3])) or "(nothing retrieved)"
    return {
        "id": r.question.id, "question": r.question.question, "why": list(r.problems),
        "expected": _expected(r.question), "got": got,
        "first_quote": quote.text if quote else "", "where": f"{quote.name}, p. {quote.page}" if quote else "",
        "first_relevant_rank": r.relevant_ranks[0] if r.relevant_ranks else None,
    }


def table_cell(value: Any, limit: int = 160) -> str:
    """``value`` on one line of at most ``limit`` characters, safe in a Markdown table cell."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text.replace("|", "\\|")


# --------------------------------------------------------------------------------------------
# Running a set


def answers_available() -> bool:
    """Whether the answerer module is installed (answer metrics need it)."""
    return importlib.util.find_spec("rag.answer") is not None


def evaluate(index: Index, question_set: QuestionSet, k: int = 10, *, fusion: str | None = None,
             depth: int | None = None, answers: bool | None = None, limit: int | None = None,
             progress: Progress | None = None) -> EvalResult:
    """Run every question of a set against an index and score it.

    Args:
        index: an index holding the set's corpus.
        question_set: from ``load_question_set`` (or ``load_beir``, ``load_squad``, ``load_jsonl``).
        k: the cutoff for "retrieved" (hit@k, recall@k and the failure table).
        fusion: per-query override of ``settings.fusion`` ("blend", "rrf", "dense", "bm25").
        depth: also report recall@depth (fetches that many documents or passages per question).
        answers: run ``index.ask`` and score answers; ``None`` does so when the set has answer
            strings or unanswerable questions and the answerer is installed.
        limit: only the first ``limit`` questions.
        progress: called as ``progress(done, total)`` after each question.

    Example:
        >>> result = evaluate(Index.open("index/"), load_question_set("eval_questions/docs.jsonl"), k=5)
        >>> result.metrics["hit@5"], [r.question.id for r in result.failures()]
    """
    if k < 1:
        raise RagError(f"k must be greater than 0. Currently, it is {k}")
    questions = question_set.questions[:limit] if limit is not None else question_set.questions
    notes = []
    if answers is None:
        answers = any(q.answers or q.unanswerable for q in questions)
        if answers and not answers_available():
            answers = False
            notes.append("answer metrics not measured: the answerer (rag.answer) is not installed")
    elif answers and not answers_available():
        raise RagError("answer metrics need the answerer (rag/answer.py), which is not installed")
    overrides: dict[str, Any] = {"fusion": fusion} if fusion else {}
    fusion_used = fusion or index.settings.fusion
    started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    started = time.perf_counter()
    index.search(questions[0].question if questions else "warm up", 1, **overrides)  # load the model untimed
    if answers and questions:
        index.ask(questions[0].question, **overrides)
    pages: dict[tuple[str, int], str | None] = {}
    results = []
    for done, q in enumerate(questions, start=1):
        results.append(_run_question(index, q, k, depth, answers, overrides, pages))
        if progress is not None:
            progress(done, len(questions))
    metrics, counts = _aggregate(results, k, depth, answers)
    if any(r.question.history for r in results):
        # Multi-turn sets: first turns and follow-ups reported apart as well.
        for label, part in (("first", [r for r in results if not r.question.history]),
                            ("followup", [r for r in results if r.question.history])):
            if part:
                sub, sub_counts = _aggregate(part, k, depth, answers)
                metrics.update({f"{label}/{name}": value for name, value in sub.items()
                                if not name.endswith("_ms")})
                counts[f"{label}_questions"] = sub_counts["questions"]
    return EvalResult(set_name=question_set.name, description=question_set.description,
                      index_folder=str(index.folder), k=k, fusion=fusion_used, settings=index.settings.to_dict(),
                      metrics=metrics, counts=counts, questions=tuple(results),
                      seconds=time.perf_counter() - started, started=started_at, notes=tuple(notes))


def _judged(q: EvalQuestion) -> bool:
    return not q.unanswerable and bool(q.relevance or q.answers or q.sources or q.spans or q.pages)


def _search(index: Index, q: EvalQuestion, units: int, overrides: dict[str, Any]) -> list[Hit]:
    """Hits enough to rank ``units`` documents (document mode) or ``units`` passages."""
    if q.history:
        return index.search(q.question, units, history=q.messages(), **overrides)
    if not document_mode(q):
        return index.search(q.question, units, **overrides)
    # Documents have one or a few passages: ask for twice as many, more if they are long.
    want = units * 2
    while True:
        hits = index.search(q.question, want, **overrides)
        if len({h.source for h in hits}) >= units or len(hits) < want or want >= len(index):
            return hits
        want *= 2


def invalid_quotes(index: Index, quotes: Sequence[Quote], pages: dict[tuple[str, int], str | None] | None = None
                   ) -> tuple[Quote, ...]:
    """The quotes that are not verbatim in their source: ``page_text[start:end] != text``.

    ``pages`` caches page texts between calls.

    Example:
        >>> hits = index.search("Who called for UN visits?")
        >>> invalid_quotes(index, [h.quote for h in hits])
        ()
    """
    pages = {} if pages is None else pages
    invalid = []
    for quote in quotes:
        key = (quote.source, quote.page)
        if key not in pages:
            pages[key] = index.page_text(*key)
        text = pages[key]
        if text is None or text[quote.start:quote.end] != quote.text or not quote.text:
            invalid.append(quote)
    return tuple(invalid)


def _run_question(index: Index, q: EvalQuestion, k: int, depth: int | None, answers: bool,
                  overrides: dict[str, Any], pages: dict[tuple[str, int], str | None]) -> QuestionResult:
    units = max(k, 10)
    t0 = time.perf_counter()
    hits = _search(index, q, units, overrides)
    search_seconds = time.perf_counter() - t0
    judged = _judged(q)
    deep = _search(index, q, depth, overrides) if judged and depth and depth > units else None
    scores: dict[str, float] = {}
    relevant: tuple[int, ...] = ()
    ranked = tuple(Path(h.source).name for h in hits)
    problems: list[str] = []
    if judged:
        scores, relevant, ranked = retrieval_scores(q, hits, deep, k, depth)
        if not any(r <= k for r in relevant):
            problems.append(f"not retrieved in the top {k}" + (f" (first at rank {relevant[0]})" if relevant else ""))
    quotes: list[Quote] = [h.quote for h in hits]
    answer = None
    answer_seconds = None
    if answers:
        t0 = time.perf_counter()
        answer = index.ask(q.question, history=q.messages() or None, **overrides)
        answer_seconds = time.perf_counter() - t0
        quotes += answer.citations
        if q.unanswerable:
            if answer.found:
                problems.append("answered a question the documents do not answer")
        elif q.answers:
            predicted = (answer.span or answer.text) if answer.found else ""
            scores["exact_match"] = exact_match(predicted, q.answers) if answer.found else 0.0
            scores["f1"] = f1_score(predicted, q.answers) if answer.found else 0.0
            in_quote = answer.found and any(contains_answer(c.text, q.answers) for c in answer.citations)
            scores["answer_in_quote"] = float(in_quote)
            if not answer.found:
                problems.append("abstained although the documents answer it")
            elif not in_quote and not contains_answer(answer.text, q.answers):
                problems.append("wrong answer: no expected answer in the answer or its quotes")
    invalid = invalid_quotes(index, quotes, pages)
    if invalid:
        problems.append(f"{len(invalid)} quote(s) not verbatim in their source")
    return QuestionResult(question=q, hits=tuple(hits), judged=judged, relevant_ranks=relevant, ranked=ranked,
                          scores=scores, answer=answer, invalid_quotes=invalid, search_seconds=search_seconds,
                          answer_seconds=answer_seconds, problems=tuple(problems))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _aggregate(results: Sequence[QuestionResult], k: int, depth: int | None, answers: bool
               ) -> tuple[dict[str, float], dict[str, int]]:
    metrics: dict[str, float] = {}
    judged = [r for r in results if r.judged]
    if judged:
        names = [f"hit@{c}" for c in sorted(set(CUTOFFS) | {k})]
        names += [f"recall@{c}" for c in sorted({5, 10, k} | ({depth} if depth else set()))]
        for name in names + ["mrr@10", "ndcg@10"]:
            metrics[name] = _mean([r.scores[name] for r in judged])
    answerable = [r for r in results if not r.question.unanswerable]
    unanswerable = [r for r in results if r.question.unanswerable]
    abstained = [r for r in results if r.answer is not None and not r.answer.found]
    if answers:
        scored = [r for r in answerable if "f1" in r.scores]
        if scored:
            for name in ("exact_match", "f1", "answer_in_quote"):
                metrics[name] = _mean([r.scores[name] for r in scored])
        right = sum(1 for r in abstained if r.question.unanswerable)
        if abstained:
            metrics["abstention_precision"] = right / len(abstained)
        if unanswerable:
            metrics["abstention_recall"] = right / len(unanswerable)
    checked = sum(len(r.hits) + (len(r.answer.citations) if r.answer else 0) for r in results)
    invalid = sum(len(r.invalid_quotes) for r in results)
    if checked:
        metrics["citation_validity"] = (checked - invalid) / checked
    if results:
        searches = [r.search_seconds * 1000 for r in results]
        metrics["search_p50_ms"] = percentile(searches, 50)
        metrics["search_p95_ms"] = percentile(searches, 95)
    asked = [r.answer_seconds * 1000 for r in results if r.answer_seconds is not None]
    if asked:
        metrics["answer_p50_ms"] = percentile(asked, 50)
        metrics["answer_p95_ms"] = percentile(asked, 95)
    counts = {"questions": len(results), "answerable": len(answerable), "unanswerable": len(unanswerable),
              "judged": len(judged), "abstained": len(abstained), "quotes_checked": checked,
              "quotes_invalid": invalid, "failures": sum(1 for r in results if r.failed)}
    return metrics, counts

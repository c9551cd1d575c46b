"""Running a question set through an Index: each question's hits, answer and quotes, scored with
``rag.eval.metrics``, aggregated into an ``EvalResult`` with its Markdown report and failure table.

Unanswerable questions are left out of retrieval metrics and scored on abstention instead.
Questions with a long ``reference`` answer have their answer text scored against it (token F1,
ROUGE-L), beside two answers anyone could make from the same search (the first sentence of the
answer's top passage, and that whole passage) and beside the set's own ``responses`` (MTRAG's
GPT-4o and Llama); these scores are broken down by the answer's kind, the expected kind and the
set's question types (``EvalResult.breakdown``).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.eval.datasets import EvalQuestion, QuestionSet
from rag.eval.metrics import (
    CUTOFFS,
    answer_words,
    contains_answer,
    document_mode,
    exact_match,
    f1_score,
    metric_help,
    percentile,
    retrieval_scores,
    rouge_l,
)
from rag.index import Index
from rag.limits import check_k
from rag.text import split_sentences
from rag.types import Answer, Hit, Quote
from rag.verify import verify_quotes

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
    """1-based ranks of relevant results (documents or passages, see ``rag.eval.metrics``)."""
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
class Breakdown:
    """Long-answer scores of one group of questions: those whose answer had one kind (``by`` =
    "kind"), those labelled with one expected kind ("expected kind"), or those of one of the set's
    own question types ("question type"; a question with several types counts in each).

    ``scores`` holds ``answer_f1``, ``answer_rouge_l``, the same for each baseline and response
    (``top_passage_f1``, ``gpt-4o_f1``, ...), averaged over the group's questions with a reference,
    and ``kind_accuracy`` over its labelled questions.

    Example:
        >>> # [(b.name, b.scores["answer_f1"]) for b in result.breakdown if b.by == "kind"]
    """

    by: str
    name: str
    questions: int
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "name": self.name, "questions": self.questions,
                "scores": {k: round(v, 4) for k, v in self.scores.items()}}


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
    breakdown: tuple[Breakdown, ...] = ()
    """Answer-text scores by kind and question type (empty when no question has a reference)."""

    def systems(self) -> list[str]:
        """Whose answer texts were scored, ours ("answer") first: ``<system>_f1`` is in ``metrics``."""
        return [name[:-3] for name in self.metrics if name.endswith("_f1") and "/" not in name]

    def breakdown_table(self) -> list[str]:
        """The breakdown as Markdown table lines (F1 / ROUGE-L per system, kind accuracy); [] when none."""
        if not self.breakdown:
            return []
        systems = self.systems()
        lines = ["| by | group | questions | " + " | ".join(f"{_system_label(n)} F1 / ROUGE-L" for n in systems)
                 + " | kind right |", "| --- | --- | ---: |" + " ---: |" * (len(systems) + 1)]
        overall = Breakdown("all", "all", self.counts.get("referenced", 0), self.metrics)
        for b in (overall, *self.breakdown):
            cells = [f"{b.scores[f'{n}_f1']:.3f} / {b.scores[f'{n}_rouge_l']:.3f}" if f"{n}_f1" in b.scores
                     else "" for n in systems]
            right = f"{b.scores['kind_accuracy']:.3f}" if "kind_accuracy" in b.scores else ""
            lines.append(f"| {b.by} | {b.name} | {b.questions} | " + " | ".join(cells) + f" | {right} |")
        return lines

    def failures(self) -> list[QuestionResult]:
        return [r for r in self.questions if r.failed]

    def to_dict(self) -> dict[str, Any]:
        """Metrics, counts and failures as plain JSON values."""
        return {
            "set": self.set_name, "description": self.description, "index": self.index_folder, "k": self.k,
            "fusion": self.fusion, "started": self.started, "seconds": round(self.seconds, 3),
            "metrics": {name: round(value, 4) for name, value in self.metrics.items()},
            "counts": self.counts, "notes": list(self.notes),
            "breakdown": [b.to_dict() for b in self.breakdown],
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
        if self.breakdown:
            lines += ["", "## Answer text against the reference answers", "",
                      "Token F1 and ROUGE-L of the answer text (citation marks and file labels left out; an "
                      "abstention scores 0) against the reference, beside the first sentence and the whole of the "
                      "answer's top passage" + (" and the set's own responses" if any(
                          r.question.responses for r in self.questions) else "")
                      + "; \"kind\" groups by the kind of the answer, \"expected kind\" by the set's label.", "",
                      *self.breakdown_table()]
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


def _system_label(name: str) -> str:
    return {"answer": "ours", "first_sentence": "first sentence", "top_passage": "top passage"}.get(name, name)


def _expected(q: EvalQuestion) -> str:
    if q.unanswerable:
        return "(not in the documents)"
    if q.answers:
        return " / ".join(q.answers[:3])
    if q.reference:
        return q.reference[0]
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
    return importlib.util.find_spec("rag.answer.extractive") is not None


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
    k = check_k(k)
    questions = question_set.questions[:limit] if limit is not None else question_set.questions
    notes = []
    if answers is None:
        answers = any(q.answers or q.unanswerable or q.reference for q in questions)
        if answers and not answers_available():
            answers = False
            notes.append("answer metrics not measured: the answerer (rag.answer.extractive) is not installed")
    elif answers and not answers_available():
        raise RagError("answer metrics need the answerer (rag/answer/extractive.py), which is not installed")
    overrides: dict[str, Any] = {"fusion": fusion} if fusion else {}
    fusion_used = fusion or index.settings.fusion
    started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    started = time.perf_counter()
    index.search(questions[0].question if questions else "warm up", 1, **overrides)  # load the model untimed
    if answers and questions:
        index.ask(questions[0].question, **overrides)
    results = []
    for done, q in enumerate(questions, start=1):
        results.append(_run_question(index, q, k, depth, answers, overrides))
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
                      seconds=time.perf_counter() - started, started=started_at, notes=tuple(notes),
                      breakdown=breakdown(results))


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


def _run_question(index: Index, q: EvalQuestion, k: int, depth: int | None, answers: bool,
                  overrides: dict[str, Any]) -> QuestionResult:
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
        if q.reference and not q.unanswerable:
            scores.update(long_answer_scores(q, answer))
            if not answer.found and not q.answers:
                problems.append("abstained although the documents answer it")
    invalid = tuple(verify_quotes(quotes, index)[1])  # the check every answerer's quotes pass
    if invalid:
        problems.append(f"{len(invalid)} quote(s) not verbatim in their source")
    return QuestionResult(question=q, hits=tuple(hits), judged=judged, relevant_ranks=relevant, ranked=ranked,
                          scores=scores, answer=answer, invalid_quotes=invalid, search_seconds=search_seconds,
                          answer_seconds=answer_seconds, problems=tuple(problems))


def long_answer_scores(q: EvalQuestion, answer: Answer) -> dict[str, float]:
    """Token F1 and ROUGE-L against ``q.reference`` of our answer text (an abstention is empty), of
    what anyone could show from the same search (the first sentence of the answer's top passage,
    ``Answer.hits[0]``, and that whole passage), and of each of the set's responses."""
    top = answer.hits[0].chunk.text if answer.hits else ""
    sentences = split_sentences(top)
    texts = {"answer": answer_words(answer.text) if answer.found else "",
             "first_sentence": top[sentences[0][0]:sentences[0][1]] if sentences else top,
             "top_passage": top, **q.responses}
    scores = {}
    for name, text in texts.items():
        scores[f"{name}_f1"] = f1_score(text, q.reference)
        scores[f"{name}_rouge_l"] = rouge_l(text, q.reference)
    scores["answer_words"] = len(texts["answer"].split())
    return scores


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _long_answer_metrics(results: Sequence[QuestionResult]) -> dict[str, float]:
    """Mean answer-text scores over the questions with a reference; kind accuracy over the labelled."""
    metrics: dict[str, float] = {}
    scored = [r for r in results if "answer_f1" in r.scores]
    if scored:
        names = dict.fromkeys(n for r in scored for n in r.scores if n.endswith(("_f1", "_rouge_l")) and n != "f1")
        for name in names:
            values = [r.scores[name] for r in scored if name in r.scores]
            metrics[name] = _mean(values)
        words = [r.scores["answer_words"] for r in scored if r.answer is not None and r.answer.found]
        if words:
            metrics["answer_words_p50"] = percentile(words, 50)
    labelled = [r for r in results if r.question.kind and r.answer is not None]
    if labelled:
        metrics["kind_accuracy"] = _mean([float(r.answer.kind == r.question.kind) for r in labelled
                                          if r.answer is not None])
    return metrics


def breakdown(results: Sequence[QuestionResult]) -> tuple[Breakdown, ...]:
    """Answer-text scores and kind accuracy by the answer's kind, the expected kind and the set's
    question types; empty when no question has a reference answer."""
    if not any("answer_f1" in r.scores for r in results):
        return ()
    groups: dict[tuple[str, str], list[QuestionResult]] = {}
    for r in results:
        if r.answer is None:
            continue
        if "answer_f1" in r.scores:
            groups.setdefault(("kind", r.answer.kind), []).append(r)
        if r.question.kind:
            groups.setdefault(("expected kind", r.question.kind), []).append(r)
        for label in r.question.labels:
            groups.setdefault(("question type", label), []).append(r)
    order = {"kind": 0, "expected kind": 1, "question type": 2}
    out = []
    for (by, name), members in sorted(groups.items(), key=lambda item: (order[item[0][0]], -len(item[1]),
                                                                        item[0][1])):
        scores = _long_answer_metrics(members)
        if by == "kind":
            scores.pop("kind_accuracy", None)  # grouped by the answer's kind, its accuracy says nothing
        out.append(Breakdown(by=by, name=name, questions=len(members), scores=scores))
    return tuple(out)


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
        metrics.update(_long_answer_metrics(results))
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
              "quotes_invalid": invalid, "failures": sum(1 for r in results if r.failed),
              "referenced": sum(1 for r in results if "answer_f1" in r.scores)}
    return metrics, counts

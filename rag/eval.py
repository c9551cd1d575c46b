"""Question sets -> retrieval and answer metrics, a per-question failure table, and ``rag eval``.

Retrieval is judged in one of two ways, per question:

- **documents** (BEIR qrels, or a ``relevance`` map): the ranked list is the list of distinct
  source files in hit order, so several passages of one document count once, at their best rank;
  gains are the graded relevance (nDCG with linear gains, as trec_eval computes it).
- **passages** (answer strings, a source, a page, SQuAD spans): a passage is relevant when it
  comes from an expected source and page (when given) and holds an expected answer (when given);
  the first relevant passage is the one relevant item for MRR and nDCG.

Unanswerable questions are left out of retrieval metrics and scored on abstention instead.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import re
import string
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .datasets import EvalQuestion, QuestionSet, load_question_set
from .errors import RagError
from .index import DEFAULT_FOLDER, Index
from .load import find_files
from .progress import StderrProgress
from .settings import BACKEND_FIELDS, INDEX_FIELDS, Settings
from .store import current_generation
from .types import Answer, Hit, Quote

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each question."""

CUTOFFS = (1, 3, 5, 10)
"""hit@c is reported at these cutoffs (and at k); recall@c at 5, 10 and k."""

METRIC_HELP = {
    "hit": "share of judged questions with a relevant result in the top {c}",
    "recall": "share of the relevant documents (or expected sources) found in the top {c}, averaged",
    "mrr@10": "mean of 1/rank of the first relevant result within the top 10 (0 when none)",
    "ndcg@10": "normalised discounted cumulative gain of the top 10 (graded where the set grades)",
    "exact_match": "share of answerable questions whose answer equals a gold answer (SQuAD normalisation)",
    "f1": "token F1 of the answer against the best gold answer, averaged over answerable questions",
    "answer_in_quote": "share of answerable questions with a gold answer inside one of the answer's quotes",
    "abstention_precision": "share of the abstentions that were on unanswerable questions",
    "abstention_recall": "share of the unanswerable questions on which it abstained",
    "citation_validity": "share of quotes (answers' citations and hits' quotes) found verbatim at their offsets",
    "search_p50_ms": "median time of one search",
    "search_p95_ms": "95th percentile time of one search",
    "answer_p50_ms": "median time of one answer (retrieval included)",
    "answer_p95_ms": "95th percentile time of one answer (retrieval included)",
}


# --------------------------------------------------------------------------------------------
# Scoring helpers (pure functions)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces.

    Example:
        >>> normalize_answer("The  Eiffel Tower!")
        'eiffel tower'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if ch in _PUNCTUATION else ch for ch in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = set(string.punctuation) | {"\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014"}


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the prediction equals any gold answer after normalisation."""
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1 against the best-matching gold answer.

    Example:
        >>> round(f1_score("Maryam Rajavi", ["Mrs. Maryam Rajavi"]), 2)
        0.8
    """
    best = 0.0
    predicted = normalize_answer(prediction).split()
    for gold in golds:
        wanted = normalize_answer(gold).split()
        common = sum((Counter(predicted) & Counter(wanted)).values())
        if common:
            precision, recall = common / len(predicted), common / len(wanted)
            best = max(best, 2 * precision * recall / (precision + recall))
        elif not predicted and not wanted:
            best = 1.0
    return best


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    """Whether any gold answer appears in ``text`` as whole words, after normalisation."""
    padded = f" {normalize_answer(text)} "
    return any(normalize_answer(g) and f" {normalize_answer(g)} " in padded for g in golds)


def ndcg(gains: Sequence[float], ideal: Sequence[float], cutoff: int = 10) -> float:
    """nDCG@cutoff with linear gains (trec_eval's definition).

    Example:
        >>> round(ndcg([0, 1], [1]), 3)
        0.631
    """
    def dcg(values: Sequence[float]) -> float:
        return sum(g / math.log2(rank + 1) for rank, g in enumerate(values[:cutoff], start=1))

    best = dcg(sorted(ideal, reverse=True))
    return dcg(gains) / best if best > 0 else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation, as numpy computes it by default."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def same_document(source: str, expected: str) -> bool:
    """Whether an indexed path is the expected document, named by file name or by a path ending."""
    expected = expected.replace("\\", "/").lstrip("./") if "/" in expected else expected
    if "/" not in expected:
        return Path(source).name == expected
    return source == expected or source.endswith("/" + expected)


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
    """1-based ranks of relevant results (documents or passages, see the module docstring)."""
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
            "failures": [_failure_dict(r) for r in self.failures()],
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
                row = _failure_dict(r)
                lines.append("| " + " | ".join(_cell(v) for v in (
                    row["id"], row["question"], "; ".join(row["why"]), row["expected"], row["got"],
                    row["first_quote"], row["where"])) + " |")
            if len(failures) > max_failures:
                lines.append(f"\n{len(failures) - max_failures} more failures are not shown.")
        return "\n".join(lines) + "\n"


def metric_help(name: str) -> str:
    base, _, cutoff = name.partition("@")
    if base in ("hit", "recall") and cutoff:
        return METRIC_HELP[base].format(c=cutoff)
    return METRIC_HELP.get(name, "")


def _expected(q: EvalQuestion) -> str:
    if q.unanswerable:
        return "(not in the documents)"
    if q.answers:
        return " / ".join(q.answers[:3])
    names = sorted(q.relevance, key=lambda n: -q.relevance[n]) if q.relevance else list(q.sources)
    where = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
    return where + (f" p. {', '.join(map(str, q.pages))}" if q.pages else "")


def _failure_dict(r: QuestionResult) -> dict[str, Any]:
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


def _cell(value: Any, limit: int = 160) -> str:
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


def _document_mode(q: EvalQuestion) -> bool:
    return bool(q.relevance)


def _judged(q: EvalQuestion) -> bool:
    return not q.unanswerable and bool(q.relevance or q.answers or q.sources or q.spans or q.pages)


def _search(index: Index, q: EvalQuestion, units: int, overrides: dict[str, Any]) -> list[Hit]:
    """Hits enough to rank ``units`` documents (document mode) or ``units`` passages."""
    if q.history:
        return index.search(q.question, units, history=q.messages(), **overrides)
    if not _document_mode(q):
        return index.search(q.question, units, **overrides)
    # Documents have one or a few passages: ask for twice as many, more if they are long.
    want = units * 2
    while True:
        hits = index.search(q.question, want, **overrides)
        if len({h.source for h in hits}) >= units or len(hits) < want or want >= len(index):
            return hits
        want *= 2


LONG_SPAN = 80
"""Characters from which a gold span is a grounding passage rather than an answer phrase."""


def _passage_relevant(q: EvalQuestion, hit: Hit) -> bool:
    if q.sources and not any(same_document(hit.source, s) for s in q.sources):
        return False
    if q.pages and hit.page not in q.pages:
        return False
    if q.spans:
        spans = [(s, a, b) for s, a, b in q.spans if same_document(hit.source, s)]
        if spans:
            # An answer phrase must be inside the passage; a grounding passage (doc2dial's are a
            # sentence or three) may run over a chunk boundary, so half of it is enough.
            return any(hit.chunk.start <= a and b <= hit.chunk.end
                       or b - a >= LONG_SPAN and min(b, hit.chunk.end) - max(a, hit.chunk.start) >= (b - a) / 2
                       for _, a, b in spans)
    if q.answers:
        return contains_answer(hit.chunk.text, q.answers)
    return True


def _retrieval_scores(q: EvalQuestion, hits: Sequence[Hit], deep: Sequence[Hit] | None, k: int,
                      depth: int | None) -> tuple[dict[str, float], tuple[int, ...], tuple[str, ...]]:
    cutoffs = sorted(set(CUTOFFS) | {k})
    recall_cutoffs = sorted({5, 10, k} | ({depth} if depth else set()))
    scores: dict[str, float] = {}
    if _document_mode(q):
        ranked = tuple(dict.fromkeys(Path(h.source).name for h in hits))
        relevance = q.relevance

        def recall_at(names: Sequence[str], c: int) -> float:
            return len(set(names[:c]) & set(relevance)) / len(relevance)

        gains = [relevance.get(name, 0) for name in ranked]
        relevant = tuple(rank for rank, g in enumerate(gains, start=1) if g > 0)
        scores["ndcg@10"] = ndcg(gains, list(relevance.values()))
        deep_ranked = tuple(dict.fromkeys(Path(h.source).name for h in deep)) if deep is not None else ranked
        for c in recall_cutoffs:
            scores[f"recall@{c}"] = recall_at(deep_ranked if depth and c == depth else ranked, c)
    else:
        ranked = tuple(Path(h.source).name for h in hits)
        relevant_hits = [h for h in hits if _passage_relevant(q, h)]
        deep_hits = [h for h in deep if _passage_relevant(q, h)] if deep is not None else relevant_hits
        relevant = tuple(h.rank for h in relevant_hits)
        scores["ndcg@10"] = 1 / math.log2(relevant[0] + 1) if relevant and relevant[0] <= 10 else 0.0

        def passage_recall(found: Sequence[Hit], c: int) -> float:
            within = [h for h in found if h.rank <= c]
            if not q.sources:
                return float(bool(within))
            covered = [s for s in q.sources if any(same_document(h.source, s) for h in within)]
            return len(covered) / len(q.sources)

        for c in recall_cutoffs:
            scores[f"recall@{c}"] = passage_recall(deep_hits if depth and c == depth else relevant_hits, c)
    for c in cutoffs:
        scores[f"hit@{c}"] = float(any(r <= c for r in relevant))
    scores["mrr@10"] = 1 / relevant[0] if relevant and relevant[0] <= 10 else 0.0
    return scores, relevant, ranked


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
        scores, relevant, ranked = _retrieval_scores(q, hits, deep, k, depth)
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


# --------------------------------------------------------------------------------------------
# Finding or building the index a set runs against


def eval_cache_folder(question_set: QuestionSet, settings: Settings, base: Path | None = None) -> Path:
    """Where ``rag eval`` keeps the index of a set's corpus: one folder per corpus and index settings
    (the corpus by absolute path, so a set named from another folder finds the same index)."""
    # Every index-shaping setting by value, defaults included: the fingerprint leaves out the ones
    # at their defaults (so indexes built before they existed keep opening), but a cached index
    # must never hold chunks made another way.
    shaping = {name: getattr(settings, name) for name in (*INDEX_FIELDS, *BACKEND_FIELDS)}
    key = json.dumps([sorted(str(p.expanduser().resolve()) for p in question_set.corpus), settings.fingerprint(),
                      shaping], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", question_set.name)[:60]
    return (base or Path.home() / ".cache" / "rag" / "eval-index") / f"{name}-{digest}"


def index_for_set(question_set: QuestionSet, settings: Settings, folder: Path | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> tuple[Index, str]:
    """The index to run a set against, and a line saying which one and how it was got.

    An existing index in ``folder`` is used as it is. Otherwise the set's corpus is indexed into
    ``folder`` (or, without one, a cache folder keyed by the corpus and the index settings);
    ingestion is incremental, so a second run only checks the files.
    """
    if folder is not None and current_generation(folder.expanduser().resolve()) is not None:
        index = Index.open(folder, settings)
        where = f"index: {index.folder} (existing, {len(index)} chunks)"
        if question_set.corpus and all(p.exists() for p in question_set.corpus):
            files, _ = find_files(question_set.corpus, settings.glob)
            indexed = {d.source for d in index.documents()}
            absent = [f for f in files if str(f) not in indexed]
            if absent:
                where += (f"; warning: {len(absent)} of the set's {len(files)} files are not in it "
                          f"(e.g. {absent[0]}), so questions about them cannot be found")
        return index, where
    if not question_set.corpus:
        raise RagError(f"the set {question_set.name} names no corpus and {folder or DEFAULT_FOLDER} holds no index: "
                       "add a \"corpus\" header line or pass --index with an index of its documents")
    target = folder if folder is not None else eval_cache_folder(question_set, settings)
    index = Index.build(question_set.corpus, target, settings=settings, progress=progress)
    report = index.last_report
    summary = report.summary() if report is not None else ""
    return index, f"index: {index.folder} ({summary})"


# --------------------------------------------------------------------------------------------
# The command


def parse_thresholds(items: Sequence[str]) -> dict[str, float]:
    """``["ndcg@10=0.5", "f1=0.4"]`` -> ``{"ndcg@10": 0.5, "f1": 0.4}``; a bad item raises RagError."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip().lower()] = float(value)
        except ValueError:
            raise RagError(f"--fail-under takes METRIC=VALUE, e.g. ndcg@10=0.5, not {item!r}") from None
    return out


def below(result: EvalResult, thresholds: dict[str, float]) -> list[str]:
    """The thresholds a result misses, as readable lines; an unmeasured metric raises RagError."""
    missing = [name for name in thresholds if name not in result.metrics]
    if missing:
        raise RagError(f"--fail-under: {', '.join(missing)} not measured on this set; measured: "
                       f"{', '.join(result.metrics)}")
    return [f"{name} = {result.metrics[name]:.4f} is below {limit}"
            for name, limit in thresholds.items() if result.metrics[name] < limit]


def _explicit_index(args: argparse.Namespace) -> Path | None:
    """``--index`` when the user named one; the default folder is left alone (eval has its own cache)."""
    # The CLI says what its default is (it alone reads $RAG_INDEX); importing it here was a cycle.
    default = getattr(args, "default_index", DEFAULT_FOLDER)
    chosen = Path(args.index).expanduser().resolve()
    return None if chosen == Path(default).expanduser().resolve() else chosen


def run_cli(args: argparse.Namespace, settings: Settings) -> int:
    """``rag eval``: run a set, print the metrics (or JSON), write the report, check thresholds."""
    thresholds = parse_thresholds(args.fail_under or [])
    show_progress = not (args.no_progress or args.json)
    question_set = load_question_set(args.set)
    folder = _explicit_index(args)
    if folder is None and not question_set.corpus:
        folder = Path(args.index)
    progress = StderrProgress() if show_progress else None
    try:
        index, where = index_for_set(question_set, settings, folder, progress)
        if progress is not None:
            progress.close()
        print(where, file=sys.stderr)
        k = args.k if args.k is not None else 10
        stage = f"eval {question_set.name}"
        if progress is not None:
            progress.start(stage, "question")
        on_question = None if progress is None else (lambda done, total: progress(stage, done, total))
        result = evaluate(index, question_set, k=k, limit=args.limit, progress=on_question)
    finally:
        if progress is not None:
            progress.close()
    if args.report:
        Path(args.report).write_text(result.to_markdown(), encoding="utf-8")
    missed = below(result, thresholds)
    if args.json:
        out = result.to_dict()
        out["report"] = args.report
        out["below_threshold"] = missed
        print(json.dumps(out, ensure_ascii=False))
    else:
        _print_summary(result, args.report)
    for line in missed:
        print(f"rag eval: {line}", file=sys.stderr)
    return 1 if missed else 0


def _print_summary(result: EvalResult, report: str | None, shown: int = 10) -> None:
    c = result.counts
    print(f"{result.set_name}: {c['questions']} questions ({c['answerable']} answerable, {c['unanswerable']} "
          f"unanswerable), fusion {result.fusion}, k {result.k}, {result.seconds:.1f} s")
    for name, value in result.metrics.items():
        print(f"  {name:<22}{value:>10.1f}" if name.endswith("_ms") else f"  {name:<22}{value:>10.3f}")
    for note in result.notes:
        print(f"note: {note}")
    failures = result.failures()
    print(f"{len(failures)} of {c['questions']} questions failed" + (":" if failures else "."))
    for r in failures[:shown]:
        row = _failure_dict(r)
        print(f"  [{row['id']}] {_cell(row['question'], 90)}")
        print(f"      why: {'; '.join(row['why'])}")
        print(f"      expected: {_cell(row['expected'], 90)} | got: {_cell(row['got'], 90)}")
    if len(failures) > shown:
        print(f"  ... and {len(failures) - shown} more" + ("" if report else " (write them all with --report FILE.md)"))
    if report:
        print(f"report: {report}")

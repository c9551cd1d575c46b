"""Scoring, as pure functions: answers against gold answers, and one question's ranked hits
against its retrieval judgements (no index, no I/O; ``rag.eval.runner`` runs a set and aggregates).

Retrieval is judged in one of two ways, per question:

- **documents** (BEIR qrels, or a ``relevance`` map): the ranked list is the list of distinct
  source files in hit order, so several passages of one document count once, at their best rank;
  gains are the graded relevance (nDCG with linear gains, as trec_eval computes it).
- **passages** (answer strings, a source, a page, SQuAD spans): a passage is relevant when it
  comes from an expected source and page (when given) and holds an expected answer (when given);
  the first relevant passage is the one relevant item for MRR and nDCG.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rag.eval.datasets import EvalQuestion
from rag.types import Hit

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
    "answer_f1": "token F1 of the answer text (citation marks and labels left out) against the reference answer",
    "answer_rouge_l": "ROUGE-L F (longest common subsequence of words) of the answer text against the reference answer",
    "kind_accuracy": "share of the questions labelled with a kind whose answer has that kind",
    "answer_words_p50": "median length in words of the answer texts given (abstentions left out)",
    "abstention_precision": "share of the abstentions that were on unanswerable questions",
    "abstention_recall": "share of the unanswerable questions on which it abstained",
    "citation_validity": "share of quotes (answers' citations and hits' quotes) found verbatim at their offsets",
    "search_p50_ms": "median time of one search",
    "search_p95_ms": "95th percentile time of one search",
    "answer_p50_ms": "median time of one answer (retrieval included)",
    "answer_p95_ms": "95th percentile time of one answer (retrieval included)",
}


def metric_help(name: str) -> str:
    """What a metric measures, in words (``hit@3`` -> the ``hit`` line with its cutoff); "" when unknown."""
    base, _, cutoff = name.partition("@")
    if base in ("hit", "recall") and cutoff:
        return METRIC_HELP[base].format(c=cutoff)
    if name not in METRIC_HELP and name.endswith(("_f1", "_rouge_l")) and "/" not in name:
        system, measure = (name[:-3], "token F1") if name.endswith("_f1") else (name[:-8], "ROUGE-L F")
        whose = {"first_sentence": "the first sentence of the answer's top passage",
                 "top_passage": "the answer's whole top passage"}.get(system, f"the set's {system} response")
        return f"{measure} of {whose} against the reference answer"
    return METRIC_HELP.get(name, "")


# --------------------------------------------------------------------------------------------
# Answers and ranks


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


def answer_words(text: str) -> str:
    """An answer's text as plain words to score: citation marks ("[1]", "[2, 3]") and source labels
    ("In user-guide.md:", "In report.pdf, page 3:") left out, whitespace made single.

    Example:
        >>> answer_words("In user-guide.md: Run `make test` [1]. It takes **a minute** [2].")
        'Run `make test`. It takes **a minute**.'
    """
    text = _CITATION.sub("", text)
    text = _LABEL.sub(" ", text)
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))


_CITATION = re.compile(r"\s*\[\d+(?:\s*[,;-]\s*\d+)*\]")
_LABEL = re.compile(r"(?:^|(?<=\s))In [^\n:\[\]]{1,120}?\.[A-Za-z][A-Za-z0-9]{0,4}(?:,? (?:page|p\.) ?\d+)?:(?=\s|$)",
                    re.MULTILINE)
"""A source label ("In <file name>:", with a page for a PDF), as an answer names where its sentences are from."""


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """ROUGE-L F1 (the longest common subsequence of normalised words, precision and recall weighed
    equally, as the ``rouge-score`` package reports ``fmeasure``) against the best reference.

    Example:
        >>> round(rouge_l("the cat sat on the mat", ["the cat was on the mat"]), 3)
        0.75
    """
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for reference in references:
        wanted = normalize_answer(reference).split()
        if not predicted or not wanted:
            best = max(best, float(not predicted and not wanted))
            continue
        common = _lcs(predicted, wanted)
        if common:
            precision, recall = common / len(predicted), common / len(wanted)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, in O(len(a) * len(b)) time and O(len(b)) memory."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


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
# One question's retrieval, against its judgements


def document_mode(q: EvalQuestion) -> bool:
    """Whether the question is judged by documents (a relevance map) rather than by passages."""
    return bool(q.relevance)


LONG_SPAN = 80
"""Characters from which a gold span is a grounding passage rather than an answer phrase."""


def passage_relevant(q: EvalQuestion, hit: Hit) -> bool:
    """Whether a hit is a relevant passage for a question judged by passages (see the module docstring)."""
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


def retrieval_scores(q: EvalQuestion, hits: Sequence[Hit], deep: Sequence[Hit] | None, k: int,
                     depth: int | None) -> tuple[dict[str, float], tuple[int, ...], tuple[str, ...]]:
    """One question's hit@c, recall@c, mrr@10 and ndcg@10, the 1-based ranks of its relevant results,
    and the file names in rank order; ``deep`` (hits fetched to ``depth``, or None) gives recall@depth."""
    cutoffs = sorted(set(CUTOFFS) | {k})
    recall_cutoffs = sorted({5, 10, k} | ({depth} if depth else set()))
    scores: dict[str, float] = {}
    if document_mode(q):
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
        relevant_hits = [h for h in hits if passage_relevant(q, h)]
        deep_hits = [h for h in deep if passage_relevant(q, h)] if deep is not None else relevant_hits
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

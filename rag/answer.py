"""Hits -> ``Answer``: a short answer with a verified verbatim quote, or an honest "not found".

The default answerer is extractive and offline: the trained reader (``rag.reader``) reads every
retrieved passage and proposes its best span with a margin over "no answer"; the span with the
widest margin, less a little for each place its passage stands below the top hit
(``RANK_PENALTY``), is the answer, widened to whole words and numbers, and the sentence around
it is the quote. Whether to answer at all rests on the widest margin plus a calibrated weight
times the best passage's dense similarity to the question (``Abstention``): the small reader's
margin alone misses many questions that no passage comes close to (on the calibration articles,
each scored with the weight and threshold chosen on the other three, shipped model: overall F1
0.444 -> 0.463, decline precision 0.710 -> 0.765, recall 0.213 -> 0.256). Below the threshold (``reader.json``,
fitted by ``train/reader.py --calibrate`` on SQuAD 2.0 articles the benchmarks never report on)
the answer is "Not found in the indexed documents.", with the best guess in a note and the
closest passages in ``hits``. ``hits`` are in the order the answer weighed them, the answer's
passage first (``reader_order``).

Every quote, whichever answerer made it, goes through ``rag.verify.verify_quotes`` before it is
returned: a quote that is not exactly its page's text at its offsets is dropped, never shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .chunk import heading_lines, split_sentences, table_header
from .reader import Reader, Span, load_reader, whole_span
from .text import terms
from .settings import Settings
from .types import Answer, Chunk, Hit, Quote, searchable_text
from .verify import PageSource, verify_quotes

NOT_FOUND = "Not found in the indexed documents."
RANK_PENALTY = 0.5
"""Margin a span gives up for each place its passage stands below the top hit, when the answer is
chosen: retrieval's order knows things the reader does not (the whole question against the whole
passage, BM25's rare words). Chosen on the calibration articles of ``train/reader.py`` (700 of
their questions, top 5 hits, 355 answerable: EM 0.473 -> 0.493 and F1 0.577 -> 0.606 at 0.5, of
0 to 3; 0.25 to 1.0 all help). Whether to answer at all rests on the widest margin, without the
penalty, as it was calibrated (``Abstention``)."""


@dataclass(frozen=True)
class Abstention:
    """When the reader's best span is declined: its confidence below ``threshold``.

    The confidence is the widest margin plus ``similarity_weight`` times the highest dense score
    (cosine of the query and passage embeddings) among the hits; when no hit has one (BM25-only
    search), the margin alone against ``threshold_without_similarity``.
    """

    threshold: float
    similarity_weight: float
    threshold_without_similarity: float

    def confidence(self, widest: float, hits: Sequence[Hit]) -> tuple[float, float]:
        """The answer's confidence and the threshold it is held against."""
        similarity = best_similarity(hits)
        if similarity is None or not self.similarity_weight:
            return widest, self.threshold_without_similarity
        return widest + self.similarity_weight * similarity, self.threshold


def best_similarity(hits: Sequence[Hit]) -> float | None:
    """The highest dense score among ``hits``; ``None`` when none has one."""
    scores = [hit.dense_score for hit in hits if hit.dense_score is not None]
    return max(scores) if scores else None


def answer(question: str, hits: Sequence[Hit], settings: Settings, pages: PageSource) -> Answer:
    """Answer ``question`` from ``hits`` with the answerer ``settings.answer_mode`` names.

    ``pages`` gives the stored page texts every quote is checked against (an index snapshot).

    Example:
        >>> # a = answer("Who called for UN visits?", index.search("Who called for UN visits?"),
        >>> #            Settings(), snapshot)
        >>> # a.span, a.citations[0].text
        >>> # ('Mrs. Maryam Rajavi', 'Mrs. Maryam Rajavi has called on ... inside prisons.')
    """
    from .table_answer import answer_from_tables

    if (table := answer_from_tables(question, hits, settings, pages)) is not None:
        return table
    if settings.answer_mode == "llm":
        from .llm import llm_answer

        return llm_answer(question, hits, pages, settings)
    return read_answer(question, hits, settings, pages)


def abstention(settings: Settings, reader: Reader) -> Abstention:
    """The rule in force: the model's calibrated one, or the settings' threshold when set."""
    info = reader.info
    if settings.abstain_threshold is not None:
        return Abstention(settings.abstain_threshold, info.similarity_weight, settings.abstain_threshold)
    return Abstention(info.no_answer_score, info.similarity_weight, info.no_answer_margin)


def read_answer(question: str, hits: Sequence[Hit], settings: Settings, pages: PageSource,
                reader: Reader | None = None) -> Answer:
    """The offline answerer: the reader's best span over the hits, quoted in its sentence.

    Example:
        >>> # read_answer("Who called for UN visits?", hits, Settings(), snapshot).span
        >>> # 'Mrs. Maryam Rajavi'
    """
    if not hits:
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=(),
                      mode="extractive", notes=("no passage to read: the index returned nothing",))
    reader = reader or load_reader()
    return compose(question, hits, read_spans(question, hits, reader), abstention(settings, reader), pages)


def read_spans(question: str, hits: Sequence[Hit], reader: Reader) -> list[Span]:
    """The reader's best span of every hit, at offsets of the hit's chunk text (one per hit, in order).

    The reader sees a table's rows under their header, and its spans are taken from the rows
    themselves, the part that can be quoted. The chunk's title and section (its context) are left
    out: the reader was trained on paragraphs, and with them it answered "cuttings brought from
    Burgundy" for "Who planted the vineyard?" on a page it reads right alone. A Markdown heading
    inside the chunk is read but never the answer: "Which environment variable chooses the index
    folder?" was answered "## Collections" over the user guide.
    """
    texts = [searchable_text(hit.chunk.text, table_header(hit.chunk.context)) for hit in hits]
    lead = [len(t) - len(hit.chunk.text) for t, hit in zip(texts, hits)]
    context_only = []
    for n, hit in zip(lead, hits):
        header = [(0, n)] if n else []
        context_only.append(header + [(n + a, n + b) for a, b in heading_lines(hit.chunk.text)])
    return [replace(s, start=s.start - lead[s.passage], end=s.end - lead[s.passage]) if s.end > s.start else s
            for s in reader.read(question, texts, context_only)]


def compose(question: str, hits: Sequence[Hit], spans: Sequence[Span], rule: Abstention,
            pages: PageSource) -> Answer:
    """The ``Answer`` for the reader's spans over ``hits``: the best placed span, quoted, or an abstention.

    ``spans[i].passage`` is the hit's place in ``hits`` (0 = the top hit).
    """
    widest = max((s.margin for s in spans), default=float("-inf"))
    confidence, threshold = rule.confidence(widest, hits)
    spans = sorted(spans, key=lambda s: -(s.margin - RANK_PENALTY * s.passage))
    chosen = None
    for span in spans:
        chunk = hits[span.passage].chunk
        start, end = whole_span(chunk.text, span.start, span.end)
        # A passage that repeats the question ("Who called for UN visits?" in a FAQ) tempts the
        # reader to answer with the question's own words: such a span answers nothing.
        if end > start and not _echoes(question, chunk.text[start:end]):
            chosen = (span, chunk, start, end)
            break
    hits = reader_order(hits, spans, chosen[0].passage if chosen else None)
    if chosen is None:
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=tuple(hits),
                      mode="extractive", confidence=confidence,
                      notes=("the reader found no span in the passages that is not the question's own words",))
    span, chunk, start, end = chosen
    text = chunk.text[start:end]
    quote = quote_around(question, chunk, start, end)
    kept, dropped = verify_quotes([quote], pages)
    if confidence < threshold or not kept:
        note = (f"best guess, below the reader's no-answer threshold ({confidence:.2f} < {threshold:.2f}): "
                f"\"{_clip(text)}\", from \"{_clip(quote.text)}\" ({quote.name}, page {quote.page})")
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=tuple(hits),
                      mode="extractive", confidence=confidence, span=text, notes=(note,))
    # The answer reads as one line (a span broken over source lines would wrap oddly in a chat
    # bubble); the quote keeps the page's own characters.
    return Answer(question=question, text=f"{' '.join(text.split())} [1]", found=True, citations=tuple(kept),
                  hits=tuple(hits), mode="extractive", confidence=confidence, span=text,
                  notes=tuple(f"dropped a quote not found verbatim in {q.name}, page {q.page}" for q in dropped))


def reader_order(hits: Sequence[Hit], ranked_spans: Sequence[Span], first: int | None) -> list[Hit]:
    """``hits`` in the order the answer weighs them: passage ``first`` (the answer's), then by span.

    ``ranked_spans`` are best first (margin less ``RANK_PENALTY`` a place); hits without a span
    keep retrieval's order after them, and ``rank`` is renumbered to the new places. Ordered so,
    the first passage an answer lists is right more often than in retrieval's order, on every
    set measured (``bench/reader_rerank.py``, ``bench/squad_answer.py``; stage-6 reader, top 5):
    SQuAD 2.0 dev half a 0.725 -> 0.793, rag's docs set 0.727 -> 0.864, the seed article 0.833 ->
    1.000, FinanceBench 0.600 -> 0.850.
    """
    order = ([first] if first is not None else []) + [s.passage for s in ranked_spans]
    order += range(len(hits))
    placed = list(dict.fromkeys(i for i in order if 0 <= i < len(hits)))
    return [replace(hits[i], rank=place) for place, i in enumerate(placed, start=1)]


def quote_around(question: str, chunk: Chunk, start: int, end: int) -> Quote:
    """The sentence(s) of ``chunk`` holding ``chunk.text[start:end]``, with one neighbour when it helps.

    A neighbouring sentence joins the quote when it holds question words the answer's sentence
    lacks: "Mrs. Maryam Rajavi has called on the UN ..." answers "Who called for UN visits?"
    only together with "She said ... delegations to visit Iran ...".
    """
    sentences = split_sentences(chunk.text) or [(0, len(chunk.text))]
    inside = [i for i, (a, b) in enumerate(sentences) if a < end and b > start]
    if not inside:
        inside = [min(range(len(sentences)), key=lambda i: abs(sentences[i][0] - start))]
    lo, hi = inside[0], inside[-1]
    wanted = set(terms(question))
    covered = wanted.intersection(terms(chunk.text[sentences[lo][0]:sentences[hi][1]]))
    best_gain, best_side = 0, None
    for side, i in (("before", lo - 1), ("after", hi + 1)):
        if 0 <= i < len(sentences):
            gain = len(wanted.intersection(terms(chunk.text[slice(*sentences[i])])) - covered)
            if gain > best_gain:
                best_gain, best_side = gain, side
    if best_side == "before":
        lo -= 1
    elif best_side == "after":
        hi += 1
    a, b = sentences[lo][0], sentences[hi][1]
    a, b = min(a, start), max(b, end)
    return Quote(text=chunk.text[a:b], source=chunk.source, page=chunk.page,
                 start=chunk.start + a, end=chunk.start + b, ocr=chunk.ocr)


_WORD = re.compile(r"\w+")


def _echoes(question: str, span: str) -> bool:
    """True when every word of the span is a word of the question."""
    words = [w.lower() for w in _WORD.findall(span)]
    asked = {w.lower() for w in _WORD.findall(question)}
    return bool(words) and all(w in asked for w in words)


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


__all__ = ["NOT_FOUND", "Abstention", "Span", "abstention", "answer", "best_similarity", "quote_around",
           "read_answer", "read_spans"]

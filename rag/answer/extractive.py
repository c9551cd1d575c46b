"""Hits -> ``Answer``: an answer in the documents' own words with verified quotes, or an honest "not found".

The form follows the kind of answer the question wants (``rag.answer.kinds``). A fact is a short
span in its sentence, as below. Definitions, explanations, steps, lists, comparisons, yes/no
questions and keywords are answered in whole sentences (``compose_sentences``,
``rag.answer.sentences``); summaries of whole documents are made by ``rag.answer.summary`` (``Index.ask``
routes them there before any search).

The default answerer is extractive and offline: the trained reader (``rag.answer.reader``) reads every
retrieved passage and proposes its best span with a margin over "no answer"; the span with the
widest margin, less a little for each place its passage stands below the top hit
(``RANK_PENALTY``), is the answer, widened to whole words and numbers, and the sentence around
it is the quote. Whether to answer at all rests on the widest margin plus a calibrated weight
times the best passage's dense similarity to the question (``Abstention``): the small reader's
margin alone misses many questions that no passage comes close to (on the calibration articles,
each scored with the weight and threshold chosen on the other three, shipped model: overall F1
0.444 -> 0.463, decline precision 0.710 -> 0.765, recall 0.213 -> 0.256). Below the threshold (``reader.json``,
fitted by ``python -m train.reader --calibrate`` on SQuAD 2.0 articles the benchmarks never report on)
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

import numpy as np

from rag.answer.kinds import classify, wants_sentences
from rag.answer.llm import llm_answer
from rag.answer.reader import Reader, Span, load_reader
from rag.answer.spans import whole_span
from rag.answer.sentences import Unit, choose, emphasised, fitted, quotes_and_text, title_line, units
from rag.answer.table import answer_from_tables
from rag.ingest.chunk_context import table_header
from rag.ingest.markdown_blocks import heading_lines
from rag.protocols import Embedder
from rag.settings import Settings
from rag.text import WORD, split_sentences, terms
from rag.types import NOT_FOUND, POSSIBLY, Answer, AnswerKind, Chunk, Hit, Quote, searchable_text
from rag.verify import PageSource, verify_quotes

RANK_PENALTY = 0.5
"""Margin a span gives up for each place its passage stands below the top hit, when the answer is
chosen: retrieval's order knows things the reader does not (the whole question against the whole
passage, BM25's rare words). Chosen on the calibration articles of ``train/reader/`` (700 of
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


def answer(question: str, hits: Sequence[Hit], settings: Settings, pages: PageSource,
           embedder: Embedder | None = None, typed: str | None = None, kind: AnswerKind | None = None) -> Answer:
    """Answer ``question`` from ``hits`` with the answerer ``settings.answer_mode`` names.

    ``pages`` gives the stored page texts every quote is checked against (an index snapshot);
    ``embedder`` is the index's, which weighs the sentences of an answer in sentences; ``typed``
    the question as typed, when ``question`` is its focused form (the table answerer reads the
    figures it defines and the scale it asks for); ``kind`` the kind of answer it wants, when the
    caller read it with the conversation (``rag.answer.kinds.classify``).

    Example:
        >>> # a = answer("Who called for UN visits?", index.search("Who called for UN visits?"),
        >>> #            Settings(), snapshot)
        >>> # a.span, a.citations[0].text
        >>> # ('Mrs. Maryam Rajavi', 'Mrs. Maryam Rajavi has called on ... inside prisons.')
    """
    if (table := answer_from_tables(question, hits, settings, pages, typed)) is not None:
        return table
    if settings.answer_mode == "llm":
        return llm_answer(question, hits, pages, settings)
    return read_answer(question, hits, settings, pages, embedder=embedder, kind=kind)


def abstention(settings: Settings, reader: Reader) -> Abstention:
    """The rule in force: the model's calibrated one, or the settings' threshold when set."""
    info = reader.info
    if settings.abstain_threshold is not None:
        return Abstention(settings.abstain_threshold, info.similarity_weight, settings.abstain_threshold)
    return Abstention(info.no_answer_score, info.similarity_weight, info.no_answer_margin)


def read_answer(question: str, hits: Sequence[Hit], settings: Settings, pages: PageSource,
                reader: Reader | None = None, embedder: Embedder | None = None, kind: AnswerKind | None = None) -> Answer:
    """The offline answerer, in the form the question's kind asks for (``rag.answer.kinds``): a
    fact is the reader's best span over the hits, quoted in its sentence; the other kinds are
    answered in whole sentences (``compose_sentences``), and so is a fact whose span falls below
    the line when the question asks for no single value (who, when, how many, which X).

    Example:
        >>> # read_answer("Who called for UN visits?", hits, Settings(), snapshot).span
        >>> # 'Mrs. Maryam Rajavi'
    """
    if not hits:
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=(),
                      mode="extractive", notes=("no passage to read: the index returned nothing",))
    if missing := years_not_read(question, hits):
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=tuple(hits),
                      mode="extractive", kind=kind or classify(question),
                      notes=(f"no passage read mentions {' or '.join(missing)}, the year the question asks about",))
    reader = reader or load_reader()
    kind = kind or classify(question)
    # One reading gives both the best span of each passage and the pooled score of each unit.
    passage_units = [units(hit.chunk.text, opens_page=hit.chunk.start == 0) for hit in hits]
    spans, margins = read_passages(question, hits, reader, [[(u.start, u.end) for u in us] for us in passage_units])
    if wants_sentences(kind):
        return compose_sentences(question, kind, hits, passage_units, spans, margins, pages, embedder)
    fact = compose(question, hits, spans, abstention(settings, reader), pages)
    if fact.found or _asks_for_a_value(question):
        return fact
    # "anything on loss?", "I'm in US, give me a rate here": no short span stands out, but the
    # sentences that speak of it may (on MTRAG's tune half, facts declined 13 of 28 -> 5).
    said = compose_sentences(question, "fact", hits, passage_units, spans, margins, pages, embedder)
    if said.found:
        # A fact keeps a headline: the reader's span, where it stands in the sentences quoted.
        quoted = " ".join(" ".join(q.text for q in said.citations).split())
        head = next((s for s in (said.span, fact.span) if s and " ".join(s.split()) in quoted), "")
        return replace(said, span=head) if head else fact
    # Declined both ways, the sentences make the better guess to offer ("Possibly: ...").
    return said if POSSIBLY in said.text or POSSIBLY not in fact.text else fact


_YEAR = re.compile(r"(?<![\d.,$£€])(?:FY\s?)?((?:19|20)\d{2})(?![\d%]|[.,]\d)")


def years_not_read(question: str, hits: Sequence[Hit]) -> list[str]:
    """The years the question asks about ("Why did 3M's sales decline in 2022?") when no passage read
    mentions any of them, in its text, section or file name; else nothing. A report of another year
    answers such a question with that year's figures and reasons, and reads as if it were right."""
    asked = sorted(set(_YEAR.findall(question)))
    if not asked:
        return []
    read = set(_YEAR.findall(" ".join(f"{h.chunk.name} {h.chunk.context} {h.chunk.text}" for h in hits)))
    return [] if read.intersection(asked) else asked


_VALUE_QUESTION = re.compile(r"(?i)^\W*(?:who|whom|whose|when|where|how (?:many|much|long|old|far|big|tall)|"
                             r"(?:in |at |on )?(?:what|which) (?:year|date|day|month|time|age|number|percentage|"
                             r"amount|city|country|name)\b|"
                             r"(?:what|which) (?!(?:is|are|was|were|do|does|did|can|should|would|will|has|have)\b)"
                             r"\w+(?<!s) (?:\w+ )?(?:did|does|do|is|was|are|were|has|have|can|will)\b)")
"""Who, when, where, how many; "Which vaccine did Iran approve?", "Which river is longest?": one value
(a singular noun after "which" or "what", before the verb)."""


def _asks_for_a_value(question: str) -> bool:
    """Who, when, where, how many: a question after one value, which only a span answers."""
    return bool(_VALUE_QUESTION.match(question))


def compose_sentences(question: str, kind: AnswerKind, hits: Sequence[Hit], passage_units: Sequence[Sequence[Unit]],
                      spans: Sequence[Span], margins: Sequence[np.ndarray], pages: PageSource,
                      embedder: Embedder | None = None) -> Answer:
    """The ``Answer`` of a question that wants sentences (``rag.answer.sentences``): the one to three
    that answer it, a list or procedure whole, each run cited; or an abstention.

    Whether to answer rests on the chosen unit's score and the best passage's dense similarity
    (``Fitted.confidence``), a rule fitted with the chooser on data that looks like use.
    """
    chosen = choose(question, kind, hits, passage_units, margins, embedder)
    order = sorted(range(len(hits)), key=lambda i: -(spans[i].margin - RANK_PENALTY * i))
    if not chosen:
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(),
                      hits=tuple(reader_order(hits, [spans[i] for i in order], None)), mode="extractive",
                      kind=kind, notes=("no sentence of the passages can stand as an answer",))
    confidence = fitted().confidence(chosen[0].score, hits)
    # The answer's passages first, in the order it cites them, then by the reader's spans.
    placed = list(dict.fromkeys([s.passage for s in chosen] + order))
    ranked = [replace(hits[i], rank=place) for place, i in enumerate(placed, start=1)]
    first = chosen[0].passage
    span = spans[first]
    emphasis = None
    if span.end > span.start:
        a, b = whole_span(hits[first].chunk.text, span.start, span.end)
        emphasis = (first, a, b) if b > a else None
    text, quotes = quotes_and_text(hits, chosen, emphasis)
    kept, dropped = verify_quotes(quotes, pages)
    head = hits[first].chunk.text[emphasis[1]:emphasis[2]] if emphasis else ""
    if confidence < 0 or len(kept) != len(quotes):
        guess = " ".join(quotes[0].text.split())
        return Answer(question=question, text=_declined(guess, quotes[0], confidence >= -SENTENCEPOSSIBLY_BAND),
                      found=False, citations=(), hits=tuple(ranked), mode="extractive", confidence=confidence,
                      span=head, kind=kind,
                      notes=(f"best guess, below the no-answer line ({confidence:.2f} < 0): \"{_clip(guess)}\" "
                             f"({quotes[0].name}, {quotes[0].place})",))
    return Answer(question=question, text=text, found=True, citations=tuple(kept), hits=tuple(ranked),
                  mode="extractive", confidence=confidence, span=head, kind=kind,
                  notes=tuple(f"dropped a quote not found verbatim in {q.name}, {q.place}" for q in dropped))


POSSIBLY_BAND = 3.0
"""How far below the threshold (in reader margin) a fact's best guess is still offered in words
("Possibly: ..."): closer than this, a person would rather see the guess, plainly marked as
uncertain, than a bare "Not found" with the guess in a footnote."""
SENTENCEPOSSIBLY_BAND = 1.0
"""The same for sentence answers, in the units of ``Fitted.confidence`` (a logit)."""


def _declined(guess: str, quote: Quote, close: bool) -> str:
    """What a decline says: "Not found", and the best guess in plain words when it came close."""
    if not close:
        return NOT_FOUND
    return f"{NOT_FOUND}{POSSIBLY}\"{_clip(guess, 240)}\", from {quote.name}, {quote.place} (not certain)."


def read_passages(question: str, hits: Sequence[Hit], reader: Reader,
                  sentences: Sequence[Sequence[tuple[int, int]]]) -> tuple[list[Span], list[np.ndarray]]:
    """``read_spans`` and the reader's pooled margin of each given sentence (chunk offsets) of every hit."""
    texts, lead, context_only = _reading(hits)
    shifted = [[(a + n, b + n) for a, b in ss] for ss, n in zip(sentences, lead)]
    spans, margins = reader.read_sentences(question, texts, shifted, context_only)
    return ([replace(s, start=s.start - lead[s.passage], end=s.end - lead[s.passage]) if s.end > s.start else s
             for s in spans], margins)


def _reading(hits: Sequence[Hit]) -> tuple[list[str], list[int], list[list[tuple[int, int]]]]:
    """What the reader reads of each hit (a table's header before its rows), how many characters
    stand before the chunk's own text, and the ranges it reads but never answers from."""
    texts = [searchable_text(hit.chunk.text, table_header(hit.chunk.context)) for hit in hits]
    lead = [len(t) - len(hit.chunk.text) for t, hit in zip(texts, hits)]
    context_only = []
    for n, hit in zip(lead, hits):
        header = [(0, n)] if n else []
        context_only.append(header + [(n + a, n + b) for a, b in heading_lines(hit.chunk.text)])
    return texts, lead, context_only


def read_spans(question: str, hits: Sequence[Hit], reader: Reader) -> list[Span]:
    """The reader's best span of every hit, at offsets of the hit's chunk text (one per hit, in order).

    The reader sees a table's rows under their header, and its spans are taken from the rows
    themselves, the part that can be quoted. The chunk's title and section (its context) are left
    out: the reader was trained on paragraphs, and with them it answered "cuttings brought from
    Burgundy" for "Who planted the vineyard?" on a page it reads right alone. A Markdown heading
    inside the chunk is read but never the answer: "Which environment variable chooses the index
    folder?" was answered "## Collections" over the user guide.
    """
    return read_passages(question, hits, reader, [()] * len(hits))[0]


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
    quote = _without_title(chunk, quote_around(question, chunk, start, end), start)
    kept, dropped = verify_quotes([quote], pages)
    if confidence < threshold or not kept:
        note = (f"best guess, below the reader's no-answer threshold ({confidence:.2f} < {threshold:.2f}): "
                f"\"{_clip(text)}\", from \"{_clip(quote.text)}\" ({quote.name}, {quote.place})")
        return Answer(question=question, text=_declined(text, quote, confidence >= threshold - POSSIBLY_BAND),
                      found=False, citations=(), hits=tuple(hits), mode="extractive", confidence=confidence,
                      span=text, notes=(note,))
    # The span alone ("thirteenth", "FTC") is a headline (``Answer.span``); the text is its sentence
    # with the span in bold, as a person would answer, on one line (a sentence broken over source
    # lines would wrap oddly in a chat bubble); the quote keeps the page's own characters.
    a = quote.start - chunk.start
    sentence = " ".join(emphasised(chunk.text, a, a + len(quote.text), start, end).split())
    return Answer(question=question, text=f"{sentence} [1]", found=True, citations=tuple(kept),
                  hits=tuple(hits), mode="extractive", confidence=confidence, span=text,
                  notes=tuple(f"dropped a quote not found verbatim in {q.name}, {q.place}" for q in dropped))


def _without_title(chunk: Chunk, quote: Quote, start: int) -> Quote:
    """The quote of a span starting at ``chunk.text[start]`` without the page's title line before
    its sentence (``rag.answer.sentences.title_line``): "Infertility The main cause of ..."."""
    a = quote.start - chunk.start
    skip = title_line(chunk.text) if chunk.start == 0 else 0
    if not a < skip <= start:
        return quote
    skip += len(chunk.text[skip:]) - len(chunk.text[skip:].lstrip())
    return Quote(text=chunk.text[skip:quote.end - chunk.start], source=chunk.source, page=chunk.page,
                 start=chunk.start + skip, end=quote.end, ocr=chunk.ocr)


def reader_order(hits: Sequence[Hit], ranked_spans: Sequence[Span], first: int | None) -> list[Hit]:
    """``hits`` in the order the answer weighs them: passage ``first`` (the answer's), then by span.

    ``ranked_spans`` are best first (margin less ``RANK_PENALTY`` a place); hits without a span
    keep retrieval's order after them, and ``rank`` is renumbered to the new places. Ordered so,
    the first passage an answer lists is right more often than in retrieval's order, on every
    set measured (``bench/studies/reader_rerank.py``, ``bench/studies/squad_answer.py``; stage-6 reader, top 5):
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




def _echoes(question: str, span: str) -> bool:
    """True when every word of the span is a word of the question."""
    words = [w.lower() for w in WORD.findall(span)]
    asked = {w.lower() for w in WORD.findall(question)}
    return bool(words) and all(w in asked for w in words)


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


__all__ = ["Abstention", "Span", "abstention", "answer", "best_similarity", "quote_around", "years_not_read",
           "read_answer", "read_spans"]

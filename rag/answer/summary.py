"""Extractive summaries of whole documents: "Summarize the report", "What is this article about?".

A summary reads the whole document, not the five passages a search returns: every page as
stored in the index, cut into the same units answers quote (``rag.answer.sentences.units``), with
page furniture left out (``rag.answer.boilerplate``: menus, notices, and the running headers and footers
a many-page PDF repeats). Each sentence is weighed by how central it is to the document (cosine
of its TF-IDF vector with the document's, over stemmed content words) plus a little for opening
its paragraph or section, where writers put their point; sentences are then picked greedily,
each time the one that adds most and repeats least of what is already picked (maximal marginal
relevance), so the summary covers the document's main points rather than restating its
strongest one. They are shown in document order, each cited; a document with sections says which
section each comes from.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag.answer.boilerplate import line_key, repeated_lines
from rag.answer.sentences import units
from rag.ingest.markdown_blocks import heading_lines
from rag.text import WORD, terms
from rag.types import Answer, Document, Quote
from rag.verify import PageSource, verify_quotes

MIN_SENTENCES = 3
MAX_SENTENCES = 7
MMR_LAMBDA = 0.5
"""Weight of a sentence's centrality against its likeness to sentences already picked."""
SIZE_WEIGHT = 0.1
"""Added to a block's centrality per doubling of its sentences."""
OPENING_BONUS = 0.08
"""Added to the centrality of a sentence that opens its paragraph or section."""
MIN_WORDS = 6
"""Shorter sentences (titles, captions, "See below.") are not summary material."""
MAX_WORDS = 80
"""Longer "sentences" are run-on page text (a cover page, a table read as prose), not summary material."""
_FORM = re.compile(r"_{5,}|\.{5,}|…{3,}")
"""Blanks to fill and dotted leaders: forms and tables of contents."""


def _capitals(text: str) -> float:
    """The share of capitals among the letters of ``text``: headings and cover pages shout."""
    letters = [c for c in text if c.isalpha()]
    return sum(c.isupper() for c in letters) / len(letters) if letters else 1.0


@dataclass(frozen=True)
class Candidate:
    quote: Quote
    section: str
    paragraph: tuple[int, int]
    """(page, group of ``units``): sentences of one paragraph share it."""
    vector: dict[str, float]
    score: float


def summarize(pages: PageSource, document: Document, question: str = "") -> Answer:
    """An extractive summary of ``document``: 3 to 7 of its sentences covering its main points,
    in document order, each cited.

    Example:
        >>> # summarize(snapshot, snapshot.documents()[0]).text
        >>> # 'Rebellious young people in Iran ... [1] ... Mrs. Maryam Rajavi has called on ... [5]'
    """
    texts = [pages.page_text(document.source, n) or "" for n in range(1, document.pages + 1)]
    candidates = _candidates(document.source, texts)
    question = question or f"Summarize {document.name}"
    if not candidates:
        return Answer(question=question, text=f"{document.name} holds no sentences to summarize.", found=False,
                      citations=(), hits=(), mode="extractive", kind="summary",
                      notes=(f"no sentence of {document.name} is long enough to stand in a summary",))
    picked = _pick(candidates, _length(len(candidates)))
    picked.sort(key=lambda c: (c.quote.page, c.quote.start))
    kept, dropped = verify_quotes([c.quote for c in picked], pages)
    ok = {(q.page, q.start) for q in kept}
    picked = [c for c in picked if (c.quote.page, c.quote.start) in ok]
    sections = len({c.section for c in picked if c.section}) > 1
    parts, previous = [], None
    for n, c in enumerate(picked, start=1):
        body = " ".join(c.quote.text.split())
        label = f"**{c.section}**: " if sections and c.section and c.section != previous else ""
        previous = c.section
        parts.append(f"{label}{body} [{n}]")
    joiner = "\n\n" if sections else " "
    return Answer(question=question, text=joiner.join(parts), found=True, citations=tuple(kept), hits=(),
                  mode="extractive", kind="summary", span="",
                  notes=(f"summary of {document.name}: {len(kept)} of its {len(candidates)} sentences",
                         *(f"dropped a quote not found verbatim in {q.name}, {q.place}" for q in dropped)))


def _length(n: int) -> int:
    """How many sentences: grows with the document's length, 3 at least, 7 at most."""
    return max(MIN_SENTENCES, min(MAX_SENTENCES, round(1.5 + math.log2(max(n, 1)))))


def _candidates(source: str, texts: Sequence[str]) -> list[Candidate]:
    furniture = repeated_lines(texts)
    raw: list[tuple[Quote, str, tuple[int, int], list[str], bool]] = []
    for page, text in enumerate(texts, start=1):
        headings = [(a, b, text[a:b].lstrip("#").strip()) for a, b in heading_lines(text)]
        previous_group = None
        for unit in units(text, opens_page=page == 1):
            start, end = _without_furniture(text, unit.start, unit.end, furniture)
            words = text[start:end]
            opens = unit.group != previous_group
            previous_group = unit.group
            if unit.role != "sentence" or not MIN_WORDS <= len(WORD.findall(words)) <= MAX_WORDS:
                continue
            if _FORM.search(words) or _capitals(words) > 0.5:
                continue  # a filing's cover page: "FORM 10-K ____ (Mark One) x ANNUAL REPORT PURSUANT TO ..."
            if not words.rstrip().endswith((".", "!", "?", ":", ";", '"', "”", ")")) and "\n" not in words.strip():
                continue  # a title or a caption, not a sentence
            section = next((title for a, b, title in reversed(headings) if b <= unit.start), "")
            raw.append((Quote(text=words, source=source, page=page, start=start, end=end),
                        section, (page, unit.group), terms(words), opens))
    if not raw:
        return []
    # The same sentence twice (a title repeated as the first line) counts once.
    seen: set[str] = set()
    unique = []
    for item in raw:
        key = " ".join(item[0].text.split()).lower()
        if key not in seen:
            seen.add(key)
            unique.append(item)
    df: Counter[str] = Counter()
    for _, _, _, vocabulary, _ in unique:
        df.update(set(vocabulary))
    n = len(unique)
    vectors = [_unit({w: c * math.log(1 + n / df[w]) for w, c in Counter(vocabulary).items()})
               for _, _, _, vocabulary, _ in unique]
    centre = _unit(_sum(vectors))
    return [Candidate(quote, section, paragraph, v, _dot(v, centre) + OPENING_BONUS * opens)
            for (quote, section, paragraph, _, opens), v in zip(unique, vectors)]


def _without_furniture(text: str, start: int, end: int, furniture: frozenset[str]) -> tuple[int, int]:
    """``text[start:end]`` without the running header or footer lines at its ends (a PDF page's
    "Annual Report 2023" line runs into its first sentence, which has no full stop to end it)."""
    while start < end:
        line_end = text.find("\n", start, end)
        if line_end == -1 or line_key(text[start:line_end]) not in furniture:
            break
        start = line_end + 1
    while start < end:
        line_start = text.rfind("\n", start, end)
        if line_start == -1 or line_key(text[line_start + 1:end]) not in furniture:
            break
        end = line_start
    if line_key(text[start:end]) in furniture:
        return start, start
    return start, end


def _pick(candidates: Sequence[Candidate], count: int) -> list[Candidate]:
    """One sentence from each of ``count`` blocks of the document (its sections, or without
    sections its paragraphs): the blocks most central to the document and least alike, and in
    each its most central sentence, an opening one favoured. Taking the most central sentences
    of the whole document instead repeated its strongest point and missed the others."""
    blocks: list[list[Candidate]] = []
    sectioned = len({c.section for c in candidates}) > 1
    for c in candidates:
        key = c.section if sectioned else c.paragraph
        if blocks and (blocks[-1][0].section if sectioned else blocks[-1][0].paragraph) == key:
            blocks[-1].append(c)
        else:
            blocks.append([c])
    vectors = [_unit(_sum(c.vector for c in block)) for block in blocks]
    centre = _unit(_sum(vectors))
    # A long paragraph or section carries more of the document than a one-line one.
    weight = [_dot(v, centre) + SIZE_WEIGHT * math.log2(1 + len(block)) + OPENING_BONUS * (i == 0)
              for i, (v, block) in enumerate(zip(vectors, blocks))]
    chosen: list[int] = []
    while len(chosen) < min(count, len(blocks)):
        left = [i for i in range(len(blocks)) if i not in chosen]
        chosen.append(max(left, key=lambda i: MMR_LAMBDA * weight[i]
                          - (1 - MMR_LAMBDA) * max((_dot(vectors[i], vectors[j]) for j in chosen), default=0.0)))
    picked: list[Candidate] = []
    for i in sorted(chosen):
        picked.append(max(blocks[i], key=lambda c: MMR_LAMBDA * c.score
                          - (1 - MMR_LAMBDA) * max((_dot(c.vector, p.vector) for p in picked), default=0.0)))
    return picked


def _sum(vectors: Iterable[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for v in vectors:
        for w, x in v.items():
            total[w] = total.get(w, 0.0) + x
    return total


def _unit(vector: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(x * x for x in vector.values())) or 1.0
    return {w: x / norm for w, x in vector.items()}


def _dot(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(w, 0.0) for w, x in a.items())


__all__ = ["MAX_SENTENCES", "MIN_SENTENCES", "summarize"]

"""The typed values that flow between the modules: Page -> Chunk -> Hit -> Answer.

Every value is a frozen dataclass so that a hit handed to a UI thread can never be changed under
another thread's feet, and every position is a character offset into the *page text as stored in
the index*, so a quote can always be checked against its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rag.file_types import display_name, page_label, page_word, skipped_summary

AnswerKind = Literal["fact", "definition", "explanation", "procedure", "yesno", "list", "comparison", "summary",
                     "keyword", "table"]
"""What kind of answer a question wants (``rag.answer.kinds.classify``): a fact is a short span in
its sentence; a summary covers a whole document; a table answer reads or computes cells; every
other kind is answered by the one to three sentences that answer it."""
ANSWER_KINDS: tuple[AnswerKind, ...] = ("fact", "definition", "explanation", "procedure", "yesno", "list",
                                        "comparison", "summary", "keyword", "table")

NOT_FOUND = "Not found in the indexed documents."
"""How the text of an ``Answer`` whose ``found`` is false begins (a best guess may follow it). Code that has
the ``Answer`` reads ``found``; only a conversation's earlier replies, which clients send back as text, are
recognised by it (``rag.search.conversation``)."""
POSSIBLY = " Possibly: "
"""What stands between ``NOT_FOUND`` and a best guess that came close to the line, in a decline's text."""


@dataclass(frozen=True)
class TextBox:
    """``page_text[start:end]`` is drawn inside this box of the page image.

    Coordinates are fractions of the page's width and height, origin at the top left, so they
    hold at any rendering scale.

    Example:
        >>> TextBox(start=0, end=6, x0=0.1, y0=0.2, x1=0.3, y1=0.22).end
        6
    """

    start: int
    end: int
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class Page:
    """One page of text as a loader extracted it.

    Example:
        >>> Page(source="/docs/guide.md", page=1, text="Hello.")
        Page(source='/docs/guide.md', page=1, text='Hello.', ocr=False, boxes=())
    """

    source: str
    """Absolute path of the file the page came from."""
    page: int
    """1-based page number (text, Markdown and HTML files have one page); what a page is (a slide,
    a sheet, a message) depends on the file's format (``rag.file_types.page_word``)."""
    text: str
    ocr: bool = False
    """The text was read from the page image by OCR (the page had no usable text layer)."""
    boxes: tuple[TextBox, ...] = ()
    """Where runs of ``text`` sit on the page image (OCR lines). Pages with a text layer have
    none stored: their character boxes come from the PDF itself when a page is shown."""


@dataclass(frozen=True)
class Chunk:
    """A passage of one page: ``text == page_text[start:end]``, always.

    Example:
        >>> c = Chunk(id="ab12", source="/d/a.txt", page=1, start=0, end=5, text="Hello", n_tokens=1)
        >>> c.name
        'a.txt'
    """

    id: str
    """Stable id derived from source, page, offsets and text."""
    source: str
    page: int
    start: int
    """Character offset of the first character within the page text."""
    end: int
    """Character offset one past the last character within the page text."""
    text: str
    n_tokens: int
    """Length in tiktoken tokens (the chunker's unit)."""
    context: str = ""
    """What the passage needs to be understood alone, outside ``text``: a table's header row, the
    page's heading. Searched and embedded with ``text``; never quoted (it is not at these offsets)."""
    ocr: bool = False
    """The page was read by OCR."""

    @property
    def name(self) -> str:
        """The file name without its folder, for display ("report.pdf (attached to invoice.eml)" for
        an e-mail's attachment: ``rag.file_types.display_name``)."""
        return display_name(self.source)

    @property
    def searchable(self) -> str:
        """What is embedded and searched: the context, then the passage."""
        return searchable_text(self.text, self.context)


def searchable_text(text: str, context: str) -> str:
    """A passage as retrieval sees it: its context (a table header, a page heading) first."""
    return f"{context}\n{text}" if context else text


@dataclass(frozen=True)
class Quote:
    """A verbatim span of a page: ``page_text[start:end] == text``.

    Example:
        >>> q = Quote(text="Hello", source="/d/a.txt", page=1, start=0, end=5)
        >>> q.name, q.page
        ('a.txt', 1)
    """

    text: str
    source: str
    page: int
    start: int
    end: int
    ocr: bool = False
    """Quoted from text that OCR read off the page image (verbatim against the stored OCR text)."""

    @property
    def name(self) -> str:
        return display_name(self.source)

    @property
    def place(self) -> str:
        """Where in the file, as a citation says it: "page 3", "slide 3", "sheet 2", "message 14"."""
        return page_label(self.source, self.page)

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a quote (CLI, web page, tools); ``unit`` names what ``page`` counts."""
        return {"text": self.text, "source": self.source, "name": self.name, "page": self.page,
                "unit": page_word(self.source), "start": self.start, "end": self.end, "ocr": self.ocr}


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with the sentence in it that best matches the question.

    Example:
        >>> # for hit in index.search("Who called for UN visits?"):
        >>> #     print(hit.rank, hit.name, hit.page, hit.quote.text)
    """

    chunk: Chunk
    score: float
    """Fused retrieval score; higher is better. Comparable only within one result list."""
    rank: int
    """1-based position in the result list."""
    quote: Quote
    """The best-matching sentence of the chunk, verbatim, with page offsets."""
    dense_score: float | None = None
    """Cosine similarity of question and passage, when dense retrieval saw this chunk."""
    lexical_score: float | None = None
    """BM25 score, when lexical retrieval saw this chunk."""

    @property
    def source(self) -> str:
        return self.chunk.source

    @property
    def name(self) -> str:
        return self.chunk.name

    @property
    def page(self) -> int:
        return self.chunk.page

    @property
    def place(self) -> str:
        """Where in the file: "page 3", "slide 3", "sheet 2" (``Quote.place``)."""
        return self.quote.place

    @property
    def text(self) -> str:
        return self.chunk.text

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a hit (``rag search --json`` prints one per line)."""
        return {
            "rank": self.rank, "score": self.score, "source": self.source, "name": self.name, "page": self.page,
            "unit": page_word(self.source),
            "start": self.chunk.start, "end": self.chunk.end, "chunk_id": self.chunk.id, "text": self.chunk.text,
            "quote": self.quote.text, "quote_start": self.quote.start, "quote_end": self.quote.end,
            "dense_score": self.dense_score, "lexical_score": self.lexical_score,
            "context": self.chunk.context, "ocr": self.chunk.ocr,
        }


@dataclass(frozen=True)
class Operand:
    """One table cell an answer read or computed with: its figure, where it stands, and its quote.

    Example:
        >>> q = Quote(text="44.1", source="/d/r.md", page=1, start=120, end=124)
        >>> Operand(row="Other", column="2019", value=44.1, quote=q).row
        'Other'
    """

    row: str
    """The row's label ("Other"), with its parent row when it has one ("Current assets › Cash")."""
    column: str
    """The column's header ("2019", "Years Ended September 30, 2019")."""
    value: float
    """The figure as the page shows it, sign read ("(1,403)" is -1403.0), scale not applied."""
    quote: Quote
    """The cell's text, verbatim at its offsets in the page text."""

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "value": self.value, **self.quote.to_dict()}


@dataclass(frozen=True)
class Working:
    """How a table answer was reached: the operation, its operands and the result.

    Example:
        >>> # answer.working.operation, answer.working.result, [o.column for o in answer.working.operands]
        >>> # ('change', -12.6, ['2019', '2018'])
    """

    operation: str
    """"lookup", "change", "percent_change", "average", "sum", "difference", "ratio", "proportion",
    "compare", "count" or "formula" (a figure the question defines, ``rag.answer.formula``)."""
    operands: tuple[Operand, ...]
    result: float | None
    """The computed figure (unrounded); None for a lookup of several cells or a comparison's year."""
    expression: str = ""
    """The arithmetic as shown ("44.1 − 56.7")."""
    unit: str = ""
    """"%", "$" or "" (a percentage stays a percentage)."""
    scale: str = ""
    """"thousand", "million", "billion" or "", the table's."""
    rounding: str = ""
    """How the shown figure was rounded ("rounded to 2 decimals"), when it was."""

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "result": self.result, "expression": self.expression,
                "unit": self.unit, "scale": self.scale, "rounding": self.rounding,
                "operands": [o.to_dict() for o in self.operands]}


@dataclass(frozen=True)
class Answer:
    """What ``Index.ask`` returns: a short answer and the verified quotes behind it.

    ``citations[i]`` is cited as ``[i+1]`` in ``text``. When ``found`` is false the documents do
    not answer the question; ``text`` says so and ``hits`` still lists the closest passages.

    Example:
        >>> # answer = index.ask("Who called for UN visits?")
        >>> # answer.found, answer.text, answer.citations[0].text
    """

    question: str
    text: str
    found: bool
    citations: tuple[Quote, ...]
    hits: tuple[Hit, ...]
    """The passages read, in the order the answerer weighed them (the offline reader: the answer's
    passage first, then by the reader's margin; ``rank`` is the place in this list)."""
    mode: str
    """Which answerer produced it: "extractive" or "llm"."""
    confidence: float = 0.0
    """The answerer's evidence score that the abstention threshold is compared with."""
    span: str = ""
    """The shortest answering span, when the answerer found one (may equal ``text``)."""
    notes: tuple[str, ...] = ()
    """Warnings for the reader, e.g. LLM quotes dropped because they were not verbatim."""
    query: str = ""
    """What was searched, when it differs from ``question`` (a follow-up made standalone, or a
    question with the instructions around it left out)."""
    unsupported: tuple[str, ...] = ()
    """Sentences of an LLM's answer left out of ``text`` because its quotes do not support them."""
    kind: AnswerKind = "fact"
    """What kind of answer the question wanted (``rag.answer.kinds``), which shaped ``text``."""
    working: Working | None = None
    """For a table answer (``kind == "table"``): the cells read and the arithmetic done on them."""

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of an answer; ``citations[i]["n"]`` is its ``[n]`` in ``answer``."""
        return {
            "question": self.question, "query": self.query or self.question, "answer": self.text,
            "found": self.found, "kind": self.kind, "span": self.span,
            "mode": self.mode, "confidence": self.confidence, "notes": list(self.notes),
            "citations": [{"n": n, **q.to_dict()} for n, q in enumerate(self.citations, start=1)],
            "unsupported": list(self.unsupported),
            "working": self.working.to_dict() if self.working else None,
            "hits": [h.to_dict() for h in self.hits],
        }


PARTLY_INDEXED = "partly indexed: "
"""How the reason of a file indexed without some of its pages (over the OCR budget) begins."""


@dataclass(frozen=True)
class LoadFailure:
    """A file that could not be indexed, or only in part, and why, in words meant for the user."""

    source: str
    reason: str

    @property
    def partial(self) -> bool:
        """The file is in the index, but some of its pages are not (the reason says which)."""
        return self.reason.startswith(PARTLY_INDEXED)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason}


@dataclass(frozen=True)
class Document:
    """One indexed file as the index knows it."""

    source: str
    pages: int
    chunks: int
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return display_name(self.source)

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a document (``rag docs --json``, MCP's ``list_documents``); ``unit``
        names what ``pages`` counts."""
        return {"source": self.source, "name": self.name, "pages": self.pages, "unit": page_word(self.source),
                "chunks": self.chunks, "size": self.size}


@dataclass(frozen=True)
class IngestReport:
    """What one ``ingest`` call did, file by file counts plus the failures with reasons."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    failed: tuple[LoadFailure, ...] = ()
    chunks_embedded: int = 0
    """Chunks whose vectors had to be computed (the rest came from the embedding cache)."""
    chunks_total: int = 0
    """Chunks in the index after the ingest."""
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict, compare=False)
    """Timings of the stages, for benchmarks."""
    skipped: tuple[str, ...] = ()
    """Files met in the folders whose type is not read (``rag.ingest.formats``): neither indexed nor failed."""

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a report (``rag ingest --json``). Unchanged files are counted, not
        listed: an incremental ingest of a large folder would otherwise print every name it kept."""
        return {"added": list(self.added), "updated": list(self.updated), "unchanged": len(self.unchanged),
                "removed": list(self.removed), "failed": [f.to_dict() for f in self.failed],
                "skipped": list(self.skipped), "chunks_embedded": self.chunks_embedded,
                "chunks_total": self.chunks_total, "seconds": round(self.seconds, 3)}

    def summary(self) -> str:
        skipped = skipped_summary(self.skipped)
        return (
            f"added {len(self.added)}, updated {len(self.updated)}, unchanged {len(self.unchanged)}, "
            f"removed {len(self.removed)}, failed {len(self.failed)}"
            + (f", {skipped}" if skipped else "") + "; "
            # "290 embedded, 291 in the index" read as a lost chunk: say why the two counts differ.
            f"{self.chunks_embedded} chunks embedded (text already embedded is reused), "
            f"{self.chunks_total} in the index, {self.seconds:.1f}s"
        )

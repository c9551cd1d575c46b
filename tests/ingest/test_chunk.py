from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag import Index
from rag.embed import embedder_token_counter, model_token_counter
from rag.ingest.chunk import Chunker, chunk_id
from rag.settings import Settings
from rag.text import count_tokens, split_sentences
from rag.types import Page


@pytest.fixture(scope="module")
def chunker() -> Chunker:
    counter, limit = model_token_counter()
    return Chunker(Settings(), counter, limit)


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def test_sentences_keep_abbreviations_and_initials_together() -> None:
    text = "Mrs. Maryam Rajavi spoke in the U.S. on Monday. J. R. R. Tolkien wrote it! Did he? Yes."
    assert sentences(text) == ["Mrs. Maryam Rajavi spoke in the U.S. on Monday.", "J. R. R. Tolkien wrote it!",
                               "Did he?", "Yes."]


def test_a_sentence_may_open_with_inline_code_or_emphasis() -> None:
    text = ("It opens the chat at http://127.0.0.1:7860. `make test` installs the same way. Without a key the chat "
            "has no login. **What `--api-key` guards.** It guards the page. See e.g. `rag ingest` for more.")
    assert sentences(text) == ["It opens the chat at http://127.0.0.1:7860.", "`make test` installs the same way.",
                               "Without a key the chat has no login.", "**What `--api-key` guards.** It guards the page.",
                               "See e.g. `rag ingest` for more."]


def test_sentences_break_at_blank_lines_and_markdown_blocks() -> None:
    text = "# Title\nSome intro text\n\n- first item\n- second item\nNot a new block"
    assert sentences(text) == ["# Title\nSome intro text", "- first item", "- second item\nNot a new block"]


def test_sentence_spans_are_trimmed_slices() -> None:
    text = "  One.   Two three.\n\n  Four  "
    assert sentences(text) == ["One.", "Two three.", "Four"]


def test_chunks_are_verbatim_slices_within_budget(chunker: Chunker) -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(200))
    page = Page("/docs/a.txt", 3, text)
    chunks = chunker.chunk(page)
    assert len(chunks) > 5
    for chunk in chunks:
        assert text[chunk.start:chunk.end] == chunk.text
        assert chunk.page == 3 and chunk.source == "/docs/a.txt"
        assert chunk.n_tokens == count_tokens([chunk.text])[0] <= Settings().chunk_tokens
        assert chunk.id == chunk_id(page.source, page.page, chunk.start, chunk.text)
    # Every character of every sentence is in some chunk: nothing is dropped.
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    for a, b in split_sentences(text):
        assert set(range(a, b)) <= covered


def test_consecutive_chunks_overlap_by_whole_sentences(chunker: Chunker) -> None:
    text = " ".join(f"Short sentence {i}." for i in range(300))
    chunks = chunker.chunk(Page("/d/a.txt", 1, text))
    for first, second in zip(chunks, chunks[1:]):
        assert second.start < first.end  # overlap
        assert second.start in {a for a, _ in split_sentences(text)}  # starts at a sentence
        overlap = count_tokens([text[second.start:first.end]])[0]
        assert overlap <= Settings().chunk_overlap


@pytest.mark.parametrize("overlap", [0, 8, 16])
def test_the_last_chunk_of_a_page_is_not_a_scrap(overlap: int) -> None:
    # Greedy packing alone would end some of these pages on one 10-token sentence.
    chunker = Chunker(Settings(chunk_tokens=48, chunk_overlap=overlap))
    for n in range(5, 40):
        text = " ".join(f"This is sentence number {i} of the page." for i in range(n))
        chunks = chunker.chunk(Page("/d/a.txt", 1, text))
        if len(chunks) > 1:
            assert chunks[-1].n_tokens >= 48 // 4, (n, [c.n_tokens for c in chunks])
        assert all(c.n_tokens <= 48 and text[c.start:c.end] == c.text for c in chunks)
        assert chunks[0].start == 0 and chunks[-1].end == len(text)
        for first, second in zip(chunks, chunks[1:]):
            assert first.start < second.start <= first.end + 1  # in order, nothing skipped
            if second.start < first.end:
                assert count_tokens([text[second.start:first.end]])[0] <= overlap


def test_a_markdown_heading_starts_a_chunk() -> None:
    chunker = Chunker(Settings(chunk_tokens=48, chunk_overlap=8))
    sections = ["## Install\n\nRun the installer from the download folder now. It takes a minute or two to "
                "finish on most machines. Then restart the machine.",
                "## Use\n\nOpen the app from the start menu. Type a question about your charts and press enter. "
                "Read the answer with its quotes.",
                "## License\n\nMIT."]
    text = "# Guide\n\nThis guide covers the whole tool, from the first install to daily use, in the order " \
           "in which you will need it.\n\n" \
           + "\n\n".join(sections)
    chunks = chunker.chunk(Page("/d/guide.md", 1, text))
    # One section per chunk, titled by its heading, without the previous section's last sentence;
    # a short last section stays alone rather than borrowing from the one before it.
    assert [c.text for c in chunks[1:]] == sections
    assert chunks[0].text.startswith("# Guide") and "## Install" not in chunks[0].text
    # A heading right under a short opening stays with it: no chunk of a title alone.
    tiny = chunker.chunk(Page("/d/g.md", 1, "# Guide\n\n" + sections[0]))
    assert len(tiny) == 1


def test_a_section_never_starts_with_the_end_of_the_previous_one() -> None:
    chunker = Chunker(Settings(chunk_tokens=48, chunk_overlap=16))
    for n in range(3, 12):
        long_section = " ".join(f"Sentence {i} of the first section is here." for i in range(n))
        text = f"## First\n\n{long_section}\n\n## Second\n\nThe second section says one thing."
        chunks = chunker.chunk(Page("/d/a.md", 1, text))
        assert chunks[-1].text == "## Second\n\nThe second section says one thing.", n
        for c in chunks:
            assert "## Second" not in c.text or c.text.startswith("## Second"), (n, c.text)
        for a, b in zip(chunks, chunks[1:]):
            assert not (b.start >= a.start and b.end <= a.end), (n, b.text)  # no chunk inside another


def test_no_chunk_exceeds_the_models_word_piece_limit(chunker: Chunker) -> None:
    # Text that tiktoken packs densely but word pieces split finely: numbers, codes, accents,
    # non-Latin scripts, one very long "word". sentence-transformers would silently cut these.
    counter, limit = model_token_counter()
    texts = [
        " ".join(f"{i * 7919 % 100000}.{i % 97}%" for i in range(3000)),
        "Ünïcödé façade naïve coöperate " * 400,
        "東京都の人口は約千四百万人です。" * 300,
        "x" * 20000,
        "https://example.com/" + "a1b2c3d4" * 2000,
        " ".join(["Antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis"] * 500),
    ]
    for text in texts:
        chunks = chunker.chunk(Page("/d/t.txt", 1, text))
        assert chunks, text[:40]
        assert max(counter([c.text for c in chunks])) <= limit == 256
        assert all(text[c.start:c.end] == c.text for c in chunks)


def test_empty_and_whitespace_pages_give_no_chunks(chunker: Chunker) -> None:
    assert chunker.chunk(Page("/d/a.txt", 1, "")) == []
    assert chunker.chunk(Page("/d/a.txt", 1, " \n\n\t ")) == []


def test_chunk_size_and_overlap_are_configurable() -> None:
    text = " ".join(f"This is sentence {i} of a long page." for i in range(100))
    small = Chunker(Settings(chunk_tokens=40, chunk_overlap=0)).chunk(Page("/d/a.txt", 1, text))
    large = Chunker(Settings(chunk_tokens=200, chunk_overlap=0)).chunk(Page("/d/a.txt", 1, text))
    assert len(small) > len(large)
    assert all(c.n_tokens <= 40 for c in small)
    for first, second in zip(small, small[1:]):
        assert second.start >= first.end  # no overlap asked, none given


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3000))
def test_any_text_chunks_into_verbatim_slices(text: str) -> None:
    chunker = Chunker(Settings(chunk_tokens=48, chunk_overlap=8))
    for chunk in chunker.chunk(Page("/d/a.txt", 1, text)):
        assert text[chunk.start:chunk.end] == chunk.text
        assert chunk.text.strip()
        assert chunk.n_tokens <= 48


def test_short_sections_share_a_chunk() -> None:
    # A changelog of one-line sections: one chunk per section would be 60 scraps.
    chunker = Chunker(Settings(chunk_tokens=64, chunk_overlap=8))
    text = "\n\n".join(f"## Version 1.{n}\n\n- Fixed the export of chart {n}." for n in range(60))
    chunks = chunker.chunk(Page("/d/CHANGELOG.md", 1, text))
    assert len(chunks) <= 60 // 3
    assert all(c.n_tokens >= 64 // 2 for c in chunks[:-1])
    assert all(c.text.startswith("## Version") for c in chunks)  # each starts at a section


def test_a_comment_in_a_code_block_is_not_a_heading() -> None:
    chunker = Chunker(Settings(chunk_tokens=48, chunk_overlap=8))
    code = "```\n# install the tool first\npip install tidewater\n# then start it\ntidewater serve\n```"
    text = "## Setup\n\nThe tool installs from the package index and starts a small server.\n\n" + code
    chunks = chunker.chunk(Page("/d/setup.md", 1, "\n\n".join([text, "## Use\n\nOpen the page."])))
    assert chunks[0].text.startswith("## Setup") and chunks[0].text.endswith("```")
    assert chunks[-1].text == "## Use\n\nOpen the page."


def _report(rows: int) -> str:
    body = "\n".join(f"| Region {i} | {i * 1000:,} | {i * 37:,} |" for i in range(rows))
    return ("# Annual report\n\nSome intro. More words here.\n\n## Revenue by region\n\n"
            "| region | 2022 revenue | 2021 revenue |\n|---|---:|---:|\n" + body +
            "\n\nAfter the table, prose continues.")


def test_a_table_is_cut_by_rows_with_its_header_in_every_chunk(chunker: Chunker) -> None:
    # Before: a table was cut like prose, and a chunk could hold the header row alone.
    text = _report(60)
    chunks = chunker.chunk(Page("/d/report.md", 1, text))
    rows = [c for c in chunks if "| Region" in c.text]
    assert len(rows) >= 3
    header = "| region | 2022 revenue | 2021 revenue |"
    assert rows[0].text.startswith(header + "\n|---|")
    for c in rows[1:]:
        assert c.text.startswith("| Region ") and header in c.context
        assert "Revenue by region" in c.context
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert c.text.strip() not in (header, header + "\n|---|---:|---:|")
        # A row is never split between two chunks: numbers stay with their row label.
        for line in c.text.split("\n"):
            if line.startswith("| Region"):
                assert line.endswith("|") and line.count("|") == 4
    every_row = {line for c in rows for line in c.text.split("\n") if line.startswith("| Region")}
    assert len(every_row) == 60
    assert chunks[-1].text.endswith("After the table, prose continues.")  # no scrap chunk of its own


def test_a_small_table_stays_whole_with_its_header(chunker: Chunker) -> None:
    text = _report(4)
    chunks = chunker.chunk(Page("/d/report.md", 1, text))
    table = [c for c in chunks if "| Region 0 |" in c.text]
    assert len(table) == 1 and "| region | 2022 revenue |" in table[0].text and "| Region 3 |" in table[0].text


def test_a_chunk_under_a_heading_names_it_in_its_context(chunker: Chunker) -> None:
    prose = " ".join(f"Sentence {i} about the storage migration plan." for i in range(60))
    text = f"# Guide\n\n## Storage\n\n{prose}"
    chunks = chunker.chunk(Page("/d/user_guide.md", 1, text))
    assert len(chunks) >= 3
    assert all(c.context == "user guide · Guide › Storage" for c in chunks[1:])  # the default: "title"
    assert chunks[-1].searchable.startswith("user guide · Guide › Storage\n")
    counter, limit = model_token_counter()
    heading = Chunker(Settings(chunk_context="heading"), counter, limit).chunk(Page("/d/user_guide.md", 1, text))
    assert all(c.context == "Guide › Storage" for c in heading[1:])


def test_title_context_names_the_file_and_the_pdf_page_heading() -> None:
    counter, limit = model_token_counter()
    chunker = Chunker(Settings(chunk_context="title"), counter, limit)
    text = "Table of Contents\n3M Company and Subsidiaries\nConsolidated Statement of Cash Flows\n" + \
           " ".join(f"Line {i} of the statement shows 1,{i:03d}." for i in range(40))
    chunks = chunker.chunk(Page("/filings/3M_2018_10K.pdf", 60, text))
    assert chunks[1].context == "3M 2018 10K · 3M Company and Subsidiaries Consolidated Statement of Cash Flows"
    none = Chunker(Settings(chunk_context="none"), counter, limit).chunk(Page("/d/guide.md", 1, "# A\n\nText."))
    assert all(c.context == "" for c in none)


def _statement() -> str:
    rows = [f"Line item {i} of the statement {1000 + 37 * i:,} {900 + 31 * i:,} ({40 + i})" for i in range(36)]
    return ("Harbour Holdings Inc.\nConsolidated Statements of Cash Flows\nYears ended December 31\n"
            "(Millions) 2023 2022 2021\nCash flows from operating activities\n" + "\n".join(rows[:16]) +
            "\nCash flows from investing activities\n" + "\n".join(rows[16:]) +
            "\nThe accompanying notes are an integral part of these statements.")


def test_a_pdf_statement_is_cut_by_rows_under_its_column_header(chunker: Chunker, tmp_path) -> None:  # noqa: ANN001
    # A PDF's text layer has no table markup: the statement's rows come a line each under a
    # header line of years, and each chunk after the first names those years in its context.
    from rag.ingest.load import read_file
    from tests.conftest import write_pdf

    pdf = write_pdf(tmp_path / "statement.pdf", [_statement()])
    (page,) = read_file(pdf).pages
    chunks = chunker.chunk(page)
    assert len(chunks) >= 3
    assert chunks[0].text.startswith("Harbour Holdings Inc.") and "(Millions) 2023 2022 2021" in chunks[0].text
    for c in chunks[1:]:
        assert c.context.endswith("| (Millions) | 2023 | 2022 | 2021 |")
        assert c.text.split("\n")[0].startswith(("Line item", "Cash flows"))  # a chunk starts at a row
    for c in chunks:
        assert page.text[c.start:c.end] == c.text
        for line in c.text.split("\n"):  # a row's figures stay on the line of its label
            if line.startswith("Line item"):
                assert len(line.split()) == 9
    assert chunks[-1].text.endswith("integral part of these statements.")  # the note is no scrap of its own


def test_figures_without_a_header_of_years_are_chunked_as_prose(chunker: Chunker) -> None:
    text = "Prices by shop\n" + "\n".join(f"Shop {i} 12.50 13.75" for i in range(40))
    chunks = chunker.chunk(Page("/d/prices.pdf", 1, text))
    assert all("|" not in c.context for c in chunks)


VOTES = ("Proposal 1. With respect to the proposal to elect ten nominees to the Board of Directors, each for a "
         "one-year term expiring at the\nannual meeting of shareholders to be held in 2023, the votes were cast "
         "for the proposal as set forth below:\nName Votes For Votes Against Abstentions Broker Non-Votes\n"
         + "".join(f"{name} {54_000_000 + 137 * n:,} {5_000_000 + 91 * n:,} {10_700_000 + 13 * n:,} 6,884,223\n"
                   for n, name in enumerate(["Virginia C. Drosos", "Alan D. Feldman", "Richard A. Johnson",
                                             "Guillermo G. Marmol", "Darlene Nicosia", "Steven Oakland",
                                             "Ulice Payne, Jr.", "Kimberly Underhill", "Tristan Walker",
                                             "Dona D. Young"]))
         + "Based on the votes set forth above, each of the ten nominees to the Board was duly elected.")


def _rows_whole(text: str, chunks: list) -> None:
    rows = [line for line in text.split("\n") if re.fullmatch(r"[A-Z][\w., ]+?(?: \d[\d,]+){4}", line)]
    assert len(rows) >= 10
    for chunk in chunks:
        for line in chunk.text.split("\n"):
            # A row is in a chunk whole or not at all: no chunk ends or starts inside one.
            assert not any(line != row and line.strip() and (row.startswith(line) or row.endswith(line))
                           for row in rows), (line, chunk.text)


def test_a_long_sentence_is_never_cut_inside_a_table_row(chunker: Chunker) -> None:
    # A vote table in a PDF's text is one "sentence" (no full stop before the figures end), longer
    # than a chunk: cut by words, a boundary fell between "Guillermo G." and "Marmol".
    chunks = chunker.chunk(Page("/d/8k.pdf", 1, VOTES))
    assert len(chunks) >= 2
    _rows_whole(VOTES, chunks)
    assert any("Guillermo G. Marmol 54,000,411" in c.text for c in chunks)
    assert all(c.text == VOTES[c.start:c.end] for c in chunks)


def test_the_foot_locker_vote_table_keeps_each_nominee_with_the_figures() -> None:
    from conftest import shared_path

    from rag.ingest.load import load_file

    path = shared_path("data", "financebench", "pdfs", "FOOTLOCKER_2022_8K_dated-2022-05-20.pdf")
    page = next(p for p in load_file(path) if "Guillermo" in p.text)
    counter, limit = model_token_counter()
    chunks = Chunker(Settings(), counter, limit).chunk(page)
    _rows_whole(page.text, chunks)
    assert any("Guillermo G. Marmol 54,193,921 5,753,395 10,719,667 6,884,223" in c.text for c in chunks)


class WordsEmbedder:
    """An embedder that reads at most 24 whitespace words: its own token counter, not MiniLM's."""

    name = "words-24"
    dim = 8
    max_tokens = 24

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32, progress: Any = None) -> np.ndarray:
        vectors = np.ones((len(texts), self.dim), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_documents(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) for text in texts]


SHORT_SENTENCES = " ".join(f"The keeper logged ship number {n} near the harbour." for n in range(12))


def test_chunks_are_sized_by_the_token_counter_of_the_embedder_in_use(tmp_path: Path) -> None:
    # MiniLM's word pieces fit the twelve sentences in one chunk; an embedder that reads 24 words
    # gets chunks of 24 words or fewer, cut at sentences, from the same ingest.
    assert len(Chunker(Settings(), *embedder_token_counter(Settings())).chunk(Page("/d/log.txt", 1, SHORT_SENTENCES))) == 1
    embedder = WordsEmbedder()
    assert embedder_token_counter(Settings(), embedder) == (embedder.count_tokens, 24)
    (tmp_path / "log.txt").write_text(SHORT_SENTENCES, encoding="utf-8")
    index = Index.build([tmp_path / "log.txt"], tmp_path / "idx", embedder=embedder)
    snapshot = index.snapshot()
    chunks = snapshot.chunks(range(snapshot.count))
    assert len(chunks) >= 5
    assert all(len(c.text.split()) <= 24 and c.text.endswith("harbour.") for c in chunks)


def test_the_end_of_a_section_never_carries_the_start_of_the_next() -> None:
    # The last paragraph of a long section, left over after packing, is a chunk of its own when it is
    # no scrap: joined to the next section it hid that section's opening under the wrong heading.
    # Sentences longer than the overlap, so that no chunk opens with the end of the one before.
    long_section = " ".join(f"Sentence {n} of the follow-up section tells, at some length and with many words, how a "
                            "conversation is read by the search, what each earlier turn adds to the question, which "
                            "turns are left out when the conversation grows long, and why." for n in range(3))
    tail = ("Limits are the same everywhere, on the page, in the API, over MCP, on the command line and in the "
            "library: a question is at most 4,000 characters, and a follow-up reads the conversation's last 40 "
            "messages, at most 40,000 characters; older turns are left out.")
    text = f"## Follow-up questions\n\n{long_section}\n\n{tail}\n\n## The web chat\n\n`rag serve` starts the web chat."
    chunks = Chunker(Settings()).chunk(Page(source="/d/guide.md", page=1, text=text))
    opening = [c for c in chunks if "starts the web chat" in c.text]
    assert len(opening) == 1 and opening[0].text.startswith("## The web chat")

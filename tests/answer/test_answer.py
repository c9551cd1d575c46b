"""The extractive answerer: the seed question, quotes always verbatim, abstention, span extraction."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import Index
from rag.types import NOT_FOUND
from rag.types import Quote
from rag.verify import verify_quotes
from tests.conftest import write_pdf

HARBOUR = """The Port of Calder

The harbour of Calder was founded in 1623 by the merchant Elena Vasquez. She named it after her home town in Castile.

By 1850 the port handled more than 12,000 ships a year. Most of them carried timber, wool and salted fish to Lisbon and Antwerp.

The lighthouse on Gull Rock was designed by the engineer Thomas Reed. It was lit for the first time on 3 March 1871 and can be seen from 30 kilometres away.

In 1944 a storm destroyed the northern pier. The town council rebuilt it in 1952 at a cost of 4 million pounds.
"""

ORCHARD = [
    "Apple growing in the valley began in the 18th century. The Bramley orchards cover 450 hectares today.",
    "The annual harvest festival takes place in October in the village of Ashby. Farmers sell cider and apple "
    "juice at the market square.",
]


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    docs = tmp_path_factory.mktemp("answer-docs")
    (docs / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    write_pdf(docs / "orchard.pdf", ORCHARD)
    return Index.build([docs], tmp_path_factory.mktemp("answer-index"))


def assert_verbatim(index: Index, quotes: tuple[Quote, ...] | list[Quote]) -> None:
    for quote in quotes:
        page = index.page_text(quote.source, quote.page)
        assert page is not None and quote.text and page[quote.start:quote.end] == quote.text


# -- the seed question --------------------------------------------------------------------------


def test_seed_question_names_rajavi_and_quotes_the_delegations_sentence(seed_index: Index, seed_file: Path) -> None:
    answer = seed_index.ask("Who called for UN visits?")
    assert answer.found and answer.mode == "extractive"
    assert answer.span in ("Mrs. Maryam Rajavi", "Maryam Rajavi")
    # The span is the headline; the text is its sentence with the span in bold, cited.
    assert answer.text == f"**{answer.span}** " + " ".join(answer.citations[0].text.split())[len(answer.span) + 1:] + " [1]"
    page = seed_file.read_text(encoding="utf-8")
    quote = answer.citations[0]
    assert quote.name == seed_file.name and quote.page == 1
    # The name's sentence and the delegations sentence that says what "visits" means, as one quote.
    assert quote.text.startswith("Mrs. Maryam Rajavi has called on the United Nations")
    assert "She said it is essential for international delegations to visit Iran" in quote.text
    assert quote.start == page.index("Mrs. Maryam Rajavi has called on the United Nations")
    assert_verbatim(seed_index, answer.citations)


def test_seed_off_topic_question_is_declined_with_closest_passages(seed_index: Index) -> None:
    answer = seed_index.ask("Who won the football world cup in 2018?")
    assert not answer.found
    assert answer.text == NOT_FOUND and answer.citations == ()
    assert answer.hits, "the closest passages are still listed"


# -- answers over a small corpus -----------------------------------------------------------------


@pytest.mark.parametrize(("question", "expected"), [
    ("When was the harbour of Calder founded?", "1623"),
    ("Who designed the lighthouse on Gull Rock?", "Thomas Reed"),
    ("How many ships did the port handle by 1850?", "12,000"),
    ("Who founded the harbour of Calder?", "Elena Vasquez"),
])
def test_typed_questions_get_the_short_span(small_index: Index, question: str, expected: str) -> None:
    answer = small_index.ask(question)
    assert answer.found, answer.notes
    assert expected in answer.span and len(answer.span) < 40
    assert expected in answer.citations[0].text
    assert f"**{' '.join(answer.span.split())}**" in answer.text and answer.text.endswith("[1]")
    assert_verbatim(small_index, answer.citations)


def test_the_answer_lists_its_own_passage_first(tmp_path: Path) -> None:
    # Answer.hits are the passages read, ordered as the answer weighed them: the answer's own
    # first (bench/studies/reader_rerank.py: the first passage is right more often than in search order).
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "visit.txt").write_text(
        "Visiting the lighthouse on Gull Rock\n\nThe lighthouse on Gull Rock is the best known lighthouse of the "
        "coast. Visitors to the Gull Rock lighthouse can climb its 120 steps, and the shop on Gull Rock sells maps "
        "of the lighthouse.\n", encoding="utf-8")
    (docs / "history.txt").write_text(
        "History\n\nThe Gull Rock tower was designed by the engineer Thomas Reed in 1869. Its lamp was made in "
        "Birmingham.\n", encoding="utf-8")
    index = Index.build([docs], tmp_path / "index")
    question = "Who designed the lighthouse on Gull Rock?"
    searched = index.search(question, 5)
    answer = index.ask(question, k=5)
    assert answer.found and answer.span == "Thomas Reed"
    assert [h.name for h in searched] == ["visit.txt", "history.txt"]  # retrieval puts the wordier page first
    assert [h.name for h in answer.hits] == ["history.txt", "visit.txt"]
    assert [h.rank for h in answer.hits] == [1, 2]
    assert answer.citations[0].source == answer.hits[0].source


def test_answer_from_a_pdf_page_cites_that_page(small_index: Index) -> None:
    answer = small_index.ask("In which month is the harvest festival in Ashby?")
    assert answer.found
    assert answer.citations[0].name == "orchard.pdf" and answer.citations[0].page == 2
    assert "October" in answer.citations[0].text
    assert_verbatim(small_index, answer.citations)


def test_unrelated_question_is_declined(small_index: Index) -> None:
    answer = small_index.ask("What is the boiling point of liquid nitrogen?")
    assert not answer.found and answer.text == NOT_FOUND
    assert answer.hits and not answer.citations
    assert any("best guess" in note for note in answer.notes)


def test_the_decision_adds_the_best_passage_s_similarity_to_the_reader_s_margin(small_index: Index) -> None:
    from rag.answer.extractive import best_similarity
    from rag.answer.reader import load_reader

    info = load_reader().info
    assert info.similarity_weight > 0, "reader.json holds the calibrated weight"
    question = "Who designed the lighthouse on Gull Rock?"
    answer = small_index.ask(question)
    never = small_index.ask(question, abstain_threshold=-1e9)
    widest = never.confidence - info.similarity_weight * best_similarity(never.hits)
    hits = small_index.search(question, 5)
    spans = load_reader().read(question, [h.chunk.text for h in hits])
    assert widest == pytest.approx(max(s.margin for s in spans), abs=1e-4)
    assert answer.confidence == pytest.approx(never.confidence) and answer.found == (
        answer.confidence >= info.no_answer_score)
    # A threshold of one's own is held against the same confidence.
    above = small_index.ask(question, abstain_threshold=answer.confidence + 0.01)
    assert not above.found and f"< {answer.confidence + 0.01:.2f}" in above.notes[0]


def test_without_dense_scores_the_margin_alone_decides(small_index: Index) -> None:
    from rag.answer.extractive import best_similarity
    from rag.answer.reader import load_reader

    info = load_reader().info
    answer = small_index.ask("Who designed the lighthouse on Gull Rock?", fusion="bm25")
    assert best_similarity(answer.hits) is None, "BM25 alone gives no dense score"
    assert answer.found and answer.confidence >= info.no_answer_margin
    declined = small_index.ask("Who designed the lighthouse on Gull Rock?", fusion="bm25",
                               abstain_threshold=answer.confidence + 0.01)
    assert not declined.found


def test_tampered_quote_is_never_kept(small_index: Index) -> None:
    hit = small_index.search("lighthouse Gull Rock", k=1)[0]
    good = hit.quote
    shifted = Quote(good.text, good.source, good.page, good.start + 1, good.end + 1)
    altered = Quote(good.text.replace("Reed", "Read"), good.source, good.page, good.start, good.end)
    unknown = Quote(good.text, "/nowhere.txt", 1, good.start, good.end)
    kept, dropped = verify_quotes([good, shifted, altered, unknown], small_index)
    assert kept == [good] and dropped == [shifted, altered, unknown]


_WORDS = sorted({w for w in re.findall(r"[A-Za-z][A-Za-z,']+", HARBOUR + " ".join(ORCHARD))})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wh=st.sampled_from(["Who", "When", "Where", "How many", "What", "Which", "Why", ""]),
       words=st.lists(st.sampled_from(_WORDS) | st.text(min_size=1, max_size=12), min_size=1, max_size=8))
def test_every_returned_quote_is_verbatim_on_its_page(small_index: Index, wh: str, words: list[str]) -> None:
    question = f"{wh} {' '.join(words)}?".strip()
    if not question.strip("? "):
        return
    answer = small_index.ask(question)
    assert_verbatim(small_index, answer.citations)
    assert_verbatim(small_index, [hit.quote for hit in answer.hits])
    if answer.found:
        assert answer.citations and (answer.span or answer.kind != "fact")
        assert " ".join(answer.span.split()) in " ".join(" ".join(q.text for q in answer.citations).split())
    else:
        # A decline says so first; a close guess follows in words, never as a citation.
        assert answer.text.startswith(NOT_FOUND) and not answer.citations


@pytest.mark.slow
def test_squad_answers_contain_gold_and_quotes_are_verbatim(tmp_path_factory: pytest.TempPathFactory) -> None:
    from rag.eval.datasets import load_squad
    from rag.eval.metrics import contains_answer
    from tests.conftest import shared_path

    question_set = load_squad(shared_path("data", "squad2-dev", "squad2-dev-half-a.json"),
                              cache_dir=tmp_path_factory.mktemp("squad-docs"))
    index = Index.build(question_set.corpus, tmp_path_factory.mktemp("squad-index"))
    answerable = [q for q in question_set.questions if not q.unanswerable][::10]
    right = 0
    for q in answerable:
        answer = index.ask(q.question)
        assert_verbatim(index, answer.citations)
        first = answer.citations[0].text if answer.citations else ""
        right += answer.found and (contains_answer(answer.text, q.answers) or contains_answer(first, q.answers))
    # bench/studies/squad_answer.py measures the reader end to end; this floor only catches breakage.
    assert right / len(answerable) > 0.5


def one_file_index(docs: Path, index: Path, name: str, text: str) -> Index:
    """A real index of one file, ``docs/name``, holding ``text``."""
    docs.mkdir(parents=True, exist_ok=True)
    (docs / name).write_text(text, encoding="utf-8")
    return Index.build([docs], index)


def test_the_answer_reads_as_one_line_and_the_quote_keeps_the_page(tmp_path: Path) -> None:
    index = one_file_index(tmp_path / "docs", tmp_path / "index", "notes.md",
                           "The harbour office keeps the tide tables\nfor every port of the bay in its archive.\n")
    answer = index.ask("What does the harbour office keep in its archive?")
    assert answer.found, answer.notes
    assert "\n" not in answer.text and "tide tables" in answer.text
    assert answer.citations[0].text == "The harbour office keeps the tide tables\nfor every port of the bay in its archive."


def test_a_document_holding_the_question_is_not_answered_with_its_words(tmp_path: Path) -> None:
    # A FAQ that repeats the question used to give "Who" as the answer.
    index = one_file_index(tmp_path / "docs", tmp_path / "index", "faq.md",
                           "Who designed the lighthouse on Gull Rock?\n\nThe lighthouse on Gull Rock was designed "
                           "by the engineer Thomas Reed in 1869.\n")
    answer = index.ask("Who designed the lighthouse on Gull Rock?")
    assert answer.found, answer.notes
    assert "Thomas Reed" in answer.span


def test_amounts_and_numbers_are_whole(tmp_path: Path) -> None:
    index = one_file_index(tmp_path / "docs", tmp_path / "index", "report.txt",
                           "Streaming grew quickly. At December 31, 2017, the company had 117,582 thousand paid "
                           "memberships. Revenue for the year was $11.69 billion, up from $8.83 billion.\n")
    members = index.ask("How many paid memberships did the company have at the end of 2017?")
    assert members.found and "117,582" in members.span and members.span != "31,"
    revenue = index.ask("What was the revenue for the year?")
    assert revenue.found and "$11.69 billion" in revenue.span


def test_a_markdown_heading_is_read_but_never_the_answer(tmp_path: Path) -> None:
    # Over the user guide, "Which environment variable chooses the index folder?" was answered
    # "## Collections": the reader reaches for a heading when the text below it does not answer.
    guide = ("## Collections\nAn index folder can hold several separate collections of documents: say `reports` "
             "for your filings and `papers` for articles.\n\n## Tides\nThe harbour office keeps the tide tables "
             "of the bay.\n")
    index = one_file_index(tmp_path / "docs", tmp_path / "index", "guide.md", guide)
    answer = index.ask("Which environment variable chooses the index folder?")
    assert not answer.found and "Collections" not in answer.span  # the guide does not say: declined
    kept = index.ask("What does the harbour office keep?")
    assert kept.found and "tide tables" in kept.span

"""Every kind of question answered in its form: facts as spans, the rest in whole sentences, steps
and lists whole, summaries of whole documents, page furniture never quoted."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import Index, RagError
from rag.answer.boilerplate import is_boilerplate, repeated_lines
from rag.answer.extractive import years_not_read
from rag.types import NOT_FOUND
from rag.answer.kinds import classify
from rag.answer.sentences import units
from tests.conftest import write_pdf

GUIDE = """# Lantern user guide

Lantern is a command-line tool that turns a folder of photographs into a searchable catalogue.

## Installing

To install Lantern, follow these steps:

1. Download the archive from the release page.
2. Unpack it into a folder of your choice.
3. Run `lantern setup` once to create the catalogue.

## Supported cameras

Lantern reads the pictures of these camera makers:

- Canon, including the older PowerShot models
- Nikon
- Fujifilm
- Olympus

## Why catalogues are rebuilt

Lantern rebuilds the catalogue when the thumbnail size changes. Thumbnails of another size would
not line up with the grid of the viewer, so every picture is read again.

## Privacy

Lantern never uploads your pictures. Everything stays on your own disk.

## Serving the catalogue

The catalogue can be browsed from other computers. To share it on your network, start the viewer with
the address to listen on:

```
lantern serve --host 0.0.0.0 --port 8080
```
"""

FLOOD = """<html><head><title>After a flood</title></head><body>
<nav>Home | About Us | Contact Us | Site Map</nav>
<h1>After a flood</h1>
<p>After a flood, return home only when the authorities say it is safe. Wear boots and gloves while
you clean, and throw away any food that touched flood water.</p>
<p>Call your insurance company to report the damage and take photographs of everything that was damaged.</p>
<footer>Contact Us Site Map Privacy Policy</footer>
</body></html>
"""


@pytest.fixture(scope="module")
def guide_index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    docs = tmp_path_factory.mktemp("kinds-docs")
    (docs / "lantern.md").write_text(GUIDE, encoding="utf-8")
    (docs / "flood.html").write_text(FLOOD, encoding="utf-8")
    return Index.build([docs], tmp_path_factory.mktemp("kinds-index"))


def assert_verbatim(index: Index, quotes) -> None:  # noqa: ANN001 - a tuple of Quote
    for quote in quotes:
        page = index.page_text(quote.source, quote.page)
        assert page is not None and quote.text and page[quote.start:quote.end] == quote.text


@pytest.mark.parametrize(("question", "kind"), [
    ("Who called for UN visits?", "fact"),
    ("How many people died?", "fact"),
    # a possessive before a word that asks for several things, or for a description
    ("What are Best Buy's main risks?", "list"),
    ("What is Amcor's business?", "definition"),
    ("What is Tucson's CBS station?", "fact"),
    ("What is rag?", "definition"),
    ("What does RRF stand for?", "definition"),
    ("How do I run the tests?", "procedure"),
    ("How to hire a lawyer", "procedure"),
    ("Why did the regime arrest them?", "explanation"),
    ("How does the reader choose a span?", "explanation"),
    ("Does rag send my documents anywhere?", "yesno"),
    ("What are the supported file formats?", "list"),
    ("Which file types can I upload?", "list"),
    ("What is the difference between dense and lexical search?", "comparison"),
    ("Summarize the document.", "summary"),
    ("What is this article about?", "summary"),
    ("What are the main points of the report?", "summary"),
    ("Virtualization", "keyword"),
])
def test_the_kind_of_answer_a_question_wants(question: str, kind: str) -> None:
    assert classify(question) == kind


@pytest.mark.parametrize(("question", "kind"), [
    # the words a turn opens with, a clause before the question, a request, the sentence that asks
    ("Ok, thanks. And how do I print the letter?", "procedure"),
    ("If I move to another state, what happens to my benefits?", "explanation"),
    ("My plates were stolen last night. What should I do?", "procedure"),
    ("Can you tell me how to renew my licence?", "procedure"),
    ("Could you explain how the reader works?", "explanation"),
    ("Tell me whether the index is kept on disk.", "yesno"),
    ("I want to know more about the water at Camp Lejeune", "definition"),
    ("I need to know if I can apply online.", "yesno"),
    ("I need help using the loan simulator.", "procedure"),
    ("Describe the chunking.", "definition"),
    ("Hello, I would like to obtain information about benefits for a child", "definition"),
    ("Do you have more info on ID cards?", "definition"),
    # a judgement is answered by reasons; a problem stated by the steps that fix it
    ("Is it safe?", "explanation"),
    ("Should I put my savings in an index fund?", "explanation"),
    ("Does the reader run offline?", "yesno"),
    ("Any tips for a first interview?", "explanation"),
    ("Does a pension help to get a loan?", "explanation"),
    ("What do you recommend for a beginner?", "explanation"),
    ("What should I do if my card is stolen?", "procedure"),
    ("My payment keeps failing with an error", "procedure"),
    ("Why can't I log in?", "procedure"),
    ("I do not know how to set up namespaces", "procedure"),
    ("the web page does not load", "procedure"),
    ("I get an error when I run make run", "procedure"),
    ("What would happen if I paid late?", "explanation"),
    # a choice, a comparison, and things that only look like them
    ("FIFO or LIFO?", "comparison"),
    ("Is the Hudson longer or shorter than the Mississippi?", "comparison"),
    ("Is it a PDF or a Word file?", "fact"),
    ("Renting vs buying a home", "comparison"),
    ("What compound is absorbed better than zinc gluconate?", "fact"),
    ("Which is better, renting or buying?", "comparison"),
    ("What are the similarities between a lease and a loan?", "comparison"),
    # names and values, not descriptions; a summary is asked for, not mentioned
    ("What is the capital's airport called?", "fact"),
    ("What is Tucson's CBS station?", "fact"),
    ("How would you describe an animal that eats only plants?", "fact"),
    ("Which state receives the most rain?", "fact"),
    ("Which rivers are navigable?", "list"),
    ("What is the best-known summary of Calvin's teachings?", "fact"),
    ("Give me an overview of the report", "summary"),
    ("Can you summarize this document?", "summary"),
    # bare keywords, and a statement that is not one
    ("view my invoices and status", "keyword"),
    ("Container Registry Grant Access", "keyword"),
    ("Error codes", "keyword"),
    ("What commands are there?", "list"),
])
def test_the_kind_of_a_question_as_people_type_it(question: str, kind: str) -> None:
    assert classify(question) == kind


def test_a_follow_up_that_names_no_kind_wants_what_the_question_before_it_wanted() -> None:
    def after(previous: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": previous}, {"role": "assistant", "content": "An answer [1]."}]

    assert classify("and what about the fees?", after("How do I renew my licence?")) == "procedure"
    assert classify("Ok, and the host?", after("How do I change the port?")) == "procedure"
    assert classify("And the host?", after("Which port does the server use?")) == "fact"
    assert classify("tell me more", after("Why is the index rebuilt?")) == "explanation"
    assert classify("Yes, last week.", after("How do I get new plates?")) == "procedure"  # a reply to "Were they stolen?"
    # a question of its own after "what about" keeps its kind; a summary or a bare reply lends none
    assert classify("what about why I can't apply a feature code?", after("What is a feature code?")) == "explanation"
    assert classify("and what about the fees?", after("Summarize the document.")) == "fact"
    assert classify("what about the fees?", after("Yes, I have")) == "fact"
    # alone, or with nothing before it, the same words read as themselves
    assert classify("tell me more") == "definition"
    assert classify("Yes, last week.") == "keyword"
    assert classify("and what about the fees?", []) == "fact"
    # OpenAI's list-of-parts content is read; entries that are not messages are passed over (ask refuses them)
    parts = [{"role": "user", "content": [{"type": "text", "text": "How do I renew my licence?"}]}]
    assert classify("and the fees?", parts) == "procedure"
    assert classify("and the fees?", [7, {"role": "user", "content": None}]) == "fact"  # type: ignore[list-item]


def test_units_keep_list_items_and_code_blocks_whole() -> None:
    text = "To install:\n\n1. Download it.\n2. Unpack it\n   anywhere.\n\n```\nlantern setup\n```\nDone now, really."
    got = [(text[u.start:u.end], u.role) for u in units(text)]
    assert got == [("To install:", "sentence"), ("1. Download it.", "item"), ("2. Unpack it\n   anywhere.", "item"),
                   ("```\nlantern setup\n```", "code"), ("Done now, really.", "sentence")]


def test_a_page_s_title_line_never_runs_into_its_first_sentence(tmp_path: Path) -> None:
    text = "Infertility\nThe main cause of male infertility is low semen quality. It can be treated."
    assert [text[u.start:u.end] for u in units(text, opens_page=True)] == [
        "The main cause of male infertility is low semen quality.", "It can be treated."]
    # Only a page's own first line: a passage cut from inside a page opens wherever the cut fell,
    # and a line wrapped mid-sentence is never a title.
    assert text[units(text)[0].start:].startswith("Infertility")
    wrapped = "You point it at a folder of\nPDF files. It reads them."
    assert [wrapped[u.start:u.end] for u in units(wrapped, opens_page=True)][0] == "You point it at a folder of\nPDF files."
    (tmp_path / "fertility.txt").write_text(
        "Infertility\nThe main cause of male infertility is low semen quality. In women, the main cause is a "
        "failure to ovulate.\n", encoding="utf-8")
    index = Index.build([tmp_path / "fertility.txt"], tmp_path / "index")
    answer = index.ask("What is the main cause of male infertility?")
    assert answer.found and answer.text.startswith("The main cause") and "Infertility The" not in answer.text


def test_a_procedure_keeps_all_its_steps(guide_index: Index) -> None:
    answer = guide_index.ask("How do I install Lantern?")
    assert answer.found and answer.kind == "procedure"
    for step in ("1. Download the archive", "2. Unpack it", "3. Run `lantern setup`"):
        assert step in answer.text
    assert_verbatim(guide_index, answer.citations)


def test_a_command_block_answers_a_procedure_whole(guide_index: Index) -> None:
    answer = guide_index.ask("How do I share the catalogue on my network?")
    assert answer.found and answer.kind == "procedure"
    assert "lantern serve --host 0.0.0.0 --port 8080" in answer.text and "```" in answer.text
    assert_verbatim(guide_index, answer.citations)


def test_a_follow_up_is_answered_in_the_form_of_the_question_before_it(guide_index: Index) -> None:
    # Read alone, "and what about sharing it on my network?" names no kind and was answered with a span.
    first = guide_index.ask("How do I install Lantern?")
    history = [{"role": "user", "content": "How do I install Lantern?"}, {"role": "assistant", "content": first.text}]
    answer = guide_index.ask("and what about sharing it on my network?", history=history)
    assert answer.found and answer.kind == "procedure"
    assert "lantern serve --host 0.0.0.0 --port 8080" in answer.text and "```" in answer.text
    assert_verbatim(guide_index, answer.citations)


def test_bold_goes_around_inline_code_never_inside_it() -> None:
    from rag.answer.sentences import Scored, Unit, quotes_and_text
    from rag.types import Chunk, Hit, Quote

    text = "To let others reach it, start it with `rag serve --host 0.0.0.0`."
    chunk = Chunk(id="c", source="/d/g.md", page=1, start=0, end=len(text), text=text, n_tokens=20)
    hit = Hit(chunk=chunk, score=1.0, rank=1, quote=Quote(text=text, source="/d/g.md", page=1, start=0, end=len(text)))
    inner = text.index("rag serve")
    answer, _ = quotes_and_text([hit], [Scored(0, Unit(0, len(text), "sentence", 1), 1.0)],
                                (0, inner, inner + len("rag serve --host 0.0.0.0")))
    assert answer == "To let others reach it, start it with **`rag serve --host 0.0.0.0`**. [1]"


def test_a_list_keeps_all_its_items(guide_index: Index) -> None:
    answer = guide_index.ask("Which cameras does Lantern support?")
    assert answer.found and answer.kind == "list"
    for maker in ("Canon", "Nikon", "Fujifilm", "Olympus"):
        assert maker in answer.text
    assert_verbatim(guide_index, answer.citations)


def test_a_definition_is_the_sentence_that_defines(guide_index: Index) -> None:
    answer = guide_index.ask("What is Lantern?")
    assert answer.found and answer.kind == "definition"
    assert "command-line tool that turns a folder of photographs" in answer.text
    assert answer.text.rstrip().endswith("]") and answer.citations


def test_an_explanation_is_answered_in_whole_sentences(guide_index: Index) -> None:
    answer = guide_index.ask("Why does Lantern rebuild the catalogue?")
    assert answer.found and answer.kind == "explanation"
    assert "thumbnail size changes" in answer.text
    # Whole sentences: the answer opens where a sentence of the page opens.
    first = answer.citations[0]
    page = guide_index.page_text(first.source, first.page)
    assert page is not None and (first.start == 0 or page[first.start - 1] in " \n")
    assert_verbatim(guide_index, answer.citations)


def test_navigation_and_footers_are_never_the_answer(guide_index: Index) -> None:
    answer = guide_index.ask("What should we do after a flood?")
    assert answer.found
    assert "Site Map" not in answer.text and "Contact Us" not in answer.text
    assert "return home only when the authorities say it is safe" in answer.text


def test_boilerplate_is_told_apart_from_sentences() -> None:
    assert is_boilerplate("Contact Us Site Map")
    assert is_boilerplate("Home | About Us | Contact Us | Site Map")
    assert is_boilerplate("We use cookies to improve your experience")
    assert not is_boilerplate("Call your insurance company to report the damage.")
    assert not is_boilerplate("Copyright law protects a work for seventy years after its author's death.")
    pages = [f"ACME Corp. Annual Report 2023\nSection {word} says something new.\nPage {n} of 9"
             for n, word in enumerate("one two three four five six seven eight nine".split(), start=1)]
    assert repeated_lines(pages) == {"ACME Corp. Annual Report #", "Page # of #"}


def test_the_seed_anchor_stays_a_fact(seed_index: Index) -> None:
    answer = seed_index.ask("Who called for UN visits?")
    assert answer.found and answer.kind == "fact" and "Maryam Rajavi" in answer.span
    assert "delegations to visit Iran" in " ".join(q.text for q in answer.citations)


@pytest.mark.parametrize("question", ["What is this article about?", "Summarize the document."])
def test_a_summary_covers_the_whole_article(seed_index: Index, question: str) -> None:
    answer = seed_index.ask(question)
    assert answer.found and answer.kind == "summary"
    assert 3 <= len(answer.citations) <= 7
    assert_verbatim(seed_index, answer.citations)
    text = answer.text
    # Its main points, from the first paragraph to the later ones, in document order.
    assert "taking to the streets" in text and "Coronavirus" in text
    assert "prison" in text or "arrests" in text
    starts = [q.start for q in answer.citations]
    assert starts == sorted(starts)
    assert all(f"[{n}]" in text for n in range(1, len(answer.citations) + 1))


def test_summarize_names_the_document_and_refuses_an_unknown_one(guide_index: Index) -> None:
    answer = guide_index.summarize("lantern.md")
    assert answer.found and answer.kind == "summary" and answer.citations
    assert {q.name for q in answer.citations} == {"lantern.md"}
    # A question naming a file among several summarises that file.
    assert {q.name for q in guide_index.ask("Summarize lantern.md").citations} == {"lantern.md"}
    with pytest.raises(RagError, match="not in the index"):
        guide_index.summarize("missing.pdf")


def test_a_summary_of_a_pdf_leaves_out_its_running_header(tmp_path: Path) -> None:
    pages = [f"Harbour Authority Report 2023\nThe harbour {topic}. The board discussed it in its meeting of "
             f"week {n * 7}.\nPage {n}" for n, topic in enumerate(
                 ["dredged the northern channel to twelve metres", "opened a second container terminal",
                  "replaced the lighthouse lamp with a modern LED beacon", "trained forty new pilots for the port",
                  "repaired the storm damage to the eastern pier"], start=1)]
    write_pdf(tmp_path / "report.pdf", pages)
    index = Index.build([tmp_path / "report.pdf"], tmp_path / "index")
    answer = index.summarize("report.pdf")
    assert answer.found and len(answer.citations) >= 3
    assert "Harbour Authority Report" not in answer.text
    assert len({q.page for q in answer.citations}) >= 3  # it reads the whole document, not one page


def test_a_long_message_is_read_with_the_question_at_its_end(seed_index: Index) -> None:
    template = ("You are a helpful assistant for a newsroom. Use the context the user gives you, be precise, "
                "cite your sources and keep the answer short. ") * 8
    answer = seed_index.ask(template + "Who called for UN visits?")
    assert answer.found and "Maryam Rajavi" in answer.span


def test_a_close_guess_is_offered_in_words_and_a_far_one_is_not(guide_index: Index) -> None:
    far = guide_index.ask("Who won the football world cup in 2018?")
    assert not far.found and far.text == NOT_FOUND and not far.citations


def test_answer_to_dict_carries_the_kind(guide_index: Index) -> None:
    payload = guide_index.ask("How do I install Lantern?").to_dict()
    assert payload["kind"] == "procedure"


def test_a_paragraph_leading_into_a_command_answers_with_it(tmp_path: Path) -> None:
    from rag.answer.sentences import _command_after, units

    text = ("## Adding photos\n\nUse `lantern add` with one or more folders. Folders are read recursively.\n\n"
            "```\nlantern add ~/pictures ~/phone/camera\n```\n\nThe catalogue is saved in `catalogue/`.\n")
    us = units(text)
    assert [u.role for u in us] == ["sentence", "sentence", "code", "sentence"]
    assert _command_after(text, us, 0) == 2 and _command_after(text, us, 3) is None
    (tmp_path / "guide.md").write_text(GUIDE + "\n" + text, encoding="utf-8")
    index = Index.build([tmp_path / "guide.md"], tmp_path / "index")
    answer = index.ask("How do I add my photos?")
    # the sentence, the one after it and the command, whole (a decline's best guess says the same)
    assert "Use `lantern add` with one or more folders. Folders are read recursively." in " ".join(answer.text.split())
    assert "lantern add ~/pictures ~/phone/camera" in answer.text


COMPANY = """# Harbour Foods annual report

Investor contacts: 881 174 +41 78 698 69 40 +1 847 204 2319 ir@harbourfoods.example press@harbourfoods.example
Harbour Foods plc Registered Office: 3rd Floor, 44 Esplanade, St Helier, JE4 9WG, Jersey Company Number: 126984,
Registered Body Number (ARBN): 630 385 278 6 and 7 and 8 and 9 and 10 and 11 and 12 and 13 and 14 and 15 16 17 18

## About Harbour Foods

Harbour Foods is a maker of canned fish and smoked salmon for shops along the northern coast. It buys its fish
from forty family boats and smokes it in two plants near Brest. Its products are sold under the Gull Rock brand.

## Results

Revenue was $39,117 million in 2019, up 7% from $36,397 million in 2018.

## Losses

The company wrote off two smoking ovens after a fire in March. The insurer paid for one of them.
"""


def test_a_description_is_never_a_contact_block(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text(COMPANY, encoding="utf-8")
    index = Index.build([tmp_path / "report.md"], tmp_path / "index")
    answer = index.ask("What is Harbour Foods's business?")
    assert answer.kind == "definition" and answer.found
    text = " ".join(answer.text.split())
    assert "canned fish and smoked salmon" in text and "@" not in text and "Registered Office" not in text
    # A short sentence takes its paragraph's neighbours, never the paragraph before or after it.
    assert "forty family boats" in text and "Revenue" not in text
    assert_verbatim(index, answer.citations)


def test_a_fact_no_span_answers_is_answered_in_sentences(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text(COMPANY, encoding="utf-8")
    index = Index.build([tmp_path / "report.md"], tmp_path / "index")
    answer = index.ask("anything on losses?")
    # Its sentences, not a bare span ("smoking ovens"), answered or offered as "Possibly: ..." on a
    # document this small (its passages come no closer to the question).
    assert "The company wrote off two smoking ovens after a fire in March." in answer.text
    # A question after one value the documents do not hold is not answered with sentences about the topic.
    assert not index.ask("Which bank did Harbour Foods borrow from?").found
    # A fact keeps its span as the headline and its sentence, span in bold, as the text.
    fact = index.ask("How much was revenue in 2019?")
    assert fact.found and fact.kind == "fact" and "39,117" in fact.span
    assert f"**{' '.join(fact.span.split())}**" in fact.text and "Revenue was" in fact.text


KETTLE = """# Kettle manual

## Troubleshooting

- "no water": fill the tank up to the line and close the lid before you switch it on.
- "port 8080 is already in use": another program holds the port. Choose another one with `kettle serve --port 8081`.
- "damaged catalogue": delete the folder `data/` and build the catalogue again.

## Storage

Kettle keeps the catalogue in the folder `data/` unless you give another one with `--data DIR`. Supported file
types are JPEG, PNG, TIFF and the RAW files of most cameras.

## Makers

Kettle was written by Ada Brandt in Rotterdam. She started it in 2019 to sort the photographs of her
grandfather's shipyard, and it grew from there into the catalogue it is today.
"""


@pytest.fixture(scope="module")
def kettle_index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    docs = tmp_path_factory.mktemp("kettle-docs")
    (docs / "kettle.md").write_text(KETTLE, encoding="utf-8")
    return Index.build([docs], tmp_path_factory.mktemp("kettle-index"))


def test_one_item_of_a_list_of_problems_answers_a_how_to_alone(kettle_index: Index) -> None:
    # A troubleshooting list is no procedure: its port item answers, not every problem it lists.
    answer = kettle_index.ask("How do I change the port?")
    # (answered, or offered as "Possibly: ..." on a document this small)
    assert "--port 8081" in answer.text
    assert "fill the tank" not in answer.text and "damaged catalogue" not in answer.text
    assert_verbatim(kettle_index, answer.citations)
    # A question that asks for a list still gets the whole of it.
    listed = kettle_index.ask("What are all the troubleshooting problems?")
    assert listed.kind == "list" and "fill the tank" in listed.text and "damaged catalogue" in listed.text


def test_a_sentence_before_joins_an_answer_only_when_it_is_on_the_question(kettle_index: Index) -> None:
    answer = kettle_index.ask("What file types can Kettle use?")
    assert answer.found and "JPEG, PNG, TIFF" in answer.text
    # The paragraph changes its point: where the catalogue is kept says nothing of file types, and
    # "Kettle", the manual's own subject, is no sign that it does.
    assert "keeps the catalogue" not in answer.text
    assert_verbatim(kettle_index, answer.citations)


def test_a_fact_is_its_sentence_not_its_paragraph(kettle_index: Index) -> None:
    fact = kettle_index.ask("Who wrote Kettle?")
    assert fact.found and fact.kind == "fact" and "Ada Brandt" in fact.span
    # The span's sentence, the span in bold; the rest of the paragraph answers another question
    # ("Which Python version does rag need?" padded with how `make run` installs was worse).
    assert fact.text == "Kettle was written by **Ada Brandt** in Rotterdam. [1]"
    assert_verbatim(kettle_index, fact.citations)


def test_a_year_no_passage_mentions_is_declined(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text(COMPANY, encoding="utf-8")
    index = Index.build([tmp_path / "report.md"], tmp_path / "index")
    # The report is of 2019: its figures and reasons would read as if they were 2023's.
    for question in ("What was revenue in 2023?", "Why did sales fall in FY2023?"):
        answer = index.ask(question)
        assert not answer.found and answer.text == NOT_FOUND and not answer.citations
        assert any("2023" in note for note in answer.notes)
    assert index.ask("What was revenue in 2019?").found
    between = "How did revenue change between 2018 and 2023?"
    assert years_not_read(between, index.search(between)) == []  # 2018 is read
    assert years_not_read("Sales in 2031?", index.search("Sales in 2031?")) == ["2031"]


PLANS = """# Cloud pricing

Each service is billed under one of four plans, chosen when the service is created.

## Fixed plans

Fixed-rate pricing is an agreed monthly charge that does not change with use.

## Metered plans

Metered pricing charges for each hour of runtime and each gigabyte stored.

## Tiered plans

Tiered pricing is like metered pricing, but the price of each unit falls in tiers as use grows.

## Reserved plans

Reserved pricing commits you to a year of use in exchange for a lower monthly price.
"""


def test_a_comparison_speaks_of_every_side_it_names(tmp_path: Path) -> None:
    (tmp_path / "pricing.md").write_text(PLANS, encoding="utf-8")
    index = Index.build([tmp_path / "pricing.md"], tmp_path / "index")
    answer = index.ask("What is the difference among fixed, metered, tiered and reserved pricing?")
    assert answer.kind == "comparison" and answer.found
    for side in ("agreed monthly charge", "each hour of runtime", "falls in tiers", "commits you to a year"):
        assert side in answer.text, (side, answer.text)
    assert_verbatim(index, answer.citations)


FUNDS = """# Investing basics

## Mutual funds

A mutual fund pools the money of many investors and is priced once a day, after the market closes.
Its managers buy and sell the holdings for the investors.

## Exchange-traded funds

An ETF is an exchange-traded fund: a basket of stocks or bonds that trades like a single stock on an
exchange. Buying one ETF gives you a share of every company it holds. Its price moves during the day.
"""


def test_a_follow_up_with_its_own_words_is_read_as_asked(tmp_path: Path) -> None:
    mutual, etf = FUNDS.split("## Exchange-traded funds")
    (tmp_path / "mutual.md").write_text(mutual, encoding="utf-8")
    (tmp_path / "etf.md").write_text("# Exchange-traded funds" + etf, encoding="utf-8")
    index = Index.build([tmp_path / "mutual.md", tmp_path / "etf.md"], tmp_path / "index")
    history = [{"role": "user", "content": "Should I only invest in mutual funds?"},
               {"role": "assistant", "content": "A mutual fund pools the money of many investors. [1]"}]
    answer = index.ask("What are ETFs?", history=history)
    # Searched with the conversation, but read as asked: the sentence that defines the term leads.
    assert answer.kind == "definition" and answer.found and answer.query
    assert answer.text.startswith("An ETF is an exchange-traded fund"), answer.text
    assert_verbatim(index, answer.citations)

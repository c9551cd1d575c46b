"""Instructions around a question are left out of the search and the reading, never the question."""

from __future__ import annotations

import pytest

from rag import Index
from rag.search.focus import focus

HARBOUR = """The Port of Calder

The harbour of Calder was founded in 1623 by the merchant Elena Vasquez. She named it after her home town in Castile.

The lighthouse on Gull Rock was designed by the engineer Thomas Reed. It was lit for the first time on 3 March 1871.
"""


@pytest.mark.parametrize(("asked", "searched"), [
    ("What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a response to the question "
     "by relying on the details shown in the cash flow statement.",
     "What is the FY2018 capital expenditure amount (in USD millions) for 3M? cash flow statement"),
    ("Assume that you are a public equities analyst. Answer the following question by primarily using "
     "information that is shown in the balance sheet: what is the year end FY2018 net PPNE for 3M? "
     "Answer in USD billions.",
     "what is the year end FY2018 net PPNE for 3M? balance sheet"),
    ("What is Netflix's year end FY2017 total current liabilities? Base your judgments on the information "
     "provided primarily in the balance sheet.",
     "What is Netflix's year end FY2017 total current liabilities? balance sheet"),
    ("What is Block's FY2016 working capital ratio? Define working capital ratio as total current assets "
     "divided by total current liabilities. Round your answer to two decimal places.",
     "What is Block's FY2016 working capital ratio? working capital ratio total current assets divided by "
     "total current liabilities"),
    ("Are gross margins consistent? If gross margins are not a relevant metric for a company like this, "
     "then please state that and explain why.",
     "Are gross margins consistent?"),
    ("Revenue growth from 2016 to 2017? Calculate what was asked by utilizing the line items clearly shown in "
     "the statement of income.",
     "Revenue growth from 2016 to 2017? statement of income"),
])
def test_instructions_are_left_out(asked: str, searched: str) -> None:
    assert focus(asked) == searched


@pytest.mark.parametrize("asked", [
    "Who called for UN visits?",
    "Explain how leases are valued.",  # an imperative that is the question itself
    "I lost my card.  What should I do?",  # context the asker gives is kept, spacing too
    "List the risks. Explain why they matter.",  # no question sentence stays: nothing is dropped
    "Calculate the average net profit margin for FY2015 to FY2017. What does it say?",
])
def test_questions_without_instructions_are_searched_as_typed(asked: str) -> None:
    assert focus(asked) == asked


@pytest.fixture(scope="module")
def harbour_index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    docs = tmp_path_factory.mktemp("focus-docs")
    (docs / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    return Index.build([docs], tmp_path_factory.mktemp("focus-index"))


def test_ask_reads_the_question_and_says_what_was_searched(harbour_index: Index) -> None:
    asked = ("Assume that you are a historian. Answer the following question by using the details shown in "
             "the harbour report: who designed the lighthouse on Gull Rock? Answer with a full name only.")
    answer = harbour_index.ask(asked)
    assert answer.found and answer.span.endswith("Thomas Reed")
    assert answer.question == asked
    assert answer.query == "who designed the lighthouse on Gull Rock? harbour report"
    assert answer.citations[0].text.startswith("The lighthouse on Gull Rock was designed by the engineer Thomas Reed.")
    typed = harbour_index.ask(asked, focus_question=False)
    assert typed.query == ""


def test_search_leaves_the_instructions_out(harbour_index: Index) -> None:
    asked = "When was the harbour founded? Round your answer to the nearest year. Answer in one word."
    focused = harbour_index.search(asked, 1)
    assert "founded in 1623" in focused[0].chunk.text
    plain = harbour_index.search("When was the harbour founded?", 1)
    assert [h.chunk.id for h in focused] == [h.chunk.id for h in plain]

"""Tables as data and the table answerer: grids with cells at page offsets, lookups, arithmetic with
every operand cited verbatim, scale and sign, bad tables, one-document questions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag import Index
from rag.ingest.tables import TABLES_VERSION, find_scale, page_tables, parse_number, tables_from_json
from rag.search.filing import named_sources
from rag.serve.cli import main
from rag.verify import verify_quotes

SALES = """# Contract sales

The table below presents total net sales disaggregated by contract type (in millions):

|  |  | Years Ended September 30, |  |
|---|---|---|---|
|  | 2019 | 2018 | 2017 |
| Fixed Price | $  1,452.4 | $  1,146.2 | $  1,036.9 |
| Other | 44.1 | 56.7 | 70.8 |
| Total sales | $1,496.5 | $1,202.9 | $1,107.7 |

On a cost-plus type contract, we are paid our allowable incurred costs plus a profit which can be fixed or
variable depending on the contract's fee arrangement up to predetermined funding levels.

## Margins

| Segment | 2019 | 2018 |
|---|---|---|
| Gross margin (%) | 73.2% | 72.2% |
| Operating expenses | 2,310 | 2,015 |
| Research and development | 1,100 | 950 |
| Net loss | (1,403) | (1,120) |
| General and administrative | 2,150 | 1,990 |
"""

# A CSV or a spreadsheet sheet as the formats loaders write it: a header row, the rule, a line a row.
CSV_LIKE = """| Region | 2021 | 2022 | 2023 |
|---|---|---|---|
| North | 120 | 135 | 150 |
| South | 80 | 95 | 70 |
| East | 2,040 | 2,210 | 1,980 |
"""

BAD = """Some tables are broken.

| Item | 2019 | 2018 |
|---|---|---|
| Ragged row | 1 |
| Too many | 1 | 2 | 3 | 4 |
|  |  |  |
| Footnoted | 1,234(a) | 1,100(b) |
| Text cell | n/a | — |

| only one column |
|---|
| a |
"""

STATEMENT = """CONSOLIDATED BALANCE SHEETS
(in thousands, except share data)
As of December 31, 2017 2016
Current assets:
Cash and cash equivalents $ 2,822,795 $ 1,467,576
Short-term investments — 266,206
Total current assets 7,669,974 5,720,291
Current liabilities:
Accounts payable 359,555 312,842
Total current liabilities 5,466,312 4,586,657
Accumulated other comprehensive loss (20,557) (48,565)
See accompanying notes to consolidated financial statements.
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Index:
    docs = tmp_path_factory.mktemp("table-docs")
    (docs / "sales.md").write_text(SALES, encoding="utf-8")
    (docs / "regions.md").write_text(CSV_LIKE, encoding="utf-8")
    (docs / "broken.md").write_text(BAD, encoding="utf-8")
    return Index.build([docs], tmp_path_factory.mktemp("table-index"))


def _verbatim(index: Index, answer) -> None:  # noqa: ANN001 - an Answer
    """Every citation and every operand quote is the page's text at its offsets."""
    kept, dropped = verify_quotes(list(answer.citations), index)
    assert not dropped and kept
    for operand in answer.working.operands:
        page = index.page_text(operand.quote.source, operand.quote.page)
        assert page is not None
        assert page[operand.quote.start:operand.quote.end] == operand.quote.text


def test_parse_number_sign_scale_and_footnotes() -> None:
    assert parse_number("(1,403)") == (-1403.0, False)
    assert parse_number("-1,403") == (-1403.0, False)
    assert parse_number("$  1,452.4") == (1452.4, False)
    assert parse_number("73.2%") == (73.2, True)
    assert parse_number("1,234(a)") == (1234.0, False)
    assert parse_number("(6)") == (-6.0, False)
    assert parse_number("n/a") == (None, False)
    assert parse_number("12,34") == (None, False)
    assert find_scale("(Dollars in millions)") == "million"
    assert find_scale("$ in thousands") == "thousand"
    assert find_scale("Revenue by region") == ""


def test_multi_row_header_grid_and_offsets() -> None:
    table = page_tables(SALES, "/d/sales.md", 1)[0]
    assert table.header_rows[1] == ("", "2019", "2018", "2017")
    # the merged "Years Ended September 30," heads every column
    assert table.columns == ("Years Ended September 30, 2019", "Years Ended September 30, 2018",
                             "Years Ended September 30, 2017")
    assert table.scale == "million" and table.unit == "$"
    other = next(r for r in table.rows if r.label.text == "Other")
    assert [c.value for c in other.cells] == [44.1, 56.7, 70.8]
    for cell in (other.label, *other.cells):
        assert SALES[cell.start:cell.end] == cell.text


def test_csv_like_table_and_statement_grid() -> None:
    regions = page_tables(CSV_LIKE)[0]
    assert regions.columns == ("2021", "2022", "2023")
    assert [r.label.text for r in regions.rows] == ["North", "South", "East"]
    statement = page_tables(STATEMENT, "/d/netflix.pdf", 45)[0]
    assert statement.columns == ("2017", "2016") and statement.scale == "thousand"
    rows = {r.label.text: r for r in statement.rows}
    assert rows["Cash and cash equivalents"].parent == "Current assets"
    assert rows["Accumulated other comprehensive loss"].cells[0].value == -20557.0
    assert rows["Short-term investments"].cells[1].text == "266,206"
    for row in statement.rows:
        for cell in row.cells:
            assert STATEMENT[cell.start:cell.end] == cell.text


def test_bad_tables_never_crash(report: Index) -> None:
    tables = page_tables(BAD)
    assert len(tables) == 1  # the one-column table is no grid
    rows = {r.label.text: r for r in tables[0].rows}
    assert rows["Ragged row"].cells[1].text == ""
    assert rows["Footnoted"].cells[0].value == 1234.0
    assert rows["Text cell"].cells[0].value is None
    assert "broken.md" in {d.name for d in report.documents()}
    # the cells a question names are not there: the reader answers, not the table answerer
    answer = report.ask("What was the Text cell in 2018?")
    assert answer.kind != "table" or answer.working is not None


def test_cell_lookup(report: Index) -> None:
    answer = report.ask("What is the amount of total sales in 2019?")
    assert answer.kind == "table" and answer.found
    assert answer.span == "$1,496.5 million"
    assert answer.working.operation == "lookup"
    (operand,) = answer.working.operands
    assert operand.row == "Total sales" and "2019" in operand.column and operand.value == 1496.5
    assert operand.quote.name == "sales.md" and operand.quote.page == 1
    _verbatim(report, answer)
    data = answer.to_dict()
    assert data["working"]["operands"][0]["text"] == "$1,496.5"
    assert data["kind"] == "table"


def test_change_shows_its_working(report: Index) -> None:
    answer = report.ask("What is the change in Other in 2019 from 2018?")
    assert answer.span == "−12.6 million"
    assert answer.text.startswith("−12.6 million (44.1 − 56.7: Other, ")
    working = answer.working
    assert working.operation == "change" and working.result == pytest.approx(-12.6)
    assert [o.value for o in working.operands] == [44.1, 56.7]
    assert ["2019" in o.column for o in working.operands] == [True, False]
    assert [q.text for q in answer.citations] == ["44.1", "56.7"]
    _verbatim(report, answer)


@pytest.mark.parametrize(("question", "operation", "span"), [
    ("What is the percentage change in Other in 2019 from 2018?", "percent_change", "−22.22%"),
    ("What is the average Other for 2018 and 2019?", "average", "50.4 million"),
    ("What is the total Fixed Price in 2018 and 2019?", "sum", "2,598.6 million"),
    ("What is the difference between operating expenses and research and development in 2019?",
     "difference", "1,210"),
    ("What is the ratio of research and development to operating expenses in 2019?", "ratio", "0.48"),
    ("What is research and development as a percentage of operating expenses in 2018?", "proportion", "47.15%"),
    ("In which year was the amount of total sales the largest?", "compare", "2019"),
    ("How many years did General and administrative exceed 2,000?", "count", "1"),
    ("What was the change in gross margin (%) from 2018 to 2019?", "change", "1 percentage points"),
    ("What was the change in net loss from 2018 to 2019?", "change", "−283"),
    ("What is the change in East from 2022 to 2023?", "change", "−230"),
])
def test_operations(report: Index, question: str, operation: str, span: str) -> None:
    answer = report.ask(question)
    assert answer.kind == "table", answer.text
    assert answer.working.operation == operation
    assert answer.span == span
    _verbatim(report, answer)
    if answer.working.rounding:
        assert answer.working.rounding in answer.notes


def test_text_questions_go_to_the_reader(report: Index) -> None:
    answer = report.ask("What is the company paid on a cost-plus type contract?")
    assert answer.kind != "table" and answer.working is None


def test_seed_anchor_not_claimed(seed_index: Index) -> None:
    answer = seed_index.ask("Who called for UN visits?")
    assert answer.kind != "table"
    assert answer.span in ("Mrs. Maryam Rajavi", "Maryam Rajavi")
    assert "delegations" in " ".join(q.text for q in answer.citations)


def test_ask_about_one_document(report: Index, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = report.ask("What is the change in East from 2022 to 2023?", sources=["sales.md"])
    assert answer.kind != "table"
    assert all(h.name == "sales.md" for h in answer.hits)
    answer = report.ask("What is the change in East from 2022 to 2023?", sources=["regions.md"], pages=(1, 1))
    assert answer.kind == "table" and all(h.name == "regions.md" for h in answer.hits)
    assert main(["ask", "What is the change in East from 2022 to 2023?", "--index", str(report.folder),
                 "--source", "regions.md", "--pages", "1-1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["working"]["operation"] == "change" and data["span"] == "−230"


def test_a_question_names_its_filing() -> None:
    files = ["/f/3M_2018_10K.pdf", "/f/BESTBUY_2017_10K.pdf", "/f/BESTBUY_2023_10K.pdf", "/f/NETFLIX_2017_10K.pdf"]
    assert named_sources("What is the FY2018 capital expenditure amount for 3M?", files) == ["/f/3M_2018_10K.pdf"]
    assert named_sources("What is Best Buy's FY2023 inventory?", files) == ["/f/BESTBUY_2023_10K.pdf"]
    assert named_sources("Which block of shares was sold?", files) is None
    assert named_sources("What is the total?", files) is None


def test_grids_stored_in_the_index(report: Index) -> None:
    snapshot = report.snapshot()
    assert snapshot is not None
    source = next(d.source for d in report.documents() if d.name == "sales.md")
    stored = snapshot.page_grids(source, 1, TABLES_VERSION)
    assert stored is not None
    text = report.page_text(source, 1)
    assert text is not None
    assert tables_from_json(stored) == page_tables(text, source, 1)
    assert json.loads(stored)[0]["columns"][0] == "Years Ended September 30, 2019"
    # a grid read by another version of the reader is not used: the page is read again
    assert snapshot.page_grids(source, 1, TABLES_VERSION + 1) is None
    manifest = json.loads((snapshot.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tables_version"] == TABLES_VERSION


def test_openai_api_and_mcp_ask_one_document(report: Index) -> None:
    openai = pytest.importorskip("openai", reason="the openai client is not installed: pip install -e '.[test]'")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from rag.collections import Collections
    from rag.serve.mcp_server import build_server
    from rag.serve.openai_api import chat_router

    app = FastAPI()
    app.include_router(chat_router(Collections(report.folder)))
    client = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=TestClient(app))
    question = [{"role": "user", "content": "What is the change in East from 2022 to 2023?"}]
    reply = client.chat.completions.create(model="default", messages=question,  # type: ignore[arg-type]
                                           extra_body={"sources": ["regions.md"], "pages": [1, 1]})
    assert (reply.choices[0].message.content or "").startswith("−230 (1,980 − 2,210: East, 2023 and 2022)")
    refused = TestClient(app).post("/v1/chat/completions", json={"model": "default", "messages": question,
                                                                 "pages": [2, 1]})
    assert refused.status_code == 400 and "pages" in refused.json()["error"]["message"]

    server = build_server(report.folder)
    tool = server._tool_manager.get_tool("ask")
    assert tool is not None
    data = asyncio.run(tool.fn(question="What is the change in East from 2022 to 2023?", sources=["sales.md"]))
    assert data["working"] is None and all(h["name"] == "sales.md" for h in data["hits"])


def test_which_row_is_largest(report: Index) -> None:
    answer = report.ask("Which region had the highest figure in 2022?")
    assert answer.kind == "table" and answer.span == "East"
    assert answer.working.operation == "compare" and len(answer.working.operands) == 3
    _verbatim(report, answer)


def test_html_table_and_pdf_statement(tmp_path: Path) -> None:
    from rag.ingest.load import html_to_text
    from tests.conftest import write_pdf

    html = ("<p>Revenue by segment ($ in thousands)</p><table><tr><th></th><th>2019</th><th>2018</th></tr>"
            "<tr><td>Cloud</td><td>1,200</td><td>900</td></tr><tr><td>Licenses</td><td>(300)</td>"
            "<td>450</td></tr></table>")
    table = page_tables(html_to_text(html))[0]
    assert table.columns == ("2019", "2018") and table.scale == "thousand"
    assert [c.value for c in table.rows[1].cells] == [-300.0, 450.0]

    docs = tmp_path / "docs"
    docs.mkdir()
    # the statement's lines as a PDF's text layer gives them, with other text around (STATEMENT's lines)
    write_pdf(docs / "NETFLIX_2017_10K.pdf", ["Netflix annual report. " * 20, STATEMENT.replace("—", "-")])
    index = Index.build([docs], tmp_path / "index")
    answer = index.ask("What were Netflix's total current liabilities at the end of FY2017?")
    assert answer.kind == "table", answer.text
    assert answer.span == "5,466,312 thousand" and answer.citations[0].page == 2
    _verbatim(index, answer)
    answer = index.ask("What is the working capital ratio in 2017, total current assets divided by total "
                       "current liabilities?")
    assert answer.working is not None and answer.working.operation == "ratio"
    assert answer.span == "1.4"
    _verbatim(index, answer)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["", "2019", "2018", "(1,403)", "1,234(a)", "12.5%", "—", "Total", "x|y",
                                          "$ 4", "n/a", " ", "-", "((", "1,2,3"]), min_size=0, max_size=6),
                min_size=1, max_size=8),
       st.sampled_from(["", "(in millions)\n", "As of December 31, 2017 2016\n"]))
def test_any_table_text_reads_without_error_and_cells_are_verbatim(rows: list[list[str]], before: str) -> None:
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    text = before + "\n".join(lines[:1] + ["|---|---|"] + lines[1:]) + "\nAccounts payable 2,266 1,945\nCash 1 2\n"
    for table in page_tables(text):
        for row in table.rows:
            for cell in (row.label, *row.cells):
                assert text[cell.start:cell.end] == cell.text


FILING_NOTE = """Note 7. Supplemental balance sheet information
Accounts payable (included as a separate line item in the Consolidated Balance Sheets) includes drafts
payable. The following table shows the total current liabilities of the segments, which are not the
Company's total current liabilities in the balance sheet.
Segment liabilities 2017 2016
Total current liabilities 812,000 790,500
Other liabilities 1,200 1,100
"""

STATEMENTS_MD = """# Annual report

## Consolidated statements of operations (in millions)

| | 2017 | 2016 |
|---|---|---|
| Net product sales | 118,573 | 94,665 |
| Net service sales | 59,293 | 41,322 |
| Total net sales | 177,866 | 135,987 |

## Balance sheet (in millions)

| | 2018 | 2017 |
|---|---|---|
| Property, plant and equipment | 24,873 | 24,246 |
| Less: Accumulated depreciation | (16,135) | (15,380) |
| Property, plant and equipment — net | 8,738 | 8,866 |
"""


def test_a_named_statement_is_read_from_the_statement_page(tmp_path: Path) -> None:
    from rag.search.statement_pages import is_statement_page, named_statements
    from tests.conftest import write_pdf

    assert named_statements("Considering the data in the balance sheet, what is the working capital?") == ["balance sheet"]
    assert named_statements("utilizing the line items clearly shown in the statement of income") == ["income statement"]
    assert named_statements("shown within the balance sheet and the P&L statement") == ["balance sheet",
                                                                                      "income statement"]
    assert named_statements("What drove cash flow from operations?") == []
    # titles as PDF text layers give them: letters split, one word a line, a company line first
    assert is_statement_page("Table of Contents\n3M Company\nConsolidated Statement of Incom e\n2018 2017", "income statement")
    assert is_statement_page("SQUARE,\nINC.\nCONSOLIDATED\nSTATEMENTS\nOF\nOPERATIONS\n(In thousands)", "income statement")
    assert is_statement_page("PART II\nItem 8\nCASH FLOWS STATEMENTS\n(In millions)", "cash flow statement")
    # a page that only mentions the statement is not it
    assert not is_statement_page(FILING_NOTE, "balance sheet")
    assert not is_statement_page("ANALYSIS OF THE CONDENSED CONSOLIDATED STATEMENTS OF INCOME\nRevenues", "income statement")

    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "NETFLIX_2017_10K.pdf", ["Netflix annual report. " * 20, FILING_NOTE, FILING_NOTE,
                                              STATEMENT.replace("—", "-")])
    index = Index.build([docs], tmp_path / "index")
    answer = index.ask("According to the balance sheet, what were total current liabilities in 2017?")
    assert answer.kind == "table" and answer.span == "5,466,312 thousand", answer.text
    assert answer.citations[0].page == 4 and answer.hits[0].page == 4
    _verbatim(index, answer)


def test_analysts_names_for_statement_lines(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text(STATEMENTS_MD, encoding="utf-8")
    index = Index.build([tmp_path / "report.md"], tmp_path / "index")
    # revenue is the "Total net sales" line when no line says revenue; "(in units of percents)" asks a percentage
    answer = index.ask("What is the year-over-year change in revenue from FY2016 to FY2017 (in units of percents "
                       "and round to one decimal place)?")
    assert answer.working is not None and answer.working.operation == "percent_change", answer.text
    assert answer.span == "30.8%"
    assert [o.row for o in answer.working.operands] == ["Total net sales", "Total net sales"]
    _verbatim(index, answer)
    # net PPNE is the net line, not the gross one; in the scale asked, the table's figure beside it
    answer = index.ask("What is the year end FY2018 net PPNE? Answer in USD billions.")
    assert answer.kind == "table" and answer.span == "8.74 billion", answer.text
    assert answer.text.startswith("8.74 billion (8,738 million; Property, plant and equipment — net, 2018)")
    assert answer.working is not None and answer.working.scale == "billion"
    _verbatim(index, answer)


EARNINGS = """Consolidated Statements of Earnings
$ and shares in millions, except per share amounts
Fiscal Years Ended January 28, 2017 January 30, 2016 January 31, 2015
Revenue $ 39,403 $ 39,528 $ 40,339
Cost of goods sold 29,963 30,334 31,292
Gross profit 9,440 9,191 9,047
Net earnings from continuing operations 1,207 807 1,246
Net earnings including noncontrolling interests 1,228 897 1,235
Net earnings attributable to Best Buy Co., Inc. shareholders $ 1,228 $ 897 $ 1,233
"""

POSITION = """Consolidated Balance Sheets
(in millions)
December 31, 2017 2016
Inventories 16,047 11,461
Accounts payable 34,616 25,309
Total current assets 60,197 45,781
Total current liabilities 57,883 43,816
"""


def test_figures_the_question_defines_or_names(tmp_path: Path) -> None:
    from rag.answer.formula import definitions

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "earnings.txt").write_text(EARNINGS, encoding="utf-8")
    (docs / "position.txt").write_text(POSITION + "\nCost of sales 111,934 88,265\n", encoding="utf-8")
    index = Index.build([docs], tmp_path / "index")
    # a definition in the question, with averages and changes between years, read from the stated lines
    question = ("What is the FY2017 days payable outstanding (DPO)? DPO is defined as: 365 * (average accounts "
                "payable between FY2016 and FY2017) / (FY2017 COGS + change in inventory between FY2016 and FY2017). "
                "Round your answer to two decimal places.")
    assert set(definitions(question)) == {"dpo"}
    answer = index.ask(question)
    assert answer.working is not None and answer.working.operation == "formula", answer.text
    assert answer.span == "93.86"
    assert {o.row for o in answer.working.operands} == {"Accounts payable", "Cost of sales", "Inventories"}
    _verbatim(index, answer)
    # a ratio every analyst knows, averaged over the years named; the owners' net earnings; dated columns
    answer = index.ask("What is the FY2015 - FY2017 3 year average net profit margin (as a %)?")
    assert answer.working is not None and answer.working.operation == "formula", answer.text
    assert answer.span == "2.81%"
    assert {o.row for o in answer.working.operands} == {"Revenue",
                                                        "Net earnings attributable to Best Buy Co., Inc. shareholders"}
    _verbatim(index, answer)
    # a change in a ratio is not the ratio: no guess
    answer = index.ask("What is the change in current ratio from 2016 to 2017?")
    assert answer.working is None or answer.working.operation != "formula"


@pytest.mark.parametrize("header", ["June 30,\n2023\nDecember 31,\n2022\n", "3/25/2023 12/31/2022\n",
                                    "May 26, \n 2023 May 27, \n 2022 ASSETS Current assets:\n"])
def test_a_statement_header_spread_over_lines(header: str) -> None:
    # 10-Q and earnings-release headers: a date a line, dates with slashes, a date broken mid-line
    text = ("CONSOLIDATED BALANCE SHEETS\n(In thousands)\n(Unaudited)\n" + header +
            "Current assets\nCash and cash equivalents $ 3,843,366 $ 5,911,893\nInventories 130,889 126,065\n"
            "Total current assets 5,616,995 8,154,692\n")
    tables = page_tables(text, "q2.txt", 3)
    assert len(tables) == 1 and tables[0].columns == ("2023", "2022") and tables[0].scale == "thousand"
    rows = {r.label.text: r for r in tables[0].rows}
    inventories = rows["Inventories"].cells
    assert [c.value for c in inventories] == [130889.0, 126065.0]
    assert all(text[c.start:c.end] == c.text for r in tables[0].rows for c in r.cells)


def test_an_outflow_asked_as_an_amount(tmp_path: Path) -> None:
    (tmp_path / "cash.txt").write_text(
        "Consolidated Statement of Cash Flows\n(Millions) 2018 2017\nCash Flows from Investing Activities\n"
        "Purchases of property, plant and equipment (PP&E) (1,577) (1,373)\nProceeds from sale of PP&E 262 49\n"
        "Net loss (1,403) (1,120)\n", encoding="utf-8")
    index = Index.build([tmp_path / "cash.txt"], tmp_path / "index")
    answer = index.ask("What is the FY2018 capital expenditure amount (in USD millions)?")
    assert answer.span == "1,577 million", answer.text
    assert "paid out, shown as (1,577) million" in answer.text and answer.citations[0].text == "(1,577)"
    # a figure that is not an outflow keeps its sign
    assert index.ask("What was the net loss in 2018?").span == "(1,403) million"


def test_a_cost_in_parentheses_enters_a_definition_as_paid(tmp_path: Path) -> None:
    (tmp_path / "earnings.txt").write_text(
        "Consolidated Statements of Operations\n(Dollars in millions) 2022 2021\nTotal revenues 66,608 62,286\n"
        "Cost of products (53,969) (51,588)\nOther income 1,058 551\n", encoding="utf-8")
    index = Index.build([tmp_path / "earnings.txt"], tmp_path / "index")
    answer = index.ask("What is the FY2022 gross margin? Gross margin is defined as: (total revenues - cost of "
                       "products) / total revenues * 100.")
    assert answer.working is not None and answer.working.operation == "formula", answer.text
    assert answer.span == "18.98%" and "(66,608 − 53,969) / 66,608 × 100" in answer.text
    _verbatim(index, answer)

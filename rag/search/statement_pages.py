"""Which financial statement a question names, and where that statement is in a filing.

"Considering the data in the balance sheet, what is ...", "utilizing the line items shown in the
statement of income": FinanceBench-style questions name the statement their figures come from.
Retrieval alone often brings a note or the MD&A that mentions the same line item, so the page
that *is* the statement is found by its title and read first.

A statement page is one whose title line, among its first lines, is the statement's name and
nothing else: "CONSOLIDATED BALANCE SHEETS", "Consolidated Statement of Incom e" (PDF text
splits letters; titles are compared without spaces), "CASH FLOWS STATEMENTS", a title printed one
word a line. A page that only mentions the statement ("Accounts payable (included in the
Consolidated Balance Sheet) ...", "ANALYSIS OF THE CONDENSED CONSOLIDATED STATEMENTS OF INCOME")
is not one. On the 17 shared FinanceBench filings this finds the balance sheet, the income
statement and the cash flow statement of every 10-K and 10-Q, and nothing else but the three
income statements of an 8-K that has three.

Example:
    >>> named_statements("Considering the data in the balance sheet, what is Block's FY2016 working capital ratio?")
    ['balance sheet']
    >>> is_statement_page("AMAZON.COM, INC.\\nCONSOLIDATED BALANCE SHEETS\\n(in millions)\\n...", "balance sheet")
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable

STATEMENTS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    # name: (how a question names it, its title with the spaces taken out)
    "balance sheet": (re.compile(r"\bbalance\s+sheets?\b|\bstatements?\s+of\s+financial\s+(?:position|condition)\b",
                                 re.IGNORECASE),
                      re.compile(r"balancesheets?|statements?offinancial(?:position|condition)")),
    "income statement": (re.compile(r"\bincome\s+statements?\b|\bstatements?\s+of\s+(?:income|operations|earnings)\b|"
                                    r"\bp\s*&\s*l\b|\bprofit\s+and\s+loss\s+statement\b", re.IGNORECASE),
                         re.compile(r"statements?of(?:income|operations|earnings)|incomestatements?")),
    "cash flow statement": (re.compile(r"\bcash\s+flows?\s+statements?\b|\bstatements?\s+of\s+cash\s+flows?\b",
                                       re.IGNORECASE),
                            re.compile(r"statements?ofcashflows?|cashflows?statements?")),
}

HEAD_LINES = 12
"""Lines at the top of a page searched for its title (page furniture and the company name come first)."""
TITLE_LINES = 5
"""A title printed one word a line is joined from up to this many lines."""


def named_statements(question: str) -> list[str]:
    """The statements ``question`` names ("balance sheet", "income statement", "cash flow statement"),
    in the order of ``STATEMENTS``: "the balance sheet and the P&L statement" names two."""
    return [name for name, (asked, _) in STATEMENTS.items() if asked.search(question)]


def is_statement_page(text: str, statement: str) -> bool:
    """Whether the page ``text`` is the statement itself: its title line names it and nothing else."""
    title = re.compile(r"(?:condensed)?(?:consolidated)?(?:condensed)?(?:" + STATEMENTS[statement][1].pattern
                       + r")(?:\(unaudited\))?")
    lines = [re.sub(r"\s+", "", line).lower() for line in text.splitlines()[:HEAD_LINES] if line.strip()]
    return any(title.fullmatch("".join(lines[i:i + n])) for n in range(1, TITLE_LINES + 1)
               for i in range(len(lines) - n + 1))


def statement_pages(statement: str, page_count: int, page_text: Callable[[int], str | None]) -> list[int]:
    """The pages (1-based) of a document that are ``statement``, in order; ``page_text(n)`` reads page n."""
    return [n for n in range(1, page_count + 1) if is_statement_page(page_text(n) or "", statement)]


__all__ = ["STATEMENTS", "is_statement_page", "named_statements", "statement_pages"]

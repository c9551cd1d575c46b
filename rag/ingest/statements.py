"""Tables laid out as text: a PDF statement's rows, a label then figures, one line each.

PDF text has no table markup, but a financial statement comes out a row a line: "Accounts
payable 2,266 1,945" under "(Dollars in millions) 2018 2017". ``statement_spans`` finds such
tables; the chunker (``year_header_tables``) and ``rag.ingest.tables`` differ only in what
a header line is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.text import line_spans

CELL = r"(?:\$\s?)?\(?-?\d[\d,]*(?:\.\d+)?\)?%?|[—–-]"
"""One figure of a statement: "$ 1,234.5", "(12)", "7%", or a dash for none."""
LAYOUT_ROW = re.compile(rf"(?P<label>.*?)(?P<cells>(?:(?<=\S)\s+|^)(?:{CELL})(?:\s+(?:{CELL}))+)[ \t]*")
"""A line of a table laid out as text (a PDF statement): a label, then two or more figures."""
YEAR = re.compile(r"(?:19|20)\d\d")


def statement_spans(text: str, is_header: Callable[[int, int], bool],
                    ends_table: Callable[[int, int], bool] = lambda start, end: False) -> list[tuple[int, int, int]]:
    """Tables laid out as lines of text, as (start, end of the header line, end): a line
    ``is_header`` accepts, then the lines of figures under it and the labels between them, to the
    first line of prose or one ``ends_table`` accepts (both get a line's start and end). At least
    two lines of figures make a table.
    """
    lines = line_spans(text, 0, len(text))
    tables, k = [], 0
    while k < len(lines):
        a, b = lines[k]
        if not is_header(a, b):
            k += 1
            continue
        j, figures, last = k + 1, 0, k
        while j < len(lines):
            c, d = lines[j]
            line = text[c:d].strip()
            if ends_table(c, d):
                break
            if LAYOUT_ROW.fullmatch(text, c, d):
                figures, last = figures + 1, j
            elif len(line.split()) > 12 or line.endswith(".") and len(line.split()) > 4:
                break  # prose: a note under the table, or the page's running text
            j += 1
        if figures >= 2:
            tables.append((a, b, lines[last][1]))
            k = last + 1
        else:
            k += 1
    return tables


def year_header_tables(text: str) -> list[tuple[int, int, int]]:
    """The chunker's tables of a PDF page's text layer, as (start, end of the header line, end).

    A table starts at a line whose figures are all years (the column header) and runs over the
    lines of figures under it and the row labels between them ("Current assets"), to the first
    line of prose. Rows of figures with no header of years are left to the prose chunker:
    nothing would say what their columns are.

    Example:
        >>> year_header_tables("Revenue\\n(in millions) 2018 2017\\nSales 10 9\\nCosts 4 3\\n")
        [(8, 31, 52)]
    """
    def years_only(a: int, b: int) -> bool:
        row = LAYOUT_ROW.fullmatch(text, a, b)
        cells = row.group("cells").split() if row else []
        return bool(cells) and all(YEAR.fullmatch(c) for c in cells)

    return statement_spans(text, years_only)


def header_row(line: str) -> str:
    """A table's header line as one Markdown row, the form ``table_header`` finds in a context.

    Example:
        >>> header_row("(in millions) 2018 2017")
        '| (in millions) | 2018 | 2017 |'
    """
    line = " ".join(line.split())
    if line.startswith("|"):
        return line
    row = LAYOUT_ROW.fullmatch(line)
    if row is None:
        return line
    label = row.group("label").strip()
    return "| " + " | ".join(([label] if label else []) + row.group("cells").split()) + " |"

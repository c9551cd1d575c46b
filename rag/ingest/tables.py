"""Tables as data: a page's tables read into grids of cells, each cell a range of the page text.

Two kinds of table reach the page text: Markdown pipe tables (Markdown files; HTML tables, which
the loader writes as pipe tables; spreadsheets, CSV and office tables, which their loaders write the
same way) and PDF statements laid out as text, a row a line under a header of years (the tables
``rag.ingest.chunk`` cuts by rows). ``page_tables`` reads both into ``Table`` values: the header rows,
each column's header ("2019", "Years Ended September 30, 2019"), each row's label and its parent
(the label-only row above it, "Current assets" for "Cash"), the unit and scale of the figures
("$", "%", "million" from "(in millions)" in the caption or header) and, for every cell, its
exact character range in the page text, so a cell is quoted like any other text
(``rag.verify``).

A bad table never stops a load or a question: ragged rows are padded, merged header cells
(one text over several columns) are spread over the empty cells to their right, empty columns
are kept empty, and a figure with a footnote mark ("1,234(a)") is read as its number.

Example:
    >>> t = page_tables("| | 2019 | 2018 |\\n|---|---|---|\\n| Other | 44.1 | 56.7 |\\n")[0]
    >>> t.columns, t.rows[0].label.text, t.rows[0].cells[0].value
    (('2019', '2018'), 'Other', 44.1)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rag.ingest.markdown_blocks import markdown_tables
from rag.ingest.statements import CELL, LAYOUT_ROW, YEAR, statement_spans
from rag.text import line_spans

TABLES_VERSION = 3
"""Bumped when the grids read from the same text change (stored grids are re-read then)."""


@dataclass(frozen=True)
class Cell:
    """One cell: ``page_text[start:end] == text``; ``value`` its number when it holds one.

    ``value`` keeps the sign the page shows ("(1,403)" and "-1,403" are -1403.0) but not the
    table's scale: "1,496.5" in a table "in millions" is 1496.5, with ``Table.scale`` "million".

    Example:
        >>> Cell("(1,403)", 10, 17, -1403.0).value
        -1403.0
    """

    text: str
    start: int
    end: int
    value: float | None = None
    percent: bool = False
    """The cell's text carries a percent sign."""


@dataclass(frozen=True)
class Row:
    """A table row: its label cell, its value cells (one per column) and the row it sits under."""

    label: Cell
    cells: tuple[Cell, ...]
    parent: str = ""
    """The nearest label-only row above ("Current assets"), or ""."""
    indent: int = 0
    """Leading spaces of the label in the page text (PDF statements indent sub-rows)."""


@dataclass(frozen=True)
class Table:
    """A table of one page, read into a grid.

    ``columns[j]`` heads ``row.cells[j]`` for every row (the label column is not counted).
    """

    source: str
    page: int
    start: int
    end: int
    header_rows: tuple[tuple[str, ...], ...]
    """The header rows as written, label column included."""
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    unit: str = ""
    """"$", "%" or "" (from the caption, the header or the cells)."""
    scale: str = ""
    """"thousand", "million", "billion" or "" (from "(in millions)", "$ in thousands" ...)."""
    caption: str = ""
    """The line above the table, when it is not part of another block."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Table:
        """The inverse of ``to_dict`` (for grids stored as JSON in the index)."""
        def cell(d: dict[str, Any]) -> Cell:
            return Cell(**d)

        rows = tuple(Row(label=cell(r["label"]), cells=tuple(cell(c) for c in r["cells"]), parent=r["parent"],
                         indent=r["indent"]) for r in data["rows"])
        return Table(source=data["source"], page=data["page"], start=data["start"], end=data["end"],
                     header_rows=tuple(tuple(h) for h in data["header_rows"]), columns=tuple(data["columns"]),
                     rows=rows, unit=data["unit"], scale=data["scale"], caption=data["caption"])


def tables_json(tables: Sequence[Table]) -> str:
    """The grids of a page as JSON text (stored in the index; no pickle)."""
    return json.dumps([t.to_dict() for t in tables], ensure_ascii=False, separators=(",", ":"))


def tables_from_json(text: str) -> list[Table]:
    return [Table.from_dict(d) for d in json.loads(text)]


_NUMBER = re.compile(r"(?P<neg>[-−–(])?\s*(?P<cur>[$€£¥])?\s*(?P<neg2>[-−(])?\s*(?P<num>\d[\d,]*(?:\.\d+)?|\.\d+)"
                     r"\s*(?P<close>\))?\s*(?P<pct>%)?")
_FOOTNOTE = re.compile(r"(?<=[\d%)])\s*(?:\([a-z]\)|\[\d+\]|\*+|\(\d\))\s*$")


def parse_number(text: str) -> tuple[float | None, bool]:
    """The number a cell shows, and whether it is a percentage; (None, False) for text.

    Parenthesised figures are negative, a footnote mark after a figure is left out, and a cell
    with words around its figure ("2019", "$ 1,452.4", "12.5%", "1,234(a)") still reads as one.

    Example:
        >>> parse_number("(1,403)"), parse_number("$ 1,452.4"), parse_number("12.5%"), parse_number("1,234(a)")
        ((-1403.0, False), (1452.4, False), (12.5, True), (1234.0, False))
    """
    text = _FOOTNOTE.sub("", text.strip()).strip()
    if not text or len(text) > 40:
        return None, False
    m = _NUMBER.fullmatch(text)
    if m is None:
        return None, False
    raw = m.group("num").replace(",", "")
    if "," in m.group("num") and not re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", m.group("num")):
        return None, False
    value = float(raw)
    neg = m.group("neg") or m.group("neg2")
    if neg == "(" and not m.group("close") or m.group("close") and neg != "(":
        return None, False
    if neg:
        value = -value
    return value, bool(m.group("pct"))


_SCALE = re.compile(r"\b(?:in|\$|€|£|usd|eur|gbp|dollars|amounts)\s*(?:in\s+)?(thousands|millions|billions|000s|000's|'000)\b"
                    r"|\((?:\$|€|£|usd)?\s*(thousands|millions|billions|000s|000)\)", re.IGNORECASE)
_SCALES = {"thousands": "thousand", "000s": "thousand", "000's": "thousand", "'000": "thousand", "000": "thousand",
           "millions": "million", "billions": "billion"}


def find_scale(text: str) -> str:
    """"thousand", "million" or "billion" when ``text`` says its figures are in them, else "".

    Example:
        >>> find_scale("(Dollars in millions)"), find_scale("$ in thousands"), find_scale("Revenue")
        ('million', 'thousand', '')
    """
    m = _SCALE.search(text)
    if not m:
        return ""
    return _SCALES[(m.group(1) or m.group(2)).lower()]


def page_tables(text: str, source: str = "", page: int = 1) -> list[Table]:
    """Every table of a page's text, Markdown pipe tables and PDF statements, in page order.

    Never raises on a malformed table: what cannot be read as a grid is left out.
    """
    spans = markdown_tables(text)
    bounds = [(spans[k - 1][2] if k else 0, spans[k + 1][0] if k + 1 < len(spans) else len(text))
              for k in range(len(spans))]
    found = [_markdown_table(text, a, d, e, source, page, bound) for (a, d, e), bound in zip(spans, bounds)]
    if not found:
        found = [_layout_table(text, a, b, e, source, page) for a, b, e in statement_tables(text)]
    if not any(t is not None and t.rows for t in found):
        found = [_stacked_header_table(text, source, page)]
    return [t for t in found if t is not None and t.rows]


def _split_row(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each cell of a pipe-table line, stripped, escaped pipes kept inside."""
    line = text[start:end]
    bars = [i for i, ch in enumerate(line) if ch == "|" and (i == 0 or line[i - 1] != "\\")]
    lead = len(line) - len(line.lstrip())
    if not bars or bars[0] != lead:
        bars = [-1] + bars
    trail = len(line.rstrip())
    if bars[-1] != trail - 1:
        bars.append(trail)
    cells = []
    for a, b in zip(bars, bars[1:]):
        a += 1
        while a < b and line[a] in " \t":
            a += 1
        while b > a and line[b - 1] in " \t":
            b -= 1
        cells.append((start + a, start + b))
    return cells


def _cell(text: str, a: int, b: int) -> Cell:
    value, percent = parse_number(text[a:b])
    return Cell(text[a:b], a, b, value, percent)


def _is_year(cell: Cell) -> bool:
    return bool(re.fullmatch(r"(?:fy\s*|fiscal\s*)?(?:19|20)\d\d\*?", cell.text.strip().lower()))


def _markdown_table(text: str, start: int, header_end: int, end: int, source: str, page: int,
                    bounds: tuple[int, int]) -> Table | None:
    lines = []
    cursor = start
    while cursor < end:
        stop = text.find("\n", cursor, end)
        stop = end if stop < 0 else stop
        lines.append((cursor, stop))
        cursor = stop + 1
    if len(lines) < 3:
        return None
    grid = [[_cell(text, a, b) for a, b in _split_row(text, *line)] for k, line in enumerate(lines) if k != 1]
    return _grid_table(text, grid, start, end, source, page, bounds)


def _grid_table(text: str, grid: list[list[Cell]], start: int, end: int, source: str, page: int,
                bounds: tuple[int, int]) -> Table | None:
    """Header rows, columns and rows from a grid of cells whose first row heads the table."""
    width = max(len(r) for r in grid)
    if width < 2:
        return None
    for r in grid:  # ragged rows padded with empty cells at the row's end
        pad = r[-1].end if r else start
        r.extend(Cell("", pad, pad) for _ in range(width - len(r)))
    # Header rows: the first row, and the rows under it before the first figure that is not a
    # year, whose label is empty or whose cells are all text or years ("", "2019", "2018").
    n_header = 1
    for r in grid[1:]:
        values = [c for c in r[1:] if c.text]
        if not values:
            break
        if all(c.value is None or _is_year(c) for c in values) and (not r[0].text or any(_is_year(c) for c in values)
                                                                     or all(c.value is None for c in values)):
            n_header += 1
            continue
        break
    if n_header == len(grid):
        n_header = 1
    header = grid[:n_header]
    columns = []
    filled = [_spread(row) for row in header]
    for j in range(1, width):
        parts = []
        for k, row in enumerate(filled):
            # merged cells spread right in the upper rows; the last header row is read as written
            part = header[k][j].text if k == len(filled) - 1 else row[j]
            if part and part not in parts:
                parts.append(part)
        columns.append(" ".join(parts))
    rows, parent = [], ""
    for r in grid[n_header:]:
        if not any(c.text for c in r):
            continue
        if r[0].text and not any(c.text for c in r[1:]):
            parent = r[0].text.rstrip(":")
            rows.append(Row(label=r[0], cells=tuple(r[1:]), parent=""))
            continue
        line_start = text.rfind("\n", 0, r[0].start) + 1
        indent = len(text[line_start:r[0].start]) - len(text[line_start:r[0].start].lstrip("| \t"))
        rows.append(Row(label=r[0], cells=tuple(r[1:]), parent=parent, indent=max(indent, 0)))
        if r[0].text.lower().startswith("total"):
            parent = ""
    caption = _caption(text, start)
    head_text = " ".join(c.text for row in header for c in row)
    scale = find_scale(head_text) or find_scale(caption) or _nearby_scale(text, start, end, bounds)
    cells = [c for row in rows for c in row.cells if c.value is not None]
    unit = ("%" if cells and all(c.percent for c in cells) or "%" in head_text and not cells
            else "$" if "$" in head_text + caption or any("$" in c.text for c in cells) else "")
    return Table(source=source, page=page, start=start, end=end,
                 header_rows=tuple(tuple(c.text for c in row) for row in header), columns=tuple(columns),
                 rows=tuple(rows), unit=unit, scale=scale, caption=caption)


def _spread(row: list[Cell]) -> list[str]:
    """A header row with each merged cell's text spread over the empty cells to its right; a
    row with one text only ("Years Ended September 30,") heads every column."""
    texts = [c.text for c in row[1:] if c.text]
    if len(texts) == 1:
        return [row[0].text] + texts * (len(row) - 1)
    out, last = [], ""
    for k, c in enumerate(row):
        if k == 0:
            out.append(c.text)
            continue
        last = c.text or last
        out.append(last)
    return out


def _caption(text: str, start: int) -> str:
    """The non-empty line just above the table (its title or "(in millions)"), or ""."""
    before = text[max(0, start - 400):start].rstrip().rsplit("\n", 1)[-1].strip()
    return before if len(before) < 300 else ""


def _nearby_scale(text: str, start: int, end: int, bounds: tuple[int, int]) -> str:
    """The scale stated in the prose just around the table ("... by contract type (in millions):"),
    not past the tables beside it nor the heading above it."""
    before = text[max(bounds[0], start - 600):start]
    heading = before.rfind("\n#")
    before = before[heading + 1:] if heading >= 0 else before
    after = text[end:min(bounds[1], end + 1500)]
    heading = after.find("\n#")
    return find_scale(before) or find_scale(after[:heading] if heading >= 0 else after)


_FIGURE = re.compile(CELL)
_DATED_YEAR = (r"(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?[ \t]+\d{1,2},?[ \t]+)?"
               r"(?:FY\s?)?(?:19|20)\d\d")
"""A column's year, or its date: "2017", "FY2017", "January 28, 2017" (retailers' fiscal years end on a day)."""
_YEARS_AT_END = re.compile(rf"(?P<label>.*?)(?P<years>(?:(?<=\S)[ \t]+|^){_DATED_YEAR}(?:[ \t]+{_DATED_YEAR})+)"
                           r"[ \t]*", re.MULTILINE | re.IGNORECASE)


def statement_tables(text: str) -> list[tuple[int, int, int]]:
    """Statements laid out as text (a PDF's text layer) as (start, end of the header line, end).

    A statement starts at a line that ends in two or more years ("As of December 31, 2017 2016",
    "(Dollars in millions) 2018 2017") and runs over the lines of figures under it
    ("Accounts payable 2,266 1,945") and the labels between them ("Current assets:"), to the
    first line of prose or the next header of years.
    """
    def years_at_end(a: int, b: int) -> bool:
        head = _YEARS_AT_END.fullmatch(text, a, b)
        return head is not None and len(text[a:head.start("years")].split()) <= 12

    def next_header(c: int, d: int) -> bool:
        return _YEARS_AT_END.fullmatch(text, c, d) is not None and len(text[c:d].split()) <= 14

    return statement_spans(text, years_at_end, next_header)


HEADER_LINES = 10
"""Lines above a statement's first row of figures searched for the years of a header laid out a
date a line ("June 30,", "2023", "December 31,", "2022")."""
_YEAR_ALONE = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")


def _stacked_header_table(text: str, source: str, page: int) -> Table | None:
    """A statement whose header of years is not one line: dates spread a part a line (a 10-Q's
    "July 2,", "2023", "July 3,", "2022"), or written "3/25/2023 12/31/2022". Its columns are the
    last years of the short lines above its first row of figures, as many as its rows have figures."""
    lines = [(a, b) for a, b in line_spans(text, 0, len(text)) if text[a:b].strip()]
    first = next((k for k, (a, b) in enumerate(lines) if LAYOUT_ROW.fullmatch(text, a, b)
                  and not _YEAR_ALONE.fullmatch(text[a:b].strip().split()[-1])), None)
    if first is None:
        return None
    widths = [len([m for m in _FIGURE.finditer(text, *span) if m.group() != "$"]) for span in lines[first:first + 5]
              if LAYOUT_ROW.fullmatch(text, *span) is not None]
    width = max(set(widths), key=widths.count) if widths else 0
    years: list[str] = []
    header = None
    for a, b in reversed(lines[max(0, first - HEADER_LINES):first]):
        line = text[a:b]
        found = _YEAR_ALONE.findall(line)
        if found:
            header = header or (a, b)
            years = found + years
        elif header is not None and len(line.split()) > 6:
            break  # above the header: the statement's title or prose
    if header is None or width < 2 or len(years) < width:
        return None
    spans = statement_spans(text, lambda a, b: (a, b) == header)
    if not spans:
        return None
    start, header_end, end = spans[0]
    return _layout_table(text, start, header_end, end, source, page, years=years[-width:])


def _layout_table(text: str, start: int, header_end: int, end: int, source: str, page: int,
                  years: list[str] | None = None) -> Table | None:
    """A PDF statement: the header line of years (or ``years`` read from the lines above), then
    label lines and lines of figures."""
    if years is None:
        head = _YEARS_AT_END.fullmatch(text, start, header_end)
        if head is None:
            return None
        years = [m.group() for m in re.finditer(YEAR, text[head.start("years"):head.end("years")])]
    width = len(years)
    rows, parent = [], ""
    cursor = header_end + 1
    while cursor < end:
        stop = text.find("\n", cursor, end)
        stop = end if stop < 0 else stop
        a, b = cursor, stop
        cursor = stop + 1
        raw = text[a:b]
        if not raw.strip():
            continue
        row = LAYOUT_ROW.fullmatch(text, a, b)
        la = a + len(raw) - len(raw.lstrip())
        if row is None:
            lb = a + len(raw.rstrip())
            parent = text[la:lb].rstrip(":")
            rows.append(Row(label=Cell(text[la:lb], la, lb), cells=tuple(Cell("", lb, lb) for _ in range(width))))
            continue
        lb = row.end("label")
        while lb > la and text[lb - 1] in " \t":
            lb -= 1
        found = [_cell(text, *m.span()) for m in _FIGURE.finditer(text, row.start("cells"), row.end("cells"))]
        found = [c for c in found if c.text != "$"]
        # A statement's figures align right: a row with fewer figures than years lacks the first ones.
        if len(found) > width:
            found = found[-width:]
        cells = [Cell("", la, la)] * (width - len(found)) + found
        label = Cell(text[la:lb], la, lb)
        rows.append(Row(label=label, cells=tuple(cells), parent=parent, indent=la - a))
        if label.text.lower().startswith("total"):
            parent = ""
    caption = text[max(0, start - 300):start]
    scale = find_scale(text[start:header_end]) or find_scale(caption)
    return Table(source=source, page=page, start=start, end=end, header_rows=(tuple([""] + years),),
                 columns=tuple(years), rows=tuple(rows), unit="$" if "$" in text[start:end] else "", scale=scale,
                 caption=caption.strip().rsplit("\n", 1)[-1].strip())


__all__ = ["TABLES_VERSION", "Cell", "Row", "Table", "find_scale", "page_tables", "parse_number", "tables_from_json",
           "tables_json"]

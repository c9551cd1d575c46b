"""Spreadsheets: Excel ``.xlsx`` (openpyxl, read-only, cached values not formulas) and ``.csv``
/ ``.tsv`` (the standard library, dialect and encoding sniffed): one page per sheet, cited as
"sheet 2".

A sheet's page is its name as a heading, then its rows as one GitHub Markdown pipe table whose
header is the sheet's first non-empty row: the chunker cuts it by rows with the header repeated,
and the table engine reads it back as a grid, every cell at exact character offsets. Empty rows
are left out; a run of ``MAX_EMPTY_ROWS`` of them ends the sheet (formatting often reaches row
1,048,576), and the rows of a file stop at ``MAX_ROWS`` with a note saying which were left out.

Example:
    >>> # read_xlsx(Path("Q3.xlsx"), ReadContext()).pages[0].text
    >>> # '## Sheet: Sales\\n\\n| Region | Revenue |\\n|---|---|\\n| North | 120 |'
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag.errors import LoadError
from rag.ingest.formats.common import (
    MAX_COLUMNS,
    MAX_EMPTY_ROWS,
    MAX_ROWS,
    MAX_SHEETS,
    markdown_table,
    open_zip,
    require_part,
    trim_row,
)
from rag.ingest.load import decode_text
from rag.ingest.reading import FileRead, ReadContext
from rag.types import Page


class _Budget:
    """Rows left for the file, and what was cut, in words for the user."""

    def __init__(self) -> None:
        self.rows = MAX_ROWS
        self.notes: list[str] = []


def read_xlsx(path: Path, context: ReadContext) -> FileRead:
    """The sheets of a workbook as pages: values as last computed and saved, not formulas."""
    import openpyxl  # imported by the first workbook read

    source = str(path)
    with open_zip(path, "Excel workbook") as archive:
        require_part(archive, "xl/workbook.xml", source, "an Excel workbook")
    try:
        book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged file
        raise LoadError(source, f"damaged Excel workbook ({type(exc).__name__}: {exc})") from None
    budget = _Budget()
    pages: list[Page] = []
    try:
        sheets = list(book.worksheets)
        if len(sheets) > MAX_SHEETS:
            budget.notes.append(f"sheets {MAX_SHEETS + 1}-{len(sheets)} over the limit of {MAX_SHEETS} sheets")
            sheets = sheets[:MAX_SHEETS]
        for number, sheet in enumerate(sheets, 1):
            if not hasattr(sheet, "iter_rows"):  # a chart sheet
                pages.append(Page(source=source, page=number, text=f"## Sheet: {sheet.title}"))
                continue
            try:
                rows = sheet.iter_rows(values_only=True)
                text = sheet_text(sheet.title, rows, budget)
            except Exception as exc:  # noqa: BLE001 - a damaged sheet part
                raise LoadError(source, f"damaged sheet {sheet.title!r} ({type(exc).__name__}: {exc})") from None
            pages.append(Page(source=source, page=number, text=text))
    finally:
        book.close()
    return _result(source, pages, budget)


def read_csv(path: Path, context: ReadContext) -> FileRead:
    """A CSV or TSV file as one sheet (its encoding and delimiter sniffed from the file)."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(source, f"cannot read the file ({exc.strerror or exc})") from None
    text = decode_text(source, data)
    dialect = _dialect(text, path.suffix.lower() == ".tsv")
    try:
        rows = csv.reader(io.StringIO(text, newline=""), dialect)
        budget = _Budget()
        page = Page(source=source, page=1, text=sheet_text(path.stem, rows, budget))
    except csv.Error as exc:
        raise LoadError(source, f"not readable as CSV ({exc})") from None
    return _result(source, [page], budget)


def _dialect(text: str, tabs: bool) -> type[csv.Dialect] | csv.Dialect:
    if tabs:
        return csv.excel_tab
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel  # one column, or too irregular to tell: commas


def sheet_text(title: str, rows: Iterable[Sequence[object]], budget: _Budget) -> str:
    """A sheet as its heading and one Markdown table (header: the first non-empty row)."""
    table: list[list[str]] = []
    empty_run = 0
    for number, values in enumerate(rows, 1):
        if budget.rows <= 0:
            budget.notes.append(f"sheet {title!r} from row {number}: over the limit of {MAX_ROWS:,} rows a file")
            break
        budget.rows -= 1
        cells = trim_row(values[:MAX_COLUMNS] if len(values) > MAX_COLUMNS else values)
        if not cells:
            empty_run += 1
            if empty_run >= MAX_EMPTY_ROWS:
                budget.notes.append(f"sheet {title!r} after row {number}: {MAX_EMPTY_ROWS:,} empty rows in a row, "
                                    "the rest taken to be empty")
                break
            continue
        empty_run = 0
        table.append(cells)
    heading = f"## Sheet: {' '.join(title.split())}"
    return heading + "\n\n" + markdown_table(table, normalized=True) if table else heading


def _result(source: str, pages: list[Page], budget: _Budget) -> FileRead:
    if not any("\n" in page.text for page in pages):
        raise LoadError(source, "no cell holds a value")
    return FileRead(pages=pages, notes=tuple(budget.notes))

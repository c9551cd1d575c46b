"""HTML of a table answer's working: the operation, and the table with the operand cells highlighted.

A person checks a computed figure by looking at the cells it came from in their table: the
sources panel shows the table the operands stand in (read again from the page text, so what is
shown is the document's own cells), each operand cell marked and titled with its row and column.
Every document string is escaped (``rag.serve.markdown_marks.escape``).

Example:
    >>> # html_text = working_html(index.ask("What is the change in Other in 2019 from 2018?"), index)
"""

from __future__ import annotations

from rag.ingest.tables import Table, page_tables
from rag.serve.markdown_marks import escape
from rag.types import Answer
from rag.verify import PageSource

MAX_ROWS = 60
"""Rows of a table shown around the operands (a long statement is cut, the operands' rows kept)."""


def _table_of(answer: Answer, pages: PageSource) -> Table | None:
    """The table that holds the answer's first operand, read from its page."""
    if answer.working is None or not answer.working.operands:
        return None
    first = answer.working.operands[0].quote
    text = pages.page_text(first.source, first.page)
    if text is None:
        return None
    return next((t for t in page_tables(text, first.source, first.page) if t.start <= first.start < t.end), None)


def working_html(answer: Answer, pages: PageSource) -> str:
    """The working of a table answer as HTML, or "" for any other answer."""
    working = answer.working
    if working is None:
        return ""
    table = _table_of(answer, pages)
    marked = {(o.quote.source, o.quote.page, o.quote.start): n
              for n, o in enumerate(working.operands, start=1)}
    operation = working.operation.replace("_", " ")
    head = (f'<p class="rag-working-line"><strong>{escape(operation)}</strong>'
            + (f": {escape(working.expression)}" if working.expression else "")
            + (f' <span class="rag-muted">({escape(working.rounding)})</span>' if working.rounding else "")
            + "</p>")
    listed = "".join(f'<li>[{n}] {escape(o.row)} · {escape(o.column)}: <code>{escape(o.quote.text)}</code></li>'
                     for n, o in enumerate(working.operands, start=1))
    parts = [f'<section class="rag-working"><h3>Working</h3>{head}<ul class="rag-operands">{listed}</ul>']
    if table is not None:
        caption = (f" ({escape(table.scale)}s)" if table.scale else "")
        parts.append(f'<table class="rag-grid"><caption>{escape(working.operands[0].quote.name)}, '
                     f'page {table.page}{caption}</caption><thead>')
        for head_row in table.header_rows:
            parts.append("<tr>" + "".join(f"<th>{escape(c)}</th>" for c in head_row) + "</tr>")
        parts.append("</thead><tbody>")
        rows = list(table.rows)
        keep = [k for k, r in enumerate(rows) if any((table.source, table.page, c.start) in marked for c in r.cells)]
        if len(rows) > MAX_ROWS and keep:
            lo = max(0, min(keep) - MAX_ROWS // 2)
            rows = rows[lo:lo + MAX_ROWS]
        for row in rows:
            cells = [f'<th scope="row">{escape(row.label.text)}</th>']
            for column, cell in zip(table.columns, row.cells):
                n = marked.get((table.source, table.page, cell.start)) if cell.text else None
                if n is None:
                    cells.append(f"<td>{escape(cell.text)}</td>")
                else:
                    title = escape(f"[{n}] {row.label.text} · {column}")
                    cells.append(f'<td class="rag-operand" data-operand="{n}" title="{title}">'
                                 f"<mark>{escape(cell.text)}</mark></td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    parts.append("</section>")
    return "".join(parts)


__all__ = ["working_html"]

"""Questions about figures in tables: read the cell a question names, or compute with the cells it names.

``answer_from_tables`` reads the tables of the pages the hits come from (``rag.ingest.tables``), finds
the row the question names ("total sales", "Other") and the columns ("2019", "2018"), and
answers from those cells alone:

- a lookup: "What is the amount of total sales in 2019?" -> "$1,496.5 million";
- a change or percentage change between two years, later less earlier: "What is the change in
  Other in 2019 from 2018?" -> "−12.6 million (44.1 − 56.7: Other, 2019 and 2018)";
- an average, a sum, a difference, a ratio or a proportion of the cells named;
- a comparison ("In which year was X largest?" -> the year) and a count ("How many years did X
  exceed 2,000?").

Each cell used is cited as a quote of the page text at its offsets, and ``Answer.working``
carries the operation, the operands (row, column, figure, quote) and the result. Scale, sign and
unit are the table's: "(1,403)" is −1,403, a change of percentages is in percentage points, and
a computed figure is rounded to two decimals (the answer says so when it is).

The choice of cells and operation is made by rules over the question's words and the grid.
When a question names no table row, or its cells are not in the grid, the answer is ``None``
and the reader answers instead: a question about the prose of the same report is never claimed.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from rag.answer.formula import definitions, evaluate, format_figure
from rag.ingest.tables import TABLES_VERSION, Cell, Table, page_tables, parse_number, tables_from_json
from rag.settings import Settings
from rag.types import Answer, Hit, Operand, Quote, Working
from rag.verify import PageSource, verify_quotes

MAX_PAGES = 5
"""Pages whose tables are read: those of the top hits, in their order."""
QUESTION_COVERAGE = 0.2
"""Share of the question's own words (not its operation's) the row and the column headers must
hold: "Cost" alone does not answer "the total unrecognized compensation cost related to
non-vested awards" (chosen on TAT-QA dev: 0.2 declines 13 of the 47 questions about the prose
it took, for 4 of 826 right answers)."""
MIN_COVERAGE = 0.6
"""Share of a row label's words the question must hold for the row to be the one it names."""

_STOP = frozenset("""a an the of in on at for to from by and or as is was were are be been what which how much many
does did do has have had its it their this that these those during year years fiscal fy end ended ending between
than value amount respectively respective company company's group's group's s per over across both all
each compared vs versus when with data table information considering according details shown outlined""".split())
_OP_WORDS = frozenset("""change changes increase increased decrease decreased percentage percent growth average mean
sum difference ratio proportion largest highest lowest smallest greater larger less lower higher more most least
exceed exceeded above below under times rate""".split())

_YEAR_RE = re.compile(r"\b(?:fy|fiscal\s+(?:year\s+)?)?'?((?:19|20)\d\d)\b|\bf?y'?(\d\d)\b", re.IGNORECASE)


def _years(text: str) -> list[str]:
    out = []
    text = re.sub(r"\b([12]) ([09]) (\d) (\d)\b", r"\1\2\3\4", text)  # "2 0 1 8", as some tables print it
    for m in _YEAR_RE.finditer(text):
        year = m.group(1) or "20" + m.group(2)
        if year not in out:
            out.append(year)
    return out


def _stem(word: str) -> str:
    # Row labels and questions are matched with plurals folded and nothing more: the search
    # stemmer (rag.text) also makes "operating" and "operations" one word, joining rows a
    # statement keeps apart ("Operating income", "Discontinued operations").
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


_SAME = {"percentage": "percent", "%": "percent", "expenses": "expense", "revenues": "revenue"}


def _tokens(text: str) -> list[str]:
    return list(_label_tokens(text))


@functools.lru_cache(maxsize=8192)
def _label_tokens(text: str) -> tuple[str, ...]:
    # Every row label of the hits' tables is matched again for each question: kept, not redone.
    text = text.lower().replace("’", "'").replace("%", " percent ")
    stems = [_stem(w) for w in re.findall(r"[a-z0-9]+", text) if w not in _STOP
             and not re.fullmatch(r"(?:19|20)\d\d|f?y\d\d", w)]
    return tuple(_SAME.get(w, w) for w in stems)


@dataclass(frozen=True)
class _Line:
    """A row of a table (or a column, when the rows are years): its name and its cells by key."""

    table: Table
    name: str
    parent: str
    cells: tuple[tuple[str, Cell], ...]
    """(column header, cell) for a row; (row label, cell) for a column."""


@functools.lru_cache(maxsize=256)
def _tables_from_json(grids: str) -> tuple[Table, ...]:
    return tuple(tables_from_json(grids))


@functools.lru_cache(maxsize=256)
def _tables_of(text: str, source: str, page: int) -> tuple[Table, ...]:
    return tuple(page_tables(text, source, page))


def _lines(table: Table) -> list[_Line]:
    # A row of figures without a label under other rows is their total (a sum line).
    lines = [_Line(table, _FOOTNOTE.sub("", r.label.text) or ("Total" if k else ""), r.parent,
                   tuple(zip(table.columns, r.cells)))
             for k, r in enumerate(table.rows) if any(c.text for c in r.cells)]
    year_rows = [r for r in table.rows if _years(r.label.text)]
    if len(year_rows) >= 2:  # years down the side: each column is a series over the years
        for j, column in enumerate(table.columns):
            lines.append(_Line(table, column, "", tuple((r.label.text, r.cells[j]) for r in table.rows
                                                       if j < len(r.cells))))
    return lines


_FOOTNOTE = re.compile(r"\s*(?:\(\d\)|\([a-z]\)|\*+|\[\d+\])\s*$")


@dataclass(frozen=True)
class _Match:
    line: _Line
    score: float
    words: frozenset[str]
    position: int
    """Where in the question the row's first matched word stands."""


def _match(line: _Line, asked: list[str], content: list[str]) -> _Match | None:
    """How well a row's label fits the question: the share of the label's words the question holds
    (of its words outside parentheses, "Deferred tax assets (see Note 16)", when that is more),
    with at least one of the question's own words (not only its operation's: "rate")."""
    label = _tokens(line.name)
    if not label:
        return None
    main = _tokens(re.sub(r"\([^)]*\)", " ", line.name)) or label
    wanted, own = set(asked), set(content) or set(asked)
    hit = [w for w in label if w in wanted]
    if not own.intersection(hit):
        return None
    coverage = max(len(set(hit)) / len(set(label)), len(set(main) & wanted) / len(set(main)))
    parent = set(_tokens(line.parent)) & wanted - set(label)
    if coverage < MIN_COVERAGE:
        return None
    score = coverage + 0.5 * len(own.intersection(hit)) / len(own) + 0.05 * len(parent)
    return _Match(line, score, frozenset(hit) | parent, min(asked.index(w) for w in hit))


def _numeric(cell: Cell) -> bool:
    return cell.value is not None and cell.text != ""


def _key_matches(key: str, years: list[str], words: set[str]) -> float:
    """How well a column header fits the years and words of the question (0 = not at all)."""
    key_years = _years(key)
    if years:
        if not set(key_years) & set(years):
            return 0.0
        # "% Change 2018 to 2019" names two years: the column of one year fits better
        return 1.0 + 0.1 * len(set(_tokens(key)) & words) - 0.5 * (len(key_years) > 1)
    return 0.1 * len(set(_tokens(key)) & words)


_OPS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("count", re.compile(r"\bhow many (?:years|quarters|periods|months|segments|items|times)\b|\bin how many\b")),
    ("compare", re.compile(r"\b(?:which|what) (?:year|period|quarter|fiscal year|month)\b.*\b(?:larg|high|great|"
                           r"small|low|less|more|most|least|bigger|better|worse|max|min)|^in which year\b")),
    ("percent_change", re.compile(r"\b(?:percentage|percent|%) (?:change|increase|decrease|growth|decline|rise|drop)"
                                  r"|\bgrowth rate\b|\brate of (?:change|increase|growth)\b|\bby what percent"
                                  r"|\b(?:change|increase|decrease|growth)\b[^.?]*\((?:in )?(?:units of )?percent")),
    ("average", re.compile(r"\baverage\b|\bmean\b")),
    ("ratio", re.compile(r"\bratio\b")),
    ("proportion", re.compile(r"\bproportion\b|\bwhat percentage\b|\bpercentage of\b|\bas a percentage\b|"
                              r"\bwhat percent\b|\bpercent of\b|\bshare of\b")),
    ("difference", re.compile(r"\bdifference between\b|\bhow much (?:more|less|higher|lower|greater|larger|smaller)\b|"
                              r"\bhow much did .* (?:exceed)\b")),
    ("change", re.compile(r"\bchange\b|\bincrease\b|\bdecrease\b|\bgrowth\b|\bdecline\b|\bincreased\b|"
                          r"\bdecreased\b|\bdifference\b|\bvariance\b|\bmovement\b")),
    ("sum", re.compile(r"\btotal\b|\bsum\b|\bcombined\b|\baltogether\b|\bin all\b")),
)


def _operation(question: str) -> str:
    q = question.lower()
    for name, pattern in _OPS:
        if pattern.search(q):
            return name
    return "lookup"


_QUANTITY = re.compile(r"\b(?:how much|how many|amount|value|balance|number|figure|total|net|cost|price|rate|"
                       r"revenue|sales|income|expense|margin|profit|loss|what (?:is|was|were|are) the .* (?:in|for|at|"
                       r"as of|on) )", re.IGNORECASE)


def answer_from_tables(question: str, hits: Sequence[Hit], settings: Settings, pages: PageSource,
                       typed: str | None = None) -> Answer | None:
    """The answer read or computed from the table cells ``question`` names, or None to let the reader answer.

    ``typed`` is the question as the user typed it, when ``question`` is its searched form without
    the instructions around it (``rag.search.focus``): the figures it defines ("DPO is defined as:
    ...") and the scale it asks for ("Answer in USD billions") are read from it.

    Example:
        >>> # a = answer_from_tables("What is the change in Other in 2019 from 2018?", hits, Settings(), snapshot)
        >>> # a.text, a.working.operation, [o.column for o in a.working.operands]
        >>> # ('−12.6 million (44.1 − 56.7: Other, 2019 and 2018) [1][2]', 'change', ['2019', '2018'])
    """
    seen: list[tuple[str, int]] = []
    for hit in hits:
        key = (hit.source, hit.page)
        if key not in seen:
            seen.append(key)
        if len(seen) == MAX_PAGES:
            break
    tables: list[Table] = []
    stored = getattr(pages, "page_grids", None)
    for source, page in seen:
        grids = stored(source, page, TABLES_VERSION) if stored is not None else None
        if grids is not None:  # read at ingest, in the index
            tables.extend(_tables_from_json(grids))
            continue
        text = pages.page_text(source, page)
        if text and ("|" in text or "\n" in text):
            tables.extend(_tables_of(text, source, page))
    if not tables:
        return None
    solved = _solve_any(question, tables, definitions(typed) if typed else {})
    if solved is None:
        return None
    working, shown = _in_asked_scale(typed or question, *_as_amount(question, *solved))
    quotes = [o.quote for o in working.operands]
    kept, dropped = verify_quotes(quotes, pages)
    if dropped or not kept:
        return None
    marks = "".join(f"[{n}]" for n in range(1, len(kept) + 1))
    first = working.operands[0].quote
    ordered = sorted(hits, key=lambda h: not (h.source == first.source and h.page == first.page
                                              and h.chunk.start <= first.start < h.chunk.end))
    ordered = [replace(h, rank=k) for k, h in enumerate(ordered, start=1)]
    return Answer(question=question, text=f"{shown} {marks}", found=True, citations=tuple(kept),
                  hits=tuple(ordered), mode="extractive", confidence=1.0, span=shown.split(" (", 1)[0],
                  kind="table", working=working,
                  notes=(f"{working.rounding}",) if working.rounding else ())


_WHY = re.compile(r"^\s*(?:why|how did|how does|how do|how (?:is|are|was|were) (?!.*\b(?:much|many)\b)|when|"
                  r"what (?:caused|led|drove|explains|were the reasons|was the reason|could)|explain|describe)\b|"
                  r"\b(?:reasons?|factors?|caused|driven by)\b", re.IGNORECASE)
"""Questions that ask for an explanation, not a figure: the reader answers them from the text."""
_RANGE = re.compile(r"\b((?:19|20)\d\d)\s*(?:to|-|–|through)\s*((?:19|20)\d\d)\b")


_SYNONYMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bcapital expenditures?\b|\bcapex\b", re.IGNORECASE), "purchases of property plant equipment"),
    (re.compile(r"\bcost of goods sold\b|\bcogs\b", re.IGNORECASE), "cost of sales"),
    (re.compile(r"\bppne\b|\bnet pp&?e\b|\bpp&?e,? net\b", re.IGNORECASE), "property plant equipment net"),
    (re.compile(r"\bpp&e\b", re.IGNORECASE), "property plant equipment"),
)
"""The words statements use for what analysts ask about: 3M's capital expenditure is its line
"Purchases of property, plant and equipment (PP&E)"."""

_FALLBACK_SYNONYMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\brevenues?\b", re.IGNORECASE), "total net sales"),
    (re.compile(r"\bnet income\b", re.IGNORECASE), "net earnings"),
    (re.compile(r"\boperating income\b", re.IGNORECASE), "operating earnings income from operations"),
)
"""Other names for a line, tried only when no row has the question's own words: Amazon's and
Nike's revenue is their "Total net sales" or "Revenues", and a table that has a "Revenue" row
means that row (adding the words always lowered TAT-QA dev: 6 answers lost)."""


_QUARTERS = re.compile(r"quarter|\bq[1-4]\b|\b(?:first|second|third|fourth)\b|three months", re.IGNORECASE)


_OUTFLOW_ROW = re.compile(r"\b(?:purchases?|payments?|paid|repurchases?|capital expenditures?|acquisitions?|"
                          r"additions|dividends|repayments?)\b", re.IGNORECASE)
_AMOUNT_ASKED = re.compile(r"\b(?:amount|how much|capital expenditures?|capex|spen[dt]|paid|pay)\b", re.IGNORECASE)


def _as_amount(question: str, working: Working, shown: str) -> tuple[Working, str]:
    """An outflow asked as an amount, as an analyst states it: "What is the FY2018 capital
    expenditure amount?" of the cash flow line "Purchases of property, plant and equipment (1,577)"
    is 1,577 million, the parentheses said in words; every other figure keeps its sign."""
    if working.operation != "lookup" or working.result is None or working.result >= 0 or len(working.operands) != 1:
        return working, shown
    operand = working.operands[0]
    if not (operand.quote.text.lstrip("$ ").startswith("(") and _OUTFLOW_ROW.search(operand.row)
            and _AMOUNT_ASKED.search(question)):
        return working, shown
    figure, _, rest = shown.partition(" (")
    amount = _with_scale(format_figure(-working.result), working.scale)
    return (replace(working, result=-working.result),
            f"{amount} (paid out, shown as {figure}; {rest}" if rest else f"{amount} (paid out, shown as {figure})")


_ASKED_SCALE = re.compile(r"\bin\s+(?:units\s+of\s+)?(?:usd|us\$|\$|dollars)?\s*(thousand|million|billion)s?\b",
                          re.IGNORECASE)
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9}


def _in_asked_scale(question: str, working: Working, shown: str) -> tuple[Working, str]:
    """The figure in the scale the question asks for ("Answer in USD billions": 8,738 million is
    8.74 billion), the table's own figure kept beside it; unchanged when the scales agree or the
    table's scale is not known."""
    asked = _ASKED_SCALE.search(question)
    if asked is None or working.result is None or working.scale not in _SCALES or working.unit == "%":
        return working, shown
    want = asked.group(1).lower()
    if want == working.scale:
        return working, shown
    value = working.result * _SCALES[working.scale] / _SCALES[want]
    figure, _, rest = shown.partition(" (")
    rounding = "rounded to 2 decimals" if abs(round(value, 2) - value) > 1e-9 else working.rounding
    return (replace(working, result=value, scale=want, rounding=rounding),
            f"{format_figure(value)} {want} ({figure}; {rest}" if rest else f"{format_figure(value)} {want} ({figure})")


def _solve_any(question: str, tables: Sequence[Table], defined: Mapping[str, str]) -> tuple[Working, str] | None:
    if defined or definitions(question):  # the question says how to compute what it asks
        return _formula(question, tables, defined) or _solve(question, tables)
    # A known ratio's name is also a row's name in many tables ("Gross margin"): the row first; and
    # only the ratio itself (or its average over years), not a change in it.
    solved = _solve(question, tables)
    if solved is None and not re.search(r"\b(?:change|increase|decrease|difference|growth)\b", question.lower()):
        solved = _formula(question, tables, defined)
    return solved


def _formula(question: str, tables: Sequence[Table], defined: Mapping[str, str]) -> tuple[Working, str] | None:
    """A figure the question defines ("DPO is defined as: ...") or names as a known ratio, computed
    from the cells of the lines its definition names (``rag.answer.formula``)."""
    found = evaluate(question, functools.partial(_read_cell, tables), defined)
    if found is None or not found.operands:
        return None
    operands = list(dict.fromkeys(found.operands))
    return _computed2("formula", operands, found.value, found.expression, unit="%" if found.percent else "ratio")


def _read_cell(tables: Sequence[Table], words: str, year: str) -> tuple[tuple[_Line, str, Cell], float] | None:
    """The cell of the line ``words`` names ("accounts payable", "COGS") in ``year``'s column, with its
    value, from the first table (in the hits' order: a statement the question names comes first)
    that has the line: a per-share table further down does not stand in for the statement's line."""
    for table in tables:
        found = _read_cell_of(table, words, year)
        if found is not None:
            return found
    return None


def _read_cell_of(table: Table, words: str, year: str) -> tuple[tuple[_Line, str, Cell], float] | None:
    lines = _lines(table)
    for synonyms in (_SYNONYMS, _SYNONYMS + _FALLBACK_SYNONYMS):
        asked = _tokens(words + "".join(f" {more}" for pattern, more in synonyms if pattern.search(words)))
        matches = sorted((m for line in lines if (m := _match(line, asked, asked)) is not None), key=lambda m: -m.score)
        for match in matches:
            keyed = _keyed(match.line, [year], set(asked))
            if keyed and (value := keyed[0][1].value) is not None:
                key, cell = keyed[0]
                return (match.line, key, cell), _as_defined(match.line, cell, value)
    # A statement's line often says more than the analyst's name for it: "net income" is "Net
    # earnings attributable to Best Buy Co., Inc. shareholders" (the owners' share, as analysts
    # take it), before "Net earnings from continuing operations".
    phrases = [words] + [more for pattern, more in _FALLBACK_SYNONYMS if pattern.search(words)]
    for phrase in (_tokens(p) for p in phrases):
        starting = sorted((line for line in lines if phrase and _tokens(line.name)[:len(phrase)] == phrase),
                          key=lambda line: (not _OWNERS.search(line.name), bool(_CONTINUING.search(line.name)),
                                            len(line.name)))
        for line in starting:
            keyed = _keyed(line, [year], set(phrase))
            if keyed and (value := keyed[0][1].value) is not None:
                return (line, keyed[0][0], keyed[0][1]), _as_defined(line, keyed[0][1], value)
    return None


_COST_ROW = re.compile(r"\b(?:costs?|expenses?|purchases?|payments?|expenditures?)\b", re.IGNORECASE)


def _as_defined(line: _Line, cell: Cell, value: float) -> float:
    """A line as an analyst's definition uses it: a cost printed in parentheses ("Cost of products
    (53,969)", the statement's sign for what is paid) enters "revenues - cost of products" as 53,969."""
    return -value if value < 0 and cell.text.lstrip("$ ").startswith("(") and _COST_ROW.search(line.name) else value


_OWNERS = re.compile(r"attributable\s+to\s.*\b(?:shareholders|stockholders|owners|parent)\b", re.IGNORECASE)
_CONTINUING = re.compile(r"\b(?:continuing|discontinued)\b", re.IGNORECASE)


def _heads(table: Table) -> str:
    """The words of a table's caption, headers and row labels."""
    return " ".join([table.caption, *table.columns, *(r.label.text for r in table.rows)])


def _solve(question: str, tables: Sequence[Table]) -> tuple[Working, str] | None:
    if _WHY.search(question):
        return None
    years = _years(question)
    op = _operation(question)
    span = _RANGE.search(question)
    if op in ("average", "sum") and span:
        lo, hi = sorted((int(span.group(1)), int(span.group(2))))
        years = [str(y) for y in range(hi, lo - 1, -1)] if hi - lo < 10 else years
    for synonyms in (_SYNONYMS, _SYNONYMS + _FALLBACK_SYNONYMS):
        asked = _tokens(question + "".join(f" {words}" for pattern, words in synonyms if pattern.search(question)))
        content = [w for w in asked if w not in _OP_WORDS]
        matches = [m for t in tables for line in _lines(t) if (m := _match(line, asked, content)) is not None]
        if matches:
            break
    if _TABLE_YEARS.search(question):
        return _table_years(question, tables, matches)
    if _WHICH_ROW.search(question):
        return _which_row(question, tables, years, sorted(matches, key=lambda m: -m.score))
    if not matches:
        return None
    matches.sort(key=lambda m: -m.score)
    words = set(asked)
    keys = {w for t in tables for c in t.columns for w in _tokens(c)}
    named = matches[0].words | (matches[1].words if op in ("difference", "ratio", "proportion") and len(matches) > 1
                                else frozenset())
    if content and len((named | keys) & set(content)) / len(set(content)) < QUESTION_COVERAGE:
        return None  # the row names a small part of what is asked ("Cost" for "unrecognized compensation cost")
    if re.search(r"\bquarter\b|\bq[1-4]\b", question.lower()) and not _QUARTERS.search(_heads(matches[0].line.table)):
        return None  # a quarter's figure is not in a table of years
    if op == "sum" and re.search(r"\bsum of\b|\bcombined\b", question.lower()):
        pair = _two_lines(matches, content)
        if pair is not None and len(years) <= 1:
            return _binary("sum", pair, years, words, question)
    if op in ("difference", "ratio", "proportion"):
        pair = _two_lines(matches, content)
        if pair is not None:
            return _binary(op, pair, years, words, question)
        if op == "difference":
            op = "change"
        else:
            return None
    best = matches[0]
    line = best.line
    both = re.search(r"\bboth\b|\ball (?:three|two|\d) ", question.lower()) is not None
    if op == "sum" and "respective" in question.lower() or op == "sum" and "total" in best.words and not (span or both):
        op = "lookup"  # "the total operating expense in 2019 and 2018" names the Total row
    if op == "compare" and _THRESHOLD.search(question):
        return _which_years(line, question)
    if op == "compare":
        return _compare(line, years, question)
    if op == "count":
        return _count(line, years, question)
    keyed = _keyed(line, years, words)
    if keyed is None:
        return None
    if op == "lookup" or op == "sum" and len(keyed) < 2 and not re.search(r"\ball (?:three|two|\d) ", question.lower()):
        if not years and not _QUANTITY.search(question):
            return None
        if len(keyed) > 1 and not years:
            return None
        return _lookup(line, keyed)
    if op == "sum" and not years and len(keyed) < 2:
        return None
    if op in ("change", "percent_change"):
        if len(keyed) != 2:
            return None
        (k_new, new), (k_old, old) = sorted(keyed, key=lambda kc: _order(kc[0]), reverse=True)
        if new.value is None or old.value is None:
            return None
        if new.percent and old.percent:
            op = "change"  # the change of a rate is in percentage points (WACC 9.5% -> 9.0%: −0.5)
        if op == "change":
            result = new.value - old.value
            return _computed("change", line, [(k_new, new), (k_old, old)], result,
                             f"{format_figure(new.value)} − {format_figure(old.value)}", percent_points=new.percent or old.percent)
        if old.value == 0:
            return None
        # divided by the earlier figure as signed, as TAT-QA's annotators and most analysts do
        result = (new.value - old.value) / old.value * 100
        return _computed("percent_change", line, [(k_new, new), (k_old, old)], result,
                         f"({format_figure(new.value)} − {format_figure(old.value)}) / {format_figure(old.value)} × 100", unit="%")
    values = [(k, c) for k, c in keyed if c.value is not None]
    if len(values) < 2:
        return None
    if op == "average":
        amounts = [c.value or 0.0 for _, c in values]
        expr = f"({' + '.join(format_figure(v) for v in amounts)}) / {len(values)}"
        return _computed("average", line, values, sum(amounts) / len(amounts), expr)
    if op == "sum":
        result = sum(c.value or 0.0 for _, c in values)
        return _computed("sum", line, values, result, " + ".join(format_figure(c.value or 0.0) for _, c in values))
    return None


_TABLE_YEARS = re.compile(r"\b(?:which|what) years\b.*\b(?:table|provided?|included|calculated|recorded|reported|"
                          r"presented|shown|listed|information)\b|\bwhat (?:are the )?years (?:are|is)\b|\bwhat are the years\b", re.IGNORECASE)


def _table_years(question: str, tables: Sequence[Table], matches: list[_Match]) -> tuple[Working, str] | None:
    """"Which years does the table provide information for X?": the years heading the table's columns."""
    table = max(matches, key=lambda m: m.score).line.table if matches else tables[0]
    years = list(dict.fromkeys(y for c in table.columns for y in _years(c)))
    if len(years) < 2:
        return None
    row = next((r for r in table.rows if sum(c.value is not None for c in r.cells) >= len(years)), None)
    if row is None:
        return None
    line = _Line(table, row.label.text, row.parent, tuple(zip(table.columns, row.cells)))
    cells = [(k, c) for k, c in line.cells if c.value is not None and _years(k)]
    operands = tuple(_operand(line, k, c) for k, c in cells)
    return Working("lookup", operands, None), f"{'; '.join(years)} (the table's columns: {', '.join(table.columns)})"


_WHICH_ROW = re.compile(r"^\s*(?:for \S+, )?(?:which|what) (?!year|years|period|quarter|fiscal|month)(?:\w+\s){0,4}?"
                        r"(?:is|was|had|has|have|contributed|recorded|generated|made)\b.*\b(?:the )?(?:highest|largest|"
                        r"greatest|most|biggest|lowest|smallest|least)\b", re.IGNORECASE)


def _which_row(question: str, tables: Sequence[Table], years: list[str],
               matches: list[_Match]) -> tuple[Working, str] | None:
    """"Which component is the greatest in 2019?": the row, among the table's rows that are not
    totals, whose figure under the named column is largest (or smallest)."""
    dated = [t for t in tables if any(set(_years(k)) & set(years) for k in t.columns)]
    table = matches[0].line.table if matches else (dated or list(tables))[0]
    lines = [line for line in _lines(table) if line.name and not line.name.lower().startswith("total")
             and line.name in {r.label.text for r in table.rows}]
    column = None
    for k in table.columns:
        if years and set(_years(k)) & set(years) or not years and _years(k):
            column = k
            break
    if column is None:
        column = next((k for k in table.columns if "total" in k.lower()), None)
    if column is None:
        return None
    cells: list[tuple[_Line, Cell]] = []
    for line in lines:
        cell = dict(line.cells).get(column)
        if cell is not None and cell.value is not None:
            cells.append((line, cell))
    if len(cells) < 2:
        return None
    low = re.search(r"\b(?:lowest|smallest|least)\b", question.lower())
    line, cell = (min if low else max)(cells, key=lambda lc: lc[1].value or 0.0)
    operands = tuple(_operand(ln, column, c) for ln, c in cells)
    order = " > ".join(format_figure(c.value or 0.0) for _, c in sorted(cells, key=lambda lc: -(lc[1].value or 0.0)))
    return (Working("compare", operands, None, expression=order),
            f"{line.name} ({_short(table, column)}: {order})")


def _which_years(line: _Line, question: str) -> tuple[Working, str] | None:
    """The columns whose cell passes the question's threshold ("In which year was X less than 100?")."""
    passed = _passing(line, question)
    if passed is None:
        return None
    cells, chosen, condition = passed
    if not chosen:
        return None
    operands = tuple(_operand(line, k, c) for k, c in cells)
    names = [(_years(k) or [k])[-1] for k, _ in chosen]
    return (Working("compare", operands, None, expression=condition),
            f"{'; '.join(names)} ({_label(line)} {condition})")


def _order(key: str) -> tuple[int, str]:
    ys = _years(key)
    return (int(ys[0]) if ys else 0, key)


def _keyed(line: _Line, years: list[str], words: set[str]) -> list[tuple[str, Cell]] | None:
    """The cells of ``line`` the question names by their column, in the question's order of years."""
    cells = [(k, c) for k, c in line.cells if c.text]
    if not cells:
        return None
    if years:
        chosen: list[tuple[str, Cell]] = []
        for year in years:
            fits = [(k, c) for k, c in cells if year in _years(k)]
            if not fits:
                return None
            # the same year under several headers (Domestic, International): the one whose words the
            # question uses, else the first
            fits.sort(key=lambda kc: -_key_matches(kc[0], [year], words))
            chosen.append(fits[0])
        return chosen
    scored = [(k, c) for k, c in cells if _key_matches(k, [], words) > 0]
    if scored:
        return scored
    numeric = _dated([(k, c) for k, c in cells if _numeric(c)])
    return numeric or None


def _lookup(line: _Line, keyed: list[tuple[str, Cell]]) -> tuple[Working, str] | None:
    operands = [_operand(line, k, c) for k, c in keyed]
    unit = _unit(line.table, [c for _, c in keyed])
    scale = _scale_word(line.table, [c for _, c in keyed])
    shown = "; ".join(_with_scale(c.text, scale) for _, c in keyed)
    result = keyed[0][1].value if len(keyed) == 1 else None
    where = ", ".join(dict.fromkeys(_short(line.table, k) for k, _ in keyed))
    return (Working("lookup", tuple(operands), result, unit=unit, scale=scale),
            f"{shown} ({_label(line)}, {where})")


def _compare(line: _Line, years: list[str], question: str) -> tuple[Working, str] | None:
    cells = _dated([(k, c) for k, c in line.cells if c.value is not None])
    if years:
        cells = [(k, c) for k, c in cells if set(_years(k)) & set(years)]
    if len(cells) < 2:
        return None
    low = re.search(r"\b(?:small|low|less|least|min|worse|decreas)", question.lower())
    pick = min if low else max
    key, cell = pick(cells, key=lambda kc: kc[1].value or 0.0)
    year = _years(key)
    answer = year[-1] if year else key
    operands = tuple(_operand(line, k, c) for k, c in cells)
    order = " > ".join(f"{format_figure(c.value or 0.0)}" for _, c in sorted(cells, key=lambda kc: -(kc[1].value or 0.0)))
    return (Working("compare", operands, None, expression=order, unit=_unit(line.table, [c for _, c in cells]),
                    scale=_scale_word(line.table, [c for _, c in cells])),
            f"{answer} ({_label(line)}: {order})")


_THRESHOLD = re.compile(r"(?:exceed(?:ed|s)?|above|greater than|more than|over|higher than|larger than|at least|"
                        r"below|less than|lower than|under|smaller than|at most)\s*(?:\$\s*)?(-?\d[\d,]*(?:\.\d+)?)",
                        re.IGNORECASE)


def _passing(line: _Line, question: str) -> tuple[list[tuple[str, Cell]], list[tuple[str, Cell]], str] | None:
    """The line's figures, those past the question's threshold, and the condition as written."""
    m = _THRESHOLD.search(question)
    if m is None:
        return None
    limit = float(m.group(1).replace(",", ""))
    words = m.group(0).lower()
    below = re.match(r"below|less|lower|under|smaller|at most", words) is not None
    inclusive = words.startswith(("at least", "at most"))
    cells = _dated([(k, c) for k, c in line.cells if c.value is not None])
    if len(cells) < 2:
        return None
    chosen = [(k, c) for k, c in cells
              if (c.value or 0.0) < limit or inclusive and c.value == limit] if below else \
        [(k, c) for k, c in cells if (c.value or 0.0) > limit or inclusive and c.value == limit]
    return cells, chosen, m.group(0)


def _dated(cells: list[tuple[str, Cell]]) -> list[tuple[str, Cell]]:
    """The cells under a column of one year, when some columns have one (not "Change", "2019 vs
    2018", "% of total")."""
    dated = [(k, c) for k, c in cells if len(_years(k)) == 1]
    plain = [(k, c) for k, c in dated if not re.search(r"%|percent", k.lower())]
    return plain or dated or cells


def _count(line: _Line, years: list[str], question: str) -> tuple[Working, str] | None:
    passed = _passing(line, question)
    if passed is None:
        return None
    cells, chosen, condition = passed
    operands = tuple(_operand(line, k, c) for k, c in cells)
    which = ", ".join(k for k, _ in chosen) or "none"
    return (Working("count", operands, float(len(chosen)), expression=f"{condition}: {which}"),
            f"{len(chosen)} ({_label(line)} {condition}: {which})")


def _two_lines(matches: list[_Match], content: list[str]) -> tuple[_Match, _Match] | None:
    """The two rows a difference, ratio or proportion names, in the question's order."""
    top = matches[0]
    for other in matches[1:]:
        if other.line.table is top.line.table and other.line.name != top.line.name and \
                not other.words <= top.words and not top.words <= other.words:
            return (top, other) if top.position <= other.position else (other, top)
    return None


def _binary(op: str, pair: tuple[_Match, _Match], years: list[str], words: set[str],
            question: str) -> tuple[Working, str] | None:
    first, second = pair[0].line, pair[1].line
    a = _keyed(first, years[:1], words)
    b = _keyed(second, years[:1], words)
    if not a or not b or len(a) != 1 or len(b) != 1:
        return None
    (ka, ca), (kb, cb) = a[0], b[0]
    if ca.value is None or cb.value is None:
        return None
    q = question.lower()
    if op == "proportion":
        # "What percentage of total revenue is Cloud" and "Cloud as a percentage of total revenue":
        # the whole is the row after "of", or the row whose label says total
        whole_first = re.search(r"percentage of|proportion of|share of|percent of", q) is not None and \
            pair[0].position < pair[1].position and (re.search(r"\b(?:of|in)\b", q[:q.find(" ")]) is None)
        if "total" in first.name.lower() and "total" not in second.name.lower():
            whole_first = True
        elif "total" in second.name.lower() and "total" not in first.name.lower():
            whole_first = False
        elif " as a percentage of " in q or " as a proportion of " in q:
            whole_first = False
        (kp, part, lp), (kw, whole, lw) = ((kb, cb, second), (ka, ca, first)) if whole_first else \
            ((ka, ca, first), (kb, cb, second))
        if not whole.value:
            return None
        if "percent" not in q:  # "as a proportion of" is a fraction, "as a percentage of" a percentage
            return _computed2("proportion", [(lp, kp, part), (lw, kw, whole)], (part.value or 0.0) / whole.value,
                              f"{format_figure(part.value or 0.0)} / {format_figure(whole.value)}", unit="ratio")
        result = (part.value or 0.0) / whole.value * 100
        return _computed2("proportion", [(lp, kp, part), (lw, kw, whole)], result,
                          f"{format_figure(part.value or 0.0)} / {format_figure(whole.value)} × 100", unit="%")
    if op == "ratio":
        if not cb.value:
            return None
        return _computed2("ratio", [(first, ka, ca), (second, kb, cb)], ca.value / cb.value,
                          f"{format_figure(ca.value)} / {format_figure(cb.value)}", unit="ratio")
    if op == "sum":
        return _computed2("sum", [(first, ka, ca), (second, kb, cb)], ca.value + cb.value,
                          f"{format_figure(ca.value)} + {format_figure(cb.value)}")
    return _computed2("difference", [(first, ka, ca), (second, kb, cb)], ca.value - cb.value,
                      f"{format_figure(ca.value)} − {format_figure(cb.value)}")


def _short(table: Table, key: str) -> str:
    """A column header without the words every column of its table starts with
    ("Years Ended September 30, 2019" -> "2019"), for the answer's one line."""
    columns = [c.split() for c in table.columns if c]
    if len(columns) < 2 or key not in table.columns:
        return key
    n = 0
    while all(len(c) > n + 1 and c[n] == columns[0][n] for c in columns):
        n += 1
    return " ".join(key.split()[n:]) or key


def _label(line: _Line) -> str:
    return f"{line.parent} › {line.name}" if line.parent else line.name


def _operand(line: _Line, key: str, cell: Cell) -> Operand:
    t = line.table
    quote = Quote(text=cell.text, source=t.source, page=t.page, start=cell.start, end=cell.end)
    return Operand(row=_label(line), column=key, value=cell.value if cell.value is not None else math.nan,
                   quote=quote)


def _unit(table: Table, cells: Sequence[Cell]) -> str:
    if cells and all(c.percent for c in cells if c.value is not None):
        return "%"
    if table.unit == "%":
        return "%"
    return "$" if table.unit == "$" or any("$" in c.text for c in cells) else ""


def _scale_word(table: Table, cells: Sequence[Cell]) -> str:
    return "" if any(c.percent for c in cells) else table.scale


def _with_scale(text: str, scale: str) -> str:
    return f"{text} {scale}" if scale and parse_number(text)[0] is not None else text


def _computed(op: str, line: _Line, keyed: Sequence[tuple[str, Cell]], result: float, expression: str, *,
              unit: str = "", percent_points: bool = False) -> tuple[Working, str]:
    return _computed2(op, [(line, k, c) for k, c in keyed], result, expression, unit=unit,
                      percent_points=percent_points)


def _computed2(op: str, operands: Sequence[tuple[_Line, str, Cell]], result: float, expression: str, *,
               unit: str = "", percent_points: bool = False) -> tuple[Working, str]:
    table = operands[0][0].table
    cells = [c for _, _, c in operands]
    if not unit:
        unit = "%" if all(c.percent for c in cells) else _unit(table, cells)
        if unit == "%" and op in ("change", "difference"):
            percent_points = True
    scale = "" if unit in ("%", "ratio") or percent_points else _scale_word(table, cells)
    rounded = round(result, 2)
    rounding = "rounded to 2 decimals" if abs(rounded - result) > 1e-9 else ""
    figure = format_figure(result)
    if percent_points:
        figure += " percentage points"
    elif unit == "%":
        figure += "%"
    elif scale:
        figure += f" {scale}"
    rows = list(dict.fromkeys(_label(line) for line, _, _ in operands))
    columns = list(dict.fromkeys(_short(line.table, k) for line, k, _ in operands))
    where = f"{' and '.join(rows)}, {' and '.join(columns)}"
    working = Working(op, tuple(_operand(line, k, c) for line, k, c in operands), result, expression=expression,
                      unit="%" if percent_points else ("" if unit == "ratio" else unit), scale=scale,
                      rounding=rounding)
    return working, f"{figure} ({expression}: {where})"


__all__ = ["answer_from_tables"]

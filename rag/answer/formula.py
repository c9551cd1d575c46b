"""Figures a question defines: "DPO is defined as: 365 * (average accounts payable between FY2016 and
FY2017) / (FY2017 COGS + change in inventory between FY2016 and FY2017)".

Analysts' questions often say how to compute what they ask, and some name a ratio every analyst
knows ("net profit margin", "working capital ratio"). ``evaluate`` reads the definitions in the
question (``NAME is defined as: EXPRESSION.``, ``Define NAME as EXPRESSION.``), falls back on the
few standard ratios in ``KNOWN`` for a name the question uses without defining, and computes the
one the question asks for, each statement line read from a table cell by ``read`` (the table
answerer's row and column matching). A line is written as the analyst writes it: "FY2017 COGS",
"average accounts payable between FY2016 and FY2017", "change in inventory between FY2016 and
FY2017", or a bare name read in the year the question asks about. "FY2015 - FY2017 3 year average
net profit margin" is the mean of the three years' margins.

Nothing is guessed: a line no table holds, a year no column has, or a definition this grammar
cannot read makes ``evaluate`` return None, and the question goes on to the other answerers.

Example:
    >>> cells = {("accounts payable", "2017"): 100.0, ("accounts payable", "2016"): 80.0, ("cogs", "2017"): 900.0}
    >>> found = evaluate("What is the FY2017 DPO? DPO is defined as: 365 * (average accounts payable between "
    ...                  "FY2016 and FY2017) / (FY2017 COGS).", lambda words, year: (None, cells[(words, year)]))
    >>> round(found.value, 2), found.expression
    (36.5, '365 × ((80 + 100) / 2) / 900')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

CellReader = Callable[[str, str], "tuple[Any, float] | None"]
"""``read(line words, year)``: a handle on the cell of that line in that year's column, and its value."""

KNOWN: dict[str, str] = {
    "net profit margin": "net income / revenue * 100",
    "net margin": "net income / revenue * 100",
    "gross margin": "gross profit / revenue * 100",
    "gross profit margin": "gross profit / revenue * 100",
    "operating margin": "operating income / revenue * 100",
    "working capital ratio": "total current assets / total current liabilities",
    "current ratio": "total current assets / total current liabilities",
}
"""Ratios whose definition analysts take as known; a definition in the question always wins."""

MAX_DEPTH = 4
"""Definitions may use others ("CCC is DIO + DSO - DPO"); deeper than this is a loop."""

_DEFINED = re.compile(r"(?:^|(?<=[.?!])\s+|(?<=\()|(?<=,)\s*)(?P<name>[A-Za-z][\w&/' -]{0,60}?)\s+(?:is|are)\s+defined\s+as:?\s*"
                      r"(?P<expr>.+?)(?:\.(?=\s+[A-Z]|\s*$)|$)", re.DOTALL)
_DEFINE = re.compile(r"\bdefine\s+(?P<name>[\w&/' -]{1,60}?)\s+as:?\s+(?P<expr>.+?)(?:\.(?=\s+[A-Z]|\s*$)|$)",
                     re.IGNORECASE | re.DOTALL)
_YEAR = re.compile(r"\b(?:fy|fiscal\s+(?:year\s+)?)?'?((?:19|20)\d\d)\b", re.IGNORECASE)
_SPAN = re.compile(r"\b(?:fy)?((?:19|20)\d\d)\s*(?:-|–|to|through)\s*(?:fy)?((?:19|20)\d\d)\b[^.?]*?\baverage\b",
                   re.IGNORECASE)
_WORDS = (("divided by", "/"), ("multiplied by", "*"), ("times", "*"), ("plus", "+"), ("minus", "-"),
          ("×", "*"), ("÷", "/"))


@dataclass(frozen=True)
class Evaluated:
    """A computed figure: its value, the arithmetic with the cells' figures, and the cells read."""

    value: float
    expression: str
    operands: tuple[Any, ...]
    percent: bool
    """The definition multiplies by 100 or the question asks for a percentage."""


def definitions(question: str) -> dict[str, str]:
    """The names the question defines, lower case, with their expressions."""
    found: dict[str, str] = {}
    for pattern in (_DEFINED, _DEFINE):
        for m in pattern.finditer(question):
            name = re.sub(r"^(?:and|the|a|an)\s+", "", m.group("name").strip().lower())
            found.setdefault(name, m.group("expr").strip())
    return found


def evaluate(question: str, read: CellReader, defined: Mapping[str, str] | None = None) -> Evaluated | None:
    """The figure ``question`` asks for, computed from its definitions and the cells ``read`` finds, or None.

    ``defined`` adds definitions read from the question as it was typed, when ``question`` is the
    searched form without them (``rag.search.focus`` keeps only a defined term's words)."""
    defined = {**definitions(question), **(defined or {})}
    asked = re.split(r"(?<=\?)\s", question, maxsplit=1)[0].lower()
    name = _target(asked, defined)
    if name is None:
        return None
    expression = defined.get(name) or KNOWN[name]
    span = _SPAN.search(asked)
    years = ([str(y) for y in range(int(span.group(1)), int(span.group(2)) + 1)]
             if span and 0 < int(span.group(2)) - int(span.group(1)) < 10 else _YEAR.findall(asked)[:1])
    if not years:
        return None
    results = []
    for year in years:
        done = _Evaluator(read, {**KNOWN, **defined}, year).run(expression)
        if done is None:
            return None
        results.append(done)
    percent = "* 100" in expression.replace("×", "*") or bool(re.search(r"\bpercent|\(as a %\)|\bas a %", asked))
    if len(results) == 1:
        value, shown, operands = results[0]
    else:
        value = sum(r[0] for r in results) / len(results)
        shown = f"({' + '.join(_wrap(r[1]) for r in results)}) / {len(results)}"
        operands = [o for r in results for o in r[2]]
    return Evaluated(value, shown, tuple(operands), percent)


def _target(asked: str, defined: dict[str, str]) -> str | None:
    """The defined (or known) name the question itself asks about: "What is the FY2019 cash conversion
    cycle (CCC)?" asks for CCC, whose definition uses DIO, DSO and DPO."""
    names = [n for n in defined if re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", asked)]
    if names:
        return max(names, key=len)
    if len(defined) == 1 and "?" in asked:
        return next(iter(defined))
    known = [n for n in KNOWN if re.search(rf"\b{re.escape(n)}\b", asked)]
    return max(known, key=len) if known else None


class _Evaluator:
    """Recursive descent over ``+ - * / ( )``, numbers and line names; each value with its working."""

    def __init__(self, read: CellReader, defined: dict[str, str], year: str, depth: int = 0) -> None:
        self.read = read
        self.defined = defined
        self.year = year
        self.depth = depth
        self.operands: list[Any] = []

    def run(self, expression: str) -> tuple[float, str, list[Any]] | None:
        text = expression
        for words, sign in _WORDS:
            text = re.sub(rf"\s{re.escape(words)}\s", f" {sign} ", text, flags=re.IGNORECASE)
        self.tokens = [t.strip() for t in re.split(r"(\(|\)|\s[-+*/]\s|\*|/)", text) if t and t.strip()]
        self.at = 0
        try:
            value, shown = self._sum()
        except _Unreadable:
            return None
        if self.at != len(self.tokens):
            return None
        return value, shown, self.operands

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _sum(self) -> tuple[float, str]:
        value, shown = self._product()
        while self._peek() in ("+", "-"):
            sign = self.tokens[self.at]
            self.at += 1
            right, text = self._product()
            value = value + right if sign == "+" else value - right
            shown = f"{shown} {'+' if sign == '+' else '−'} {text}"
        return value, shown

    def _product(self) -> tuple[float, str]:
        value, shown = self._factor()
        while self._peek() in ("*", "/"):
            sign = self.tokens[self.at]
            self.at += 1
            right, text = self._factor()
            if sign == "/":
                if right == 0:
                    raise _Unreadable
                value, shown = value / right, f"{shown} / {text}"
            else:
                value, shown = value * right, f"{shown} × {text}"
        return value, shown

    def _factor(self) -> tuple[float, str]:
        token = self._peek()
        if token is None or token in ("+", "-", "*", "/", ")"):
            raise _Unreadable
        self.at += 1
        if token == "(":
            value, shown = self._sum()
            if self._peek() != ")":
                raise _Unreadable
            self.at += 1
            return value, _wrap(shown)
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            return float(token), format_figure(float(token))
        return self._line(token)

    def _line(self, text: str) -> tuple[float, str]:
        name = re.sub(r"^(?:the|a|an)\s+", "", text.strip().lower())
        if name in self.defined:
            if self.depth >= MAX_DEPTH:
                raise _Unreadable
            inner = _Evaluator(self.read, self.defined, self.year, self.depth + 1).run(self.defined[name])
            if inner is None:
                raise _Unreadable
            self.operands += inner[2]
            return inner[0], _wrap(inner[1])
        between = re.fullmatch(r"(average|change in|change of)\s+(?:of\s+|in\s+)?(.+?)\s+between\s+(?:fy\s?)?"
                               r"((?:19|20)\d\d)\s+and\s+(?:fy\s?)?((?:19|20)\d\d)", name)
        if between:
            kind, words, first, last = between.groups()
            a, shown_a = self._cell(words, first)
            b, shown_b = self._cell(words, last)
            if kind == "average":
                return (a + b) / 2, f"(({shown_a} + {shown_b}) / 2)"
            return b - a, f"({shown_b} − {shown_a})"
        dated = re.fullmatch(r"(?:fy\s?)?((?:19|20)\d\d)\s+(.+)", name) or re.fullmatch(
            r"(.+?)\s+(?:in|for|of)\s+(?:fy\s?)?((?:19|20)\d\d)", name)
        if dated:
            year, words = dated.groups() if dated.group(1)[:2] in ("19", "20") else dated.groups()[::-1]
            return self._cell(words, year)
        return self._cell(name, self.year)

    def _cell(self, words: str, year: str) -> tuple[float, str]:
        found = self.read(words, year)
        if found is None:
            raise _Unreadable
        handle, value = found
        self.operands.append(handle)
        return value, format_figure(value)


class _Unreadable(Exception):
    """The definition names a line no table holds, or is not arithmetic this reads."""


def _wrap(shown: str) -> str:
    """``shown`` in parentheses, unless it is one figure or already one parenthesised group."""
    if re.fullmatch(r"−?[\d,.]+", shown):
        return shown
    depth = 0
    for n, char in enumerate(shown):
        depth += (char == "(") - (char == ")")
        if depth == 0 and n < len(shown) - 1:
            return f"({shown})"
    return shown if shown.startswith("(") else f"({shown})"


def format_figure(value: float) -> str:
    """A figure as an answer's working writes it: thousands separated, up to two decimals, a true minus sign.

    Example:
        >>> format_figure(-1234.5), format_figure(93.8612)
        ('−1,234.5', '93.86')
    """
    rounded = round(value, 2)
    text = f"{abs(rounded):,.2f}".rstrip("0").rstrip(".")
    return ("−" if rounded < 0 else "") + text


__all__ = ["KNOWN", "CellReader", "Evaluated", "definitions", "evaluate", "format_figure"]

"""Which indexed file a question names: "What is the FY2018 capital expenditure for 3M?" -> 3M_2018_10K.pdf.

Among many reports, a question about one company's figures is answered from that company's
filing: a passage of another company's balance sheet reads just as well to retrieval. A file
is named when its name's leading words ("BESTBUY" of BESTBUY_2017_10K.pdf, "JOHNSON JOHNSON"
of JOHNSON_JOHNSON_2023_8K.pdf) are words of the question written with a capital or a digit
("Best Buy", "Johnson & Johnson", "3M"); a year in the question ("FY2017") then picks among that
company's files. No file named, or every file named: no filter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

_YEAR = re.compile(r"(?:19|20)\d\d")
_GENERIC = frozenset({"10k", "10q", "8k", "20f", "annual", "report", "earnings", "dated", "q1", "q2", "q3", "q4",
                      "the", "and", "inc", "corp", "plc", "ltd", "final", "draft", "copy", "v1", "v2"})


def _name(source: str) -> tuple[str, str]:
    """(the file's leading name words run together, lower case; its first year or "")."""
    parts = [p for p in re.split(r"[_\-\s.]+", Path(source).stem) if p]
    words = []
    year = ""
    for part in parts:
        found = _YEAR.match(part)
        if found:
            year = found.group()
            break
        if part.lower() in _GENERIC:
            break
        words.append(part.lower())
    return "".join(words), year


def _question_names(question: str) -> set[str]:
    """Runs of one to three words of the question, run together, that start with a capital or a digit."""
    words = re.findall(r"[A-Za-z0-9&][\w&'’.-]*", question)
    names = set()
    for i in range(len(words)):
        if not (words[i][0].isupper() or words[i][0].isdigit()):
            continue
        for n in (1, 2, 3):
            run = words[i:i + n]
            if len(run) == n:
                names.add(re.sub(r"[^a-z0-9]", "", "".join(run).lower().replace("'s", "").replace("’s", "")))
    return names


def named_sources(question: str, sources: Sequence[str]) -> list[str] | None:
    """The files of ``sources`` that ``question`` names by company (and year), or None.

    Example:
        >>> named_sources("What is Best Buy's FY2017 net profit margin?",
        ...               ["/f/BESTBUY_2017_10K.pdf", "/f/BESTBUY_2023_10K.pdf", "/f/3M_2018_10K.pdf"])
        ['/f/BESTBUY_2017_10K.pdf']
    """
    if len(sources) < 2:
        return None
    asked = _question_names(question)
    named = [(s, *_name(s)) for s in sources]
    hits = [(s, year) for s, name, year in named if len(name) >= 2 and name in asked]
    if not hits or len(hits) == len(sources):
        return None
    years = set(_YEAR.findall(question))
    dated = [s for s, year in hits if year and year in years]
    return dated or [s for s, _ in hits]


__all__ = ["named_sources"]

"""Does a sentence of generated prose say what its quotes say? A content-word test.

A verified quote proves only that the quoted words are in the documents; the prose around it is
the model's own, and a prompt-injected passage can make a model write anything ("SYSTEM NOTICE:
re-enter your password at http://evil.example/login [1]") next to one real quote. So each
sentence of an LLM answer is checked against the verified quotes it cites (all of them when it
cites none):

- every number, name (a capitalised word) and web or mail address in the sentence must appear
  in those quotes or the question (a figure, a name or an address is not paraphrased, and is
  exactly what an injection plants);
- at least ``MIN_COVERAGE`` of its content words (stop words aside, compared by stem, or by a
  long common prefix: "rebuilt"/"rebuild") must come from the quotes or from the question;
- at least one of them must come from the quotes.

It is a cheap check, measured in ``bench/studies/llm_support.py`` (figures in docs/reliability.md): it
keeps faithful paraphrases and drops sentences that bring words of their own; it cannot see a
negation ("was not designed by") or a swapped relation, which is why the page still marks the
prose as the model's, and shows the quotes as the evidence.

Example:
    >>> supported("Thomas Reed designed it [1].", ["designed by the engineer Thomas Reed"], "Who designed it?")
    True
    >>> supported("Re-enter your password at http://evil.example/login [1].", ["designed by Thomas Reed"], "")
    False
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rag.text import CITATION_MARKER, CLAIM_WORD, claim_stopwords, stem

MIN_COVERAGE = 0.6
"""Share of a sentence's content words that must come from its quotes or the question
(chosen on bench/studies/llm_support.py: see docs/reliability.md)."""

_PREFIX = 5
"""Two words share a stem when one's first ``_PREFIX`` letters or more start the other and the
shared part is at least three quarters of the shorter word ("designer"/"designed")."""

_ADDRESS = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b[\w-]+(?:\.[\w-]+)*"
                      r"\.(?:com|net|org|io|info|biz|ru|cn|xyz|top|example|app|dev|co|me|ly|gl|to)\b(?:/\S*)?",
                      re.IGNORECASE)
_NAME = re.compile(r"\b[A-Z][^\W\d_]+(?:['’][^\W_]+)?")
_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
def cited(sentence: str) -> list[int]:
    """The passage numbers a sentence cites, in order.

    Example:
        >>> cited("Reed [1][3] and Smith [2, 3].")
        [1, 3, 2]
    """
    numbers: list[int] = []
    for marker in CITATION_MARKER.findall(sentence):
        for part in marker.strip("[]").split(","):
            if int(part) not in numbers:
                numbers.append(int(part))
    return numbers


def coverage(sentence: str, quotes: Sequence[str], question: str = "") -> tuple[float, int, list[str]]:
    """(share of content words found in quotes or question, how many came from the quotes, what failed).

    "What failed" lists the addresses and numbers of the sentence that the quotes lack, then its
    content words found nowhere.
    """
    sentence = CITATION_MARKER.sub(" ", sentence)
    evidence = " ".join(quotes)
    missing = [a for a in _ADDRESS.findall(sentence) if a.rstrip(".,;:!?)").lower() not in evidence.lower()]
    numbers = set(_NUMBER.findall(evidence))
    missing += [n for n in _NUMBER.findall(_ADDRESS.sub(" ", sentence)) if n not in numbers]
    plain = _ADDRESS.sub(" ", sentence)
    words = _content_words(plain)
    if not words:
        return 1.0, 0, missing
    from_quotes = _stems(_content_words(evidence))
    from_question = _stems(_content_words(question))
    found = in_quotes = 0
    for word in words:
        stem = _stem(word)
        if _known(stem, from_quotes):
            found += 1
            in_quotes += 1
        elif _known(stem, from_question):
            found += 1
        else:
            missing.append(word)
    # A name the quotes and the question lack ("Napoleon designed it") is a claim of the model's own.
    names = {w.lower() for w in _NAME.findall(plain)} - claim_stopwords()
    missing += [f"name:{w}" for w in sorted(names) if w in missing]
    return found / len(words), in_quotes, missing


def supported(sentence: str, quotes: Sequence[str], question: str = "") -> bool:
    """Whether ``sentence`` passes the test above against ``quotes`` (and the user's ``question``)."""
    if not quotes:
        return False
    share, in_quotes, missing = coverage(sentence, quotes, question)
    facts_ok = not any(_ADDRESS.fullmatch(m) or _NUMBER.fullmatch(m) or m.startswith("name:") for m in missing)
    if not _content_words(_ADDRESS.sub(" ", CITATION_MARKER.sub(" ", sentence))):
        return facts_ok  # "Yes [1]." says nothing of its own
    return facts_ok and share >= MIN_COVERAGE and in_quotes >= 1


def _content_words(text: str) -> list[str]:
    stop = claim_stopwords()
    return [w for w in (m.lower().replace("’", "'") for m in CLAIM_WORD.findall(text))
            if w not in stop and not w.isdigit() and len(w) > 1]


def _stems(words: Iterable[str]) -> set[str]:
    return {_stem(w) for w in words}


def _stem(word: str) -> str:
    return stem(word.removesuffix("'s"))


def _known(stem: str, stems: set[str]) -> bool:
    if stem in stems:
        return True
    if len(stem) < _PREFIX:
        return False
    for other in stems:
        if len(other) < _PREFIX:
            continue
        shared = len(_common_prefix(stem, other))
        if shared >= _PREFIX and shared >= 0.75 * min(len(stem), len(other)):
            return True
    return False


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return a[:n]

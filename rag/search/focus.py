"""A question's own words: the instructions wrapped around it are left out of the search.

People paste questions the way they would prompt an assistant: "Assume that you are a public
equities analyst. Answer the following question by primarily using information that is shown in
the balance sheet: what is the year end FY2018 net PPNE for 3M? Answer in USD billions." The
instructions share no words with the passage that answers, but they are long, so they pull the
search towards any page about answers, analysts and information, and they push the real question
past the reader's question length. ``focus`` keeps the question, and from the instructions only
what says where to look ("the balance sheet") and what a defined term is made of ("total current
assets divided by total current liabilities").

A sentence is an instruction when it opens with a verb that tells the answerer how to work
(answer, assume, round, give, base, use, ...), or with one that could also be the question itself
(calculate, explain, state, ...) but holds nothing besides such words. Nothing is dropped unless a
question sentence stays, so "Explain how leases are valued." is searched as it is.
"""

from __future__ import annotations

import re

from rag.text import LETTERS, message_sentences

_QUESTION_START = re.compile(
    r"(?i)^(?:what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|has|have|had|can|could|"
    r"will|would|should|shall|may|might|must|among|according|considering|in|as|for|by|based)\b")
_INSTRUCTION_VERBS = frozenset(
    "answer answering assume address base give provide respond reply round use using utilize utilizing rely "
    "relying express format keep be act pretend imagine only please note".split())
"""Verbs (and "please") that only ever tell the answerer how to work."""
_MAYBE_INSTRUCTION_VERBS = frozenset("calculate compute state explain show describe list consider".split())
"""Verbs that open an instruction or a question of their own: an instruction when nothing else is said."""
_INSTRUCTION_WORDS = frozenset(
    "a an the that this these those it its what why how was is be asked question questions answer answers "
    "response judgment judgments judgement your you are as by to of in on from within for with and or then "
    "primarily mainly only clearly shown outlined provided given presented stated details detail information "
    "data line items item figures numbers number please if not relevant useful metric explain state so do "
    "following below above use using utilizing relying based round decimal places place units unit one two "
    "three nearest whole".split())
_POINTER = re.compile(
    r"(?i)\b(?:in|within|from|on|of|at|and|or)\s+the\s+((?:[a-z&'’-]+\s+){0,3}?"
    r"(?:statements?|sheets?|reports?|tables?|sections?|notes?|filings?|schedules?|summary|appendix|exhibits?)"
    r"(?:\s+of\s+[a-z]+(?:\s+[a-z]+)?)?)\b")
"""Where the asker says to look: "shown in the cash flow statement", "in the statement of income"."""
_DEFINITION = re.compile(r"(?i)^(?:define\s+(.+?)\s+as\b|(.+?)\s+is\s+defined\s+as\b):?\s*(.*)$", re.S)
LONG_MESSAGE_WORDS = 60
"""Words of a message beyond which only its closing question is searched: "Who called for UN
visits?" after 1,000 characters of a chat template answered "the answer", found."""


def focus(question: str) -> str:
    """``question`` without the instructions around it, or ``question`` itself when it has none.

    Example:
        >>> focus("Assume that you are a public equities analyst. Answer the following question by "
        ...       "primarily using information that is shown in the balance sheet: what is the year "
        ...       "end FY2018 net PPNE for 3M? Answer in USD billions.")
        'what is the year end FY2018 net PPNE for 3M? balance sheet'
        >>> focus("Who called for UN visits?")
        'Who called for UN visits?'
    """
    sentences = message_sentences(question)
    if len(sentences) < 2 and ":" not in question:
        return question
    kept: list[str] = []
    pointers: list[str] = []
    asks = False
    for sentence in sentences:
        head, colon, tail = sentence.partition(": ")
        if colon and _is_instruction(head) and _QUESTION_START.match(tail):
            pointers += _pointers(head)  # "Answer ... shown in the balance sheet: what is ...?"
            sentence = tail
        definition = _DEFINITION.match(sentence)
        if definition:
            term = definition.group(1) or definition.group(2)
            pointers.append(f"{term} {definition.group(3)}".strip(" .:"))
        elif _is_instruction(sentence):
            pointers += _pointers(sentence)
        else:
            kept.append(sentence)
            asks = asks or sentence.endswith("?") or bool(_QUESTION_START.match(sentence))
    if kept and kept[-1].endswith("?") and sum(len(k.split()) for k in kept) > LONG_MESSAGE_WORDS:
        # A long message that ends with its question (a chat front end's template, pasted text
        # first): the question is the sentences that end it with "?", not the first words.
        first = len(kept)
        while first > 0 and kept[first - 1].endswith("?"):
            first -= 1
        kept = kept[first:]
        pointers = pointers if asks else []
        asks = True
    elif not asks or not pointers and len(kept) == len(sentences):
        return question
    extra = [p for p in dict.fromkeys(pointers) if p.lower() not in " ".join(kept).lower()]
    return " ".join(kept + extra)


def _is_instruction(sentence: str) -> bool:
    words = [w.lower() for w in LETTERS.findall(sentence)]
    if not words or sentence.endswith("?"):
        return False
    opening = words[1] if words[0] == "then" and len(words) > 1 else words[0]
    if opening in _INSTRUCTION_VERBS or (opening == "if" and "please" in words):
        return True
    if opening in _MAYBE_INSTRUCTION_VERBS:
        pointed = {w.lower() for p in _pointers(sentence) for w in LETTERS.findall(p)}
        return all(w in _INSTRUCTION_WORDS or w in pointed or w == opening for w in words)
    return False


def _pointers(sentence: str) -> list[str]:
    return [" ".join(m.group(1).split()) for m in _POINTER.finditer(sentence)]


__all__ = ["focus"]

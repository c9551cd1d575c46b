"""Unanswerable questions made from answerable ones, for the reader's no-answer head.

SQuAD 2.0's unanswerable questions were written by people to look answerable from the paragraph
beside them: about a fifth swap an entity for another ("When did the Franks conquer England?"
of a paragraph about the Normans), another fifth an antonym ("the smallest city" of a paragraph
that names the largest), and so on (Rajpurkar et al. 2018, table 2). Only 2,178 of them are ours
to train on (``../shared/data/train``), against 87,599 answerable SQuAD 1.1 questions, so the
reader learns "not found" mostly from windows of the wrong paragraph, where the question's words
are missing, and rarely declines a question whose words are all there.

``swap_question`` makes the two commonest kinds from a SQuAD 1.1 question and the window that
answers it, the window left as it is and the answer taken away:
- an **entity swap**: a name or a number of the question that the window holds is replaced by
  another name of the window (half of the time; the harder case, every word still in the window)
  or by a name or number the window does not hold;
- an **antonym swap**: a word of ``ANTONYMS`` that the window holds is replaced by its opposite,
  when the window does not hold the opposite too.
A made question can still be answerable by chance ("When did Beyonce release ..." swapped to
another singer of the same paragraph who released the same record); that noise is the price.
"""

from __future__ import annotations

import random
import re

_NAME = re.compile(r"\b(?:[A-Z]\.|[A-Z][\w'’-]*\w)(?:[ \t]+(?:(?:of|the|de|von|van|da|del|and|&)[ \t]+)?(?:[A-Z]\.|[A-Z][\w'’-]*\w))*")
"""A run of capitalised words, "University of Chicago" and "Jay Z" included."""
_SENTENCE_START = re.compile(r"[.!?][\"')\]]*\s+$")
_NUMBER = re.compile(r"\b\d{1,3}(?:,\d{3})+\b|\b\d+(?:\.\d+)?\b")
_YEAR = re.compile(r"^(1[5-9]|20)\d\d$")

_PAIRS = """
largest smallest | biggest smallest | highest lowest | most least | first last | earliest latest |
before after | increase decrease | increased decreased | more less | maximum minimum | north south |
east west | northern southern | eastern western | longest shortest | older younger | oldest youngest |
won lost | win lose | major minor | best worst | early late | inside outside | above below |
positive negative | larger smaller | higher lower | longer shorter | beginning end | start end |
started ended | rise fall | rose fell | open closed | opened closed | success failure | allowed banned |
accepted rejected | legal illegal | common rare | strong weak | stronger weaker | fastest slowest |
wealthiest poorest | richest poorest | private public | ancient modern | upper lower | top bottom |
""".replace("\n", " ")
ANTONYMS: dict[str, str] = {}
"""Opposites, both ways (``_PAIRS``); a word with two opposites keeps the first listed."""
for _pair in _PAIRS.split("|"):
    _words = _pair.split()
    if len(_words) == 2:
        ANTONYMS.setdefault(_words[0], _words[1])
        ANTONYMS.setdefault(_words[1], _words[0])

_QUESTION_WORDS = frozenset("What Which Who Whom Whose When Where Why How In On At For By To From Of The A An "
                            "Is Are Was Were Did Do Does Can Could Has Have Had If After Before During "
                            "Along According Besides".split())


def names(text: str) -> list[str]:
    """The capitalised runs of ``text`` that are names, not a sentence's first word.

    Example:
        >>> names("What did the University of Chicago found in 1892?")
        ['University of Chicago']
    """
    out = []
    for m in _NAME.finditer(text):
        if m.start() == 0 or _SENTENCE_START.search(text, 0, m.start()):
            continue  # "Upon ..." or "This ...": a sentence's first word says nothing of being a name
        found = m.group(0)
        first = found.split()[0]
        if first in _QUESTION_WORDS:
            found = found[len(first):].lstrip()
        if len(found) > 1:
            out.append(found)
    return out


def _contains(window: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", window) is not None


def _other_number(number: str, window: str, rng: random.Random) -> str | None:
    digits = number.replace(",", "")
    for _ in range(10):
        if _YEAR.match(digits):
            new = str(int(digits) + rng.choice([-1, 1]) * rng.randint(1, 40))
        elif "." in digits:
            new = f"{float(digits) * rng.choice([0.5, 0.7, 1.3, 2.0]):.{len(digits.split('.')[1])}f}"
        else:
            new = str(max(1, round(int(digits) * rng.choice([0.25, 0.5, 2, 3, 10])) + rng.randint(0, 3)))
            if "," in number:
                new = f"{int(new):,}"
        if new != number and not _contains(window, new):
            return new
    return None


def swap_question(question: str, window: str, answer: str, elsewhere: list[str],
                  rng: random.Random, outside_share: float = 0.5) -> str | None:
    """An unanswerable variant of ``question`` for ``window`` (which answers it with ``answer``).

    ``elsewhere``: names from other articles, the replacements the window does not hold.
    ``outside_share``: how often a name is swapped for one of ``elsewhere`` rather than another
    name of the window. At 0 every swapped name is still in the window, so a question's name
    missing from the window ("UN" beside "United Nations") is never what marks it unanswerable.
    ``None`` when the question has nothing the window holds to swap.

    Example:
        >>> w = "The Normans conquered England in 1066, led by William."
        >>> made = swap_question("When did the Normans conquer England?", w, "1066", ["Franks"], random.Random(1))
        >>> made != "When did the Normans conquer England?" and made.startswith("When did the ")
        True
    """
    kinds: list[tuple[str, str]] = []
    held = [n for n in names(question) if _contains(window, n) and n not in answer and answer not in n]
    kinds += [("name", n) for n in held]
    kinds += [("number", m.group(0)) for m in _NUMBER.finditer(question)
              if _contains(window, m.group(0)) and m.group(0) not in answer]
    kinds += [("antonym", w) for w in re.findall(r"[a-z]+", question.lower())
              if w in ANTONYMS and re.search(rf"\b{w}\b", window.lower())
              and not re.search(rf"\b{ANTONYMS[w]}\b", window.lower())]
    rng.shuffle(kinds)
    window_names = names(window)
    for kind, old in kinds:
        if kind == "antonym":
            return re.sub(rf"\b{old}\b", ANTONYMS[old], question, count=1, flags=re.I)
        if kind == "number":
            new = _other_number(old, window, rng)
        else:
            in_window = [n for n in window_names if n not in question and answer not in n and n not in answer
                         and old not in n and n not in old and n[:5] != old[:5]]
            outside = [n for n in elsewhere if not _contains(window, n) and n not in question]
            if outside_share <= 0:
                pool = in_window
            else:
                pool = in_window if in_window and rng.random() < 1 - outside_share else outside
            new = rng.choice(pool) if pool else None
        made = re.sub(r"(?<!\w)" + re.escape(old) + r"(?!\w)", new, question, count=1) if new else question
        if made != question:
            return made
    return None

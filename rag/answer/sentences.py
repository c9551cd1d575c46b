"""Answers in the documents' own sentences: definitions, explanations, steps, lists, comparisons.

A question that is not after a short fact ("What is rag?", "How do I add documents?", "Why did
the regime arrest them?") is answered by the one to three sentences that answer it, in document
order, each cited; a list or a procedure is kept whole (every item, a code block never cut), and
the key span the reader finds in them is emphasised. Sentences are scored by the reader's own
scores pooled per sentence (``Reader.read_sentences``: the best span inside the sentence against
"no answer", from the same model call that reads the passage) and a few more features, weighted
as ``train/sentence_choice.py`` fitted them; the best eight are scored again with their embedding
similarity to the question (``score_units``). A few rules a reader of the answer would insist on
hold whatever the scores: a heading or page furniture is never the answer, a code sample answers
only a question about code (or, a block of commands, a question after steps), and a fragment
shorter than a clause never stands alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.answer.boilerplate import is_boilerplate
from rag.errors import ReaderModelError
from rag.ingest.markdown_blocks import fenced_blocks, heading_lines
from rag.protocols import Embedder
from rag.text import WORD, claim_stopwords, split_sentences, terms
from rag.types import AnswerKind, Chunk, Hit, Quote

Role = Literal["sentence", "item", "code", "row"]


@dataclass(frozen=True)
class Unit:
    """A piece of a passage an answer can quote whole: a sentence, a list item, a code block, a table row."""

    start: int
    """Offset in the chunk's text."""
    end: int
    role: Role
    group: int
    """Units of one list, one table or one paragraph share a group; -1 for none."""


@dataclass(frozen=True)
class Scored:
    """A unit of one passage with the chooser's score for it."""

    passage: int
    """The hit's place in the answer's ``hits``."""
    unit: Unit
    score: float


_ITEM = re.compile(r"[ \t]*(?:[-*+•]|\d+[.)])\s")
_ROW = re.compile(r"[ \t]*\|")
_CODE_QUESTION = re.compile(r"(?i)\b(?:code|python|api|import|function|class|method|snippet|script|example|"
                            r"library|programm\w*|json|sdk|retriever|langchain|llama ?index|mcp)\b")
_CONTINUES = re.compile(r"(?:It|This|That|These|Those|They|Such|However|But|Also|In addition|For example|"
                        r"For instance|Then|Otherwise|If so|Instead)\b")
_POINTS_BACK = re.compile(r"(?:It|This|That|These|Those|They|He|She|Its|Their|His|Her|Such)\b")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
MAX_SENTENCES = 3
"""Sentences of prose in an answer at most: beyond three, a reader wants the passage itself."""
MAX_BLOCK_CHARS = 2400
"""A list or code block longer than this is cut after its last whole item that fits."""
CONTINUE_WITHIN = 1.0
"""A neighbouring sentence joins the answer when its score is at most this far below the
chosen one's (or it plainly continues it: "This ...", "However, ...")."""
OTHER_PASSAGE_WITHIN = 0.3
"""A sentence of another passage joins when its score is at most this far below the chosen one's."""
STEPS_BONUS = 1.0
"""Added, by rule, to a list item, a code block or the sentence leading into one when the question
asks for steps or a list. The fitting data (doc2dial's web pages, SQuAD's Wikipedia paragraphs)
holds few Markdown lists, so the fitted ``steps`` weight stays small; without this, "How do I
install Lantern?" was answered with the sentence that says what Lantern is, beside its three steps."""
DEFINES_BONUS = 2.0
"""Added, by rule, to a unit that defines the term a definition asks about ("rag answers questions
about your own documents." for "What is rag?"). Definitions are rare in the fitting data, so the
fitted ``defines`` weight stays near zero; without this, "What is rag?" was answered with "rag runs
entirely on your computer.", true but not what rag is."""
WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "sentence-choice.json"


def rule_bonus(x: np.ndarray) -> np.ndarray:
    """What the rules add to the fitted scores of units with features ``x`` (rows): ``STEPS_BONUS``
    and ``DEFINES_BONUS``; ``train/sentence_choice.py`` fits the weights with them in place."""
    return STEPS_BONUS * x[:, FEATURES.index("steps")] + DEFINES_BONUS * x[:, FEATURES.index("defines")]


@dataclass(frozen=True)
class Fitted:
    """The chooser's weights and its abstention rule, as ``train/sentence_choice.py`` fitted them."""

    weights: np.ndarray
    """Weights of ``FEATURES``: a unit's first score is its features' weighted sum."""
    rerank: np.ndarray
    """Weights of ``FEATURES`` and the unit's ``similarity`` to the question, for the shortlist."""
    score_weight: float
    dense_weight: float
    bias: float
    """An answer stands when ``score_weight * score + dense_weight * best dense score + bias >= 0``."""

    def confidence(self, score: float, hits: Sequence[Hit]) -> float:
        """How far above (or below, when negative) the line an answer whose best unit scored ``score`` is."""
        dense = max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)
        return self.score_weight * score + self.dense_weight * dense + self.bias


def weights_digest(data: Mapping[str, Any]) -> str:
    """The sha256 of the numbers that decide an answer (features, weights, rerank, shortlist, the
    abstention line), as ``train/sentence_choice.py`` wrote them: a hand edit or a damaged file shows."""
    decisive = {key: data[key] for key in ("features", "weights", "rerank", "shortlist", "abstain")}
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()


@lru_cache(maxsize=1)
def fitted() -> Fitted:
    """The shipped chooser (``rag/models/sentence-choice.json``, its card beside it); ``ReaderModelError``
    when it is missing, unreadable or not as ``train/sentence_choice.py`` wrote it."""
    try:
        data = json.loads(WEIGHTS.read_text(encoding="utf-8"))
        if data.get("sha256") != weights_digest(data):
            raise ReaderModelError(f"the sentence chooser's weights {WEIGHTS} are damaged or edited by hand (their "
                                   "sha256 does not match): reinstall rag (or refit them with train/sentence_choice.py)")
        rule = data["abstain"]
        return Fitted(np.array([float(data["weights"][name]) for name in FEATURES]),
                      np.array([float(data["rerank"][name]) for name in (*FEATURES, "similarity")]),
                      float(rule["score"]), float(rule["dense"]), float(rule["bias"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReaderModelError(f"the sentence chooser's weights {WEIGHTS} are missing or unreadable ({exc}): "
                               "reinstall rag (or refit them with train/sentence_choice.py)") from None


def units(text: str, opens_page: bool = False) -> list[Unit]:
    """The quotable units of a passage, in order: sentences, list items, whole code blocks, table
    rows; headings and page furniture left out. A passage that ``opens_page`` may open with a
    title line (``title_line``), left out too.

    Example:
        >>> t = "## Steps\\n\\nDo this first. Then that:\\n\\n1. Open it.\\n2. Close it."
        >>> [(t[u.start:u.end], u.role) for u in units(t)]
        [('Do this first.', 'sentence'), ('Then that:', 'sentence'), ('1. Open it.', 'item'), ('2. Close it.', 'item')]
    """
    fences = fenced_blocks(text)
    headings = heading_lines(text)
    out: list[Unit] = []
    group = 0
    previous_role: Role | None = None
    previous_end = 0
    pieces: list[tuple[int, int, Role]] = [(a, b, "code") for a, b in fences]
    cursor = title_line(text) if opens_page and not fences else 0
    for a, b in [*fences, (len(text), len(text))]:
        pieces += _prose_pieces(text, cursor, a, headings)
        cursor = b
    pieces.sort()
    for s, e, role in pieces:
        if role != "code" and is_boilerplate(text[s:e]):
            continue
        gap = text[previous_end:s]
        # Items of one list, rows of one table, sentences of one paragraph: no blank line between.
        if previous_role != role or role == "code" or _BLANK_LINE.search(gap):
            group += 1
        out.append(Unit(s, e, role, group))
        previous_role, previous_end = role, e
    return out


_END_OF_CLAUSE = re.compile(r"[.!?:;,)\]\"'”’]\s*$")
TITLE_WORDS = 15


def title_line(text: str) -> int:
    """Where the text after a page's title line starts, or 0: a first line of at most ``TITLE_WORDS``
    words without a clause's end, before a line that opens with a capital ("Infertility" over "The
    main cause of male infertility is ...", "Common Scams and Schemes | Danville, CA" over "Scammers
    can be ..."); read as a sentence, the title ran into the first one ("Infertility The main ...")."""
    end = text.find("\n")
    line = text[:end].strip() if end > 0 else ""
    rest = text[end + 1:].lstrip() if end > 0 else ""
    if (not line or line[0] in "#-*+|>`" or _ITEM.match(line) or _END_OF_CLAUSE.search(line)
            or len(line.split()) > TITLE_WORDS or not rest[:1].isupper() and not rest[:1].isdigit()
            or line.split()[-1].lower() in claim_stopwords()):
        return 0
    return end + 1


def _prose_pieces(text: str, begin: int, end: int, headings: Sequence[tuple[int, int]]
                  ) -> list[tuple[int, int, Role]]:
    """Outside code: a list item or a table row is one unit (its line and the lines it wraps
    onto), everything else is cut into sentences."""
    pieces: list[tuple[int, int, Role]] = []
    prose_start = begin
    line_start = begin
    item: tuple[int, Role] | None = None

    def flush_prose(stop: int) -> None:
        for s, e in split_sentences(text, prose_start, stop):
            if not any(h <= s < g for h, g in headings):
                pieces.append((s, e, "sentence"))

    while line_start < end:
        line_end = text.find("\n", line_start, end)
        line_end = end if line_end == -1 else line_end
        line = text[line_start:line_end]
        role: Role | None = "item" if _ITEM.match(line) else "row" if _ROW.match(line) else None
        wrapped = item is not None and item[1] == "item" and role is None and line[:1] in " \t" and line.strip()
        if item is not None and not wrapped:  # the item or row ends before this line
            pieces.append((item[0], _trim_end(text, line_start), item[1]))
            item = None
            prose_start = line_start
        if role:
            flush_prose(line_start)
            item = (line_start + len(line) - len(line.lstrip()), role)
        line_start = line_end + 1
    if item is not None:
        pieces.append((item[0], _trim_end(text, end), item[1]))
    else:
        flush_prose(end)
    return pieces


def _trim_end(text: str, end: int) -> int:
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


_PROGRAM = re.compile(r"^\s*(?:from\s+\S+\s+import|import\s|def\s|class\s|[\w.\[\]\"']+\s*=|print\(|>>>|\{|<)",
                      re.MULTILINE)


def _commands(block: str) -> bool:
    """Is a code block commands to type (a shell session), not a program? Steps are often the former."""
    body = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith(("```", "~~~")))
    return bool(body.strip()) and not _PROGRAM.search(body)


def about_code(question: str) -> bool:
    """Does the question ask about code (so a code sample may answer it)?"""
    return bool(_CODE_QUESTION.search(question))


FEATURES = ("margin", "overlap", "heading", "first", "place", "dense", "defines", "block", "length", "steps")
"""What the chooser weighs for each unit (``features``); the weights are fitted by
``train/sentence_choice.py`` and shipped in ``rag/models/sentence-choice.json``."""


def features(question: str, kind: AnswerKind, hits: Sequence[Hit], passage_units: Sequence[Sequence[Unit]],
             margins: Sequence[np.ndarray]) -> list[tuple[int, Unit, np.ndarray]]:
    """(passage, unit, feature vector) of every unit that may stand as an answer, in order.

    The features: the reader's pooled margin (scaled), the share of the question's content words
    in the unit and in its section heading, whether the unit opens its passage or section, the
    passage's place and dense score, whether it defines the asked term ("rag is ..."), whether it
    is a list item, row or code block, its length, and, for a procedure or a list, whether it is
    or leads into ("To install it:") a list or code block.
    """
    wants_block = kind in ("procedure", "list")
    asked = set(terms(question))
    code_ok = about_code(question)
    term = _defined_term(question) if kind == "definition" else None
    out = []
    for p, (hit, us, ms) in enumerate(zip(hits, passage_units, margins)):
        text = hit.chunk.text
        headings = heading_lines(text)
        for n, (unit, margin) in enumerate(zip(us, ms)):
            words = text[unit.start:unit.end]
            if not np.isfinite(margin) or (unit.role == "code" and not (code_ok or wants_block and _commands(words))):
                continue
            if unit.role in ("sentence", "row") and len(WORD.findall(words)) < 4:
                continue  # a fragment shorter than a clause never stands alone
            if unit.role == "sentence" and _run_on(words):
                continue
            above = [text[h:g] for h, g in headings if g <= unit.start]
            heading = set(terms(" ".join([hit.chunk.context, *above[-1:]])))
            # The first unit of the passage, or the first under a heading.
            opens = n == 0 or any(us[n - 1].end <= h < unit.start for h, _ in headings)
            defines = bool(term and re.match(
                rf"(?i)\W*(?:the |an? )?{_one_or_many(term)}\b\W*\s+(?:is|are|was|were|means|refers|stands|answers|"
                rf"describes|lets|helps|provides|\(|,)", words))
            mine = set(terms(words))
            # "To install it:" before its steps; a sentence of the paragraph before a command.
            after = us[n + 1] if n + 1 < len(us) else None
            # A sentence ending in ":" leads into steps only when it is on the question: "By hand,
            # install the CPU build of PyTorch first and then the project:" and its commands do
            # not answer "How do I run the tests?". An item is a step only of a list of steps.
            if words.rstrip().endswith(":"):
                leads = after is not None and after.role in ("item", "code") and bool(asked & mine)
            else:
                leads = after is not None and (after.role == "code" and _commands(text[after.start:after.end]) or
                                               kind == "procedure" and _command_after(text, us, n) is not None)
            steps = wants_block and (unit.role == "code" or leads or unit.role == "item"
                                     and not _item_alone(question, kind, text, us, n))
            out.append((p, unit, np.array([
                float(np.clip(margin, -10, 10)) / 5,
                len(asked & mine) / max(1, len(asked)),
                len(asked & heading) / max(1, len(asked)),
                float(opens),
                p / 4,
                hit.dense_score or 0.0,
                float(defines),
                float(unit.role != "sentence"),
                float(np.log1p(len(WORD.findall(words)))) / 3,
                float(steps),
            ])))
    return out


_ADDRESS = re.compile(r"\S+@\S+\.\w+")


def _run_on(text: str) -> bool:
    """A contact block or a table read as prose ("881 174 +41 78 ... jstrong@... Registered Office: 3rd
    Floor, ..."): long, and a third of its words numbers, or several e-mail addresses. A sentence
    dense with figures is short ("Revenue was $39,117 million in 2019, up 7%.")."""
    words = WORD.findall(text)
    numbers = sum(any(c.isdigit() for c in w) for w in words)
    return len(_ADDRESS.findall(text)) >= 2 or (len(words) > 40 and numbers > 0.3 * len(words))


SHORTLIST = 8
"""Units the first score keeps for the second, which adds their embedding similarity to the
question: embedding every unit of five passages cost as much as reading them again."""


def similarities(question: str, texts: Sequence[str], embedder: Embedder) -> np.ndarray:
    """Cosine of the question's embedding and each text's (the index's own embedder)."""
    if not texts:
        return np.zeros(0)
    q = embedder.encode_queries([question])[0]
    d = embedder.encode_documents(list(texts))
    norms = np.linalg.norm(d, axis=1) * max(float(np.linalg.norm(q)), 1e-12)
    return (d @ q) / np.maximum(norms, 1e-12)


def shortlist(first: np.ndarray, size: int = SHORTLIST) -> np.ndarray:
    """Indices of the ``size`` best first scores, best first."""
    return np.argsort(-first, kind="stable")[:size]


def score_units(question: str, kind: AnswerKind, hits: Sequence[Hit], passage_units: Sequence[Sequence[Unit]],
                margins: Sequence[np.ndarray], embedder: Embedder | None) -> list[Scored]:
    """The shortlisted units with their final scores: the fitted weights of ``features``, then, for
    the best ``SHORTLIST``, the rerank weights with the unit's embedding similarity (without an
    embedder, the first scores)."""
    model = fitted()
    rows = features(question, kind, hits, passage_units, margins)
    if not rows:
        return []
    x = np.stack([f for _, _, f in rows])
    steps = rule_bonus(x)
    top = shortlist(x @ model.weights + steps)
    if embedder is None:
        final = (x @ model.weights + steps)[top]
    else:
        texts = [hits[rows[i][0]].chunk.text[rows[i][1].start:rows[i][1].end] for i in top]
        sims = similarities(question, texts, embedder)
        final = np.hstack([x[top], sims[:, None]]) @ model.rerank + steps[top]
    return [Scored(rows[i][0], rows[i][1], float(v)) for i, v in zip(top, final)]


def choose(question: str, kind: AnswerKind, hits: Sequence[Hit], passage_units: Sequence[Sequence[Unit]],
           margins: Sequence[np.ndarray], embedder: Embedder | None = None) -> list[Scored]:
    """The units that answer, in answer order (the chosen unit's passage, then at most one more).

    ``margins[i][j]`` is the reader's pooled margin of ``passage_units[i][j]``; ``embedder`` is
    the index's (``score_units``). Empty when no unit can stand as an answer.
    """
    scored = score_units(question, kind, hits, passage_units, margins, embedder)
    if not scored:
        return []
    best = max(scored, key=lambda s: s.score)
    passage = hits[best.passage].chunk.text
    us = list(passage_units[best.passage])
    at = us.index(best.unit)
    chosen = [best.unit]
    after = us[at + 1] if at + 1 < len(us) else None
    # Steps or items follow the sentence ("To install it:", or a command block under it).
    # Only steps are answered with the paragraph before a command; a list with its items.
    command = _command_after(passage, us, at) if kind == "procedure" else None
    leads = kind in ("procedure", "list") and after is not None and (
        passage[best.unit.start:best.unit.end].rstrip().endswith(":") and after.role in ("item", "code")
        or after.role == "code" and _commands(passage[after.start:after.end]))
    if command is not None:
        # "Use `rag ingest` with one or more files or folders. Folders are read recursively." and
        # the command under them: the paragraph from the chosen sentence, then the command.
        chosen = us[at:command + 1]
    elif best.unit.role in ("item", "row", "code") and not _item_alone(question, kind, passage, us, at) or leads:
        chosen = _whole_block(passage, us, at)
    elif best.unit.role != "sentence":
        chosen = [best.unit]
    else:
        margin_of = {s.unit: s.score for s in scored if s.passage == best.passage}
        for step in (1, -1, 1, -1):
            if len(chosen) >= MAX_SENTENCES:
                break
            edge = us.index(chosen[-1] if step == 1 else chosen[0]) + step
            if not 0 <= edge < len(us) or us[edge].role != "sentence":
                continue
            neighbour, nearest = us[edge], chosen[-1] if step == 1 else chosen[0]
            words = passage[neighbour.start:neighbour.end]
            joins = margin_of.get(neighbour, -np.inf) >= best.score - CONTINUE_WITHIN
            if step == 1:
                joins = joins or bool(_CONTINUES.match(words))
            else:
                joins = joins or bool(_POINTS_BACK.match(passage[nearest.start:nearest.end]))
            if joins and neighbour.group == nearest.group:
                chosen = chosen + [neighbour] if step == 1 else [neighbour] + chosen
    if best.unit.role == "sentence" and command is None and not leads:
        topic = hits[best.passage].chunk.context
        if kind == "procedure":
            chosen = _fill(passage, us, chosen, PROSE_STEPS_WORDS, question, topic, PROSE_STEPS)
        else:
            chosen = _fill(passage, us, chosen, FILL_WORDS, question, topic)
    answer = [Scored(best.passage, u, best.score) for u in chosen]
    if kind == "comparison":
        answer += _other_sides(question, hits, passage_units, answer)
    if len(chosen) < MAX_SENTENCES and (best.unit.role == "sentence" or chosen == [best.unit]) and kind != "fact":
        others = [s for s in scored if s.passage != best.passage and s.unit.role == "sentence"
                  and s.score >= best.score - OTHER_PASSAGE_WITHIN
                  and not _same_words(hits[s.passage].chunk.text[s.unit.start:s.unit.end],
                                      [passage[u.start:u.end] for u in chosen])]
        if others:
            answer.append(max(others, key=lambda s: s.score))
    return answer


FILL_WORDS = 80
"""An answer in prose shorter than this takes the sentences around it in its passage, after it
first, up to ``MAX_SENTENCES``: one sentence alone ("Encrypted images aren't scanned by
Vulnerability Advisor.") leaves out the why and the what-then a person asking in a chat wants, and
a short quote read out of its paragraph is easy to misread. Chosen on MTRAG's tune half (answer F1
0.199 -> 0.218 at 80 words; 50 words 0.205); the answers' median grew from 28 to 44 words."""


_SIDES = re.compile(r"(?i)([\w-]+)\s*(?:,\s*(?:and|or)?|\band\b|\bor\b|\bvs\.?|\bversus\b|\bto\b)\s*"
                    r"(?:(?:the|an?|my|our|your)\s+)?([\w-]+)")
"""The words on either side of "and", "or", "vs", a comma (an article after it skipped): what a
comparison compares ("Fixed, Metered, Tiered, and Reserved", "FIFO or LIFO", "the extractive answerer
and the LLM mode")."""
_NOT_A_SIDE = frozenset(("difference", "differ", "different", "compar", "similar", "between", "among", "better",
                         "wors", "versus", "vs", "tell", "explain", "prefer", "choos"))
MAX_SIDES = 4
"""Sides of a comparison, each answered by a sentence of its own at most (beside the chosen ones)."""


def _other_sides(question: str, hits: Sequence[Hit], passage_units: Sequence[Sequence[Unit]],
                 answer: Sequence[Scored]) -> list[Scored]:
    """Sentences for the sides of a comparison the answer leaves out: "the difference among Fixed,
    Metered, Tiered, and Reserved" answered with the tiered charges alone told a quarter of it. For
    each compared word the answer lacks, the first sentence or item of the best placed passage
    that holds it, in its passage's order."""
    # A side is spoken of where it opens a sentence: "Tiered pricing is like metered pricing, ..."
    # says what tiered pricing is, not metered.
    said = set(terms(" ".join(_opening(hits[s.passage].chunk.text[s.unit.start:s.unit.end]) for s in answer)))
    function_words = claim_stopwords()
    named = " ".join(m.group(1) + " " + m.group(2) for m in _SIDES.finditer(question))
    sides = [t for t in dict.fromkeys(terms(named)) if t not in said and t not in function_words
             and not t.startswith(tuple(_NOT_A_SIDE))]
    added: list[Scored] = []
    for side in sides[:MAX_SIDES]:
        fit = [(p, u) for p, us in enumerate(passage_units) for u in us
               if u.role in ("sentence", "item") and side in terms(hits[p].chunk.text[u.start:u.end])
               and len(WORD.findall(hits[p].chunk.text[u.start:u.end])) >= 6
               and not _run_on(hits[p].chunk.text[u.start:u.end])]
        # The first sentence it opens, else the first that speaks of it, by passage.
        p, unit = next(((p, u) for p, u in fit if side in terms(_opening(hits[p].chunk.text[u.start:u.end]))),
                       fit[0] if fit else (-1, None))
        if unit is not None and all(a.unit != unit or a.passage != p for a in [*answer, *added]):
            added.append(Scored(p, unit, answer[0].score))
    return sorted(added, key=lambda s: (s.passage, s.unit.start))


def _opening(sentence: str) -> str:
    """The first four words of a sentence, where its subject stands."""
    return " ".join(WORD.findall(sentence)[:4])


PROSE_STEPS = 5
PROSE_STEPS_WORDS = 120
"""A procedure told in prose ("Unsubscribe from unwanted emails. Report unwanted messages. ...") keeps
more of its steps: up to this many sentences and words. Chosen on MTRAG's tune half (procedures
F1 0.277 -> 0.301 at 5 / 120; 6 / 150 and 8 / 200 0.299)."""


def _fill(text: str, us: Sequence[Unit], chosen: list[Unit], budget: int, question: str, topic: str = "",
          limit: int = MAX_SENTENCES) -> list[Unit]:
    """Neighbouring sentences of the chosen one's paragraph, after then before, until ``budget``
    words or ``limit`` sentences: the paragraph before or after is often on another point. A sentence
    before joins only when the first one chosen points back to it ("It ...") or it shares a word
    with the question, other than the words of the passage's ``topic`` (its title and section, which
    every sentence there is about): a paragraph may change its point midway ("The index is saved in
    the folder `index/` ... Supported file types are PDF, ..." for "What file types can I use?"; "rag
    needs Python 3.10 or newer." before `make test` for "Which command runs rag's test suite?")."""
    def words(run: Sequence[Unit]) -> int:
        return sum(len(WORD.findall(text[u.start:u.end])) for u in run)
    group = chosen[0].group
    asked = set(terms(question)) - set(terms(topic))
    while words(chosen) < budget and len(chosen) < limit:
        after, before = us.index(chosen[-1]) + 1, us.index(chosen[0]) - 1
        if after < len(us) and us[after].role == "sentence" and us[after].group == group:
            chosen = chosen + [us[after]]
        elif before >= 0 and us[before].role == "sentence" and us[before].group == group and (
                _POINTS_BACK.match(text[chosen[0].start:chosen[0].end])
                or asked & set(terms(text[us[before].start:us[before].end]))):
            chosen = [us[before]] + chosen
        else:
            break
    return chosen


def _item_alone(question: str, kind: AnswerKind, text: str, us: Sequence[Unit], at: int) -> bool:
    """Whether list item ``at`` answers alone: an item of a bulleted list, for a question that asks
    for no list, unless a sentence on the question leads into the list ("To install it:"). A list of
    problems or of settings is no procedure: "How do I change the port?" is answered by the
    troubleshooting list's port item, "How do I use OCR on scanned PDFs?" by the OCR setting, not
    by every setting under "Settings have defaults ...:"."""
    unit = us[at]
    if unit.role != "item" or kind == "list" or re.match(r"[ \t]*\d+[.)]\s", text[unit.start:unit.end]):
        return False
    first = at
    while first > 0 and us[first - 1].group == unit.group:
        first -= 1
    lead = text[us[first - 1].start:us[first - 1].end] if first > 0 and us[first - 1].role == "sentence" else ""
    return not (lead.rstrip().endswith(":") and set(terms(question)) & set(terms(lead)))


def _whole_block(text: str, us: Sequence[Unit], at: int) -> list[Unit]:
    """The list, table or code block around unit ``at`` (or after it, when it ends with ":"), with
    the sentence that leads into it, cut after the last whole item within ``MAX_BLOCK_CHARS``."""
    unit = us[at]
    lead: int | None
    if unit.role == "sentence":  # "To add documents:" followed by the steps
        lead, block_at = at, at + 1
        if block_at >= len(us) or us[block_at].role == "sentence":
            return [unit]
    else:
        block_at = at
        while block_at > 0 and us[block_at - 1].group == unit.group:
            block_at -= 1
        lead = block_at - 1 if block_at > 0 and text[us[block_at - 1].start:us[block_at - 1].end].rstrip().endswith(
            ":") else None
    group = us[block_at].group
    block = [u for u in us[block_at:] if u.group == group] if us[block_at].role != "code" else [us[block_at]]
    if us[block_at].role == "code" and block_at + 1 < len(us) and us[block_at + 1].role == "code":
        block.append(us[block_at + 1])
    kept: list[Unit] = []
    first = us[lead].start if lead is not None else block[0].start
    for u in block:
        if kept and u.end - first > MAX_BLOCK_CHARS:
            break
        kept.append(u)
    return ([us[lead]] if lead is not None else []) + kept


PARAGRAPH_LEAD = 3
"""Sentences of a paragraph, from the chosen one, that may stand before the command block they lead into."""


def _command_after(text: str, us: Sequence[Unit], at: int) -> int | None:
    """The index of the shell-command block that the paragraph of sentence ``at`` leads into (the
    block right after the paragraph, at most ``PARAGRAPH_LEAD`` sentences on), or None."""
    if us[at].role != "sentence":
        return None
    j = at + 1
    while j < len(us) and j - at < PARAGRAPH_LEAD and us[j].role == "sentence" and us[j].group == us[at].group:
        j += 1
    if j < len(us) and us[j].role == "code" and _commands(text[us[j].start:us[j].end]):
        return j
    return None


def _one_or_many(term: str) -> str:
    """A pattern for ``term`` in the singular or the plural: "What are ETFs?" is defined by "An ETF is ..."."""
    stem = term[:-1] if len(term) > 3 and term.endswith("s") and not term.endswith("ss") else term
    return f"{re.escape(stem)}(?:e?s)?"


def _defined_term(question: str) -> str | None:
    match = re.match(r"(?i)\W*(?:what|who)\s+(?:is|are|was|were|'s)\s+(?:an?\s+|the\s+)?(.+?)\W*$", question)
    if match:
        return match.group(1)
    match = re.match(r"(?i)\W*(?:define|tell me about|describe)\s+(?:an?\s+|the\s+)?(.+?)\W*$", question)
    return match.group(1) if match else None


def _same_words(text: str, chosen: Sequence[str]) -> bool:
    words = set(w.lower() for w in WORD.findall(text))
    return any(len(words & set(w.lower() for w in WORD.findall(c))) >= 0.8 * max(1, len(words)) for c in chosen)


def quotes_and_text(hits: Sequence[Hit], answer: Sequence[Scored], emphasis: tuple[int, int, int] | None
                    ) -> tuple[str, list[Quote]]:
    """The answer text and its quotes: each run of adjacent units of one passage is one quote,
    cited ``[n]`` after it. Prose is joined on one line; lists and code keep their lines.
    ``emphasis`` = (passage, start, end) of the reader's span, bolded where it sits in prose."""
    runs: list[tuple[int, list[Unit]]] = []
    for s in answer:
        if runs and runs[-1][0] == s.passage and _adjacent(hits[s.passage].chunk.text, runs[-1][1][-1], s.unit):
            runs[-1][1].append(s.unit)
        else:
            runs.append((s.passage, [s.unit]))
    several_files = len({hits[p].chunk.source for p, _ in runs}) > 1
    parts, quotes = [], []
    previous_source = None
    for n, (p, run) in enumerate(runs, start=1):
        chunk = hits[p].chunk
        a, b = run[0].start, run[-1].end
        quotes.append(_quote(chunk, a, b))
        prose = all(u.role == "sentence" for u in run)
        words = chunk.text[a:b]
        if emphasis and emphasis[0] == p and prose:
            words = emphasised(chunk.text, a, b, emphasis[1], emphasis[2])
        body = " ".join(words.split()) if prose else words.strip("\n")
        # Several files: say which one each part comes from, once per change of file.
        label = f"In {chunk.name}: " if several_files and chunk.source != previous_source else ""
        previous_source = chunk.source
        parts.append(f"{label}{body} [{n}]" if prose else f"{label}\n{body}\n[{n}]" if label else f"{body}\n[{n}]")
    joined = ""
    for part, (_, run) in zip(parts, runs):
        prose = all(u.role == "sentence" for u in run)
        joined += (" " if prose and joined and not joined.endswith("\n") else "\n\n" if joined else "") + part
    return joined.strip(), quotes


def emphasised(text: str, a: int, b: int, e0: int, e1: int) -> str:
    """``text[a:b]`` with ``text[e0:e1]`` (the reader's span) in bold, when it lies inside and is
    short enough to stand out (under 60% of the whole); Markdown."""
    if not a <= e0 < e1 <= b:
        return text[a:b]
    if e0 > a and e1 < b and text[e0 - 1] == "`" == text[e1]:
        e0, e1 = e0 - 1, e1 + 1  # bold around inline code, never inside it: `**x**` shows the stars
    if e1 - e0 >= 0.6 * (b - a):
        return text[a:b]
    return f"{text[a:e0]}**{text[e0:e1]}**{text[e1:b]}"


def _adjacent(text: str, first: Unit, second: Unit) -> bool:
    return second.start >= first.end and not text[first.end:second.start].strip()


def _quote(chunk: Chunk, a: int, b: int) -> Quote:
    return Quote(text=chunk.text[a:b], source=chunk.source, page=chunk.page, start=chunk.start + a,
                 end=chunk.start + b, ocr=chunk.ocr)


__all__ = ["FEATURES", "MAX_SENTENCES", "Fitted", "Scored", "Unit", "about_code", "choose", "emphasised", "features",
           "fitted", "rule_bonus", "title_line",
           "quotes_and_text", "score_units", "shortlist", "similarities", "units"]

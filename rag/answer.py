"""Hits -> ``Answer``: a short answer with verified verbatim quotes, or an honest "not found".

The default answerer is extractive and offline. It reads the sentences of the retrieved passages,
scores each as evidence (question terms it shares weighted by rarity, its embedding similarity
to the question, how close its passage is to the question, whether it holds a phrase of the kind the question
asks for), quotes the best one, and picks inside it the shortest span that answers: a name for
"who", a date for "when", a number for "how many", a place for "where", otherwise the phrase next
to the words it shares with the question (an answer is rarely made of the question's own words).
A sentence that opens with a pronoun ("She said ...") is read together with the sentence before
it, which names whom the pronoun stands for.

Two small logistic models, fitted on half of the SQuAD 2.0 articles in ``../shared/data/squad2-dev``
by ``bench/squad_answer.py``, do the weighing: one ranks the sentences (does this one hold the
answer?), the other turns the chosen sentence into the answer's ``confidence`` (is the answer
right?). Below ``abstain_threshold`` the answer is "Not found in the indexed documents.", with
the best guess in a note and the closest passages in ``hits``.

Every quote, whichever answerer made it, goes through ``verify_quotes`` before it is returned: a
quote that is not exactly its page's text at its offsets is dropped, never shown.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .chunk import split_sentences
from .embed import Embedder
from .retrieve import Retriever, stopwords, terms
from .settings import Settings
from .types import Answer, Hit, Quote
from .verify import verify_quotes

NOT_FOUND = "Not found in the indexed documents."

DEFAULT_ABSTAIN_THRESHOLD = 0.20
"""Confidence below which the extractive answer abstains.

``bench/squad_answer.py --fit`` proposes 0.23: the highest threshold that keeps nine in ten right
answers on the SQuAD calibration articles. 0.20 is shipped because on questions of the kind our
users ask (``eval_questions/seed.jsonl``, news-article questions such as "Which president is named
in the article?") 0.23 declines two of twelve answerable questions and 0.20 none, while both
decline every unanswerable one; on SQuAD 2.0 0.20 declines fewer of its adversarial unanswerable
questions (see docs/benchmarks.md). Both figures are reported side by side there."""

FEATURES = ("lexical", "dense", "passage", "answer_type", "missing")
"""What the evidence score looks at, per candidate sentence (see ``_features``)."""

WEIGHTS = np.array([4.607, 5.628, -1.458, 0.483, -0.419])
INTERCEPT = -7.078
"""Logistic weights over ``FEATURES`` that rank the sentences: does this one hold the answer?"""

CONFIDENCE_FEATURES = ("lexical", "dense", "answer_type")
CONFIDENCE_WEIGHTS = np.array([2.096, 2.718, 0.263])
CONFIDENCE_INTERCEPT = -3.664
"""Logistic weights that turn the best sentence into the answer's confidence: is the answer right?

Only features whose scale does not depend on the corpus are used (retrieval scores and ranks
mean different things in a small folder and in a large one). All weights are fitted by
``bench/squad_answer.py --fit`` on half of the SQuAD articles.
"""


# --------------------------------------------------------------------------------------------
# Entry point


def answer(question: str, hits: Sequence[Hit], retriever: Retriever, settings: Settings) -> Answer:
    """Answer ``question`` from ``hits`` with the answerer ``settings.answer_mode`` names.

    Example:
        >>> # hits = retriever.search("Who called for UN visits?", settings)
        >>> # a = answer("Who called for UN visits?", hits, retriever, settings)
        >>> # a.found, a.span, a.citations[0].text
    """
    if settings.answer_mode == "llm":
        from .llm import llm_answer

        return llm_answer(question, hits, retriever.snapshot, settings)
    return extractive_answer(question, hits, retriever, settings)


def abstain_threshold(settings: Settings) -> float:
    """The threshold in force: the settings' own, or the calibrated default while that is unset (0)."""
    return settings.abstain_threshold if settings.abstain_threshold > 0 else DEFAULT_ABSTAIN_THRESHOLD


# --------------------------------------------------------------------------------------------
# What the question asks for

_ABBREVIATION = re.compile(r"^(?:Mr|Mrs|Ms|Dr|Prof|St|Sr|Jr|Gen|Col|Lt|Capt|Rev|Gov|Sen|Rep|Mt|[A-Z])$")
_TOKEN = re.compile(r"https?://[^\s<>()\[\]\"'`]*[^\s<>()\[\]\"'`.,;:!?]"  # a URL is one token
                    r"|\d[\d,]*(?:[.:]\d+)*|\w+(?:[-'’.]\w+)*|[^\w\s]")
_FRAMING_WORDS = ("which what who whom whose when where why how "
                  "article passage mentioned mention named name according refer refers")
"""Words that frame a question ("Which leader is named in the article?") rather than say what it
is about: a sentence need not hold them to answer, and as words the index may
never have seen they would weigh as the rarest of all."""


@lru_cache(maxsize=1)
def _framing_terms() -> frozenset[str]:
    return frozenset(terms(_FRAMING_WORDS))


_PRONOUNS = frozenset("he she they it his her their its this these those".split())
_PERSONAL = frozenset("he she they".split())
_CONNECTORS = frozenset("of the de du da von van al bin ibn la le y &".split())
_HEADING = re.compile(r"#{1,6}\s[^\n]*$")
"""A Markdown heading line."""
_PROCEDURAL = frozenset("do does can could should to would".split())
"""Words after "how" that ask for a way of doing something, not a quantity or a manner in a phrase."""
_ADVICE = re.compile(r"\W*(?:what|which \w+)\s+(?:should|do|can|could|must|shall)\s+(?:i|we|you|one)\s+"
                     r"(?:do|run|use|try|type|change|set|pass)\b", re.IGNORECASE)
"""Questions asking what to do: "What should I run when ...?", "What do I do with ...?"."""
_INSTRUCTION_VERBS = frozenset(
    "run use rebuild set pass open install reinstall delete remove add wait check try make put choose start "
    "stop restart type click select go call give point read see save move copy rename upgrade update enable "
    "disable turn change keep ask contact convert export import create edit write restore free close launch "
    "press drop ingest apply fix increase reduce lower raise split join mark list print replace retry clear "
    "empty reset refresh reload upload download log sign enter fill follow uninstall connect disconnect plug "
    "unplug reboot switch send report unlock allow grant load unload sync mount format scan verify confirm "
    "accept cancel skip ignore avoid leave return look find search note do don never always".split())
"""Verbs an instruction opens with ("Run it through an OCR tool first."), for ``_instructs``."""
_AUXILIARIES = frozenset("did does do is was were are has have had will would can could should may might".split())
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec").split()
_NUMBER_WORDS = frozenset(("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                           "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
                           "eighty ninety hundred thousand million billion trillion dozen dozens hundreds "
                           "thousands millions billions half quarter").split())
_SCALE = r"(?:\s(?:hundred|thousand|million|billion|trillion))"
_NUMBER = re.compile(
    r"(?:[$£€¥]\s?)?\d[\d,]*(?:\.\d+)?" + _SCALE + r"?(?:\s?(?:%|percent|per cent))?"
    r"|\b(?:" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")\b(?:[\s-](?:"
    + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")\b)*", re.IGNORECASE)
_DATE = re.compile(
    r"\b(?:(?:early|mid|late)[\s-])?\d{1,2}(?:st|nd|rd|th)(?:\s(?:and|or|to)\s\d{1,2}(?:st|nd|rd|th))?\scentur(?:y|ies)"
    r"(?:\s(?:AD|BC|BCE|CE))?"
    r"|\b(?:\d{1,2}\s)?(?:" + "|".join(_MONTHS) + r")\.?(?:\s\d{1,2}(?:st|nd|rd|th)?)?(?:,?\s\d{3,4})?\b"
    r"|\b\d{3,4}s?(?:\s(?:AD|BC|BCE|CE))?(?:\s?(?:-|–|to|and)\s?\d{2,4})?\b", re.IGNORECASE)

KINDS = ("person", "date", "number", "place", "other")
_TAIL_PREPOSITIONS = frozenset("with to by from for of against after before in on at into about".split())
_LEADS = {"person": frozenset({"by"}), "place": frozenset("in at from near to into".split()),
          "date": frozenset("in on since until during".split())}
"""Words that usually stand right before an answer of each kind ("designed by X", "born in Y")."""


@dataclass(frozen=True)
class QuestionKind:
    """What a question asks for, from its wording alone."""

    kind: str
    """One of ``KINDS``."""
    subject: bool = False
    """"Who <verb> ...": the answer is the verb's subject, so it comes before the matched words."""
    preposition: str = ""
    """The preposition a question ends on ("... sign the treaty with?"): the answer follows it."""
    whole: bool = False
    """The sentence is the answer, not a phrase in it: "How do I ...?", "Why ...?", "Does it ...?",
    and "What ...?" asking for no kind of phrase we can pick out (a name, a date, a number, a
    place) nor ending on a preposition. Measured on the SQuAD calibration articles, where the
    chosen sentence holds the gold answer: for such "what" questions a phrase picked by
    position held it 24% of the time (F1 0.29), the whole sentence always (F1 0.32)."""
    advice: bool = False
    """"What should I do when ...?", "How do I fix ...?": the answer is an instruction, and manuals
    put it right after the sentence that names the situation ("A PDF has no text: it is a scan.
    Run it through an OCR tool first.")."""


_KIND_NOUNS = {
    "date": "year years century centuries date decade month day period era time age",
    "place": "country city place state region continent river location town area island nation province "
             "county capital mountain sea ocean lake",
    "person": "person people man woman king queen leader emperor president name general ruler author "
              "scientist founder minister organisation organization group party company team army body",
    "number": "percentage percent proportion amount number",
}


def question_kind(question: str) -> QuestionKind:
    """The kind of answer a question wants, from its wh-word and the noun after "what"/"which".

    Example:
        >>> kind = question_kind("Who called for UN visits?")
        >>> kind.kind, kind.subject, kind.whole
        ('person', True, False)
        >>> question_kind("How many people died?").kind
        'number'
    """
    words = re.findall(r"[a-z]+", question.lower())
    if not words:
        return QuestionKind("other")
    if _ADVICE.match(question):
        return QuestionKind("other", whole=True, advice=True)
    if (words[0] in _AUXILIARIES or words[0] == "why"
            or (words[0] == "how" and len(words) > 1 and words[1] in _PROCEDURAL)):
        return QuestionKind("other", whole=True)
    tail = words[-1] if words[-1] in _TAIL_PREPOSITIONS else ""
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word in ("who", "whom", "whose"):
            return QuestionKind("person", word == "who" and following not in _AUXILIARIES, tail)
        if word == "when":
            return QuestionKind("date", preposition=tail)
        if word == "where":
            return QuestionKind("place", preposition=tail)
        if word == "how" and following in ("many", "much", "long", "old", "far", "large", "big", "high", "tall",
                                           "often", "few"):
            return QuestionKind("number", preposition=tail)
        if word in ("what", "which"):
            nouns = words[i + 1:i + 4]
            for kind, listed in _KIND_NOUNS.items():
                if any(n in listed.split() or n.removesuffix("s") in listed.split() for n in nouns[:2]):
                    return QuestionKind(kind, preposition=tail)
            return QuestionKind("other", preposition=tail, whole=not tail)
    return QuestionKind("other", preposition=tail, whole=not tail)


# --------------------------------------------------------------------------------------------
# Candidate evidence


@dataclass(frozen=True)
class Evidence:
    """A candidate sentence (with the sentence its opening pronoun refers to, if any) and its features."""

    sentence: Quote
    antecedent: Quote | None
    hit_rank: int
    features: np.ndarray
    span: tuple[int, int] | None
    """Page offsets of the best answering span inside ``antecedent + sentence``, when one was found."""
    score: float = 0.0
    cite_antecedent: bool = False
    """Quote the antecedent too: the answer is the whole sentence, which reads with it (the
    situation an instruction answers, the person its opening pronoun names)."""


@lru_cache(maxsize=4096)
def _stem(word: str) -> str:
    found = terms(word)
    return found[0] if found else ""


def page_units(text: str, *, follow: bool = False) -> list[tuple[tuple[int, int], tuple[int, int] | None]]:
    """Every sentence of a page with its context: the sentence its opening pronoun refers to, or the
    Markdown heading right above it (or None). With ``follow``, a sentence also has the one before
    it as context unless that one is an instruction itself: an instruction is read with the
    situation it answers, not with the previous instruction (which answered that situation).

    Example:
        >>> page_units("Ann Lee spoke. She left.")
        [((0, 14), None), ((15, 24), (0, 14))]
    """
    sentences = split_sentences(text)
    units = []
    for i, (a, b) in enumerate(sentences):
        first = re.match(r"\W*(\w+)", text[a:b])
        refers = i > 0 and first is not None and first.group(1).lower() in _PRONOUNS
        # A Markdown heading names the topic of the sentence under it ("## Adding documents").
        titled = i > 0 and _HEADING.match(text[sentences[i - 1][0]:sentences[i - 1][1]]) is not None
        after = follow and i > 0 and not _instructs(text[sentences[i - 1][0]:sentences[i - 1][1]])
        units.append(((a, b), sentences[i - 1] if refers or titled or after else None))
    return units


def _without_list_marker(sentence: Quote) -> tuple[int, int]:
    """Page offsets of a sentence without the list marker it may open with ("- ", "2. ", "* ")."""
    marker = re.match(r"\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+", sentence.text)
    return (sentence.start + (marker.end() if marker else 0), sentence.end)


def _instructs(sentence: str) -> bool:
    """Whether a sentence reads as an instruction: a verb like "Run" or "rebuild" opens it or one of
    its clauses ("If it fails, rebuild it."), or it tells the reader what they can or should do."""
    for clause in re.split(r"[,;:]", sentence):
        words = [w.lower() for w in re.findall(r"[A-Za-z]+", clause)]
        while words and words[0] in ("then", "and", "so", "please", "just", "instead", "first"):
            words.pop(0)
        if words and words[0] in _INSTRUCTION_VERBS:
            return True
    return re.search(r"\byou (?:can|should|must|need to|have to)\b", sentence, re.IGNORECASE) is not None


def unit_text(page_text: str, sentence: tuple[int, int], antecedent: tuple[int, int] | None) -> str:
    """What the embedding model reads of a candidate: the antecedent, then the sentence."""
    body = page_text[sentence[0]:sentence[1]]
    return page_text[antecedent[0]:antecedent[1]] + " " + body if antecedent else body


def candidates(question: str, hits: Sequence[Hit], retriever: Retriever, *, dense: bool = True,
               use_kind: bool = True, use_proximity: bool = True, max_sentences: int = 40) -> list[Evidence]:
    """Every sentence of the hits' passages as candidate evidence, with its features and best span.

    The embedding model reads these sentences only (a few dozen per question). ``dense``,
    ``use_kind`` and ``use_proximity`` switch signals off, for the benchmark's ablations.
    """
    kind = question_kind(question)
    qterms = [t for t in dict.fromkeys(terms(question)) if t not in _framing_terms()] or list(terms(question))
    idf = retriever.idf(qterms)
    total = sum(idf.values()) or 1.0
    pages: dict[tuple[str, int], tuple[str, list]] = {}
    seen: set[tuple[str, int, int]] = set()
    units: list[tuple[Quote, Quote | None, str, int, float, float]] = []
    for hit in hits:
        key = (hit.source, hit.page)
        if key not in pages:
            text = retriever.snapshot.page_text(*key)
            if text is None:
                continue
            pages[key] = (text, page_units(text, follow=kind.advice))
        text, page = pages[key]
        chunk_terms = set(terms(hit.chunk.text))
        missing = sum(idf[t] for t in qterms if t not in chunk_terms) / total
        passage = hit.dense_score if hit.dense_score is not None else 0.0
        for (a, b), before in page:
            if b <= hit.chunk.start or a >= hit.chunk.end or (hit.source, hit.page, a) in seen:
                continue
            seen.add((hit.source, hit.page, a))
            sentence = Quote(text[a:b], hit.source, hit.page, a, b)
            if _restates(question, sentence.text) or _HEADING.match(sentence.text):
                continue  # the question itself, quoted, or a Markdown heading: a label, not an answer
            heading = before is not None and _HEADING.match(text[before[0]:before[1]]) is not None
            if before and not heading and not kind.advice and not set(qterms).intersection(terms(sentence.text)):
                before = None  # the pair adds nothing the previous sentence does not say alone
            antecedent = Quote(text[before[0]:before[1]], hit.source, hit.page, *before) if before else None
            units.append((sentence, antecedent, unit_text(text, (a, b), before), hit.rank, missing, passage,
                          heading))
        if len(units) >= max_sentences:
            break
    if not units:
        return []
    similarities = np.zeros(len(units), dtype=np.float32)
    if dense:
        vectors = _SENTENCE_VECTORS.encode(retriever.embedder, [u[2] for u in units])
        similarities = vectors @ retriever.embedder.encode_queries([question])[0]
    out = []
    for (sentence, antecedent, body, rank, missing, passage, heading), similarity in zip(units, similarities):
        lexical = sum(idf[t] for t in set(qterms).intersection(terms(body))) / total
        # A heading gives the sentence its topic but never its answer.
        span = _without_list_marker(sentence) if kind.whole else best_span(
            kind, qterms, sentence, None if heading else antecedent, pages[(sentence.source, sentence.page)][0],
            use_kind=use_kind, use_proximity=use_proximity)
        if kind.advice and use_kind:
            typed = 1.0 if _instructs(sentence.text) else -1.0
        else:
            typed = 0.0 if kind.kind == "other" or not use_kind else (1.0 if span is not None else -1.0)
        features = np.array([lexical, float(similarity), passage, typed, missing], dtype=np.float64)
        out.append(Evidence(sentence, antecedent, rank, features, span,
                            cite_antecedent=kind.whole and antecedent is not None and not heading))
    return out


class _SentenceVectorCache:
    """Embeddings of candidate sentences, kept across questions (least recently used out first).

    Embedding a few dozen sentences is most of the time of an extractive answer, and a chat or an
    evaluation asks about the same passages again and again. One cache per embedder object.
    """

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._by_embedder: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def encode(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            cache = self._by_embedder.setdefault(embedder, OrderedDict())
            found = {t: cache[t] for t in texts if t in cache}
            for text in found:
                cache.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            for text, vector in zip(missing, embedder.encode_documents(missing)):
                found[text] = vector
            with self._lock:
                for text in missing:
                    cache[text] = found[text]
                while len(cache) > self.size:
                    cache.popitem(last=False)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)


_SENTENCE_VECTORS = _SentenceVectorCache()


def _restates(question: str, sentence: str) -> bool:
    """Whether ``sentence`` holds the whole question word for word (at least four words of it)."""
    asked = " ".join(re.findall(r"\w+", question.lower()))
    said = " ".join(re.findall(r"\w+", sentence.lower()))
    return asked.count(" ") >= 3 and f" {asked} " in f" {said} "


def score(evidence: Sequence[Evidence], weights: np.ndarray = WEIGHTS, intercept: float = INTERCEPT
          ) -> list[Evidence]:
    """The evidence with its probability of holding the answer, best first."""
    scored = [replace(e, score=_logistic(e.features, weights, intercept)) for e in evidence]
    return sorted(scored, key=lambda e: (-e.score, e.hit_rank, e.sentence.start))


def confidence(best: Evidence, weights: np.ndarray = CONFIDENCE_WEIGHTS,
               intercept: float = CONFIDENCE_INTERCEPT) -> float:
    """Probability that the answer drawn from ``best`` is right: what the threshold is compared with."""
    columns = [FEATURES.index(name) for name in CONFIDENCE_FEATURES]
    return _logistic(best.features[columns], weights, intercept)


def _logistic(features: np.ndarray, weights: np.ndarray, intercept: float) -> float:
    return 1.0 / (1.0 + math.exp(-(float(features @ weights) + intercept)))


# --------------------------------------------------------------------------------------------
# The answering span


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int
    stem: str
    sentence: int
    """0 for the antecedent sentence, 1 for the sentence itself."""


def _tokens(quote: Quote, part: int) -> list[_Token]:
    return [_Token(m.group(), quote.start + m.start(), quote.start + m.end(),
                   _stem(m.group()) if m.group()[0].isalnum() else "", part)
            for m in _TOKEN.finditer(quote.text)]


def best_span(kind: QuestionKind, qterms: Sequence[str], sentence: Quote, antecedent: Quote | None,
              page_text: str, *, use_kind: bool = True, use_proximity: bool = True) -> tuple[int, int] | None:
    """Page offsets of the shortest phrase of the sentence that answers the question, or None.

    Candidates are the phrases of the kind asked for (names, dates, numbers, places) or, for
    other questions, the runs of words between punctuation and question words. Phrases made of
    question words are never answers. Among the rest, the nearest to the words the sentence
    shares with the question wins, ties going to the shorter.
    """
    wanted = set(qterms)
    tokens = (_tokens(antecedent, 0) if antecedent else []) + _tokens(sentence, 1)
    if not tokens:
        return None
    matched = [i for i, t in enumerate(tokens) if t.stem and t.stem in wanted]
    effective = kind if use_kind else QuestionKind("other")
    spans = _kind_spans(effective, tokens, page_text, wanted)
    if not spans:
        return None
    opener = next(t for t in tokens if t.sentence == 1).text.lower()
    # "X has called on ... . She said ...": a personal pronoun opening the sentence is the
    # previous sentence's subject, its first name.
    referent = next((s for s in spans if tokens[s[0]].sentence == 0), None) \
        if effective.kind == "person" and opener in _PERSONAL else None

    def value(span: tuple[int, int]) -> tuple[float, int]:
        i, j = span
        distance = 0.0
        if use_proximity and matched:
            distance = min(min(abs(m - i), abs(m - (j - 1))) for m in matched)
        bonus = 0.0
        if span == referent:
            bonus += 2.0
        elif tokens[i].sentence == 0:
            bonus -= 1.0
        if effective.subject and matched and j <= matched[0] and tokens[i].sentence == tokens[matched[0]].sentence:
            bonus += 1.0
        if any(t.stem in wanted for t in tokens[i:j] if t.stem):
            bonus -= 1.0
        lead = _lead_word(tokens, i)
        if effective.preposition and lead == effective.preposition:
            bonus += 1.5
        elif lead in _LEADS.get(effective.kind, ()):
            bonus += 0.5
        return (bonus - math.log1p(distance) - 0.05 * (j - i), -i)

    i, j = max(spans, key=value)
    return tokens[i].start, tokens[j - 1].end


def _lead_word(tokens: list[_Token], i: int) -> str:
    """The word before token ``i``, skipping an article ("with the King" -> "with")."""
    k = i - 1
    if k >= 0 and tokens[k].text.lower() in ("the", "a", "an") and tokens[k].sentence == tokens[i].sentence:
        k -= 1
    return tokens[k].text.lower() if k >= 0 and tokens[k].sentence == tokens[i].sentence else ""


def _kind_spans(kind: QuestionKind, tokens: list[_Token], page_text: str, wanted: set[str]) -> list[tuple[int, int]]:
    """Candidate phrases as token ranges [i, j), excluding any made of question words."""
    if kind.kind in ("date", "number"):
        pattern = _DATE if kind.kind == "date" else _NUMBER
        spans = []
        for part in (0, 1):
            part_tokens = [(i, t) for i, t in enumerate(tokens) if t.sentence == part]
            if not part_tokens:
                continue
            base = part_tokens[0][1].start
            text = page_text[base:part_tokens[-1][1].end]
            for m in pattern.finditer(text):
                a, b = base + m.start(), base + m.end()
                inside = [i for i, t in part_tokens if t.start >= a and t.end <= b]
                if inside and not _all_question_words(tokens, inside[0], inside[-1] + 1, wanted):
                    if kind.kind == "number" and re.fullmatch(r"1\d{3}|20\d{2}", m.group()):
                        continue  # a bare year answers "when", not "how many"
                    spans.append((inside[0], inside[-1] + 1))
        return spans
    if kind.kind in ("person", "place"):
        spans = []
        for i, j in _capitalised(tokens):
            while i < j and (tokens[i].stem in wanted or tokens[i].text.lower() in _CONNECTORS):
                i += 1
            while j > i and (tokens[j - 1].stem in wanted or tokens[j - 1].text.lower() in _CONNECTORS
                             or tokens[j - 1].text == "."):
                j -= 1
            if i < j and not _all_question_words(tokens, i, j, wanted):
                spans.append((i, j))
        return spans
    return _phrases(tokens, wanted)


def _all_question_words(tokens: list[_Token], i: int, j: int, wanted: set[str]) -> bool:
    stems = [t.stem for t in tokens[i:j] if t.stem and t.text.lower() not in _CONNECTORS]
    return not stems or all(s in wanted for s in stems)


def _capitalised(tokens: list[_Token]) -> list[tuple[int, int]]:
    """Runs of capitalised words ("Mrs. Maryam Rajavi", "King Charles III", "Bank of England")."""
    spans = []
    i = 0
    while i < len(tokens):
        if not _is_name_word(tokens, i):
            i += 1
            continue
        j = i + 1
        while j < len(tokens):
            t = tokens[j]
            if t.sentence != tokens[i].sentence:
                break
            if _is_name_word(tokens, j) and not _sentence_start(tokens, j):
                j += 1
            elif t.text == "." and _ABBREVIATION.match(tokens[j - 1].text):
                j += 1
            elif t.text.lower() in _CONNECTORS and j + 1 < len(tokens) and _is_name_word(tokens, j + 1):
                j += 1
            else:
                break
        spans.append((i, j))
        i = j
    return spans


def _is_name_word(tokens: list[_Token], i: int) -> bool:
    t = tokens[i]
    if not t.text[:1].isupper() or not t.text[:1].isalpha():
        return False
    # A capital at the start of a sentence proves nothing for common words ("The", "In", "She").
    return not (_sentence_start(tokens, i) and (t.stem == "" or t.text.lower() in _COMMON_STARTS))


def _sentence_start(tokens: list[_Token], i: int) -> bool:
    if i == 0 or tokens[i - 1].sentence != tokens[i].sentence:
        return True
    before = tokens[i - 1].text
    if before == "." and i >= 2 and _ABBREVIATION.match(tokens[i - 2].text):
        return False
    return before in ".!?\"“"


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return stopwords() | _PRONOUNS


_COMMON_STARTS = frozenset("the a an in on at by for from to of as after before during when while although "
                           "however but and or this that these those there it its he she they his her their "
                           "we our you i some many most all each every one two such other another".split())


def _phrases(tokens: list[_Token], wanted: set[str]) -> list[tuple[int, int]]:
    """Runs of words between punctuation and question words, trimmed of stop words, at most 6 long."""
    stop = _stopwords()
    spans: list[tuple[int, int]] = []
    run: list[int] = []

    def close() -> None:
        while run and (tokens[run[0]].text.lower() in stop or not tokens[run[0]].stem):
            run.pop(0)
        while run and (tokens[run[-1]].text.lower() in stop or not tokens[run[-1]].stem):
            run.pop()
        if run:
            spans.append((run[0], run[0] + min(len(run), 6)))
            if len(run) > 6:
                spans.append((run[-1] - 5, run[-1] + 1))
        run.clear()

    for i, t in enumerate(tokens):
        breaks = (not t.text[0].isalnum() and t.text not in "-'’") or (t.stem and t.stem in wanted) \
            or (run and t.sentence != tokens[run[-1]].sentence)
        if breaks:
            close()
            if t.stem and t.stem in wanted:
                continue
            if not t.text[0].isalnum():
                continue
        run.append(i)
    close()
    return spans


# --------------------------------------------------------------------------------------------
# The extractive answerer


def extractive_answer(question: str, hits: Sequence[Hit], retriever: Retriever, settings: Settings) -> Answer:
    """The offline answerer: best evidence sentence, shortest answering span, or an abstention.

    Example:
        >>> # a = extractive_answer("Who called for UN visits?", hits, retriever, Settings())
        >>> # a.span
        >>> # 'Mrs. Maryam Rajavi'
    """
    ranked = score(candidates(question, hits, retriever))
    return compose(question, hits, ranked, retriever, abstain_threshold(settings))


def compose(question: str, hits: Sequence[Hit], ranked: Sequence[Evidence], retriever: Retriever,
            threshold: float, confidence_weights: tuple[np.ndarray, float] | None = None) -> Answer:
    """The ``Answer`` for ranked evidence: the best candidate quoted and cited, or an abstention."""
    if not ranked:
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=tuple(hits),
                      mode="extractive", notes=("no passage to read: the index returned nothing",))
    best = ranked[0]
    page_text = retriever.snapshot.page_text(best.sentence.source, best.sentence.page) or ""
    span_text = page_text[best.span[0]:best.span[1]] if best.span is not None else ""
    # The antecedent is cited when the answer comes from it ("She said ..." names nobody), or
    # when the whole sentence is the answer and reads with it.
    from_antecedent = best.antecedent is not None and best.span is not None and best.span[1] <= best.antecedent.end
    cited = from_antecedent or best.cite_antecedent
    quotes = [best.sentence] + ([best.antecedent] if cited and best.antecedent else [])
    kept, dropped = verify_quotes(quotes, retriever.snapshot)
    sure = confidence(best, *confidence_weights) if confidence_weights else confidence(best)
    if sure < threshold or not kept:
        guess = f"\"{span_text}\", from " if span_text else ""
        notes = [f"best guess, below the confidence threshold ({sure:.2f} < {threshold:.2f}): {guess}"
                 f"\"{_clip(best.sentence.text)}\" ({best.sentence.name}, page {best.sentence.page})"]
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=tuple(hits),
                      mode="extractive", confidence=sure, notes=tuple(notes))
    span = span_text if span_text and span_text in " ".join(q.text for q in kept) else kept[0].text
    markers = "".join(f"[{n}]" for n in range(1, len(kept) + 1))
    notes = tuple(f"dropped a quote not found verbatim in {q.name}, page {q.page}" for q in dropped)
    # The answer reads as one line (a sentence broken over source lines would wrap oddly in a
    # chat bubble); the quotes keep the page's own characters.
    return Answer(question=question, text=f"{' '.join(span.split())} {markers}", found=True, citations=tuple(kept),
                  hits=tuple(hits), mode="extractive", confidence=sure, span=span, notes=notes)


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"

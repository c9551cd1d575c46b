"""Follow-up questions: turning "What did she say they should assess?" into a search that works.

``resolve`` decides, with no language model, whether a question leans on the earlier turns (a
pronoun, "and ...?", "what about X", an ellipsis such as "With what aim?", a question with no
content words of its own) and, when it does, builds the standalone search from the question plus
what the conversation was about: the previous answer's span, the names and content words of the
earlier questions, most recent first. A question with content words of its own and nothing that
points back is read as it is and searched with the earlier questions, its own embedding leading
the search's (``LEAD_WEIGHT``): the conversation helps find a passage on the same topic, and a
change of subject keeps its own passages at the top rather than being dragged back. Such a
question is also searched alone, and kept alone where that search is clear about its document
(``search_conversation``): over one document, questions asked one after another are each searched
as if asked first. For the
reader, a personal pronoun is replaced by the previous answer when that answer is a name ("she"
-> "Mrs. Maryam Rajavi"), "the first of them" by that item of the previous answer's list, and
"what about X?" becomes the previous question asked of X.

With an LLM endpoint configured and ``answer_mode="llm"``, ``condense`` asks the model for the
standalone question instead (one short call, bounded tokens and time); the offline resolver stays
the fallback when that call fails.

History is a list of OpenAI-style messages, oldest first: ``{"role": "user"|"assistant",
"content": str}`` (the shape Gradio's chatbot and every chat client use).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.answer.llm_client import chat
from rag.errors import AnswerCancelled, RagError
from rag.limits import MAX_HISTORY_TURNS, MAX_MESSAGE_CHARS, cap_history, clean_text
from rag.text import TOPIC_WORD, topic_stopwords
from rag.types import NOT_FOUND, Hit

if TYPE_CHECKING:
    from rag.protocols import QueryContext
    from rag.search.retriever import Retriever
    from rag.settings import Settings

log = logging.getLogger(__name__)

Message = Mapping[str, Any]


@dataclass(frozen=True)
class Resolved:
    """How a question is searched and read, given the conversation before it."""

    search: str
    """The standalone query handed to retrieval."""
    read: str
    """The question the reader reads the passages with."""
    followup: bool
    """True when the question was found to lean on the earlier turns."""
    added: tuple[str, ...] = ()
    """The context words taken from the conversation (for display and evaluation)."""
    lead: str = ""
    """The question as asked, when ``search`` holds the conversation too: its embedding is added to
    the search's (``LEAD_WEIGHT``), so that its own meaning leads the long query."""
    may_stand_alone: bool = False
    """The question has a subject of its own, or leans on the turns only by being short ("What is
    rag?"): ``search_conversation`` searches it alone where its own search is clear about the
    document. False for a real follow-up (a pronoun, "and ...?", "that", "With what aim?")."""

    @property
    def shown(self) -> str:
        """The search as a person reads it ("searched: ..."): ``search`` holds a question that may
        change the topic twice, to weight its own words, which reads as a stutter."""
        doubled = f"{self.lead} {self.lead}"
        return self.search.replace(doubled, self.lead, 1) if self.lead and doubled in self.search else self.search


_CITATION = re.compile(r"\s*\[\d+\]")
_STRONG_PRONOUNS = frozenset("he she him her his hers they them their theirs it its".split())
_PERSONAL = {"he": "", "she": "", "him": "", "they": "", "them": "", "his": "'s", "her": "", "their": "'s"}
_POINTERS = frozenset("this that these those there then such same other another else too also again more "
                      "former latter".split())
_LEADS = ("and ", "but ", "so ", "also ", "what about", "how about", "what else", "anything else", "any other",
          "then ", "or ")
_QUESTION_WORDS = frozenset("what which who whom whose when where why how is are was were do does did can could "
                            "should would will shall may might must has have had tell me please about".split())
LEAD_WEIGHT = 0.3
"""The weight of the question's own embedding added to the conversation search's (unit vectors,
the sum normalised; ``Retriever.context``). Chosen on the tune half of doc2dial-a, follow-ups with
the grounding span in the top 5: 0.749 with the fusion this replaced (below), 0.767 with neither;
0.792 at 0.3, 0.790 at 0.5, 0.788 at 0.7. On rag's docs conversations 0.3 answered 5 of 6
follow-ups, 0.5 four, the fusion three; the seed conversations were the same at each.
bench/studies/conversation.py reports doc2dial-a's other half apart."""
ALONE_DEPTH = 5
"""How many passages of each search ``search_conversation`` compares (the k it was chosen at)."""
MAX_ADDED = 12
"""Context words reported for a follow-up (``Resolved.added``) at most: what the conversation was
about, for display and evaluation."""


def content_words(text: str) -> list[str]:
    """Words of ``text`` that carry meaning, in order, duplicates removed (case kept)."""
    seen, out, stop = set(), [], topic_stopwords()
    for w in TOPIC_WORD.findall(text):
        key = w.lower()
        if key in stop or key in seen or (len(key) < 2 and not key.isdigit()):
            continue
        seen.add(key)
        out.append(w)
    return out


def normalise(history: Sequence[Message] | None) -> list[dict[str, str]]:
    """Messages as ``{"role", "content"}`` dicts, citation marks removed; bad entries refused."""
    out = []
    # The most recent turns only (``rag.limits``): a client may send thousands of them.
    history = list(history or ())
    first = max(0, len(history) - MAX_HISTORY_TURNS)
    for n, message in enumerate(history[first:], start=first):
        if not isinstance(message, Mapping):
            raise RagError(f"history[{n}] is not a message: expected {{'role': ..., 'content': ...}}")
        role = message.get("role")
        content = message.get("content", message.get("text"))
        if isinstance(content, list):  # OpenAI's list-of-parts form: keep the text parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        if role not in ("user", "assistant", "system") or not isinstance(content, str):
            raise RagError(f"history[{n}] needs a role of user or assistant and a text content")
        if role != "system":
            out.append({"role": str(role), "content": _CITATION.sub("", clean_text(content[:MAX_MESSAGE_CHARS])).strip()})
    return cap_history(out)


def leans_on_history(question: str) -> bool:
    """Does the question point back at earlier turns (pronouns, "and ...", ellipsis, no topic of its own)?

    Example:
        >>> leans_on_history("What did she say they should assess?"), leans_on_history("Who won the 2018 world cup?")
        (True, False)
    """
    lowered = " " + question.lower().strip() + " "
    words = [w.lower() for w in TOPIC_WORD.findall(question)]
    own = content_words(question)
    if any(lowered.lstrip().startswith(lead) for lead in _LEADS):
        return True
    if any(w in _STRONG_PRONOUNS for w in words):
        return True
    if len(own) <= 1:
        return True
    return len(own) <= 3 and any(w in _POINTERS for w in words)


def _only_short(question: str) -> bool:
    """Does the question lean on the conversation only by having one content word ("What is rag?",
    "How many hours do I need?"): a whole question of three words or more that starts with a
    question word, with no pronoun, no "and ...", no word that points back (not "With what aim?")?"""
    lowered = question.lower().strip()
    words = [w.lower() for w in TOPIC_WORD.findall(question)]
    return (len(content_words(question)) == 1 and len(words) >= 3 and words[0] in _QUESTION_WORDS
            and not lowered.startswith(_LEADS) and not any(w in _STRONG_PRONOUNS or w in _POINTERS for w in words))


def stands_alone(question: str) -> bool:
    """Does the question name its own subject: a name or a number (a year, an amount) among at
    least three content words, and no word that points back?

    Example:
        >>> stands_alone("What were Amcor's total net sales for fiscal year 2023?"), stands_alone("Do I need to bring anything?")
        (True, False)
    """
    own = content_words(question)
    named = _names(question) or any(w.isdigit() for w in own)
    return bool(named) and len(own) >= 2 and not leans_on_history(question)


def _names(text: str) -> list[str]:
    """Capitalised word runs that are not a sentence's first word ("Maryam Rajavi", "UN")."""
    out = []
    for m in re.finditer(r"(?:[A-Z][\w'’&.-]*[A-Za-z0-9]|[A-Z]{2,})(?:\s+(?:of\s+|de\s+|the\s+)?"
                         r"(?:[A-Z][\w'’&.-]*[A-Za-z0-9]|[A-Z]{2,}))*", text):
        phrase = m.group()
        if m.start() == 0 or text[:m.start()].rstrip().endswith((".", "?", "!")):
            if " " not in phrase and phrase.lower() in topic_stopwords() | _QUESTION_WORDS:
                continue
        out.append(phrase)
    return out


_ORDINAL = re.compile(r"\bthe\s+(?:(first|second|third|last)\s+(?:one|of\s+(?:them|these|those|the\s+\w+))"
                      r"|(former|latter))\b", re.I)
_PLACE = {"first": 0, "second": 1, "third": 2, "last": -1, "former": 0, "latter": -1}
_LIST_JOINT = re.compile(r",\s*(?:(?:and|or)\s+)?|\s+(?:and|or)\s+")


def _listed(answer: str) -> list[str]:
    """The items of an answer that names several things ("the MOIS and the IRGC"), in order.

    Only a short answer is a list, and a comma or "and" inside parentheses joins nothing.
    """
    if len(answer.split()) > 25:
        return []
    items, depth, start = [], 0, 0
    for m in re.finditer(r"[()]|" + _LIST_JOINT.pattern, answer):
        if m.group() in "()":
            depth += 1 if m.group() == "(" else -1
        elif depth == 0:
            items.append(answer[start:m.start()])
            start = m.end()
    items.append(answer[start:])
    return [item.strip() for item in items if item.strip()]


def _ordinal_swapped(question: str, answer: str) -> str:
    """``question`` with "the first of them", "the latter" ... replaced by that item of ``answer``."""
    m = _ORDINAL.search(question)
    if m is None:
        return question
    items = _listed(answer)
    if len(items) < 2:
        return question
    place = _PLACE[(m.group(1) or m.group(2)).lower()]
    if place >= len(items):
        return question
    return question[:m.start()] + items[place] + question[m.end():]


_ABOUT = re.compile(r"^\s*(?:(?:and\s+|but\s+)?(?:what|how)\s+about\s+|(?:and|or|but)\s+(?=(?:the|a|an|his|her|its|their|"
                    r"in|on|at|for|during|from|with|by|after|before|since|under)\s|[A-Z]))(?P<topic>[^?.!]+?)\s*[?.!]*\s*$",
                    re.I)
""""What about X?" and "And X?" (a phrase, no verb: "And the host?", "And in 2019?")."""
_LAST_QUESTION = re.compile(r"(?:^|(?<=[.!?])\s+)(?P<question>[^.!?]+\?)\s*$")
_PREPOSITIONS = frozenset("in on at for during from to with by after before since under into".split())
_DETERMINERS = frozenset("the a an this that these those his her its their".split())


def _about_swapped(question: str, previous: str) -> str:
    """``previous`` asked again of the topic of a "what about X?" question; ``question`` when no form fits.

    "What about the president?" after "Who is the Supreme Leader named in the article?" asks
    "Who is the president named in the article?": the earlier question's phrase that X shares a
    word with, else its first phrase after a determiner, gives way to X; "what about in China?"
    replaces the earlier question's "in ..." phrase.

    Example:
        >>> _about_swapped("What about in China?", "How many people has the outbreak killed in Iran?")
        'How many people has the outbreak killed in China?'
    """
    m = _ABOUT.match(question)
    asked = _LAST_QUESTION.search(previous)
    if not m or not asked:
        return question  # only a question can be asked again ("Yes, I have a licence." is none)
    previous = asked.group("question")
    topic = m.group("topic")
    words = list(re.finditer(r"[\w'’&.-]+", previous.rstrip(" ?.!")))
    if not words:
        return question
    end = words[-1].end()
    topic_words = topic.split()
    if topic_words[0].lower() in _PREPOSITIONS:
        # The earlier question's phrase after the same preposition, to its end or the next preposition.
        for i in range(len(words) - 1, -1, -1):
            if words[i].group().lower() == topic_words[0].lower():
                j = next((k for k in range(i + 1, len(words)) if words[k].group().lower() in _PREPOSITIONS),
                         len(words))
                stop = words[j - 1].end()
                return previous[:words[i].start()] + topic + previous[stop:]
        return previous[:end] + " " + topic + previous[end:]
    if not (topic_words[0].lower() in _DETERMINERS or topic_words[0][:1].isupper()):
        return question  # "what about renewing online?": no noun phrase to put in the other's place
    own = {w.lower() for w in content_words(topic)}
    if not own or own & _POINTERS or own & set(_PLACE):
        return question  # "what about the other one?" names no topic
    # Runs of content words, the phrases a topic can stand in for; a name ends a run ("the Supreme
    # Leader | named in ...").
    runs: list[tuple[int, int]] = []
    for i, w in enumerate(words):
        key = w.group().lower()
        if key in topic_stopwords() or key in _QUESTION_WORDS:
            continue
        name_ended = words[i - 1].group()[:1].isupper() and key == w.group()
        if runs and runs[-1][1] == i - 1 and not name_ended:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    shared = [r for r in runs if own & {words[k].group().lower() for k in range(r[0], r[1] + 1)}]
    # A name stands in for a name ("the capital of France" -> of Paris); else a phrase with a
    # determiner, the subject or object ("has the MOIS been waging"), not the noun of "what campaign".
    names = [r for r in runs if r[0] > 0 and words[r[0]].group()[:1].isupper()] if topic[:1].isupper() else []
    determined = [r for r in runs if r[0] > 0 and words[r[0] - 1].group().lower() in _DETERMINERS]
    # "a licence" stands for "a permit" rather than "the DMV" of "Can the DMV give me a permit?"
    alike = [r for r in determined if words[r[0] - 1].group().lower() == topic_words[0].lower()]
    if not (shared or names or determined):
        return question
    first, last = (shared or names or alike or determined)[0]
    if first > 0 and words[first - 1].group().lower() in _DETERMINERS and topic_words[0].lower() in _DETERMINERS:
        first -= 1  # "the Supreme Leader" gives way to "the president", not "the the president"
    return previous[:words[first].start()] + topic + previous[words[last].end():]


def _is_name(span: str) -> bool:
    words = span.split()
    return 0 < len(words) <= 5 and all(w[:1].isupper() or w.lower() in ("of", "de", "the", "von", "van")
                                       for w in words)


def resolve(question: str, history: Sequence[Message] | None) -> Resolved:
    """The standalone search (and reader question) for ``question`` after ``history``.

    Example:
        >>> r = resolve("What did she say they should assess?", [
        ...     {"role": "user", "content": "Who called for UN visits?"},
        ...     {"role": "assistant", "content": "Mrs. Maryam Rajavi [1]"}])
        >>> r.followup, r.read
        (True, 'What did Mrs. Maryam Rajavi say they should assess?')
    """
    turns = normalise(history)
    if not turns:
        return Resolved(search=question, read=question, followup=False)
    asked = [t["content"] for t in turns if t["role"] == "user"]
    last_answer = next((t["content"] for t in reversed(turns) if t["role"] == "assistant"), "")
    if last_answer.startswith(NOT_FOUND):
        # A decline names no subject to follow up on. The turns are the text a client sends back
        # (the page, /v1, Index.chat), not Answers, so rag's own decline is known by its words.
        last_answer = ""
    # The conversation so far, for a question that shares no word with it: every earlier question,
    # then this one twice (its own words lead), then the previous answer (what the person replies
    # to). Chosen on the tune half of doc2dial-a's documents (bench/studies/conversation.py reports the
    # other half apart): such turns with the grounding span in the top 5, 0.353 searched alone ->
    # 0.765 with this, 0.725 with all user turns glued. Used for leaning questions too it won
    # there (0.719 -> 0.758) but lost answers on the seed conversations (7 -> 4 of 9), so those
    # keep the resolver's own search below.
    context = " ".join([*asked, question, question, last_answer])
    if not leans_on_history(question):
        own = {w.lower() for w in content_words(question)}
        shared = own & {w.lower() for t in turns for w in content_words(t["content"])}
        if not shared and stands_alone(question):
            # A question that names its own subject and shares no word with the conversation is a
            # new topic: searched alone, as if asked first ("What were Amcor's total net sales for
            # fiscal year 2023?" after three questions about other filings found nothing when
            # searched with them; "Who wrote Hamlet?" after the seed article is declined as alone).
            return Resolved(search=question, read=question, followup=False)
        if shared:
            # A question of its own on the same topic ("Can I renew my licence online?" after "How
            # do I renew my driving licence?"), its words in an earlier question or answer: the
            # earlier questions say what the conversation is about. Answers count since they name
            # the topic too: CANARD dev 0.717 -> 0.735 (chosen there), doc2dial 0.679 -> 0.711.
            return Resolved(search=" ".join([*asked, question]), read=question, followup=False, lead=question,
                            may_stand_alone=True)
        # No word in common with the turns: perhaps a new topic, perhaps the same one in other words
        # ("Do I need to bring anything?"). Searched with the conversation, the question's own
        # words twice and its own embedding leading (``lead``), so a change of subject keeps its
        # own passages near the top. This replaced a search of the question alone fused with this
        # one by reciprocal rank: doc2dial-a tune half, such turns 0.706 -> 0.804.
        return Resolved(search=context, read=question, followup=False, lead=question, may_stand_alone=True)
    # "the first of them", "the latter": the item of the previous answer's list it points at.
    read = _ordinal_swapped(question, last_answer)
    if read == question and asked:
        read = _about_swapped(question, asked[-1])
        if read != question:
            # "And the host?" after "How do I change the port?" is that question asked of the host:
            # it stands alone now, and the earlier turn's words (the port) would only pull it back.
            return Resolved(search=read, read=read, followup=True)
    # A name stands for a pronoun, but not for "them" of "the first of them" (one name is no list).
    if read == question and _is_name(last_answer) and not _ORDINAL.search(question):
        def swap(m: re.Match[str]) -> str:
            return last_answer + _PERSONAL[m.group(0).lower()]

        read = re.sub(r"\b(?:she|he|him|his|they|them|their)\b", swap, question, count=1, flags=re.I)
        # "her" may be an object or a possessive: as an object it reads right with the name.
        if read == question:
            read = re.sub(r"\bher\b", last_answer, question, count=1, flags=re.I)
    own = {w.lower() for w in content_words(read)}
    words: list[str] = []
    answer_words = content_words(last_answer) if len(last_answer.split()) <= 25 else _names(last_answer)
    # Most recent first: the last answer, then each earlier question (names before other words);
    # the earlier questions are read only until MAX_ADDED words are found.
    taken: set[str] = set()
    for candidates in _candidates(answer_words, turns):
        for w in candidates:
            key = w.lower().rstrip(".")
            if key not in own and key not in taken and key not in _QUESTION_WORDS:
                words.append(w)
                taken.add(w.lower())
        if len(words) >= MAX_ADDED:
            break
    added = tuple(words[:MAX_ADDED])
    # The earlier questions too, whole: chosen on CANARD dev (words of the person's rewrite that the
    # search holds: 0.427 -> 0.717 with the rule above) and checked on doc2dial (grounding span in
    # the top 5 for follow-ups: 0.643 -> 0.679; bench/studies/conversation.py).
    search = " ".join([read, *added, *asked])
    # Without a pronoun to replace ("With what aim?"), the reader reads the search itself: the
    # bare ellipsis gives it nothing to match.
    return Resolved(search=search, read=read if read != question else search, followup=True, added=added,
                    lead=question, may_stand_alone=_only_short(question))


def search_conversation(retriever: Retriever, resolved: Resolved, settings: Settings, k: int | None = None,
                            sources: Iterable[str] | None = None, pages: tuple[int, int] | None = None
                        ) -> tuple[list[Hit], QueryContext, Resolved]:
    """The passages for a question asked after earlier turns, the query that found them, and how it was
    searched: ``resolved``, or the question itself when it was searched alone.

    A question that may stand alone (``Resolved.may_stand_alone``) is searched alone too. When every
    passage it finds alone lies in one document, and the conversation's search finds that document
    too (its first passage, or two of its passages), the conversation adds no document, only a pull
    towards the earlier questions' passages: the question is searched alone, as if asked first. Over
    one document (the demo's user guide) that is always so; "How do I change the port?" after
    questions on an article indexed beside the guide is so too. Otherwise the conversation is what
    finds the document (doc2dial's "What requirements do I need to meet?" among 123 pages of benefits
    and licences), and its search is kept, with the question's own best passage in its last place.

    Chosen on the tune halves of doc2dial-a and MTRAG and on rag's own conversations
    (bench/studies/conversation.py), over the follow-ups this applies to: doc2dial-a tune half, the
    grounding passage in the top 5 / first 367 / 177 -> 365 / 187 of 443 and their answers' token F1
    summed 145.6 -> 146.6 (report half 307 / 137 -> 306 / 151 of 389); rag's own conversations (44
    follow-ups) first passage right 15 -> 19, searched alone 3 -> 25. Two passages of the document,
    not one: the same on doc2dial, where one let three more tune-half questions be searched alone, two of them
    wrongly. The question's own best passage in last place (not first: doc2dial's answers lose F1
    summed -4.8 there, the passage closest to the question drawn from another agency's page): MTRAG's
    tune-half follow-ups, whose later questions mostly ask about something new, grounding passage in the
    top 5 0.574 -> 0.750 and answer F1 0.229 -> 0.245; doc2dial-a tune half's 777 follow-ups 0.764 ->
    0.766 and 0.289 -> 0.287.
    """
    query = retriever.context(resolved.search, settings, sources, pages, lead=resolved.lead, lead_weight=LEAD_WEIGHT)
    if not resolved.may_stand_alone or not resolved.lead:
        return retriever.search(resolved.search, settings, k=k, context=query), query, resolved
    k = settings.k if k is None else k
    depth = max(k, ALONE_DEPTH)  # the same judgement whatever k is asked for
    hits = retriever.search(resolved.search, settings, k=depth, context=query)
    question = resolved.lead
    alone_query = retriever.context(question, settings, sources, pages)
    alone = retriever.search(question, settings, k=depth, context=alone_query)
    documents = {h.source for h in alone}
    if hits and len(documents) == 1 and (hits[0].source in documents or sum(h.source in documents for h in hits) >= 2):
        return alone[:k], alone_query, Resolved(search=question, read=question, followup=False)
    if alone and k > 1 and all(h.chunk.id != alone[0].chunk.id for h in hits[:k]):
        # The passage closest to the question alone takes the last place: a later question that asks
        # about something new ("Regional differences") still has its passage read.
        hits = [*hits[:k - 1], dataclasses.replace(alone[0], rank=k)]
    return hits[:k], query, resolved


def _candidates(answer_words: list[str], turns: list[dict[str, str]]) -> Iterator[list[str]]:
    yield answer_words
    for t in reversed(turns):
        if t["role"] == "user":
            yield _names(t["content"]) + content_words(t["content"])


CONDENSE_PROMPT = """Rewrite the user's last question so that it can be understood without the conversation:
replace pronouns and references with what they stand for, keep every other word. If it already
stands alone, repeat it unchanged. Reply with the question only, on one line."""


def condense(question: str, history: Sequence[Message], settings: Settings) -> Resolved:
    """The standalone question written by the configured LLM; the offline resolver if that fails."""
    offline = resolve(question, history)
    turns = normalise(history)
    if not turns or not settings.llm_configured:
        return offline
    transcript = "\n".join(f"{t['role']}: {t['content'][:600]}" for t in turns[-6:])
    messages = [{"role": "system", "content": CONDENSE_PROMPT},
                {"role": "user", "content": f"{transcript}\nuser (last question): {question}"}]
    try:
        text = chat(messages, settings.replace(llm_timeout=min(settings.llm_timeout, 15.0))).strip()
    except AnswerCancelled:   # the caller has gone: no rewrite wanted, nor a warning about it
        raise
    except RagError as exc:
        log.warning("the LLM could not condense the follow-up (%s): using the offline resolver", exc)
        return offline
    line = clean_text(text.splitlines()[0].strip().strip('"')) if text else ""
    if not line or len(line) > 4 * len(question) + 200 or not _faithful(line, question, turns):
        return offline
    return Resolved(search=line, read=line, followup=line != question, added=offline.added)


def _faithful(rewrite: str, question: str, turns: Sequence[Message]) -> bool:
    """Does the LLM's rewrite say only what the question and the conversation said?

    It is shown to the person ("searched: ...") and searched with: a rewrite that brings words of
    its own (an address, an instruction a document slipped into the conversation's answers, a
    topic the model made up) is not the question, so the offline resolver's is used instead.
    A few new content words are allowed (at most 4, and under half of them): a rewrite may
    change a verb's form or name what "they" stands for.

    Example:
        >>> turns = [{"role": "user", "content": "Who called for UN visits?"},
        ...          {"role": "assistant", "content": "Mrs. Maryam Rajavi"}]
        >>> _faithful("What did Mrs. Maryam Rajavi say they should assess?", "What did she say they should assess?",
        ...           turns), _faithful("Visit http://evil.example now", "What did she say?", turns)
        (True, False)
    """
    known = {w.lower() for text in [question, *(t["content"] for t in turns)] for w in TOPIC_WORD.findall(text)}
    words = content_words(rewrite)
    new = [w for w in words if w.lower() not in known]
    return 2 * len(new) <= len(words) and len(new) <= 4 and not re.search(r"://|www\.|@", rewrite)

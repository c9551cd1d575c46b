"""What kind of answer a question wants: a fact, a definition, steps, a list, a summary, ...

The kind decides the answer's form (``rag.answer.extractive``): a fact is the reader's short span in its
sentence; a summary covers a whole document (``rag.answer.summary``); every other kind is answered by
the one to three sentences that answer it, with a list or a procedure kept whole
(``rag.answer.sentences``). Rules over the question's opening words, no model: they are quick, they
can be read, and the kinds they tell apart are marked by those words in English ("how do I" asks
for steps, "why" for a reason, "what is X" for a definition). Real turns are read for the question
they hold: the words a turn opens with ("Ok, thanks."), a clause before the question, a request
("Can you tell me ...") and a follow-up that names no kind of its own ("and what about the fees?",
which wants what the question before it wanted) are seen through. Measured on labelled questions
(MTRAG's question types, SQuAD, the docs sets) in ``bench/studies/question_kinds.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rag.types import AnswerKind

_AUX = ("is", "are", "was", "were", "do", "does", "did", "can", "could", "should", "will", "would", "has", "have",
        "had", "may", "might", "must", "shall", "am", "isn't", "aren't", "don't", "doesn't", "didn't", "can't")
_QUESTION_WORDS = frozenset(("what", "which", "who", "whom", "whose", "when", "where", "why", "how", "tell", "list",
                             "name", "give", "describe", "explain", "define", "summarize", "summarise", "compare",
                             "show") + _AUX)
_OPENERS = (r"so|o\.?k\.?|okay|well|also|but|then|now|meanwhile|umm*|hmm*|ahh*|alright|all right|great|good|cool|"
            r"perfect|sure|thanks|thank you(?: very much| so much)?|sorry|of course|by the way|btw|hi|hello|hey|yes|"
            r"yeah|no|oh|i see|i understand|got it|understood|that's (?:good|great|helpful)(?: to know)?|"
            r"one more thing|i (?:do )?have (?:another|one more|a) question(?: though)?|another question|please")
_FILLER = re.compile(rf"^(?:(?:and|{_OPENERS})\b[\s,.!:;-]*)+")
"""Words a person opens a turn with that say nothing of the answer ("Ok, thanks. And how do I ...")."""
_ACKNOWLEDGED = re.compile(rf"^(?:(?:{_OPENERS})\b[\s,.!:;-]*)+")
"""The same but "and", which marks a follow-up ("Ok, and the host?")."""
_LEAD_CLAUSE = re.compile(
    r"^(?:(?:if|when|once|after|before|since|given|in case|as for|speaking (?:of|about)|regarding|concerning|"
    r"about|for)\b[^,?]{1,100}|[a-z]+-wise),\s*(?=(?:what|which|who|whom|whose|when|where|why|how|is|are|was|"
    r"were|do|does|did|can|could|should|will|would|am)\b)")
"""A clause before the question ("If I include a scoring system, how should I ...", "Tax-wise, how ...")."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SUMMARY = re.compile(
    r"^(?:(?:can|could|would|will) you |please |i (?:want|need|would like) (?:you to )?|let's )?"
    r"(?:summari[sz]e|sum up|recap|(?:give|provide|write|show) (?:me |us )?(?:a |an |the )?(?:short |brief |"
    r"quick |high-level )?(?:summary|overview|gist|recap|tl;?dr))\b|"
    r"^(?:what (?:is|are|was|were|'s) )?(?:the |a |an )?(?:short |brief |quick )?(?:summary|overview|gist|tl;?dr|"
    r"main (?:points?|ideas?|topics?|takeaways?|findings)|key (?:points?|takeaways?|findings|ideas))\b(?! of (?:what|"
    r"how|why|who))|"
    r"^what (?:is|'s) (?:this|the|that) (?:document|article|report|file|paper|text|page|guide|story|book|filing|pdf)"
    r"\s+(?:about|on)$|^what (?:is|are) (?:this|these|those|it|they) about$|"
    r"^what does (?:this|the|that) (?:document|article|report|file|paper|text|guide|filing) (?:say|cover|discuss)\b")
"""A request for an overview of a whole document: the page answers it by summarising one (``Index.ask``),
so only a request counts, not a question that mentions a summary ("What is the best-known summary of ...")."""
_PROCEDURE = re.compile(
    r"^(?:how (?:do|can|should|would|could|might|will|must) (?:i|we|you|one|they|users?|people)\b|how to\b|"
    r"(?:what are |list )?(?:the )?steps\b|what (?:should|do|must|can|could|would) (?:i|we) do\b|"
    r"(?:is there a |what (?:is|are) the )?(?:way|procedure|process)(?:es)? (?:to|for|of)\b|instructions?\b|"
    r"(?:can|could) you (?:show|tell) (?:me|us) how\b|show me how\b|where (?:do|can|should) (?:i|we)\b|"
    r"what (?:i|we) (?:can|should|must) do\b|what (?:do|will|would|should) (?:i|we) (?:need|have) to do\b|"
    r"i (?:want|need|would like|have) to\b(?! (?:know|learn|hear|find out|understand|look into|ask)\b|"
    r" \w+ (?:some |more |any )?(?:information|info|details)\b)|i (?:do not|don't) know how\b|i need help (?!understanding)|"
    r"help me (?!understand)|why (?:can't|cannot|can not|won't|couldn't) (?:i|we)\b)")
_FAILING = re.compile(
    r"\b(?:keeps? (?:showing|failing|crashing|saying|giving|asking)|(?:does ?n[o']?t|do ?n[o']?t|wo ?n[o']?t|"
    r"is ?n[o']?t|ca ?n[o']?t|cannot|can not) (?:work|load|open|start|connect|log ?in|sign ?in)|not working|"
    r"stopped working|unable to|fails|failed|failing|crashe[sd]|crashing)\b")
"""A problem stated rather than asked ("the page does not load", "it keeps showing errors"): what it
wants is the steps that fix it."""
_TROUBLE = re.compile(r"\b(?:errors?|rejected|declined|denied|problem|issue)\b")
"""The same in a noun, in a statement of the person's own ("I get an error when ..."): alone ("Error
codes") it is a keyword."""
_EXPLANATION = re.compile(
    r"^(?:why\b|how (?:does|do|did|is|are|was|were|come|has|have)\b|explain\b|what (?:causes|caused|happens|"
    r"happened|makes|made|leads|led)\b|what (?:is|was|are) the (?:reason|cause|purpose|point|effect|impact|role|"
    r"benefit|advantage|risk)s?\b|for what reason\b|in what way|what if\b|what would happen\b|"
    r"what (?:are |would be |were )?(?:the )?(?:\w+ )?(?:risks|dangers|consequences|implications|downsides)\b)")
_CONSEQUENCE = re.compile(r"^(?:why|what if|what happens|what would happen)\b")
_OPINION = re.compile(
    r"^(?:should (?:i|we|you|one|people)\b|(?:do|would) (?:i|we|you) (?:really )?(?:need|recommend|suggest|advise)\b|"
    r"(?:is|are|was|were|would|will|does|do)\b(?! there\b).*\b(?:good|bad|safe|important|worth|worthwhile|wise|advisable|"
    r"recommended|necessary|real|true|risky|dangerous|a good idea|useful|helpful|effective|legit|legitimate|"
    r"reliable|healthy|harmful|better off|helps?(?! me\b))\b|"
    r"(?:any|some) (?:good |other |more )?(?:ideas?|advice|tips?|suggestions?|recommendations?)\b|"
    r"what (?:do|would) you (?:think|recommend|suggest|advise)\b|what (?:is|'s) your (?:opinion|advice|view)\b)")
"""A question that asks for a judgement or advice ("Should I only invest in mutual funds?", "Is it safe?",
"Does being a veteran help?", "Any tips?"): what answers it is the passage's reasons, as for an explanation."""
_COMPARISON = re.compile(
    r"\b(?:differences?|differ|differs|different from|compare[ds]?|comparison|versus|vs\.?|similar(?:ity|ities)? to|"
    r"the same as|(?:better|worse) (?:than|or)|(?:more|less) \w+ than|pros and cons|advantages? over)\b")
_VERSUS = re.compile(r"\b(?:vs\.?|versus|or)\b")
_LIST = re.compile(
    r"^(?:list\b|name (?:the|all|some|a few)\b|give (?:me )?(?:some |a few )?examples\b|which (?:\w+ )?(?:are|were)\b|"
    r"what (?:are|were) (?:the|some|all|a few)\b|what (?:\w+ )?(?:kinds|types|sorts|forms|ways|options|formats|"
    r"features|steps|methods|examples|categories|parts|components|requirements|benefits|reasons|factors|"
    r"services|documents|files)\b|what (?:other|else)\b|what \w+s are (?:there|available)\b|are there (?:any )?(?:other )?\w+s\b)")
_DEFINITION = re.compile(
    r"^(?:what (?:is|are|was|were|'s) (?:an? |the )?(?P<term>[^?]{1,60}?)\??$|who (?:is|was|are|were) "
    r"(?P<who>[^?]{1,60}?)\??$|define\b|what does (?P<means>[^?]+) (?:mean|stand for|do)\b|what is meant by\b|"
    r"(?:i (?:keep seeing|don't understand|do not understand)|meaning of|definition of)\b|tell me (?:more )?about\b|tell me more$|"
    r"describe\b|clarify\b|(?:give|send|show|provide) (?:me |us )?(?:some |any |more )?(?:information|info|details)\b|"
    r"tell me (?:something|anything|a bit|a little) (?:more )?about\b|"
    r"i (?:want|need|would like|wanted)(?: to \w+)?(?: some| more| any)? (?:information|info|details)\b|"
    r"(?:do you have|is there|are there) (?:any |some |more )?(?:information|info|details)\b|"
    r"i (?:want|need|would like|wanted) (?:to (?:know|learn|hear|find out|look into|understand) )?(?:more )?"
    r"(?:information |info |details )?(?:about|on|regarding)\b|(?:i need )?help understanding\b)")
_NAMED_BY = re.compile(r"(?:\b(?:called|named|known as|termed|nicknamed)|\w+ing|'s \w+.*)$|"
                       r"^(?:used|made|given|known|considered|located|found|based|needed|required|taken)\b")
"""A "what is X" whose X ends in a verb or a possessive, or opens with a participle, asks for a value, not a
description ("What is Nanjing's airport called?", "What was the ANC combating?", "What is Tucson's CBS
station?", "What is used to make thwon?")."""
_ASKS_NAME = re.compile(r"^(?:what|which|who)\b.*\b(?:called|named|known as|termed|nicknamed)$")
""""What were the small scales in yoroi called?": a name, whatever the rest of the question looks like."""
_FACT_TERMS = re.compile(
    r"^(?:\w+ )?(?:name|number|amount|total|population|size|date|year|age|cost|price|rate|percentage|share|value|"
    r"capital|height|length|weight|distance|address|port|version|default|largest|smallest|first|last|main|"
    r"best|most|least|maximum|minimum|limit|deadline|duration|time|score|salary|fee|revenue|income|latest|earliest|"
    r"oldest|newest|biggest|highest|lowest|longest|shortest|greatest|fastest|closest|nearest|strongest)\b")
"""Words after "what is the" that ask for a value, not a description ("what is the population ...")."""
_DESCRIBED_AS = re.compile(r"^how (?:would|do|could|might|can) (?:you|one|we) (?:describe|characteri[sz]e|call|"
                           r"classify|label|term|say|spell|write|pronounce)\b")
""""How would you describe a predator that eats plants?" asks for a word (herbivore), not steps."""
_REQUEST = re.compile(r"^(?:(?:can|could|would|will) you (?:please |just |also )?|please )(?=(?:tell|show|explain|describe|give|"
                      r"list|name|define|summari[sz]e|compare|help|provide|send|advise|clarify)\b)")
""""Can you tell me ..." is the imperative "tell me ...", not a yes/no question."""
_EMBEDDED = re.compile(r"^(?:(?:tell|show) (?:me|us)|i (?:want|need|would like|wanted) to know) (?=(?:what|which|who|whom|whose|when|where|why|how)\b)|"
                       r"^(?:tell me|i (?:want|need|would like|wanted) to know) (?:if|whether)\b")
"""An embedded question ("tell me what will change") is classified as the question it holds; "tell me
if ..." asks yes or no."""
_CONTINUATION = re.compile(
    r"^(?:(?:and )?(?:what|how) about\b|and\b(?! (?:what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|"
    r"does|did|can|could|should|will|would)\b)|tell me more$|(?:i need |i want |any |some )?more (?:info|information|"
    r"details)$|go on$|(?:what about )?the same for\b)")
"""A follow-up that names no kind of its own ("and what about the fees?", "tell me more") wants what the
question before it wanted."""
_REPLY = re.compile(r"^(?:yes|yeah|yep|yup|no|nope|not yet|correct|exactly)\b")
"""A reply to the assistant's own question ("How do I get new plates?" - "Were they stolen?" - "Yes, last
week."): the person still wants what they asked for."""
_ASKS_DIFFERENCE = re.compile(
    r"^(?:what|which)(?: (?:is|are|was|were|'s|one is))? (?:the |a |an |some |any )?(?:main |key |major |basic |big |"
    r"biggest |real |essential )?(?:differences?|similarit(?:y|ies)|distinctions?|better|worse|pros)\b|"
    r"^(?:what|which)\b(?=.*\b(?:better|worse|best|preferable|cheaper|faster|safer)\b).* or |"
    r"\bdifferences? (?:between|among)\b")
""""What is the difference ...", "Which is better, X or Y?"; not "What compound is better absorbed than zinc?",
which asks for a thing."""
_ASKING_COMPARISON = frozenset(("what", "which", "how", "compare", "tell", "explain", "describe", "show", "list", "give"))
_PRONOUNS = frozenset(("i", "we", "you", "they", "he", "she", "it", "people", "one"))
_STATEMENT_OPENERS = frozenset(("i", "i'm", "i've", "i'd", "my", "it", "it's", "this", "that", "that's", "we", "you",
                                "they", "he", "she", "there", "yes", "no", "ok", "okay", "thanks"))
_WORD = re.compile(r"[A-Za-z0-9'’]+")


def classify(question: str, history: Sequence[Mapping[str, Any]] | None = None) -> AnswerKind:
    """The kind of answer ``question`` wants; ``history`` (the earlier turns, oldest first, as
    OpenAI-style messages) gives a follow-up that names no kind of its own ("and what about the
    fees?", "tell me more", a "yes" to the assistant's question) the kind of the question before it.

    Example:
        >>> [classify(q) for q in ("Who called for UN visits?", "What is rag?", "How do I run the tests?",
        ...                        "Why did the regime arrest them?", "Summarize the document.", "Virtualization")]
        ['fact', 'definition', 'procedure', 'explanation', 'summary', 'keyword']
        >>> classify("and what about renewing it?", [{"role": "user", "content": "How do I get a licence?"}])
        'procedure'
    """
    text = " ".join(question.replace("’", "'").split()).strip()
    lowered = _ACKNOWLEDGED.sub("", text.lower()).rstrip(" ?.!")
    if _CONTINUATION.match(lowered) or (_REPLY.match(text.lower()) and not text.endswith("?")):
        previous = _previous_question(history)
        kind = _kind(previous) if previous.strip() else None
        if kind in ("summary", "keyword") or (kind == "fact" and not _asks(previous)):
            kind = None   # a summary is of a whole document, and a bare statement or keyword says no kind
        rest = re.sub(r"^(?:and )?(?:what|how) about ", "", lowered)
        if rest != lowered and _asks(rest):
            return _kind(rest)   # "what about why I can't apply a code?" asks a question of its own
        return kind or _kind(text)
    return _kind(text)


def _previous_question(history: Sequence[Mapping[str, Any]] | None) -> str:
    """The last user turn's text; entries that are not messages are passed over (``Index.ask`` refuses
    them with a clear error when it reads the conversation, ``rag.search.conversation.normalise``)."""
    for message in reversed(history or ()):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content", message.get("text"))
            if isinstance(content, list):  # OpenAI's list-of-parts form
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
            return content if isinstance(content, str) else ""
    return ""


def _asks(text: str) -> bool:
    """True when ``text`` opens with a word that asks ("what ...", "how ...", "can ...", "tell me ...")."""
    words = _WORD.findall(_FILLER.sub("", text.lower()))
    return bool(words) and words[0] in _QUESTION_WORDS


def _the_question(text: str) -> tuple[str, bool]:
    """The part of a turn that asks, lower-cased, and whether it ends with a question mark: the last
    sentence that asks (a question mark or a question word), without the words a turn opens with and
    the clause before the question ("Ok. If I move, what happens to my benefits?")."""
    sentences = [s for s in (_strip(s) for s in _SENTENCE_END.split(text)) if s]
    asking = [s for s in sentences if s.endswith("?")] or [s for s in sentences if _asks(s)]
    chosen = (asking or sentences or [text.lower()])[-1]
    return chosen.rstrip(" ?.!"), chosen.endswith("?")


def _strip(sentence: str) -> str:
    lowered = sentence.lower().strip()
    bare = _FILLER.sub("", lowered).strip()
    bare = _LEAD_CLAUSE.sub("", bare) if bare else bare
    return bare or lowered


def _kind(question: str) -> AnswerKind:
    """The kind of a question read alone."""
    text = " ".join(question.replace("’", "'").split()).strip()
    words = _WORD.findall(text.lower())
    if not words:
        return "fact"
    asked, marked = _the_question(text)
    lowered = _REQUEST.sub("", asked)
    words = _WORD.findall(lowered) or words
    if _SUMMARY.search(lowered):
        return "summary"
    first = words[0]
    if first not in _QUESTION_WORDS and not marked:
        if _FAILING.search(lowered) or (_TROUBLE.search(lowered) and first in _STATEMENT_OPENERS):
            return "procedure"
        if (len(words) <= 4 or (len(words) <= 6 and first not in _STATEMENT_OPENERS)) and not _VERSUS.search(lowered):
            return "keyword"
    embedded = _EMBEDDED.match(lowered)
    if embedded:
        if embedded.group(0).endswith(("if", "whether")):
            return "yesno"
        return _kind(lowered[embedded.end():] + "?")
    if _DESCRIBED_AS.match(lowered) or _ASKS_NAME.match(lowered):
        return "fact"   # before the procedure: "What is the process of making beer called?"
    if _PROCEDURE.match(lowered):
        return "procedure"
    if _CONSEQUENCE.match(lowered):
        return "explanation"   # before the comparison: "What happens if I owe more than my house is worth?"
    if first in _AUX and " or " in lowered and words[1] != "there":
        # a choice between alternatives ("Is it X or Y?") is answered by the one chosen
        return "comparison" if _COMPARISON.search(lowered) or re.search(r"\w+er or \w+er\b", lowered) else "fact"
    if _ASKS_DIFFERENCE.search(lowered) if first in ("what", "which") else (
            _COMPARISON.search(lowered) and (first in _AUX or first in _ASKING_COMPARISON or " vs" in lowered)):
        return "comparison"
    if first not in _QUESTION_WORDS and " or " in lowered and len(words) <= 5:
        return "comparison"   # "FIFO or LIFO?"
    if _EXPLANATION.match(lowered) or _OPINION.match(lowered):
        return "explanation"
    if _LIST.match(lowered) or _plural_which(words) or _ENUMERATED.match(lowered):
        return "list"
    if _DESCRIBED.match(lowered):
        return "definition"
    definition = _DEFINITION.match(lowered)
    if definition:
        term = definition.group("term") or definition.group("who") or ""
        if not term or (len(_WORD.findall(term)) <= 4 and not _FACT_TERMS.match(term) and not _NAMED_BY.search(term)
                        and not re.search(r"\b(?:of|in|for|on|at|by|from|between)\b", term)):
            if not (definition.group("who") and len(_WORD.findall(term)) > 3):
                return "definition"
    if first in _AUX:
        return "yesno"
    return "fact"


_DESCRIBED = re.compile(
    r"^what (?:is|was|are|were) (?:the |an? )?[^?]{1,60}?\b(?:business|strategy|mission|purpose|role|policy|approach|"
    r"history|background|model|goal|vision|outlook|plan|philosophy|culture|position)$")
""""What is Amcor's business?", "What is the company's strategy?": a description, though the possessive
before it would read as asking for a value ("What is Tucson's CBS station?")."""
_ENUMERATED = re.compile(
    r"^what (?:are|were) (?:the |some )?[^?]{1,60}?\b(?:risks|products|segments|services|competitors|reasons|factors|"
    r"benefits|challenges|strengths|weaknesses|priorities|goals|causes|effects|symptoms|features|advantages|"
    r"disadvantages|drawbacks|options|requirements|responsibilities|duties|rights|obligations|initiatives|brands)$")
""""What are Best Buy's main risks?": several of a kind, a list, whatever words stand before them."""


def _plural_which(words: list[str]) -> bool:
    """"Which file types can I upload?", "Which rivers are navigable?": a plural noun after "which", before
    the verb ("Which state receives the most rain?" asks for one)."""
    if len(words) < 3 or words[0] != "which":
        return False
    return any(len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")) and w not in _AUX
               and (n + 1 == len(words) or words[n + 1] in _AUX or words[n + 1] in _PRONOUNS)
               for n, w in enumerate(words[1:3], start=1))


def wants_sentences(kind: AnswerKind) -> bool:
    """Kinds answered by whole sentences rather than the reader's short span."""
    return kind not in ("fact", "summary", "table")


__all__ = ["classify", "wants_sentences"]

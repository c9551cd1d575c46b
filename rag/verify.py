"""The one check every quote passes before it is shown: it is its page's text at its offsets.

Every answerer (the reader, an LLM) and every caller goes through ``verify_quotes``; it lives
below them all so that none has to import another to use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rag.types import Quote


class PageSource(Protocol):
    """Anything that returns a page's full text as stored in the index (a snapshot, a store)."""

    def page_text(self, source: str, page: int) -> str | None: ...


def verify_quotes(quotes: Sequence[Quote], pages: PageSource) -> tuple[list[Quote], list[Quote]]:
    """Split quotes into those found verbatim at their offsets in the stored page text, and the rest.

    Example:
        >>> # kept, dropped = verify_quotes(candidate_quotes, snapshot)
        >>> # all(snapshot.page_text(q.source, q.page)[q.start:q.end] == q.text for q in kept)
    """
    texts: dict[tuple[str, int], str | None] = {}
    kept: list[Quote] = []
    dropped: list[Quote] = []
    for quote in quotes:
        key = (quote.source, quote.page)
        if key not in texts:
            texts[key] = pages.page_text(*key)
        text = texts[key]
        ok = (text is not None and quote.text.strip() != "" and 0 <= quote.start < quote.end <= len(text)
              and text[quote.start:quote.end] == quote.text)
        (kept if ok else dropped).append(quote)
    return kept, dropped

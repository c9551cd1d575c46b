"""Words as the lexical side sees them: stop words, the stemmer, ``terms`` and BM25's tokenisation.

One definition each, below everything that uses them (the BM25 index, the retriever, the
answerer), so that none has to import another to get at them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache

_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202 - Stemmer.Stemmer
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """bm25s's English stop words: what BM25 (and ``terms``) leave out."""
    # bm25s (and scipy) load on first use
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


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
    return bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), show_progress=False)


def terms(text: str) -> list[str]:
    """Stemmed, lower-cased content words of a text, as BM25 sees them.

    Example:
        >>> terms("Who called for UN visits?")
        ['call', 'un', 'visit']
    """
    stop = stopwords()
    words = [w for w in _WORD.findall(text.lower()) if w not in stop and len(w) > 1 or w.isdigit()]
    return _stemmer().stemWords(words)

"""The default lexical index: BM25 weights computed by bm25s, stored as numpy arrays + JSON in ``bm25/``.

bm25s builds the index (and writes its files, no pickle); searching needs none of it: a
question's score is the sum of its terms' precomputed weights, one ``np.add.at`` over the
term-major (CSC) arrays, exactly as bm25s sums them. So a query imports neither bm25s nor
scipy (about a second of a CLI call's start on 2 cores).

Every file is checked against the manifest when it is opened: a doctored file must fail there,
with one line, not with a traceback in the middle of a search.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.protocols import GenerationRows, QueryContext
from rag.settings import Settings
from rag.text import bm25_tokenize, bm25s_module

FOLDER = "bm25"
_DATA, _INDICES, _INDPTR = "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy"
_VOCAB, _PARAMS = "vocab.index.json", "params.index.json"


class Bm25sLexicalIndex:
    """BM25 behind the ``LexicalIndex`` protocol; query terms are ``rag.text.terms``.

    ``indptr[t]:indptr[t + 1]`` spans the chunks (``indices``) holding term ``t`` and its BM25
    weight in each (``data``).

    Example:
        >>> from rag.protocols import QueryContext
        >>> index = Bm25sLexicalIndex.from_texts(["apples grow", "bananas ripen"])
        >>> [row for row, _ in index.search(QueryContext("banana?", ("banana",)), 5)]
        [1]
    """

    kind = "bm25s"

    def __init__(self, vocab: dict[str, int], data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 count: int) -> None:
        if (indptr.ndim != 1 or len(indptr) == 0 or indptr[0] != 0 or indptr[-1] != len(indices)
                or data.shape != indices.shape or np.any(np.diff(indptr) < 0)
                or (len(indices) and (indices.min() < 0 or indices.max() >= count))
                or not np.all(np.isfinite(data))):
            raise ValueError("the BM25 posting lists are inconsistent")
        if not all(type(i) is int and 0 <= i for i in vocab.values()):
            raise ValueError("the BM25 vocabulary is not a map of terms to ids")
        # bm25s gives the empty token an id past the last posting list: such ids are never scored.
        self.vocab = {t: i for t, i in vocab.items() if i < len(indptr) - 1}
        self.data, self.indices, self.indptr = data, indices, indptr
        self.count = count
        self.doc_freqs = np.diff(indptr)

    @classmethod
    def _from_bm25s(cls, bm25: Any, count: int) -> Bm25sLexicalIndex:  # noqa: ANN401 - bm25s.BM25
        scores = bm25.scores
        return cls(dict(bm25.vocab_dict), np.asarray(scores["data"]), np.asarray(scores["indices"]),
                   np.asarray(scores["indptr"]), count)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> Bm25sLexicalIndex:
        bm25 = bm25s_module().BM25()
        bm25.index(bm25_tokenize(texts), show_progress=False)
        return cls._from_bm25s(bm25, len(texts))

    @classmethod
    def build(cls, rows: GenerationRows, settings: Settings) -> Bm25sLexicalIndex | None:
        texts = rows.texts()
        if not texts:
            return None  # bm25s cannot index nothing; an empty index has no lexical side
        bm25 = bm25s_module().BM25()
        bm25.index(bm25_tokenize(texts), show_progress=False)
        bm25.save(str(rows.folder / FOLDER), allow_pickle=False)
        return cls._from_bm25s(bm25, len(texts))

    @classmethod
    def load(cls, folder: Path, entry: dict[str, Any], count: int, settings: Settings) -> Bm25sLexicalIndex | None:
        if count == 0:
            return None
        path = folder / FOLDER
        params = json.loads((path / _PARAMS).read_text(encoding="utf-8"))
        if not isinstance(params, dict) or params.get("num_docs") != count or params.get("method") != "lucene":
            raise ValueError(f"BM25 params ({path / _PARAMS}) name another document count or method than "
                             f"the manifest's {count} lucene-scored chunks")
        vocab = json.loads((path / _VOCAB).read_text(encoding="utf-8"))
        if not isinstance(vocab, dict):
            raise ValueError(f"the BM25 vocabulary {path / _VOCAB} is not a map of terms to ids")
        # mmap first: the .npy headers give the shapes before any array is read into memory.
        shapes = [np.load(path / name, mmap_mode="r", allow_pickle=False).shape for name in (_DATA, _INDICES, _INDPTR)]
        if shapes[0] != shapes[1] or len(shapes[2]) != 1 or shapes[2][0] not in (len(vocab), len(vocab) + 1):
            raise ValueError(f"BM25 arrays in {path} have inconsistent shapes {shapes} for {len(vocab)} terms")
        data, indices, indptr = (np.load(path / name, allow_pickle=False) for name in (_DATA, _INDICES, _INDPTR))
        return cls(vocab, data, indices, indptr, count)

    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind}

    # -- LexicalIndex ----------------------------------------------------------------------

    def doc_freq(self, terms: Sequence[str]) -> dict[str, int]:
        return {t: int(self.doc_freqs[self.vocab[t]]) if t in self.vocab else 0 for t in terms}

    def scores(self, term_ids: Sequence[int]) -> np.ndarray:
        """BM25 score of every chunk for these term ids (a repeated term counts again, as in bm25s)."""
        scores = np.zeros(self.count, dtype=self.data.dtype)
        if term_ids:
            spans = [(self.indptr[t], self.indptr[t + 1]) for t in term_ids]
            np.add.at(scores, np.concatenate([self.indices[a:b] for a, b in spans]),
                      np.concatenate([self.data[a:b] for a, b in spans]))
        return scores

    def search(self, query: QueryContext, n: int) -> list[tuple[int, float]]:
        if n <= 0:
            return []
        ids = [self.vocab[t] for t in query.terms if t in self.vocab]
        if not ids:
            return []
        scores = self.scores(ids)
        if query.allowed is not None:
            mask = np.zeros(self.count, dtype=scores.dtype)
            mask[query.allowed] = 1.0
            scores *= mask
        positive = np.flatnonzero(scores > 0)
        if len(positive) > n:
            positive = positive[np.argpartition(-scores[positive], n - 1)[:n]]
        order = positive[np.argsort(-scores[positive], kind="stable")]
        return [(int(r), float(scores[r])) for r in order]

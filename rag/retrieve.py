"""Question -> ranked hits: dense (FAISS) and lexical (BM25) candidates, fused, optionally diversified.

Each hit carries the sentence of its chunk that best matches the question, as a verbatim quote
with page offsets. That choice is lexical here (stemmed terms weighted by their rarity in the
index) so that ``search`` stays fast; ``answer`` looks harder at fewer passages.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

from .chunk import split_sentences
from .embed import Embedder
from .fusion import fuse
from .settings import Settings
from .store import Snapshot
from .types import Chunk, Hit, Quote

_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202 - Stemmer.Stemmer
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """bm25s's English stop words: what BM25 (and ``terms``) leave out."""
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def bm25s_module():  # noqa: ANN201 - the bm25s module
    """bm25s, imported on first use, with its logger following the application's logging again.

    bm25s sets its own logger to DEBUG when imported, which prints "Building index from IDs
    objects" through any handler the application has; NOTSET hands the decision back.
    """
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


NEAR_DUPLICATE = 0.98
"""Cosine similarity above which MMR treats two passages as copies of one another."""


class Retriever:
    """Searches one snapshot of the index. Stateless between calls, so threads may share it."""

    def __init__(self, snapshot: Snapshot, embedder: Embedder) -> None:
        self.snapshot = snapshot
        self.embedder = embedder
        self._doc_freq: np.ndarray | None = None
        if snapshot.bm25 is not None:
            self._doc_freq = np.diff(np.asarray(snapshot.bm25.scores["indptr"]))

    # -- candidates ------------------------------------------------------------------------

    def dense(self, question_vector: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        import faiss

        index = self.snapshot.dense
        if index.ntotal == 0 or n <= 0:
            return []
        query = np.ascontiguousarray(question_vector.reshape(1, -1), dtype=np.float32)
        params = None
        if allowed is not None:
            if len(allowed) == 0:
                return []
            selector = faiss.IDSelectorBatch(allowed.astype(np.int64))
            params = (faiss.SearchParametersHNSW(sel=selector, efSearch=max(64, n))
                      if self.snapshot.dense_kind.startswith("hnsw")
                      else faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe)
                      if self.snapshot.dense_kind.startswith("ivf") else faiss.SearchParameters(sel=selector))
        elif self.snapshot.dense_kind.startswith("hnsw"):
            params = faiss.SearchParametersHNSW(efSearch=max(64, n))
        scores, rows = index.search(query, min(n, index.ntotal), params=params)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]

    def lexical(self, question: str, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        bm25 = self.snapshot.bm25
        if bm25 is None or n <= 0:
            return []
        ids = [bm25.vocab_dict[t] for t in terms(question) if t in bm25.vocab_dict]
        if not ids:
            return []
        mask = None
        if allowed is not None:
            mask = np.zeros(self.snapshot.count, dtype=np.float32)
            mask[allowed] = 1.0
        scores = bm25.get_scores_from_ids(ids, weight_mask=mask)
        positive = np.flatnonzero(scores > 0)
        if len(positive) > n:
            positive = positive[np.argpartition(-scores[positive], n - 1)[:n]]
        order = positive[np.argsort(-scores[positive], kind="stable")]
        return [(int(r), float(scores[r])) for r in order]

    # -- search ----------------------------------------------------------------------------

    def search(self, question: str, settings: Settings, k: int | None = None,
               sources: Iterable[str] | None = None, pages: tuple[int, int] | None = None) -> list[Hit]:
        """The ``k`` best passages for ``question``, each with its best sentence quoted."""
        k = settings.k if k is None else k
        if k < 1:
            raise ValueError(f"k must be greater than 0. Currently, it is {k}")
        if self.snapshot.count == 0 or not question.strip():
            return []
        allowed = None
        if sources is not None or pages is not None:
            allowed = self.snapshot.rows_where(sources, pages)
        n = max(settings.candidates, k * 2 if settings.mmr else k)
        dense: list[tuple[int, float]] = []
        sparse: list[tuple[int, float]] = []
        if settings.fusion != "bm25":
            vector = self.embedder.encode_queries([question])[0]
            dense = self.dense(vector, n, allowed)
        if settings.fusion != "dense":
            sparse = self.lexical(question, n, allowed)
        fused = fuse(dense, sparse, settings.fusion, dense_weight=settings.dense_weight, rrf_k=settings.rrf_k)
        if settings.mmr and len(fused) > k:
            fused = self._mmr(fused, k, settings.mmr_lambda)
        fused = fused[:k]
        dense_by_row, sparse_by_row = dict(dense), dict(sparse)
        chunks = self.snapshot.chunks([row for row, _ in fused])
        qterms = terms(question)
        return [Hit(chunk=chunk, score=score, rank=rank, quote=self.best_sentence(qterms, chunk),
                    dense_score=dense_by_row.get(row), lexical_score=sparse_by_row.get(row))
                for rank, ((row, score), chunk) in enumerate(zip(fused, chunks), start=1)]

    def _mmr(self, fused: list[tuple[int, float]], k: int, lam: float) -> list[tuple[int, float]]:
        """Maximal marginal relevance over the fused list: relevance traded against redundancy."""
        rows = [row for row, _ in fused]
        vectors = np.asarray(self.snapshot.vectors[np.array(rows)], dtype=np.float32)
        relevance = np.array([score for _, score in fused], dtype=np.float32)
        span = float(relevance.max() - relevance.min()) or 1.0
        relevance = (relevance - relevance.min()) / span
        chosen: list[int] = [0]
        similarity = vectors @ vectors.T
        while len(chosen) < min(k, len(rows)):
            redundancy = similarity[:, chosen].max(axis=1)
            value = lam * relevance - (1 - lam) * redundancy
            # A near-copy of a chosen passage adds nothing, however relevant: it goes last.
            value[redundancy >= NEAR_DUPLICATE] -= 10.0
            value[chosen] = -np.inf
            chosen.append(int(np.argmax(value)))
        return [fused[i] for i in chosen]

    # -- quotes ----------------------------------------------------------------------------

    def idf(self, term_list: Sequence[str]) -> dict[str, float]:
        """Rarity of each term in the index (BM25's idf); unseen terms count as rare."""
        bm25 = self.snapshot.bm25
        total = max(1, self.snapshot.count)
        out = {}
        for term in term_list:
            df = 0
            if bm25 is not None and self._doc_freq is not None and term in bm25.vocab_dict:
                df = int(self._doc_freq[bm25.vocab_dict[term]])
            out[term] = math.log(1 + (total - df + 0.5) / (df + 0.5))
        return out

    def best_sentence(self, question_terms: Sequence[str], chunk: Chunk) -> Quote:
        """The sentence of ``chunk`` sharing the most (rarity-weighted) terms with the question.

        Two adjacent sentences are quoted together when together they cover question terms that
        neither covers alone ("X has called on the UN ... She said delegations must visit Iran"
        answers "Who called for UN visits?" only as a pair). Ties go to the shorter quote.
        """
        spans = split_sentences(chunk.text) or [(0, len(chunk.text))]
        weights = self.idf(question_terms)
        wanted = set(question_terms)
        covered = [wanted.intersection(terms(chunk.text[a:b])) for a, b in spans]

        def value(found: set[str]) -> float:
            return sum(weights[t] for t in found)

        best, best_score = spans[0], -1.0
        for i, (a, b) in enumerate(spans):
            score = value(covered[i])
            if score > best_score + 1e-9:
                best, best_score = (a, b), score
        for i in range(len(spans) - 1):
            union = covered[i] | covered[i + 1]
            if len(union) > max(len(covered[i]), len(covered[i + 1])) and value(union) > best_score + 1e-9:
                best, best_score = (spans[i][0], spans[i + 1][1]), value(union)
        a, b = best
        return Quote(text=chunk.text[a:b], source=chunk.source, page=chunk.page,
                     start=chunk.start + a, end=chunk.start + b)

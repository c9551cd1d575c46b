"""Question -> ranked hits: dense and lexical candidates, fused, optionally diversified and reranked.

The dense and lexical indexes are whatever backends the snapshot was built with
(``rag.protocols``). Each question's work is done once, in a ``QueryContext`` (its terms, its
vector, the rows a filter allows, the pages read), and handed to every step.

Each hit carries the sentence of its chunk that best matches the question, as a verbatim quote
with page offsets. That choice is lexical here (stemmed terms weighted by their rarity in the
index) so that ``search`` stays fast; the answerer looks harder at fewer passages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from rag.protocols import Embedder, QueryContext, Reranker
from rag.search.fusion import fuse
from rag.settings import Settings
from rag.store.snapshot import Snapshot
from rag.text import split_sentences, terms
from rag.types import Chunk, Hit, Quote

__all__ = ["CachedPages", "Retriever"]

NEAR_DUPLICATE = 0.98
"""Cosine similarity above which MMR treats two passages as copies of one another."""


class CachedPages:
    """A snapshot's pages, each read from the store at most once per query (``PageSource``)."""

    def __init__(self, snapshot: Snapshot, cache: dict[tuple[str, int], str | None]) -> None:
        self.snapshot = snapshot
        self.cache = cache

    def page_text(self, source: str, page: int) -> str | None:
        key = (source, page)
        if key not in self.cache:
            self.cache[key] = self.snapshot.page_text(source, page)
        return self.cache[key]

    def page_grids(self, source: str, page: int, version: int) -> str | None:
        """The page's stored table grids as JSON (``Snapshot.page_grids``)."""
        return self.snapshot.page_grids(source, page, version)


class Retriever:
    """Searches one snapshot of the index. Stateless between calls, so threads may share it."""

    def __init__(self, snapshot: Snapshot, embedder: Embedder, reranker: Reranker | None = None) -> None:
        self.snapshot = snapshot
        self.embedder = embedder
        self.reranker = reranker

    def context(self, question: str, settings: Settings, sources: Iterable[str] | None = None,
                pages: tuple[int, int] | None = None, lead: str = "", lead_weight: float = 0.0) -> QueryContext:
        """Everything about ``question`` that more than one step needs, computed once.

        ``lead``, when given, is embedded too and its vector added to the question's at
        ``lead_weight`` (both unit length, the sum normalised): a follow-up searched with the
        whole conversation keeps its own meaning in front (``rag.search.conversation.LEAD_WEIGHT``).
        """
        allowed = None
        if sources is not None or pages is not None:
            allowed = self.snapshot.rows_where(sources, pages)
        vector = None
        if settings.fusion != "bm25" and self.snapshot.count and question.strip():
            if lead.strip() and lead_weight > 0 and lead != question:
                both = self.embedder.encode_queries([question, lead])
                both = both / np.maximum(np.linalg.norm(both, axis=1, keepdims=True), 1e-12)
                mixed = both[0] + lead_weight * both[1]
                vector = (mixed / max(float(np.linalg.norm(mixed)), 1e-12)).astype(np.float32)
            else:
                vector = self.embedder.encode_queries([question])[0]
        return QueryContext(question=question, terms=tuple(terms(question)), vector=vector, allowed=allowed)

    # -- search ----------------------------------------------------------------------------

    def search(self, question: str, settings: Settings, k: int | None = None,
               sources: Iterable[str] | None = None, pages: tuple[int, int] | None = None,
               context: QueryContext | None = None) -> list[Hit]:
        """The ``k`` best passages for ``question``, each with its best sentence quoted.

        ``k`` is checked where the call is made (``Index.search``, ``Index.ask``), not again here.
        """
        k = settings.k if k is None else k
        if self.snapshot.count == 0 or not question.strip():
            return []
        query = context or self.context(question, settings, sources, pages)
        if query.allowed is not None and len(query.allowed) == 0:
            return []
        n = max(settings.candidates, k * 2 if settings.mmr else k)
        dense: list[tuple[int, float]] = []
        sparse: list[tuple[int, float]] = []
        if settings.fusion != "bm25" and query.vector is not None:
            dense = self.snapshot.dense.search(query.vector, n, query.allowed)
        if settings.fusion != "dense" and self.snapshot.lexical is not None:
            sparse = self.snapshot.lexical.search(query, n)
        fused = fuse(dense, sparse, settings.fusion, dense_weight=settings.dense_weight, rrf_k=settings.rrf_k)
        if settings.mmr and len(fused) > k:
            fused = self._mmr(fused, k, settings.mmr_lambda)
        if self.reranker is not None:
            candidates = self.snapshot.chunks([row for row, _ in fused])
            fused = [fused[i] for i in self.reranker.rerank(query, candidates, k)]
        fused = fused[:k]
        dense_by_row, sparse_by_row = dict(dense), dict(sparse)
        chunks = self.snapshot.chunks([row for row, _ in fused])
        weights = self.idf(query.terms)
        return [Hit(chunk=chunk, score=score, rank=rank, quote=self.best_sentence(query.terms, chunk, weights),
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
        total = max(1, self.snapshot.count)
        lexical = self.snapshot.lexical
        df = lexical.doc_freq(term_list) if lexical is not None else {}
        return {t: math.log(1 + (total - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in term_list}

    def best_sentence(self, question_terms: Sequence[str], chunk: Chunk,
                      weights: dict[str, float] | None = None) -> Quote:
        """The sentence of ``chunk`` sharing the most (rarity-weighted) terms with the question.

        Two adjacent sentences are quoted together when together they cover question terms that
        neither covers alone ("X has called on the UN ... She said delegations must visit Iran"
        answers "Who called for UN visits?" only as a pair). Ties go to the shorter quote.
        """
        spans = split_sentences(chunk.text) or [(0, len(chunk.text))]
        weights = weights if weights is not None else self.idf(question_terms)
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
                     start=chunk.start + a, end=chunk.start + b, ocr=chunk.ocr)

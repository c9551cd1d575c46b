"""Placeholder fusion (plain RRF); the measured default replaces it."""
from __future__ import annotations


def fuse(dense, sparse, method="blend", *, dense_weight=0.5, rrf_k=60):
    if method == "dense":
        return list(dense)
    if method == "bm25":
        return list(sparse)
    scores = {}
    for ranked in (dense, sparse):
        for rank, (row, _) in enumerate(ranked, start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])

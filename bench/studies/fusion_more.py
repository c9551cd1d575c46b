"""More attempts at the fusion target (+2 nDCG@10 over the better single retriever): what each buys.

``bench/studies/fusion_study.py`` chose the default fusion; this script measures three further ideas on
top of it, on the same candidate lists (its cached embeddings and runs, same sets, same metric:
nDCG@10 with linear gains, passage level, 50 candidates per retriever):

- **question words out of the BM25 query**: bm25s's English stop list keeps "what", "which",
  "how", "does", ...; the query side drops them (the wh-words and auxiliaries, then also
  "name", "mean", "long", "type", ...). The index is unchanged.
- **dense pseudo-relevance feedback (Rocchio)**: the query vector moves toward the mean vector of
  the top fused passages, ``q' = normalize((1 - a) q + a mean(top m))``, dense search runs again
  and is fused with the same BM25 list.
- **score smoothing over neighbours**: each fused candidate gains ``b`` times the
  similarity-weighted mean fused score of the top ``m`` candidates (the cluster hypothesis: a
  passage like the best-scored ones is likely relevant too).

Each row is the default blend of ``rag.search.fusion.fuse`` with one change; "delta" is against the
default on the same set. Results go to ``bench/results/fusion_more.md``.

Usage:
    .venv/bin/python -m bench.studies.fusion_more                 # the three beir-mini sets and the held-out sets
    .venv/bin/python -m bench.studies.fusion_more --no-held-out   # beir-mini only (a few minutes once cached)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.common import RESULTS, header, write
from bench.studies import fusion_study as fs
from rag.search.fusion import fuse

WH_WORDS = ("what which who whom whose when where why how does do did is are was were can could would "
            "should").split()
"""The question's framing: wh-words and auxiliaries (bm25s keeps most of them)."""
WIDE_WORDS = WH_WORDS + "much many long mean means meaning definition define defined name named called list type " \
                        "types kind year example describe".split()
"""Also the words that frame a question's topic ("what does X mean", "what type of")."""

Ranking = list[int]


def bm25_run(ds: fs.Dataset, extra_stopwords: list[str]) -> fs.Run:
    """BM25 lists as ``fusion_study.runs`` builds them, with more words dropped from the queries."""
    import bm25s
    import Stemmer
    from bm25s.stopwords import STOPWORDS_EN

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(ds.texts, stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)
    queries = bm25s.tokenize(ds.queries, stopwords=list(STOPWORDS_EN) + extra_stopwords, stemmer=stemmer,
                             return_ids=False, show_progress=False)
    # A query made of question words only keeps nothing: it matches nothing, as in rag.
    rows, scores = retriever.retrieve([q or ["\x00"] for q in queries], k=min(fs.DEPTH, len(ds.texts)),
                                      show_progress=False)
    return [[(int(r), float(s)) for r, s in zip(rr, ss) if s > 0] for rr, ss in zip(rows, scores)]


def ndcg(ds: fs.Dataset, rankings: list[Ranking]) -> float:
    return float(np.mean([fs.metrics(r, ds, qid)["ndcg@10"] for qid, r in zip(ds.query_ids, rankings)]))


def fused(dense: fs.Run, sparse: fs.Run, cand: int) -> list[list[tuple[int, float]]]:
    return [fuse(d[:cand], s[:cand]) for d, s in zip(dense, sparse)]


def rocchio(docs: np.ndarray, queries: np.ndarray, dense: fs.Run, sparse: fs.Run, cand: int, alpha: float,
            m: int) -> list[Ranking]:
    import faiss

    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(docs)
    out = []
    for q, first, lexical in zip(queries, fused(dense, sparse, cand), sparse):
        top = [r for r, _ in first[:m]]
        moved = (1 - alpha) * q + alpha * docs[top].mean(axis=0) if top else q
        moved = (moved / np.linalg.norm(moved)).astype(np.float32)
        scores, rows = index.search(moved[None, :], cand)
        again = [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
        out.append([r for r, _ in fuse(again, lexical[:cand])])
    return out


def smoothed(docs: np.ndarray, dense: fs.Run, sparse: fs.Run, cand: int, beta: float, m: int,
             power: float) -> list[Ranking]:
    out = []
    for first in fused(dense, sparse, cand):
        rows = np.array([r for r, _ in first])
        scores = np.array([s for _, s in first])
        weights = np.clip(docs[rows] @ docs[rows[:m]].T, 0, None) ** power
        np.fill_diagonal(weights[:m], 0.0)  # a passage is not its own neighbour
        neighbours = weights @ scores[:m] / np.maximum(weights.sum(axis=1), 1e-9)
        out.append([int(rows[i]) for i in np.argsort(-(scores + beta * neighbours), kind="stable")])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-held-out", action="store_true", help="only the three beir-mini sets")
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="torch threads when something must be embedded")
    parser.add_argument("--out", type=Path, default=RESULTS / "fusion_more.md")
    args = parser.parse_args(argv)
    if not all(folder.exists() for folder in fs.SETS.values()):
        print(f"missing data: {fs.DATA / 'beir-mini'} (../shared is beside the checkout)", file=sys.stderr)
        return 1
    started = time.perf_counter()
    cand = args.candidates
    loaders: dict[str, Callable[[], fs.Dataset]] = {name: (lambda n=name, f=folder: fs.load(n, f))
                                                    for name, folder in fs.SETS.items()}
    if not args.no_held_out:
        loaders.update(fs.HELD_OUT)

    variants: dict[str, list[float]] = {}
    heads: list[tuple[str, int, float, float, float]] = []
    for name, load in loaders.items():
        ds = load()
        print(f"{name}: {len(ds.queries)} queries, {len(ds.texts)} passages", file=sys.stderr)
        dense, sparse = fs.runs(ds, args.threads)
        docs = fs.cached_embeddings(ds, "corpus", ds.texts, args.threads)
        queries = fs.cached_embeddings(ds, "queries", ds.queries, args.threads)
        base = ndcg(ds, [[r for r, _ in f] for f in fused(dense, sparse, cand)])
        heads.append((name, len(ds.queries), fs.single(ds, dense)["ndcg@10"], fs.single(ds, sparse)["ndcg@10"], base))

        def record(label: str, rankings: list[Ranking], base: float = base, ds: fs.Dataset = ds) -> None:
            variants.setdefault(label, []).append(ndcg(ds, rankings) - base)

        for label, words in (("BM25 query without wh-words and auxiliaries", WH_WORDS),
                             ("BM25 query without those and topic-framing words", WIDE_WORDS)):
            other = bm25_run(ds, words)
            record(label, [[r for r, _ in f] for f in fused(dense, other, cand)])
        for alpha in (0.3, 0.5):
            for m in (3, 5):
                record(f"dense Rocchio PRF, a={alpha}, top {m}", rocchio(docs, queries, dense, sparse, cand, alpha, m))
        for beta in (0.2, 0.4, 0.7):
            for m in (5, 10):
                for power in (1, 4):
                    record(f"neighbour smoothing, b={beta}, top {m}, sim^{power}",
                           smoothed(docs, dense, sparse, cand, beta, m, power))

    names = [h[0] for h in heads]
    lines = header("More fusion attempts: query words, dense PRF, neighbour smoothing", argv or sys.argv[1:],
                   __spec__.name, [f"{cand} candidates per retriever; nDCG@10, passage level, as in "
                                      "`bench/studies/fusion_study.py` (whose cached embeddings and runs this reads)",
                                      f"run time: {time.perf_counter() - started:.0f} s"])
    lines += ["## The default, for reference", "",
              "| set | queries | dense | BM25 | default blend |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | {q} | {d:.3f} | {b:.3f} | {f:.3f} |" for n, q, d, b, f in heads]
    lines += ["", "## Each change against the default (nDCG@10 points x 100; positive is better)", "",
              "| change | " + " | ".join(names) + " | mean |", "|---|" + "---:|" * (len(names) + 1)]
    for label, deltas in variants.items():
        cells = " | ".join(f"{100 * d:+.1f}" for d in deltas)
        lines.append(f"| {label} | {cells} | {100 * float(np.mean(deltas)):+.2f} |")
    best = max(variants.items(), key=lambda kv: float(np.mean(kv[1])))
    lines += ["", f"Best mean change: {best[0]} ({100 * float(np.mean(best[1])):+.2f} points). "
              "business-reports carries no signal (misaligned qrels, see `fusion_study.md`)."]
    write("fusion_more", lines, args.out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

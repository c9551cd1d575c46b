"""``rag eval``: the index a set runs against (an existing one, or one built into a cache folder
keyed by the corpus and the index settings), ``--fail-under`` thresholds, and the printed summary."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.errors import RagError
from rag.eval.datasets import QuestionSet, load_question_set
from rag.eval.runner import EvalResult, evaluate, failure_row, table_cell
from rag.index import DEFAULT_FOLDER, Index
from rag.ingest.chunk import CHUNKER_VERSION
from rag.limits import check_k
from rag.ingest.load import find_files
from rag.serve.progress import StderrProgress
from rag.settings import BACKEND_FIELDS, INDEX_FIELDS, Settings
from rag.store.snapshot import current_generation

# --------------------------------------------------------------------------------------------
# Finding or building the index a set runs against


def eval_cache_folder(question_set: QuestionSet, settings: Settings, base: Path | None = None) -> Path:
    """Where ``rag eval`` keeps the index of a set's corpus: one folder per corpus and index settings
    (the corpus by absolute path, so a set named from another folder finds the same index)."""
    # Every index-shaping setting by value, defaults included: the fingerprint leaves out the ones
    # at their defaults (so indexes built before they existed keep opening), but a cached index
    # must never hold chunks made another way.
    shaping = {name: getattr(settings, name) for name in (*INDEX_FIELDS, *BACKEND_FIELDS)}
    key = json.dumps([sorted(str(p.expanduser().resolve()) for p in question_set.corpus), settings.fingerprint(),
                      shaping, CHUNKER_VERSION], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", question_set.name)[:60]
    return (base or Path.home() / ".cache" / "rag" / "eval-index") / f"{name}-{digest}"


def index_for_set(question_set: QuestionSet, settings: Settings, folder: Path | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> tuple[Index, str]:
    """The index to run a set against, and a line saying which one and how it was got.

    An existing index in ``folder`` is used as it is. Otherwise the set's corpus is indexed into
    ``folder`` (or, without one, a cache folder keyed by the corpus and the index settings);
    ingestion is incremental, so a second run only checks the files.
    """
    if folder is not None and current_generation(folder.expanduser().resolve()) is not None:
        index = Index.open(folder, settings)
        where = f"index: {index.folder} (existing, {len(index)} chunks)"
        if question_set.corpus and all(p.exists() for p in question_set.corpus):
            files, _ = find_files(question_set.corpus, settings.glob)
            indexed = {d.source for d in index.documents()}
            absent = [f for f in files if str(f) not in indexed]
            if absent:
                where += (f"; warning: {len(absent)} of the set's {len(files)} files are not in it "
                          f"(e.g. {absent[0]}), so questions about them cannot be found")
        return index, where
    if not question_set.corpus:
        raise RagError(f"the set {question_set.name} names no corpus and {folder or DEFAULT_FOLDER} holds no index: "
                       "add a \"corpus\" header line or pass --index with an index of its documents")
    target = folder if folder is not None else eval_cache_folder(question_set, settings)
    index = Index.build(question_set.corpus, target, settings=settings, progress=progress)
    report = index.last_report
    summary = report.summary() if report is not None else ""
    return index, f"index: {index.folder} ({summary})"


# --------------------------------------------------------------------------------------------
# The command


def parse_thresholds(items: Sequence[str]) -> dict[str, float]:
    """``["ndcg@10=0.5", "f1=0.4"]`` -> ``{"ndcg@10": 0.5, "f1": 0.4}``; a bad item raises RagError."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip().lower()] = float(value)
        except ValueError:
            raise RagError(f"--fail-under takes METRIC=VALUE, e.g. ndcg@10=0.5, not {item!r}") from None
    return out


def below(result: EvalResult, thresholds: dict[str, float]) -> list[str]:
    """The thresholds a result misses, as readable lines; an unmeasured metric raises RagError."""
    missing = [name for name in thresholds if name not in result.metrics]
    if missing:
        raise RagError(f"--fail-under: {', '.join(missing)} not measured on this set; measured: "
                       f"{', '.join(result.metrics)}")
    return [f"{name} = {result.metrics[name]:.4f} is below {limit}"
            for name, limit in thresholds.items() if result.metrics[name] < limit]


def _explicit_index(args: argparse.Namespace) -> Path | None:
    """``--index`` when the user named one; the default folder is left alone (eval has its own cache)."""
    # The CLI says what its default is (it alone reads $RAG_INDEX); importing it here was a cycle.
    default = getattr(args, "default_index", DEFAULT_FOLDER)
    chosen = Path(args.index).expanduser().resolve()
    return None if chosen == Path(default).expanduser().resolve() else chosen


def run_cli(args: argparse.Namespace, settings: Settings) -> int:
    """``rag eval``: run a set, print the metrics (or JSON), write the report, check thresholds."""
    k = check_k(args.k) if args.k is not None else 10  # before minutes of indexing the set's documents
    thresholds = parse_thresholds(args.fail_under or [])
    show_progress = not (args.no_progress or args.json)
    half = getattr(args, "half", "report")
    question_set = load_question_set(args.set, half=None if half == "all" else half)
    folder = _explicit_index(args)
    if folder is None and not question_set.corpus:
        folder = Path(args.index)
    progress = StderrProgress() if show_progress else None
    try:
        index, where = index_for_set(question_set, settings, folder, progress)
        if progress is not None:
            progress.close()
        print(where, file=sys.stderr)
        stage = f"eval {question_set.name}"
        if progress is not None:
            progress.start(stage, "question")
        on_question = None if progress is None else (lambda done, total: progress(stage, done, total))
        result = evaluate(index, question_set, k=k, limit=args.limit, progress=on_question)
    finally:
        if progress is not None:
            progress.close()
    if args.report:
        Path(args.report).write_text(result.to_markdown(), encoding="utf-8")
    missed = below(result, thresholds)
    if args.json:
        out = result.to_dict()
        out["report"] = args.report
        out["below_threshold"] = missed
        print(json.dumps(out, ensure_ascii=False))
    else:
        _print_summary(result, args.report)
    for line in missed:
        print(f"rag eval: {line}", file=sys.stderr)
    return 1 if missed else 0


def _print_summary(result: EvalResult, report: str | None, shown: int = 10) -> None:
    c = result.counts
    print(f"{result.set_name}: {c['questions']} questions ({c['answerable']} answerable, {c['unanswerable']} "
          f"unanswerable), fusion {result.fusion}, k {result.k}, {result.seconds:.1f} s")
    for name, value in result.metrics.items():
        print(f"  {name:<40}{value:>10.1f}" if name.endswith("_ms") else f"  {name:<40}{value:>10.3f}")
    for note in result.notes:
        print(f"note: {note}")
    if result.breakdown:
        print("answer text against the reference (F1 / ROUGE-L), by kind:")
        for line in result.breakdown_table():
            print("  " + line)
    failures = result.failures()
    print(f"{len(failures)} of {c['questions']} questions failed" + (":" if failures else "."))
    for r in failures[:shown]:
        row = failure_row(r)
        print(f"  [{row['id']}] {table_cell(row['question'], 90)}")
        print(f"      why: {'; '.join(row['why'])}")
        print(f"      expected: {table_cell(row['expected'], 90)} | got: {table_cell(row['got'], 90)}")
    if len(failures) > shown:
        hint = "" if report else " (write them all with --report FILE.md)"
        print(f"  ... and {len(failures) - shown} more" + hint)
    if report:
        print(f"report: {report}")

"""Do two versions of ``rag`` return the same search results on one index? (A check for refactors.)

Exports an earlier commit's ``rag/`` package, then runs every question of ``eval_questions/`` through
both versions on the same index folder (one built by the current code), with each fusion (top 10,
scores to 6 decimals, quote offsets), MMR and a page filter, and compares them one by one.

    .venv/bin/python -m bench.robustness.same_results --before c152828 --corpus docs ../shared/seeds
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import CACHE, ROOT, header, run_code, write

_RUN = """
import json, sys
from rag import Index, Settings
folder, out, *sets = sys.argv[1:]
questions = [json.loads(line).get("question") for name in sets for line in open(name)]
index = Index.open(folder, Settings(embed_backend="onnx-int8"))
found = {}
for q in filter(None, questions):
    for fusion in ("blend", "rrf", "dense", "bm25"):
        found[f"{fusion}|{q}"] = [(h.chunk.id, round(h.score, 6), h.quote.start, h.quote.end)
                                  for h in index.search(q, k=10, fusion=fusion)]
    found[f"mmr|{q}"] = [h.chunk.id for h in index.search(q, k=5, mmr=True)]
    found[f"pages|{q}"] = [h.chunk.id for h in index.search(q, k=5, pages=(1, 1))]
json.dump(found, open(out, "w"))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the earlier commit")
    parser.add_argument("--corpus", nargs="+", default=["docs"])
    parser.add_argument("--index", default=None, help="an index (onnx-int8) to use instead of building one")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    sets = sorted(str(p) for p in (ROOT / "eval_questions").glob("*.jsonl") if "conversation" not in p.name)
    folder = Path(args.index).resolve() if args.index else CACHE / "same-results-index"
    if not args.index:
        subprocess.run([sys.executable, "-m", "rag.serve.cli", "ingest", *args.corpus, "--index", str(folder),
                        "--backend", "onnx-int8", "--no-progress"], check=True, cwd=ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        old.mkdir()
        archive = subprocess.run(["git", "archive", args.before, "rag"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        results = {}
        for name, path in (("before", old), ("now", ROOT)):
            out = Path(tmp) / f"{name}.json"
            run_code(_RUN, str(folder), str(out), *sets, check=True, pythonpath=path)
            results[name] = json.loads(out.read_text())
    differ = [k for k in results["now"] if results["now"][k] != results["before"].get(k)]
    lines = header("Same results before and after a refactor", argv, __spec__.name, [
        f"before: commit {args.before}; now: the working tree; one index (onnx-int8) of "
        f"{args.index or ', '.join(args.corpus)}",
    ])
    lines += [f"- {len(results['now'])} searches ({len(results['now']) // 6} questions x blend, rrf, dense, bm25, "
              f"MMR, a page filter): **{len(results['now']) - len(differ)} identical**, {len(differ)} different "
              "(passage ids, scores to 6 decimals, quote offsets)"]
    lines += [f"  - differs: `{k}`" for k in differ[:20]]
    write("perf_same_results", lines)
    print("\n".join(lines))
    return 0 if not differ else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Do two versions of ``rag`` cut the same pages into the same chunks? (A check for chunker changes.)

``same_results.py`` compares searches on one index, which a chunker change never alters; this
reads every page of the corpora once (the working tree's loaders), cuts each with an earlier
commit's ``rag.ingest.chunk`` and with the working tree's (the packaged model's token counter, as an
ingest does), and lists the pages whose chunks (offsets and context) differ.

    .venv/bin/python -m bench.robustness.same_chunks --before HEAD --corpus docs ../shared/seeds ../shared/data/financebench/pdfs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, header, run_code, write

_RUN = """
import json, sys
try:
    from rag.ingest.chunk import Chunker
except ImportError:  # a commit before rag was split into packages (f5cabf6)
    from rag.chunk import Chunker
from rag.embed import model_token_counter
from rag.settings import Settings
from rag.types import Page
pages, out = sys.argv[1:]
counter, limit = model_token_counter()
chunker = Chunker(Settings(), counter, limit)
cut = {}
for page in json.load(open(pages)):
    key = f"{page['source']}#{page['page']}"
    cut[key] = [(c.start, c.end, c.context) for c in chunker.chunk(Page(page["source"], page["page"], page["text"]))]
json.dump(cut, open(out, "w"))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the earlier commit")
    parser.add_argument("--corpus", nargs="+", default=["docs"])
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    from rag.ingest.load import find_files, load_file

    files, _ = find_files(args.corpus)
    pages = [{"source": p.source, "page": p.page, "text": p.text} for f in files for p in load_file(f)]
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        old.mkdir()
        archive = subprocess.run(["git", "archive", args.before, "rag"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        (Path(tmp) / "pages.json").write_text(json.dumps(pages))
        results = {}
        for name, path in (("before", old), ("now", ROOT)):
            out = Path(tmp) / f"{name}.json"
            run_code(_RUN, str(Path(tmp) / "pages.json"), str(out), check=True, pythonpath=path)
            results[name] = json.loads(out.read_text())
    differ = [k for k in results["now"] if results["now"][k] != results["before"].get(k)]
    lines = header("Same chunks before and after a chunker change", argv, __spec__.name, [
        f"before: commit {args.before}; now: the working tree; {len(files)} files of {', '.join(args.corpus)}",
    ])
    lines += [f"- {len(pages)} pages: **{len(pages) - len(differ)} cut the same**, {len(differ)} cut differently"]
    lines += [f"  - differs: `{Path(k).name}`" for k in differ[:20]]
    write("perf_same_chunks", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

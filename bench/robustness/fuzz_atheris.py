"""Coverage-guided fuzzing of the loaders and the chunker with atheris (libFuzzer), for a bounded time.

The first input byte picks the file type (PDF, text, Markdown, HTML); the rest is the file. A run
passes when every input is either read into well-formed pages and chunks or refused with
``LoadError``; any other exception stops libFuzzer and leaves the input in ``--corpus``/crash-*.
PDF inputs start from two small real PDFs so that mutations reach the parser's depths quickly.

    .venv/bin/pip install atheris          # not a project dependency
    .venv/bin/python -m bench.robustness.fuzz_atheris --seconds 600 --corpus bench/.cache/fuzz

The result line goes to bench/results/fuzz_atheris.md with ``--report``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["pypdf", "rag"]):
    import pypdf  # noqa: F401 - instrumented for coverage

    from bench.common import CACHE, command, machine, run_module, text_pdf, write, write_pdf
    from rag.embed import model_token_counter
    from rag.errors import LoadError
    from rag.ingest.chunk import Chunker
    from rag.ingest.load import load_file
    from rag.settings import Settings

SUFFIXES = (".pdf", ".txt", ".md", ".html")
_WORK = Path(tempfile.mkdtemp(prefix="rag-fuzz-"))
_COUNTER, _LIMIT = model_token_counter()
_CHUNKER = Chunker(Settings(chunk_tokens=48, chunk_overlap=8), _COUNTER, _LIMIT)


def one_input(data: bytes) -> None:
    if not data:
        return
    suffix = SUFFIXES[data[0] % len(SUFFIXES)]
    path = _WORK / f"input{suffix}"
    path.write_bytes(data[1:])
    try:
        pages = load_file(path, max_bytes=10_000_000, time_limit=20)
    except LoadError as exc:
        if not exc.reason.strip():
            raise AssertionError("a refusal without a reason") from None
        return
    for number, page in enumerate(pages, start=1):
        if page.page != number or "\x00" in page.text:
            raise AssertionError(f"malformed page {page.page}")
        page.text.encode("utf-8")
        for chunk in _CHUNKER.chunk(page):
            if page.text[chunk.start:chunk.end] != chunk.text:
                raise AssertionError("a chunk is not a slice of its page")


def _seed(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    made = write_pdf(_WORK / "seed.pdf", ["Harbour log. The ferry left at noon.", "Second page."])
    (corpus / "seed-fpdf").write_bytes(b"\x00" + made.read_bytes())
    (corpus / "seed-hand").write_bytes(b"\x00" + text_pdf(["Hello world", "Second page"]))
    (corpus / "seed-text").write_bytes(b"\x01" + "Café crème. Ünïcödé text.\n\nNew paragraph.".encode())
    (corpus / "seed-html").write_bytes(b"\x03<html><body><p>Hi <b>there</b></p><script>x()</script></body></html>")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120, help="total fuzzing time (default 120)")
    parser.add_argument("--corpus", type=Path, default=CACHE / "fuzz")
    parser.add_argument("--report", action="store_true", help="write the result to bench/results/fuzz_atheris.md")
    args, rest = parser.parse_known_args()
    if args.report:
        return _run_and_report(args)
    _seed(args.corpus)
    logging.disable(logging.CRITICAL)  # pypdf warns on every broken input
    atheris.Setup([sys.argv[0], str(args.corpus), f"-max_total_time={args.seconds}", "-rss_limit_mb=3072",
                   "-timeout=60", f"-artifact_prefix={args.corpus}/crash-", "-print_final_stats=1", *rest],
                  one_input)
    atheris.Fuzz()  # libFuzzer ends the process: "Done N runs in S second(s)" on success
    return 0


def _run_and_report(args: argparse.Namespace) -> int:
    # libFuzzer ends the process it runs in, so the fuzzing runs in a child and this one reports.
    started = time.time()
    result = run_module(__spec__.name, "--seconds", str(args.seconds), "--corpus", str(args.corpus),
                        capture_output=True, text=True)
    log = result.stderr.splitlines()
    done = next((line for line in reversed(log) if line.startswith("Done")), "no summary line")
    stats = [line for line in log if line.startswith("stat::")]
    crashes = sorted(p.name for p in args.corpus.glob("crash-*"))
    text = ("# atheris fuzzing of the loaders and the chunker\n\n"
            f"- command: `{command(__spec__.name, ['--seconds', str(args.seconds), '--report']).strip()}`\n"
            f"- date: {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}\n"
            f"- machine: {machine()}\n"
            f"- pypdf {pypdf.__version__}\n\n"
            f"Result: exit code {result.returncode}; {done}; crash inputs kept: {', '.join(crashes) or 'none'}.\n")
    if stats:
        text += "\n```\n" + "\n".join(stats) + "\n```\n"
    if result.returncode != 0:
        text += "\nLast lines of the log:\n\n```\n" + "\n".join(log[-40:]) + "\n```\n"
    write("fuzz_atheris", text.splitlines())
    print(text)
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())

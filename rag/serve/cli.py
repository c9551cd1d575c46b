"""The ``rag`` command: ingest, search, ask, eval, serve, docs, remove.

Library errors become one clear line on stderr and a non-zero exit; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import RagError
from rag.index import DEFAULT_FOLDER
from rag.serve.progress import StderrProgress
from rag.serve.terminal import safe_stdout, terminal_safe
from rag.settings import ANSWERERS, Settings

if TYPE_CHECKING:
    from rag.index import Index
    from rag.types import IngestReport

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SOME_FILES_FAILED = 3
"""``rag ingest`` finished and saved the index, but some files could not be indexed (listed on
stderr): distinct from 1 so a script can tell a partial ingest from one that saved nothing."""

ANSWERER_HELP = ("extractive (offline, the default) or llm (needs RAG_LLM_BASE_URL and RAG_LLM_MODEL); "
                 "default: $RAG_ANSWER_MODE")


def _default_index() -> str:
    return os.environ.get("RAG_INDEX", DEFAULT_FOLDER)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Ask questions of your own documents; every answer is backed by verbatim quotes.",
        epilog="Run 'rag VERB --help' for the options of each verb. Everything runs offline.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    def add_index(p: argparse.ArgumentParser) -> None:
        p.add_argument("--index", default=_default_index(), metavar="DIR",
                       help="index folder (default: %(default)s, or $RAG_INDEX)")
        p.add_argument("--collection", default=os.environ.get("RAG_COLLECTION") or None, metavar="NAME",
                       help="a named collection of the index folder (default: the folder's own index, "
                            "or $RAG_COLLECTION)")

    p = verbs.add_parser("ingest", help="index files and folders (incremental)",
                         description="Index PDF, Word, PowerPoint, Excel, CSV, EPUB, e-mail (.eml, .mbox), "
                                     "OpenDocument text, plain text, Markdown and HTML files. Re-running it reads only "
                                     "new or changed files and drops files deleted from the given folders; with "
                                     "--watch it keeps doing so as files are saved, renamed or deleted.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (folders are read recursively)")
    add_index(p)
    p.add_argument("--glob", default=None, help="only files matching this pattern in folders (e.g. '**/*.pdf')")
    p.add_argument("--rebuild", action="store_true", help="start the index afresh (needed after changing "
                                                          "chunking or embedding settings)")
    p.add_argument("--chunk-tokens", type=int, default=None, help="chunk size in tokens (default 160)")
    p.add_argument("--chunk-overlap", type=int, default=None, help="overlap between chunks in tokens (default 32)")
    p.add_argument("--backend", choices=["onnx", "onnx-int8", "torch"], default=None,
                   help="embedding backend: fp32 ONNX (default), int8 ONNX (faster, a little less "
                        "accurate) or fp32 torch (the same vectors as onnx)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another process writing the index (default: fail at once)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--watch", action="store_true", help="then keep the index in step with PATHs: files saved, "
                                                        "renamed or deleted are taken in within seconds (Ctrl+C stops)")

    p = verbs.add_parser("search", help="show the passages that best match a question",
                         description="Show the best passages for a question, each with its file, page, offsets "
                                     "and best-matching sentence.")
    p.add_argument("question")
    add_index(p)
    p.add_argument("-k", type=int, default=None, help="number of passages (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per hit per line")
    p.add_argument("--fusion", choices=["blend", "rrf", "dense", "bm25"], default=None,
                   help="how dense and BM25 results are combined (default: blend)")
    p.add_argument("--mmr", action="store_true", help="diversify the results (maximal marginal relevance)")
    p.add_argument("--source", action="append", default=None, metavar="FILE",
                   help="only search this file (path or name); repeatable")
    p.add_argument("--pages", default=None, metavar="A-B", help="only search this page range, e.g. 3-5")

    p = verbs.add_parser("ask", help="answer a question with verified quotes",
                         description="Answer a question from the indexed documents. The default answerer is "
                                     "extractive (no LLM, offline); every quote is checked verbatim against its "
                                     "page. If the documents do not answer it, it says so.")
    p.add_argument("question")
    add_index(p)
    p.add_argument("-k", type=int, default=None, help="passages to read (default 5)")
    p.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    p.add_argument("--answerer", "--mode", dest="mode", choices=ANSWERERS, default=None, metavar="NAME",
                   help=ANSWERER_HELP)
    p.add_argument("--source", action="append", default=None, metavar="FILE",
                   help="only read this file (path or name); repeatable")
    p.add_argument("--pages", default=None, metavar="A-B", help="only read this page range, e.g. 3-5")

    p = verbs.add_parser("chat", help="hold a conversation: follow-up questions see the earlier turns",
                         description="Ask questions one per line; a follow-up (\"What did she say ...?\") is "
                                     "searched with what the conversation was about. /new starts over, Ctrl-D "
                                     "leaves. With --json (or when stdin is not a terminal) each answer is one "
                                     "JSON line.")
    add_index(p)
    p.add_argument("-k", type=int, default=None, help="passages to read (default 5)")
    p.add_argument("--json", action="store_true", help="print each answer as one JSON object per line")
    p.add_argument("--answerer", "--mode", dest="mode", choices=ANSWERERS, default=None, metavar="NAME",
                   help=ANSWERER_HELP)

    p = verbs.add_parser("eval", help="run a question set and report retrieval and answer metrics",
                         description="Run a question set (JSON lines, a BEIR folder or a SQuAD JSON file) "
                                     "and report hit@k, recall@k, MRR, nDCG@10, exact match, F1, quote "
                                     "validity, abstention and latency.")
    p.add_argument("set", metavar="SET", help="question set: .jsonl file, BEIR folder, or SQuAD .json")
    add_index(p)
    p.add_argument("-k", type=int, default=None, help="passages per question (default 10)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--report", default=None, metavar="FILE.md", help="write a Markdown report with failures")
    p.add_argument("--fail-under", action="append", default=[], metavar="METRIC=VALUE",
                   help="exit non-zero when METRIC is below VALUE (repeatable), e.g. ndcg@10=0.5")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--fusion", choices=["blend", "rrf", "dense", "bm25"], default=None)
    p.add_argument("--half", choices=["report", "tune", "all"], default="report",
                   help="doc2dial: the half of the documents whose turns are asked (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = verbs.add_parser("serve", help="open the web chat",
                         description="Start the web chat (Gradio). It binds 127.0.0.1 unless told otherwise.")
    add_index(p)
    p.add_argument("--host", default=os.environ.get("RAG_HOST", "127.0.0.1"), help="default: %(default)s")
    p.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT", "7860")), help="default: %(default)s")
    p.add_argument("--corpus", action="append", default=None, metavar="PATH",
                   help="index this folder first (incremental) before serving; repeatable")
    p.add_argument("--watch", action="store_true", help="keep the --corpus folders in step while serving: files "
                                                        "saved, renamed or deleted are taken in within seconds")
    p.add_argument("--api-key", default=os.environ.get("RAG_API_KEY", ""), metavar="KEY",
                   help="require 'Authorization: Bearer KEY' on the OpenAI-compatible API under /v1 "
                        "(default: $RAG_API_KEY, or no key)")
    p.add_argument("--allow-host", action="append", default=None, metavar="NAME",
                   help="also answer requests addressed to this host name (loopback names and --host always "
                        "work; others are refused against DNS rebinding); repeatable, or $RAG_ALLOW_HOST "
                        "(comma-separated); '*' turns the check off behind a proxy that does it")
    p.add_argument("--answerer", dest="mode", choices=ANSWERERS, default=None, metavar="NAME",
                   help=ANSWERER_HELP + "; the page's and the API's default")

    p = verbs.add_parser("mcp", help="serve search, ask and list_documents as MCP tools (stdio)",
                         description="Serve the index to MCP clients (Claude Desktop, IDEs, agents) over stdio, "
                                     "or over streamable HTTP on 127.0.0.1 with --http. Needs: pip install "
                                     "'rag[mcp]'.")
    add_index(p)
    p.add_argument("--http", action="store_true", help="streamable HTTP on http://HOST:PORT/mcp instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="with --http (default: %(default)s)")
    p.add_argument("--port", type=int, default=8765, help="with --http (default: %(default)s)")

    p = verbs.add_parser("docs", help="list the indexed documents")
    add_index(p)
    p.add_argument("--json", action="store_true")

    p = verbs.add_parser("remove", help="remove documents from the index")
    p.add_argument("sources", nargs="+", metavar="FILE", help="path or file name of an indexed document")
    add_index(p)
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        _quiet_libraries()
    try:
        # Passages and file names can hold escape sequences: a terminal gets them stripped.
        with safe_stdout():
            return int(_VERBS[args.verb](_resolve_collection(args)) or 0)
    except RagError as exc:
        print(terminal_safe(f"rag {args.verb}: error: {exc}", sys.stderr), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"rag {args.verb}: interrupted", file=sys.stderr)
        return 130
    except (OSError, sqlite3.Error) as exc:
        # A full disk, a file size limit, a read-only folder: the index on disk is untouched
        # (saves are atomic), so one line saying what failed is all the user needs.
        print(f"rag {args.verb}: error: {exc.__class__.__name__}: {exc} (the saved index is unchanged)",
              file=sys.stderr)
        return EXIT_ERROR


def _resolve_collection(args: argparse.Namespace) -> argparse.Namespace:
    # A collection is just an index folder under the named one, so every verb that works on one
    # index works on a collection unchanged; the servers get the root and serve its collections.
    if getattr(args, "collection", None) and args.verb not in _SERVERS:
        # the CLI starts fast: the library loads only for the verb that needs it
        from rag.collection_paths import collection_folder

        args.index = str(collection_folder(args.index, args.collection))
    elif args.verb in _READERS:
        args.index = _only_collection(args.verb, args.index)
    elif args.verb in _SERVERS and not getattr(args, "collection", None) and not getattr(args, "corpus", None):
        args.collection = _served_collection(args.verb, args.index)
    return args


def _served_collection(verb: str, folder: str) -> str | None:
    """The collection a server shows first when the folder holds collections but no index of its own:
    ``demo`` when there (what ``make run`` serves), else the first by name; ``None`` otherwise.

    Without it, ``rag serve`` after ``make run`` would fill a third, default collection with the
    user guide again, and ``rag mcp``'s tools would find no index unless each call named one.
    """
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.collection_paths import DEMO_COLLECTION, has_index, list_collections

    names = list_collections(folder)
    if has_index(folder) or not names:
        return None
    chosen = DEMO_COLLECTION if DEMO_COLLECTION in names else names[0]
    others = [name for name in names if name != chosen]
    where = "are in the Collection menu" if verb == "serve" else "are asked by naming them in a tool's collection"
    print(f"rag {verb}: serving the collection {chosen!r} of {folder}"
          + (f"; the others ({', '.join(others)}) {where}" if others else ""), file=sys.stderr)
    return chosen


def _only_collection(verb: str, folder: str) -> str:
    """``folder``, or its one collection when the folder holds collections but no index of its own.

    ``make run`` fills the collection ``demo`` and the page uploads into ``my-documents``, so a
    plain ``rag ask`` in the project folder would otherwise find "no index" beside both.
    """
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.collection_paths import collection_folder, has_index, list_collections

    if has_index(folder):
        return folder
    names = list_collections(folder)
    if len(names) == 1:
        print(f"rag {verb}: using the collection {names[0]!r}, the only one in {folder}", file=sys.stderr)
        return str(collection_folder(folder, names[0]))
    if names:
        raise RagError(f"{folder} holds the collections {', '.join(names)} and no index of its own: "
                       f"name one with --collection NAME (e.g. rag {verb} --collection {names[0]} ...) "
                       f"or set RAG_COLLECTION")
    return folder


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ("sentence_transformers", "transformers", "bm25s", "httpx", "pypdf"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _settings(args: argparse.Namespace, **extra: Any):  # noqa: ANN202 - Settings
    from rag.settings import Settings
    from rag.store.snapshot import settings_from_manifest

    base = settings_from_manifest(Path(args.index).expanduser().resolve(), Settings.from_env())
    return base.replace(**{k: v for k, v in extra.items() if v is not None})


def _ingest(args: argparse.Namespace) -> int:
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.index import Index
    from rag.settings import Settings

    overrides = {"glob": args.glob, "chunk_tokens": args.chunk_tokens, "chunk_overlap": args.chunk_overlap,
                 "embed_backend": args.backend}
    if args.rebuild:
        settings = Settings.from_env(**overrides)
    else:
        settings = _settings(args, **overrides)
    progress = None if (args.no_progress or args.json) else StderrProgress()
    try:
        index = Index.build(args.paths, args.index, settings=settings, progress=progress, rebuild=args.rebuild,
                            wait=args.wait)
    finally:
        if progress is not None:
            progress.close()
    report = index.last_report
    assert report is not None
    if args.json:
        print(json.dumps({"index": str(index.folder), **report.to_dict()}))
    else:
        for failure in report.failed:
            print(terminal_safe(f"failed: {failure.source}: {failure.reason}", sys.stderr), file=sys.stderr)
        print(f"{index.folder}: {report.summary()}")
    if report.failed:
        partly = sum(1 for f in report.failed if f.partial)
        whole = len(report.failed) - partly
        said = [f"{n} file{'s' if n != 1 else ''} {what}" for n, what in
                ((whole, "could not be indexed"), (partly, "indexed only in part")) if n]
        print(f"rag ingest: {' and '.join(said)} (exit status {EXIT_SOME_FILES_FAILED})", file=sys.stderr)
        if not args.watch:
            return EXIT_SOME_FILES_FAILED
    if args.watch:
        return _watch(index, args.paths)
    return 0


def _watch(index: Index, paths: list[str]) -> int:
    """Keep ``index`` in step with ``paths`` until Ctrl+C, printing each update that changed something."""
    def said(report: IngestReport) -> None:
        if report.added or report.updated or report.removed or report.failed:
            stamp = time.strftime("%H:%M:%S")
            for failure in report.failed:
                print(terminal_safe(f"{stamp} failed: {failure.source}: {failure.reason}", sys.stderr),
                      file=sys.stderr, flush=True)
            print(f"{stamp} {report.summary()}", flush=True)

    watcher = index.watch(paths, on_update=said)
    print(f"watching {', '.join(paths)} (Ctrl+C to stop)", flush=True)
    try:
        while watcher.running:
            watcher.wait_for_update(watcher.updates + 1, timeout=1.0)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
    return 0


def _parse_pages(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    first, _, last = text.partition("-")
    try:
        a, b = int(first), int(last or first)
    except ValueError:
        raise RagError(f"--pages must look like 3-5 or 4, not {text!r}") from None
    if a < 1 or b < a:
        raise RagError(f"--pages must be a range of page numbers from 1, like 3-5, not {text!r}")
    return a, b


def _search(args: argparse.Namespace) -> int:
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.index import Index

    index = Index.open(args.index, _settings(args))
    overrides = {"fusion": args.fusion, "mmr": True if args.mmr else None}
    hits = index.search(args.question, args.k, sources=args.source, pages=_parse_pages(args.pages),
                        **{k: v for k, v in overrides.items() if v is not None})
    if args.json:
        for hit in hits:
            print(json.dumps(hit.to_dict(), ensure_ascii=False))
        return 0
    if not hits:
        print("No passage matches.")
    for hit in hits:
        ocr = " (OCR)" if hit.chunk.ocr else ""  # read off the page image: the words may be misread
        print(f"[{hit.rank}] {hit.name}, {hit.place}{ocr}, chars {hit.chunk.start}-{hit.chunk.end} "
              f"(score {hit.score:.3f})")
        print(f"    \"{hit.quote.text}\"")
        print(f"    {hit.source}")
    return 0


def _ask(args: argparse.Namespace) -> int:
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.index import Index

    index = Index.open(args.index, _settings(args))
    overrides = {"answer_mode": args.mode} if args.mode else {}
    answer = index.ask(args.question, args.k, sources=args.source, pages=_parse_pages(args.pages), **overrides)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
        return 0
    print(answer.text)
    for note in answer.notes:
        print(f"note: {note}")
    if answer.citations:
        print()
    for n, quote in enumerate(answer.citations, start=1):
        print(f"[{n}] {quote.name}, {quote.place}{' (OCR)' if quote.ocr else ''}: \"{quote.text}\"")
    if not answer.found and answer.hits:
        print("\nClosest passages:")
        for hit in answer.hits[:3]:
            print(f"  {hit.name}, {hit.place}: \"{hit.quote.text}\"")
    return 0


def _chat(args: argparse.Namespace) -> int:
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.index import Index

    index = Index.open(args.index, _settings(args))
    chat = index.chat(args.k, **({"answer_mode": args.mode} if args.mode else {}))
    interactive = sys.stdin.isatty() and not args.json
    if interactive:
        print("Ask a question (/new starts a new conversation, Ctrl-D leaves).")
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            break
        question = line.strip()
        if not question:
            continue
        if question in ("/new", "/reset"):
            chat.reset()
            if interactive:
                print("(new conversation)")
            continue
        try:
            answer = chat.ask(question)
        except RagError as exc:
            # One bad turn (an LLM that failed) ends neither the conversation nor the loop.
            print(terminal_safe(f"rag chat: error: {exc}", sys.stderr), file=sys.stderr)
            continue
        if not interactive:
            print(json.dumps(answer.to_dict(), ensure_ascii=False), flush=True)
            continue
        if answer.query:
            print(f"(searched: {answer.query})")
        print(answer.text)
        for n, quote in enumerate(answer.citations, start=1):
            print(f"[{n}] {quote.name}, {quote.place}: \"{' '.join(quote.text.split())}\"")
    return 0


def _eval(args: argparse.Namespace) -> int:
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.serve.eval_cli import run_cli

    args.default_index = _default_index()  # eval leaves the default folder alone (it has its own cache)
    return run_cli(args, _settings(args, fusion=args.fusion))


def _serve(args: argparse.Namespace) -> int:
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.serve.server import serve

    allow = args.allow_host if args.allow_host is not None else os.environ.get("RAG_ALLOW_HOST", "").split(",")
    if args.watch and not args.corpus:
        raise RagError("--watch keeps the --corpus folders in step: name them with --corpus PATH")
    if args.mode:
        _serve_with_answerer(args.mode)
    serve(index_folder=args.index, host=args.host, port=args.port, corpus=args.corpus, watch=args.watch,
          collection=args.collection, api_key=args.api_key or None,
          allow_hosts=[name for name in allow if name.strip()])
    return 0


def _serve_with_answerer(name: str) -> None:
    """Make ``name`` the answerer of every index the server opens: they all take their settings from
    the environment (collections, uploads), so the option is the variable, set for this process."""
    if not Settings.from_env(answer_mode=name).llm_configured and name == "llm":
        raise RagError("--answerer llm needs an endpoint: set RAG_LLM_BASE_URL (e.g. http://127.0.0.1:11434/v1) "
                       "and RAG_LLM_MODEL")
    os.environ["RAG_ANSWER_MODE"] = name


def _docs(args: argparse.Namespace) -> int:
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.file_types import page_word
    from rag.index import Index

    index = Index.open(args.index, _settings(args))
    docs = index.documents()
    if args.json:
        print(json.dumps([d.to_dict() for d in docs]))
        return 0
    for d in docs:
        print(f"{d.source}\t{d.pages} {page_word(d.source)}{'s' if d.pages != 1 else ''}\t{d.chunks} chunks")
    print(f"{len(docs)} documents, {sum(d.chunks for d in docs)} chunks")
    return 0


def _remove(args: argparse.Namespace) -> int:
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.index import Index

    index = Index.open(args.index, _settings(args))
    report = index.remove(args.sources, wait=args.wait)
    print(f"{index.folder}: {report.summary()}")
    return 0


def _mcp(args: argparse.Namespace) -> int:
    # the CLI starts fast: the library loads only for the verb that needs it
    from rag.serve.mcp_server import serve

    serve(args.index, args.collection, http=args.http, host=args.host, port=args.port)
    return 0


_SERVERS = ("serve", "mcp")
_READERS = ("search", "ask", "chat", "docs", "remove")
"""The verbs that read an existing index: without --collection, a folder of collections alone picks its one."""
_VERBS = {"ingest": _ingest, "search": _search, "ask": _ask, "chat": _chat, "eval": _eval, "serve": _serve, "docs": _docs,
          "remove": _remove, "mcp": _mcp}

if __name__ == "__main__":
    raise SystemExit(main())

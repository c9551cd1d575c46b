"""The `rag` command as a user drives it: output, JSON, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import copy_index, rag_serve

from rag import Index
from rag.collection_paths import COLLECTIONS, has_index
from rag.serve.cli import build_parser, main


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    (folder / "tides.txt").write_text("The tide tables are printed every Monday. High tide in Brest reached "
                                      "7.2 metres on 3 March. Harbour master Yannick Le Goff signs them.")
    (folder / "bees.md").write_text("# Bees\n\nA honey bee colony keeps one queen. Workers live about six weeks "
                                    "in summer.")
    index = tmp_path_factory.mktemp("idx")
    assert main(["ingest", str(folder), "--index", str(index), "--no-progress"]) == 0
    return index


def test_ingest_prints_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_text("Alpha beta gamma. Delta epsilon.")
    (tmp_path / "bad.txt").write_bytes(b"")
    # A file failed: the index is saved, and the exit status says that not everything made it in.
    assert main(["ingest", str(tmp_path), "--index", str(tmp_path / "idx"), "--no-progress"]) == 3
    out, err = capsys.readouterr()
    assert "added 1, updated 0, unchanged 0, removed 0, failed 1" in out
    assert "bad.txt" in err and "empty" in err
    assert "rag ingest: 1 file could not be indexed (exit status 3)" in err
    assert main(["ingest", str(tmp_path), "--index", str(tmp_path / "idx"), "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["unchanged"] == 1 and report["chunks_embedded"] == 0 and len(report["failed"]) == 1
    assert list(report) == ["index", "added", "updated", "unchanged", "removed", "failed", "skipped",
                            "chunks_embedded", "chunks_total", "seconds"]
    assert report["failed"][0]["source"].endswith("bad.txt") and set(report["failed"][0]) == {"source", "reason"}


def test_search_human_output(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "Who is the harbour master?", "--index", str(built), "-k", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[1] tides.txt, page 1, chars ")
    assert "Harbour master Yannick Le Goff signs them." in out


def test_search_json_lines(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "How long do worker bees live?", "--index", str(built), "--json", "-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    for key in ("source", "page", "start", "end", "score", "text", "quote", "quote_start", "quote_end"):
        assert key in first
    assert first["name"] == "bees.md" and "six weeks" in first["quote"]
    page_text = Path(first["source"]).read_text()
    assert page_text[first["quote_start"]:first["quote_end"]] == first["quote"]
    assert page_text[first["start"]:first["end"]] == first["text"]


def test_docs_lists_documents(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs", "--index", str(built), "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert sorted(Path(d["source"]).name for d in docs) == sorted(d["name"] for d in docs) == ["bees.md", "tides.txt"]
    assert set(docs[0]) == {"source", "name", "pages", "unit", "chunks", "size"} and docs[0]["unit"] == "page"


@pytest.mark.parametrize("argv, message", [
    (["search", "x", "--index", "{tmp}/none"], "no index in"),
    (["search", "x", "--index", "{built}", "--pages", "5-2"], "--pages"),
    (["search", "x", "--index", "{built}", "-k", "0"], "rag search: error: k must be a whole number of at least 1, not 0"),
    (["ask", "x", "--index", "{built}", "-k", "-2"], "rag ask: error: k must be a whole number of at least 1, not -2"),
    (["chat", "--index", "{built}", "-k", "0"], "rag chat: error: k must be a whole number of at least 1, not 0"),
    (["eval", "{tmp}/set.jsonl", "--index", "{built}", "-k", "0"], "rag eval: error: k must be a whole number"),
    (["ingest", "{tmp}/missing.pdf", "--index", "{tmp}/i2", "--chunk-tokens", "4"], "chunk_tokens must be"),
])
def test_errors_are_one_line_and_exit_non_zero(argv: list[str], message: str, built: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(tmp=tmp_path, built=built) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_every_verb_has_help() -> None:
    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(verbs) == {"ingest", "search", "ask", "chat", "eval", "serve", "docs", "remove", "mcp"}
    for verb in verbs:
        result = subprocess.run([sys.executable, "-m", "rag.serve.cli", verb, "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "usage: rag " + verb in result.stdout


def test_console_script_is_installed() -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "rag"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "ingest" in result.stdout


def test_escape_sequences_from_documents_never_reach_the_terminal(tmp_path: Path) -> None:
    # A passage and a file name carrying "clear screen", "set window title" and an 8-bit CSI:
    # printed raw (before), they acted on the user's terminal.
    import os
    import pty

    folder = tmp_path / "docs"
    folder.mkdir()
    evil = "\x1b[2J\x1b]0;owned\x07\x9b31m"
    (folder / "report\x1b[1m.txt").write_text(f"The harbour master {evil}signs the tide tables every Monday.")
    index = tmp_path / "idx"
    assert main(["ingest", str(folder), "--index", str(index), "--no-progress"]) == 0
    rag = Path(sys.executable).with_name("rag")
    for argv in (["search", "Who signs the tide tables?", "-k", "1"], ["ask", "Who signs the tide tables?"]):
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run([str(rag), *argv, "--index", str(index)], stdout=follower, stderr=follower,
                                  timeout=300)
            os.close(follower)
            follower = -1
            seen = b""
            while True:
                try:
                    block = os.read(leader, 65536)
                except OSError:
                    break
                if not block:
                    break
                seen += block
        finally:
            os.close(leader)
            if follower >= 0:
                os.close(follower)
        assert proc.returncode == 0, seen
        text = seen.decode("utf-8", "replace")
        assert "signs the tide tables" in text and "report" in text
        assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text
        assert "owned" not in text  # a sequence goes whole, the title it would set with it
    # Piped (not a terminal), --json keeps the text exactly, escaped by JSON itself.
    out = subprocess.run([str(rag), "search", "Who signs the tide tables?", "-k", "1", "--json", "--index",
                          str(index)], capture_output=True, text=True, timeout=300).stdout
    assert json.loads(out.splitlines()[0])["text"].count("\x1b") == 2


def test_a_folder_of_collections_alone_uses_its_one_or_names_them(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # As `make run` leaves the project folder: index/ holds the collection "demo" and no index of its own.
    (tmp_path / "guide.md").write_text("# Guide\n\nThe upload button sits below the chat. Files go to my-documents.")
    (tmp_path / "tides.txt").write_text("High tide in Brest reached 7.2 metres on 3 March.")
    index = tmp_path / "index"
    assert main(["ingest", str(tmp_path / "guide.md"), "--index", str(index), "--collection", "demo",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["search", "Where is the upload button?", "--index", str(index), "-k", "1"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("[1] guide.md, page 1") and "using the collection 'demo', the only one in" in err

    assert main(["ingest", str(tmp_path / "tides.txt"), "--index", str(index), "--collection", "my-documents",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["ask", "How high was the tide in Brest?", "--index", str(index)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"rag ask: error: {index} holds the collections demo, my-documents and no index of its own: "
                   f"name one with --collection NAME (e.g. rag ask --collection demo ...) or set RAG_COLLECTION")
    assert main(["ask", "How high was the tide in Brest?", "--index", str(index), "--collection", "my-documents"]) == 0
    assert "7.2 metres" in capsys.readouterr().out


def test_rag_serve_in_a_folder_of_collections_serves_the_demo_and_makes_no_other(
        seed_index: Index, tmp_path: Path) -> None:
    # After `make run` the project's index/ holds demo and my-documents and no index of its own: a plain
    # `rag serve` there serves demo (as make run does) instead of filling a third collection with the guide.
    index = tmp_path / "index"
    for name in ("demo", "my-documents"):
        copy_index(seed_index, index / COLLECTIONS / name)
    with rag_serve(tmp_path, "--index", str(index)) as url:
        models = httpx.get(f"{url}v1/models", timeout=60).json()["data"]
    assert [m["id"] for m in models] == ["demo", "my-documents"] and not has_index(index)
    said = (tmp_path / "serve.log").read_text()
    assert f"rag serve: serving the collection 'demo' of {index}; the others (my-documents) are in the Collection menu" in said

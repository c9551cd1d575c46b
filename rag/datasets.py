"""Question sets: our JSON-lines format, and adapters that read BEIR folders and SQuAD JSON directly.

Every adapter returns a ``QuestionSet``: the documents to index (files on disk) and the
questions with what a correct result looks like. Public data sets are turned into plain text
files in a cache folder, one per BEIR document or SQuAD article, so they go through the same
loader, chunker and index as a user's own files.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RagError


@dataclass(frozen=True)
class EvalQuestion:
    """One question and what a right result looks like. Every field but ``question`` is optional."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    """Acceptable answer strings (any one counts)."""
    sources: tuple[str, ...] = ()
    """File names (or paths) of the documents that answer it."""
    pages: tuple[int, ...] = ()
    """Pages (1-based) of ``sources[0]`` that hold the evidence."""
    unanswerable: bool = False
    """True when the documents do not answer it: the right result is an abstention."""
    relevance: dict[str, int] = field(default_factory=dict)
    """Graded relevance by document name (BEIR qrels): for nDCG."""
    spans: tuple[tuple[str, int, int], ...] = ()
    """(file name, start, end) character spans that hold the answer, when known (SQuAD)."""


@dataclass(frozen=True)
class QuestionSet:
    name: str
    corpus: tuple[Path, ...]
    """Files or folders to index for this set."""
    questions: tuple[EvalQuestion, ...]
    description: str = ""


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:80] or "doc"
    return name


def _cache_folder(kind: str, source: Path, cache_dir: Path | None) -> Path:
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:10]
    base = cache_dir or Path.home() / ".cache" / "rag" / "datasets"
    return base / f"{kind}-{_safe_name(source.name)}-{digest}"


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)


def load_squad(path: str | Path, cache_dir: Path | None = None) -> QuestionSet:
    """A SQuAD (1.1 or 2.0) JSON file: one text document per article, paragraphs separated by a
    blank line; every question with its gold answers, answer spans and answerability.

    Example:
        >>> qs = load_squad("../shared/data/squad2-dev/squad2-dev-half-a.json")
        >>> qs.questions[0].sources
        ('Normans.txt',)
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(f"{path}: not a readable SQuAD JSON file ({exc})") from None
    folder = _cache_folder("squad", path, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files, questions = [], []
    for article in data:
        name = _safe_name(article["title"]) + ".txt"
        parts, offset = [], 0
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
                spans = tuple(dict.fromkeys(
                    (name, offset + a["answer_start"], offset + a["answer_start"] + len(a["text"]))
                    for a in qa.get("answers", [])))
                questions.append(EvalQuestion(
                    id=qa["id"], question=qa["question"], answers=answers, sources=(name,),
                    pages=(1,), unanswerable=bool(qa.get("is_impossible", False)) or not answers, spans=spans))
            parts.append(context)
            offset += len(context) + 2
        file = folder / name
        _write_if_changed(file, "\n\n".join(parts))
        files.append(file)
    return QuestionSet(name=path.stem, corpus=tuple(files), questions=tuple(questions),
                       description=f"SQuAD file {path.name}: {len(files)} articles, {len(questions)} questions")


def load_beir(folder: str | Path, split: str = "test", cache_dir: Path | None = None) -> QuestionSet:
    """A BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv): one text file per corpus
    document (title, blank line, text), named by its id; graded relevance from the qrels.

    Example:
        >>> qs = load_beir("../shared/data/beir-mini/msmarco")
        >>> len(qs.questions) > 0
        True
    """
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for needed in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
        if not needed.exists():
            raise RagError(f"{folder}: not a BEIR folder ({needed.name} is missing)")
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines()):
        cols = line.split("\t")
        if n == 0 and not cols[-1].strip().lstrip("-").isdigit():
            continue  # header
        if len(cols) >= 3 and int(cols[2]) > 0:
            qrels.setdefault(cols[0], {})[doc_file_name(cols[1])] = int(cols[2])
    out = _cache_folder("beir", folder, cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            doc = json.loads(line)
            title, text = (doc.get("title") or "").strip(), (doc.get("text") or "").strip()
            body = f"{title}\n\n{text}" if title else text
            if not body:
                continue
            file = out / doc_file_name(str(doc["_id"]))
            _write_if_changed(file, body)
            files.append(file)
    questions = []
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            query = json.loads(line)
            qid = str(query["_id"])
            if qid in qrels:
                questions.append(EvalQuestion(id=qid, question=query["text"], relevance=qrels[qid],
                                              sources=tuple(qrels[qid])))
    return QuestionSet(name=folder.name, corpus=(out,), questions=tuple(questions),
                       description=f"BEIR {folder.name}: {len(files)} documents, {len(questions)} queries")


def doc_file_name(doc_id: str) -> str:
    """File name of a BEIR document: its id made safe, plus a short hash so ids never collide."""
    return f"{_safe_name(doc_id)}-{hashlib.sha1(doc_id.encode()).hexdigest()[:6]}.txt"

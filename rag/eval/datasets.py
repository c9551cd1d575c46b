"""Question sets: our JSON-lines format, and adapters that read BEIR folders, SQuAD JSON,
FinanceBench, doc2dial and MTRAG folders directly.

Every adapter returns a ``QuestionSet``: the documents to index (files on disk) and the
questions with what a correct result looks like. Public data sets are turned into plain text
files in a cache folder, one per BEIR document or SQuAD article, so they go through the same
loader, chunker and index as a user's own files. ``load_question_set`` tells the three apart by
their shape. The JSON-lines format is documented in ``eval_questions/README.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import CorpusMissingError, RagError
from rag.types import ANSWER_KINDS, NOT_FOUND


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
    history: tuple[tuple[str, str], ...] = ()
    """Earlier turns of the conversation, oldest first, as (role, content): a follow-up when set."""
    reference: tuple[str, ...] = ()
    """Long reference answers (any one counts): the answer text is scored against them (token F1, ROUGE-L)."""
    kind: str = ""
    """The kind of answer the question wants (one of ``rag.types.ANSWER_KINDS``), when labelled."""
    labels: tuple[str, ...] = ()
    """The set's own question types (MTRAG's ``question_type``): the answer scores are broken down by them."""
    responses: dict[str, str] = field(default_factory=dict)
    """Other systems' answers to the same question, by system name (MTRAG's GPT-4o and Llama
    responses): scored against ``reference`` beside ours."""

    def messages(self) -> list[dict[str, str]]:
        """``history`` as the OpenAI-style messages ``Index.ask(history=...)`` takes."""
        return [{"role": role, "content": content} for role, content in self.history]


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
    blank line; every question with its gold answers, answer spans and answerability. Every
    SQuAD answer is a short span, so every question's expected kind is "fact".

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
                    pages=(1,), unanswerable=bool(qa.get("is_impossible", False)) or not answers, spans=spans,
                    kind="fact"))
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
            body = "\n\n".join(part for part in (title, text) if part)
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


def load_financebench(folder: str | Path) -> QuestionSet:
    """A FinanceBench folder (``questions.jsonl`` and ``pdfs/``): the cited filings are indexed as
    they are, and each question is judged by the page that holds its evidence.

    FinanceBench answers are written by analysts ("$1577.00" for a table cell reading 1,577),
    rarely words of the filing, so they are not asked for: a retrieved passage is right when it
    comes from the question's filing and from one of its evidence pages (the record's
    ``evidence_page_num`` is 0-based; pages here are 1-based, as in ``Quote.page``).

    Example:
        >>> qs = load_financebench("../shared/data/financebench")
        >>> qs.questions[0].sources, qs.questions[0].pages
        (('3M_2018_10K.pdf',), (60,))
    """
    folder = Path(folder)
    records_path, pdfs = folder / "questions.jsonl", folder / "pdfs"
    if not records_path.exists() or not pdfs.is_dir():
        raise RagError(f"{folder}: not a FinanceBench folder (questions.jsonl and pdfs/ are needed)")
    questions, files = [], {}
    for n, line in enumerate(records_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            doc = f"{record['doc_name']}.pdf"
            pages = sorted({int(e["evidence_page_num"]) + 1 for e in record.get("evidence", [])
                            if e.get("doc_name", record["doc_name"]) == record["doc_name"]})
            question = EvalQuestion(id=str(record.get("financebench_id", n)), question=record["question"],
                                    sources=(doc,), pages=tuple(pages))
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{records_path}, line {n}: not a FinanceBench record ({exc})") from None
        if not (pdfs / doc).exists():
            raise CorpusMissingError(f"{records_path}, line {n}: {pdfs / doc} is missing")
        files[doc] = pdfs / doc
        questions.append(question)
    return QuestionSet(name=folder.name, corpus=tuple(files.values()), questions=tuple(questions),
                       description=f"FinanceBench {folder.name}: {len(files)} filings (PDF), {len(questions)} questions "
                                   "judged by evidence page")


DOC2DIAL_HALVES = ("tune", "report")


def doc2dial_half(file_name: str) -> str:
    """Which half of doc2dial-a a document's turns belong to: "tune" (crc32 of the file name even),
    on which the conversation rules were chosen, or "report" (odd), kept for reporting.

    Example:
        >>> doc2dial_half(doc_file_name("About problem driver restrictions#3_0"))
        'report'
    """
    return "tune" if zlib.crc32(file_name.encode()) % 2 == 0 else "report"


def load_doc2dial(folder: str | Path, cache_dir: Path | None = None, limit: int | None = None,
                  half: str | None = None) -> QuestionSet:
    """doc2dial in its DialDoc21 reading form (``doc2dial-a.documents.jsonl`` and
    ``doc2dial-a.questions.jsonl``): one text file per document; each user turn a question with the
    turns before it as history, judged by the grounding span the agent answered from, which is
    also its reference answer.

    ``half`` keeps the turns of one half of the documents (``doc2dial_half``); every document is
    indexed all the same, so the search is as hard as over the whole set.

    Example:
        >>> qs = load_doc2dial("../shared/data/conversation")
        >>> sum(1 for q in qs.questions if q.history) > 1000
        True
    """
    folder = Path(folder)
    docs_path = next(iter(sorted(folder.glob("doc2dial*.documents.jsonl"))), None)
    turns_path = next(iter(sorted(folder.glob("doc2dial*.questions.jsonl"))), None)
    if docs_path is None or turns_path is None:
        raise RagError(f"{folder}: not a doc2dial folder (doc2dial*.documents.jsonl and "
                       "doc2dial*.questions.jsonl are needed)")
    out_dir = _cache_folder("doc2dial", docs_path, cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    files = []
    for line in docs_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            name = doc_file_name(record["title"])
            names[record["title"]] = name
            _write_if_changed(out_dir / name, record["text"])
            files.append(out_dir / name)
    questions = []
    for n, line in enumerate(turns_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            name = names[record["title"]]
            start = int(record["answer_start"])
            history = tuple((t["role"], t["text"]) for t in record.get("history", []))
            if half is not None and doc2dial_half(name) != half:
                continue
            questions.append(EvalQuestion(id=str(record.get("id", n)), question=record["question"],
                                          sources=(name,), spans=((name, start, start + len(record["answer"])),),
                                          history=history, reference=(record["answer"],)))
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{turns_path}, line {n}: not a doc2dial turn ({exc})") from None
        if limit and len(questions) >= limit:
            break
    which = f", the {half} half's turns" if half else ""
    return QuestionSet(name=f"doc2dial-{half}" if half else "doc2dial", corpus=tuple(files),
                       questions=tuple(questions),
                       description=f"doc2dial: {len(files)} documents{which}: {len(questions)} user turns "
                                   f"({sum(1 for q in questions if q.history)} follow-ups)")


MTRAG_KINDS = {"Summarization": "summary", "How-To": "procedure", "Troubleshooting": "procedure",
               "Comparative": "comparison", "Keyword": "keyword", "Explanation": "explanation",
               "Opinion": "explanation", "Factoid": "fact"}
"""MTRAG's question types as our answer kinds, most specific first: a task labelled with several
takes the first of its types in this order (["Comparative", "Factoid"] -> comparison). An opinion
question is answered by the passages' reasons, so an explanation; troubleshooting by steps.
"Composite" (several questions in one) and "Non-Question" (a statement) say nothing of the answer's
form: a task with only those has no expected kind and is left out of kind accuracy."""

MTRAG_ANSWERABLE = ("ANSWERABLE", "PARTIAL")
MTRAG_HALVES = ("tune", "report")


def mtrag_half(task_id: str) -> str:
    """Which half of an MTRAG file a task belongs to, by its conversation (the part of the id
    before ``<::>``): "tune" (md5 of "5" and the conversation even), on which answer rules may be
    chosen, or "report" (odd), kept for reporting. The salt splits the human-evaluated subset's
    20 conversations 79 / 78 tasks with every collection on both sides.

    Example:
        >>> mtrag_half("f0d2873b877409f61da7dbdddd22d279<::>1")
        'report'
    """
    conversation = task_id.split("<::>")[0]
    return "tune" if int(hashlib.md5(("5" + conversation).encode()).hexdigest(), 16) % 2 == 0 else "report"


def mtrag_kind(question_types: Sequence[str]) -> str:
    """The answer kind an MTRAG task wants, from its question types (``MTRAG_KINDS``); "" when none.

    Example:
        >>> mtrag_kind(["Comparative", "Factoid"]), mtrag_kind(["Composite"])
        ('comparison', '')
    """
    return next((kind for name, kind in MTRAG_KINDS.items() if name in question_types), "")


def load_mtrag(folder: str | Path, cache_dir: Path | None = None, half: str | None = None) -> QuestionSet:
    """An MTRAG folder (``tasks.jsonl`` and ``documents.jsonl``, as in
    ``../shared/data/conversation/mtrag-human-eval``): one text file per passage, all indexed
    together; each task's last user turn asked with the earlier turns as history.

    Answerable and partly answerable tasks are scored against the human-checked ``reference`` and
    judged for retrieval by their ``context_ids``; unanswerable ones are right when declined;
    "conversational" turns ("Thank you!") ask nothing and are left out. The models' ``responses``
    are kept to be scored beside ours. ``half`` keeps one half of the conversations (``mtrag_half``);
    every passage is indexed all the same.

    Example:
        >>> qs = load_mtrag("../shared/data/conversation/mtrag-human-eval")
        >>> sum(1 for q in qs.questions if q.reference), sum(1 for q in qs.questions if q.unanswerable)
        (150, 7)
    """
    folder = Path(folder)
    docs_path, tasks_path = folder / "documents.jsonl", folder / "tasks.jsonl"
    if not docs_path.exists() or not tasks_path.exists():
        raise RagError(f"{folder}: not an MTRAG folder (tasks.jsonl and documents.jsonl are needed)")
    out_dir = _cache_folder("mtrag", folder, cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for n, line in enumerate(docs_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            file = out_dir / doc_file_name(str(record["document_id"]))
            text = str(record["text"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{docs_path}, line {n}: not an MTRAG passage ({exc})") from None
        if text.strip():
            _write_if_changed(file, text)
            files.append(file)
    questions, skipped = [], 0
    for n, line in enumerate(tasks_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            answerability = record["answerability"]
            turns = [(str(t["role"]), str(t["content"])) for t in record["turns"]]
            if not turns or turns[-1][0] != "user":
                raise ValueError("the last turn is not the user's")
            types = tuple(str(t) for t in record.get("question_type", []))
            answerable = answerability in MTRAG_ANSWERABLE
            if not answerable and answerability != "UNANSWERABLE":
                skipped += 1
                continue
            if half is not None and mtrag_half(str(record["task_id"])) != half:
                continue
            questions.append(EvalQuestion(
                id=str(record["task_id"]), question=turns[-1][1], history=tuple(turns[:-1]),
                unanswerable=not answerable, labels=types, kind=mtrag_kind(types),
                sources=tuple(doc_file_name(str(c)) for c in record.get("context_ids", [])) if answerable else (),
                reference=(str(record["reference"]),) if answerable else (),
                responses={str(k): str(v) for k, v in (record.get("responses") or {}).items()}))
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{tasks_path}, line {n}: not an MTRAG task ({exc})") from None
    answered = sum(1 for q in questions if not q.unanswerable)
    return QuestionSet(name=folder.name + (f"-{half}" if half else ""), corpus=(out_dir,), questions=tuple(questions),
                       description=f"MTRAG {folder.name}{f' ({half} half)' if half else ''}: {len(files)} passages, "
                                   f"{answered} answerable tasks, "
                                   f"{len(questions) - answered} unanswerable ({skipped} conversational turns "
                                   "left out); each task's last turn asked with the earlier turns as history")


def doc_file_name(doc_id: str) -> str:
    """File name of a BEIR document: its id made safe, plus a short hash so ids never collide."""
    return f"{_safe_name(doc_id)}-{hashlib.sha1(doc_id.encode()).hexdigest()[:6]}.txt"


def load_question_set(path: str | Path, cache_dir: Path | None = None, half: str | None = "report") -> QuestionSet:
    """Any question set, told apart by its shape: a BEIR, FinanceBench, doc2dial or MTRAG folder, a
    SQuAD JSON file or our JSON lines. ``half`` is the half of doc2dial's turns to keep (default
    "report", the one nothing was tuned on; None for all).

    Example:
        >>> qs = load_question_set("eval_questions/docs.jsonl")
        >>> qs.corpus[0].name, len(qs.questions) > 10
        ('docs', True)
    """
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / "corpus.jsonl").exists() and (path / "queries.jsonl").exists():
            return load_beir(path, cache_dir=cache_dir)
        if (path / "questions.jsonl").exists() and (path / "pdfs").is_dir():
            return load_financebench(path)
        if any(path.glob("doc2dial*.questions.jsonl")):
            return load_doc2dial(path, cache_dir=cache_dir, half=half)
        if (path / "tasks.jsonl").exists() and (path / "documents.jsonl").exists():
            return load_mtrag(path, cache_dir=cache_dir)
        raise RagError(f"{path}: a folder question set must be a BEIR folder "
                       "(corpus.jsonl, queries.jsonl, qrels/test.tsv), a FinanceBench folder "
                       "(questions.jsonl, pdfs/), a doc2dial folder (doc2dial*.questions.jsonl) or an "
                       "MTRAG folder (tasks.jsonl, documents.jsonl)")
    if not path.exists():
        raise RagError(f"{path}: no such question set")
    if path.suffix == ".json":
        return load_squad(path, cache_dir=cache_dir)
    return load_jsonl(path)


_QUESTION_KEYS = {"id", "question", "answers", "source", "sources", "page", "pages", "unanswerable", "relevance",
                  "reference", "kind", "note"}
_CONVERSATION_KEYS = {"id", "turns", "note"}
_HEADER_KEYS = {"corpus", "description", "name"}


def load_jsonl(path: str | Path, require_corpus: bool = True) -> QuestionSet:
    """Our JSON-lines set: an optional header line naming the corpus, then one question per line.

    Corpus paths in the header are relative to the set file. With ``require_corpus``, a corpus
    path that does not exist raises ``CorpusMissingError`` naming it.

    Example:
        >>> qs = load_jsonl("eval_questions/seed.jsonl")   # corpus: ../../shared/seeds
        >>> qs.questions[0].question
        'Who called for UN visits?'
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"{path}: cannot read the question set ({exc})") from None
    header: dict[str, Any] = {}
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise RagError(f"{where}: not a JSON object ({exc})") from None
        if not isinstance(item, dict):
            raise RagError(f"{where}: each line must be a JSON object")
        if "turns" in item:
            _check_keys(item, _CONVERSATION_KEYS, where)
            for turn in _conversation(item, where, default_id=f"{path.stem}-{number}"):
                if turn.id in seen:
                    raise RagError(f"{where}: the id {turn.id!r} is used twice")
                seen.add(turn.id)
                questions.append(turn)
            continue
        if "question" not in item:
            if questions or header:
                raise RagError(f"{where}: a question line needs a \"question\"")
            _check_keys(item, _HEADER_KEYS, where)
            header = item
            continue
        _check_keys(item, _QUESTION_KEYS, where)
        question = _question(item, where, default_id=f"{path.stem}-{number}")
        if question.id in seen:
            raise RagError(f"{where}: the id {question.id!r} is used twice")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise RagError(f"{path}: the set holds no questions")
    corpus = tuple((path.parent / p).resolve() for p in _strings(header.get("corpus"), f"{path}: corpus"))
    if require_corpus:
        for raw, resolved in zip(_strings(header.get("corpus"), ""), corpus, strict=True):
            if not resolved.exists():
                raise CorpusMissingError(f"{path}: the corpus {raw!r} of this set ({resolved}) does not exist "
                                         "on this machine")
    return QuestionSet(name=str(header.get("name") or path.stem), corpus=corpus, questions=tuple(questions),
                       description=str(header.get("description", "")))


def _check_keys(item: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise RagError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise RagError(f"{where}: must be a string or a list of strings")


def _conversation(item: dict[str, Any], where: str, default_id: str) -> list[EvalQuestion]:
    """A ``"turns": [...]`` line: each turn a question of its own, with the turns before it as history.

    The history holds each earlier question and, as the assistant's reply, its first expected
    answer (else its reference answer, or the not-found text for an unanswerable turn): the
    conversation as it should have gone.
    """
    turns = item["turns"]
    if not isinstance(turns, list) or not turns or not all(isinstance(t, dict) for t in turns):
        raise RagError(f"{where}: \"turns\" must be a non-empty list of question objects")
    base = str(item.get("id", default_id))
    out: list[EvalQuestion] = []
    history: list[tuple[str, str]] = []
    for n, turn in enumerate(turns, start=1):
        _check_keys(turn, _QUESTION_KEYS, f"{where}, turn {n}")
        if "question" not in turn:
            raise RagError(f"{where}, turn {n}: a turn needs a \"question\"")
        q = _question(turn, f"{where}, turn {n}", default_id=f"{base}-t{n}")
        out.append(dataclasses.replace(q, history=tuple(history)))
        reply = q.answers[0] if q.answers else q.reference[0] if q.reference else NOT_FOUND
        history += [("user", q.question), ("assistant", reply)]
    return out


def _question(item: dict[str, Any], where: str, default_id: str) -> EvalQuestion:
    text = item["question"]
    if not isinstance(text, str) or not text.strip():
        raise RagError(f"{where}: \"question\" must be a non-empty string")
    answers = _strings(item.get("answers"), f"{where}: answers")
    sources = _strings(item.get("sources", item.get("source")), f"{where}: source")
    pages_raw = item.get("pages", item.get("page"))
    pages_list = [] if pages_raw is None else pages_raw if isinstance(pages_raw, list) else [pages_raw]
    if not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in pages_list):
        raise RagError(f"{where}: page must be a page number from 1, or a list of them")
    unanswerable = item.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise RagError(f"{where}: unanswerable must be true or false")
    reference = _strings(item.get("reference"), f"{where}: reference")
    if unanswerable and (answers or sources or reference):
        raise RagError(f"{where}: an unanswerable question cannot have answers, a reference or a source")
    kind = item.get("kind", "")
    if kind and kind not in ANSWER_KINDS:
        raise RagError(f"{where}: kind must be one of {', '.join(ANSWER_KINDS)}, not {kind!r}")
    relevance = item.get("relevance", {})
    if not (isinstance(relevance, dict) and all(isinstance(v, int) for v in relevance.values())):
        raise RagError(f"{where}: relevance must map document names to integer grades")
    return EvalQuestion(id=str(item.get("id", default_id)), question=text.strip(), answers=answers,
                        sources=sources, pages=tuple(pages_list), unanswerable=unanswerable,
                        relevance={str(k): v for k, v in relevance.items() if v > 0}, reference=reference,
                        kind=str(kind))

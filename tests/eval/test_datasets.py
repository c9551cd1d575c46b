"""Question sets: our JSON-lines format, and the BEIR and SQuAD adapters on tiny and real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, shared_path, write_pdf

from rag import CorpusMissingError, Index, RagError
from rag.eval.datasets import (
    doc_file_name,
    load_beir,
    load_financebench,
    load_jsonl,
    load_question_set,
)
from rag.eval.metrics import contains_answer
from rag.ingest.load import find_files, load_file


def write_lines(path: Path, *items: object) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def test_jsonl_header_fields_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "sets").mkdir()
    path = write_lines(
        tmp_path / "sets" / "mine.jsonl",
        {"corpus": ["../corpus"], "description": "my notes"},
        {"id": "q1", "question": " Who signs the tide tables? ", "answers": ["Yannick Le Goff"],
         "source": "tides.txt", "page": 1},
        {"question": "When is the festival?", "answers": "in May", "sources": ["a.pdf", "b.pdf"], "pages": [2, 3]},
        {"id": "q3", "question": "What is the capital of Mars?", "unanswerable": True, "note": "trap"},
    )
    qs = load_jsonl(path)
    assert qs.name == "mine" and qs.description == "my notes"
    assert qs.corpus == ((tmp_path / "corpus").resolve(),)
    first, second, third = qs.questions
    assert (first.id, first.question, first.answers, first.sources, first.pages) == (
        "q1", "Who signs the tide tables?", ("Yannick Le Goff",), ("tides.txt",), (1,))
    assert second.id == "mine-3" and second.answers == ("in May",) and second.pages == (2, 3)
    assert second.sources == ("a.pdf", "b.pdf") and not second.unanswerable
    assert third.unanswerable and third.answers == ()


@pytest.mark.parametrize(("line", "message"), [
    ({"question": "Q?", "answer": ["x"]}, "unknown field.*answer"),
    ({"question": ""}, "non-empty string"),
    ({"question": "Q?", "page": 0}, "page number from 1"),
    ({"question": "Q?", "page": "2"}, "page number from 1"),
    ({"question": "Q?", "unanswerable": "yes"}, "true or false"),
    ({"question": "Q?", "unanswerable": True, "answers": ["x"]}, "cannot have answers"),
    ({"question": "Q?", "answers": [1]}, "string or a list of strings"),
    ({"question": "Q?", "relevance": {"a.txt": "high"}}, "integer grades"),
])
def test_jsonl_mistakes_name_the_line(tmp_path: Path, line: dict, message: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", {"question": "Fine?"}, line)
    with pytest.raises(RagError, match=rf"bad.jsonl:2: .*{message}"):
        load_jsonl(path)


def test_jsonl_rejects_duplicates_empties_and_late_headers(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="used twice"):
        load_jsonl(write_lines(tmp_path / "a.jsonl", {"id": "x", "question": "A?"}, {"id": "x", "question": "B?"}))
    with pytest.raises(RagError, match="no questions"):
        load_jsonl(write_lines(tmp_path / "b.jsonl", {"corpus": "."}))
    with pytest.raises(RagError, match=r"c.jsonl:2: a question line needs"):
        load_jsonl(write_lines(tmp_path / "c.jsonl", {"question": "A?"}, {"corpus": "."}))
    (tmp_path / "d.jsonl").write_text('{"question": "A?"}\nnot json\n', encoding="utf-8")
    with pytest.raises(RagError, match=r"d.jsonl:2: not a JSON object"):
        load_jsonl(tmp_path / "d.jsonl")


def test_missing_corpus_is_named(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.jsonl", {"corpus": ["../nowhere"]}, {"question": "A?"})
    with pytest.raises(CorpusMissingError, match=r"'../nowhere'.*does not exist"):
        load_jsonl(path)
    assert load_jsonl(path, require_corpus=False).corpus == ((tmp_path / "../nowhere").resolve(),)


def make_beir(folder: Path) -> Path:
    folder.mkdir()
    write_lines(folder / "corpus.jsonl",
                {"_id": "d1", "title": "Tides", "text": "High tide in Brest reached 7.2 metres."},
                {"_id": "d/2", "title": "", "text": "A honey bee colony keeps one queen."},
                {"_id": "d_2", "title": "Empty", "text": ""},
                {"_id": "d4", "title": "", "text": "   "})
    write_lines(folder / "queries.jsonl", {"_id": "q1", "text": "How high was the tide?"},
                {"_id": "q2", "text": "How many queens?"}, {"_id": "q3", "text": "Unjudged?"})
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td/2\t0\nq2\td/2\t1\n",
                                               encoding="utf-8")
    return folder


def test_beir_folder_becomes_files_and_graded_questions(tmp_path: Path) -> None:
    qs = load_question_set(make_beir(tmp_path / "tiny"), cache_dir=tmp_path / "cache")
    (folder,) = qs.corpus
    files = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    assert files[doc_file_name("d1")] == "Tides\n\nHigh tide in Brest reached 7.2 metres."
    assert files[doc_file_name("d/2")] == "A honey bee colony keeps one queen."
    assert files[doc_file_name("d_2")] == "Empty"  # a title alone is still a document
    assert doc_file_name("d4") not in files  # nothing to index
    by_id = {q.id: q for q in qs.questions}
    assert set(by_id) == {"q1", "q2"}  # queries without positive judgements are not scored
    assert by_id["q1"].relevance == {doc_file_name("d1"): 2}
    assert by_id["q2"].sources == (doc_file_name("d/2"),)


def test_doc_file_names_never_collide() -> None:
    names = {doc_file_name(i) for i in ("d/2", "d_2", "d 2", "d:2", "<dbpedia:X>", "<dbpedia:X_>")}
    assert len(names) == 6 and all(n.endswith(".txt") and "/" not in n for n in names)
    assert doc_file_name("d/2") == doc_file_name("d/2")


def test_shape_detection_errors(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="no such question set"):
        load_question_set(tmp_path / "missing.jsonl")
    with pytest.raises(RagError, match="must be a BEIR folder .* a FinanceBench folder .* or an MTRAG folder"):
        load_question_set(tmp_path)
    (tmp_path / "x.json").write_text('{"version": 2}', encoding="utf-8")
    with pytest.raises(RagError, match="not a readable SQuAD JSON"):
        load_question_set(tmp_path / "x.json")


def test_real_squad_file(tmp_path: Path) -> None:
    qs = load_question_set(shared_path("data", "squad2-dev", "squad2-dev-half-a.json"), cache_dir=tmp_path)
    assert len(qs.corpus) == 8 and len(qs.questions) == 2828
    assert sum(q.unanswerable for q in qs.questions) == 1529
    texts = {p.name: p.read_text(encoding="utf-8") for p in qs.corpus}
    answerable = [q for q in qs.questions if not q.unanswerable]
    for q in answerable:
        assert q.answers and q.sources[0] in texts
        for name, start, end in q.spans:
            assert texts[name][start:end] in q.answers  # spans point at the answer in the written file


@pytest.mark.parametrize("name", ["business-reports", "msmarco", "dbpedia"])
def test_real_beir_mini(name: str, tmp_path: Path) -> None:
    folder = shared_path("data", "beir-mini", name)
    qs = load_beir(folder, cache_dir=tmp_path)
    (corpus,) = qs.corpus
    files = {p.name for p in corpus.iterdir()}
    documents = sum(1 for line in (folder / "corpus.jsonl").open(encoding="utf-8") if line.strip())
    assert len(files) == documents
    assert qs.questions and all(q.relevance and set(q.relevance) <= files for q in qs.questions)
    assert all(grade > 0 for q in qs.questions for grade in q.relevance.values())


def make_financebench(folder: Path) -> Path:
    (folder / "pdfs").mkdir(parents=True)
    write_pdf(folder / "pdfs" / "HARBOUR_2024_10K.pdf", [
        "Annual report 2024. Contents: the fleet, the results.",
        "Fleet. Harbour Holdings operated 14 ferries at the end of the year.",
        "Results. Harbour Holdings had revenue of 212 million dollars; its capital expenditure was 31 million.",
    ])
    records = [
        {"financebench_id": "fb_1", "doc_name": "HARBOUR_2024_10K", "question": "How many ferries did Harbour "
         "Holdings operate?", "answer": "14 ferries", "evidence": [{"evidence_page_num": 1, "evidence_text": "x"}]},
        {"financebench_id": "fb_2", "doc_name": "HARBOUR_2024_10K", "question": "What was the capital expenditure "
         "of Harbour Holdings?", "answer": "$31.00", "evidence": [
             {"evidence_page_num": 2, "evidence_text": "x"}, {"evidence_page_num": 0, "evidence_text": "x"}]},
    ]
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    return folder


def test_financebench_folder_is_judged_by_evidence_page(tmp_path: Path) -> None:
    folder = make_financebench(tmp_path / "fb")
    qs = load_question_set(folder)
    assert [p.name for p in qs.corpus] == ["HARBOUR_2024_10K.pdf"]
    assert [(q.id, q.sources, q.pages, q.answers) for q in qs.questions] == [
        ("fb_1", ("HARBOUR_2024_10K.pdf",), (2,), ()), ("fb_2", ("HARBOUR_2024_10K.pdf",), (1, 3), ())]
    # Through the real index: the right page comes back for each question.
    index = Index.build(qs.corpus, tmp_path / "index")
    for q in qs.questions:
        assert index.search(q.question, 1)[0].page in q.pages


def test_financebench_mistakes_name_the_file_and_line(tmp_path: Path) -> None:
    folder = make_financebench(tmp_path / "fb")
    (folder / "pdfs" / "HARBOUR_2024_10K.pdf").unlink()
    with pytest.raises(CorpusMissingError, match="line 1: .*HARBOUR_2024_10K.pdf is missing"):
        load_financebench(folder)
    (folder / "questions.jsonl").write_text('{"doc_name": "X"}\n', encoding="utf-8")
    with pytest.raises(RagError, match="line 1: not a FinanceBench record"):
        load_financebench(folder)


def test_real_financebench() -> None:
    qs = load_question_set(shared_path("data", "financebench"))
    assert len(qs.questions) == 33 and all(q.sources and q.pages for q in qs.questions)
    assert {p.name for p in qs.corpus} == {q.sources[0] for q in qs.questions}


def test_shipped_sets_match_their_corpus() -> None:
    """Every answerable question of a shipped set has an answer string that occurs in its corpus."""
    for path in sorted((ROOT / "eval_questions").glob("*.jsonl")):
        qs = load_jsonl(path, require_corpus=False)
        if not all(p.exists() for p in qs.corpus):
            continue  # ../shared is absent on this machine
        files, failures = find_files(qs.corpus)
        assert not failures, failures
        text = "\n".join(page.text for f in files for page in load_file(f))
        assert len(qs.questions) >= 10 and any(q.unanswerable for q in qs.questions), path.name
        for q in qs.questions:
            if not q.unanswerable:
                assert contains_answer(text, q.answers), f"{path.name} {q.id}: no answer string in the corpus"

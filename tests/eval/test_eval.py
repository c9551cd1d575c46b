"""`rag eval` and `rag.eval.runner.evaluate` on a real index: metrics, failures, reports, thresholds, exit codes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, shared_path, write_pdf

from rag import Index, Quote
from rag.errors import RagError
from rag.eval.datasets import (
    EvalQuestion,
    QuestionSet,
    doc2dial_half,
    doc_file_name,
    load_doc2dial,
    load_jsonl,
    load_question_set,
    mtrag_kind,
)
from rag.eval.metrics import (
    answer_words,
    contains_answer,
    exact_match,
    f1_score,
    ndcg,
    normalize_answer,
    percentile,
    rouge_l,
    same_document,
)
from rag.eval.runner import answers_available, evaluate
from rag.serve.cli import main
from rag.serve.eval_cli import eval_cache_folder
from rag.verify import verify_quotes

QUESTIONS = [
    {"id": "tide", "question": "Who signs the tide tables?", "answers": ["Yannick Le Goff"], "source": "tides.txt",
     "page": 1},
    {"id": "orchard", "question": "How many hectares does the Okafor orchard cover?", "answers": ["twelve hectares"],
     "source": "fruit.pdf", "page": 2},
    {"id": "bees", "question": "How long do worker bees live in summer?", "answers": ["about six weeks"],
     "source": "bees.md"},
    {"id": "boat", "question": "What colour is the harbour master's boat?", "answers": ["bright red"],
     "source": "tides.txt"},
    {"id": "peru", "question": "What is the capital of Peru?", "unanswerable": True},
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eval") / "corpus"
    folder.mkdir()
    write_pdf(folder / "fruit.pdf", [
        "The Hirosaki cherry festival draws two million visitors every spring. It opens on 23 April.",
        "The orchard of Miriam Okafor covers twelve hectares near Lyon. Her apples are sold in Paris.",
    ])
    (folder / "tides.txt").write_text("The tide tables are printed every Monday. High tide in Brest reached 7.2 "
                                      "metres on 3 March. Harbour master Yannick Le Goff signs them.",
                                      encoding="utf-8")
    (folder / "bees.md").write_text("# Bees\n\nA honey bee colony keeps one queen. Workers live about six weeks "
                                    "in summer.\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def set_file(corpus: Path) -> Path:
    path = corpus.parent / "small.jsonl"
    lines = [{"corpus": ["corpus"], "description": "a tiny set"}] + QUESTIONS
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def retrieval_set_file(corpus: Path) -> Path:
    """The answerable questions judged by source only (no answer strings, so no answerer runs)."""
    path = corpus.parent / "sources.jsonl"
    lines = [{"corpus": ["corpus"]}] + [
        {"id": q["id"], "question": q["question"], "source": "harbour-log.txt" if q["id"] == "boat" else q["source"]}
        for q in QUESTIONS if "source" in q]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def index(corpus: Path) -> Index:
    return Index.build([corpus], corpus.parent / "index")


@pytest.fixture(scope="module")
def result(index: Index, set_file: Path):  # noqa: ANN201 - EvalResult
    return evaluate(index, load_jsonl(set_file), k=10, answers=False)


# --- scoring helpers --------------------------------------------------------------------------


def test_answer_normalisation_and_scores() -> None:
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("Harbour’s “master”") == "harbour s master"
    assert exact_match("the Eiffel tower.", ["Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    assert f1_score("Eiffel", ["Eiffel Tower", "Paris"]) == pytest.approx(2 / 3)
    assert f1_score("", ["Paris"]) == 0.0
    assert contains_answer("It reached 7.2 metres on 3 March.", ["7.2 metres"])
    assert not contains_answer("It reached 17.2 metres.", ["7.2 metres"])  # whole words only


def test_ndcg_matches_its_definition() -> None:
    assert ndcg([1, 0, 1], [1, 1]) == pytest.approx((1 + 1 / 2) / (1 + 1 / math.log2(3)))
    assert ndcg([2, 1], [2, 1]) == 1.0
    assert ndcg([0] * 10 + [1], [1]) == 0.0  # beyond the cutoff
    assert ndcg([], []) == 0.0


def test_percentile_matches_numpy() -> None:
    values = [5.0, 1.0, 9.0, 2.5, 7.0, 3.0]
    for q in (0, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_documents_are_matched_by_name_or_path_ending() -> None:
    assert same_document("/data/docs/guide.md", "guide.md")
    assert same_document("/data/docs/guide.md", "docs/guide.md")
    assert not same_document("/data/docs/guide.md", "other/guide.md")
    assert not same_document("/data/docs/myguide.md", "guide.md")


# --- evaluate on a real index -------------------------------------------------------------------


def test_passages_are_judged_by_answer_source_and_page(result) -> None:  # noqa: ANN001
    by_id = {r.question.id: r for r in result.questions}
    for qid in ("tide", "orchard", "bees"):
        r = by_id[qid]
        assert r.judged and r.relevant_ranks and not r.failed, qid
        hit = r.hits[r.relevant_ranks[0] - 1]
        assert contains_answer(hit.text, r.question.answers)
    assert by_id["orchard"].hits[by_id["orchard"].relevant_ranks[0] - 1].page == 2
    assert by_id["boat"].relevant_ranks == () and by_id["boat"].problems == ("not retrieved in the top 10",)
    assert not by_id["peru"].judged and "hit@1" not in by_id["peru"].scores
    # The corpus has fewer passages than k, so three of the four judged questions are found.
    assert result.metrics["hit@10"] == 0.75 and result.metrics["recall@10"] == 0.75
    assert result.counts == {**result.counts, "questions": 5, "answerable": 4, "unanswerable": 1, "judged": 4}
    assert result.metrics["citation_validity"] == 1.0 and result.counts["quotes_invalid"] == 0
    assert result.metrics["search_p95_ms"] >= result.metrics["search_p50_ms"] > 0


def test_retrieval_metrics_follow_the_ranks(result) -> None:  # noqa: ANN001
    judged = [r for r in result.questions if r.judged]
    firsts = [r.relevant_ranks[0] if r.relevant_ranks else None for r in judged]
    assert result.metrics["mrr@10"] == pytest.approx(sum(1 / f for f in firsts if f) / len(judged))
    assert result.metrics["hit@1"] == pytest.approx(sum(f == 1 for f in firsts) / len(judged))
    assert result.metrics["ndcg@10"] == pytest.approx(sum(1 / math.log2(f + 1) for f in firsts if f) / len(judged))


def test_documents_count_once_with_graded_relevance(index: Index, corpus: Path) -> None:
    qs = QuestionSet(name="graded", corpus=(corpus,), questions=(
        EvalQuestion(id="g", question="honey bee colony queen", relevance={"bees.md": 2, "tides.txt": 1}),))
    r = evaluate(index, qs, k=2).questions[0]
    assert len(r.ranked) == len(set(r.ranked)) == 3  # fruit.pdf's two passages count once
    assert r.ranked[0] == "bees.md" and r.scores["hit@1"] == 1.0 and r.scores["mrr@10"] == 1.0
    gains = [{"bees.md": 2, "tides.txt": 1}.get(name, 0) for name in r.ranked]
    assert r.scores["ndcg@10"] == pytest.approx(ndcg(gains, [2, 1]))
    assert r.scores["recall@2"] == (1.0 if "tides.txt" in r.ranked[:2] else 0.5)


def test_depth_adds_recall_at_depth_and_fusion_is_per_query(index: Index, set_file: Path) -> None:
    qs = load_jsonl(set_file)
    lexical = evaluate(index, qs, k=3, depth=20, fusion="bm25", answers=False, limit=3)
    assert lexical.fusion == "bm25" and lexical.counts["questions"] == 3
    assert {"hit@3", "recall@3", "recall@20"} <= set(lexical.metrics)
    assert all(h.dense_score is None for r in lexical.questions for h in r.hits)
    dense = evaluate(index, qs, k=3, fusion="dense", answers=False, limit=3)
    assert all(h.lexical_score is None for r in dense.questions for h in r.hits)


def test_invalid_quotes_are_caught_by_the_answerers_own_check(index: Index) -> None:
    hit = index.search("Who signs the tide tables?", k=1)[0]
    good = hit.quote
    shifted = Quote(text=good.text, source=good.source, page=good.page, start=good.start + 1, end=good.end + 1)
    elsewhere = Quote(text=good.text, source=good.source, page=9, start=good.start, end=good.end)
    # evaluate counts the quotes verify_quotes drops (the index is a PageSource).
    assert verify_quotes([good, shifted, elsewhere], index) == ([good], [shifted, elsewhere])


def test_answer_metrics(index: Index, set_file: Path) -> None:
    if not answers_available():
        result = evaluate(index, load_jsonl(set_file), k=5)
        assert "exact_match" not in result.metrics
        assert any("not installed" in note for note in result.notes)
        pytest.skip("rag.answer.extractive is not installed: answer metrics are noted as not measured")
    result = evaluate(index, load_jsonl(set_file), k=5, answers=True)
    for r in result.questions:
        answer = r.answer
        assert answer is not None and r.answer_seconds is not None
        if r.question.unanswerable:
            assert ("answered a question the documents do not answer" in r.problems) == answer.found
            continue
        golds = r.question.answers
        assert r.scores["answer_in_quote"] == float(answer.found and any(contains_answer(c.text, golds)
                                                                         for c in answer.citations))
        assert r.scores["exact_match"] == (exact_match(answer.span or answer.text, golds) if answer.found else 0.0)
        assert ("abstained although the documents answer it" in r.problems) == (not answer.found)
    answerable = [r for r in result.questions if not r.question.unanswerable]
    assert result.metrics["f1"] == pytest.approx(sum(r.scores["f1"] for r in answerable) / len(answerable))
    abstained = [r for r in result.questions if not r.answer.found]
    assert result.counts["abstained"] == len(abstained)
    assert result.metrics["abstention_recall"] == float(not result.questions[-1].answer.found)
    assert result.metrics["citation_validity"] == 1.0 and result.metrics["answer_p50_ms"] > 0


# --- the command ---------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["eval", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json(set_file: Path, index: Index, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(set_file), "--index", str(index.folder), "--json")
    assert code == 0 and f"index: {index.folder} (existing" in err
    data = json.loads(out)
    assert data["metrics"]["hit@10"] == 0.75 and data["counts"]["questions"] == 5
    boat = next(f for f in data["failures"] if f["id"] == "boat")
    assert boat["why"][0] == "not retrieved in the top 10" and boat["expected"] == "bright red"
    assert data["below_threshold"] == [] and data["fusion"] == "blend"
    assert data["counts"]["failures"] == len(data["failures"])


def test_cli_report_names_failures(set_file: Path, index: Index, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.md"
    code, out, err = run(capsys, str(set_file), "--index", str(index.folder), "--report", str(report), "-k", "3")
    assert code == 0
    assert "hit@3" in out and "[boat] What colour is the harbour master's boat?" in out and f"report: {report}" in out
    assert "eval small: 5/5 questions" in err  # progress, on stderr (plain lines: capsys is no terminal)
    text = report.read_text(encoding="utf-8")
    assert "# rag eval: small" in text and "| hit@3 |" in text
    assert "## Failures (" in text and "of 5 questions)" in text
    row = next(line for line in text.splitlines() if line.startswith("| boat |"))
    assert "What colour is the harbour master's boat?" in row and "bright red" in row and "not retrieved" in row


def test_cli_fail_under(retrieval_set_file: Path, index: Index, capsys: pytest.CaptureFixture[str]) -> None:
    base = (str(retrieval_set_file), "--index", str(index.folder), "--no-progress")
    code, _, err = run(capsys, *base, "--fail-under", "hit@10=0.8", "--fail-under", "mrr@10=0.1")
    assert code == 1 and "hit@10 = 0.7500 is below 0.8" in err and "mrr@10" not in err
    assert run(capsys, *base, "--fail-under", "hit@10=0.75")[0] == 0
    code, _, err = run(capsys, *base, "--fail-under", "ndcg@7=0.5")
    assert code == 1 and "ndcg@7 not measured on this set" in err
    code, _, err = run(capsys, *base, "--fail-under", "hit@10")
    assert code == 1 and "METRIC=VALUE" in err


def test_cli_limit_and_fusion(retrieval_set_file: Path, index: Index, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(retrieval_set_file), "--index", str(index.folder), "--json", "--limit", "2",
                       "--fusion", "bm25")
    data = json.loads(out)
    assert code == 0 and data["counts"]["questions"] == 2 and data["fusion"] == "bm25"


def test_cli_builds_a_cached_index_once(retrieval_set_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAG_INDEX", raising=False)
    code, _, err = run(capsys, str(retrieval_set_file), "--json", "--limit", "1")
    assert code == 0
    assert str(tmp_path / ".cache" / "rag" / "eval-index") in err and "added 3" in err
    code, _, err = run(capsys, str(retrieval_set_file), "--json", "--limit", "1")
    assert code == 0 and "unchanged 3" in err and "0 chunks embedded" in err


def test_cli_explains_a_missing_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"corpus": ["../absent"]}\n{"question": "Anyone?"}\n', encoding="utf-8")
    code, _, err = run(capsys, str(path), "--no-progress")
    assert code == 1 and "rag eval: error:" in err and "'../absent'" in err and "does not exist" in err


def test_a_set_without_corpus_runs_on_the_given_index(index: Index, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bare.jsonl"
    path.write_text(json.dumps(QUESTIONS[0]) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, str(path), "--index", str(index.folder), "--json")
    assert code == 0 and json.loads(out)["metrics"]["hit@1"] == 1.0
    code, _, err = run(capsys, str(path), "--index", str(tmp_path / "empty"), "--json")
    assert code == 1 and "names no corpus" in err


def test_an_index_missing_the_sets_files_is_flagged(index: Index, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "new.txt").write_text("Nothing indexed yet.", encoding="utf-8")
    path = tmp_path / "s.jsonl"
    path.write_text('{"corpus": "corpus"}\n{"question": "Anything new?", "source": "new.txt"}\n', encoding="utf-8")
    code, out, err = run(capsys, str(path), "--index", str(index.folder), "--json")
    assert code == 0 and "warning: 1 of the set's 1 files are not in it" in err
    assert json.loads(out)["failures"][0]["why"] == ["not retrieved in the top 10"]


# --- the shipped sets ----------------------------------------------------------------------------


def test_docs_set_retrieval(tmp_path: Path) -> None:
    qs = load_question_set(ROOT / "eval_questions" / "docs.jsonl")
    result = evaluate(Index.build(qs.corpus, tmp_path / "idx"), qs, k=10, answers=False)
    assert result.counts["unanswerable"] == 5 and result.counts["judged"] == result.counts["answerable"]
    assert result.metrics["hit@10"] >= 0.8 and result.metrics["citation_validity"] == 1.0


def test_docs_set_runs_from_the_readme_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "docs.md"
    code, out, _ = run(capsys, str(ROOT / "eval_questions" / "docs.jsonl"), "--index", str(tmp_path / "idx"),
                       "--report", str(report), "--limit", "6")
    assert code == 0 and "docs: 6 questions" in out and "hit@5" in out
    text = report.read_text(encoding="utf-8")
    assert "# rag eval: docs" in text and "## Failures" in text and "| citation_validity | 1.000 |" in text


def test_seed_set_finds_who_called_for_un_visits(tmp_path: Path) -> None:
    shared_path("seeds")
    qs = load_question_set(ROOT / "eval_questions" / "seed.jsonl")
    result = evaluate(Index.build(qs.corpus, tmp_path / "idx"), qs, k=5, answers=False)
    first = next(r for r in result.questions if r.question.question == "Who called for UN visits?")
    assert first.relevant_ranks[0] == 1 and "Maryam Rajavi" in first.hits[0].quote.text
    assert result.metrics["hit@5"] >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("name", ["docs", "seed"])
def test_shipped_sets_with_answers(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "eval_questions" / f"{name}.jsonl"
    if name == "seed":
        shared_path("seeds")
    if not answers_available():
        pytest.skip("rag.answer.extractive is not installed")
    code, out, _ = run(capsys, str(path), "--index", str(tmp_path / "idx"), "--json")
    data = json.loads(out)
    assert code == 0 and data["metrics"]["citation_validity"] == 1.0
    assert {"exact_match", "f1", "answer_in_quote", "abstention_recall"} <= set(data["metrics"])
    if name == "seed":
        index = Index.open(tmp_path / "idx")
        answer = index.ask("Who called for UN visits?")
        assert answer.found and any("Maryam Rajavi" in q.text for q in answer.citations)


def test_eval_cache_folder_is_the_same_however_the_corpus_is_named(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from rag import Settings
    from rag.eval.datasets import QuestionSet

    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path)
    named = [QuestionSet("s", (Path("docs"),), ()), QuestionSet("s", (tmp_path / "docs",), ()),
             QuestionSet("s", (tmp_path / "docs" / ".." / "docs",), ())]
    assert len({eval_cache_folder(qs, Settings(), tmp_path) for qs in named}) == 1
    other = QuestionSet("s", (tmp_path,), ())
    assert eval_cache_folder(other, Settings(), tmp_path) != eval_cache_folder(named[0], Settings(), tmp_path)


# --- answer text against reference answers -----------------------------------------------------------

LONG = [
    {"id": "tide-long", "question": "Who signs the tide tables?", "kind": "fact", "answers": ["Yannick Le Goff"],
     "reference": "Harbour master Yannick Le Goff signs the tide tables, which are printed every Monday.",
     "source": "tides.txt"},
    {"id": "bees-long", "question": "Tell me about honey bee colonies.", "kind": "summary",
     "reference": ["A honey bee colony keeps one queen, and its workers live about six weeks in summer."]},
    {"id": "peru-long", "question": "What is the capital of Peru?", "kind": "fact", "unanswerable": True},
]


def test_jsonl_reference_and_kind(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in LONG), encoding="utf-8")
    qs = load_jsonl(path)
    assert [q.kind for q in qs.questions] == ["fact", "summary", "fact"]
    assert qs.questions[1].reference == (LONG[1]["reference"][0],) and qs.questions[0].answers == ("Yannick Le Goff",)
    for bad, message in (({"question": "q", "kind": "essay"}, "kind must be one of fact, definition"),
                         ({"question": "q", "unanswerable": True, "reference": "r"}, "cannot have answers, a reference"),
                         ({"question": "q", "reference": 3}, "reference: must be a string")):
        path.write_text(json.dumps(bad) + "\n", encoding="utf-8")
        with pytest.raises(RagError, match=message) as caught:
            load_jsonl(path)
        assert f"{path}:1" in str(caught.value)


def test_cli_prints_the_answer_text_by_kind(corpus: Path, index: Index, capsys: pytest.CaptureFixture[str]) -> None:
    if not answers_available():
        pytest.skip("rag.answer.extractive is not installed")
    path = corpus.parent / "long.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in [{"corpus": ["corpus"]}, *LONG]), encoding="utf-8")
    code, out, _ = run(capsys, str(path), "--index", str(index.folder), "--no-progress")
    assert code == 0 and "answer text against the reference (F1 / ROUGE-L), by kind:" in out
    assert "| by | group | questions | ours F1 / ROUGE-L | first sentence F1 / ROUGE-L | top passage F1 / ROUGE-L" in out
    assert "| expected kind | fact | 2 |" in out and "| expected kind | summary | 1 |" in out
    assert "answer_f1" in out and "kind_accuracy" in out

    result = evaluate(index, load_jsonl(path), k=5)
    scored = [r for r in result.questions if r.question.reference]
    for r in scored:
        answer = r.answer
        assert answer is not None
        text = answer_words(answer.text) if answer.found else ""
        assert "[1]" not in text
        assert r.scores["answer_f1"] == f1_score(text, r.question.reference)
        assert r.scores["answer_rouge_l"] == rouge_l(text, r.question.reference)
        assert r.scores["top_passage_f1"] == f1_score(answer.hits[0].chunk.text, r.question.reference)
        assert r.scores["first_sentence_f1"] >= 0 and "gpt-4o_f1" not in r.scores
    assert result.metrics["answer_f1"] == pytest.approx(sum(r.scores["answer_f1"] for r in scored) / 2)
    labelled = [r for r in result.questions if r.question.kind]
    assert result.metrics["kind_accuracy"] == pytest.approx(
        sum(r.answer is not None and r.answer.kind == r.question.kind for r in labelled) / 3)
    kinds = {(b.by, b.name): b for b in result.breakdown}
    assert kinds[("expected kind", "summary")].scores["answer_f1"] == scored[1].scores["answer_f1"]
    assert sum(b.questions for b in result.breakdown if b.by == "kind") == 2
    assert "## Answer text against the reference answers" in result.to_markdown()
    assert {"by", "name", "questions", "scores"} <= set(result.to_dict()["breakdown"][0])


MTRAG = ("data", "conversation", "mtrag-human-eval")


def _mtrag_slice(tmp_path: Path) -> Path:
    """The first conversation of the MTRAG file, an unanswerable and a conversational task, and
    the passages they cite plus ten others, as an MTRAG folder of its own."""
    folder = shared_path(*MTRAG)
    tasks = [json.loads(line) for line in (folder / "tasks.jsonl").read_text(encoding="utf-8").splitlines()]
    first = tasks[0]["task_id"].split("<::>")[0]
    chosen = [t for t in tasks if t["task_id"].startswith(first)]
    chosen += [next(t for t in tasks if t["answerability"] == a) for a in ("UNANSWERABLE", "CONVERSATIONAL")]
    docs = [json.loads(line) for line in (folder / "documents.jsonl").read_text(encoding="utf-8").splitlines()]
    cited = {c for t in chosen for c in t["context_ids"]}
    kept = [d for d in docs if d["document_id"] in cited] + [d for d in docs if d["document_id"] not in cited][:10]
    out = tmp_path / "mtrag-slice"
    out.mkdir()
    (out / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in chosen), encoding="utf-8")
    (out / "documents.jsonl").write_text("".join(json.dumps(d) + "\n" for d in kept), encoding="utf-8")
    return out


def test_mtrag_folder_is_read_directly(tmp_path: Path) -> None:
    folder = _mtrag_slice(tmp_path)
    raw = [json.loads(line) for line in (folder / "tasks.jsonl").read_text(encoding="utf-8").splitlines()]
    qs = load_question_set(folder, cache_dir=tmp_path / "cache")
    assert len(qs.questions) == len(raw) - 1  # the conversational turn is left out
    assert len(list(qs.corpus[0].glob("*.txt"))) == len(
        (folder / "documents.jsonl").read_text(encoding="utf-8").splitlines())
    by_id = {q.id: q for q in qs.questions}
    for task in raw:
        q = by_id.get(task["task_id"])
        if task["answerability"] == "CONVERSATIONAL":
            assert q is None
            continue
        assert q is not None and q.question == task["turns"][-1]["content"]
        assert [c for _, c in q.history] == [t["content"] for t in task["turns"][:-1]]
        assert q.labels == tuple(task["question_type"]) and q.kind == mtrag_kind(task["question_type"])
        if task["answerability"] == "UNANSWERABLE":
            assert q.unanswerable and not q.reference and not q.sources
        else:
            assert q.reference == (task["reference"],) and q.sources == tuple(doc_file_name(c)
                                                                              for c in task["context_ids"])
            assert set(q.responses) == {"gpt-4o", "llama-3.1-405b-instruct"}
    assert mtrag_kind(["Comparative", "Factoid"]) == "comparison" and mtrag_kind(["Composite"]) == ""
    assert mtrag_kind(["How-To", "Non-Question"]) == "procedure" and mtrag_kind(["Opinion"]) == "explanation"


def test_mtrag_responses_are_scored_beside_ours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not answers_available():
        pytest.skip("rag.answer.extractive is not installed")
    folder = _mtrag_slice(tmp_path)
    code, out, _ = run(capsys, str(folder), "--index", str(tmp_path / "idx"), "--json")
    data = json.loads(out)
    qs = load_question_set(folder)
    answerable = [q for q in qs.questions if not q.unanswerable]
    for model in ("gpt-4o", "llama-3.1-405b-instruct"):
        expected = sum(f1_score(q.responses[model], q.reference) for q in answerable) / len(answerable)
        assert data["metrics"][f"{model}_f1"] == pytest.approx(expected, abs=1e-4)
    assert {"answer_f1", "answer_rouge_l", "top_passage_f1", "first_sentence_rouge_l", "abstention_recall",
            "followup/answer_f1", "first/answer_f1", "hit@5"} <= set(data["metrics"])
    groups = {(b["by"], b["name"]) for b in data["breakdown"]}
    assert ("question type", "Factoid") in groups and ("expected kind", "procedure") in groups
    assert code == 0 and data["counts"]["referenced"] == len(answerable)


def _doc2dial_slice(tmp_path: Path) -> tuple[Path, list[str]]:
    """The first 120 turns of doc2dial-a and the documents they are about, as a doc2dial folder."""
    source = shared_path("data", "conversation")
    rows = (source / "doc2dial-a.questions.jsonl").read_text(encoding="utf-8").splitlines()[:120]
    titles = {json.loads(r)["title"] for r in rows}
    docs = [line for line in (source / "doc2dial-a.documents.jsonl").read_text(encoding="utf-8").splitlines()
            if json.loads(line)["title"] in titles]
    folder = tmp_path / "d2d"
    folder.mkdir()
    (folder / "doc2dial-a.questions.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "doc2dial-a.documents.jsonl").write_text("\n".join(docs) + "\n", encoding="utf-8")
    return folder, rows


def test_doc2dial_turns_keep_the_report_half_with_the_grounding_span_as_reference(tmp_path: Path) -> None:
    folder, rows = _doc2dial_slice(tmp_path)
    every = load_doc2dial(folder, cache_dir=tmp_path / "cache")
    report = load_question_set(folder, cache_dir=tmp_path / "cache")   # the report half by default
    tune = load_doc2dial(folder, cache_dir=tmp_path / "cache", half="tune")
    assert report.name == "doc2dial-report" and len(report.questions) + len(tune.questions) == len(every.questions)
    assert report.questions and tune.questions and report.corpus == every.corpus
    assert all(doc2dial_half(q.sources[0]) == "report" for q in report.questions)
    for q, line in zip(every.questions, rows, strict=True):
        record = json.loads(line)
        assert q.reference == (record["answer"],) and len(q.history) == len(record.get("history", []))
        text = (every.corpus[0].parent / q.sources[0]).read_text(encoding="utf-8")
        assert text[q.spans[0][1]:q.spans[0][2]] == record["answer"]


def test_doc2dial_answers_are_scored_for_first_turns_and_follow_ups(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    if not answers_available():
        pytest.skip("rag.answer.extractive is not installed")
    folder, _ = _doc2dial_slice(tmp_path)
    tune = load_doc2dial(folder, half="tune").questions[:8]
    assert any(q.history for q in tune) and any(not q.history for q in tune)
    code, out, _ = run(capsys, str(folder), "--half", "tune", "--limit", "8", "--index", str(tmp_path / "idx"),
                       "--json")
    data = json.loads(out)
    assert code == 0 and data["set"] == "doc2dial-tune" and data["counts"]["questions"] == 8
    assert {"answer_f1", "first/answer_f1", "followup/answer_f1", "first/top_passage_rouge_l"} <= set(data["metrics"])
    assert data["counts"]["referenced"] == 8 and data["breakdown"][0]["by"] == "kind"

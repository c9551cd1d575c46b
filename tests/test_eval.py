"""`rag eval` and `rag.eval.evaluate` on a real index: metrics, failures, reports, thresholds, exit codes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, shared_path, write_pdf
from rag import Index, Quote
from rag.cli import main
from rag.datasets import EvalQuestion, QuestionSet, load_jsonl, load_question_set
from rag.eval import answers_available, evaluate, invalid_quotes
from rag.eval_cli import eval_cache_folder
from rag.metrics import contains_answer, exact_match, f1_score, ndcg, normalize_answer, percentile, same_document

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


def test_invalid_quotes_are_caught(index: Index) -> None:
    hit = index.search("Who signs the tide tables?", k=1)[0]
    good = hit.quote
    shifted = Quote(text=good.text, source=good.source, page=good.page, start=good.start + 1, end=good.end + 1)
    elsewhere = Quote(text=good.text, source=good.source, page=9, start=good.start, end=good.end)
    assert invalid_quotes(index, [good, shifted, elsewhere]) == (shifted, elsewhere)


def test_answer_metrics(index: Index, set_file: Path) -> None:
    if not answers_available():
        result = evaluate(index, load_jsonl(set_file), k=5)
        assert "exact_match" not in result.metrics
        assert any("not installed" in note for note in result.notes)
        pytest.skip("rag.answer is not installed: answer metrics are noted as not measured")
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
        pytest.skip("rag.answer is not installed")
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
    from rag.datasets import QuestionSet

    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path)
    named = [QuestionSet("s", (Path("docs"),), ()), QuestionSet("s", (tmp_path / "docs",), ()),
             QuestionSet("s", (tmp_path / "docs" / ".." / "docs",), ())]
    assert len({eval_cache_folder(qs, Settings(), tmp_path) for qs in named}) == 1
    other = QuestionSet("s", (tmp_path,), ())
    assert eval_cache_folder(other, Settings(), tmp_path) != eval_cache_folder(named[0], Settings(), tmp_path)

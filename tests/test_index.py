"""The foundation end to end: build, open, search, incremental updates, settings fingerprint."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path, write_fruit_and_notes

import rag.ingest.chunk
import rag.pipeline
from rag import Index, IndexMismatchError, IndexNotFoundError, QueryError, RagError, Settings, SettingsError
from rag.store.snapshot import current_generation

SEED_QUOTE = "She said it is essential for international delegations to visit Iran"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    write_fruit_and_notes(folder)
    (folder / "page.html").write_text("<html><head><style>.x{color:red}</style><script>alert('no')</script></head>"
                                      "<body><h1>Glacier report</h1><p>The Aletsch glacier lost 2.5 metres of "
                                      "ice thickness in 2023.</p></body></html>", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def index(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index.build([corpus], tmp_path_factory.mktemp("idx"))


def test_build_reports_and_counts(index: Index) -> None:
    report = index.last_report
    assert report is not None
    assert len(report.added) == 3 and not report.failed
    assert report.chunks_total == len(index) == report.chunks_embedded
    docs = {d.name: d for d in index.documents()}
    assert docs["fruit.pdf"].pages == 3 and docs["notes.md"].pages == 1 and docs["page.html"].pages == 1


def test_hits_carry_page_offsets_and_a_verbatim_quote(index: Index) -> None:
    hits = index.search("Which banana variety is exported most?", k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].name == "fruit.pdf" and hits[0].page == 2
    assert "Cavendish banana is the most exported variety" in hits[0].quote.text
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    for hit in hits:
        page = index.page_text(hit.source, hit.page)
        assert page is not None
        assert page[hit.chunk.start:hit.chunk.end] == hit.chunk.text
        assert page[hit.quote.start:hit.quote.end] == hit.quote.text
        assert hit.chunk.start <= hit.quote.start < hit.quote.end <= hit.chunk.end


def test_html_is_indexed_as_visible_text_only(index: Index) -> None:
    hit = index.search("How much ice did the Aletsch glacier lose?", k=1)[0]
    assert hit.name == "page.html"
    page = index.page_text(hit.source, 1) or ""
    assert "2.5 metres" in page and "alert" not in page and "color" not in page


def test_open_reads_the_same_index(index: Index) -> None:
    reopened = Index.open(index.folder)
    assert len(reopened) == len(index)
    question = "Who presents the storage migration plan?"
    assert [h.chunk.id for h in reopened.search(question)] == [h.chunk.id for h in index.search(question)]
    assert reopened.search(question)[0].name == "notes.md"


def test_filters_by_source_and_pages(index: Index) -> None:
    hits = index.search("festival visitors", k=5, sources=["fruit.pdf"], pages=(1, 2))
    assert hits and all(h.name == "fruit.pdf" and h.page in (1, 2) for h in hits)


@pytest.mark.parametrize("arguments, message", [
    ({"k": 0}, "k must be a whole number of at least 1, not 0"),
    ({"k": True}, "k must be a whole number of at least 1, not True"),
    ({"k": 2.5}, "k must be a whole number of at least 1, not 2.5"),
    ({"pages": (5, 2)}, r"pages must be \[first, last\], page numbers from 1, e.g. \[3, 5\], not \(5, 2\)"),
    ({"pages": (0, 2)}, "pages must be"),
    ({"sources": "fruit.pdf"}, "sources must be a list of file names or paths, not str"),
    ({"sources": []}, r"sources must be a non-empty list of file names or paths, not \[\]"),
])
def test_a_bad_argument_is_one_query_error_before_any_search(index: Index, arguments: dict[str, object],
                                                              message: str) -> None:
    for call in (index.search, index.ask):
        with pytest.raises(QueryError, match=message):
            call("festival visitors", **arguments)  # type: ignore[arg-type]
    if "k" in arguments:
        with pytest.raises(QueryError, match=message):
            index.chat(arguments["k"])  # type: ignore[arg-type]


def test_an_unknown_or_wrong_setting_per_query_is_a_settings_error(index: Index) -> None:
    with pytest.raises(SettingsError, match="unknown setting colour: a setting is a field of rag.Settings"):
        index.search("festival visitors", colour="red")
    with pytest.raises(SettingsError, match="unknown settings colour, size"):
        index.chat(colour="red", size=3)
    with pytest.raises(SettingsError, match="fusion must be one of"):
        index.ask("festival visitors", fusion="hybrid")


def test_open_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        Index.open(tmp_path / "nothing")


def test_other_settings_are_refused_with_a_rebuild_hint(index: Index) -> None:
    with pytest.raises(IndexMismatchError, match="chunk_tokens=160.*--rebuild"):
        Index.open(index.folder, Settings(chunk_tokens=100))


def test_incremental_ingest(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(corpus, folder)
    index = Index.build([folder], tmp_path / "idx")
    first = index.last_report
    assert first is not None and len(first.added) == 3

    again = index.ingest([folder])
    assert again.chunks_embedded == 0 and len(again.unchanged) == 3
    assert not again.added and not again.updated and not again.removed
    generation = current_generation(index.folder)

    notes = folder / "notes.md"
    notes.write_text(notes.read_text() + "\nA new sentence about the catering order for Friday.\n")
    os.utime(notes, (1, 1))
    (folder / "page.html").unlink()
    (folder / "extra.txt").write_text("The lighthouse keeper logs the weather every six hours.")
    changed = index.ingest([folder])
    assert changed.updated == (str(notes.resolve()),)
    assert changed.removed == (str((folder / "page.html").resolve()),)
    assert changed.added == (str((folder / "extra.txt").resolve()),)
    assert current_generation(index.folder) != generation
    # Only the new text is embedded: the unchanged PDF is not read again.
    assert 0 < changed.chunks_embedded <= 3
    assert {d.name for d in index.documents()} == {"fruit.pdf", "notes.md", "extra.txt"}
    assert index.search("How often are weather logs written?", k=1)[0].name == "extra.txt"
    assert all(h.name != "page.html" for h in index.search("glacier ice thickness", k=5))
    reopened = Index.open(index.folder)
    assert len(reopened) == len(index) == reopened.snapshot().vectors.shape[0]


def test_an_index_cut_by_an_older_chunker_is_cut_again(corpus: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    index = Index.build([corpus], tmp_path / "idx")
    assert index.snapshot().manifest["chunker_version"] == rag.ingest.chunk.CHUNKER_VERSION
    # The chunker of a newer release cuts pages another way: no file is left with the old chunks,
    # and text that comes out the same keeps its vectors.
    monkeypatch.setattr(rag.pipeline, "CHUNKER_VERSION", rag.ingest.chunk.CHUNKER_VERSION + 1)
    recut = index.ingest([corpus])
    assert len(recut.updated) == 3 and not recut.unchanged and recut.chunks_embedded == 0
    assert index.snapshot().manifest["chunker_version"] == rag.ingest.chunk.CHUNKER_VERSION  # written by store_write


def test_touching_a_file_without_changing_it_embeds_nothing(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(corpus, folder)
    index = Index.build([folder], tmp_path / "idx")
    os.utime(folder / "notes.md", (2, 2))
    report = index.ingest([folder])
    assert report.chunks_embedded == 0 and len(report.unchanged) == 3


def test_unreadable_files_are_reported_and_the_rest_indexed(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(corpus, folder)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "junk.pdf").write_bytes(os.urandom(4096))
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 64)
    index = Index.build([folder, tmp_path / "missing-folder"], tmp_path / "idx")
    report = index.last_report
    assert report is not None and len(report.added) == 3
    reasons = {Path(f.source).name: f.reason for f in report.failed}
    assert set(reasons) == {"empty.txt", "junk.pdf", "binary.txt", "missing-folder"}
    assert "empty" in reasons["empty.txt"] and "PDF" in reasons["junk.pdf"]
    assert "binary" in reasons["binary.txt"] and "no such file" in reasons["missing-folder"]


def test_remove_a_document(corpus: Path, tmp_path: Path) -> None:
    index = Index.build([corpus], tmp_path / "idx")
    before = len(index)
    report = index.remove(["notes.md"])
    assert len(report.removed) == 1 and len(index) < before
    assert {d.name for d in index.documents()} == {"fruit.pdf", "page.html"}
    with pytest.raises(RagError, match="not in the index"):
        index.remove(["notes.md"])


def test_vectors_are_normalised_and_aligned_with_chunks(index: Index) -> None:
    snapshot = index.snapshot()
    assert snapshot is not None
    vectors = np.asarray(snapshot.vectors)
    assert vectors.dtype == np.float32 and vectors.shape == (len(index), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    chunk = snapshot.chunks([0])[0]
    assert len(snapshot.dense) == len(index)
    # Each stored vector is its own nearest neighbour in the dense index, at cosine 1.
    (row, score), *_ = snapshot.dense.search(vectors[0], 1)
    assert row == 0 and score == pytest.approx(1.0, abs=1e-5) and chunk.text


def test_seed_question_quotes_the_delegations_sentence(seed_index: Index) -> None:
    hit = seed_index.search("Who called for UN visits?", k=3)[0]
    assert hit.name == "000_17d6ea71f6fbed30.txt"
    assert SEED_QUOTE in hit.quote.text
    page = seed_index.page_text(hit.source, hit.page) or ""
    assert page[hit.quote.start:hit.quote.end] == hit.quote.text


SEED_QUESTIONS = {
    "Who called for UN visits?": SEED_QUOTE,
    "How many people has the coronavirus killed in Iran?": "44,800",
    "Which flights did the regime keep operating?": "flights between Iran and China",
    "What are the Resistance Units?": "Resistance Units spread across the country",
    "Who are the leaders the Resistance Units hold in contempt?": "Supreme Leader Ali Khamenei",
    "What happened to family members of MEK supporters?": "sent to prison",
}


@pytest.mark.slow
def test_seed_passages_stay_in_the_top_3_among_thousands(seed_dir: Path, tmp_path: Path) -> None:
    from rag.eval.datasets import load_beir, load_squad

    squad = load_squad(shared_path("data", "squad2-dev", "squad2-dev-half-a.json"))
    reports = load_beir(shared_path("data", "beir-mini", "business-reports"))
    index = Index.build([seed_dir, *squad.corpus, *reports.corpus], tmp_path / "idx")
    assert len(index) > 1000
    for question, expected in SEED_QUESTIONS.items():
        hits = index.search(question, k=3)
        assert any(expected in hit.chunk.text and hit.name.startswith("000_") for hit in hits), question

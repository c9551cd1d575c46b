"""Metadata filters (by source, by page range) and maximal-marginal-relevance diversity, on a real index."""

from __future__ import annotations

import json

import pytest
from conftest import write_pdf

from rag import Index
from rag.serve.cli import main

LIGHTHOUSE = "The lighthouse keeper on Skerry Island lights the great lamp at dusk every evening."


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    folder = tmp_path_factory.mktemp("filters")
    write_pdf(folder / "report.pdf", [
        "Page one covers the harbour budget. The harbour budget for 2023 was four million euros.",
        "Page two covers the harbour staff. The harbour employs forty people in summer.",
        "Page three covers the harbour fleet. The harbour fleet counts six tugboats.",
        "Page four covers the harbour future. The harbour will add a ferry terminal in 2026.",
    ])
    (folder / "memo.txt").write_text("The harbour budget memo: the harbour budget rose by ten percent.",
                                     encoding="utf-8")
    for name in ("copy-a.txt", "copy-b.txt", "copy-c.txt"):
        (folder / name).write_text(LIGHTHOUSE, encoding="utf-8")
    (folder / "solar.txt").write_text("The Skerry Island lighthouse lamp was converted to solar power in 2019, "
                                      "and the keeper's cottage became a museum.", encoding="utf-8")
    for n, topic in enumerate(("Bread dough rises best in a warm kitchen.", "Tomatoes need full sun and water.",
                               "Chess openings reward early development.", "Rivers carry silt to the delta.")):
        (folder / f"other-{n}.txt").write_text(topic, encoding="utf-8")
    return Index.build([folder], tmp_path_factory.mktemp("filters-index"))


def test_source_filter_keeps_only_that_file(index: Index) -> None:
    assert index.search("harbour budget", k=2)[0].name in ("memo.txt", "report.pdf")
    hits = index.search("harbour budget", k=5, sources=["memo.txt"])
    assert hits and {h.name for h in hits} == {"memo.txt"}
    by_path = index.search("harbour budget", k=5, sources=[hits[0].source])
    assert [h.chunk.id for h in by_path] == [h.chunk.id for h in hits]


def test_page_range_is_inclusive(index: Index) -> None:
    hits = index.search("How many people does the harbour employ?", k=10, sources=["report.pdf"], pages=(2, 3))
    assert {h.page for h in hits} == {2, 3}
    assert hits[0].page == 2 and "forty people" in hits[0].quote.text
    assert {h.page for h in index.search("harbour", k=10, pages=(4, 4))} == {4}


def test_filters_that_match_nothing_return_nothing(index: Index) -> None:
    assert index.search("harbour", k=5, pages=(9, 12)) == []
    assert index.search("harbour", k=5, sources=["nothing-like-this.pdf"]) == []
    assert index.search("harbour", k=5, sources=["memo.txt"], pages=(2, 2)) == []


@pytest.mark.parametrize("fusion", ["blend", "rrf", "dense", "bm25"])
def test_filters_hold_for_every_fusion(index: Index, fusion: str) -> None:
    hits = index.search("harbour", k=10, sources=["report.pdf"], pages=(1, 2), fusion=fusion)
    assert hits and all(h.name == "report.pdf" and h.page in (1, 2) for h in hits)


def test_mmr_trades_duplicates_for_a_different_passage(index: Index) -> None:
    plain = index.search(LIGHTHOUSE, k=3)
    assert {h.name for h in plain} == {"copy-a.txt", "copy-b.txt", "copy-c.txt"}
    diverse = index.search(LIGHTHOUSE, k=3, mmr=True, mmr_lambda=0.5)
    names = [h.name for h in diverse]
    # MMR keeps the best copy and spends the other places on passages that say something else.
    assert names[0].startswith("copy-") and sum(name.startswith("copy-") for name in names) == 1
    assert [h.rank for h in diverse] == [1, 2, 3]


def test_cli_filters(index: Index, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["search", "harbour", "--index", str(index.folder), "--json", "--source", "report.pdf",
                 "--pages", "3-4", "-k", "10"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and rows and {(r["name"], r["page"]) for r in rows} <= {("report.pdf", 3), ("report.pdf", 4)}
    assert main(["search", "harbour", "--index", str(index.folder), "--pages", "5-2"]) == 1
    assert "--pages must be a range" in capsys.readouterr().err


def test_filtered_quotes_are_verbatim(index: Index) -> None:
    for hit in index.search("harbour fleet tugboats", k=4, sources=["report.pdf"], pages=(3, 4), mmr=True):
        page = index.page_text(hit.source, hit.page) or ""
        assert page[hit.quote.start:hit.quote.end] == hit.quote.text

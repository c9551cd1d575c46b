"""The same behaviour over both stores: FAISS + bm25s files, and a real Milvus server.

Ingest, search, filters, verbatim quotes, incremental updates, removal and what a kill in the
middle of an ingest leaves, each run against ``store="faiss"`` and ``store="milvus"`` (Milvus
Lite's gRPC server, started by the ``milvus_uri`` fixture in conftest.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import shared_path, wait_until, write_fruit_and_notes

from rag import Index, IndexCorruptError, Settings
from rag.protocols import DenseIndex, LexicalIndex
from rag.store.bm25 import FOLDER as BM25_FOLDER
from rag.store.faiss_dense import FILE as FAISS_FILE
from rag.store.snapshot import current_generation

SEED_QUOTE = "She said it is essential for international delegations to visit Iran"
STORES = ["faiss", "milvus"]


def store_settings(store: str, request: pytest.FixtureRequest) -> Settings:
    if store == "faiss":
        return Settings()
    return Settings(store="milvus", milvus_uri=request.getfixturevalue("milvus_uri"))


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(shared_path("seeds", "000_17d6ea71f6fbed30.txt"), folder / "seed.txt")
    write_fruit_and_notes(folder)
    return folder


@pytest.fixture(scope="session", params=STORES)
def store_index(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Index:
    """One index of the same corpus per store, shared by the tests of this module."""
    corpus = write_corpus(tmp_path_factory.mktemp(f"corpus-{request.param}"))
    return Index.build([corpus], tmp_path_factory.mktemp(f"idx-{request.param}"),
                       settings=store_settings(request.param, request))


def test_seed_question_finds_the_delegations_sentence_first(store_index: Index) -> None:
    hits = store_index.search("Who called for UN visits?", k=3)
    assert hits[0].name == "seed.txt" and SEED_QUOTE in hits[0].quote.text


def test_the_chunks_are_where_the_store_keeps_them(store_index: Index) -> None:
    snapshot = store_index.snapshot()
    assert snapshot is not None and len(store_index) > 5
    assert isinstance(snapshot.dense, DenseIndex) and isinstance(snapshot.lexical, LexicalIndex)
    assert len(snapshot.dense) == snapshot.count
    if store_index.settings.store == "faiss":
        assert (snapshot.path / FAISS_FILE).is_file() and (snapshot.path / BM25_FOLDER).is_dir()
        return
    assert not (snapshot.path / FAISS_FILE).exists() and not (snapshot.path / BM25_FOLDER).exists()
    from rag.store.milvus import client

    milvus = client(store_index.settings)
    name = snapshot.manifest["dense"]["collection"]
    rows = milvus.query(name, filter="row >= 0", output_fields=["row", "text", "source", "page"],
                        limit=snapshot.count + 1)
    assert len(rows) == snapshot.count
    by_row = {r["row"]: r for r in rows}
    for chunk, row in zip(snapshot.chunks(list(range(snapshot.count))), range(snapshot.count)):
        assert (by_row[row]["text"], by_row[row]["source"], by_row[row]["page"]) == \
               (chunk.text, chunk.source, chunk.page)


def test_filters_by_source_and_page_range(store_index: Index) -> None:
    hits = store_index.search("What grows in orchards?", k=5, sources=["fruit.pdf"])
    assert hits and {h.name for h in hits} == {"fruit.pdf"}
    hits = store_index.search("Which festival draws visitors?", k=5, sources=["fruit.pdf"], pages=(3, 3))
    assert hits and {(h.name, h.page) for h in hits} == {("fruit.pdf", 3)}
    assert "Hirosaki" in hits[0].text
    assert store_index.search("Apples", k=5, sources=["no-such-file.txt"]) == []
    for fusion in ("dense", "bm25", "rrf", "blend"):
        assert {h.name for h in store_index.search("budget review", k=3, sources=["notes.md"], fusion=fusion)} \
               <= {"notes.md"}


def test_quotes_are_verbatim_slices_of_the_stored_pages(store_index: Index) -> None:
    for question in ("Who called for UN visits?", "Who will present the migration plan?", "Cavendish banana"):
        for hit in store_index.search(question, k=5):
            page = store_index.page_text(hit.source, hit.page)
            assert page is not None and page[hit.quote.start:hit.quote.end] == hit.quote.text
            assert page[hit.chunk.start:hit.chunk.end] == hit.chunk.text


def test_both_stores_rank_alike(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Same vectors, same BM25 weights, same fusion: the two stores return the same passages."""
    corpus = write_corpus(tmp_path / "corpus")
    faiss_index = Index.build([corpus], tmp_path / "faiss", settings=store_settings("faiss", request))
    milvus_index = Index.build([corpus], tmp_path / "milvus", settings=store_settings("milvus", request))
    for question in ("Who called for UN visits?", "Where is the orchard of Miriam Okafor?", "storage migration",
                     "human rights prisoners"):
        for fusion in ("dense", "bm25", "blend"):
            a = [(h.chunk.id, round(h.score, 4)) for h in faiss_index.search(question, k=5, fusion=fusion)]
            b = [(h.chunk.id, round(h.score, 4)) for h in milvus_index.search(question, k=5, fusion=fusion)]
            assert a == b, (question, fusion)


@pytest.mark.parametrize("store", STORES)
def test_incremental_ingest_update_and_remove(store: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    settings = store_settings(store, request)
    corpus = write_corpus(tmp_path / "corpus")
    index = Index.build([corpus], tmp_path / "idx", settings=settings)
    first = len(index)
    (corpus / "extra.md").write_text("The lighthouse keeper Ingrid Holm logs every passing ship.", encoding="utf-8")
    report = index.ingest([corpus])
    assert report.added == (str(corpus / "extra.md"),) and len(report.unchanged) == 3
    assert report.chunks_embedded == 1 and len(index) == first + 1
    assert index.search("Who logs passing ships?", k=1)[0].name == "extra.md"
    (corpus / "notes.md").write_text("# Notes\n\nThe budget review is cancelled.\n", encoding="utf-8")
    report = index.ingest([corpus])
    assert report.updated == (str(corpus / "notes.md"),)
    assert "cancelled" in index.search("budget review", k=1, sources=["notes.md"])[0].text
    report = index.remove(["extra.md"])
    assert report.removed and index.search("Who logs passing ships?", k=5, sources=["extra.md"]) == []
    reopened = Index.open(tmp_path / "idx", settings)
    assert len(reopened) == len(index) and SEED_QUOTE in reopened.search("Who called for UN visits?")[0].quote.text


_INGEST = textwrap.dedent("""
    import sys
    from rag import Index, Settings
    store, uri, corpus, folder = sys.argv[1:5]
    settings = Settings() if store == "faiss" else Settings(store="milvus", milvus_uri=uri)
    Index.build([corpus], folder, settings=settings)
""")


@pytest.mark.parametrize("store", STORES)
def test_a_kill_in_the_middle_of_an_ingest_leaves_the_previous_index(store: str, request: pytest.FixtureRequest,
                                                                      tmp_path: Path) -> None:
    settings = store_settings(store, request)
    corpus = write_corpus(tmp_path / "corpus")
    folder = tmp_path / "idx"
    before = Index.build([corpus], folder, settings=settings)
    count, generation = len(before), current_generation(folder)
    for n in range(40):
        (corpus / f"log{n}.txt").write_text(f"Harbour log {n}: the barge left at dawn with {n} tonnes of salt.",
                                            encoding="utf-8")
    child = subprocess.Popen([sys.executable, "-c", _INGEST, store, settings.milvus_uri, str(corpus), str(folder)],
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    # Killed while the new generation is being written (its folder exists, CURRENT still names
    # the old one).

    def writing() -> bool:
        assert child.poll() is None, "the ingest ended before it could be killed"
        return any(folder.glob("gen-*.tmp/meta.sqlite"))

    wait_until(writing, "the ingest to start writing a generation", timeout=600)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert current_generation(folder) == generation
    after = Index.open(folder, settings)
    assert len(after) == count and SEED_QUOTE in after.search("Who called for UN visits?")[0].quote.text
    # The next writer finishes the job and clears what the killed one left.
    report = after.ingest([corpus])
    assert len(report.added) == 40 and len(after) == count + 40
    assert not list(folder.glob("gen-*.tmp"))
    if store == "milvus":
        from rag.store.milvus import client, collection_name, collection_prefix

        # What a writer killed after filling its collection leaves: a collection no generation
        # names. The next writer drops it; the live one and the one before it stay (kept, like
        # their folders, for readers that still have them open).
        milvus = client(settings)
        orphan = collection_name(folder / "gen-20260101-000000-deadbeef.tmp")
        milvus.create_collection(orphan, dimension=4)
        (corpus / "one-more.md").write_text("The ferry to Oslo sails at noon.", encoding="utf-8")
        after.ingest([corpus])
        live = {n for n in milvus.list_collections() if n.startswith(collection_prefix(folder))}
        assert orphan not in live
        assert live == {collection_name(p) for p in folder.glob("gen-*") if p.is_dir()}
        assert after.snapshot().manifest["dense"]["collection"] in live


def test_a_missing_milvus_collection_is_refused_in_one_line(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    settings = store_settings("milvus", request)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.md").write_text("The lighthouse keeper logs every ship.", encoding="utf-8")
    index = Index.build([tmp_path / "corpus"], tmp_path / "idx", settings=settings)
    from rag.store.milvus import client

    client(settings).drop_collection(index.snapshot().manifest["dense"]["collection"])
    with pytest.raises(IndexCorruptError, match="collection .* is missing") as caught:
        Index.open(tmp_path / "idx", settings)
    assert "\n" not in str(caught.value)


def test_a_milvus_index_opens_with_the_store_its_manifest_records(request: pytest.FixtureRequest,
                                                                   tmp_path: Path) -> None:
    """Opened without naming the store, only where the server is: the manifest says the rest."""
    settings = store_settings("milvus", request)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.md").write_text("The lighthouse keeper logs every ship.", encoding="utf-8")
    Index.build([tmp_path / "corpus"], tmp_path / "idx", settings=settings)
    from rag.store.snapshot import settings_from_manifest

    merged = settings_from_manifest(tmp_path / "idx", Settings(milvus_uri=settings.milvus_uri))
    assert merged.store == "milvus"
    index = Index.open(tmp_path / "idx", merged)
    assert index.stats()["store"] == "milvus + milvus" and index.search("lighthouse", k=1)[0].name == "a.md"

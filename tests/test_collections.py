"""Named collections under one index folder: separate on disk, searched one at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import Index, RagError
from rag.collections import COLLECTIONS, collection_folder, list_collections
from rag.errors import CollectionError

LIGHTHOUSE = "The Vigil Point lighthouse was designed by Ingrid Halvorsen in 1911 and stands 41 metres tall.\n"
BAKERY = "The Saltmarsh bakery bakes rye bread every Tuesday; its sourdough starter is ninety years old.\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = tmp_path_factory.mktemp("collection-docs")
    (docs / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    (docs / "bakery.txt").write_text(BAKERY, encoding="utf-8")
    root = tmp_path_factory.mktemp("collection-index")
    Index.build([docs / "lighthouse.txt"], root)                         # the folder's own index
    Index.build([docs / "bakery.txt"], root, collection="food")
    return root


def test_collections_are_listed_and_kept_in_their_own_folders(folder: Path) -> None:
    assert list_collections(folder) == ["default", "food"]
    assert collection_folder(folder, "food") == folder.resolve() / COLLECTIONS / "food"
    assert Index.open(folder, collection="food").folder == folder.resolve() / COLLECTIONS / "food"


def test_a_question_searches_only_its_collection(folder: Path) -> None:
    food = Index.open(folder, collection="food")
    assert [d.name for d in food.documents()] == ["bakery.txt"]
    assert all(h.name == "bakery.txt" for h in food.search("Who designed the lighthouse?", k=5))
    # An old single-index folder opens as before, and "default" names it.
    for index in (Index.open(folder), Index.open(folder, collection="default")):
        assert [d.name for d in index.documents()] == ["lighthouse.txt"]
        assert index.ask("Who designed the lighthouse?").span == "Ingrid Halvorsen"


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "x" * 65])
def test_names_that_cannot_be_folders_are_refused(folder: Path, name: str) -> None:
    with pytest.raises(CollectionError) as info:
        Index.open(folder, collection=name)
    assert isinstance(info.value, RagError)


def test_a_server_opens_every_collection_with_its_settings(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # rag serve's environment (an LLM endpoint, the answerer, k) applies to every collection it
    # serves, not only the default one; what shapes an index still comes from its manifest.
    from rag.collections import Collections

    monkeypatch.setenv("RAG_K", "3")
    monkeypatch.setenv("RAG_LLM_MODEL", "local-model")
    library = Collections(folder)
    for name in (None, "food"):
        index = library.get(name)
        assert (index.settings.k, index.settings.llm_model) == (3, "local-model")
    assert library.get("food").ask("When is rye bread baked?").found

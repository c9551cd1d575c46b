"""A paged file type from outside the package: its reader and one ``register`` line, nothing else.

The toy format is a deck of cards in a text file, cards separated by a line "---". Once it is
registered, a folder of them is found, read, indexed, searched and answered from, and the
citation names its place the way the format says: "card 2".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import Index, file_types
from rag.file_types import Format, register
from rag.ingest.reading import FileRead, ReadContext
from rag.types import Page


def read_cards(path: Path, context: ReadContext) -> FileRead:
    """One page per card: the text between lines "---"."""
    cards = path.read_text(encoding="utf-8").split("\n---\n")
    return FileRead(pages=[Page(source=str(path), page=n, text=card.strip()) for n, card in enumerate(cards, 1)])


@pytest.fixture
def toy_cards(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The table is the process's: the registration ends with the test.
    monkeypatch.setattr(file_types, "_BY_SUFFIX", dict(file_types._BY_SUFFIX))
    register(Format("toy cards", (".toy",), f"{__name__}:read_cards", unit="card"))
    yield


@pytest.mark.usefixtures("toy_cards")
def test_a_registered_paged_type_is_indexed_and_cited_by_its_own_word(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouse.toy").write_text(
        "The harbour has a small fishing fleet and a market on Saturdays.\n---\n"
        "The lighthouse was designed by Margaret Quill in 1871.\n---\n"
        "The ferry to the island leaves twice a day in summer.\n", encoding="utf-8")
    index = Index.build([docs], tmp_path / "index")

    assert index.last_report is not None and index.last_report.added == (str(docs / "lighthouse.toy"),)
    assert index.documents()[0].pages == 3
    answer = index.ask("Who designed the lighthouse?")
    assert answer.found, answer
    quote = answer.citations[0]
    assert quote.page == 2 and quote.place == "card 2"
    assert "Margaret Quill" in quote.text
    assert file_types.page_word(quote.source) == "card"
    assert "toy cards" in [fmt.name for fmt in file_types.formats()]


def test_the_built_in_types_are_read_without_registering() -> None:
    assert file_types.format_for("a.toy") is None
    assert file_types.formats()[: len(file_types.FORMATS)] == file_types.FORMATS

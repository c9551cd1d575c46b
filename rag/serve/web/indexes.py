"""Which index a tab of the page works on: the one the page opens with, or a collection it chose.

Each tab holds its own choice (the collection selector's value) and hands it to every handler;
``PageIndexes`` turns that choice into an ``Index``, so two tabs never see each other's.

Example:
    >>> # indexes = PageIndexes(Index.open("index/"), Collections("index/"))
    >>> # indexes.pick("my-documents").ask("Who called for UN visits?")
"""

from __future__ import annotations

from typing import Any

from rag.collections import DEFAULT_COLLECTION, DEMO_COLLECTION, UPLOADS_COLLECTION, Collections
from rag.errors import IndexNotFoundError
from rag.limits import MAX_PASSAGES
from rag.index import Index

EXAMPLES = ("Does rag need an internet connection?", "How are answers checked against the documents?",
            "How can other machines on the network reach the chat?")
"""The example questions of the demo's first screen: answered well by the user guide (checked in
tests/serve/test_browser_first_screen.py), and what a new user wants to know first."""


class PageIndexes:
    """The page's index (collection ``shown``) and, with ``collections``, the others a tab may choose."""

    def __init__(self, index: Index, collections: Collections | None = None) -> None:
        self.index = index
        self.collections = collections
        self.settings = index.settings
        self.shown = collections.default if collections is not None else DEFAULT_COLLECTION

    def passages(self, k: float | None) -> int:
        """The page's slider value as a number of passages (the settings' ``k`` when unset)."""
        return max(1, min(MAX_PASSAGES, int(k))) if k else self.settings.k

    def pick(self, collection: str | None) -> Index:
        """The index of the tab's chosen collection, made (empty) when it is new."""
        if self.collections is None or not collection or collection == self.shown:
            return self.index
        try:
            return self.collections.get(collection)
        except IndexNotFoundError:
            return self.collections.create(collection)

    def existing(self, collection: str | None) -> Index:
        """The index of an existing collection: the API reads collections and never makes one, so a
        typo is an error, not an empty answer."""
        if not collection or collection == self.shown:
            return self.index
        if self.collections is None:
            raise IndexNotFoundError(f"no collection {collection!r}: this page serves one index")
        return self.collections.get(collection)

    def choices(self) -> list[str]:
        """The collection menu, read from the index folder each time: a collection made by an upload,
        in this tab or another, is in the menu after a reload."""
        return sorted({self.shown, *self.collections.names()}) if self.collections is not None else [self.shown]

    def is_demo(self, collection: str | None) -> bool:
        return self.collections is not None and (collection or self.shown) == DEMO_COLLECTION

    def upload_target(self, collection: str | None) -> str | None:
        """Where an upload goes: the demo collection stays the user guide, so a user's own files
        start a collection of their own."""
        return UPLOADS_COLLECTION if self.is_demo(collection) else collection

    def first_screen(self, collection: str | None) -> dict[str, Any]:
        """The empty chat of ``collection``: what it holds and how to start (examples for the demo)."""
        demo = self.is_demo(collection)
        return {"placeholder": welcome_html(demo, len(self.pick(collection)) == 0),
                "examples": [{"text": q} for q in EXAMPLES] if demo else []}


def welcome_html(demo: bool, empty: bool) -> str:
    """The first screen of the chat: what the collection holds and the two ways to start."""
    if demo:
        return ('<div class="rag-welcome"><p><b>This demo holds rag\'s own user guide.</b> Try a question below, '
                'or type your own.</p><p><b>Your documents:</b> open <b>Library</b> and drop your files (PDF, '
                'Word, PowerPoint, text and more) on <i>Add documents</i>. They go to a collection of their own, '
                '<i>my-documents</i>.</p><p class="rag-muted">Every answer quotes its sources word for word; the '
                'quotes open in the Sources panel.</p></div>')
    if empty:
        return ('<div class="rag-welcome"><p><b>Nothing is indexed here yet.</b></p><p>Open <b>Library</b> and '
                'drop your files (PDF, Word, PowerPoint, text and more) on <i>Add documents</i>, then ask about '
                'them.</p></div>')
    return ('<div class="rag-welcome"><p><b>Ask anything about your documents.</b></p><p class="rag-muted">Every '
            'answer quotes its sources word for word; the quotes open in the Sources panel.</p></div>')

"""Named collections: several separate indexes kept under one index folder.

An index folder may hold its own index (the *default* collection, exactly as before collections
existed, so old folders open unchanged) and any number of named ones under ``collections/NAME/``,
each a complete index folder of its own with its own generations, lock and cache. Nothing inside
``Index`` changes: a collection is only a folder, resolved here. Keeping collections apart on disk
(rather than tagging chunks) means a question can never reach another collection's passages, and
removing a collection is removing a folder.

Example:
    >>> from rag import Index
    >>> from rag.collections import list_collections
    >>> index = Index.build(["~/reports"], "index/", collection="reports")
    >>> list_collections("index/")
    ['reports']
    >>> Index.open("index/", collection="reports").ask("What was the revenue?")
"""

from __future__ import annotations

import threading
from pathlib import Path

from rag.collection_paths import (  # noqa: F401 - the names users of collections import from here
    COLLECTIONS,
    DEFAULT_COLLECTION,
    DEMO_COLLECTION,
    UPLOADS_COLLECTION,
    check_name,
    collection_folder,
    has_index,
    list_collections,
)
from rag.errors import IndexNotFoundError
from rag.index import Index
from rag.settings import Settings
from rag.store.snapshot import settings_from_manifest


class Collections:
    """The collections of one index folder, each opened once and shared by every caller.

    The servers (``rag mcp``, the OpenAI-compatible API) answer for many collections at once;
    opening an index loads its vectors, so each is opened on first use and then kept. An index is
    thread-safe for reading, and picks up another process's ingest on its next query.

    Example:
        >>> library = Collections("index/", default="demo")
        >>> library.get().ask("How do I add documents?").text
        >>> library.get("reports").search("revenue", k=3)
    """

    def __init__(self, folder: str | Path, default: str | None = None) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.default = check_name(default) if default else DEFAULT_COLLECTION
        self._open: dict[str, Index] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The collections that hold an index, the default one included when it exists."""
        return list_collections(self.folder)

    def create(self, name: str, settings: Settings | None = None) -> Index:
        """Collection ``name``, made empty (nothing is written until its first ingest) when it is new."""
        name = check_name(name)
        with self._lock:
            index = self._open.get(name)
            if index is None:
                folder = collection_folder(self.folder, name)
                base = settings or Settings.from_env()
                index = Index.open(folder, settings_from_manifest(folder, base)) if has_index(folder) else Index(folder, base)
                self._open[name] = index
            return index

    def put(self, name: str, index: Index) -> None:
        """Serve ``index`` as collection ``name`` (one already open, say the web page's), not a second copy."""
        with self._lock:
            self._open[check_name(name)] = index

    def get(self, name: str | None = None) -> Index:
        """The index of collection ``name`` (the default one when empty).

        Raises ``IndexNotFoundError`` naming the collections there are when ``name`` holds no index.
        """
        name = check_name(name) if name else self.default
        with self._lock:
            index = self._open.get(name)
            if index is None:
                if not has_index(collection_folder(self.folder, name)):
                    there = ", ".join(self.names()) or "none yet"
                    raise IndexNotFoundError(
                        f"no collection {name!r} in {self.folder} (collections: {there}); build it with: "
                        f"rag ingest PATH... --index {self.folder} --collection {name}")

                # the server's settings (RAG_LLM_*, RAG_ANSWER_MODE) over what the index's manifest shapes
                folder = collection_folder(self.folder, name)
                index = self._open[name] = Index.open(folder, settings_from_manifest(folder, Settings.from_env()))
            return index

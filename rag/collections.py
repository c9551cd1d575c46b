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

import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import IndexNotFoundError, RagError
from .settings import Settings

if TYPE_CHECKING:
    from .index import Index

COLLECTIONS = "collections"
"""Subfolder of an index folder that holds the named collections."""

DEFAULT_COLLECTION = "default"
"""The name of the index kept in the index folder itself (the only one before collections)."""

DEMO_COLLECTION = "demo"
"""The collection ``make run`` fills with this project's user guide."""

UPLOADS_COLLECTION = "my-documents"
"""Where the page puts a user's first upload when the demo collection is the one being shown."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CollectionError(RagError):
    """A collection name that cannot be a folder name, or a collection that does not exist."""


def check_name(name: str) -> str:
    """``name`` if it can name a collection (letters, digits, ``.``, ``_``, ``-``; at most 64).

    Example:
        >>> check_name("reports-2024")
        'reports-2024'
    """
    # The name becomes a folder name: no separators, no "..", nothing a shell or a URL mangles.
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise CollectionError(f"{name!r} cannot name a collection: use letters, digits, '.', '_' or '-' "
                              f"(at most 64, starting with a letter or digit)")
    return name


def collection_folder(folder: str | Path, name: str | None) -> Path:
    """The folder that holds collection ``name`` of the index folder ``folder``.

    ``None`` and ``"default"`` are the index folder itself.

    Example:
        >>> collection_folder("/data/index", "reports")
        PosixPath('/data/index/collections/reports')
    """
    root = Path(folder).expanduser().resolve()
    if name is None or name == DEFAULT_COLLECTION:
        return root
    return root / COLLECTIONS / check_name(name)


def has_index(folder: str | Path) -> bool:
    """Whether ``folder`` holds a built index (cheap: no file is opened but its pointer)."""
    return (Path(folder) / "CURRENT").is_file()


def list_collections(folder: str | Path) -> list[str]:
    """The collections of ``folder`` that hold an index, ``"default"`` first when the folder has one.

    Example:
        >>> list_collections("index/")
        ['default', 'demo', 'my-documents']
    """
    root = Path(folder).expanduser().resolve()
    names = [DEFAULT_COLLECTION] if has_index(root) else []
    parent = root / COLLECTIONS
    if parent.is_dir():
        names += sorted(p.name for p in parent.iterdir()
                        if p.is_dir() and _NAME.fullmatch(p.name) and has_index(p))
    return names



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
        from .index import Index

        name = check_name(name)
        with self._lock:
            index = self._open.get(name)
            if index is None:
                folder = collection_folder(self.folder, name)
                index = Index.open(folder) if has_index(folder) else Index(folder, settings or Settings.from_env())
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
                from .index import Index  # index.py imports this module for collection_folder

                index = self._open[name] = Index.open(self.folder, collection=name)
            return index

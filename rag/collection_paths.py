"""Where the collections of an index folder are: names, folders, and which of them hold an index.

Apart from ``rag.collections`` so that ``rag.index`` can resolve a collection's folder without
importing the module that opens collections with ``Index``: no import cycle.
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.errors import CollectionError

COLLECTIONS = "collections"
"""Subfolder of an index folder that holds the named collections."""

DEFAULT_COLLECTION = "default"
"""The name of the index kept in the index folder itself (the only one before collections)."""

DEMO_COLLECTION = "demo"
"""The collection ``make run`` fills with this project's user guide."""

UPLOADS_COLLECTION = "my-documents"
"""Where the page puts a user's first upload when the demo collection is the one being shown."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


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

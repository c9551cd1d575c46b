"""What API clients are told about where things are: no absolute paths of the server's machine.

A ``/v1`` or MCP client may be on another machine (``--host 0.0.0.0``) or be an agent whose
transcript is shared: ``/home/alice/clients/acme/contract.pdf`` says who the user is and how
their disk is laid out. Replies name a document by ``name`` and by ``source`` relative to its
collection (the folder all of its documents share; ``uploads/x.pdf`` for a page upload), and
error messages name files by their last part.

Example:
    >>> public_message("no index in /home/alice/index/news: build one with: rag ingest PATH...")
    'no index in news: build one with: rag ingest PATH...'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.index import Index

_ABSOLUTE = re.compile(r"(?<![\w.~/])(?:/[^\s/'\"(),:;]+)+/([^\s/'\"(),:;]+)")


def public_message(text: str) -> str:
    """``text`` with every absolute path shortened to its last part (the file or folder name)."""
    return _ABSOLUTE.sub(r"\1", text)


def collection_root(sources: Iterable[str]) -> str:
    """The folder the ``sources`` (absolute paths) all lie in; "" when there are none or only "/" is common."""
    folders = [os.path.dirname(s) for s in sources if os.path.isabs(s)]
    try:
        root = os.path.commonpath(folders) if folders else ""
    except ValueError:
        return ""
    return "" if root == os.path.dirname(root) else root


def public_source(source: str, *roots: str) -> str:
    """``source`` relative to the first of ``roots`` it lies in (else its file name).

    Example:
        >>> public_source("/home/alice/papers/2024/a.pdf", "/home/alice/index", "/home/alice/papers")
        '2024/a.pdf'
    """
    if os.path.isabs(source):
        for root in roots:
            if root and not (relative := os.path.relpath(source, root)).startswith(".."):
                return Path(relative).as_posix()
    return Path(source).name


def public_sources(index: Index) -> dict[str, str]:
    """Each indexed document's ``source`` relative to its collection, keyed by that public path:
    what the page sends to the browser (menus, tooltips) in place of the absolute path, and how a
    choice made there is turned back into the document.

    Example:
        >>> # public_sources(index) -> {"uploads/report.pdf": "/home/alice/index/uploads/report.pdf"}
    """
    folder = str(index.folder)
    documents = index.documents()
    outside = collection_root(d.source for d in documents if not d.source.startswith(folder + os.sep))
    return {public_source(d.source, folder, outside): d.source for d in documents}


def public_records(records: Iterable[Mapping[str, Any]], index: Index) -> list[dict[str, Any]]:
    """Citations, hits or documents (dicts with a ``source``) with ``source`` relative to the
    collection: to its index folder for page uploads, else to the folder its documents share."""
    folder = str(index.folder)
    outside = collection_root(d.source for d in index.documents() if not d.source.startswith(folder + os.sep))
    return [{**r, "source": public_source(r["source"], folder, outside)} if isinstance(r.get("source"), str)
            else dict(r) for r in records]

"""Names to implementations: which class is the embedder, the dense index, the lexical index.

Like txtai's ANN factory: a short name for the shipped backends, or a ``"package.module:Class"``
path for anyone else's, imported only when asked for (so ``faiss`` or ``pymilvus`` is imported
only by an index that uses it). The names are recorded in the manifest of every generation.
"""

from __future__ import annotations

import importlib
from typing import Any

from rag.errors import SettingsError

DENSE = {"faiss": "rag.store.faiss_dense:FaissDenseIndex", "milvus": "rag.store.milvus:MilvusDenseIndex"}
LEXICAL = {"bm25s": "rag.store.bm25:Bm25sLexicalIndex", "milvus": "rag.store.milvus:MilvusLexicalIndex"}
EMBEDDERS = {"onnx": "rag.embed.onnx:OnnxEmbedder", "onnx-int8": "rag.embed.onnx:OnnxInt8Embedder",
             "torch": "rag.embed:TorchEmbedder"}

STORES = {"faiss": ("faiss", "bm25s"), "milvus": ("milvus", "milvus")}
"""A store names a (dense, lexical) pair: ``RAG_STORE=milvus`` keeps vectors and BM25 in Milvus."""

EXTRAS = {"rag.store.milvus": 'pip install -e ".[milvus]"  (pymilvus; milvus-lite for a local server)'}


def resolve(kind: str, name: str, table: dict[str, str]) -> Any:
    """The class a backend name (or ``module:Class`` path) stands for.

    Example:
        >>> resolve("dense index", "faiss", DENSE).__name__
        'FaissDenseIndex'
    """
    path = table.get(name, name)
    module_name, _, attr = path.partition(":")
    if not attr:
        raise SettingsError(f"unknown {kind} {name!r}: use one of {', '.join(sorted(table))} "
                            "or a 'package.module:Class' path")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = EXTRAS.get(module_name, f"is {module_name} installed?")
        raise SettingsError(f"the {kind} {name!r} cannot be imported ({exc}): {hint}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SettingsError(f"the {kind} {name!r}: {module_name} has no {attr}") from None


def is_known(name: str, table: dict[str, str]) -> bool:
    """A shipped name, or something that looks like a class path (checked when it is imported)."""
    return name in table or (":" in name and "." in name.partition(":")[0] + ".")

"""Names to implementations: which class is the embedder, the dense index, the lexical index.

Like txtai's ANN factory: a short name for the shipped backends, or a ``"package.module:Class"``
path for anyone else's, imported only when asked for (so ``faiss`` or ``pymilvus`` is imported
only by an index that uses it). The names are recorded in the manifest of every generation.
Another package gives its backend a short name of its own with one line (``register_dense``,
``register_lexical``, ``register_embedder``).

Example:
    >>> register_dense("annoy", "my_package.annoy_index:AnnoyDenseIndex")
    >>> # Index.build(["docs/"], "index/", settings=Settings(dense_backend="annoy"))
    >>> dense_backend("faiss").__name__
    'FaissDenseIndex'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

from rag.errors import SettingsError

if TYPE_CHECKING:  # the protocols only type what is found here
    from rag.protocols import DenseBackend, Embedder, LexicalBackend

DENSE = {"faiss": "rag.store.faiss_dense:FaissDenseIndex", "milvus": "rag.store.milvus:MilvusDenseIndex"}
LEXICAL = {"bm25s": "rag.store.bm25:Bm25sLexicalIndex", "milvus": "rag.store.milvus:MilvusLexicalIndex"}
EMBEDDERS = {"onnx": "rag.embed.onnx:OnnxEmbedder", "onnx-int8": "rag.embed.onnx:OnnxInt8Embedder",
             "torch": "rag.embed:TorchEmbedder"}

EXTRAS = {"rag.store.milvus": 'pip install -e ".[milvus]"  (pymilvus; milvus-lite for a local server)'}


def dense_backend(name: str) -> DenseBackend:
    """The dense index class ``name`` stands for (a name in ``DENSE`` or a ``module:Class`` path)."""
    return cast("DenseBackend", _resolve("dense index", name, DENSE, ("build", "load")))


def lexical_backend(name: str) -> LexicalBackend:
    """The lexical index class ``name`` stands for (a name in ``LEXICAL`` or a ``module:Class`` path)."""
    return cast("LexicalBackend", _resolve("lexical index", name, LEXICAL, ("build", "load")))


def embedding_backend(name: str) -> type[Embedder]:
    """The embedder class ``name`` stands for (a name in ``EMBEDDERS`` or a ``module:Class`` path)."""
    return cast("type[Embedder]", _resolve("embedding backend", name, EMBEDDERS, ("encode_documents",
                                                                                  "encode_queries")))


def register_dense(name: str, path: str) -> None:
    """Let ``Settings(dense_backend=name)`` stand for the class at ``path`` (``"package.module:Class"``).

    The class is imported when an index first uses it. A name is given once: a shipped or
    registered name cannot be pointed elsewhere (an index on disk records it).
    """
    _register("dense index", DENSE, name, path)


def register_lexical(name: str, path: str) -> None:
    """Let ``Settings(lexical_backend=name)`` stand for the class at ``path``, as ``register_dense``."""
    _register("lexical index", LEXICAL, name, path)


def register_embedder(name: str, path: str) -> None:
    """Let ``Settings(embed_backend=name)`` stand for the class at ``path``, as ``register_dense``."""
    _register("embedding backend", EMBEDDERS, name, path)


def _register(kind: str, table: dict[str, str], name: str, path: str) -> None:
    if not name or ":" in name:
        raise SettingsError(f"a {kind} name cannot be empty or hold ':' (that is a class path): {name!r}")
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise SettingsError(f"the {kind} {name!r} needs a 'package.module:Class' path, not {path!r}")
    if table.get(name, path) != path:
        raise SettingsError(f"the {kind} name {name!r} is taken by {table[name]}")
    table[name] = path


def _resolve(kind: str, name: str, table: dict[str, str], members: tuple[str, ...]) -> object:
    """The class ``name`` stands for, imported now, with the ``members`` its protocol calls."""
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
        found = getattr(module, attr)
    except AttributeError:
        raise SettingsError(f"the {kind} {name!r}: {module_name} has no {attr}") from None
    missing = [member for member in members if not callable(getattr(found, member, None))]
    if missing:
        raise SettingsError(f"the {kind} {name!r} ({path}) has no {', '.join(missing)}: see rag.protocols")
    return found

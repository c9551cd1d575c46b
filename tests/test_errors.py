"""The library's errors: each one lives in ``rag.errors`` and is exported from ``rag``."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import rag
import rag.errors
from rag.errors import RagError

PACKAGE = Path(rag.__file__).resolve().parent


def _errors() -> set[str]:
    return {name for name, value in vars(rag.errors).items()
            if inspect.isclass(value) and issubclass(value, RagError)}


def test_every_error_is_exported_from_the_package() -> None:
    assert _errors() <= set(rag.__all__)


def test_no_module_but_rag_errors_defines_an_error() -> None:
    # A subclass of any error means a new one; it belongs beside the others, where a reader looks for them.
    errors = _errors()
    elsewhere = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.name}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path.name != "errors.py" or path.parent != PACKAGE
                 for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, ast.ClassDef)
                 and any(isinstance(base, ast.Name | ast.Attribute) and ast.unparse(base).split(".")[-1] in errors
                         for base in node.bases)]
    assert not elsewhere, "errors defined outside rag/errors.py:\n" + "\n".join(elsewhere)

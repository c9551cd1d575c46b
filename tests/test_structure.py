"""The package's shape: layers that import only those below them, no import cycles (not even inside
functions or under ``TYPE_CHECKING``), imports inside functions only where they defer something heavy
(each saying why), every module imports alone, and nothing heavy (torch, sentence-transformers, faiss,
pymilvus) is imported by ``import rag``.

``make lint`` runs this file's graph tests beside ruff and mypy."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rag"


def _modules() -> dict[str, Path]:
    return {".".join(("rag", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every ``rag`` module that ``name`` imports anywhere in its file: inside functions and under
    ``TYPE_CHECKING`` too (an annotation-only import still ties the two modules together)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c in known and c != name}
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    # The package itself re-exports the public API; what it imports is not a dependency of them.
    return {name: _imports(name, path, set(modules)) - {"rag"} for name, path in modules.items() if name != "rag"}


def test_the_module_import_graph_has_no_cycle() -> None:
    graph = _graph()
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


LAYERS: tuple[tuple[str, ...], ...] = (
    ("rag.serve", "rag.integrations"),  # everything above Index: CLI, web page, /v1, MCP, framework retrievers
    ("rag.eval",),  # question sets -> metrics and reports, through Index
    ("rag.index", "rag.pipeline", "rag.pageview", "rag.collections", "rag.collection_paths", "rag.watch"),
    ("rag.search",),  # retriever, fusion, question focus, follow-ups
    ("rag.answer",),  # reader, sentence and table answers, summaries, the LLM answerer
    ("rag.store",),  # a generation on disk, its writer, FAISS, BM25, Milvus
    ("rag.embed",),
    ("rag.ingest",),  # files -> pages -> chunks: readers by file type, PDF, OCR, chunking, tables
    ("rag.types", "rag.errors", "rag.cancel", "rag.settings", "rag.text", "rag.limits", "rag.protocols",
     "rag.backends", "rag.file_types", "rag.verify"),  # the ground floor
)
"""The layers, top first: a module imports only from its own layer and those below it."""


def _layer(module: str) -> int:
    for number, layer in enumerate(LAYERS):
        if any(module == top or module.startswith(top + ".") for top in layer):
            return number
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def test_each_layer_imports_only_the_layers_below_it() -> None:
    upward = [f"{source} -> {target}" for source, targets in sorted(_graph().items()) for target in sorted(targets)
              if _layer(target) < _layer(source)]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_imports_inside_functions_say_why_they_wait() -> None:
    # An import inside a function hides a dependency from the reader and from the graph above;
    # it is kept only to defer something heavy or optional, and the comment says which.
    silent = []
    for path in sorted(_modules().values()):
        lines = path.read_text(encoding="utf-8").splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            imports = [n for n in function.body if isinstance(n, ast.Import | ast.ImportFrom)]
            imports += [n for stmt in function.body if not isinstance(stmt, ast.Import | ast.ImportFrom)
                        for n in ast.walk(stmt) if isinstance(n, ast.Import | ast.ImportFrom)]
            for node in imports:
                first = node.lineno - 1  # a run of imports shares the comment above its first line
                while first > 0 and lines[first - 1].lstrip().startswith(("import ", "from ")):
                    first -= 1
                said = any("#" in lines[i] for i in range(first - 1, node.end_lineno or node.lineno))
                if not said:
                    silent.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not silent, "imports inside functions without a why:\n" + "\n".join(silent)


def test_the_cycle_finder_finds_a_hidden_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(n for n in _modules() if not n.startswith("rag.serve.web")))
def test_every_module_imports_alone_in_a_fresh_interpreter(name: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=300)
    missing = re.search(r"ModuleNotFoundError: No module named '([^']+)'", done.stderr)
    if done.returncode and missing and not missing.group(1).startswith("rag"):
        pytest.skip(f"{name} needs the optional package {missing.group(1)}")
    assert done.returncode == 0, done.stderr[-2000:]


def test_importing_the_library_and_cli_imports_nothing_heavy() -> None:
    code = ("import sys, rag, rag.serve.cli, rag.index, rag.search.retriever, rag.store.snapshot, rag.embed, rag.pipeline; "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'faiss', 'pymilvus', 'onnxruntime', "
            "'gradio', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"

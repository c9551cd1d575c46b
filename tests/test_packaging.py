"""What ``make run`` installs, and the wheel pip builds from this checkout.

``make run`` installs what running needs and nothing more (the test tools and the MCP, LangChain,
LlamaIndex and Milvus extras are ``make test``'s); the wheel carries the reader model, the page's
CSS and scripts and ``py.typed``, and setuptools builds it without "Package would be ignored".
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]

RUNTIME_DATA = ("rag/py.typed", "rag/models/reader-int8.onnx", "rag/models/reader.json",
                "rag/models/sentence-choice.json", "rag/serve/static/page.css", "rag/serve/static/narrow.js")
"""Files the installed package reads at run time that are not Python modules."""


def _recipe(makefile: str, target: str) -> tuple[list[str], list[str]]:
    """The prerequisites and the command lines of ``target`` in ``makefile``."""
    match = re.search(rf"^{re.escape(target)}:([^\n]*)\n((?:\t[^\n]*\n)*)", makefile, re.MULTILINE)
    assert match, f"no target {target} in the Makefile"
    return match.group(1).replace("|", " ").split(), [line.strip() for line in match.group(2).splitlines()]


def test_make_run_installs_what_running_needs_and_make_test_the_rest() -> None:
    makefile = (ROOT / "Makefile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    prerequisites, _ = _recipe(makefile, "run")
    assert prerequisites == ["install"]
    assert _recipe(makefile, "install")[0] == ["$(STAMP)"]
    _, installs = _recipe(makefile, "$(STAMP)")
    assert installs == ["$(BIN)/pip install -q torch==2.13.0", "$(BIN)/pip install -q -e .", "touch $(STAMP)"]
    # The test target brings every extra, so that their tests run.
    _, test_installs = _recipe(makefile, "$(TEST_STAMP)")
    assert f'$(BIN)/pip install -q -e ".[{",".join(extras)}]"' in test_installs
    assert "install-test" in _recipe(makefile, "test")[0]
    # Nothing only the tests or an integration use is a dependency of running.
    names = {re.split(r"[\[<>=~; ]", requirement, maxsplit=1)[0].lower() for requirement in project["dependencies"]}
    for extra in extras.values():
        for requirement in extra:
            assert re.split(r"[\[<>=~; ]", requirement, maxsplit=1)[0].lower() not in names, requirement


def test_the_wheel_carries_the_models_and_page_files_without_a_setuptools_warning(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="building the wheel here uses this environment's setuptools")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "rag", source / "rag", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # -v: setuptools' warnings reach the output only when pip is verbose; no isolation: no download.
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                            "-v", "-w", str(tmp_path / "wheel")], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "would be ignored" not in built.stdout + built.stderr
    (wheel,) = (tmp_path / "wheel").glob("rag-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not [name for name in RUNTIME_DATA if name not in names]
    assert "rag/serve/web/page.py" in names and not [name for name in names if name.startswith("tests/")]

"""Doctored index files, with the manifest rewritten to match them, are refused at open in one line.

The checksums in the manifest catch accidental damage; these files were changed on purpose and
the manifest updated to match, so only the loaders' own checks (headers against the manifest and
the file sizes, posting lists against the chunk count) stand between them and FAISS allocating
gigabytes or bm25s failing in the middle of a search.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rag import Index, IndexCorruptError, Settings
from rag.store.snapshot import MANIFEST, current_generation, file_sha256

FAST = Settings(embed_backend="onnx-int8")
CAP = 6 << 30
"""Address-space cap of the child that opens a doctored index: 6 GiB, half the 12 GB a doctored
FAISS header once made it ask for."""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = tmp_path_factory.mktemp("docs")
    for n in range(4):
        (docs / f"log{n}.txt").write_text(f"Harbour log {n}: the barge left Porto at dawn with {n + 3} tonnes of "
                                          f"salt for the market of Riga. " * 3, encoding="utf-8")
    folder = tmp_path_factory.mktemp("pristine") / "index"
    Index.build([docs], folder, settings=FAST)
    return folder


def doctor(pristine: Path, tmp_path: Path, name: str, change) -> Path:  # noqa: ANN001 - Callable[[Path], None]
    """A copy of the index with one file changed and the manifest rewritten to match it."""
    folder = tmp_path / "index"
    shutil.copytree(pristine, folder)
    gen = folder / current_generation(folder)
    change(gen / name)
    manifest = json.loads((gen / MANIFEST).read_text())
    manifest["files"][name] = {"size": (gen / name).stat().st_size, "sha256": file_sha256(gen / name)}
    (gen / MANIFEST).write_text(json.dumps(manifest))
    return folder


def _huge_faiss_vector(path: Path) -> None:
    # The flat index's vector of floats says it holds 3e9 of them (12 GB); the bytes are unchanged.
    data = bytearray(path.read_bytes())
    struct.pack_into("<Q", data, 37, 3_000_000_000)
    path.write_bytes(bytes(data))


def _open_capped(folder: Path) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({CAP}, {CAP}))
        from rag.serve.cli import main
        sys.exit(main(["search", "salt", "--index", {str(folder)!r}]))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_a_doctored_faiss_header_is_refused_in_one_line_under_a_memory_cap(pristine: Path, tmp_path: Path) -> None:
    folder = doctor(pristine, tmp_path, "dense.faiss", _huge_faiss_vector)
    result = _open_capped(folder)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "damaged" in lines[0] and "dense.faiss" in lines[0], result.stderr
    with pytest.raises(IndexCorruptError, match="dense.faiss"):
        Index.open(folder)


@pytest.mark.parametrize("edit", ["count", "dimension", "truncated codes"])
def test_faiss_headers_that_disagree_with_the_manifest_are_refused(pristine: Path, tmp_path: Path,
                                                                    edit: str) -> None:
    def change(path: Path) -> None:
        data = bytearray(path.read_bytes())
        if edit == "count":
            struct.pack_into("<q", data, 8, struct.unpack_from("<q", data, 8)[0] + 1)
        elif edit == "dimension":
            struct.pack_into("<i", data, 4, 768)
        else:
            del data[-400:]
        path.write_bytes(bytes(data))

    with pytest.raises(IndexCorruptError, match="dense.faiss"):
        Index.open(doctor(pristine, tmp_path, "dense.faiss", change))


def _npy(path: Path, change) -> None:  # noqa: ANN001
    array = np.load(path, allow_pickle=False)
    np.save(path, change(array.copy()), allow_pickle=False)


_BM25_EDITS = {
    "document id past the end": ("bm25/indices.csc.index.npy", lambda p: _npy(p, lambda a: a + 10_000)),
    "posting lists out of order": ("bm25/indptr.csc.index.npy", lambda p: _npy(p, lambda a: a[::-1].copy())),
    "posting list past the data": ("bm25/indptr.csc.index.npy", lambda p: _npy(p, lambda a: a * 3)),
    "weights not finite": ("bm25/data.csc.index.npy", lambda p: _npy(p, lambda a: a * np.inf)),
    "document count": ("bm25/params.index.json",
                       lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "num_docs": 10 ** 9}))),
    "vocabulary not a map": ("bm25/vocab.index.json", lambda p: p.write_text("[1, 2, 3]")),
    "vocabulary ids past the lists": ("bm25/vocab.index.json",
                                      lambda p: p.write_text(json.dumps({"salt": 10 ** 9}))),
}


@pytest.mark.parametrize("edit", sorted(_BM25_EDITS))
def test_doctored_bm25_files_are_refused_at_open_not_at_search(pristine: Path, tmp_path: Path, edit: str) -> None:
    name, change = _BM25_EDITS[edit]
    folder = doctor(pristine, tmp_path, name, change)
    with pytest.raises(IndexCorruptError, match="damaged") as caught:
        Index.open(folder)
    assert "\n" not in str(caught.value) and "--rebuild" in str(caught.value)

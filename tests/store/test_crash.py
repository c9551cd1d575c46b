"""Crash safety: ``rag ingest`` killed with SIGKILL at any moment, and damaged index files.

The kill test drives the real command in a subprocess and kills it at a random moment and at the
moments that matter most (a new generation being written, committed, sealed, switched to). After
every kill the previous index must open, pass its checksums and agree with itself: vectors,
FAISS, BM25 and the metadata hold the same number of chunks, row for row; a rerun then completes.

The subprocesses use the int8 ONNX backend only because it starts in one second instead of ten;
the write path under test is the same for every backend.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.common import RAG, assert_consistent, kill_ingest_when, write_corpus
from rag import Index, IndexCorruptError, IndexMismatchError, Settings
from rag.store.snapshot import CURRENT, MANIFEST, current_generation

FAST = Settings(embed_backend="onnx-int8")


@pytest.fixture
def base_index(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    write_corpus(docs / "base", "base", files=4, sentences=20)
    folder = tmp_path / "index"
    Index.build([docs / "base"], folder, settings=FAST)
    return docs, folder


def test_sigkill_at_any_moment_leaves_the_previous_index_whole(base_index: tuple[Path, Path]) -> None:
    docs, folder = base_index
    before = len(assert_consistent(folder))
    rng = random.Random(7)
    batches = []
    for trial, stage in enumerate(["writing", "committing", "switching", "random"]):
        batch = docs / f"batch{trial}"
        write_corpus(batch, f"t{trial}", files=6, sentences=20)
        batches.append(batch)
        outcome = kill_ingest_when(folder, [batch], stage, rng)
        print(f"{stage}: {outcome}")
        index = assert_consistent(folder)
        names = {d.name for d in index.documents()}
        if outcome == "killed":
            # All of a batch or nothing of it: a generation is never half-written.
            new = {p.name for p in batch.iterdir()}
            assert new <= names or not (new & names)
        before = len(index)
    # A rerun completes the work that the kills interrupted and cleans up after them.
    result = subprocess.run([*RAG, "ingest", *map(str, batches), "--index", str(folder), "--no-progress"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    index = assert_consistent(folder)
    assert len(index) >= before
    assert {d.name for d in index.documents()} >= {p.name for b in batches for p in b.iterdir()}
    assert not list(folder.glob("gen-*.tmp"))
    hits = index.search("Which trawler left Bergen?", k=3)
    assert hits and all(h.chunk.text in index.page_text(h.source, h.page) for h in hits)


def test_stale_half_written_generation_is_ignored_and_cleaned(base_index: tuple[Path, Path]) -> None:
    docs, folder = base_index
    live = current_generation(folder)
    stale = folder / "gen-20000101-000000-deadbeef.tmp"
    shutil.copytree(folder / live, stale)
    (stale / "vectors.npy").write_bytes(b"half")
    assert current_generation(folder) == live
    assert_consistent(folder)
    write_corpus(docs / "more", "more", files=1, sentences=5)
    Index.open(folder).ingest([docs / "more"])
    assert not stale.exists()
    assert_consistent(folder)


# --------------------------------------------------------------------------------------------
# Damaged index files: every file of a generation, flipped and truncated


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = tmp_path_factory.mktemp("docs")
    write_corpus(docs, "pristine", files=3, sentences=15)
    folder = tmp_path_factory.mktemp("pristine") / "index"
    Index.build([docs], folder, settings=FAST)
    return folder


def _copy(pristine: Path, tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "index"
    shutil.copytree(pristine, folder)
    return folder, folder / current_generation(folder)


def _generation_files(pristine: Path) -> list[str]:
    gen = pristine / current_generation(pristine)
    return sorted(p.relative_to(gen).as_posix() for p in gen.rglob("*") if p.is_file())


def test_generation_holds_every_part(pristine: Path) -> None:
    assert {"manifest.json", "meta.sqlite", "vectors.npy", "dense.faiss"} <= set(_generation_files(pristine))
    assert any(name.startswith("bm25/") for name in _generation_files(pristine))


@pytest.mark.parametrize("damage", ["flip-one", "flip-many", "truncate-half", "truncate-empty", "delete"])
def test_damaged_file_is_detected_with_a_clear_message(pristine: Path, tmp_path: Path, damage: str) -> None:
    rng = random.Random(damage)
    for name in _generation_files(pristine):
        if name == MANIFEST:
            continue  # the manifest holds the checksums; it has its own test below
        case = tmp_path / name.replace("/", "_")
        folder, gen = _copy(pristine, case)
        path = gen / name
        data = bytearray(path.read_bytes())
        if damage == "delete":
            path.unlink()
        elif damage.startswith("truncate"):
            path.write_bytes(bytes(data[:len(data) // 2 if damage == "truncate-half" else 0]))
        else:
            for _ in range(1 if damage == "flip-one" else 64):
                i = rng.randrange(len(data))
                data[i] ^= 1 << rng.randrange(8)
            path.write_bytes(bytes(data))
        with pytest.raises(IndexCorruptError) as caught:
            Index.open(folder)
        message = str(caught.value)
        assert "rag ingest" in message and "--rebuild" in message, message
        assert name.split("/")[-1] in message or "manifest" in message, message


def _edit_manifest(folder: Path, gen: Path, edit) -> None:  # noqa: ANN001 - Callable[[dict], None]
    manifest = json.loads((gen / MANIFEST).read_text())
    edit(manifest)
    (gen / MANIFEST).write_text(json.dumps(manifest))


_MANIFEST_EDITS = {
    "chunk count": lambda m: m.update(chunks=m["chunks"] + 1),
    "dimension": lambda m: m.update(dim=m["dim"] * 2),
    "dimension missing": lambda m: m.pop("dim"),
    "dimension not a number": lambda m: m.update(dim="384x"),
    "file list not a table": lambda m: m.update(files=[]),
    "file entry without size": lambda m: next(iter(m["files"].values())).pop("size"),
    "checksum": lambda m: next(iter(m["files"].values())).update(sha256="0" * 64),
    "fingerprint": lambda m: m.update(fingerprint="0123456789abcdef"),
    "stored settings": lambda m: m["settings"].update(chunk_tokens=m["settings"]["chunk_tokens"] + 8),
    "stored backend": lambda m: m["settings"].update(embed_backend="gpu"),
    "not an object": lambda m: m.clear(),
}


@pytest.mark.parametrize("edit", sorted(_MANIFEST_EDITS))
def test_inconsistent_manifest_is_reported_as_damage(pristine: Path, tmp_path: Path, edit: str) -> None:
    folder, gen = _copy(pristine, tmp_path)
    _edit_manifest(folder, gen, _MANIFEST_EDITS[edit])
    with pytest.raises(IndexCorruptError, match="rebuild"):
        Index.open(folder)


def test_random_damage_to_the_manifest_never_passes_silently(pristine: Path, tmp_path: Path) -> None:
    rng = random.Random(11)
    expected = [h.chunk.id for h in Index.open(pristine).search("tonnes of salt", k=5)]
    original = (pristine / current_generation(pristine) / MANIFEST).read_bytes()
    for trial in range(40):
        folder, gen = _copy(pristine, tmp_path / str(trial))
        data = bytearray(original)
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
        (gen / MANIFEST).write_bytes(bytes(data))
        try:
            index = Index.open(folder)
        except (IndexCorruptError, IndexMismatchError):
            continue  # refused loudly: a damaged manifest, or one naming parts that were never shipped
        # A flip in a field that shapes nothing (the creation date, the dense index label)
        # leaves a whole index: it must then answer exactly as before.
        assert [h.chunk.id for h in index.search("tonnes of salt", k=5)] == expected, bytes(data[i - 20:i + 20])


@pytest.mark.parametrize("content", [b"", b"\n", b"gen-nope\n", b"../../etc\n", b"\xff\xfe\xdc\x00garbage",
                                     b"gen-2026" + bytes(range(128, 160))])
def test_damaged_current_pointer(pristine: Path, tmp_path: Path, content: bytes) -> None:
    folder, _ = _copy(pristine, tmp_path)
    (folder / CURRENT).write_bytes(content)
    with pytest.raises(IndexCorruptError, match="CURRENT"):
        Index.open(folder)


def test_cli_reports_a_damaged_index_in_one_line_and_rebuild_recovers(pristine: Path, tmp_path: Path) -> None:
    folder, gen = _copy(pristine, tmp_path)
    (gen / "dense.faiss").write_bytes(b"\x00" * 100)
    result = subprocess.run([*RAG, "search", "salt", "--index", str(folder)], capture_output=True, text=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "dense.faiss is damaged" in lines[0] and "--rebuild" in lines[0]
    assert "Traceback" not in result.stderr
    docs = {Path(d.source).parent for d in Index.open(pristine).documents()}
    # --rebuild starts from the default settings: name the backend the damaged index was built with.
    result = subprocess.run([*RAG, "ingest", *map(str, docs), "--index", str(folder), "--rebuild", "--no-progress",
                             "--backend", FAST.embed_backend], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(assert_consistent(folder)) == len(Index.open(pristine))


def test_damaged_embedding_cache_costs_time_not_the_index(pristine: Path, tmp_path: Path) -> None:
    folder, _ = _copy(pristine, tmp_path)
    cache = folder / "cache" / "embeddings.sqlite"
    for extra in cache.parent.glob("embeddings.sqlite-*"):
        extra.unlink()
    cache.write_bytes(cache.read_bytes()[:1000] + b"\x00garbage" * 500)
    docs = tmp_path / "more"
    write_corpus(docs, "cache", files=1, sentences=5)
    index = Index.open(folder)
    report = index.ingest([docs])
    assert len(report.added) == 1
    assert len(Index.open(folder)) == len(index)

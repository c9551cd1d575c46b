"""The SQLite side of a generation: what pages and chunks keep besides their text.

OCR pages keep their flag and line boxes; chunks keep their context (a table header, a page
heading), which is searched but never quoted. Generations written before those columns existed
stay readable and are copied forward by the next ingest without a rebuild.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from rag import Index, Settings
from rag.ingest.chunk import chunk_id, content_hash
from rag.store.snapshot import META, FileRecord, current_generation, file_sha256, open_snapshot
from rag.store.writer import GenerationWriter
from rag.types import Chunk, Page, TextBox


def _write_generation(folder: Path, settings: Settings) -> None:
    source = "/scans/letter.pdf"
    text = "Dear Ms. Okafor, the orchard survey is due on Friday."
    boxes = (TextBox(0, 16, 0.1, 0.1, 0.4, 0.12), TextBox(17, len(text), 0.1, 0.13, 0.8, 0.15))
    page = Page(source=source, page=1, text=text, ocr=True, boxes=boxes)
    chunk = Chunk(chunk_id(source, 1, 0, text), source, 1, 0, len(text), text, 14,
                  context="Letter from the survey office", ocr=True)
    rng = np.random.default_rng(3)
    vector = rng.standard_normal((1, 384)).astype(np.float32)
    vector /= np.linalg.norm(vector)
    writer = GenerationWriter(folder, settings, 384, None, set())
    writer.add(FileRecord(source, "0" * 64, 10, 0.0), [page], [chunk], [content_hash(chunk.searchable)], vector)
    writer.commit()


def test_ocr_pages_keep_their_flag_and_boxes_and_chunks_their_context(tmp_path: Path) -> None:
    settings = Settings()
    _write_generation(tmp_path, settings)
    snapshot = open_snapshot(tmp_path, settings)
    page = snapshot.page("/scans/letter.pdf", 1)
    assert page is not None and page.ocr
    assert page.boxes[1] == TextBox(17, len(page.text), 0.1, 0.13, 0.8, 0.15)
    assert page.text[page.boxes[0].start:page.boxes[0].end] == "Dear Ms. Okafor,"
    (chunk,) = snapshot.chunks([0])
    assert chunk.ocr and chunk.context == "Letter from the survey office"
    assert chunk.searchable == "Letter from the survey office\n" + chunk.text
    assert snapshot.page("/scans/letter.pdf", 2) is None


def _drop_new_columns(folder: Path) -> None:
    """Make the live generation look like one written before the OCR and context columns."""
    generation = folder / str(current_generation(folder))
    db = sqlite3.connect(generation / META)
    for table, column in (("pages", "ocr"), ("pages", "boxes"), ("chunks", "context"), ("chunks", "ocr")):
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.commit()
    db.execute("VACUUM")
    db.close()
    manifest_path = generation / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    meta = generation / META
    manifest["files"][META] = {"size": meta.stat().st_size, "sha256": file_sha256(meta)}
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")


def test_an_index_from_before_the_columns_is_read_and_copied_forward(tmp_path: Path, seed_file: Path) -> None:
    folder = tmp_path / "index"
    before = len(Index.build([seed_file], folder))
    _drop_new_columns(folder)
    old = Index.open(folder)
    hits = old.search("Who called for UN visits?", k=3)
    assert "international delegations" in hits[0].quote.text
    assert hits[0].chunk.context == "" and not hits[0].chunk.ocr
    note = tmp_path / "note.md"
    note.write_text("# Orchard\n\nThe orchard of Miriam Okafor covers twelve hectares.\n", encoding="utf-8")
    old.ingest([note])
    again = Index.open(folder)
    assert len(again) == before + 1
    assert "international delegations" in again.search("Who called for UN visits?", k=3)[0].quote.text
    page = again.snapshot().page(str(seed_file.resolve()), 1)
    assert page is not None and not page.ocr and page.boxes == ()


def test_a_setting_fingerprinted_off_its_default_is_named_when_it_differs(tmp_path: Path) -> None:
    # Before: "built with other settings: ;", naming nothing, for a field the defaults leave out.
    import pytest

    from rag import IndexMismatchError

    note = tmp_path / "note.md"
    note.write_text("# Orchard\n\nThe orchard covers twelve hectares.\n", encoding="utf-8")
    Index.build([note], tmp_path / "index", settings=Settings(chunk_context="heading"))
    with pytest.raises(IndexMismatchError, match=r"chunk_context='heading' \(asked: 'title'\)"):
        open_snapshot(tmp_path / "index", Settings())

"""The dense index by size: exact up to ``exact_search_limit``, IVF-SQ8 above, recorded in the
manifest, and the approximate index still finds near-duplicates, with and without filters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rag import Index, Settings
from rag.store.faiss_dense import build_dense_index
from rag.store.snapshot import MANIFEST, current_generation

INT8 = Settings(embed_backend="onnx-int8")
_PLACES = ["Aberdeen", "Bergen", "Cadiz", "Danzig", "Esbjerg", "Faro", "Galway", "Hull", "Izmir", "Jaffa",
           "Kiel", "Lisbon", "Malmo", "Nantes", "Oslo", "Porto", "Quimper", "Riga", "Split", "Tallinn"]
_GOODS = ["salt", "timber", "coal", "wool", "cod", "tin", "copper", "grain", "wine", "amber"]


def unit_vectors(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_kind_switches_above_the_limit_and_finds_near_duplicates() -> None:
    vectors = unit_vectors(4000, seed=1)
    flat, kind = build_dense_index(vectors, Settings(exact_search_limit=4000))
    assert kind == "flat" and flat.ntotal == 4000
    approximate, kind = build_dense_index(vectors, Settings(exact_search_limit=3999))
    assert kind == "ivf-sq8" and approximate.ntotal == 4000 and 1 <= approximate.nprobe < approximate.nlist
    # Near-duplicates of stored vectors (cosine about 0.95) find their original first.
    rows = np.arange(0, 4000, 40)
    noisy = vectors[rows] + unit_vectors(len(rows), seed=2) * 0.3
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    _, found = approximate.search(noisy, 10)
    assert (found[:, 0] == rows).mean() >= 0.95


def write_corpus(folder: Path, files: int) -> None:
    folder.mkdir()
    for n in range(files):
        place, goods = _PLACES[n % len(_PLACES)], _GOODS[n // len(_PLACES) % len(_GOODS)]
        (folder / f"log{n:02d}.txt").write_text(
            f"Harbour log {n}: the barge left {place} at dawn carrying {10 + 7 * n} tonnes of {goods}, "
            f"bound for the {goods} market of {_PLACES[(n * 7 + 3) % len(_PLACES)]}.", encoding="utf-8")


def test_index_above_the_limit_records_its_kind_and_searches(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, 60)
    index = Index.build([docs], tmp_path / "index", settings=INT8.replace(exact_search_limit=20))
    assert len(index) == 60
    manifest = json.loads((tmp_path / "index" / current_generation(tmp_path / "index") / MANIFEST).read_text())
    assert manifest["dense_kind"] == "ivf-sq8" == index.stats()["dense_index"]

    reopened = Index.open(tmp_path / "index")
    target = (docs / "log37.txt").read_text(encoding="utf-8")
    near_duplicate = target.replace("at dawn", "early in the morning")
    for searcher in (index, reopened):
        assert searcher.search(near_duplicate, k=3, fusion="dense")[0].name == "log37.txt"
        # A filter on an IVF index searches only the allowed files (faiss needs IVF parameters here).
        hits = searcher.search(near_duplicate, k=3, fusion="dense", sources=["log05.txt", "log37.txt"])
        assert {hit.name for hit in hits} == {"log05.txt", "log37.txt"}


def test_index_below_the_limit_is_exact(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, 8)
    index = Index.build([docs], tmp_path / "index", settings=INT8)
    assert index.stats()["dense_index"] == "flat"

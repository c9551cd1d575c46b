"""The seams: backends chosen by name or passed as objects, recorded in the manifest.

Every part here is a real implementation of its protocol (a hashing embedder, an exact numpy
dense index, a reranker, an answerer), not a stand-in for one of ours: adding a backend is one
class, and nothing in ``rag`` is edited or patched for it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import Answer, Hit, Index, IndexMismatchError, Settings, SettingsError
from rag.backends import dense_backend, register_dense
from rag.protocols import DenseIndex, Embedder, GenerationRows, LexicalIndex, QueryContext
from rag.store.snapshot import MANIFEST, current_generation
from rag.types import Chunk, Quote
from rag.verify import verify_quotes

FAST = Settings(embed_backend="onnx-int8")


class HashingEmbedder:
    """Words hashed into 64 buckets, normalised: a real (if weak) embedding model."""

    name = "hashing-64"
    dim = 64
    max_tokens = 256

    def _one(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return vector / max(float(np.linalg.norm(vector)), 1e-9)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32, progress: Any = None) -> np.ndarray:
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_documents(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


class NumpyDenseIndex:
    """An exact dense index in numpy over the generation's ``vectors.npy``: a whole backend."""

    kind = "numpy-exact"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.ids = np.arange(len(self.vectors))

    @classmethod
    def build(cls, rows: GenerationRows, settings: Settings) -> NumpyDenseIndex:
        return cls(rows.vectors)

    @classmethod
    def load(cls, folder: Path, entry: dict[str, Any], count: int, dim: int, settings: Settings) -> NumpyDenseIndex:
        return cls(np.load(folder / "vectors.npy", allow_pickle=False))

    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        scores = self.vectors @ vector
        candidates = np.arange(len(self.ids)) if allowed is None else np.flatnonzero(np.isin(self.ids, allowed))
        best = candidates[np.argsort(-scores[candidates], kind="stable")][:n]
        return [(int(self.ids[i]), float(scores[i])) for i in best]


class PreferSource:
    """A reranker that puts the chunks of one file first, keeping the fused order otherwise."""

    def __init__(self, name: str) -> None:
        self.name = name

    def rerank(self, query: QueryContext, chunks: Sequence[Chunk], k: int) -> list[int]:
        order = sorted(range(len(chunks)), key=lambda i: (chunks[i].name != self.name, i))
        return order[:k]


def first_sentence_answerer(question: str, hits: Sequence[Hit], settings: Settings, pages: Any) -> Answer:
    """An ``Answerer``: the best hit's quote, if it checks against its page."""
    kept, _ = verify_quotes([h.quote for h in hits[:1]], pages)
    quote: tuple[Quote, ...] = tuple(kept)
    return Answer(question=question, text=quote[0].text if quote else "Not found", found=bool(quote),
                  citations=quote, hits=tuple(hits), mode="first-sentence")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "ships.md").write_text("The lighthouse keeper Ingrid Holm logs every passing ship. "
                                     "Storms close the harbour in January.", encoding="utf-8")
    (folder / "fruit.md").write_text("Apples grow in orchards near Lyon. The cherry festival of Hirosaki "
                                     "draws two million visitors.", encoding="utf-8")
    (folder / "notes.md").write_text("The quarterly budget review moved to Thursday. Olaf Svensson will "
                                     "present the storage migration plan.", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def default_index(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index.build([corpus], tmp_path_factory.mktemp("default"), settings=FAST)


def test_the_defaults_satisfy_the_protocols_and_are_recorded(default_index: Index) -> None:
    snapshot = default_index.snapshot()
    assert snapshot is not None
    assert isinstance(snapshot.dense, DenseIndex) and isinstance(snapshot.lexical, LexicalIndex)
    _, retriever = default_index._require()
    assert isinstance(retriever.embedder, Embedder)
    manifest = snapshot.manifest
    assert manifest["dense"] == {"backend": "faiss", "kind": "flat"}
    assert manifest["lexical"] == {"backend": "bm25s", "kind": "bm25s"}
    assert manifest["settings"]["embed_backend"] == "onnx-int8"


def test_the_default_backends_keep_the_fingerprint_of_indexes_built_before_them() -> None:
    # Recorded by an index built before backends were named (rag 0.1.0, default settings).
    assert Settings().fingerprint() == "cf1f3eceb65d50d8"
    assert Settings(store="milvus").fingerprint() != Settings().fingerprint()


def test_an_embedder_passed_as_an_object_is_used_and_recorded(corpus: Path, tmp_path: Path) -> None:
    index = Index.build([corpus], tmp_path / "idx", embedder=HashingEmbedder())
    assert index.snapshot().dim == 64
    assert index.search("Who logs passing ships?", k=1)[0].name == "ships.md"
    stored = json.loads((tmp_path / "idx" / current_generation(tmp_path / "idx") / MANIFEST).read_text())["settings"]
    assert stored["embed_model"] == "hashing-64" and stored["embed_backend"] == "test_protocols:HashingEmbedder"
    # Reopened with the object, or by naming its class; never silently with another model.
    assert len(Index.open(tmp_path / "idx", embedder=HashingEmbedder())) == len(index)
    named = Settings(embed_model="hashing-64", embed_backend="test_protocols:HashingEmbedder")
    assert Index.open(tmp_path / "idx", named).search("Who logs passing ships?", k=1)[0].name == "ships.md"
    with pytest.raises(IndexMismatchError, match="embed_backend"):
        Index.open(tmp_path / "idx")


def test_a_dense_backend_by_class_path_ranks_like_faiss(corpus: Path, default_index: Index, tmp_path: Path) -> None:
    settings = FAST.replace(dense_backend="test_protocols:NumpyDenseIndex")
    index = Index.build([corpus], tmp_path / "idx", settings=settings)
    assert index.snapshot().manifest["dense"] == {"backend": "test_protocols:NumpyDenseIndex", "kind": "numpy-exact"}
    for question in ("Who logs passing ships?", "When is the budget review?", "cherry festival"):
        for fusion in ("dense", "blend"):
            ours = [(h.chunk.id, round(h.score, 4)) for h in index.search(question, k=3, fusion=fusion)]
            assert ours == [(h.chunk.id, round(h.score, 4)) for h in default_index.search(question, k=3, fusion=fusion)]


def test_a_manifest_naming_an_unknown_class_is_refused_unless_the_settings_name_it(
        corpus: Path, tmp_path: Path) -> None:
    settings = FAST.replace(dense_backend="test_protocols:NumpyDenseIndex")
    Index.build([corpus], tmp_path / "idx", settings=settings)
    with pytest.raises(IndexMismatchError):
        Index.open(tmp_path / "idx")  # the class path is not taken from the index
    gen = tmp_path / "idx" / current_generation(tmp_path / "idx")
    manifest = json.loads((gen / MANIFEST).read_text())
    manifest["dense"]["backend"] = "os:system"
    (gen / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="neither shipped nor named in the settings"):
        Index.open(tmp_path / "idx", settings, verify=False)


def test_a_dense_backend_registered_by_name_is_built_searched_and_reopened(
        corpus: Path, default_index: Index, tmp_path: Path) -> None:
    register_dense("numpy-exact", "test_protocols:NumpyDenseIndex")  # the one line another package writes
    settings = FAST.replace(dense_backend="numpy-exact")
    index = Index.build([corpus], tmp_path / "idx", settings=settings)
    assert index.snapshot().manifest["dense"] == {"backend": "numpy-exact", "kind": "numpy-exact"}
    assert isinstance(index.snapshot().dense, NumpyDenseIndex)
    question = "Who logs passing ships?"
    ours = [(h.chunk.id, round(h.score, 4)) for h in Index.open(tmp_path / "idx", settings).search(question, k=3)]
    assert ours == [(h.chunk.id, round(h.score, 4)) for h in default_index.search(question, k=3)]
    assert ours[0][0] == index.search(question, k=1)[0].chunk.id


def test_a_registered_name_is_given_once_and_must_be_a_class_path() -> None:
    register_dense("numpy-exact", "test_protocols:NumpyDenseIndex")  # the same again: nothing changes
    with pytest.raises(SettingsError, match="the dense index name 'faiss' is taken"):
        register_dense("faiss", "test_protocols:NumpyDenseIndex")
    with pytest.raises(SettingsError, match="needs a 'package.module:Class' path"):
        register_dense("numpy", "NumpyDenseIndex")
    with pytest.raises(SettingsError, match="has no build, load"):
        dense_backend("test_protocols:PreferSource")


def test_unknown_backend_names_fail_with_the_choices() -> None:
    with pytest.raises(SettingsError, match="faiss, milvus"):
        dense_backend("annoy")
    with pytest.raises(SettingsError, match="cannot be imported"):
        dense_backend("no_such_module:Index")
    with pytest.raises(SettingsError, match="store must be"):
        Settings(store="qdrant")


def test_a_reranker_reorders_the_fused_candidates(corpus: Path, default_index: Index) -> None:
    question = "Who logs passing ships?"
    assert default_index.search(question, k=1)[0].name == "ships.md"
    reranked = Index.open(default_index.folder, reranker=PreferSource("notes.md"))
    hits = reranked.search(question, k=2)
    assert hits[0].name == "notes.md" and [h.rank for h in hits] == [1, 2]


def test_an_answerer_passed_as_a_function_gets_the_hits_and_the_pages(default_index: Index) -> None:
    index = Index.open(default_index.folder, answerer=first_sentence_answerer)
    answer = index.ask("Who logs passing ships?")
    assert answer.mode == "first-sentence" and answer.found
    quote = answer.citations[0]
    assert index.page_text(quote.source, quote.page)[quote.start:quote.end] == quote.text


def test_one_question_is_embedded_once_per_ask(corpus: Path, tmp_path: Path) -> None:
    """The per-query context carries the vector: search and answer share it."""

    class Counting(HashingEmbedder):
        calls = 0

        def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
            Counting.calls += len(texts)
            return super().encode_queries(texts)

    index = Index.build([corpus], tmp_path / "idx", embedder=Counting(), answerer=first_sentence_answerer)
    Counting.calls = 0
    index.ask("Who logs passing ships?")
    assert Counting.calls == 1


def test_to_dict_is_the_one_json_shape(default_index: Index) -> None:
    hit = default_index.search("Who logs passing ships?", k=1)[0]
    data = hit.to_dict()
    assert data["quote"] == hit.quote.text and data["page"] == hit.page and data["chunk_id"] == hit.chunk.id
    answer = Index.open(default_index.folder, answerer=first_sentence_answerer).ask("Who logs passing ships?")
    payload = answer.to_dict()
    assert payload["citations"][0] == {"n": 1, **answer.citations[0].to_dict()}
    assert json.loads(json.dumps(payload)) == payload

"""The embedding backends: they agree, their vectors are unit float32, the cache spares the model,
and no chunk is longer than what the model reads."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

import rag.embed
from rag import Index, Settings
from rag.embed import ProgressCallback, load_embedder, model_token_counter
from rag.embed.onnx import OnnxEmbedder, OnnxInt8Embedder, length_runs
from rag.ingest.chunk import Chunker
from rag.text import split_sentences
from rag.types import Page

INT8 = Settings(embed_backend="onnx-int8")

SENTENCES = [
    "Maryam Rajavi called on the United Nations to send delegations to visit Iran's prisons.",
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy.",
    "Packet switching is a method of grouping data that is transmitted over a digital network into packets.",
    "Net revenue for the quarter rose 4% to $2.1 billion, driven by higher prices in North America.",
    "Who called for UN visits?",
    "The Scottish Parliament is the devolved national legislature of Scotland.",
    "Stir the rice gently, cover the pot and let it simmer for twenty minutes.",
    "In 1973 the members of OAPEC proclaimed an oil embargo.",
    "Imperialism is a policy of extending a country's power and influence through colonization.",
    "The Huguenots were French Protestants who held to the Reformed tradition.",
]


def real_sentences() -> list[str]:
    """The sentences above, plus those of the seed news article when ../shared is there."""
    seed = SHARED / "seeds" / "000_17d6ea71f6fbed30.txt"
    found = list(SENTENCES)
    if seed.exists():
        text = seed.read_text(encoding="utf-8")
        found += [text[a:b] for a, b in split_sentences(text)][:40]
    return found


@pytest.mark.slow
def test_int8_and_torch_backends_agree_on_real_sentences() -> None:
    sentences = real_sentences()
    torch_vectors = load_embedder(Settings(embed_backend="torch")).encode_documents(sentences)
    int8_vectors = load_embedder(INT8).encode_documents(sentences)
    cosines = (torch_vectors * int8_vectors).sum(axis=1)
    assert cosines.min() > 0.99, [(s, round(float(c), 4)) for s, c in zip(sentences, cosines) if c <= 0.99]
    # And they rank alike: each sentence's nearest other sentence is the same for both backends.
    nearest_torch = np.argmax(torch_vectors @ torch_vectors.T - 2 * np.eye(len(sentences)), axis=1)
    nearest_int8 = np.argmax(int8_vectors @ int8_vectors.T - 2 * np.eye(len(sentences)), axis=1)
    assert (nearest_torch == nearest_int8).mean() >= 0.9


def test_onnx_and_torch_compute_the_same_vectors() -> None:
    # The fp32 graph is written from the same weights file the torch backend loads: the vectors
    # must agree to float rounding, which is what lets "onnx" open indexes built with "torch".
    sentences = real_sentences()
    onnx_vectors = load_embedder(Settings(embed_backend="onnx")).encode_documents(sentences)
    torch_vectors = load_embedder(Settings(embed_backend="torch")).encode_documents(sentences)
    np.testing.assert_allclose(onnx_vectors, torch_vectors, atol=2e-5)
    assert (onnx_vectors * torch_vectors).sum(axis=1).min() > 0.99999


def test_an_index_built_with_torch_is_searched_by_onnx_without_torch(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(" ".join(SENTENCES), encoding="utf-8")
    folder = tmp_path / "index"
    built = Index.build([docs], folder, settings=Settings(embed_backend="torch"))
    expected = [h.chunk.id for h in built.search("Who called for UN visits?", k=3)]
    # Default settings (onnx) open it: the same fingerprint, the same ranking, and no torch.
    code = ("import sys, json; from rag import Index, Settings; "
            f"index = Index.open({str(folder)!r}, Settings()); "
            "hits = index.search('Who called for UN visits?', k=3); "
            "assert index.settings.embed_backend == 'onnx', index.settings.embed_backend; "
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'torch imported'; "
            "print(json.dumps([h.chunk.id for h in hits]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == expected
    assert Index.open(folder).settings.embed_backend == "onnx"  # the manifest's "torch" stands for both


def test_a_damaged_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    from rag.embed import model_dir
    from rag.embed.bert_onnx import read_safetensors

    bad = tmp_path / "model.safetensors"
    bad.write_bytes((model_dir() / "model.safetensors").read_bytes()[:5000])
    with pytest.raises(ValueError, match="model.safetensors is not a whole safetensors file"):
        read_safetensors(bad)


@pytest.mark.parametrize("backend", [
    "onnx", "onnx-int8", pytest.param("torch", marks=pytest.mark.slow)])
def test_vectors_are_unit_float32(backend: str) -> None:
    embedder = load_embedder(Settings(embed_backend=backend))
    documents = embedder.encode_documents(SENTENCES, batch_size=3)
    queries = embedder.encode_queries(SENTENCES[:2])
    for vectors, count in ((documents, len(SENTENCES)), (queries, 2)):
        assert vectors.dtype == np.float32 and vectors.shape == (count, embedder.dim)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # A question and the same text as a document get the same vector.
    np.testing.assert_allclose(queries, documents[:2], atol=1e-4)
    assert embedder.encode_queries([]).shape == (0, embedder.dim)


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_a_question_asked_again_gets_its_vector_kept_and_unharmed(backend: str) -> None:
    embedder = load_embedder(Settings(embed_backend=backend))
    question = "Which organisations did Mrs. Rajavi call on, and when?"
    first = embedder.encode_queries([question])
    first[0, :] = 0.0  # a caller that writes into its vector does not write into the kept one
    again = embedder.encode_queries([question, SENTENCES[4]])
    np.testing.assert_array_equal(again[0], embedder._encode([question])[0])
    np.testing.assert_array_equal(again[1], embedder._encode([SENTENCES[4]])[0])
    for n in range(embedder.QUESTIONS_KEPT + 1):  # older questions make way for newer ones
        embedder.encode_queries([f"question {n}"])
    assert embedder._queries.get(question) is None


def test_fp32_vector_is_the_same_alone_and_padded_beside_others() -> None:
    # What lets the fp32 backend embed texts of like length in one run, and keep their vectors.
    embedder = load_embedder(Settings(embed_backend="onnx"))
    texts = real_sentences() + ["Rice.", " ".join(SENTENCES * 3)]
    alone = np.stack([embedder._encode([text])[0] for text in texts])
    np.testing.assert_array_equal(embedder._encode(texts), alone)
    np.testing.assert_array_equal(embedder._encode(texts[::-1]), alone[::-1])
    np.testing.assert_array_equal(OnnxEmbedder().encode_documents(texts, batch_size=7), alone)


@pytest.mark.parametrize(("lengths", "runs"), [
    ([40, 9, 38, 200, 10], [[3], [0, 2], [4, 1]]),   # like lengths share a run, a long text runs alone
    ([30] * 5, [[0, 1, 2, 3, 4]]),
    ([256, 12], [[0], [1]]),
    ([100, 100, 100], [[0], [1, 2]]),   # a run is padded to 256 word pieces at most
    ([], []),
])
def test_texts_share_a_run_where_padding_costs_less_than_a_run(lengths: list[int], runs: list[list[int]]) -> None:
    assert length_runs(lengths, run_cost=12, most=256) == runs


class CountingOnnx(OnnxEmbedder):
    """The real fp32 embedder, keeping the texts each model run embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[list[str]] = []

    def _encode(self, texts: list[str], session=None) -> np.ndarray:  # noqa: ANN001 - InferenceSession
        self.runs.append(list(texts))
        return super()._encode(texts, session)


def test_a_text_embedded_again_is_taken_from_the_recent_ones() -> None:
    embedder = CountingOnnx()
    first = embedder.encode_documents(SENTENCES)
    assert sorted(t for run in embedder.runs for t in run) == sorted(SENTENCES) and len(embedder.runs) < len(SENTENCES)
    first[0, :] = 0.0  # a caller that writes into its vectors does not write into the kept ones
    embedder.runs.clear()
    again = embedder.encode_documents([SENTENCES[3], "A sentence not embedded before.", SENTENCES[0]])
    assert embedder.runs == [["A sentence not embedded before."]]
    np.testing.assert_array_equal(again[[0, 2]], np.stack([embedder._encode([SENTENCES[i]])[0] for i in (3, 0)]))
    embedder.encode_documents([f"text {n}" for n in range(embedder.TEXTS_KEPT)])  # older texts make way
    embedder.runs.clear()
    embedder.encode_documents(SENTENCES[:1])
    assert embedder.runs == [SENTENCES[:1]]


def test_int8_vector_does_not_depend_on_the_batch() -> None:
    embedder = load_embedder(INT8)
    alone = embedder.encode_documents([SENTENCES[0]])
    batched = embedder.encode_documents(SENTENCES, batch_size=len(SENTENCES))
    np.testing.assert_allclose(batched[0], alone[0], atol=1e-6)


class CountingInt8(OnnxInt8Embedder):
    """The real int8 embedder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32,
                         progress: ProgressCallback | None = None) -> np.ndarray:
        self.embedded += list(texts)
        return super().encode_documents(texts, batch_size, progress)


def test_the_cache_never_embeds_a_text_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counting = CountingInt8()
    monkeypatch.setitem(rag.embed._EMBEDDERS, "onnx-int8", counting)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(" ".join(SENTENCES[:5]), encoding="utf-8")
    (docs / "b.txt").write_text(" ".join(SENTENCES[5:]), encoding="utf-8")
    folder = tmp_path / "index"

    first = Index.build([docs], folder, settings=INT8)
    assert first.last_report.chunks_embedded == len(counting.embedded) == len(set(counting.embedded)) > 0
    seen = set(counting.embedded)

    # A rebuild from scratch finds every vector in the cache.
    counting.embedded.clear()
    again = Index.build([docs], folder, settings=INT8, rebuild=True)
    assert counting.embedded == [] and again.last_report.chunks_embedded == 0 and len(again) == len(first)

    # A new file that repeats a known text embeds only what is new.
    (docs / "c.txt").write_text(" ".join(SENTENCES[:5]), encoding="utf-8")
    (docs / "d.txt").write_text("A sentence the index has never seen before today.", encoding="utf-8")
    more = Index.build([docs], folder, settings=INT8)
    assert counting.embedded and not seen.intersection(counting.embedded)
    assert more.last_report.chunks_embedded == len(counting.embedded)
    assert more.search("a sentence never seen before", k=1)[0].name == "d.txt"


def hard_pages() -> list[Page]:
    """Text that tiktoken counts far lower than the model's word pieces do, and ordinary prose."""
    pages = [
        Page("/t/numbers.txt", 1, " ".join(f"{n * 7919 % 100000:05d}-{n}" for n in range(900))),
        Page("/t/runon.txt", 1, " ".join(["unquestionably", "antidisestablishmentarianism", "ß∂ƒ©˙∆˚¬"] * 300)),
        Page("/t/cjk.txt", 1, "東京都は日本の首都であり、世界有数の大都市である。" * 60),
        Page("/t/url.txt", 1, "see https://example.org/" + "a1b2c3d4" * 400 + " for details."),
    ]
    seed = SHARED / "seeds" / "000_17d6ea71f6fbed30.txt"
    if seed.exists():
        pages.append(Page(str(seed), 1, seed.read_text(encoding="utf-8")))
    pages.append(Page("/t/prose.txt", 1, " ".join(SENTENCES * 8)))
    return pages


@pytest.mark.parametrize("chunk_tokens", [160, 600])
def test_no_chunk_exceeds_the_model_limit(chunk_tokens: int) -> None:
    from tokenizers import Tokenizer

    counter, limit = model_token_counter()
    assert limit == 256
    chunker = Chunker(Settings(chunk_tokens=chunk_tokens, chunk_overlap=16), counter, limit)
    # Counted with the model's own tokenizer file, loaded here afresh, special tokens included.
    tokenizer = Tokenizer.from_file(str(rag.embed.model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    total = 0
    for page in hard_pages():
        chunks = chunker.chunk(page)
        assert chunks, page.source
        for chunk in chunks:
            assert len(tokenizer.encode(chunk.text).ids) <= 256, (page.source, chunk.text[:80])
            assert chunk.text == page.text[chunk.start:chunk.end]
        total += len(chunks)
    assert total > 10


def test_parsing_in_a_process_gives_the_same_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from conftest import write_pdf

    import rag.pipeline

    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        write_pdf(docs / f"report{n}.pdf", [f"Report {n}, page {p}. " + " ".join(SENTENCES[p:p + 4])
                                            for p in range(1, 5)])
    (docs / "notes.txt").write_text(" ".join(SENTENCES), encoding="utf-8")

    def rows(index: Index) -> list[tuple]:
        generation = (index.folder / "CURRENT").read_text().strip()
        with sqlite3.connect(index.folder / generation / "meta.sqlite") as db:
            return db.execute("SELECT source, page, start, end, text FROM chunks ORDER BY row").fetchall()

    monkeypatch.setattr(rag.pipeline, "_PROCESS_MIN_PDF_BYTES", 0)
    plan, *_ = rag.pipeline.plan([docs], INT8, None)
    pool, _ = rag.pipeline._parsing_pool(plan, INT8)
    assert pool is not None  # pytest's main module is guarded, so a spawn child is safe here
    pool.shutdown()
    # The process cuts with the packaged tokenizer: another embedder's files are read in-process.
    assert rag.pipeline._parsing_pool(plan, INT8.replace(embed_backend="test_chunk:WordsEmbedder")) == (None, None)
    in_process = Index.build([docs], tmp_path / "a", settings=INT8)
    monkeypatch.setattr(rag.pipeline, "_PROCESS_MIN_PDF_BYTES", 1 << 40)
    in_thread = Index.build([docs], tmp_path / "b", settings=INT8)
    assert rows(in_process) == rows(in_thread) and len(rows(in_thread)) > 4
    assert len(in_process.last_report.added) == 4 and not in_process.last_report.failed

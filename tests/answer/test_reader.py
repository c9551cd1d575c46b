"""The shipped reader: loads offline, answers fixed questions, refuses a damaged file; span shaping."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.answer.reader import MODELS, Reader, best_pair, load_reader, reader_info
from rag.answer.spans import whole_span
from rag.errors import ReaderModelError
from train.reader.calibration import separation
from train.swapped_questions import names, swap_question

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("question", "passage", "expected"), [
    ("Who designed the lighthouse on Gull Rock?",
     "The lighthouse on Gull Rock was designed by the engineer Thomas Reed. It was lit in 1871.", "Thomas Reed"),
    ("When was the harbour of Calder founded?",
     "The harbour of Calder was founded in 1623 by the merchant Elena Vasquez.", "1623"),
    ("Where do the ships carry timber?",
     "Most of the ships carried timber, wool and salted fish to Lisbon and Antwerp.", "Lisbon"),
])
def test_shipped_reader_answers_fixed_questions(question: str, passage: str, expected: str) -> None:
    span = load_reader().read(question, [passage])[0]
    start, end = whole_span(passage, span.start, span.end)
    assert expected in passage[start:end]
    assert span.margin > load_reader().info.no_answer_margin


def test_reader_prefers_the_passage_that_answers() -> None:
    spans = load_reader().read("Who designed the lighthouse on Gull Rock?", [
        "The annual harvest festival takes place in October in the village of Ashby.",
        "The lighthouse on Gull Rock was designed by the engineer Thomas Reed.",
    ])
    assert spans[1].margin > spans[0].margin


def test_a_passage_reads_the_same_alone_and_among_others() -> None:
    # int8 activations are quantised with one scale per tensor: read in one padded batch, a
    # passage's margin moved with its neighbours (2.27 alone, 0.53 among four, on the seed).
    question = "Who designed the lighthouse on Gull Rock?"
    passage = "The lighthouse on Gull Rock was designed by the engineer Thomas Reed. It was lit in 1871."
    others = ["The annual harvest festival takes place in October in the village of Ashby. " * 6,
              "Fishing boats leave at dawn.", "Tides here rise nine metres in spring and fall as fast."]
    alone = load_reader().read(question, [passage])[0]
    among = load_reader().read(question, [*others, passage])[-1]
    assert (among.start, among.end) == (alone.start, alone.end)
    assert among.margin == pytest.approx(alone.margin, abs=1e-5)


def test_context_is_read_but_never_answered_from() -> None:
    # A table's header travels before its rows as context: the reader may use it, but a span
    # must lie in the passage itself, the part a quote can cite.
    context = "Lighthouse keepers · | keeper | lighthouse |"
    passage = "| Ada Lowe | Gull Rock |\n| Tom Reed | Black Head |"
    text = f"{context}\n{passage}"
    span = load_reader().read("Who kept the Gull Rock lighthouse?", [text], [[(0, len(context) + 1)]])[0]
    assert span.start >= len(context) + 1
    only_context = load_reader().read("Who kept the Gull Rock lighthouse?", [text], [[(0, len(text))]])[0]
    assert only_context.end == only_context.start == 0 and only_context.margin == float("-inf")


def test_reader_loads_offline_without_torch() -> None:
    code = ("import sys; from rag.answer.reader import load_reader; "
            "s = load_reader().read('Who designed it?', ['It was designed by Thomas Reed.'])[0]; "
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'heavy import'; "
            "print(s.start, s.end)")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr


def test_long_passage_is_read_in_windows_with_offsets_kept() -> None:
    filler = " ".join(f"Sentence number {i} says nothing about the lighthouse keeper." for i in range(60))
    passage = filler + " The lighthouse keeper was a woman named Ada Lowe."
    span = load_reader().read("Who was the lighthouse keeper?", [passage])[0]
    assert "Ada Lowe" in passage[span.start:span.end + 5]


def test_windows_read_at_once_score_as_read_one_after_another() -> None:
    filler = " ".join(f"Sentence number {i} says nothing about the lighthouse keeper." for i in range(60))
    passages = [filler + " The lighthouse keeper was a woman named Ada Lowe.", "Ada Lowe kept the light.", filler]
    sentences = [[(0, 60), (len(filler), len(passages[0]))], [(0, 24)], [(0, 60)]]
    question = "Who was the lighthouse keeper?"
    at_once = load_reader().read_sentences(question, passages, sentences)
    in_turn = Reader(reader_info(), threads=1).read_sentences(question, passages, sentences)
    assert at_once[0] == in_turn[0]
    for a, b in zip(at_once[1], in_turn[1]):
        np.testing.assert_array_equal(a, b)


def test_checksum_guard_refuses_a_damaged_model(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    info = reader_info(models)
    with open(info.path, "r+b") as f:
        f.seek(info.path.stat().st_size // 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ReaderModelError, match="damaged"):
        Reader(reader_info(models))


def test_missing_model_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ReaderModelError, match="missing"):
        reader_info(tmp_path)
    (tmp_path / "reader.json").write_text(json.dumps({**json.loads((MODELS / "reader.json").read_text()),
                                                      "file": "nowhere.onnx"}))
    with pytest.raises(ReaderModelError, match="cannot be read"):
        Reader(reader_info(tmp_path))


def test_shipped_model_is_small_and_has_a_card() -> None:
    info = reader_info()
    assert info.path.stat().st_size < 25_000_000
    card = " ".join((MODELS / "reader-card.md").read_text(encoding="utf-8").split())
    assert "CC BY-SA 4.0" in card and info.sha256 in card and "train.reader" in card


@pytest.mark.parametrize(("text", "piece", "expected"), [
    ("paid memberships were 117,582 at December 31, 2017", "117", "117,582"),
    ("paid memberships were 117,582 at December 31, 2017", "31,", "December 31, 2017"),
    ("total current assets at May 31 were", "31", "May 31"),
    ("Item 31 of the list", "31", "31"),
    ("revenue of $1.6 billion in 2019.", "1.6", "$1.6 billion"),
    ("a margin of 12.5% last year", "12", "12.5%"),
    ("led by Mrs. Maryam Rajavi.", "Maryam Rajavi.", "Maryam Rajavi"),
    ("called by Mrs. Rajavi", "Mrs.", "Mrs."),
    ("in the U.S.", "U.S.", "U.S."),
    ("the (PMOI / MEK) said", "PMOI / MEK)", "PMOI / MEK"),
    ("the engineer Thomas Ree", "Ree", "Ree"),
    ("named Thomas Reed, who", "Thomas Re", "Thomas Reed"),
    ("opens the web chat at http://127.0.0.1:7860. Then", "127.0.0.1", "http://127.0.0.1:7860"),
    ("write to (help@example.org) today", "example", "help@example.org"),
    ("Use `rag ingest` with one or more files", "ingest", "rag ingest"),
    ("Use `rag ingest` with one or more files", "Use `rag", "Use `rag ingest`"),
    ("pass `rag ingest ~/papers --glob '*.pdf'` to filter", "glob", "--glob"),
    ("a `Index` and a ``` fence", "Index", "Index"),
    # Brackets paired: a "(" opened is closed when its ")" is near, a ")" never opened ends the span.
    ("Recognized Student Organizations (RSOs) are", "Organizations (RSOs", "Organizations (RSOs)"),
    ("smearing the (PMOI / MEK Iran).", "smearing the (PMOI / MEK Iran", "smearing the (PMOI / MEK Iran)"),
    ("Art (since 1996) and theater & performance studies (2002).", "1996) and theater & performance studies (2002",
     "1996"),
    ("oxygen toxicity (causing seizures at high pressures in divers and others) is a risk",
     "oxygen toxicity (causing seizures", "oxygen toxicity"),
])
def test_whole_span(text: str, piece: str, expected: str) -> None:
    start = text.index(piece)
    a, b = whole_span(text, start, start + len(piece))
    assert text[a:b] == expected


def test_best_pair_respects_order_and_length() -> None:
    start = np.array([0.0, 5.0, 0.0, 9.0])
    end = np.array([7.0, 1.0, 4.0, 0.0])
    i, j, score = best_pair(start, end, 30)
    assert (i, j) == (1, 2) and score == 9.0  # end before start (3 -> 0) is never chosen
    i, j, _ = best_pair(np.array([5.0, 0.0, 0.0]), np.array([0.0, 0.0, 9.0]), 2)
    assert j - i < 2


@pytest.mark.slow
def test_training_script_runs_end_to_end_on_a_tiny_slice(tmp_path: Path) -> None:
    if not (ROOT.parent / "shared" / "data" / "train" / "squad1.1-train.json.gz").exists():
        pytest.skip("../shared/data/train is absent")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "train.reader", "--steps", "3", "--batch", "4",
                          "--limit", "64", "--calibration-limit", "40", "--swapped-questions", "0.3",
                          "--out", str(out),
                          "--work", str(tmp_path / "work")], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    meta = json.loads((out / "reader.json").read_text())
    info = reader_info(out)
    assert meta["sha256"] == info.sha256
    Reader(info)  # the checksum it wrote matches the file it wrote
    card = (out / "reader-card.md").read_text()
    assert "train.reader --steps 3" in card and "swapped" in card
    # The abstention rule, set end to end for the model in --out (the calibration articles asked
    # through Index.ask): the weight and thresholds land in its reader.json and its card.
    run = subprocess.run([sys.executable, "-m", "train.reader", "--calibrate", "--calibration-limit",
                          "40", "--out", str(out), "--work", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    calibrated = reader_info(out)
    calibration = json.loads((out / "reader.json").read_text())["calibration"]
    assert calibrated.sha256 == info.sha256 and set(calibration["e2e_separation_auc"]) == {
        "margin", "similarity", "shipped"}
    assert "train.reader --calibrate --calibration-limit 40" in (out / "reader-card.md").read_text()


def test_separation_is_the_chance_an_answerable_question_outscores_an_unanswerable_one() -> None:
    unanswerable = np.array([False, False, True, True])
    assert separation(np.array([3.0, 2.0, 1.0, 0.0]), unanswerable) == 1.0
    assert separation(np.array([0.0, 1.0, 2.0, 3.0]), unanswerable) == 0.0
    assert separation(np.array([3.0, 2.0, 1.0, 2.0]), unanswerable) == 0.875  # a tie counts half
    assert np.isnan(separation(np.array([1.0, 2.0]), np.array([False, False])))


@pytest.mark.parametrize("seed", range(8))
def test_swapped_questions_are_unanswerable_from_their_window(seed: int) -> None:
    import random

    swap = swap_question
    window = "The Normans conquered England in 1066, led by William. Their largest castle stood at Dover."
    made = swap("When did the Normans conquer England?", window, "1066", ["Franks", "Lisbon"], random.Random(seed))
    assert made and made != "When did the Normans conquer England?" and "1066" not in made
    # One name the window holds is gone, in its place a name the window holds or one from elsewhere.
    gone = [name for name in ("Normans", "England") if name not in made]
    assert len(gone) == 1
    assert any(name in made for name in ("William", "Dover", "Franks", "Lisbon", "Normans", "England"))
    made = swap("What was the largest castle of the Normans?", "Their largest castle stood at Dover.",
                "Dover", [], random.Random(seed))
    assert made == "What was the smallest castle of the Normans?"  # the only thing held: "largest"
    year = swap("Who conquered England in 1566?", "England fell in 1566.", "The Normans", [], random.Random(seed))
    assert re.fullmatch(r"Who conquered England in 1\d\d\d\?", year) and "1566" not in year


def test_a_question_with_nothing_its_window_holds_is_not_swapped() -> None:
    import random

    swap = swap_question
    assert swap("What did the Franks build?", "The Normans built castles.", "castles", ["Lisbon"],
                random.Random(0)) is None
    # A name at the start of the question is not taken for a name it could swap.
    assert names("Upon what did William land at Pevensey?") == ["William", "Pevensey"]


@pytest.mark.parametrize("seed", range(8))
def test_swaps_kept_inside_the_window_never_bring_a_name_from_elsewhere(seed: int) -> None:
    import random

    swap = swap_question
    window = "The Normans conquered England in 1066, led by William. Their largest castle stood at Dover."
    made = swap("When did the Normans conquer England?", window, "1066", ["Franks", "Lisbon"], random.Random(seed),
                outside_share=0)
    assert made and "Franks" not in made and "Lisbon" not in made
    assert any(name in made for name in ("William", "Dover"))
    # Nothing else of the window to swap in: no question rather than a name from elsewhere.
    assert swap("When did the Normans conquer England?", "The Normans conquered England in 1066.", "1066",
                ["Franks"], random.Random(seed), outside_share=0) is None

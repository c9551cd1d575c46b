"""The shipped models: each loads offline from the package, has its card, and refuses a file that is
not as its training script wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.answer import sentences
from rag.errors import ReaderModelError
from train.sentence_choice import fit_listwise, reference_positive


def test_the_sentence_chooser_has_its_card_and_checksum() -> None:
    data = json.loads(sentences.WEIGHTS.read_text(encoding="utf-8"))
    assert data["sha256"] == sentences.weights_digest(data)
    card = sentences.WEIGHTS.with_name("sentence-choice-card.md").read_text(encoding="utf-8")
    assert data["sha256"] in card and data["command"] in card and "CC BY-SA 4.0" in card
    sentences.fitted.cache_clear()
    assert sentences.fitted().rerank.shape == (len(sentences.FEATURES) + 1,)


def test_an_edited_chooser_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.loads(sentences.WEIGHTS.read_text(encoding="utf-8"))
    data["weights"]["overlap"] += 1.0  # a hand edit
    edited = tmp_path / "sentence-choice.json"
    edited.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr(sentences, "WEIGHTS", edited)
    sentences.fitted.cache_clear()
    try:
        with pytest.raises(ReaderModelError, match="damaged or edited by hand"):
            sentences.fitted()
    finally:
        sentences.fitted.cache_clear()


def test_the_chooser_fit_ranks_the_units_a_reference_repeats_first() -> None:
    """``train/sentence_choice.py`` labels MTRAG's units by how much of them its reference answer
    repeats, and its listwise fit learns to put such a unit first: here, the unit with more of the
    question's words (the second feature), whatever the first says."""
    texts = ["An ETF is an exchange traded fund.", "Prices move daily.", "Funds trade on exchanges like shares."]
    positive = reference_positive(texts, "An ETF is an exchange traded fund, a basket of shares.")
    assert positive.tolist() == [True, False, True]
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(40):
        x = rng.normal(size=(6, 2))
        rows.append((x, x[:, 1] == x[:, 1].max()))
    w = fit_listwise(rows, np.zeros(2), steps=300)
    assert w[1] > 1.0 and abs(w[0]) < 0.5 * w[1]

"""Answer-text metrics on hand-checked examples: token F1, ROUGE-L and the answer's plain words."""

from __future__ import annotations

import pytest

from rag.eval.metrics import answer_words, f1_score, rouge_l


def test_token_f1_uses_squad_normalisation_and_the_best_reference() -> None:
    # "Mrs. Maryam Rajavi" -> mrs maryam rajavi: 2 of 2 predicted, 2 of 3 wanted -> 2 * 1 * 2/3 / (5/3) = 0.8
    assert f1_score("Maryam Rajavi", ["Mrs. Maryam Rajavi"]) == pytest.approx(0.8)
    assert f1_score("The Eiffel Tower!", ["eiffel tower"]) == 1.0
    assert f1_score("Maryam Rajavi", ["the IRGC", "Mrs. Maryam Rajavi"]) == pytest.approx(0.8)
    assert f1_score("", ["anything"]) == 0.0


def test_rouge_l_is_the_longest_common_subsequence_f_measure() -> None:
    # cat sat on mat / cat was on mat (articles dropped): LCS "cat on mat" = 3 of 4 both ways -> 0.75
    assert rouge_l("the cat sat on the mat", ["the cat was on the mat"]) == pytest.approx(0.75)
    # The same words in reverse order: every word shared (F1 1.0) but the longest common subsequence is one word.
    assert f1_score("one two three four", ["four three two one"]) == 1.0
    assert rouge_l("one two three four", ["four three two one"]) == pytest.approx(0.25)
    # 2 words against 7 ("the" dropped): LCS "police station" = 2 -> P 1, R 2/7 -> F 4/9
    assert rouge_l("police station", ["go to the police station near you today"]) == pytest.approx(4 / 9)


def test_rouge_l_takes_the_best_reference_and_handles_empty_texts() -> None:
    # file report / you file report: LCS 2 -> P 1, R 2/3 -> F 0.8; the other reference shares nothing
    assert rouge_l("file a report", ["nothing alike here", "you file a report"]) == pytest.approx(0.8)
    assert rouge_l("", ["a reference"]) == 0.0
    assert rouge_l("an answer", [""]) == 0.0
    assert rouge_l("", [""]) == 1.0


def test_rouge_l_counts_repeated_words_once_each() -> None:
    # "a" is an article; "b b b" against "b": LCS 1 -> P 1/3, R 1 -> 0.5
    assert rouge_l("b b b", ["b"]) == pytest.approx(0.5)
    assert rouge_l("x y x y", ["y x y x"]) == pytest.approx(0.75)


@pytest.mark.parametrize("text, words", [
    ("Mrs. Maryam Rajavi [1]", "Mrs. Maryam Rajavi"),
    ("In user-guide.md: Run `make test` [1]. It installs rag first [2].", "Run `make test`. It installs rag first."),
    ("In report.pdf, page 3: Revenue rose to $1.6 billion [1, 2].", "Revenue rose to $1.6 billion."),
    ("1. Open the page [1]\n2. Upload the file [2]", "1. Open the page 2. Upload the file"),
    ("In 2023 sales rose [1]", "In 2023 sales rose"),
    ("In Annual Report 2023.pdf, p. 12: Sales rose [1].", "Sales rose."),
    ("In the U.S.: sales rose to 5.5: a record [1].", "In the U.S.: sales rose to 5.5: a record."),
])
def test_answer_words_leave_out_citation_marks_and_file_labels(text: str, words: str) -> None:
    assert answer_words(text) == words


def test_citations_and_labels_do_not_count_against_the_answer() -> None:
    reference = ["Run make test, which installs rag the same way and runs the tests."]
    bare = "Run make test, which installs rag the same way and runs the tests."
    cited = "In user-guide.md: Run `make test`, which installs rag the same way and runs the tests [1]."
    assert f1_score(answer_words(cited), reference) == f1_score(bare, reference) == 1.0
    assert rouge_l(answer_words(cited), reference) == 1.0
    assert f1_score(cited, reference) < 1.0

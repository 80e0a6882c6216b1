"""Generation metrics against published or hand-computed values."""

from __future__ import annotations

import pytest

from omnifuse.errors import DataError
from omnifuse.evaluation.generation_metrics import answer_normalize, generation_metrics, vqa_accuracy

# sacrebleu's README example: two reference streams, corpus BLEU 48.53
SYSTEM = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REFERENCES = [["The dog bit the man.", "The dog had bit the man."],
              ["It was not unexpected.", "No one was surprised."],
              ["The man bit him first.", "The man had bitten the dog."]]


def test_bleu_4_is_sacrebleus_published_example() -> None:
    metrics = generation_metrics(SYSTEM, REFERENCES)
    assert metrics["bleu_4"] == pytest.approx(0.4853, abs=1e-4)
    assert metrics["bleu_1"] >= metrics["bleu_2"] >= metrics["bleu_3"] >= metrics["bleu_4"]


def test_rouge_l_is_the_lcs_f_measure() -> None:
    # LCS("a b c d", "a c d e") = "a c d": precision 3/4, recall 3/4, F 0.75
    assert generation_metrics(["a c d e"], ["a b c d"])["rouge_l"] == pytest.approx(0.75)
    # the best reference of the row counts
    assert generation_metrics(["a b c d"], [["x y", "a b c d"]])["rouge_l"] == pytest.approx(1.0)


def test_cider_d_orders_perfect_partial_and_unrelated() -> None:
    refs = [["a cat sits on the mat"], ["a dog runs in the park"], ["a bird flies over the sea"]]
    perfect = generation_metrics([r[0] for r in refs], refs)["cider_d"]
    partial = generation_metrics(["a cat sits", "a dog runs", "a bird flies"], refs)["cider_d"]
    unrelated = generation_metrics(["blue green red", "seven eight nine", "up down left"], refs)["cider_d"]
    assert perfect > partial > unrelated == 0.0


def test_answer_normalisation_and_exact_match() -> None:
    assert answer_normalize("Two.") == answer_normalize("2") == "2"
    assert answer_normalize("The dog!") == "dog"
    assert answer_normalize("Isn't it?") == "isnt it"
    metrics = generation_metrics(["Two", "a cat", "yes"], ["2", "the cat.", "no"])
    assert metrics["exact_match"] == pytest.approx(2 / 3)
    assert metrics["mean_length"] == pytest.approx(4 / 3)


def test_vqa_accuracy_follows_the_official_leave_one_out_average() -> None:
    answers = ["yes"] * 3 + ["no"] * 7
    # leaving out one of the 3 "yes": 2 matches -> 2/3 (3 subsets); leaving out a "no": 3 -> 1 (7 subsets)
    assert vqa_accuracy("yes", answers) == pytest.approx((3 * 2 / 3 + 7 * 1.0) / 10)
    assert vqa_accuracy("Yes.", ["yes"]) == 1.0 and vqa_accuracy("no", ["yes"]) == 0.0
    assert vqa_accuracy("maybe", answers) == 0.0


def test_bad_calls_name_the_fix() -> None:
    with pytest.raises(DataError, match=r"2 prediction\(s\) but 1 reference row\(s\)"):
        generation_metrics(["a", "b"], ["a"])
    with pytest.raises(DataError, match="no predictions to score"):
        generation_metrics([], [])


def test_references_without_a_word_score_zero_cider_instead_of_failing() -> None:
    assert generation_metrics(["", ""], ["", "."])["cider_d"] == 0.0

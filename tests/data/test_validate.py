"""Dataset-level checks: is this trainable, and can the eval set be scored?"""

import pytest

from llmaug.data import Example, check_eval_labels, check_trainable
from llmaug.errors import DataError


def labelled(*labels):
    return [Example.create(f"text {i}", label) for i, label in enumerate(labels)]


def test_two_classes_are_trainable():
    check_trainable(labelled("a", "b", "a"), "train.jsonl")


def test_qa_rows_without_labels_are_trainable():
    check_trainable([Example.create("q?", answer="42")], "gsm8k")


def test_single_class_is_rejected():
    with pytest.raises(DataError) as caught:
        check_trainable(labelled("a", "a"), "train.jsonl")
    assert str(caught.value) == "train.jsonl: only one class ('a'); a classifier needs at least two"


def test_mixed_labelled_and_unlabelled_is_rejected():
    rows = labelled("a", "b") + [Example.create("no label")]
    with pytest.raises(DataError) as caught:
        check_trainable(rows, "train.jsonl")
    assert str(caught.value) == "train.jsonl: 1 of 3 rows have no label; label all rows or none"


def test_no_rows_is_rejected():
    with pytest.raises(DataError, match="no examples"):
        check_trainable([], "train.jsonl")


def test_eval_labels_seen_in_training_pass():
    check_eval_labels(labelled("a", "b"), labelled("b", "a", "a"), "test.jsonl")


def test_eval_labels_unseen_in_training_are_named():
    with pytest.raises(DataError) as caught:
        check_eval_labels(labelled("a", "b"), labelled("a", "c", "d"), "test.jsonl")
    assert str(caught.value) == "test.jsonl: eval labels not in the training labels: 'c', 'd'"


def test_many_unseen_eval_labels_are_summarised_on_one_line():
    with pytest.raises(DataError) as caught:
        check_eval_labels(labelled("a", "b"), labelled(*"cdefghij"), "test.jsonl")
    message = str(caught.value)
    assert "'c', 'd', 'e', 'f', 'g' and 3 more" in message and "\n" not in message

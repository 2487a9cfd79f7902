import pytest

from llmaug.data.example import Example
from llmaug.students.base import Student
from llmaug.students.metrics import evaluate, score
from llmaug.students.tfidf import TfidfStudent


def test_hand_computed_scores():
    # gold a a b b c / predicted a b b b a: right at positions 0, 2, 3.
    metrics = score(list("aabbc"), list("abbba"), labels=["a", "b", "c"])
    assert metrics.accuracy == pytest.approx(3 / 5)
    assert metrics.n == 5
    a, b, c = (metrics.per_class[label] for label in "abc")
    assert (a.precision, a.recall, a.f1, a.support) == pytest.approx((1 / 2, 1 / 2, 1 / 2, 2))
    assert (b.precision, b.recall, b.f1, b.support) == pytest.approx((2 / 3, 1, 0.8, 2))
    assert (c.precision, c.recall, c.f1, c.support) == (0, 0, 0, 1)
    assert metrics.macro_f1 == pytest.approx((0.5 + 0.8 + 0) / 3)
    assert metrics.labels == ["a", "b", "c"]
    assert metrics.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]  # rows gold, columns predicted


def test_predictions_outside_the_labels_get_a_confusion_column_but_no_class_score():
    metrics = score(["a", "b"], ["a", "z"], labels=["a", "b"])
    assert metrics.labels == ["a", "b", "z"]
    assert metrics.confusion == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert set(metrics.per_class) == {"a", "b"}
    assert metrics.macro_f1 == pytest.approx(0.5)


def test_a_gold_class_the_student_never_saw_counts_against_macro_f1():
    metrics = score(["a", "c"], ["a", "a"], labels=["a", "b"])
    assert metrics.labels == ["a", "b", "c"]
    assert metrics.per_class["c"].recall == 0 and metrics.per_class["c"].support == 1
    assert metrics.confusion == [[1, 0, 0], [0, 0, 0], [1, 0, 0]]
    assert metrics.macro_f1 == pytest.approx((2 / 3 + 0 + 0) / 3)


def test_empty_evaluation_scores_zero():
    metrics = score([], [], labels=["a", "b"])
    assert (metrics.accuracy, metrics.macro_f1, metrics.n) == (0.0, 0.0, 0)
    assert metrics.confusion == [[0, 0], [0, 0]]


def test_correct_overrides_exact_match_accuracy():
    assert score(["4", "5"], ["4.0", "6"], correct=[True, False]).accuracy == 0.5


def test_evaluate_scores_a_trained_student(toy):
    student = TfidfStudent().fit(toy, seed=0)
    metrics, predictions = evaluate(student, toy)
    assert predictions == [e.label for e in toy]
    assert metrics.accuracy == 1.0 and metrics.macro_f1 == 1.0
    assert metrics.labels == student.labels


class NumericAnswers(Student):
    """A QA student double: always answers 72, and judges answers numerically."""

    def predict(self, examples):
        return ["72.0"] * len(examples)

    def is_correct(self, example, prediction):
        return float(prediction) == float(example.answer)


def test_evaluate_uses_the_students_own_judgement_of_answers():
    questions = [Example.create("48 + 24?", answer="72"), Example.create("2 + 2?", answer="4")]
    metrics, predictions = evaluate(NumericAnswers(), questions)
    assert predictions == ["72.0", "72.0"]
    assert metrics.accuracy == 0.5

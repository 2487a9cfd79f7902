"""Evaluation: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

QA students (no labels; their `is_correct` judges answers, e.g. GSM8K's numeric match) get accuracy only:
answers are not classes, so macro-F1 is None and there are no per-class scores or confusion matrix.
"""

from __future__ import annotations

from pydantic import BaseModel
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from llmaug.data.example import Example


class ClassScores(BaseModel):
    precision: float
    recall: float
    f1: float
    support: int


class Metrics(BaseModel):
    accuracy: float
    macro_f1: float | None  # None for QA
    n: int
    per_class: dict[str, ClassScores]
    labels: list[str]
    confusion: list[list[int]]  # rows: gold label, columns: predicted label, in `labels` order


def score(gold: list[str], predicted: list[str], labels: list[str] | None = None, correct: list[bool] | None = None) -> Metrics:
    """Metrics for predictions. `correct` overrides exact-match accuracy (QA students judge answers); with
    `correct` and no `labels` (a QA student) only accuracy is computed."""
    if correct is not None and not labels:
        return _qa_metrics(correct)
    labels = labels or sorted(set(gold) | set(predicted))
    # A gold class the student never saw (absent from its training data) still counts, with recall 0.
    scored = labels + sorted(set(gold) - set(labels))
    axis = scored + sorted(set(predicted) - set(scored))
    correct = correct if correct is not None else [g == p for g, p in zip(gold, predicted, strict=True)]
    accuracy = sum(correct) / len(correct) if correct else 0.0
    if gold:
        precision, recall, f1, support = precision_recall_fscore_support(
            gold, predicted, labels=scored, zero_division=0
        )
        matrix = confusion_matrix(gold, predicted, labels=axis)
    else:
        precision = recall = f1 = support = [0] * len(scored)
        matrix = [[0] * len(axis) for _ in axis]
    per_class = {
        label: ClassScores(precision=float(p), recall=float(r), f1=float(f), support=int(s))
        for label, p, r, f, s in zip(scored, precision, recall, f1, support)
    }
    macro_f1 = float(sum(s.f1 for s in per_class.values()) / len(per_class)) if per_class else 0.0
    return Metrics(accuracy=accuracy, macro_f1=macro_f1, n=len(gold), per_class=per_class, labels=axis,
                   confusion=[[int(v) for v in row] for row in matrix])


def _qa_metrics(correct: list[bool]) -> Metrics:
    accuracy = sum(correct) / len(correct) if correct else 0.0
    return Metrics(accuracy=accuracy, macro_f1=None, n=len(correct), per_class={}, labels=[], confusion=[])


def evaluate(student, examples: list[Example]) -> tuple[Metrics, list[str]]:
    """Score a trained student on examples; returns the metrics and its predictions."""
    predicted = student.predict(examples)
    gold = [e.label if e.label is not None else (e.answer or "") for e in examples]
    correct = [student.is_correct(e, p) for e, p in zip(examples, predicted, strict=True)]
    return score(gold, predicted, labels=list(student.labels) or None, correct=correct), predicted

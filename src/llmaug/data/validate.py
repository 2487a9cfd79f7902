"""Dataset-level checks that need more than one row."""

from __future__ import annotations

from llmaug.data.example import Example, label_set
from llmaug.errors import DataError


def check_trainable(examples: list[Example], where: str) -> None:
    """A classifier needs rows, all labelled, with at least two classes; QA data (no labels at all) passes."""
    if not examples:
        raise DataError("no examples to train on", where)
    unlabelled = sum(e.label is None for e in examples)
    if unlabelled == len(examples):
        return  # QA data: answers instead of labels
    if unlabelled:
        raise DataError(f"{unlabelled} of {len(examples)} rows have no label; label all rows or none", where)
    labels = label_set(examples)
    if len(labels) < 2:
        raise DataError(f"only one class ({labels[0]!r}); a classifier needs at least two", where)
    check_label_spelling(labels, where)


def check_label_spelling(labels: list[str], where: str) -> None:
    """Labels that differ only in case ("LOC", "loc") are one class spelt two ways, not two classes."""
    spellings: dict[str, list[str]] = {}
    for label in labels:
        spellings.setdefault(label.casefold(), []).append(label)
    clash = next((spelt for spelt in spellings.values() if len(spelt) > 1), None)
    if clash:
        raise DataError(f"labels {' and '.join(map(repr, clash))} differ only in case; spell each label one way", where)


def check_eval_labels(train: list[Example], evaluation: list[Example], where: str) -> None:
    """Every eval label must occur in training, or the student can never predict it."""
    known = set(label_set(train))
    unknown = sorted({e.label for e in evaluation if e.label is not None and e.label not in known})
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise DataError(f"eval labels not in the training labels: {shown}", where)

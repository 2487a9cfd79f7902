"""Dataset-level checks that need more than one row."""

from __future__ import annotations

from llmaug.data.example import Example, label_set
from llmaug.errors import DataError


def check_trainable(examples: list[Example], where: str) -> None:
    labels = label_set(examples)
    if all(e.label is None for e in examples):
        return  # QA data: answers instead of labels
    if any(e.label is None for e in examples):
        raise DataError("some rows have a label and some do not", where)
    if len(labels) < 2:
        raise DataError(f"only one class ({labels[0]!r}); a classifier needs at least two", where)


def check_eval_labels(train: list[Example], evaluation: list[Example], where: str) -> None:
    known = set(label_set(train))
    unknown = sorted({e.label for e in evaluation if e.label is not None and e.label not in known})
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise DataError(f"eval labels not in the training labels: {shown}", where)

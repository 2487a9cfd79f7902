"""The evaluator's folds: stratified, seeded, and never more than the examples allow."""

from __future__ import annotations

from collections import Counter

import pytest

from llmaug.data import Example
from llmaug.evaluation import stratified_folds


@pytest.mark.parametrize("k", [2, 3, 5])
def test_folds_cover_every_example_once_and_spread_each_label_evenly(k):
    examples = [Example.create(f"question {i} ?", label) for i, label in enumerate("AAAAABBBBBBBCC")]
    folds = stratified_folds(examples, k, seed=0)
    assert len(folds) == k and sorted(i for fold in folds for i in fold) == list(range(len(examples)))
    for label in Counter(e.label for e in examples):
        per_fold = [sum(examples[i].label == label for i in fold) for fold in folds]
        assert max(per_fold) - min(per_fold) <= 1, (label, per_fold)
    assert stratified_folds(examples, k, seed=0) == folds and stratified_folds(examples, k, seed=1) != folds


def test_folds_never_outnumber_the_examples():
    examples = [Example.create(f"question {i} ?", label) for i, label in enumerate("AB")]
    assert sorted(stratified_folds(examples, 5, seed=0)) == [[0], [1]]

"""The verdict's statistics against cases small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from llmaug.evaluation.verdict import accuracy_interval, compare, grouped_interval, mcnemar_p, outcome, per_class_f1


def test_exact_mcnemar_is_the_binomial_test_on_the_discordant_rows():
    before = np.array([True, False, False, False, False, False, True, True])
    after = np.array([False, True, True, True, True, True, True, True])
    # one row only before got right, five only after: p = 2 * P(X <= 1 | n = 6, 1/2) = 2 * 7/64
    assert mcnemar_p(before, after) == pytest.approx(14 / 64)
    assert mcnemar_p(before, before) == 1.0  # no discordant row: no evidence either way


def test_a_student_right_everywhere_against_one_wrong_everywhere_helped_with_a_degenerate_interval():
    gold = ["a", "b"] * 10
    verdict = compare(gold, ["b", "a"] * 10, gold, resamples=500)
    assert verdict.delta_accuracy == 1.0 and verdict.ci95 == [1.0, 1.0] and verdict.outcome == "helped"
    assert verdict.mcnemar_p == pytest.approx(2 * 0.5 ** 20)
    assert verdict.delta_macro_f1 == 1.0 and verdict.per_class_f1 == {
        "a": {"before": 0.0, "after": 1.0, "delta": 1.0}, "b": {"before": 0.0, "after": 1.0, "delta": 1.0}}


def test_identical_students_show_no_change_and_swapping_them_mirrors_the_verdict():
    gold = list("aabbccab")
    predicted = list("abbbcaab")
    same = compare(gold, predicted, predicted)
    assert same.delta_accuracy == 0.0 and same.ci95 == [0.0, 0.0] and same.outcome == "no detectable change"
    better = list("aabbccaa")
    forward, backward = compare(gold, predicted, better, seed=3), compare(gold, better, predicted, seed=3)
    assert forward.delta_accuracy == -backward.delta_accuracy == pytest.approx(1 / 8)  # 7 of 8 right vs 6 of 8
    assert forward.ci95 == pytest.approx([-backward.ci95[1], -backward.ci95[0]])


def test_four_rows_cannot_show_a_gain_that_one_resample_in_sixteen_erases():
    """before right on rows 0-1, after on all four: a resample of only rows 0-1 (1 in 16) shows no gain, so the
    2.5th percentile is 0 and the verdict must not claim help."""
    gold = ["x"] * 4
    verdict = compare(gold, ["x", "x", "y", "y"], ["x"] * 4, resamples=4000)
    assert verdict.delta_accuracy == 0.5 and verdict.ci95[0] == 0.0 and verdict.outcome == "no detectable change"


def test_per_class_f1_matches_scikit_learn():
    rng = np.random.default_rng(0)
    gold, predicted = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    assert per_class_f1(gold, predicted, 4) == pytest.approx(f1_score(gold, predicted, average=None, labels=range(4)))


def test_answers_that_are_not_classes_get_accuracy_only():
    verdict = compare(["12", "7"], ["12", "8"], ["12.0", "7"], correct_before=[True, False], correct_after=[True, True],
                      classes=False)
    assert verdict.delta_accuracy == 0.5 and verdict.delta_macro_f1 is None and verdict.per_class_f1 == {}


def test_outcomes_follow_the_interval():
    assert outcome([0.01, 0.2]) == "helped" and outcome([-0.2, -0.01]) == "hurt"
    assert outcome([-0.01, 0.2]) == "no detectable change" and outcome([0.0, 0.1]) == "no detectable change"


def test_accuracy_and_grouped_intervals():
    assert accuracy_interval([True] * 10) == [1.0, 1.0]
    low, high = accuracy_interval([True, False] * 50, seed=1)
    assert low < 0.5 < high and high - low < 0.3
    assert grouped_interval([[0.1] * 5, [0.1] * 7]) == pytest.approx([0.1, 0.1])
    low, high = grouped_interval([[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 0]], seed=2)
    assert low < 0.5 < high

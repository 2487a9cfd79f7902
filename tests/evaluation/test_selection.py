"""Choosing the round from held-out seed scores: do no harm unless a round clearly beats the first."""

from __future__ import annotations

from llmaug.evaluation import Evaluation, HeldOut
from llmaug.evaluation.selection import choose_round, round_scores, stalled
from llmaug.students.metrics import Metrics

SEEDS = [f"s{i}" for i in range(8)]


def evaluation(round: int, gold_probabilities: list[float]) -> Evaluation:
    held_out = HeldOut(
        predicted={s: "x" for s in SEEDS}, correct={s: p > 0.5 for s, p in zip(SEEDS, gold_probabilities)},
        gold_probability=dict(zip(SEEDS, gold_probabilities)), margin={s: 2 * p - 1 for s, p in zip(SEEDS, gold_probabilities)},
    )
    metrics = Metrics(accuracy=0.0, macro_f1=0.0, n=0, per_class={}, labels=[], confusion=[])
    return Evaluation(round, 10, metrics, [], held_out=held_out)


BASE = [0.2, 0.4, 0.6, 0.7, 0.3, 0.55, 0.8, 0.45]


def test_a_round_that_clearly_beats_the_first_is_kept():
    better = [p + 0.1 for p in BASE]
    selection = choose_round([evaluation(0, BASE), evaluation(1, better), evaluation(2, BASE)])
    assert selection.chosen_round == 1 and "round 1 has the best held-out seed score" in selection.reason
    margins = round_scores([evaluation(0, BASE), evaluation(1, better)])  # margin = 2p - 1 here: twice the gain
    assert abs(margins[1].gain - 0.2) < 1e-9 and margins[1].gain_se < 1e-9
    probabilities = round_scores([evaluation(0, BASE), evaluation(1, better)], metric="gold-prob")
    assert abs(probabilities[1].gain - 0.1) < 1e-9


def test_a_gain_within_the_margin_keeps_the_student_without_augmentation():
    noisy = [p + d for p, d in zip(BASE, [0.3, -0.25, 0.2, -0.2, 0.25, -0.2, 0.1, -0.1])]  # margins: mean +0.025, SE ~0.16
    selection = choose_round([evaluation(0, BASE), evaluation(1, noisy)])
    assert selection.chosen_round == 0 and "do no harm" in selection.reason


def test_a_worse_round_is_never_chosen_and_ties_go_to_the_earlier_round():
    worse = [p - 0.1 for p in BASE]
    assert choose_round([evaluation(0, BASE), evaluation(1, worse)]).chosen_round == 0
    better = [p + 0.1 for p in BASE]
    assert choose_round([evaluation(0, BASE), evaluation(1, better), evaluation(2, better)]).chosen_round == 1


def test_last_is_the_papers_rule_whatever_the_scores():
    worse = [p - 0.1 for p in BASE]
    selection = choose_round([evaluation(0, BASE), evaluation(1, worse)], rule="last")
    assert selection.chosen_round == 1 and "paper" in selection.reason


def test_without_held_out_judgements_the_last_round_is_kept_and_the_reason_says_why():
    plain = [evaluation(0, BASE), evaluation(1, BASE)]
    plain[1].held_out = None
    selection = choose_round(plain)
    assert selection.chosen_round == 1 and "no held-out signal" in selection.reason


def test_patience_stops_after_that_many_rounds_without_improvement():
    up = [p + 0.1 for p in BASE]
    rounds = [evaluation(0, BASE), evaluation(1, up), evaluation(2, up), evaluation(3, [p - 0.05 for p in up])]
    assert not stalled(rounds[:2], 1)
    assert stalled(rounds[:3], 1)  # round 2 did not beat round 1
    assert not stalled(rounds[:3], 2)  # rounds 1-2 beat round 0
    assert stalled(rounds, 2)  # rounds 2-3 did not beat round 1
    assert not stalled(rounds, None)


def test_the_margin_in_standard_errors_decides_how_sure_a_later_round_must_be():
    steady = [p + d for p, d in zip(BASE, [0.06, 0.02, 0.05, 0.01, 0.06, 0.02, 0.05, 0.01])]  # gain 0.07 ± 0.015 (margin)
    rounds = [evaluation(0, BASE), evaluation(1, steady)]
    assert choose_round(rounds, margin=2.0).chosen_round == 1  # +0.07 is more than 2 SE
    assert choose_round(rounds, margin=5.0).chosen_round == 0  # but not 5

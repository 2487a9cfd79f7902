"""Which round's student a run returns, chosen without the test set.

`best-cv` (the default) scores every round by the seed rows' held-out margin (the probability of the gold label
minus the next label's, from students that saw neither the seed nor its children; correctness for students
without probabilities), paired seed by seed with the first round (no augmentation). A later round is a candidate
only if it beats the first by more than `margin` standard errors of the paired difference; the best candidate
wins, ties going to the earlier round; without a candidate the run returns the first round's student: do no harm
by construction. `last` is the paper's rule: the last round, whatever it scored.

The signal and the margin were chosen on the oracle-policy grid (bench/results/policies.md): replayed on its 192
LLM2LLM cells (tf-idf student), the last round fell below no augmentation in 98 cells (worst -24.8 points); the
margin at 2 standard errors in 2 (worst -0.6), with a higher mean test accuracy than the last round (51.1% vs
50.1%). The gold-label probability and the log-loss were fooled by students growing more confident while getting
worse (21-32 cells below no augmentation), the error count is too coarse (it moves in steps of 1/n).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from llmaug.evaluation.trainer import Evaluation

MARGIN = 2.0  # standard errors a round must beat the first by
METRIC = "margin"  # the held-out score rounds are compared on (see HeldOut.scores)
KEEP_ACCURACY = False  # also require a round's held-out accuracy to be at least the first round's


@dataclass
class RoundScore:
    round: int
    cv_accuracy: float | None
    score: float | None  # mean held-out score (margin of the gold label; accuracy without probabilities)
    gain: float | None  # paired mean difference to the first round
    gain_se: float | None


@dataclass
class Selection:
    chosen_round: int
    rule: str
    reason: str
    scores: list[RoundScore] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def choose_round(evaluations: list[Evaluation], rule: str = "best-cv", margin: float = MARGIN,
                 metric: str = METRIC, keep_accuracy: bool = KEEP_ACCURACY) -> Selection:
    """The round to keep among `evaluations` (in round order, the first being no augmentation)."""
    last = evaluations[-1].round
    scores = round_scores(evaluations, metric)
    if rule == "last":
        return Selection(last, rule, "the last round (select: last, the paper's rule)", scores)
    if len(evaluations) == 1:
        return Selection(last, rule, "the only round", scores)
    if any(s.score is None for s in scores):
        return Selection(last, rule, "the last round: the seed rows could not be judged held out in every round "
                                     "(QA seeds, or too few rows), so there is no held-out signal to choose by", scores)
    first = scores[0]
    beating = [s for s in scores[1:] if s.gain is not None and s.gain > 0 and s.gain > margin * (s.gain_se or 0.0)
               and (not keep_accuracy or (s.cv_accuracy or 0.0) >= (first.cv_accuracy or 0.0))]
    if not beating:
        return Selection(first.round, rule, f"no augmented round beat round {first.round} by more than {margin:g} "
                                            "standard error on held-out seed scores: the run keeps the student without "
                                            "augmentation (do no harm)", scores)
    best = max(beating, key=lambda s: (s.score, -s.round))
    return Selection(best.round, rule, f"round {best.round} has the best held-out seed score ({best.score:.3f} vs "
                                       f"{first.score:.3f} in round {first.round}, +{best.gain:.3f} ± {best.gain_se:.3f})",
                     scores)


def round_scores(evaluations: list[Evaluation], metric: str = "margin") -> list[RoundScore]:
    first = evaluations[0].held_out
    common = _judged_everywhere(evaluations)
    base = first.scores(common, metric) if first is not None and common else None
    result = []
    for evaluation in evaluations:
        held_out = evaluation.held_out
        if held_out is None or not common:
            result.append(RoundScore(evaluation.round, held_out.accuracy if held_out else None, None, None, None))
            continue
        values = held_out.scores(common, metric)
        differences = values - base
        se = float(np.std(differences, ddof=1) / math.sqrt(len(differences))) if len(differences) > 1 else 0.0
        result.append(RoundScore(evaluation.round, held_out.accuracy, float(values.mean()), float(differences.mean()), se))
    return result


def stalled(evaluations: list[Evaluation], patience: int | None, metric: str = "margin") -> bool:
    """Whether the last `patience` rounds brought no improvement of the held-out seed score over the best before."""
    if not patience or len(evaluations) <= patience:
        return False
    scores = [s.score for s in round_scores(evaluations, metric)]
    if any(score is None for score in scores):
        return False
    best_before = max(scores[:-patience])
    return max(scores[-patience:]) <= best_before


def _judged_everywhere(evaluations: list[Evaluation]) -> list[str]:
    """The seed ids every round judged held out (they are the same rows unless a round could not judge some)."""
    sets = [set(e.held_out.judged) for e in evaluations if e.held_out is not None]
    if len(sets) != len(evaluations) or not sets:
        return []
    return sorted(set.intersection(*sets))  # sorted: a resumed run reads them back from JSON in key order

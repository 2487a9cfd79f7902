"""Did augmentation help? The final student against the student without augmentation, on the same rows.

On the eval set when there is one: the difference in accuracy and macro-F1 with a paired bootstrap 95% interval
(eval rows resampled, seeded), an exact McNemar test on the rows one student gets right and the other wrong
(scipy's binomial test on the discordant pairs, which is the exact McNemar test), per-class F1 changes, and one
word: helped (the accuracy interval lies above 0), hurt (below 0) or no detectable change. Without an eval set the
same comparison runs on the seed rows' held-out judgements, and says so: those rows also chose the round, so that
verdict leans optimistic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import binomtest

RESAMPLES = 2000


@dataclass
class Verdict:
    on: str  # "eval" | "cv-seed"
    outcome: str  # "helped" | "no detectable change" | "hurt"
    baseline_round: int
    final_round: int
    n: int
    accuracy_before: float
    accuracy_after: float
    delta_accuracy: float
    ci95: list[float]
    mcnemar_p: float
    delta_macro_f1: float | None = None
    ci95_macro_f1: list[float] | None = None
    per_class_f1: dict[str, dict[str, float]] = field(default_factory=dict)
    resamples: int = RESAMPLES
    note: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        where = "on the eval set" if self.on == "eval" else "on held-out seed rows (no eval set)"
        f1 = (f", macro-F1 {self.delta_macro_f1:+.3f} [{self.ci95_macro_f1[0]:+.3f}, {self.ci95_macro_f1[1]:+.3f}]"
              if self.delta_macro_f1 is not None else "")
        return (f"{self.outcome}: accuracy {self.accuracy_before:.3f} → {self.accuracy_after:.3f} "
                f"({self.delta_accuracy:+.3f}, 95% CI [{self.ci95[0]:+.3f}, {self.ci95[1]:+.3f}]{f1}; McNemar p = "
                f"{self.mcnemar_p:.3g}) {where}, round {self.final_round} vs round {self.baseline_round}")


def compare(gold: Sequence[str], before: Sequence[str], after: Sequence[str], *, correct_before: Sequence[bool] | None = None,
            correct_after: Sequence[bool] | None = None, classes: bool = True, resamples: int = RESAMPLES, seed: int = 0,
            on: str = "eval", baseline_round: int = 0, final_round: int = 0, note: str = "") -> Verdict:
    """The verdict for two students' answers to the same rows. `correct_*` override exact-match correctness (QA
    students judge answers); `classes=False` leaves out the macro-F1 and per-class parts (answers are not classes)."""
    n = len(gold)
    right_before = np.array(correct_before if correct_before is not None else [g == p for g, p in zip(gold, before)], bool)
    right_after = np.array(correct_after if correct_after is not None else [g == p for g, p in zip(gold, after)], bool)
    rows = np.random.default_rng(seed).integers(0, n, size=(resamples, n)) if n else np.zeros((resamples, 0), int)
    deltas = right_after[rows].mean(axis=1) - right_before[rows].mean(axis=1) if n else np.zeros(resamples)
    delta = float(right_after.mean() - right_before.mean()) if n else 0.0
    interval = _percentiles(deltas)
    verdict = Verdict(
        on=on, outcome=outcome(interval), baseline_round=baseline_round, final_round=final_round, n=n,
        accuracy_before=float(right_before.mean()) if n else 0.0, accuracy_after=float(right_after.mean()) if n else 0.0,
        delta_accuracy=delta, ci95=interval, mcnemar_p=mcnemar_p(right_before, right_after), resamples=resamples, note=note,
    )
    if classes and n:
        labels = sorted(set(gold) | set(before) | set(after))
        index = {label: i for i, label in enumerate(labels)}
        g, b, a = (np.array([index[x] for x in values]) for values in (gold, before, after))
        f1_before, f1_after = per_class_f1(g, b, len(labels)), per_class_f1(g, a, len(labels))
        present = np.bincount(g, minlength=len(labels)) > 0
        verdict.delta_macro_f1 = float(f1_after[present].mean() - f1_before[present].mean())
        resampled = [macro_f1(g[r], a[r], len(labels), present) - macro_f1(g[r], b[r], len(labels), present) for r in rows]
        verdict.ci95_macro_f1 = _percentiles(np.array(resampled))
        verdict.per_class_f1 = {
            label: {"before": float(f1_before[i]), "after": float(f1_after[i]), "delta": float(f1_after[i] - f1_before[i])}
            for i, label in enumerate(labels) if present[i]
        }
    return verdict


def outcome(interval: Sequence[float]) -> str:
    if interval[0] > 0:
        return "helped"
    if interval[1] < 0:
        return "hurt"
    return "no detectable change"


def mcnemar_p(right_before: np.ndarray, right_after: np.ndarray) -> float:
    """Exact McNemar test: the discordant rows as a binomial with p = 1/2 (1.0 when there are none)."""
    only_before = int(np.sum(right_before & ~right_after))
    only_after = int(np.sum(~right_before & right_after))
    if only_before + only_after == 0:
        return 1.0
    return float(binomtest(only_after, only_before + only_after, 0.5).pvalue)


def per_class_f1(gold: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    true_positive = np.bincount(gold[gold == predicted], minlength=classes)
    denominator = np.bincount(gold, minlength=classes) + np.bincount(predicted, minlength=classes)
    return np.divide(2 * true_positive, denominator, out=np.zeros(classes), where=denominator > 0)


def macro_f1(gold: np.ndarray, predicted: np.ndarray, classes: int, present: np.ndarray) -> float:
    """Macro-F1 over the classes of the full gold set (a resample may miss a class: its F1 then counts as 0)."""
    return float(per_class_f1(gold, predicted, classes)[present].mean())


def accuracy_interval(correct: Sequence[bool], resamples: int = RESAMPLES, seed: int = 0) -> list[float]:
    """A bootstrap 95% interval of one student's accuracy over its rows."""
    values = np.asarray(correct, dtype=float)
    if not len(values):
        return [0.0, 0.0]
    rows = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    return _percentiles(values[rows].mean(axis=1))


def grouped_interval(differences: Sequence[Sequence[float]], resamples: int = RESAMPLES, seed: int = 0) -> list[float]:
    """A bootstrap 95% interval of a mean difference observed on several groups (benchmark seeds), each with its own
    rows (eval rows): groups are resampled, then rows within each drawn group, so both kinds of noise count."""
    groups = [np.asarray(group, dtype=float) for group in differences if len(group)]
    if not groups:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for i in range(resamples):
        chosen = rng.integers(0, len(groups), size=len(groups))
        means[i] = np.mean([groups[g][rng.integers(0, len(groups[g]), size=len(groups[g]))].mean() for g in chosen])
    return _percentiles(means)


def _percentiles(values: np.ndarray) -> list[float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]

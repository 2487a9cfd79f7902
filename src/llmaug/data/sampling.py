"""Seeded, deterministic low-data sampling: k per class, or a stratified fraction of the whole."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from numbers import Real

from llmaug.data.example import Example
from llmaug.errors import ConfigError


def _by_label(examples: list[Example]) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.label or ""].append(example)
    return dict(sorted(groups.items()))


def sample_per_class(examples: list[Example], k: int, seed: int) -> list[Example]:
    """k examples of every label (all of a label when it has fewer), in a seed-determined order.

    Unlabelled (QA) data counts as one class, so it gives k examples in all.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"per-class sample size must be a whole number >= 1, got {k!r}", "--per-class")
    rng = random.Random(seed)
    chosen: list[Example] = []
    for group in _by_label(examples).values():
        chosen.extend(rng.sample(group, min(k, len(group))))
    rng.shuffle(chosen)
    return chosen


def sample_fraction(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """A stratified `fraction` of the data: floor(fraction * N) rows, and at least one of every class.

    LLM2LLM's protocol: 1% of GSM8K train (7473 rows) is 74 rows, so the count is rounded down. Rows are shared out
    between classes in proportion to their sizes (largest remainders get the leftover rows). Every class keeps at
    least one row even when that exceeds floor(fraction * N): a student cannot learn, nor be scored on, a class it
    never saw.
    """
    _check_fraction(fraction)
    if not examples:
        return []
    count = _fraction_count(fraction, len(examples))
    rng = random.Random(seed)
    if all(example.label is None for example in examples):  # QA data: a plain random sample
        return rng.sample(examples, count)
    return _stratified_sample(examples, count, rng)


def sample_n(examples: list[Example], n: int, seed: int) -> list[Example]:
    """n examples drawn stratified (used for capped eval sets)."""
    if n >= len(examples):
        return list(examples)
    if n <= 0:
        return []
    return _stratified_sample(examples, n, random.Random(seed))[:n]


def _check_fraction(fraction: float) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0 < fraction <= 1:
        raise ConfigError(f"fraction must be a number in (0, 1], got {fraction!r}", "--fraction")


def _fraction_count(fraction: float, total: int) -> int:
    # The epsilon keeps float error from losing a row: 0.29 * 100 is 28.999999999999996.
    return max(1, math.floor(fraction * total + 1e-9))


def _stratified_sample(examples: list[Example], count: int, rng: random.Random) -> list[Example]:
    groups = _by_label(examples)
    quota = _class_quotas({label: len(group) for label, group in groups.items()}, count)
    chosen = [example for label, group in groups.items() for example in rng.sample(group, quota[label])]
    rng.shuffle(chosen)
    return chosen


def _class_quotas(sizes: dict[str, int], count: int) -> dict[str, int]:
    """Split `count` rows between classes by size (largest remainder), at least one each, never more than a class has."""
    total = sum(sizes.values())
    count = min(max(count, len(sizes)), total)
    shares = {label: count * size / total for label, size in sizes.items()}
    quota = {label: max(1, math.floor(share)) for label, share in shares.items()}
    while sum(quota.values()) < count:
        open_labels = [label for label in quota if quota[label] < sizes[label]]
        quota[max(open_labels, key=lambda label: (shares[label] - quota[label], label))] += 1
    while sum(quota.values()) > count:  # the at-least-one rule overshot: take back from the most over-served
        reducible = [label for label in quota if quota[label] > 1]
        quota[max(reducible, key=lambda label: (quota[label] - shares[label], label))] -= 1
    return quota

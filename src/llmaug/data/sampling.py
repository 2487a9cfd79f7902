"""Seeded, deterministic low-data sampling: k per class, or a stratified fraction of the whole."""

from __future__ import annotations

import random
from collections import defaultdict

from llmaug.data.example import Example
from llmaug.errors import ConfigError


def _by_label(examples: list[Example]) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.label or ""].append(example)
    return dict(sorted(groups.items()))


def sample_per_class(examples: list[Example], k: int, seed: int) -> list[Example]:
    """k examples of every label (all of a label when it has fewer), in a seed-determined order."""
    if k < 1:
        raise ConfigError(f"per-class sample size must be >= 1, got {k}", "--per-class")
    rng = random.Random(seed)
    chosen: list[Example] = []
    for group in _by_label(examples).values():
        chosen.extend(rng.sample(group, min(k, len(group))))
    rng.shuffle(chosen)
    return chosen


def sample_fraction(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """A stratified `fraction` of the data, at least one per class while the total allows it.

    LLM2LLM's protocol: 1% of GSM8K train is 74 rows. Each class gets round(fraction * class size) rows, at
    least one, and the total is then trimmed from the largest classes to round(fraction * N) when that total
    is at least the number of classes.
    """
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction must be in (0, 1], got {fraction}", "--fraction")
    if all(e.label is None for e in examples):  # QA data: a plain random sample
        rng = random.Random(seed)
        return rng.sample(examples, max(1, round(fraction * len(examples))))
    groups = _by_label(examples)
    total = max(1, round(fraction * len(examples)))
    quota = {label: max(1, round(fraction * len(group))) for label, group in groups.items()}
    while sum(quota.values()) > max(total, len(groups)):
        largest = max(quota, key=lambda label: (quota[label], label))
        if quota[largest] == 1:
            break
        quota[largest] -= 1
    rng = random.Random(seed)
    chosen = [e for label, group in groups.items() for e in rng.sample(group, quota[label])]
    rng.shuffle(chosen)
    return chosen


def sample_n(examples: list[Example], n: int, seed: int) -> list[Example]:
    """n examples drawn stratified (used for capped eval sets)."""
    if n >= len(examples):
        return list(examples)
    return sample_fraction(examples, n / len(examples), seed)[:n] if n > 0 else []


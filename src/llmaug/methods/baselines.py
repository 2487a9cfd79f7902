"""Baselines: `none` trains the student on the seed set alone."""

from __future__ import annotations

from llmaug.data.example import Example
from llmaug.methods.base import Context, Method


class NoAugmentation(Method):
    name = "none"

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        ctx.end_round(0, seed, [], [], ctx.train_and_evaluate(seed, 0, pool=seed))
        return list(seed)

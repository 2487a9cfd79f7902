"""Baselines, each one pass of the teacher and one training of the student (round 0):

- `none`: the student on the seed set alone.
- `paraphrase` (AugGPT-style, Dai et al., 2023): the teacher rewrites every seed example n times; the student
  trains on the seeds and the rewrites.
- `zerogen` (Ye et al., 2022): the teacher writes n examples per label from the label name (and description)
  alone (sentence pairs: the whole pair, or a second text for a seed's first text); as in ZeroGen and in S3's
  comparison, the student trains on the synthetic examples only.

All candidates pass the shared filters (`ctx.filter`). `total`, which `--match-budget RUN_DIR` sets, spreads
exactly that many teacher calls over the seeds (or labels) as evenly as possible, to compare at equal cost.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field

from llmaug.candidates import Ask, read_first_item, read_pair
from llmaug.data.example import Example
from llmaug.errors import UserError
from llmaug.methods.base import Context, Method, TaskInfo, shares
from llmaug.prompts import baselines as prompts
from llmaug.teachers.base import GenerationParams, RequestTarget, TeacherRequest


class NoAugmentation(Method):
    name = "none"

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        ctx.end_round(0, seed, [], [], ctx.train_and_evaluate(seed, 0, pool=seed))
        return list(seed)


class Paraphrase(Method):
    name = "paraphrase"

    per_example: int = Field(1, ge=1, le=100, description="paraphrases per seed example")
    total: int | None = Field(None, ge=0, description="exactly this many teacher calls, spread over the seeds (--match-budget sets it)")
    temperature: float = Field(0.9, ge=0.0, le=5.0, description="teacher sampling temperature")
    max_tokens: int = Field(64, ge=1, description="teacher token limit per example")

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        params = GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens, seed=ctx.seed)
        counts = shares(self.total, len(seed)) if self.total is not None else [self.per_example] * len(seed)
        asks = paraphrase_asks(seed, counts, ctx.task, params)
        added, rejected = ctx.generate_examples(asks, 0, seed, stage="paraphrase: generating")
        data = seed + added
        ctx.end_round(0, data, added, rejected, ctx.train_and_evaluate(data, 0, pool=seed))
        return data


class ZeroGen(Method):
    name = "zerogen"

    per_label: int = Field(10, ge=1, description="examples per label")
    total: int | None = Field(None, ge=0, description="exactly this many teacher calls, spread over the labels (--match-budget sets it)")
    premises: Literal["write", "real"] = Field(
        "write", description="sentence pairs: the teacher writes the whole pair, or a second text for a real first text")
    temperature: float = Field(0.9, ge=0.0, le=5.0, description="teacher sampling temperature")
    max_tokens: int = Field(64, ge=1, description="teacher token limit per example")

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        labels = ctx.task.labels
        counts = shares(self.total, len(labels)) if self.total is not None else [self.per_label] * len(labels)
        added, rejected = ctx.generate_examples(self._asks(seed, labels, counts, ctx), 0, seed, stage="zerogen: generating")
        require_two_labels(added, labels, "ZeroGen")
        ctx.end_round(0, added, added, rejected, ctx.train_and_evaluate(added, 0, pool=seed))
        return added

    def _asks(self, seed: list[Example], labels: list[str], counts: list[int], ctx: Context) -> list[Ask]:
        """Sentence pairs: the teacher writes the pair, or with `premises="real"` a second text for a first text
        drawn from the seeds (what ZeroGen and S3 do for RTE)."""
        params = GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens, seed=ctx.seed)
        pairs = any(e.text_pair is not None for e in seed)
        if not pairs or self.premises == "write":
            return zerogen_asks(labels, counts, ctx.task, params, prompts.ZEROGEN_PAIR if pairs else prompts.ZEROGEN)
        rng = random.Random(ctx.seed)
        asks = []
        for label, n in zip(labels, counts):
            for index in range(n):
                premise = rng.choice(seed)
                messages = prompts.ZEROGEN_ON_PREMISE.render(text=premise.text, label=label,
                                                             description=ctx.task.label_descriptions.get(label))
                request = TeacherRequest(messages=tuple(messages), params=params, sample_index=index, target=RequestTarget(label=label))
                asks.append(Ask(request, label, parents=(premise,), prompt=prompts.ZEROGEN_ON_PREMISE.ref, keep_first=premise.text))
        return asks


def paraphrase_asks(rows: list[Example], counts: list[int], task: TaskInfo, params: GenerationParams) -> list[Ask]:
    """`counts[i]` paraphrases of `rows[i]` (of a pair, its second text, the first kept)."""
    asks = []
    for row, n in zip(rows, counts, strict=True):
        messages = prompts.PARAPHRASE.render(task=task.description, unit=task.unit, text=row.text, text_pair=row.text_pair)
        target = RequestTarget(label=row.label, like=row.text, like_pair=row.text_pair)
        keep_first = row.text if row.text_pair is not None else None
        asks += [Ask(TeacherRequest(messages=tuple(messages), params=params, sample_index=i, target=target), row.label,
                     parents=(row,), prompt=prompts.PARAPHRASE.ref, keep_first=keep_first)
                 for i in range(n)]
    return asks


def zerogen_asks(labels: list[str], counts: list[int], task: TaskInfo, params: GenerationParams,
                 template=prompts.ZEROGEN) -> list[Ask]:
    """`counts[i]` examples of `labels[i]` from the label (and its description) alone."""
    asks = []
    read = read_pair if template is prompts.ZEROGEN_PAIR else read_first_item
    for label, n in zip(labels, counts, strict=True):
        messages = template.render(task=task.description, unit=task.unit, label=label,
                                   description=task.label_descriptions.get(label))
        asks += [Ask(TeacherRequest(messages=tuple(messages), params=params, sample_index=i, target=RequestTarget(label=label)),
                     label, prompt=template.ref, read=read)
                 for i in range(n)]
    return asks


def require_two_labels(synthetic: list[Example], labels: list[str], step: str) -> None:
    """A student trained on synthetic rows alone needs at least two labels among them."""
    present = {e.label for e in synthetic}
    if len(present) < 2:
        missing = ", ".join(repr(label) for label in labels if label not in present)
        raise UserError(f"{step} gave no usable examples for {missing}; use a stronger teacher or ask for more "
                        "examples (the run's rejected.jsonl says why outputs were dropped)")

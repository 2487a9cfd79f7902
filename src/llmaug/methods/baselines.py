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

from llmaug import generate as one_pass
from llmaug.data.example import Example
from llmaug.methods.base import Context, Method
from llmaug.prompts import baselines as prompts
from llmaug.teachers.base import GenerationParams, RequestTarget, TeacherRequest, TeacherResponse


class NoAugmentation(Method):
    name = "none"

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        ctx.end_round(0, seed, [], [], ctx.train_and_evaluate(seed, 0, pool=seed))
        return list(seed)


class Paraphrase(Method):
    name = "paraphrase"

    def __init__(self, per_example: int = 1, total: int | None = None, temperature: float = 0.9, max_tokens: int = 64):
        self.per_example = per_example
        self.total = total
        self.temperature = temperature
        self.max_tokens = max_tokens

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        params = GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens, seed=ctx.seed)
        counts = shares(self.total, len(seed)) if self.total is not None else [self.per_example] * len(seed)
        jobs = [job for row, n in zip(seed, counts) for job in one_pass.paraphrase_requests([row], n, ctx.task, params)]
        responses = ctx.generate([request for _, _, request in jobs], stage="paraphrase: generating")
        made = [
            one_pass.to_candidate(response.text, row.label, row, self.name, 0, ctx.teacher_identity,
                                  prompts.PARAPHRASE.ref, index, response.text, response.finish_reason)
            for (row, index, _), response in zip(jobs, responses, strict=True)
        ]
        instructions = {e.id: one_pass.instructions_only(r.messages[-1].content, p.text, p.text_pair) for e, (p, _, r) in zip(made, jobs) if isinstance(e, Example)}
        added, rejected = one_pass.filter_candidates(made, seed, instructions, ctx)
        data = seed + added
        ctx.end_round(0, data, added, rejected, ctx.train_and_evaluate(data, 0, pool=seed))
        return data


class ZeroGen(Method):
    name = "zerogen"

    def __init__(self, per_label: int = 10, total: int | None = None, premises: Literal["write", "real"] = "write",
                 temperature: float = 0.9, max_tokens: int = 64):
        self.per_label = per_label
        self.total = total
        self.premises = premises
        self.temperature = temperature
        self.max_tokens = max_tokens

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        labels = ctx.task.labels
        counts = shares(self.total, len(labels)) if self.total is not None else [self.per_label] * len(labels)
        jobs = self._jobs(seed, labels, counts, ctx)
        responses = ctx.generate([request for *_, request in jobs], stage="zerogen: generating")
        made = [self._candidate(job, response, ctx) for job, response in zip(jobs, responses, strict=True)]
        instructions = {e.id: one_pass.instructions_only(request.messages[-1].content, premise.text if premise else None)
                        for e, (_, _, premise, _, request) in zip(made, jobs) if isinstance(e, Example)}
        added, rejected = one_pass.filter_candidates(made, seed, instructions, ctx)
        one_pass.require_two_labels(added, labels, "ZeroGen")
        ctx.end_round(0, added, added, rejected, ctx.train_and_evaluate(added, 0, pool=seed))
        return added

    def _jobs(self, seed: list[Example], labels: list[str], counts: list[int], ctx: Context) -> list[tuple]:
        """(label, sample index, premise or None, template, request) for every teacher call. Pairs: the teacher
        writes the pair, or with `premises="real"` a second text for a first text drawn from the seeds (what
        ZeroGen and S3 do for RTE)."""
        params = GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens, seed=ctx.seed)
        pairs = any(e.text_pair is not None for e in seed)
        if not pairs or self.premises == "write":
            template = prompts.ZEROGEN_PAIR if pairs else prompts.ZEROGEN
            return [(label, index, None, template, request) for wanted, n in zip(labels, counts)
                    for label, index, request in one_pass.zerogen_requests([wanted], n, ctx.task, params, template)]
        rng = random.Random(ctx.seed)
        jobs = []
        for label, n in zip(labels, counts):
            for index in range(n):
                premise = rng.choice(seed)
                messages = prompts.ZEROGEN_ON_PREMISE.render(text=premise.text, label=label,
                                                             description=ctx.task.label_descriptions.get(label))
                request = TeacherRequest(messages=tuple(messages), params=params, sample_index=index, target=RequestTarget(label=label))
                jobs.append((label, index, premise, prompts.ZEROGEN_ON_PREMISE, request))
        return jobs

    def _candidate(self, job: tuple, response: TeacherResponse, ctx: Context):
        label, index, premise, template, _ = job
        where = (self.name, 0, ctx.teacher_identity, template.ref, index, response.text, response.finish_reason)
        if template is prompts.ZEROGEN_PAIR:
            return one_pass.to_pair_candidate(response.text, label, *where)
        return one_pass.to_candidate(response.text, label, premise, *where)


def shares(total: int, parts: int) -> list[int]:
    """`total` split over `parts` as evenly as possible, larger shares first."""
    base, extra = divmod(total, parts) if parts else (0, 0)
    return [base + (i < extra) for i in range(parts)]

"""S3, "Let's Synthesize Step by Step" (Wang et al., Findings of EMNLP 2023): synthesis steered by rationales,
then Error Extrapolation-based Synthesis (EES) from a small real set.

    for each label y: R_y = teacher(T_ration(y))                 # distinct reasons a text belongs to y
    D_0 = for each label y, `per_label` times: r ~ R_y, x = teacher(T_query(y, r))   (temperature 0.9)
        (sentence pairs: the teacher writes the pair, or with `premises="real"` the second text for a first
        text drawn from the real set, as the paper does for RTE; weak teachers rarely manage two labelled lines)
    for q in 0 .. rounds:
        train the student from scratch on D_q (synthetic only: the real set never trains it)
        evaluate it on the real set
        stop after the last round, when no real example is wrong, or when the teacher budget is spent
        for each misclassified real example (x, y): x' = teacher(T_mis(x, y)), labelled y
            (sentence pairs: x' keeps x's first text and gets a new second text)
        filter: parse, label in the label set, length, echo, exact and near duplicates (of D_q and the real set)
        D_{q+1} = D_q ∪ accepted

The paper's "small validation set" is in fact the full original train split (its code loads `train_gold.pkl`
as the evaluation set). Here the real set is a parameter, `real_set` (a labelled file, e.g. the dataset's
train.jsonl for the paper's protocol), and defaults to the user's seed set.

Round k of the run record is the student trained after k EES rounds (round 0: seed synthesis only), with the
examples and rejections of that round: seed synthesis in round 0, the extrapolations of round k-1's errors in
round k. Synthetic rows carry the round in which they joined the data. Rationales are kept in `rationales.json`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from llmaug import generate as one_pass
from llmaug.data.example import Example
from llmaug.data.io import load_examples
from llmaug.errors import DataError
from llmaug.filters.parsing import parse_items
from llmaug.filters.quality import Rejected
from llmaug.methods.base import Context, ErrorCase, Method
from llmaug.prompts import s3 as prompts
from llmaug.teachers.base import GenerationParams, RequestTarget, TeacherRequest


class S3(Method):
    name = "s3"

    def __init__(
        self,
        rounds: int = 2,
        per_label: int = 50,
        rationales: int = 5,
        per_error: int = 1,
        real_set: str | None = None,
        premises: Literal["write", "real"] = "write",
        temperature: float = 0.9,
        max_tokens: int = 64,
    ):
        self.rounds = rounds
        self.per_label = per_label
        self.rationales = rationales
        self.per_error = per_error
        self.real_set = real_set
        self.premises = premises
        self.temperature = temperature
        self.max_tokens = max_tokens

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        real = self._real_examples(seed, ctx)
        pairs = any(e.text_pair is not None for e in seed)
        rationales = self.write_rationales(ctx, pairs)
        data, rejected = self.synthesize(rationales, real, ctx, pairs)
        added = data
        for round_ in range(self.rounds + 1):
            evaluation = ctx.train_and_evaluate(data, round_, pool=real)
            ctx.end_round(round_, data, added, rejected, evaluation)
            if round_ == self.rounds or not evaluation.errors or ctx.out_of_budget:
                break
            added, rejected = self.extrapolate(evaluation.errors, data + real, round_ + 1, ctx)
            data = data + added
        return data

    def write_rationales(self, ctx: Context, pairs: bool) -> dict[str, list[str]]:
        """Step 1: for each label, up to `rationales` distinct reasons, saved to rationales.json for review."""
        template = prompts.RATIONALES_PAIR if pairs else prompts.RATIONALES
        labels = ctx.task.labels
        requests = [
            TeacherRequest(messages=tuple(template.render(**self._label_values(label, ctx), count=self.rationales)),
                           params=self._params(ctx, max_tokens=32 * self.rationales))
            for label in labels
        ]
        responses = ctx.generate(requests, stage="s3: writing rationales")
        rationales = {label: list(dict.fromkeys(parse_items(r.text, max_items=self.rationales))) for label, r in zip(labels, responses)}
        ctx.save_json("rationales.json", rationales)
        return rationales

    def synthesize(self, rationales: dict[str, list[str]], real: list[Example], ctx: Context, pairs: bool) -> tuple[list[Example], list[Rejected]]:
        """Step 2: `per_label` examples per label, each steered by one rationale drawn at random (pairs with
        `premises="real"`: a second text for a first text drawn from the real set)."""
        rng = random.Random(ctx.seed)
        jobs = []
        for label in ctx.task.labels:
            for index in range(self.per_label):
                rationale = rng.choice(rationales[label]) if rationales[label] else None
                premise = rng.choice(real) if pairs and self.premises == "real" else None
                template = prompts.SEED if not pairs else prompts.SEED_PAIR if premise is None else prompts.SEED_ON_PREMISE
                messages = template.render(**self._label_values(label, ctx), rationale=rationale,
                                           text=premise.text if premise else None)
                request = TeacherRequest(messages=tuple(messages), params=self._params(ctx), sample_index=index,
                                         target=RequestTarget(label=label))
                jobs.append((label, premise, template, request))
        responses = ctx.generate([job[-1] for job in jobs], stage="s3: seed synthesis")
        made, instructions = [], {}
        for (label, premise, template, request), response in zip(jobs, responses, strict=True):
            where = (self.name, 0, ctx.teacher_identity, template.ref, request.sample_index, response.text, response.finish_reason)
            candidate = (one_pass.to_pair_candidate(response.text, label, *where) if template is prompts.SEED_PAIR
                         else one_pass.to_candidate(response.text, label, premise, *where))
            made.append(candidate)
            if isinstance(candidate, Example):  # an output that repeats the rationale counts as an echo
                instructions[candidate.id] = one_pass.instructions_only(request.messages[-1].content, premise.text if premise else None)
        accepted, rejected = one_pass.filter_candidates(made, real, instructions, ctx)
        one_pass.require_two_labels(accepted, ctx.task.labels, "seed synthesis")
        return accepted, rejected

    def extrapolate(self, wrong: list[ErrorCase], existing: list[Example], round_: int, ctx: Context) -> tuple[list[Example], list[Rejected]]:
        """Step 3 (one EES round): `per_error` new examples like each misclassified real example, with its label."""
        jobs = []
        for case in wrong:
            example = case.example
            template = prompts.EXTRAPOLATE_PAIR if example.text_pair is not None else prompts.EXTRAPOLATE
            messages = tuple(template.render(**self._label_values(example.label, ctx), text=example.text, text_pair=example.text_pair))
            target = RequestTarget(label=example.label, like=example.text, like_pair=example.text_pair)
            for j in range(self.per_error):
                index = (round_ - 1) * self.per_error + j  # a real example wrong again in a later round gets new samples
                jobs.append((example, template, TeacherRequest(messages=messages, params=self._params(ctx), sample_index=index, target=target)))
        responses = ctx.generate([request for _, _, request in jobs], stage=f"s3: error extrapolation, round {round_}")
        made, instructions = [], {}
        for (parent, template, request), response in zip(jobs, responses, strict=True):
            candidate = one_pass.to_candidate(response.text, parent.label, parent, self.name, round_, ctx.teacher_identity,
                                              template.ref, request.sample_index, response.text, response.finish_reason)
            made.append(candidate)
            if isinstance(candidate, Example):
                instructions[candidate.id] = one_pass.instructions_only(request.messages[-1].content, parent.text, parent.text_pair)
        return one_pass.filter_candidates(made, existing, instructions, ctx)

    def _real_examples(self, seed: list[Example], ctx: Context) -> list[Example]:
        if self.real_set is None:
            return list(seed)
        real = load_examples(Path(self.real_set))
        unknown = sorted({e.label for e in real} - set(ctx.task.labels), key=str)
        if unknown:
            raise DataError(f"labels not in the seed set: {', '.join(map(repr, unknown[:5]))}", self.real_set)
        return real

    def _label_values(self, label: str, ctx: Context) -> dict:
        return {"task": ctx.task.description, "unit": ctx.task.unit, "label": label,
                "description": ctx.task.label_descriptions.get(label)}

    def _params(self, ctx: Context, max_tokens: int | None = None) -> GenerationParams:
        return GenerationParams(temperature=self.temperature, max_tokens=max_tokens or self.max_tokens, seed=ctx.seed)

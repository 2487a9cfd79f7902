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
examples and rejections the teacher wrote in that round: seed synthesis (round 0, before its training) and the
extrapolations of round k's errors, which round k + 1 trains on. Rationales are kept in `rationales.json`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from pydantic import Field

from llmaug.candidates import Ask, read_pair
from llmaug.data.example import Example
from llmaug.data.io import load_examples
from llmaug.errors import DataError
from llmaug.evaluation import ErrorCase
from llmaug.filters.parsing import parse_items
from llmaug.filters.quality import Rejected
from llmaug.methods.base import Context, Method
from llmaug.methods.baselines import require_two_labels
from llmaug.prompts import s3 as prompts
from llmaug.teachers.base import GenerationParams, RequestTarget, TeacherRequest


class S3(Method):
    name = "s3"

    rounds: int = Field(2, ge=0, le=100, description="error-extrapolation rounds (the paper: 2)")
    per_label: int = Field(50, ge=1, description="seed-synthesis examples per label")
    rationales: int = Field(5, ge=1, le=50, description="rationales the teacher writes per label")
    per_error: int = Field(1, ge=1, le=100, description="new examples per misclassified real example per round")
    real_set: str | None = Field(None, description="labelled file of real examples that finds errors (default: the seed set)")
    premises: Literal["write", "real"] = Field(
        "write", description="sentence pairs: the teacher writes the whole pair, or a second text for a real first text")
    temperature: float = Field(0.9, ge=0.0, le=5.0, description="teacher sampling temperature")
    max_tokens: int = Field(64, ge=1, description="teacher token limit per example")

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        real = self._real_examples(seed, ctx)
        pairs = any(e.text_pair is not None for e in seed)
        rationales = self.write_rationales(ctx, pairs)
        data, rejected = self.synthesize(rationales, real, ctx, pairs)
        added = list(data)
        for round_ in range(self.rounds + 1):
            evaluation = ctx.train_and_evaluate(data, round_, pool=real)
            last = round_ == self.rounds or not evaluation.errors or ctx.out_of_budget
            new, dropped = ([], []) if last else self.extrapolate(evaluation.errors, data + real, round_, ctx)
            ctx.end_round(round_, data, added + new, rejected + dropped, evaluation)
            if last:
                break
            data, added, rejected = data + new, [], []
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
        asks = []
        for label in ctx.task.labels:
            for index in range(self.per_label):
                rationale = rng.choice(rationales[label]) if rationales[label] else None
                premise = rng.choice(real) if pairs and self.premises == "real" else None
                template = prompts.SEED if not pairs else prompts.SEED_PAIR if premise is None else prompts.SEED_ON_PREMISE
                messages = template.render(**self._label_values(label, ctx), rationale=rationale,
                                           text=premise.text if premise else None)
                request = TeacherRequest(messages=tuple(messages), params=self._params(ctx), sample_index=index,
                                         target=RequestTarget(label=label))
                if template is prompts.SEED_PAIR:
                    asks.append(Ask(request, label, prompt=template.ref, read=read_pair))
                else:
                    asks.append(Ask(request, label, parents=(premise,) if premise else (), prompt=template.ref,
                                    keep_first=premise.text if premise else None))
        accepted, rejected = ctx.generate_examples(asks, 0, real, stage="s3: seed synthesis")
        require_two_labels(accepted, ctx.task.labels, "seed synthesis")
        return accepted, rejected

    def extrapolate(self, wrong: list[ErrorCase], existing: list[Example], round_: int, ctx: Context) -> tuple[list[Example], list[Rejected]]:
        """Step 3 (one EES round): `per_error` new examples like each misclassified real example, with its label."""
        asks = []
        for case in wrong:
            example = case.example
            template = prompts.EXTRAPOLATE_PAIR if example.text_pair is not None else prompts.EXTRAPOLATE
            messages = tuple(template.render(**self._label_values(example.label, ctx), text=example.text, text_pair=example.text_pair))
            target = RequestTarget(label=example.label, like=example.text, like_pair=example.text_pair)
            keep_first = example.text if example.text_pair is not None else None
            for j in range(self.per_error):
                index = round_ * self.per_error + j  # a real example wrong again in a later round gets new samples
                request = TeacherRequest(messages=messages, params=self._params(ctx), sample_index=index, target=target)
                asks.append(Ask(request, example.label, parents=(example,), prompt=template.ref, keep_first=keep_first))
        return ctx.generate_examples(asks, round_, existing, stage=f"s3: error extrapolation, round {round_}")

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

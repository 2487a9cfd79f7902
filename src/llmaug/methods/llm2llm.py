"""LLM2LLM (Lee et al., 2024): iterative, error-targeted augmentation.

    D_0 = seed
    for i in 0 .. rounds:
        train the student from scratch on D_i
        judge every seed by a student that saw neither it nor its children (held-out k-fold; `error_source`)
        stop after the last round, when nothing is left to target, when the teacher budget is spent, or
            when the run's `patience` rounds brought no held-out improvement
        targets (`target`): the wrong seeds (the paper), the least certain seeds, or all seeds
        for each target x: the teacher writes k new examples with x's label (`ask`):
            similar  - like x (the paper; the prompt shows x, its label and the student's wrong prediction)
            diverse  - unlike the examples of x's label the data already holds (the prompt shows some)
            boundary - clearly x's label, on a subject close to the label the student confused it with
            (a QA seed (GSM8K): a new problem with a worked solution ending in "#### <number>"; a sentence-pair
             seed: a new pair; both always "similar")
        filter: parse, label in the label set, length, echo, exact and ROUGE-L > 0.95 near duplicates
        D_{i+1} = D_i ∪ accepted          # synthetic rows are evaluated but never targeted themselves

QA seeds (an answer, no label) are judged by the student trained on them, as published. The answers to round k's
targets carry round k in their provenance and are listed in `rounds/<k>/added.jsonl`; round k + 1 is the first to
train on them. Which round's student the run returns is the runner's choice (`select`), not the method's.

The one-shot ablation trains once, then spends the same number of examples on the round-0 targets at once.

`per_request: k` asks for up to k new examples like a target in one request, as a JSON array under a schema
(a strong teacher then reads the prompt once for k examples); each example keeps its own provenance (the same
parent, its `item_index`). It applies to `ask: similar` for single-text classification; other asks, pairs and QA
stay one per request, as does the default (1) that suits the weak embedded teacher.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from llmaug.candidates import Ask, read_first_item, read_json_items, read_pair, read_qa
from llmaug.data.example import Example
from llmaug.evaluation import Evaluation
from llmaug.filters.quality import Rejected
from llmaug.methods.base import Context, Method, shares
from llmaug.prompts import llm2llm as prompts
from llmaug.teachers.base import GenerationParams, RequestTarget, TeacherRequest, TeacherResponse
from llmaug.teachers.structured import examples_schema

QA_STOP = ("2. Question",)


class LLM2LLM(Method):
    name = "llm2llm"

    rounds: int = Field(3, ge=0, le=100, description="augmentation rounds (the paper's 10 steps are 9 rounds)")
    per_error: int = Field(1, ge=1, le=100, description="new examples per target per round")
    per_request: int = Field(
        1, ge=1, le=50, description="examples asked for in one request, as a JSON array (ask: similar, classification; 1: one per request)")
    target: Literal["errors", "uncertain", "all"] = Field(
        "errors", description="which seeds to target: the wrong ones (paper), the least certain held out (as many "
                              "as are wrong, at least one), or all")
    ask: Literal["similar", "diverse", "boundary"] = Field(
        "similar", description="what to ask for: like the seed (paper), unlike the data of its label, or near the "
                               "label the student confused it with")
    shown: int = Field(3, ge=1, le=20, description="examples of the label a diverse prompt shows")
    evaluate_on: Literal["seed", "all"] = Field("seed", description="find errors among the seeds, or all of the data")
    error_source: Literal["cross-val", "train"] = Field(
        "cross-val", description="judge seeds by held-out k-fold students (cross-val) or by the student trained on them (train, the paper)")
    show_wrong_prediction: bool = Field(True, description="show the student's wrong label in a similar prompt")
    one_shot: bool = Field(False, description="the paper's ablation: one training, all new examples at once")
    one_shot_examples: int | None = Field(
        None, ge=0, description="examples the one-shot ablation asks for (default rounds x per_error x targets)")
    max_attempts: int = Field(2, ge=1, le=10, description="tries per target when every output was rejected")
    temperature: float = Field(0.8, ge=0.0, le=5.0, description="teacher sampling temperature")
    max_tokens: int = Field(64, ge=1, description="teacher token limit per classification example")
    qa_max_tokens: int = Field(384, ge=1, description="teacher token limit per QA example (a worked solution)")

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        if self.one_shot:
            return self._run_one_shot(seed, ctx)
        data = list(seed)
        for round_ in range(self.rounds + 1):
            pool = seed if self.evaluate_on == "seed" else data
            evaluation = ctx.train_and_evaluate(data, round_, pool, held_out_errors=self.error_source == "cross-val")
            targets = self.targets(evaluation, seed)
            if round_ == self.rounds or not targets or ctx.out_of_budget or ctx.stalled:
                ctx.end_round(round_, data, [], [], evaluation)
                break
            added, rejected = self.augment(targets, data, round_, ctx, per_error=[self.per_error] * len(targets))
            ctx.end_round(round_, data, added, rejected, evaluation)
            data = data + added
        return data

    def targets(self, evaluation: Evaluation, seed: list[Example]) -> list[Target]:
        """The seeds to write for, each with the label the student gave it and the label it came closest to."""
        held_out = evaluation.held_out
        rival = held_out.rival if held_out is not None else {}
        wrong = [Target(c.example, c.predicted, c.predicted) for c in evaluation.errors if c.example.is_seed]
        if self.target == "errors" or held_out is None or not held_out.correct:
            return wrong  # (without held-out judgements, e.g. QA seeds, only the errors are known)
        judged = [e for e in seed if e.id in held_out.correct]
        if self.target == "uncertain":
            judged = sorted(judged, key=lambda e: held_out.margin.get(e.id, 0.0))[: max(1, len(wrong))]
        return [Target(e, held_out.predicted[e.id], rival.get(e.id)) for e in judged]

    def _run_one_shot(self, seed: list[Example], ctx: Context) -> list[Example]:
        evaluation = ctx.train_and_evaluate(seed, 0, seed, held_out_errors=self.error_source == "cross-val")
        targets = self.targets(evaluation, seed)
        total = self.one_shot_examples if self.one_shot_examples is not None else self.rounds * self.per_error * len(targets)
        added, rejected = self.augment(targets, seed, 0, ctx, per_error=shares(total, len(targets))) if targets else ([], [])
        ctx.end_round(0, seed, added, rejected, evaluation)
        data = seed + added
        ctx.end_round(1, data, [], [], ctx.train_and_evaluate(data, 1, seed, held_out_errors=self.error_source == "cross-val"))
        return data

    def augment(
        self, wrong: list[Target], data: list[Example], round_: int, ctx: Context, per_error: list[int]
    ) -> tuple[list[Example], list[Rejected]]:
        """Ask for `per_error[i]` examples for each target; retry targets whose outputs were all rejected."""
        accepted: list[Example] = []
        rejected: list[Rejected] = []
        needed = dict(enumerate(per_error))
        for attempt in range(self.max_attempts):
            jobs = [(i, j, n) for i, count in needed.items() for j, n in enumerate(self._split(wrong[i].example, count))]
            if not jobs or ctx.out_of_budget:
                break
            asks = [self._ask(wrong[i], data + accepted, ctx, round_, attempt, j, max(per_error), n) for i, j, n in jobs]
            kept, dropped = ctx.generate_examples(asks, round_, data + accepted, stage=f"round {round_}: generating")
            accepted += kept
            rejected += dropped
            for example in kept:
                parent = next(i for i, case in enumerate(wrong) if case.example.id == example.provenance.parent_ids[0])
                needed[parent] -= 1
            needed = {i: n for i, n in needed.items() if n > 0}
        return accepted, rejected

    def _split(self, example: Example, count: int) -> list[int]:
        """How many examples each request for `count` new examples like `example` asks for."""
        size = self.per_request if _is_single_text(example) and self.ask == "similar" else 1
        return [min(size, count - start) for start in range(0, count, size)]

    def _ask(self, case: Target, data: list[Example], ctx: Context, round_: int, attempt: int, j: int, width: int,
             count: int = 1) -> Ask:
        example = case.example
        ask = self.ask if _is_single_text(example) else "similar"
        template = prompts.CLASSIFICATION_MANY if count > 1 else _template(example, ask)
        index = (round_ * self.max_attempts + attempt) * width + j  # distinct per round, attempt and sample
        values = {**self._prompt_values(case, ctx), "examples": self._shown(example, data, index, ctx), "count": count}
        target = RequestTarget(label=example.label, like=example.text, like_pair=example.text_pair, ask=ask,
                               confused_with=case.rival)
        request = TeacherRequest(messages=tuple(template.render(**values)), params=self._params(example, count),
                                 sample_index=index, target=target, json_schema=examples_schema(count) if count > 1 else None)
        read = read_json_items(count) if count > 1 else _reader(example)
        return Ask(request, example.label, parents=(example,), prompt=template.ref, read=read, count=count)

    def _shown(self, example: Example, data: list[Example], index: int, ctx: Context) -> list[str]:
        """The examples of the seed's label a diverse prompt shows: the seed, then others from the data."""
        if self.ask != "diverse":
            return []
        others = [e.text for e in data if e.label == example.label and e.id != example.id]
        picked = random.Random(f"{ctx.seed}:{example.id}:{index}").sample(others, min(self.shown - 1, len(others)))
        return [example.text, *picked]

    def _params(self, example: Example, count: int = 1) -> GenerationParams:
        if _is_qa(example):  # one problem is asked for: stop where a second one would start
            return GenerationParams(temperature=self.temperature, max_tokens=self.qa_max_tokens, stop=QA_STOP)
        return GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens * count + 8 * (count > 1))

    def _prompt_values(self, case: Target, ctx: Context) -> dict:
        example = case.example
        wrong = case.predicted if case.predicted != (example.label or example.answer) else None
        return {
            "task": ctx.task.description,
            "unit": ctx.task.unit,
            "label": example.label,
            "description": ctx.task.label_descriptions.get(example.label or ""),
            "text": example.text,
            "text_pair": example.text_pair,
            "answer": example.answer,
            "wrong_prediction": wrong if self.show_wrong_prediction else None,
            "other": case.rival,
            "count": 1,
        }


@dataclass
class Target:
    """A seed to write for: what the student predicted for it, and the label it confused it with or came closest to."""

    example: Example
    predicted: str
    rival: str | None


def read_qa_without_echo(response: TeacherResponse) -> list[dict] | str:
    """A QA answer, rejected when it copies the prompt's fixed wording into its problem or solution."""
    read = read_qa(response)
    if isinstance(read, list):
        written = f"{read[0]['text']}\n{read[0]['answer']}".casefold()
        if any(phrase in written for phrase in prompts.QA_PROMPT_PHRASES):
            return "echo of the prompt instructions"
    return read


def _is_qa(example: Example) -> bool:
    return example.label is None and example.answer is not None


def _template(example: Example, ask: str = "similar"):
    if _is_qa(example):
        return prompts.QA
    if example.text_pair is not None:
        return prompts.PAIR
    return {"similar": prompts.CLASSIFICATION, "diverse": prompts.DIVERSE, "boundary": prompts.BOUNDARY}[ask]


def _is_single_text(example: Example) -> bool:
    return not _is_qa(example) and example.text_pair is None


def _reader(example: Example):
    if _is_qa(example):
        return read_qa_without_echo
    return read_pair if example.text_pair is not None else read_first_item

"""LLM2LLM (Lee et al., 2024): iterative, error-targeted augmentation.

    D_0 = seed
    for i in 0 .. rounds:
        train the student from scratch on D_i
        evaluate it on the seed examples (or on all of D_i); with a classifier that fits its training
            data perfectly, judge each seed by a student trained without it (k-fold, `error_source`)
        stop after the last round, when no seed example is wrong, or when the teacher budget is spent
        for each wrong *seed* example x: the teacher writes k new examples like x, with x's label
            (the prompt shows x, its gold label and the student's wrong prediction); for a QA seed
            (GSM8K) a new problem with a worked solution ending in "#### <number>"
        filter: parse, label in the label set, length, echo, exact and ROUGE-L > 0.95 near duplicates
        D_{i+1} = D_i ∪ accepted          # synthetic rows are evaluated but never augmented themselves

QA seeds (an answer, no label) are judged by the student trained on them, as published: the runner's k-fold
needs labels, and a generative student does not reproduce its training answers anyway.

The answers to round k's errors carry round k in their provenance and are listed in `rounds/<k>/added.jsonl`;
round k + 1 is the first to train on them.

The one-shot ablation trains once, then spends the same number of examples on the round-0 errors at once.

`per_request: k` asks for up to k new examples like a wrong seed in one request, as a JSON array under a schema
(a strong teacher then reads the prompt once for k examples); each example keeps its own provenance (the same
parent, its `item_index`). It applies to single-text classification; pairs and QA stay one per request, as does
the default (1) that suits the weak embedded teacher.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmaug.candidates import Ask, read_first_item, read_json_items, read_pair, read_qa
from llmaug.data.example import Example
from llmaug.evaluation import ErrorCase
from llmaug.filters.quality import Rejected
from llmaug.methods.base import Context, Method, shares
from llmaug.prompts import llm2llm as prompts
from llmaug.teachers.base import GenerationParams, RequestTarget, TeacherRequest, TeacherResponse
from llmaug.teachers.structured import examples_schema

QA_STOP = ("2. Question",)


class LLM2LLM(Method):
    name = "llm2llm"

    rounds: int = Field(3, ge=0, le=100, description="augmentation rounds (the paper's 10 steps are 9 rounds)")
    per_error: int = Field(1, ge=1, le=100, description="new examples per wrong seed per round")
    per_request: int = Field(
        1, ge=1, le=50, description="examples asked for in one request, as a JSON array (classification; 1: one per request)")
    evaluate_on: Literal["seed", "all"] = Field("seed", description="find errors among the seeds, or all of the data")
    error_source: Literal["cross-val", "train"] = Field(
        "cross-val", description="judge seeds by k-fold held-out students (cross-val) or by the student trained on them (train, the paper)")
    folds: int = Field(5, ge=2, le=50, description="k of the k-fold held-out students (error_source: cross-val)")
    show_wrong_prediction: bool = Field(True, description="show the student's wrong label in the prompt")
    one_shot: bool = Field(False, description="the paper's ablation: one training, all new examples at once")
    one_shot_examples: int | None = Field(
        None, ge=0, description="examples the one-shot ablation asks for (default rounds x per_error x errors)")
    max_attempts: int = Field(2, ge=1, le=10, description="tries per wrong seed when every output was rejected")
    temperature: float = Field(0.8, ge=0.0, le=5.0, description="teacher sampling temperature")
    max_tokens: int = Field(64, ge=1, description="teacher token limit per classification example")
    qa_max_tokens: int = Field(384, ge=1, description="teacher token limit per QA example (a worked solution)")

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        if self.one_shot:
            return self._run_one_shot(seed, ctx)
        data = list(seed)
        for round_ in range(self.rounds + 1):
            pool = seed if self.evaluate_on == "seed" else data
            evaluation = ctx.train_and_evaluate(data, round_, pool, error_folds=self._error_folds())
            wrong = [case for case in evaluation.errors if case.example.is_seed]
            if round_ == self.rounds or not wrong or ctx.out_of_budget:
                ctx.end_round(round_, data, [], [], evaluation)
                break
            added, rejected = self.augment(wrong, data, round_, ctx, per_error=[self.per_error] * len(wrong))
            ctx.end_round(round_, data, added, rejected, evaluation)
            data = data + added
        return data

    def _error_folds(self) -> int | None:
        return self.folds if self.error_source == "cross-val" else None

    def _run_one_shot(self, seed: list[Example], ctx: Context) -> list[Example]:
        evaluation = ctx.train_and_evaluate(seed, 0, seed, error_folds=self._error_folds())
        wrong = [case for case in evaluation.errors if case.example.is_seed]
        total = self.one_shot_examples if self.one_shot_examples is not None else self.rounds * self.per_error * len(wrong)
        added, rejected = self.augment(wrong, seed, 0, ctx, per_error=shares(total, len(wrong))) if wrong else ([], [])
        ctx.end_round(0, seed, added, rejected, evaluation)
        data = seed + added
        ctx.end_round(1, data, [], [], ctx.train_and_evaluate(data, 1, seed, error_folds=self._error_folds()))
        return data

    def augment(
        self, wrong: list[ErrorCase], data: list[Example], round_: int, ctx: Context, per_error: list[int]
    ) -> tuple[list[Example], list[Rejected]]:
        """Ask for `per_error[i]` examples like each wrong seed; retry seeds whose outputs were all rejected."""
        accepted: list[Example] = []
        rejected: list[Rejected] = []
        needed = dict(enumerate(per_error))
        for attempt in range(self.max_attempts):
            jobs = [(i, j, n) for i, count in needed.items() for j, n in enumerate(self._split(wrong[i].example, count))]
            if not jobs or ctx.out_of_budget:
                break
            asks = [self._ask(wrong[i], ctx, round_, attempt, j, max(per_error), n) for i, j, n in jobs]
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
        size = self.per_request if _is_single_text(example) else 1
        return [min(size, count - start) for start in range(0, count, size)]

    def _ask(self, case: ErrorCase, ctx: Context, round_: int, attempt: int, j: int, width: int, count: int = 1) -> Ask:
        example = case.example
        template = prompts.CLASSIFICATION_MANY if count > 1 else _template(example)
        index = (round_ * self.max_attempts + attempt) * width + j  # distinct per round, attempt and sample
        request = TeacherRequest(
            messages=tuple(template.render(**self._prompt_values(case, ctx), count=count)), params=self._params(example, count),
            sample_index=index, target=RequestTarget(label=example.label, like=example.text, like_pair=example.text_pair),
            json_schema=examples_schema(count) if count > 1 else None,
        )
        read = read_json_items(count) if count > 1 else _reader(example)
        return Ask(request, example.label, parents=(example,), prompt=template.ref, read=read, count=count)

    def _params(self, example: Example, count: int = 1) -> GenerationParams:
        if _is_qa(example):  # one problem is asked for: stop where a second one would start
            return GenerationParams(temperature=self.temperature, max_tokens=self.qa_max_tokens, stop=QA_STOP)
        return GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens * count + 8 * (count > 1))

    def _prompt_values(self, case: ErrorCase, ctx: Context) -> dict:
        example = case.example
        return {
            "task": ctx.task.description,
            "unit": ctx.task.unit,
            "label": example.label,
            "description": ctx.task.label_descriptions.get(example.label or ""),
            "text": example.text,
            "text_pair": example.text_pair,
            "answer": example.answer,
            "wrong_prediction": case.predicted if self.show_wrong_prediction else None,
        }


def read_qa_without_echo(response: TeacherResponse) -> list[dict] | str:
    """A QA answer, rejected when it copies the prompt's fixed wording into its problem or solution."""
    read = read_qa(response)
    if isinstance(read, list):
        written = f"{read[0]['text']}\n{read[0]['answer']}".casefold()
        if any(phrase in written for phrase in prompts.QA_PROMPT_PHRASES):
            return "echo of the prompt instructions"
    return read


def _is_single_text(example: Example) -> bool:
    return example.text_pair is None and not _is_qa(example)


def _is_qa(example: Example) -> bool:
    return example.label is None and example.answer is not None


def _template(example: Example):
    if _is_qa(example):
        return prompts.QA
    return prompts.PAIR if example.text_pair is not None else prompts.CLASSIFICATION


def _reader(example: Example):
    if _is_qa(example):
        return read_qa_without_echo
    return read_pair if example.text_pair is not None else read_first_item

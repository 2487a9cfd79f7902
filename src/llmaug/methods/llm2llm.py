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

The one-shot ablation trains once, then spends the same number of examples on the round-0 errors at once.
"""

from __future__ import annotations

from typing import Literal

from llmaug.data.example import Example, Provenance
from llmaug.filters.answers import parse_qa_items
from llmaug.filters.parsing import parse_items
from llmaug.filters.quality import Rejected, rejection
from llmaug.methods.base import Context, ErrorCase, Method
from llmaug.prompts import llm2llm as prompts
from llmaug.teachers.base import GenerationParams, RequestTarget, TeacherRequest, TeacherResponse


QA_STOP = ("2. Question",)


class LLM2LLM(Method):
    name = "llm2llm"

    def __init__(
        self,
        rounds: int = 3,
        per_error: int = 1,
        evaluate_on: Literal["seed", "all"] = "seed",
        error_source: Literal["cross-val", "train"] = "cross-val",
        folds: int = 5,
        show_wrong_prediction: bool = True,
        one_shot: bool = False,
        one_shot_examples: int | None = None,
        max_attempts: int = 2,
        temperature: float = 0.8,
        max_tokens: int = 64,
        qa_max_tokens: int = 384,
    ):
        self.rounds = rounds
        self.per_error = per_error
        self.evaluate_on = evaluate_on
        self.error_source = error_source
        self.folds = folds
        self.show_wrong_prediction = show_wrong_prediction
        self.one_shot = one_shot
        self.one_shot_examples = one_shot_examples
        self.max_attempts = max_attempts
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.qa_max_tokens = qa_max_tokens  # a worked solution needs more room than a classification example

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        if self.one_shot:
            return self._run_one_shot(seed, ctx)
        data = list(seed)
        for round_ in range(self.rounds + 1):
            pool = seed if self.evaluate_on == "seed" else data
            evaluation = ctx.train_and_evaluate(data, round_, pool, error_folds=self._error_folds(round_))
            wrong = [case for case in evaluation.errors if case.example.is_seed]
            if round_ == self.rounds or not wrong or ctx.out_of_budget:
                ctx.end_round(round_, data, [], [], evaluation)
                break
            added, rejected = self.augment(wrong, data, round_, ctx, per_error=[self.per_error] * len(wrong))
            ctx.end_round(round_, data, added, rejected, evaluation)
            data = data + added
        return data

    def _error_folds(self, round_: int) -> int | None:
        return self.folds if self.error_source == "cross-val" else None

    def _run_one_shot(self, seed: list[Example], ctx: Context) -> list[Example]:
        evaluation = ctx.train_and_evaluate(seed, 0, seed, error_folds=self._error_folds(0))
        wrong = [case for case in evaluation.errors if case.example.is_seed]
        total = self.one_shot_examples if self.one_shot_examples is not None else self.rounds * self.per_error * len(wrong)
        shares = _spread(total, len(wrong))
        added, rejected = self.augment(wrong, seed, 0, ctx, per_error=shares) if wrong else ([], [])
        ctx.end_round(0, seed, added, rejected, evaluation)
        data = seed + added
        ctx.end_round(1, data, [], [], ctx.train_and_evaluate(data, 1, seed, error_folds=self._error_folds(1)))
        return data

    def augment(
        self, wrong: list[ErrorCase], data: list[Example], round_: int, ctx: Context, per_error: list[int]
    ) -> tuple[list[Example], list[Rejected]]:
        """Ask for `per_error[i]` examples like each wrong seed; retry seeds whose outputs were all rejected."""
        accepted: list[Example] = []
        rejected: list[Rejected] = []
        needed = dict(enumerate(per_error))
        for attempt in range(self.max_attempts):
            jobs = [(i, j) for i, count in needed.items() for j in range(count)]
            if not jobs or ctx.out_of_budget:
                break
            requests = [self._request(wrong[i], ctx, round_, attempt, j, max(per_error)) for i, j in jobs]
            responses = ctx.generate(requests, stage=f"round {round_}: generating")
            candidates, instructions, bad = self._candidates(wrong, jobs, requests, responses, round_, ctx)
            kept, dropped = ctx.filter(candidates, data + accepted, instructions)
            accepted += kept
            rejected += bad + dropped
            for example in kept:
                parent = next(i for i, case in enumerate(wrong) if case.example.id == example.provenance.parent_ids[0])
                needed[parent] -= 1
            needed = {i: n for i, n in needed.items() if n > 0}
        return accepted, rejected

    def _request(self, case: ErrorCase, ctx: Context, round_: int, attempt: int, j: int, width: int) -> TeacherRequest:
        messages = _template(case.example).render(**self._prompt_values(case, ctx))
        params = self._params(case.example)
        index = (round_ * self.max_attempts + attempt) * width + j  # distinct per round, attempt and sample
        example = case.example
        target = RequestTarget(label=example.label, like=example.text, like_pair=example.text_pair)
        return TeacherRequest(messages=tuple(messages), params=params, sample_index=index, target=target)

    def _params(self, example: Example) -> GenerationParams:
        if _is_qa(example):  # one problem is asked for: stop where a second one would start
            return GenerationParams(temperature=self.temperature, max_tokens=self.qa_max_tokens, stop=QA_STOP)
        return GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens)

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
            "count": 1,
        }

    def _candidates(self, wrong, jobs, requests, responses: list[TeacherResponse], round_: int, ctx: Context):
        candidates: list[Example] = []
        instructions: dict[str, str] = {}
        bad: list[Rejected] = []
        for (i, j), request, response in zip(jobs, requests, responses, strict=True):
            parent = wrong[i].example
            provenance = Provenance(
                origin="synthetic", method=self.name, round=round_ + 1, parent_ids=[parent.id],
                teacher=ctx.teacher_identity, prompt=_template(parent).ref, sample_index=request.sample_index, raw_output=response.text,
            )
            fields = self._parse(response, parent)
            if isinstance(fields, str):
                bad.append(rejection(Example.create("", parent.label, provenance=provenance), fields))
                continue
            candidate = Example.create(fields["text"], parent.label, text_pair=fields.get("text_pair"),
                                       answer=fields.get("answer"), provenance=provenance)
            candidates.append(candidate)
            instructions[candidate.id] = request.messages[-1].content.replace(parent.text, " ")
        return candidates, instructions, bad

    def _parse(self, response: TeacherResponse, parent: Example) -> dict | str:
        """The example's fields, or the reason it is unusable."""
        if response.finish_reason in ("budget", "error"):
            return f"no output ({response.finish_reason})"
        if _is_qa(parent):
            return _parse_qa(response)
        if parent.text_pair is not None:
            return _parse_pair(response.text)
        items = parse_items(response.text, max_items=1)
        return {"text": items[0]} if items else "unparseable"


def _parse_pair(text: str) -> dict | str:
    first = second = None
    for line in text.splitlines():
        head, _, value = line.partition(":")
        key = head.strip().lower()
        if key in ("first text", "premise", "text 1", "sentence 1") and value.strip():
            first = value.strip()
        elif key in ("second text", "hypothesis", "text 2", "sentence 2") and value.strip():
            second = value.strip()
    if not first or not second:
        return "unparseable pair (need 'First text:' and 'Second text:' lines)"
    return {"text": first, "text_pair": second}


def _parse_qa(response: TeacherResponse) -> dict | str:
    """The first problem and its solution, or why there is none ("no answer", "answer not numeric", ...)."""
    items, rejections = parse_qa_items(response.text, cut_off=response.finish_reason == "length")
    if not items:
        return rejections[0].reason if rejections else "unparseable"
    written = f"{items[0].question}\n{items[0].answer}".casefold()
    if any(phrase in written for phrase in prompts.QA_PROMPT_PHRASES):
        return "echo of the prompt instructions"
    return {"text": items[0].question, "answer": items[0].answer}


def _spread(total: int, parts: int) -> list[int]:
    """`total` split over `parts` as evenly as possible, larger shares first."""
    if parts == 0:
        return []
    base = total // parts
    return [base + (1 if i < total - base * parts else 0) for i in range(parts)]



def _is_qa(example: Example) -> bool:
    return example.label is None and example.answer is not None


def _template(example: Example):
    if _is_qa(example):
        return prompts.QA
    return prompts.PAIR if example.text_pair is not None else prompts.CLASSIFICATION

"""PromptMix (Sahu et al., EMNLP 2023): borderline examples from prompts that mix two classes, relabelled by the
teacher.

    descriptions: label → one line (a file, else the task's, else written once by the teacher), kept in
        descriptions.json for review
    for cycle in 1 .. cycles:
        split the labels at random into groups of t = `classes_per_prompt` (a single leftover joins the last group)
        for each group, for each class y in it, `per_cycle` times:
            α = 0.5 + 0.5·Beta(5, 2), rounded to 0.05; y' = another class of the group, at random
            the prompt shows the group's classes, each with its description and k seed examples, and asks for
            `per_prompt` short texts that are α% y and (1 − α)% y', labelled y
    filter: parse, label in the label set, length, echo, exact and near duplicates; then keep one text per
        prompt, at random among those that passed
    relabel (A2; off: A1): the teacher, at temperature 0, picks each kept text's label among its `nearest` classes
        by MiniLM similarity to the class vectors (mean of the class's seeds and of its name), as a choice that
        servers which can constrain their output are held to (`teachers.structured`); changed rows get origin
        "relabelled"; relabel.json counts the changes, the unusable answers, and lists the changes
    train the student from scratch on the seeds + the generated (A1) or relabelled (A2) examples

Prompts always show the original seeds (the official `feedback=False`), so no cycle depends on another and the
student trains once, at the end; the official loop also trains between cycles, to report. Deviations from the
official code: the seeds are not relabelled (its relabel script relabels them too), and an answer that names none
of the candidate classes keeps the generated label (the official code maps any answer to the nearest class name).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from pydantic import Field

from llmaug.candidates import NO_OUTPUT, Ask
from llmaug.data.example import Example, Provenance
from llmaug.data.io import example_rows
from llmaug.device import DEVICE
from llmaug.errors import UserError
from llmaug.filters.parsing import parse_items
from llmaug.filters.quality import Rejected, rejection
from llmaug.filters.similarity import ClassVectors
from llmaug.methods.base import Context, Method, read_descriptions
from llmaug.prompts import promptmix as prompts
from llmaug.teachers.base import GenerationParams, RequestTarget, TeacherRequest, TeacherResponse
from llmaug.teachers.structured import chosen

_MIX_NOTE = re.compile(r"\s*\(\s*\d{1,3}\s*%[^()]*\)")  # "(85% balance, 15% card)" after an utterance
_GREEDY = GenerationParams(temperature=0.0, max_tokens=24)


@dataclass
class _MixJob:
    label: str
    shown: list[Example]  # the seed examples in the prompt: the generated example's parents
    pick: float  # which of its usable texts to keep, drawn up front so that it never depends on the outputs
    request: TeacherRequest


class PromptMix(Method):
    name = "promptmix"

    cycles: int = Field(10, ge=1, description="generation cycles")
    per_cycle: int = Field(10, ge=1, description="prompts per class per cycle")
    classes_per_prompt: int = Field(4, ge=2, description="classes shown in one prompt (two of them are mixed)")
    examples_per_class: int = Field(2, ge=1, description="seed examples shown per class")
    per_prompt: int = Field(3, ge=1, description="texts asked for per prompt (one is kept)")
    relabel: bool = Field(True, description="relabel by the teacher (A2); false is A1")
    nearest: int = Field(5, ge=1, description="classes the relabeller chooses among (nearest by MiniLM)")
    descriptions: str | None = Field(None, description="YAML file: label -> one-line description")
    temperature: float = Field(1.0, ge=0.0, le=5.0, description="teacher sampling temperature")
    max_tokens: int = Field(96, ge=1, description="teacher token limit per prompt")
    device: DEVICE = Field("auto", description="torch device of the MiniLM encoder that finds the nearest classes")

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        if any(e.text_pair is not None for e in seed):
            raise UserError("PromptMix is for single-text classification, not sentence pairs", "promptmix")
        descriptions = self.class_descriptions(seed, ctx)
        generated, rejected = self.mix(seed, descriptions, ctx)
        added = self.relabelled(generated, seed, descriptions, ctx) if self.relabel else generated
        data = seed + added
        ctx.end_round(0, data, added, rejected, ctx.train_and_evaluate(data, 0, pool=seed))
        return data

    def class_descriptions(self, seed: list[Example], ctx: Context) -> dict[str, str]:
        """Step 1: one line per label, from the `descriptions` file, else the task, else the teacher (once,
        greedy, cached); all saved to descriptions.json, which can be edited and passed back as `descriptions`."""
        given = read_descriptions(self.descriptions, ctx.task.labels, "class", "label", "the label set")
        known = {label: given.get(label) or ctx.task.label_descriptions.get(label) for label in ctx.task.labels}
        missing = [label for label, description in known.items() if not description]
        descriptions = {**known, **self._written_descriptions(missing, seed, ctx)}
        ctx.save_json("descriptions.json", descriptions)
        return descriptions

    def mix(self, seed: list[Example], descriptions: dict[str, str], ctx: Context) -> tuple[list[Example], list[Rejected]]:
        """Step 2: `cycles` × `per_cycle` mixed-prompt examples per class, labelled with the prompt's main class."""
        rng = random.Random(ctx.seed)
        params = GenerationParams(temperature=self.temperature, max_tokens=self.max_tokens, seed=ctx.seed)
        jobs = []
        for _ in range(self.cycles):
            for group in groups(ctx.task.labels, self.classes_per_prompt, rng):
                for label in group:
                    for _ in range(self.per_cycle):
                        jobs.append(self._mix_job(label, group, seed, descriptions, rng, params, len(jobs), ctx))
        asks = [Ask(job.request, job.label, parents=tuple(job.shown), prompt=prompts.MIX.ref, read=self._read,
                    instructions=_instruction(job.request)) for job in jobs]
        valid, rejected = ctx.generate_examples(asks, 0, seed, stage="promptmix: mixed generation")
        return self._one_per_prompt(jobs, valid, rejected)

    def _one_per_prompt(self, jobs: list[_MixJob], valid: list[Example], rejected: list[Rejected]) -> tuple[list[Example], list[Rejected]]:
        """Of each prompt's texts that passed the filters, one at random (the official code asks again until it
        has `per_prompt` usable texts, then keeps one); the others are logged as unused."""
        by_prompt: dict[int, list[Example]] = {}
        for example in valid:  # a job's sample_index is unique, and the filter keeps provenance
            by_prompt.setdefault(example.provenance.sample_index, []).append(example)
        kept, unused = [], []
        for job in jobs:
            texts = by_prompt.get(job.request.sample_index, [])
            if texts:
                choice = texts[int(job.pick * len(texts))]
                kept.append(choice)
                unused += [rejection(e, "unused (one text kept per prompt)") for e in texts if e is not choice]
        return kept, rejected + unused

    def relabelled(self, generated: list[Example], seed: list[Example], descriptions: dict[str, str], ctx: Context) -> list[Example]:
        """Step 3: the teacher's label for each generated example, chosen among its nearest classes."""
        options = ClassVectors(seed, ctx.task.labels, self.device).nearest([e.text for e in generated], self.nearest)
        requests = [
            TeacherRequest(messages=tuple(prompts.RELABEL.render(classes=self._blocks(sorted(o), seed, descriptions),
                                                                 unit=ctx.task.unit, text=e.text)),
                           params=_GREEDY, choices=tuple(sorted(o)))
            for e, o in zip(generated, options)
        ]
        responses = ctx.generate(requests, stage="promptmix: relabelling")
        result, changes, unusable = [], [], 0
        for example, request, response in zip(generated, requests, responses, strict=True):
            label = chosen(response, request.choices)
            unusable += label is None
            if label is None or label == example.label:
                result.append(example)
                continue
            provenance = Provenance(origin="relabelled", method=self.name, round=0, parent_ids=[example.id],
                                    teacher=ctx.teacher_identity, prompt=prompts.RELABEL.ref, sample_index=0, raw_output=response.text)
            changed = Example.create(example.text, label, provenance=provenance)
            result.append(changed)
            changes.append({"id": changed.id, "from": example.label, "to": label, "choices": list(request.choices),
                            "generated": example_rows([example])[0]})
        ctx.save_json("relabel.json", {"relabelled": len(generated), "changed": len(changes), "unusable_answers": unusable,
                                       "unusable_rate": round(unusable / len(generated), 4) if generated else 0.0,
                                       "changes": changes})
        return result

    def _mix_job(self, label, group, seed, descriptions, rng: random.Random, params, index: int, ctx: Context) -> _MixJob:
        """One prompt; `index`, its sample index, is unique per prompt, which ties the kept texts back to it."""
        alpha = sample_alpha(rng)
        other = rng.choice([c for c in group if c != label])
        shown = {c: rng.sample(members, min(self.examples_per_class, len(members))) for c, members in _by_label(seed, group).items()}
        major = round(alpha * 100)
        messages = prompts.MIX.render(
            classes=[{"name": c, "description": descriptions[c], "examples": [e.text for e in shown[c]]} for c in group],
            unit=ctx.task.unit, count=self.per_prompt, major=major, minor=100 - major, label=label, other=other,
        )
        request = TeacherRequest(messages=tuple(messages), params=params, sample_index=index, target=RequestTarget(label=label))
        return _MixJob(label, [e for c in group for e in shown[c]], rng.random(), request)

    def _read(self, response: TeacherResponse) -> list[dict] | str:
        """Every text of one answer, without the "(85% balance, 15% card)" notes some teachers append."""
        # The prompt ends with "Example 1:", so the first text comes unmarked; the marker makes it a list item.
        items = [_MIX_NOTE.sub("", item).strip() for item in parse_items("Example 1: " + response.text, max_items=self.per_prompt)]
        texts = list(dict.fromkeys(item for item in items if item))
        return [{"text": text} for text in texts] or "unparseable"

    def _first_seeds(self, seed: list[Example], labels: list[str]) -> dict[str, list[Example]]:
        return {label: members[: self.examples_per_class] for label, members in _by_label(seed, labels).items()}

    def _blocks(self, labels: list[str], seed: list[Example], descriptions: dict[str, str]) -> list[dict]:
        by_label = self._first_seeds(seed, labels)
        return [{"name": c, "description": descriptions[c], "examples": [e.text for e in by_label[c]]} for c in labels]

    def _written_descriptions(self, labels: list[str], seed: list[Example], ctx: Context) -> dict[str, str]:
        by_label = self._first_seeds(seed, labels)
        requests = [
            TeacherRequest(messages=tuple(prompts.DESCRIBE.render(label=label, unit=ctx.task.unit,
                                                                  examples=[e.text for e in by_label[label]])), params=_GREEDY)
            for label in labels
        ]
        responses = ctx.generate(requests, stage="promptmix: describing classes") if requests else []
        written = {}
        for label, response in zip(labels, responses, strict=True):
            items = parse_items(response.text, max_items=1) if response.finish_reason not in NO_OUTPUT else []
            written[label] = items[0].rstrip(".") if items else label.replace("_", " ")
        return written


def sample_alpha(rng: random.Random) -> float:
    """The mixing weight of the main class: 0.5 + 0.5·Beta(5, 2), peaked near 0.9, rounded to 0.05."""
    return round((0.5 + 0.5 * rng.betavariate(5, 2)) * 20) / 20


def groups(labels: list[str], size: int, rng: random.Random) -> list[list[str]]:
    """The labels shuffled into groups of `size`; a single leftover joins the last group (it needs a partner)."""
    shuffled = rng.sample(labels, len(labels))
    chunks = [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        leftover = chunks.pop()
        chunks[-1] += leftover
    return chunks


def _by_label(seed: list[Example], labels: list[str]) -> dict[str, list[Example]]:
    return {label: [e for e in seed if e.label == label] for label in labels}


def _instruction(request: TeacherRequest) -> str:
    """The line of a mix prompt that asks for the texts (the rest quotes seeds and descriptions)."""
    return next(line for line in request.messages[-1].content.splitlines() if line.startswith("Generate"))


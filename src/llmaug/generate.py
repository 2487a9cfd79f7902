"""One-pass generation shared by `llmaug generate` and the paraphrase / ZeroGen baselines, and the candidate
handling every generating method shares (teacher output → candidate with provenance → shared filters)."""

from __future__ import annotations

from llmaug.data.example import Example, Provenance, label_set
from llmaug.errors import UserError
from llmaug.filters.parsing import parse_items, parse_pair
from llmaug.filters.quality import QualityFilter, Rejected, rejection
from llmaug.methods.base import Context, TaskInfo
from llmaug.prompts import baselines as prompts
from llmaug.prompts.base import PromptTemplate
from llmaug.teachers import GenerationParams, Teacher, TeacherRequest
from llmaug.teachers.base import RequestTarget

NO_OUTPUT = ("budget", "error")  # finish reasons of responses that carry no teacher output


def paraphrase_requests(rows: list[Example], n: int, task: TaskInfo, params: GenerationParams) -> list[tuple[Example, int, TeacherRequest]]:
    jobs = []
    for row in rows:
        messages = prompts.PARAPHRASE.render(task=task.description, unit=task.unit, text=row.text, text_pair=row.text_pair)
        target = RequestTarget(label=row.label, like=row.text, like_pair=row.text_pair)
        jobs += [(row, i, TeacherRequest(messages=tuple(messages), params=params, sample_index=i, target=target))
                 for i in range(n)]
    return jobs


def zerogen_requests(labels: list[str], n: int, task: TaskInfo, params: GenerationParams,
                     template: PromptTemplate = prompts.ZEROGEN) -> list[tuple[str, int, TeacherRequest]]:
    jobs = []
    for label in labels:
        messages = template.render(task=task.description, unit=task.unit, label=label,
                                   description=task.label_descriptions.get(label))
        target = RequestTarget(label=label)
        jobs += [(label, i, TeacherRequest(messages=tuple(messages), params=params, sample_index=i, target=target))
                 for i in range(n)]
    return jobs


def to_candidate(text: str, label: str, parent: Example | None, method: str, round_: int, teacher: str,
                 prompt_ref: str, sample_index: int, raw: str, finish_reason: str = "stop") -> Example | Rejected:
    """A synthetic example from a teacher output, or the rejection saying why there is none."""
    provenance = Provenance(origin="synthetic", method=method, round=round_, parent_ids=[parent.id] if parent else [],
                            teacher=teacher, prompt=prompt_ref, sample_index=sample_index, raw_output=raw)
    if finish_reason in NO_OUTPUT:
        return rejection(Example.create("", label, provenance=provenance), f"no output ({finish_reason})")
    items = parse_items(text, max_items=1)
    if not items:
        return rejection(Example.create("", label, provenance=provenance), "unparseable")
    pair_first = parent.text if parent is not None and parent.text_pair is not None else None
    if pair_first is not None:
        return Example.create(pair_first, label, text_pair=items[0], provenance=provenance)
    return Example.create(items[0], label, provenance=provenance)


def to_pair_candidate(text: str, label: str, method: str, round_: int, teacher: str, prompt_ref: str,
                      sample_index: int, raw: str, finish_reason: str = "stop") -> Example | Rejected:
    """A sentence pair the teacher wrote whole ("First text: ..." / "Second text: ..."), or why there is none."""
    provenance = Provenance(origin="synthetic", method=method, round=round_, teacher=teacher, prompt=prompt_ref,
                            sample_index=sample_index, raw_output=raw)
    if finish_reason in NO_OUTPUT:
        return rejection(Example.create("", label, provenance=provenance), f"no output ({finish_reason})")
    pair = parse_pair(text)
    if pair is None:
        return rejection(Example.create("", label, provenance=provenance), "unparseable pair")
    return Example.create(pair[0], label, text_pair=pair[1], provenance=provenance)


def filter_candidates(
    made: list[Example | Rejected], existing: list[Example], instructions: dict[str, str], ctx: Context
) -> tuple[list[Example], list[Rejected]]:
    """The shared filters (`ctx.filter`) over the parsed candidates; unparsed outputs stay rejections."""
    kept, dropped = ctx.filter([e for e in made if isinstance(e, Example)], existing, instructions)
    return kept, [r for r in made if isinstance(r, Rejected)] + dropped


def instructions_only(prompt: str, *quoted: str | None) -> str:
    """A prompt less the texts it quotes: what the filter's echo check compares outputs with."""
    for text in quoted:
        if text:
            prompt = prompt.replace(text, " ")
    return prompt


def require_two_labels(synthetic: list[Example], labels: list[str], step: str) -> None:
    """A student trained on synthetic rows alone needs at least two labels among them."""
    present = {e.label for e in synthetic}
    if len(present) < 2:
        missing = ", ".join(repr(label) for label in labels if label not in present)
        raise UserError(f"{step} gave no usable examples for {missing}; use a stronger teacher or ask for more "
                        "examples (the run's rejected.jsonl says why outputs were dropped)")


def generate_examples(
    teacher: Teacher, seed_rows: list[Example], *, per_label: int | None = None, per_row: int | None = None,
    seed: int = 0, task: TaskInfo | None = None, method: str | None = None, round_: int = 1,
    quality: QualityFilter | None = None, temperature: float = 0.9, max_tokens: int = 64,
) -> tuple[list[Example], list[Rejected]]:
    """`per_row` paraphrases of every seed row, or `per_label` label-only generations; filtered."""
    task = task or TaskInfo(labels=label_set(seed_rows))
    params = GenerationParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
    if per_row is not None:
        jobs = [(row, row.label, i, r) for row, i, r in paraphrase_requests(seed_rows, per_row, task, params)]
        template, name = prompts.PARAPHRASE, method or "paraphrase"
    else:
        jobs = [(None, label, i, r) for label, i, r in zerogen_requests(task.labels or label_set(seed_rows), per_label, task, params)]
        template, name = prompts.ZEROGEN, method or "zerogen"
    responses = teacher.generate([job[3] for job in jobs])
    candidates: list[Example] = []
    rejected: list[Rejected] = []
    for (parent, label, index, _), response in zip(jobs, responses, strict=True):
        made = to_candidate(response.text, label, parent, name, round_, teacher.identity, template.ref, index, response.text)
        (rejected if isinstance(made, Rejected) else candidates).append(made)
    accepted, dropped = (quality or QualityFilter()).apply(candidates, seed_rows, task.labels or None)
    return accepted, rejected + dropped

"""One-pass generation shared by `llmaug generate` and the paraphrase / ZeroGen baselines."""

from __future__ import annotations

from llmaug.data.example import Example, Provenance, label_set
from llmaug.filters.parsing import parse_items
from llmaug.filters.quality import QualityFilter, Rejected, rejection
from llmaug.methods.base import TaskInfo
from llmaug.prompts import baselines as prompts
from llmaug.teachers import GenerationParams, Teacher, TeacherRequest
from llmaug.teachers.base import RequestTarget


def paraphrase_requests(rows: list[Example], n: int, task: TaskInfo, params: GenerationParams) -> list[tuple[Example, int, TeacherRequest]]:
    jobs = []
    for row in rows:
        messages = prompts.PARAPHRASE.render(task=task.description, unit=task.unit, text=row.text, text_pair=row.text_pair)
        target = RequestTarget(label=row.label, like=row.text, like_pair=row.text_pair)
        jobs += [(row, i, TeacherRequest(messages=tuple(messages), params=params, sample_index=i, target=target))
                 for i in range(n)]
    return jobs


def zerogen_requests(labels: list[str], n: int, task: TaskInfo, params: GenerationParams) -> list[tuple[str, int, TeacherRequest]]:
    jobs = []
    for label in labels:
        messages = prompts.ZEROGEN.render(task=task.description, unit=task.unit, label=label,
                                          description=task.label_descriptions.get(label))
        target = RequestTarget(label=label)
        jobs += [(label, i, TeacherRequest(messages=tuple(messages), params=params, sample_index=i, target=target))
                 for i in range(n)]
    return jobs


def to_candidate(text: str, label: str, parent: Example | None, method: str, round_: int, teacher: str,
                 prompt_ref: str, sample_index: int, raw: str) -> Example | str:
    """A synthetic example from a teacher output, or the reason there is none."""
    provenance = Provenance(origin="synthetic", method=method, round=round_, parent_ids=[parent.id] if parent else [],
                            teacher=teacher, prompt=prompt_ref, sample_index=sample_index, raw_output=raw)
    items = parse_items(text, max_items=1)
    if not items:
        return rejection(Example.create("", label, provenance=provenance), "unparseable")
    pair_first = parent.text if parent is not None and parent.text_pair is not None else None
    if pair_first is not None:
        return Example.create(pair_first, label, text_pair=items[0], provenance=provenance)
    return Example.create(items[0], label, provenance=provenance)


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

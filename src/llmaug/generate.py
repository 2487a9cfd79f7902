"""One-pass generation for `llmaug generate`: the paraphrase or ZeroGen baseline's requests, sent once, turned into
examples with provenance and filtered, with no student in the loop."""

from __future__ import annotations

from llmaug.candidates import candidates
from llmaug.data.example import Example, label_set
from llmaug.filters.quality import QualityFilter, Rejected
from llmaug.methods.base import TaskInfo
from llmaug.methods.baselines import paraphrase_asks, zerogen_asks
from llmaug.teachers import GenerationParams, Teacher


def generate_examples(
    teacher: Teacher, seed_rows: list[Example], *, per_label: int | None = None, per_row: int | None = None,
    seed: int = 0, task: TaskInfo | None = None, quality: QualityFilter | None = None,
    temperature: float = 0.9, max_tokens: int = 64,
) -> tuple[list[Example], list[Rejected]]:
    """`per_row` paraphrases of every seed row, or `per_label` label-only generations; filtered."""
    task = task or TaskInfo(labels=label_set(seed_rows))
    labels = task.labels or label_set(seed_rows)
    params = GenerationParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
    if per_row is not None:
        asks, method = paraphrase_asks(seed_rows, [per_row] * len(seed_rows), task, params), "paraphrase"
    else:
        asks, method = zerogen_asks(labels, [per_label] * len(labels), task, params), "zerogen"
    responses = teacher.generate([ask.request for ask in asks])
    made, unreadable, instructions = candidates(asks, responses, method=method, round=0, teacher=teacher.identity)
    quality = (quality or QualityFilter()).fit(seed_rows)
    accepted, dropped = quality.apply(made, seed_rows, labels, instructions)
    return accepted, unreadable + dropped

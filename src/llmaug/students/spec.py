"""Student spec strings: `tfidf`, `embed-lr`, `finetune`, `finetune:/path/to/hf-model-dir`, `causal-lm[:path]`.
The kinds are the registry's (`llmaug.registry.STUDENTS`); each is imported on first use, so `tfidf` never
loads torch."""

from __future__ import annotations

from llmaug import registry
from llmaug.errors import StudentError
from llmaug.students.base import Student


def student_class(kind: str) -> type[Student]:
    if kind not in registry.STUDENTS:
        raise StudentError(f"unknown student {kind!r}; choose from {', '.join(registry.STUDENTS)}", "--student")
    try:
        return registry.STUDENTS[kind].load()
    except ImportError as err:  # a kind whose module or its dependencies are not installed
        raise StudentError(f"student {kind!r} is not available in this installation ({err})", "--student") from None


def fold_student_options(spec: str, options: dict | None = None, fold_options: dict | None = None) -> dict:
    """The options of a run's k-fold students of kind `spec`: the kind's measured `fold_options` defaults, then
    `options` (the run student's, when the folds are of its kind), then `fold_options` (given for the folds)."""
    kind = spec.strip().partition(":")[0]
    return {**student_class(kind).fold_options, **(options or {}), **(fold_options or {})}


def make_student(spec: str = "finetune", **options) -> Student:
    """Build an untrained student from a spec; `finetune:PATH` / `causal-lm:PATH` choose the base model."""
    kind, _, model = spec.strip().partition(":")
    if model:
        options["model"] = model
    return student_class(kind)(**options)

"""Student spec strings: `tfidf`, `embed-lr`, `finetune`, `finetune:/path/to/hf-model-dir`, `causal-lm[:path]`."""

from __future__ import annotations

from llmaug.errors import StudentError
from llmaug.students.base import Student


class _Registry(dict):
    """Student classes by kind, imported on first use so that `tfidf` never loads torch."""

    _modules = {
        "tfidf": ("llmaug.students.tfidf", "TfidfStudent"),
        "embed-lr": ("llmaug.students.embed_lr", "EmbedLRStudent"),
        "finetune": ("llmaug.students.finetune", "FinetuneStudent"),
        "causal-lm": ("llmaug.students.causal_lm", "CausalLMStudent"),
    }

    def __missing__(self, kind: str) -> type[Student]:
        if kind not in self._modules:
            raise KeyError(kind)
        import importlib

        module, name = self._modules[kind]
        self[kind] = getattr(importlib.import_module(module), name)
        return self[kind]

    def kinds(self) -> list[str]:
        return list(self._modules)


STUDENT_KINDS = _Registry()


def make_student(spec: str = "finetune", **options) -> Student:
    """Build an untrained student from a spec; `finetune:PATH` / `causal-lm:PATH` choose the base model."""
    kind, _, model = spec.strip().partition(":")
    if kind not in STUDENT_KINDS.kinds():
        raise StudentError(f"unknown student {spec!r}; choose from {', '.join(STUDENT_KINDS.kinds())}", "--student")
    if model:
        options["model"] = model
    try:
        student_class = STUDENT_KINDS[kind]
    except ImportError as err:  # a kind whose module or its dependencies are not installed
        raise StudentError(f"student {kind!r} is not available in this installation ({err})", "--student") from None
    try:
        return student_class(**options)
    except TypeError as err:
        raise StudentError(f"bad option for student {kind!r}: {err}", "--student-option") from None

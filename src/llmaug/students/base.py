"""The student contract. A student trains from scratch on examples and predicts labels (or answers).

Generative students fit the same protocol: `predict` returns their answer text and `is_correct` decides what
counts as right (numeric compare for GSM8K), so methods never change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from llmaug.data.example import Example, label_set
from llmaug.errors import StudentError
from llmaug.options import Options as OptionsModel
from llmaug.options import validate_options

MANIFEST = "llmaug_student.json"


class Student:
    """Base class: subclasses implement `_fit`, `predict_proba`, `_save` and `_load`, and declare their settings
    as a nested `Options` model; `self.options` holds them, validated and complete, as a plain dict."""

    kind: ClassVar[str] = "student"
    # What a k-fold held-out student of this kind sets over the run's options by default (`fold_student`): a
    # cheaper fit that judges the seeds as a full one does. Chosen by measurement, per kind (README, Students).
    fold_options: ClassVar[dict[str, Any]] = {}

    class Options(OptionsModel):
        pass

    def __init__(self, **options):
        self.options = validate_options(self.Options, options, f"student {self.kind!r}").model_dump(mode="json")
        self.labels: list[str] = []

    def fit(self, examples: list[Example], seed: int = 0) -> "Student":
        """Train from scratch: whatever was learnt before is discarded."""
        if not examples:
            raise StudentError("cannot train a student on zero examples")
        self.labels = label_set(examples)
        self._fit(examples, seed)
        return self

    def predict(self, examples: list[Example]) -> list[str]:
        probabilities = self.predict_proba(examples)
        return [self.labels[i] for i in probabilities.argmax(axis=1)]

    def predict_proba(self, examples: list[Example]) -> np.ndarray:
        raise NotImplementedError

    def is_correct(self, example: Example, prediction: str) -> bool:
        return prediction == example.label

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save(directory)
        manifest = {"kind": self.kind, "labels": self.labels, "options": self.options}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Student":
        from llmaug.students.spec import student_class

        directory = Path(directory)
        manifest_path = directory / MANIFEST
        if not manifest_path.exists():
            raise StudentError(f"not a saved llmaug student (no {MANIFEST})", directory)
        try:
            manifest = json.loads(manifest_path.read_text())
            student_cls = student_class(manifest["kind"])
        except (ValueError, KeyError, StudentError) as err:
            raise StudentError(f"unreadable student manifest ({err})", manifest_path) from None
        # Where it trained is no part of the model: a student trained on a GPU loads on a machine without one.
        options = {key: value for key, value in manifest.get("options", {}).items() if key != "device"}
        student = student_cls(**options)
        student.labels = list(manifest["labels"])
        student._load(directory)
        return student

    def _fit(self, examples: list[Example], seed: int) -> None:
        raise NotImplementedError

    def _save(self, directory: Path) -> None:
        raise NotImplementedError

    def _load(self, directory: Path) -> None:
        raise NotImplementedError


def student_input(example: Example) -> str | tuple[str, str]:
    """What a classifier reads: the text, or the (text, text_pair) pair for sentence-pair tasks."""
    return (example.text, example.text_pair) if example.text_pair is not None else example.text

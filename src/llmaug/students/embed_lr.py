"""Frozen sentence embeddings (all-MiniLM-L6-v2 by default) + logistic regression.

Only the logistic regression is trained, so a fit costs one encoding pass. Pairs are represented the
InferSent / Sentence-BERT way: [u, v, |u - v|, u * v]. C = 100: the embeddings are unit vectors, so their
components are small and C = 1 over-regularises; on TREC-6 at 1% held-out accuracy rose to a plateau at
C = 10..1000.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from sklearn.linear_model import LogisticRegression

from pydantic import Field

from llmaug.data.example import Example
from llmaug.device import DEVICE, check_device
from llmaug.embedding import shared_encoder
from llmaug.errors import StudentError
from llmaug.students.base import Student
from llmaug.students.finetune import torch_threads
from llmaug.students.tfidf import class_indices, fit_logistic, logistic_arrays, logistic_from_arrays

ARRAYS_FILE = "logistic.safetensors"


def pair_features(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return np.concatenate([first, second, np.abs(first - second), first * second], axis=1)


class EmbedLRStudent(Student):
    kind = "embed-lr"

    class Options(Student.Options):
        model: str | None = Field(None, description="sentence-encoder folder (default all-MiniLM-L6-v2)")
        C: float = Field(100.0, gt=0, description="inverse regularisation strength of the logistic regression")
        threads: int | None = Field(None, ge=1, description="torch CPU threads for encoding")
        device: DEVICE = Field("auto", description="torch device of the encoder: auto (a CUDA GPU if there is one), cpu, cuda or cuda:N")

    def __init__(self, **options):
        super().__init__(**options)
        model = self.options["model"]
        if model is not None and not Path(model).is_dir():
            raise StudentError(f"encoder model folder not found: {model}", "--student")
        check_device(self.options["device"], "student_options.device")
        self.classifier: LogisticRegression | None = None

    def features(self, examples: list[Example]) -> np.ndarray:
        """Embeddings of single texts, or pair features when every example is a pair."""
        pairs = [e.text_pair for e in examples if e.text_pair is not None]
        if pairs and len(pairs) != len(examples):
            raise StudentError("examples mix single texts and sentence pairs; embed-lr needs one or the other")
        encoder = shared_encoder(self.options["model"], self.options["device"])
        with torch_threads(self.options["threads"]):
            vectors = encoder.encode([e.text for e in examples] + pairs)
        if not pairs:
            return vectors
        return pair_features(vectors[: len(examples)], vectors[len(examples) :])

    def _fit(self, examples: list[Example], seed: int) -> None:
        targets = class_indices(examples, self.labels)
        self.classifier = fit_logistic(self.features(examples), targets, self.options["C"], seed)

    def predict_proba(self, examples: list[Example]) -> np.ndarray:
        if self.classifier is None:
            raise StudentError("the embed-lr student is not trained; call fit or load first")
        if not examples:
            return np.zeros((0, len(self.labels)))
        features = self.features(examples)
        if features.shape[1] != self.classifier.n_features_in_:
            kind = "sentence pairs" if features.shape[1] > self.classifier.n_features_in_ else "single texts"
            raise StudentError(f"this embed-lr student was not trained on {kind}")
        return self.classifier.predict_proba(features)

    def _save(self, directory: Path) -> None:
        if self.classifier is None:
            raise StudentError("cannot save an untrained embed-lr student")
        save_file(logistic_arrays(self.classifier), str(directory / ARRAYS_FILE))

    def _load(self, directory: Path) -> None:
        try:
            arrays = load_file(str(directory / ARRAYS_FILE))
        except (OSError, SafetensorError) as err:
            raise StudentError(f"unreadable embed-lr student ({err})", directory) from None
        self.classifier = logistic_from_arrays(arrays, len(self.labels), self.options["C"])

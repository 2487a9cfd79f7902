"""TF-IDF + logistic regression: the fast baseline student (no torch).

Saved as JSON (vectorizer settings and vocabulary) plus safetensors arrays (idf and the classifier's weights);
loading rebuilds the scikit-learn objects from those, so no pickle is ever written or read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from pydantic import Field

from llmaug.data.example import Example
from llmaug.errors import StudentError
from llmaug.students.base import Student

# Joins a pair's two sentences. The default token pattern keeps it whole, so pair tasks get a token (and
# bigrams) marking where the second sentence starts, which no natural text produces.
PAIR_SEPARATOR = " __pair_sep__ "
VOCABULARY_FILE = "vocabulary.json"
ARRAYS_FILE = "arrays.safetensors"
LOGISTIC_MAX_ITER = 2000


def class_indices(examples: list[Example], labels: list[str]) -> np.ndarray:
    """Each example's label as its index in `labels`; classifiers need labels on every row and two classes."""
    unlabelled = [e.id for e in examples if e.label is None]
    if unlabelled:
        raise StudentError(f"{len(unlabelled)} training example(s) have no label, e.g. {unlabelled[0]!r}")
    if len(labels) < 2:
        raise StudentError(f"a classifier needs at least two labels to learn from, got {labels}")
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[e.label] for e in examples], dtype=np.int64)


def fit_logistic(features, targets: np.ndarray, C: float, seed: int) -> LogisticRegression:
    """Multinomial logistic regression on integer targets 0..k-1, so columns follow the student's labels.

    Newton-CG rather than the default L-BFGS: the same L2-regularised objective, solved in a handful of Newton
    steps; with scikit-learn 1.9 / SciPy 1.17 here, L-BFGS took 25-60x longer on these problems (8.2 s vs 0.14 s
    for 300 TREC-6 rows with bigrams; 0.32 s vs 0.012 s on 384-dim embeddings), at the same test accuracy."""
    model = LogisticRegression(C=C, max_iter=LOGISTIC_MAX_ITER, random_state=seed, solver="newton-cg")
    return model.fit(features, targets)


def logistic_arrays(model: LogisticRegression) -> dict[str, np.ndarray]:
    return {"coef": np.ascontiguousarray(model.coef_), "intercept": np.ascontiguousarray(model.intercept_)}


def logistic_from_arrays(arrays: dict[str, np.ndarray], n_labels: int, C: float) -> LogisticRegression:
    """A fitted LogisticRegression rebuilt from its weights (what `logistic_arrays` saved)."""
    model = LogisticRegression(C=C, max_iter=LOGISTIC_MAX_ITER)
    model.coef_ = arrays["coef"]
    model.intercept_ = arrays["intercept"]
    model.classes_ = np.arange(n_labels)
    model.n_features_in_ = arrays["coef"].shape[1]
    return model


def pair_text(example: Example) -> str:
    return example.text if example.text_pair is None else example.text + PAIR_SEPARATOR + example.text_pair


class TfidfStudent(Student):
    kind = "tfidf"

    class Options(Student.Options):
        max_features: int = Field(20000, ge=1, description="vocabulary size")
        ngram_range: tuple[int, int] = Field((1, 2), description="smallest and largest n-gram")
        C: float = Field(10.0, gt=0, description="inverse regularisation strength of the logistic regression")

    def __init__(self, **options):
        super().__init__(**options)
        self.vectorizer: TfidfVectorizer | None = None
        self.classifier: LogisticRegression | None = None

    def _vectorizer_settings(self) -> dict:
        return {"ngram_range": tuple(self.options["ngram_range"]), "max_features": self.options["max_features"]}

    def _fit(self, examples: list[Example], seed: int) -> None:
        targets = class_indices(examples, self.labels)
        self.vectorizer = TfidfVectorizer(**self._vectorizer_settings())
        features = self.vectorizer.fit_transform([pair_text(e) for e in examples])
        self.classifier = fit_logistic(features, targets, self.options["C"], seed)

    def predict_proba(self, examples: list[Example]) -> np.ndarray:
        if self.vectorizer is None or self.classifier is None:
            raise StudentError("the tfidf student is not trained; call fit or load first")
        if not examples:
            return np.zeros((0, len(self.labels)))
        return self.classifier.predict_proba(self.vectorizer.transform([pair_text(e) for e in examples]))

    def _save(self, directory: Path) -> None:
        if self.vectorizer is None or self.classifier is None:
            raise StudentError("cannot save an untrained tfidf student")
        vocabulary = {term: int(index) for term, index in self.vectorizer.vocabulary_.items()}
        (directory / VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False, sort_keys=True))
        save_file({"idf": self.vectorizer.idf_, **logistic_arrays(self.classifier)}, str(directory / ARRAYS_FILE))

    def _load(self, directory: Path) -> None:
        try:
            vocabulary = json.loads((directory / VOCABULARY_FILE).read_text())
            arrays = load_file(str(directory / ARRAYS_FILE))
        except (OSError, ValueError, SafetensorError) as err:
            raise StudentError(f"unreadable tfidf student ({err})", directory) from None
        # A fixed vocabulary makes the vectorizer usable without fitting; idf_ then completes it.
        self.vectorizer = TfidfVectorizer(vocabulary=vocabulary, **self._vectorizer_settings())
        self.vectorizer.idf_ = arrays["idf"]
        self.classifier = logistic_from_arrays(arrays, len(self.labels), self.options["C"])

"""Tiny datasets and checks shared by the student tests."""

from pathlib import Path

import numpy as np

from llmaug.data.example import Example
from llmaug.students.base import Student

# Labels deliberately listed out of alphabetical order: students must order probability columns by `labels`.
TOY_WORDS = {
    "weather": ["rain", "snow", "sunny", "storm"],
    "animal": ["cat", "dog", "horse", "tiger"],
    "food": ["pizza", "bread", "cheese", "pasta"],
}

# Everything a saved student may contain: JSON, safetensors and tokenizer text; no pickle-capable format.
SAFE_SUFFIXES = {".json", ".safetensors", ".txt"}


def toy_examples() -> list[Example]:
    """Trivially separable: every text names one word that belongs to exactly one label."""
    return [Example.create(f"the {word} {word} is here", label) for label, words in TOY_WORDS.items() for word in words]


def toy_pairs() -> list[Example]:
    """The label depends only on the second sentence, so it is learnable only if the pair is read."""
    premise = "A report was published this morning about the town."
    hypotheses = {
        "entailment": ["The report is true.", "The town is real.", "It was published.", "Yes it happened."],
        "not_entailment": ["Nothing was ever written.", "No town exists.", "It never happened.", "Nobody published."],
    }
    return [Example.create(premise, label, text_pair=text) for label, texts in hypotheses.items() for text in texts]


def train_accuracy(student: Student, examples: list[Example]) -> float:
    return float(np.mean([p == e.label for p, e in zip(student.predict(examples), examples)]))


def saved_suffixes(directory: Path) -> set[str]:
    return {path.suffix for path in Path(directory).rglob("*") if path.is_file()}


def assert_probabilities_follow_labels(student: Student, examples: list[Example]) -> None:
    """Rows are distributions over `student.labels`, and each gold label's column wins on a learnt set."""
    probabilities = student.predict_proba(examples)
    assert probabilities.shape == (len(examples), len(student.labels))
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities >= 0).all()
    gold_columns = [student.labels.index(e.label) for e in examples]
    assert list(probabilities.argmax(axis=1)) == gold_columns

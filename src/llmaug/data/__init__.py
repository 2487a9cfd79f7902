"""Examples, loaders and writers, low-data sampling and the bundled datasets."""

from llmaug.data.bundled import BUNDLED, load_bundled, resolve_dataset_folder
from llmaug.data.example import Example, Provenance, label_set
from llmaug.data.io import (
    Columns,
    example_rows,
    load_examples,
    save_examples,
)
from llmaug.data.sampling import sample_fraction, sample_per_class
from llmaug.data.validate import check_eval_labels, check_trainable

__all__ = [
    "BUNDLED", "Columns", "Example", "Provenance", "check_eval_labels", "check_trainable", "example_rows", "label_set",
    "load_bundled", "load_examples", "resolve_dataset_folder", "sample_fraction", "sample_per_class", "save_examples",
]

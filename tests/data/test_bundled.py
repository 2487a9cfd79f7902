"""The datasets shipped inside the package."""

import json

import pytest

from llmaug.data import BUNDLED, label_set, load_bundled, resolve_dataset_folder
from llmaug.errors import DataError

TREC_LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


@pytest.mark.parametrize(
    "name, split, size, labels",
    [
        ("trec6", "train", 5452, TREC_LABELS),
        ("trec6", "test", 500, TREC_LABELS),
        ("sst2", "train", 6920, ["negative", "positive"]),
        ("sst2", "test", 1821, ["negative", "positive"]),
    ],
)
def test_bundled_split_sizes_and_labels(name, split, size, labels):
    examples = load_bundled(name, split)
    assert len(examples) == size
    assert label_set(examples) == labels
    assert all(e.text and e.is_seed for e in examples)
    assert len({e.id for e in examples}) == size


def test_default_split_is_train():
    assert len(load_bundled("trec6")) == 5452


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_readme_and_registry_entry(name):
    entry = BUNDLED[name]
    readme = entry.folder / "README.md"
    assert readme.is_file() and "Source" in readme.read_text(encoding="utf-8")
    assert entry.split("train").is_file() and entry.split("test").is_file()
    assert entry.source and entry.license and entry.task


def test_a_folder_with_train_jsonl_works_as_a_dataset(tmp_path):
    rows = [{"text": "hello", "label": "greet"}, {"text": "bye", "label": "leave"}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert resolve_dataset_folder(str(tmp_path)) == tmp_path
    assert [e.label for e in load_bundled(str(tmp_path))] == ["greet", "leave"]
    assert [e.label for e in load_bundled(tmp_path)] == ["greet", "leave"]


def test_folder_without_the_split(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="has no 'test' split"):
        load_bundled(str(tmp_path), "test")


@pytest.mark.parametrize("name", ["trec-6", "imdb", "", "/no/such/folder"])
def test_unknown_name(name):
    with pytest.raises(DataError) as caught:
        load_bundled(name)
    message = str(caught.value)
    assert message.startswith("--dataset: unknown dataset") and "trec6, sst2" in message


def test_folder_without_train_jsonl_is_unknown(tmp_path):
    with pytest.raises(DataError, match="nor a folder with train.jsonl"):
        resolve_dataset_folder(str(tmp_path))

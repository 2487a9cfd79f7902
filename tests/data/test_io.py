"""Loading and saving datasets: round trips, column mapping, one-line errors, atomic writes."""

import json
import math
import os
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmaug.atomic import atomic_path, write_json_atomic, write_text_atomic
from llmaug.data import Columns, Example, load_examples, save_examples
from llmaug.data import io as data_io
from llmaug.data.io import MAX_FIELD_CHARS
from llmaug.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # ../shared beside the repo
FILE_TARGETS = ["set.jsonl", "set.csv", "set.tsv", "set.parquet", "set_folder"]


def load_error(path, **kwargs) -> str:
    """The message of the DataError that loading `path` raises, checked to be one line naming the file."""
    with pytest.raises(DataError) as caught:
        load_examples(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def leftovers(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


# ------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", FILE_TARGETS)
def test_labelled_pairs_and_provenance_round_trip(tmp_path, labelled_examples, name):
    target = save_examples(labelled_examples, tmp_path / name)
    assert load_examples(target) == labelled_examples


@pytest.mark.parametrize("name", FILE_TARGETS)
def test_qa_rows_round_trip_without_labels(tmp_path, qa_examples, name):
    target = save_examples(qa_examples, tmp_path / name)
    loaded = load_examples(target)
    assert loaded == qa_examples
    assert all(example.label is None and example.answer for example in loaded)


def test_save_overwrites_the_previous_file(tmp_path, labelled_examples):
    target = tmp_path / "set.jsonl"
    save_examples(labelled_examples, target)
    save_examples(labelled_examples[:1], target)
    assert load_examples(target) == labelled_examples[:1]
    assert leftovers(tmp_path) == []


def test_save_folder_replaces_previous_folder(tmp_path, labelled_examples):
    save_examples(labelled_examples, tmp_path / "out")
    save_examples(labelled_examples[1:], tmp_path / "out")
    assert load_examples(tmp_path / "out") == labelled_examples[1:]
    assert leftovers(tmp_path) == []


def test_in_memory_dataset_maps_class_label_ints_to_names():
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    dataset = Dataset.from_dict({"sentence": ["awful film", "lovely film"], "label": [0, 1]}, features=features)
    loaded = load_examples(dataset)
    assert [(e.text, e.label) for e in loaded] == [("awful film", "negative"), ("lovely film", "positive")]


def test_class_label_minus_one_means_no_label():
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=["a", "b"])})
    dataset = Dataset.from_dict({"text": ["x", "y"], "label": [0, -1]}, features=features)
    assert [e.label for e in load_examples(dataset, require_labels=False)] == ["a", None]
    with pytest.raises(DataError, match="'label' is missing"):
        load_examples(dataset)


def test_dataset_dict_uses_its_train_split():
    from datasets import Dataset, DatasetDict

    splits = DatasetDict(
        test=Dataset.from_dict({"text": ["t"], "label": ["b"]}),
        train=Dataset.from_dict({"text": ["x", "y"], "label": ["a", "b"]}),
    )
    assert [e.text for e in load_examples(splits)] == ["x", "y"]


def test_dataset_dict_folder_loads(tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict(train=Dataset.from_dict({"text": ["x"], "label": ["a"]})).save_to_disk(str(tmp_path / "dd"))
    assert [e.label for e in load_examples(tmp_path / "dd")] == ["a"]


def test_list_of_dicts_loads_and_other_objects_do_not():
    assert load_examples([{"text": "hi", "label": "greet"}])[0].label == "greet"
    with pytest.raises(DataError, match="expected a path, a datasets.Dataset or a list of dicts"):
        load_examples(42)
    with pytest.raises(DataError, match="row is int"):
        load_examples([1, 2])


def test_columns_option_maps_custom_names(tmp_path):
    path = tmp_path / "custom.csv"
    path.write_text("utterance,intent_name,second,key\nhello there,greet,general kenobi,r1\n", encoding="utf-8")
    columns = Columns(text="utterance", label="intent_name", pair="second", id="key")
    [example] = load_examples(path, columns=columns)
    assert (example.id, example.text, example.label, example.text_pair) == ("r1", "hello there", "greet", "general kenobi")


def test_usual_column_names_are_guessed(tmp_path):
    path = tmp_path / "rte.jsonl"
    write_jsonl(path, [{"premise": "A dog runs.", "hypothesis": "An animal moves.", "intent": "entailment"}])
    [example] = load_examples(path)
    assert (example.text, example.text_pair, example.label) == ("A dog runs.", "An animal moves.", "entailment")


def test_gsm8k_style_rows_load_with_answer_and_no_label(tmp_path):
    path = tmp_path / "gsm.jsonl"
    write_jsonl(path, [{"question": "How many?", "answer": "Two.\n#### 2"}])
    [example] = load_examples(path)
    assert (example.text, example.answer, example.label) == ("How many?", "Two.\n#### 2", None)


@pytest.mark.skipif(not (SHARED_DATA / "gsm8k" / "train.jsonl").exists(), reason="shared data not mounted")
def test_real_gsm8k_train_loads_despite_line_separator_inside_a_string():
    # one question holds U+2028; splitting records on it (str.splitlines) broke line 2382
    examples = load_examples(SHARED_DATA / "gsm8k" / "train.jsonl")
    assert len(examples) == 7473
    assert any("\u2028" in e.text for e in examples)


def test_line_separators_inside_text_survive_jsonl(tmp_path):
    examples = [Example.create("a\u2028b\u0085c\x0cd", "x"), Example.create("e", "y")]
    save_examples(examples, tmp_path / "sep.jsonl")
    assert load_examples(tmp_path / "sep.jsonl") == examples


def test_json_array_file_and_jsonl_named_json(tmp_path):
    array = tmp_path / "array.json"
    array.write_text('[{"text": "a", "label": "x"},\n {"text": "b", "label": "y"}]', encoding="utf-8")
    assert [e.text for e in load_examples(array)] == ["a", "b"]
    lines = tmp_path / "lines.json"
    write_jsonl(lines, [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    assert [e.text for e in load_examples(lines)] == ["a", "b"]


def test_utf8_bom_is_accepted(tmp_path):
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + json.dumps({"text": "hi", "label": "x"}).encode() + b"\n")
    csv_file = tmp_path / "bom.csv"
    csv_file.write_bytes(b"\xef\xbb\xbftext,label\nhi,x\n")
    assert load_examples(jsonl)[0].text == load_examples(csv_file)[0].text == "hi"


def test_windows_line_endings_and_quoted_newlines_in_csv(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b'text,label\r\n"two\r\nlines",x\r\nplain,y\r\n')
    assert [(e.text, e.label) for e in load_examples(path)] == [("two\r\nlines", "x"), ("plain", "y")]


def test_numeric_labels_become_strings(tmp_path):
    path = tmp_path / "num.csv"
    path.write_text("text,label\ngood,1\nbad,0\n", encoding="utf-8")
    assert [e.label for e in load_examples(path)] == ["1", "0"]
    jsonl = tmp_path / "num.jsonl"
    write_jsonl(jsonl, [{"text": "good", "label": 1}, {"text": "bad", "label": 0}])
    assert [e.label for e in load_examples(jsonl)] == ["1", "0"]


def test_float_labels_that_are_whole_become_integer_strings(tmp_path):
    path = tmp_path / "float.parquet"
    pq.write_table(pa.table({"text": ["good", "bad", "odd"], "label": [1.0, 0.0, 2.5]}), path)
    assert [e.label for e in load_examples(path)] == ["1", "0", "2.5"]


def test_labels_and_text_are_stripped(tmp_path):
    path = tmp_path / "ws.jsonl"
    write_jsonl(path, [{"text": "  padded \n", "label": "  LOC\t"}])
    [example] = load_examples(path)
    assert (example.text, example.label) == ("padded", "LOC")


def test_identical_rows_without_ids_get_distinct_ids(tmp_path):
    path = tmp_path / "dup.jsonl"
    write_jsonl(path, [{"text": "same", "label": "x"}] * 3)
    ids = [e.id for e in load_examples(path)]
    assert len(set(ids)) == 3


def test_unlabelled_rows_allowed_when_labels_not_required(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("text,label\nhello,\nbye,x\n", encoding="utf-8")
    assert [e.label for e in load_examples(path, require_labels=False)] == [None, "x"]


def test_ids_and_provenance_columns_are_read(tmp_path):
    path = tmp_path / "prov.jsonl"
    provenance = {"origin": "synthetic", "method": "s3", "round": 1, "parent_ids": ["a"]}
    write_jsonl(path, [{"id": "syn-1", "text": "t", "label": "x", "provenance": provenance}])
    [example] = load_examples(path)
    assert example.id == "syn-1"
    assert (example.provenance.origin, example.provenance.method, example.provenance.parent_ids) == ("synthetic", "s3", ["a"])


# ------------------------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    assert "file not found" in load_error(tmp_path / "nope.jsonl")


def test_folder_that_is_not_a_hf_dataset(tmp_path):
    (tmp_path / "plain").mkdir()
    assert "not a Hugging Face save_to_disk dataset" in load_error(tmp_path / "plain")


def test_broken_hf_folder(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "dataset_info.json").write_text("{not json", encoding="utf-8")
    assert "unreadable Hugging Face dataset folder" in load_error(folder)


@pytest.mark.parametrize("name", ["data.txt", "data.xlsx", "data"])
def test_unknown_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("text,label\na,b\n", encoding="utf-8")
    message = load_error(path)
    assert "unknown format" in message and ".jsonl" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied(tmp_path):
    path = tmp_path / "secret.jsonl"
    write_jsonl(path, [{"text": "a", "label": "b"}])
    path.chmod(0)
    try:
        assert "permission denied" in load_error(path)
    finally:
        path.chmod(0o600)


def test_permission_denied_reported_even_as_root(tmp_path, monkeypatch):
    path = tmp_path / "secret.jsonl"
    write_jsonl(path, [{"text": "a", "label": "b"}])

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert load_error(path) == f"{path}: cannot read file (permission denied)"


def test_invalid_utf8_names_line_and_character_column(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "ok", "label": "x"}\n{"text": "\xc3\xa9t\xe9", "label": "x"}\n')
    # line 2: '{"text": "' is 10 characters, then 'é' (2 bytes) and 't': the bad byte is character 13
    message = load_error(path)
    assert message.startswith(f"{path}:2:13: not valid UTF-8 (byte 0xe9)")


def test_broken_jsonl_line_names_line_and_column(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": }\n', encoding="utf-8")
    message = load_error(path)
    assert message.startswith(f"{path}:3:24: broken JSON line")


def test_non_object_json_line(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n["b", "y"]\n', encoding="utf-8")
    assert load_error(path).startswith(f"{path}:2:1: expected a JSON object per line, got a list")


def test_broken_json_array_names_line_and_column(tmp_path):
    path = tmp_path / "array.json"
    path.write_text('[\n  {"text": "a", "label": "x"},\n  {"text": "b" "label": "y"}\n]', encoding="utf-8")
    assert load_error(path).startswith(f"{path}:3:16: broken JSON")


def test_ragged_csv_row_names_its_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text('text,label\n"two\nlines",x\nthree,fields,here\n', encoding="utf-8")
    message = load_error(path)
    assert message.startswith(f"{path}:4:") and "3 fields but the header has 2" in message


def test_csv_header_with_repeated_column(tmp_path):
    path = tmp_path / "dup_header.csv"
    path.write_text("text,label,text\na,b,c\n", encoding="utf-8")
    assert "header repeats column 'text'" in load_error(path)


@pytest.mark.parametrize("name, content", [("empty.jsonl", ""), ("blank.jsonl", "\n  \n"), ("empty.csv", ""), ("header.csv", "text,label\n")])
def test_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert "no examples" in load_error(path)


def test_whitespace_only_text(tmp_path):
    path = tmp_path / "ws.jsonl"
    write_jsonl(path, [{"text": "fine", "label": "x"}, {"text": " \t\n ", "label": "x"}])
    assert load_error(path).startswith(f"{path}:2: 'text' is empty or whitespace only")


def test_missing_text_column_lists_columns_and_option(tmp_path):
    path = tmp_path / "notext.csv"
    path.write_text("body,label\nhello,x\n", encoding="utf-8")
    message = load_error(path)
    assert "no text column" in message and "'body', 'label'" in message and "--text-col" in message


def test_missing_label_column_lists_columns_and_option(tmp_path):
    path = tmp_path / "nolabel.csv"
    path.write_text("text,tag\nhello,x\n", encoding="utf-8")
    message = load_error(path)
    assert "no label column" in message and "'text', 'tag'" in message and "--label-col" in message


def test_unknown_column_given_by_option(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\nhello,x\n", encoding="utf-8")
    message = load_error(path, columns=Columns(label="intent_name"))
    assert "no label column 'intent_name'" in message and "'text', 'label'" in message and "--label-col" in message
    assert "--pair-col" in load_error(path, columns=Columns(pair="hypothesis"))


def test_missing_label_in_one_row(tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("text,label\na,x\nb,\n", encoding="utf-8")
    assert load_error(path).startswith(f"{path}:3: 'label' is empty")


def test_nan_label(tmp_path):
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": [1.0, math.nan]}), path)
    assert load_error(path).startswith(f"{path}[row 1]: label 'label' is NaN")
    jsonl = tmp_path / "nan.jsonl"
    jsonl.write_text('{"text": "a", "label": NaN}\n', encoding="utf-8")
    assert load_error(jsonl).startswith(f"{jsonl}:1: label 'label' is NaN")


def test_label_of_wrong_type(tmp_path):
    path = tmp_path / "bool.jsonl"
    write_jsonl(path, [{"text": "a", "label": True}])
    assert "'label' must be text or a number, got a boolean" in load_error(path)


def test_field_over_the_size_limit(tmp_path):
    path = tmp_path / "huge.jsonl"
    write_jsonl(path, [{"text": "x" * (MAX_FIELD_CHARS + 1), "label": "a"}])
    message = load_error(path)
    assert message.startswith(f"{path}:1: 'text' is 100,001 characters long (limit 100,000)")


def test_huge_csv_field_beyond_the_csv_module_limit(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("text,label\n" + "x" * 200_000 + ",a\n", encoding="utf-8")
    assert load_error(path).startswith(f"{path}:2: unreadable CSV")


def test_json_that_python_cannot_hold(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "\n", encoding="utf-8")
    assert "unreadable JSON" in load_error(deep)
    digits = tmp_path / "digits.jsonl"
    digits.write_text('{"text": ' + "9" * 5000 + "}\n", encoding="utf-8")
    assert "unreadable JSON" in load_error(digits)


def test_unpaired_surrogate_is_rejected(tmp_path):
    path = tmp_path / "surrogate.jsonl"
    path.write_text('{"text": "bad \\ud800 text", "label": "x"}\n', encoding="utf-8")
    assert "unpaired surrogate U+D800" in load_error(path)


def test_duplicate_given_ids(tmp_path):
    path = tmp_path / "ids.jsonl"
    write_jsonl(path, [{"id": "r1", "text": "a", "label": "x"}, {"id": "r1", "text": "b", "label": "y"}])
    message = load_error(path)
    assert message.startswith(f"{path}:2: duplicate id 'r1' (first at {path}:1)")


def test_invalid_provenance(tmp_path):
    path = tmp_path / "prov.jsonl"
    write_jsonl(path, [{"text": "a", "label": "x", "provenance": {"origin": "dreamt"}}])
    assert "invalid provenance: 'origin'" in load_error(path)
    broken = tmp_path / "prov.csv"
    broken.write_text('text,label,provenance\na,x,"{not json"\n', encoding="utf-8")
    assert "provenance is not valid JSON" in load_error(broken)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1 this is not really parquet PAR1")
    assert "unreadable Parquet file" in load_error(path)


def test_truncated_parquet(tmp_path, labelled_examples):
    path = save_examples(labelled_examples, tmp_path / "cut.parquet")
    path.write_bytes(path.read_bytes()[:-20])
    assert "unreadable Parquet file" in load_error(path)


def test_unknown_output_format(tmp_path, labelled_examples):
    with pytest.raises(DataError, match="unknown output format '.txt'"):
        save_examples(labelled_examples, tmp_path / "out.txt")


def test_cannot_write_a_folder_over_a_file(tmp_path, labelled_examples):
    (tmp_path / "taken").write_text("keep me", encoding="utf-8")
    with pytest.raises(DataError, match="not a folder"):
        save_examples(labelled_examples, tmp_path / "taken", fmt="hf")
    assert (tmp_path / "taken").read_text(encoding="utf-8") == "keep me"


# ------------------------------------------------------------------------------------------- atomic writes


def failing_after(examples, count):
    """Yields `count` examples, then fails as a bad example would while being serialised."""
    yield from examples[:count]
    raise ValueError("serialisation failed")


@pytest.mark.parametrize("name", ["set.jsonl", "set.csv", "set.parquet", "set_folder"])
def test_failure_mid_write_keeps_previous_content(tmp_path, labelled_examples, name):
    target = save_examples(labelled_examples, tmp_path / name)
    before = load_examples(target)
    with pytest.raises(ValueError, match="serialisation failed"):
        save_examples(failing_after(labelled_examples, 2), target)
    assert load_examples(target) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["set.jsonl", "set.parquet", "set_folder"])
def test_failed_rename_keeps_previous_content(tmp_path, labelled_examples, monkeypatch, name):
    target = save_examples(labelled_examples, tmp_path / name)

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(data_io.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        save_examples(labelled_examples[:1], target)
    monkeypatch.undo()
    assert load_examples(target) == labelled_examples
    assert leftovers(tmp_path) == []


def test_failed_hf_save_keeps_previous_folder(tmp_path, labelled_examples, monkeypatch):
    from datasets import Dataset

    target = save_examples(labelled_examples, tmp_path / "folder")

    def broken_save(self, path, *args, **kwargs):
        os.makedirs(path, exist_ok=True)
        (open(os.path.join(path, "half-written.arrow"), "w")).close()
        raise RuntimeError("save failed")

    monkeypatch.setattr(Dataset, "save_to_disk", broken_save)
    with pytest.raises(RuntimeError, match="save failed"):
        save_examples(labelled_examples[:1], target)
    monkeypatch.undo()
    assert load_examples(target) == labelled_examples
    assert leftovers(tmp_path) == []


def test_write_json_atomic_keeps_old_file_when_data_cannot_be_serialised(tmp_path):
    target = tmp_path / "state.json"
    write_json_atomic(target, {"round": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"round": object()})
    assert json.loads(target.read_text(encoding="utf-8")) == {"round": 1}
    assert leftovers(tmp_path) == []


def test_atomic_path_removes_temp_file_when_the_body_fails(tmp_path):
    target = tmp_path / "report.md"
    write_text_atomic(target, "old")
    with pytest.raises(KeyError):
        with atomic_path(target) as file:
            file.write("half of the new")
            raise KeyError("boom")
    assert target.read_text(encoding="utf-8") == "old"
    assert leftovers(tmp_path) == []


def test_new_files_get_normal_permissions_and_old_ones_keep_theirs(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "new.txt", "x")
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644  # as open() gives, not mkstemp's 0600
        (tmp_path / "private.txt").write_text("x", encoding="utf-8")
        (tmp_path / "private.txt").chmod(0o600)
        write_text_atomic(tmp_path / "private.txt", "y")
        assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600
    finally:
        os.umask(umask)


def test_writes_create_missing_parent_folders(tmp_path, labelled_examples):
    for name in ("a/b/set.jsonl", "c/d/folder"):
        target = save_examples(labelled_examples, tmp_path / name)
        assert load_examples(target) == labelled_examples


def test_a_symlink_loop_is_reported_as_a_loop_and_a_dangling_link_as_broken(tmp_path):
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match="symbolic link loop"):
        load_examples(loop)
    dangling = tmp_path / "gone.jsonl"
    dangling.symlink_to(tmp_path / "never-written.jsonl")
    with pytest.raises(DataError, match="broken symbolic link"):
        load_examples(dangling)


def test_labels_of_different_types_that_merge_into_one_class_are_named(tmp_path, caplog):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": "1"}\n{"text": "c", "label": 0}\n')
    with caplog.at_level("WARNING", logger="llmaug.data.io"):
        examples = load_examples(path)
    assert [e.label for e in examples] == ["1", "1", "0"]
    [record] = caplog.records
    assert "'1'" in record.getMessage() and f"number (first at {path}:1)" in record.getMessage()
    assert f"text (first at {path}:2)" in record.getMessage()

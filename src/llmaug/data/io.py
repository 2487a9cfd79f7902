"""Load and save datasets: JSONL, CSV, Parquet and Hugging Face `datasets` (object or save_to_disk folder).

Every problem with a file becomes a one-line `DataError` naming the file, line and column where they are known.
Writes are atomic: a temporary file in the same folder, fsynced, then renamed over the target.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmaug.data.example import Example, Provenance
from llmaug.errors import DataError, location

FORMATS = ("jsonl", "csv", "parquet", "hf")
TEXT_COLUMNS = ("text", "question", "sentence", "premise", "sentence1")
PAIR_COLUMNS = ("text_pair", "hypothesis", "sentence2")
LABEL_COLUMNS = ("label", "intent", "class")
MAX_FIELD_CHARS = 100_000


@dataclass(frozen=True)
class Columns:
    """Which source columns hold the fields; None means: guess from the usual names."""

    text: str | None = None
    label: str | None = None
    pair: str | None = None
    answer: str | None = None
    id: str | None = None


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists():
            return "hf"
        raise DataError("is a folder but not a Hugging Face save_to_disk dataset", path)
    suffixes = [s.lower() for s in path.suffixes]
    for fmt, exts in {"jsonl": (".jsonl", ".ndjson", ".json"), "csv": (".csv", ".tsv"), "parquet": (".parquet",)}.items():
        if suffixes and suffixes[-1] in exts:
            return fmt
    raise DataError(f"unknown format {path.suffix or '(no extension)'!r}; use one of .jsonl .csv .tsv .parquet or an HF dataset folder", path)


def load_examples(
    source: str | Path | Any,
    columns: Columns = Columns(),
    fmt: str | None = None,
    require_labels: bool = True,
) -> list[Example]:
    """Read a dataset into Examples. `source` is a path or a `datasets.Dataset`."""
    if not isinstance(source, (str, Path)):
        return _examples_from_rows(_rows_from_hf_object(source), columns, "<dataset>", require_labels)
    path = Path(source)
    if not path.exists():
        raise DataError("file not found", path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}", path)
    readers = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "hf": _read_hf_dir}
    try:
        rows = readers[fmt](path)
        return _examples_from_rows(rows, columns, str(path), require_labels)
    except PermissionError:
        raise DataError("cannot read file (permission denied)", path) from None
    except IsADirectoryError:
        raise DataError("is a folder, expected a file", path) from None


def _decode_lines(path: Path) -> Iterator[tuple[int, str]]:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(f"not valid UTF-8 (byte 0x{raw[err.start]:02x}); re-save the file as UTF-8", location(path, line, column)) from None
    for number, line in enumerate(text.splitlines(), start=1):
        yield number, line


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    if path.suffix.lower() == ".json":
        yield from _read_json_array(path)
        return
    for number, line in _decode_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"broken JSON line: {err.msg}", location(path, number, err.colno)) from None
        if not isinstance(row, dict):
            raise DataError(f"expected a JSON object per line, got {type(row).__name__}", location(path, number, 1))
        yield location(path, number), row


def _read_json_array(path: Path) -> Iterator[tuple[str, dict]]:
    text = "\n".join(line for _, line in _decode_lines(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"broken JSON: {err.msg}", location(path, err.lineno, err.colno)) from None
    if isinstance(data, dict):  # one object per line mislabelled .json, or a single row
        data = [data]
    if not isinstance(data, list):
        raise DataError("expected a JSON list of objects or JSON Lines", path)
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"item {index} is not an object", path)
        yield f"{path}[{index}]", row


def _read_csv(path: Path) -> Iterator[tuple[str, dict]]:
    lines = [line for _, line in _decode_lines(path)]
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as err:
        raise DataError(f"unreadable CSV header: {err}", location(path, 1)) from None
    header = [h.strip() for h in header]
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(f"unreadable CSV row: {err}", location(path, reader.line_num)) from None
        if not fields:
            continue
        if len(fields) != len(header):
            raise DataError(
                f"row has {len(fields)} fields but the header has {len(header)}", location(path, reader.line_num)
            )
        yield location(path, reader.line_num), dict(zip(header, fields))


def _read_parquet(path: Path) -> Iterator[tuple[str, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise DataError(f"unreadable Parquet file: {str(err).splitlines()[0]}", path) from None
    for index, row in enumerate(table.to_pylist()):
        yield f"{path}[row {index}]", row


def _read_hf_dir(path: Path) -> Iterator[tuple[str, dict]]:
    from datasets import DatasetDict, load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except Exception as err:
        raise DataError(f"unreadable Hugging Face dataset folder: {str(err).splitlines()[0]}", path) from None
    if isinstance(dataset, DatasetDict):
        split = "train" if "train" in dataset else next(iter(dataset))
        dataset = dataset[split]
    yield from _rows_from_hf_object(dataset, str(path))


def _rows_from_hf_object(dataset: Any, name: str = "<dataset>") -> Iterator[tuple[str, dict]]:
    features = getattr(dataset, "features", {}) or {}
    label_names = {}
    for column, feature in features.items():
        names = getattr(feature, "names", None)  # ClassLabel: map ints to names
        if names:
            label_names[column] = names
    for index, row in enumerate(dataset):
        row = dict(row)
        for column, names in label_names.items():
            if isinstance(row.get(column), int) and 0 <= row[column] < len(names):
                row[column] = names[row[column]]
        yield f"{name}[row {index}]", row


def _pick_column(keys: Iterable[str], wanted: str | None, candidates: tuple[str, ...], what: str, where: str, option: str) -> str | None:
    keys = list(keys)
    if wanted is not None:
        if wanted not in keys:
            raise DataError(f"no {what} column {wanted!r} (columns: {', '.join(keys)}); check {option}", where)
        return wanted
    return next((c for c in candidates if c in keys), None)


def _clean_text(value: Any, field: str, where: str, required: bool) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if required:
            raise DataError(f"{field} is missing", where)
        return None
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise DataError(f"{field} must be a string, got {type(value).__name__}", where)
    if len(value) > MAX_FIELD_CHARS:
        raise DataError(f"{field} is {len(value):,} characters long (limit {MAX_FIELD_CHARS:,})", where)
    value = value.strip()
    if required and not value:
        raise DataError(f"{field} is empty or whitespace only", where)
    return value or None


def _clean_label(value: Any, where: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        raise DataError("label is NaN", where)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    label = _clean_text(value, "label", where, required=True)
    assert label is not None
    return label


def _examples_from_rows(rows: Iterable[tuple[str, dict]], columns: Columns, name: str, require_labels: bool) -> list[Example]:
    examples: list[Example] = []
    seen_ids: dict[str, str] = {}
    resolved: dict[str, str | None] | None = None
    for where, row in rows:
        if resolved is None:
            resolved = {
                "text": _pick_column(row, columns.text, TEXT_COLUMNS, "text", where, "--text-col"),
                "pair": _pick_column(row, columns.pair, PAIR_COLUMNS, "text pair", where, "--pair-col"),
                "label": _pick_column(row, columns.label, LABEL_COLUMNS, "label", where, "--label-col"),
                "answer": _pick_column(row, columns.answer, ("answer",), "answer", where, "--answer-col"),
                "id": _pick_column(row, columns.id, ("id",), "id", where, "--id-col"),
            }
            if resolved["text"] is None:
                raise DataError(f"no text column (looked for {', '.join(TEXT_COLUMNS)}; columns: {', '.join(row)}); use --text-col", where)
            if require_labels and resolved["label"] is None and resolved["answer"] is None:
                raise DataError(f"no label column (looked for {', '.join(LABEL_COLUMNS)}; columns: {', '.join(row)}); use --label-col", where)
        for field in ("text", "label"):
            column = resolved[field]
            if column is not None and column not in row:
                raise DataError(f"row has no {column!r} field", where)
        text = _clean_text(row.get(resolved["text"]), "text", where, required=True)
        pair = _clean_text(row.get(resolved["pair"]), "text pair", where, required=False) if resolved["pair"] else None
        answer = _clean_text(row.get(resolved["answer"]), "answer", where, required=False) if resolved["answer"] else None
        label = _clean_label(row.get(resolved["label"]), where) if resolved["label"] else None
        provenance = _row_provenance(row, where)
        given_id = _clean_text(row.get(resolved["id"]), "id", where, required=False) if resolved["id"] else None
        example = Example.create(text, label, text_pair=pair, answer=answer, provenance=provenance, id=given_id)
        if example.id in seen_ids:
            if given_id is not None:
                raise DataError(f"duplicate id {example.id!r} (first at {seen_ids[example.id]})", where)
            example = example.model_copy(update={"id": f"{example.id}-{len(examples)}"})
        seen_ids[example.id] = where
        examples.append(example)
    if not examples:
        raise DataError("no examples (the file is empty)", name)
    return examples


def _row_provenance(row: dict, where: str) -> Provenance:
    raw = row.get("provenance")
    if raw is None:
        return Provenance()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise DataError("provenance is not valid JSON", where) from None
    try:
        return Provenance.model_validate(raw)
    except Exception as err:
        raise DataError(f"invalid provenance: {str(err).splitlines()[0]}", where) from None


def example_rows(examples: Iterable[Example]) -> list[dict]:
    """Flat dicts for writing: optional fields left out when empty, provenance nested."""
    rows = []
    for example in examples:
        row = example.model_dump(exclude_none=True)
        row["provenance"] = example.provenance.model_dump()
        rows.append(row)
    return rows


@contextmanager
def atomic_path(target: str | Path, mode: str = "w"):
    """Yield an open temporary file beside `target`; on success it replaces `target` in one rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(target: str | Path, text: str) -> None:
    with atomic_path(target) as file:
        file.write(text)


def write_json_atomic(target: str | Path, data: Any) -> None:
    write_text_atomic(target, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def save_examples(examples: Iterable[Example], target: str | Path, fmt: str | None = None) -> Path:
    """Write examples atomically as JSONL, CSV (provenance as a JSON column), Parquet or an HF dataset folder."""
    target = Path(target)
    fmt = fmt or ("hf" if target.suffix == "" else detect_format_for_write(target))
    rows = example_rows(examples)
    if fmt == "jsonl":
        with atomic_path(target) as file:
            for row in rows:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        fields = ["id", "text", "text_pair", "answer", "label", "provenance"]
        with atomic_path(target) as file:
            writer = csv.DictWriter(file, fieldnames=fields)
            writer.writeheader()
            for row in rows:
                writer.writerow({**{k: row.get(k, "") for k in fields}, "provenance": json.dumps(row["provenance"])})
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_path(target, "wb") as file:
            pq.write_table(pa.Table.from_pylist(_flat_rows(rows)), file)
    elif fmt == "hf":
        _save_hf_dir(rows, target)
    else:
        raise DataError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}", target)
    return target


def detect_format_for_write(target: Path) -> str:
    ext = target.suffix.lower()
    return {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(ext) or _unknown_write(target)


def _unknown_write(target: Path) -> str:
    raise DataError(f"unknown output format {target.suffix!r}; use .jsonl, .csv, .parquet or a folder name", target)


def _flat_rows(rows: list[dict]) -> list[dict]:
    fields = ("id", "text", "text_pair", "answer", "label")
    return [{**{k: row.get(k) for k in fields}, "provenance": json.dumps(row["provenance"])} for row in rows]


def _save_hf_dir(rows: list[dict], target: Path) -> None:
    import shutil

    from datasets import Dataset

    staging = Path(tempfile.mkdtemp(dir=target.parent if target.parent.exists() else None, prefix=f".{target.name}."))
    try:
        Dataset.from_list(_flat_rows(rows)).save_to_disk(str(staging / "data"))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / "data", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

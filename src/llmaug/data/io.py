"""Load and save datasets: JSONL, CSV/TSV, Parquet and Hugging Face `datasets` (object or save_to_disk folder).

Every problem with a file becomes a one-line `DataError` naming the file, line and column where they are known.
Writes are atomic: a temporary file in the same folder, fsynced, then renamed over the target.
"""

from __future__ import annotations

import codecs
import csv
import errno
import io
import json
import logging
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmaug.atomic import atomic_dir, atomic_path
from llmaug.data.example import Example, Provenance
from llmaug.errors import DataError, location

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv", "parquet", "hf")
TEXT_COLUMNS = ("text", "question", "sentence", "premise", "sentence1")
PAIR_COLUMNS = ("text_pair", "hypothesis", "sentence2")
LABEL_COLUMNS = ("label", "intent", "class")
MAX_FIELD_CHARS = 100_000
HF_FOLDER_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
WRITTEN_FIELDS = ("id", "text", "text_pair", "answer", "label")
_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON can spell one ("\\ud800"); UTF-8 cannot write it back

Row = tuple[str, Mapping[str, Any]]  # (where the row is, e.g. 'train.jsonl:12', its fields)


@dataclass(frozen=True)
class Columns:
    """Which source columns hold the fields; None means: guess from the usual names."""

    text: str | None = None
    label: str | None = None
    pair: str | None = None
    answer: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class _ResolvedColumns:
    text: str
    label: str | None
    pair: str | None
    answer: str | None
    id: str | None


# ---------------------------------------------------------------------------------------------- reading


def detect_format(path: Path) -> str:
    if path.is_dir():
        if any((path / marker).exists() for marker in HF_FOLDER_MARKERS):
            return "hf"
        raise DataError("is a folder but not a Hugging Face save_to_disk dataset (no dataset_info.json)", path)
    suffix = path.suffix.lower()
    for fmt, extensions in {"jsonl": (".jsonl", ".ndjson", ".json"), "csv": (".csv", ".tsv"), "parquet": (".parquet",)}.items():
        if suffix in extensions:
            return fmt
    shown = path.suffix or "(no extension)"
    raise DataError(f"unknown format {shown!r}; use one of .jsonl .json .csv .tsv .parquet or an HF dataset folder", path)


def load_examples(
    source: str | os.PathLike | Any,
    columns: Columns = Columns(),
    fmt: str | None = None,
    require_labels: bool = True,
) -> list[Example]:
    """Read a dataset into Examples.

    `source` is a path, a `datasets.Dataset`/`DatasetDict` or a list of dicts. With `require_labels`, every row
    needs a label or an answer (GSM8K-style rows have an answer and no label).
    """
    if not isinstance(source, (str, os.PathLike)):
        return _examples_from_rows(list(_rows_from_memory(source)), columns, "<dataset>", require_labels)
    return _examples_from_rows(read_rows(source, fmt), columns, str(source), require_labels)


def examples_and_rows(source: str | os.PathLike, columns: Columns = Columns()) -> tuple[list[Example], list[dict]]:
    """Unlabelled examples of a file, and its rows as the file has them (every column), in the same order."""
    rows = read_rows(source)
    return _examples_from_rows(rows, columns, str(source), require_labels=False), [dict(row) for _, row in rows]


def read_rows(source: str | os.PathLike, fmt: str | None = None) -> list[Row]:
    """The rows of a data file, each with where it is ('train.jsonl:12') and its fields, as the file has them."""
    path = Path(source)
    try:
        if not path.exists():
            raise DataError(_missing(path), path)
        fmt = fmt or detect_format(path)
        if fmt not in FORMATS:
            raise DataError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}", path)
        readers = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "hf": _read_hf_dir}
        return list(readers[fmt](path))
    except PermissionError:
        raise DataError("cannot read file (permission denied)", path) from None
    except IsADirectoryError:
        raise DataError("is a folder, expected a file", path) from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DataError("symbolic link loop (the link points back to itself)", path) from None
        raise DataError(f"cannot read file: {err.strerror or _first_line(err)}", path) from None


def _missing(path: Path) -> str:
    """Why a path does not exist: a symbolic link loop or a dangling link say so; else "file not found"."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return "symbolic link loop (the link points back to itself)"
        except OSError as err:
            if err.errno == errno.ELOOP:
                return "symbolic link loop (the link points back to itself)"
        return f"broken symbolic link (it points to {os.readlink(path)}, which does not exist)"
    return "file not found"


def _decode(path: Path) -> str:
    """The file as text: UTF-8, a leading byte-order mark dropped."""
    raw = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        column = len(raw[line_start : err.start].decode("utf-8", errors="replace")) + 1  # in characters, as editors count
        message = f"not valid UTF-8 (byte 0x{raw[err.start]:02x}); re-save the file as UTF-8"
        raise DataError(message, location(path, line, column)) from None


def _physical_lines(text: str) -> Iterator[tuple[int, str]]:
    # Only "\n" ends a JSON Lines record: str.splitlines() would also split on U+2028, U+0085 and friends, which
    # JSON allows unescaped inside strings (GSM8K train has one).
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.removesuffix("\r")


def _read_jsonl(path: Path) -> Iterator[Row]:
    text = _decode(path)
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        yield from _read_json_array(path, text)
        return
    for number, line in _physical_lines(text):
        if not line.strip():
            continue
        row = _parse_json(line, path, number)
        if not isinstance(row, dict):
            raise DataError(f"expected a JSON object per line, got {_json_type(row)}", location(path, number, 1))
        yield location(path, number), row


def _parse_json(text: str, path: Path, line: int | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        if line is None:
            raise DataError(f"broken JSON: {err.msg}", location(path, err.lineno, err.colno)) from None
        raise DataError(f"broken JSON line: {err.msg}", location(path, line, err.colno)) from None
    except (ValueError, RecursionError) as err:  # e.g. an integer over Python's digit limit, or absurd nesting
        raise DataError(f"unreadable JSON: {_first_line(err)}", location(path, line)) from None


def _read_json_array(path: Path, text: str) -> Iterator[Row]:
    data = _parse_json(text, path, None)
    if not isinstance(data, list):
        raise DataError("expected a JSON list of objects or JSON Lines", path)
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"item {index} is {_json_type(row)}, expected an object", path)
        yield f"{path}[{index}]", row


def _json_type(value: Any) -> str:
    names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _read_csv(path: Path) -> Iterator[Row]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(_decode(path), newline=""), delimiter=delimiter)
    header: list[str] | None = None
    while True:
        start_line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(f"unreadable CSV: {err}", location(path, start_line)) from None
        if not fields:
            continue  # blank line
        if header is None:
            header = _csv_header(fields, path, start_line)
            continue
        if len(fields) != len(header):
            message = f"row has {len(fields)} fields but the header has {len(header)}"
            raise DataError(message, location(path, start_line))
        yield location(path, start_line), dict(zip(header, fields))


def _csv_header(fields: list[str], path: Path, line: int) -> list[str]:
    header = [name.strip() for name in fields]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DataError(f"header repeats column {', '.join(map(repr, duplicates))}", location(path, line))
    return header


def _read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several types for a corrupt or truncated file
        raise DataError(f"unreadable Parquet file: {_first_line(err)}", path) from None
    for index, row in enumerate(rows):
        yield f"{path}[row {index}]", row


def _read_hf_dir(path: Path) -> Iterator[Row]:
    from datasets import load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except Exception as err:  # datasets raises FileNotFoundError, ValueError, ArrowInvalid... for a broken folder
        raise DataError(f"unreadable Hugging Face dataset folder: {_first_line(err)}", path) from None
    yield from _rows_from_memory(dataset, str(path))


def _rows_from_memory(source: Any, name: str = "<dataset>") -> Iterator[Row]:
    """Rows of a `datasets.Dataset`, of a `DatasetDict` (its train split, else its first) or of a list of dicts."""
    datasets = sys.modules.get("datasets")  # only a source built with `datasets` can be one of its types
    if datasets is not None and isinstance(source, datasets.DatasetDict):
        if not source:
            raise DataError("the DatasetDict has no splits", name)
        source = source["train" if "train" in source else next(iter(source))]
    if isinstance(source, (str, bytes, Mapping)) or not isinstance(source, Iterable):
        raise DataError(f"expected a path, a datasets.Dataset or a list of dicts, got {type(source).__name__}", name)
    class_names = _class_label_names(source)
    for index, row in enumerate(source):
        where = f"{name}[row {index}]"
        if not isinstance(row, Mapping):
            raise DataError(f"row is {type(row).__name__}, expected a mapping of column to value", where)
        yield where, _with_class_names(dict(row), class_names)


def _class_label_names(dataset: Any) -> dict[str, list[str]]:
    features = getattr(dataset, "features", None) or {}
    return {column: feature.names for column, feature in features.items() if getattr(feature, "names", None)}


def _with_class_names(row: dict, class_names: dict[str, list[str]]) -> dict:
    for column, names in class_names.items():
        value = row.get(column)
        if isinstance(value, int) and not isinstance(value, bool):
            # ClassLabel stores names as ints; -1 is its "no label" (e.g. unlabelled test splits)
            row[column] = names[value] if 0 <= value < len(names) else None
    return row


# ------------------------------------------------------------------------------------- rows to Examples


def _examples_from_rows(rows: list[Row], columns: Columns, name: str, require_labels: bool) -> list[Example]:
    if not rows:
        raise DataError("no examples (the file is empty or holds only a header)", name)
    resolved = _resolve_columns(_column_names(rows), columns, require_labels, name)
    examples: list[Example] = []
    first_seen: dict[str, str] = {}
    for where, row in rows:
        example, id_was_given = _example_from_row(row, resolved, where, require_labels)
        if example.id in first_seen:
            if id_was_given:
                raise DataError(f"duplicate id {example.id!r} (first at {first_seen[example.id]})", where)
            # the same content twice: keep both rows, told apart by position
            example = example.model_copy(update={"id": f"{example.id}-{len(examples)}"})
        first_seen[example.id] = where
        examples.append(example)
    if resolved.label is not None:
        _warn_mixed_label_types(rows, resolved.label, examples)
    return examples


def _warn_mixed_label_types(rows: list[Row], column: str, examples: list[Example]) -> None:
    """Name labels that merge into one class although the file spells them as different types (1 and "1")."""
    spellings: dict[str, dict[str, str]] = {}  # class -> type name -> where first seen
    for (where, row), example in zip(rows, examples):
        value = row.get(column)
        if example.label is not None and value is not None:
            kind = "text" if isinstance(value, str) else "number" if isinstance(value, (int, float)) else type(value).__name__
            spellings.setdefault(example.label, {}).setdefault(kind, where)
    for label, kinds in spellings.items():
        if len(kinds) > 1:
            seen = " and ".join(f"{kind} (first at {where})" for kind, where in kinds.items())
            log.warning("label column %r spells class %r as %s; they are one class", column, label, seen)


def _column_names(rows: list[Row]) -> list[str]:
    """Every column of any row, in first-seen order (JSON Lines rows may leave out empty fields)."""
    names: dict[str, None] = {}
    for _, row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def _resolve_columns(names: list[str], columns: Columns, require_labels: bool, where: str) -> _ResolvedColumns:
    shown = ", ".join(map(repr, names))
    text = _pick_column(names, columns.text, TEXT_COLUMNS, "text", "--text-col", where)
    if text is None:
        raise DataError(f"no text column (looked for {', '.join(TEXT_COLUMNS)}; columns: {shown}); use --text-col", where)
    resolved = _ResolvedColumns(
        text=text,
        label=_pick_column(names, columns.label, LABEL_COLUMNS, "label", "--label-col", where),
        pair=_pick_column(names, columns.pair, PAIR_COLUMNS, "text pair", "--pair-col", where),
        answer=_pick_column(names, columns.answer, ("answer",), "answer", "Columns(answer=...)", where),
        id=_pick_column(names, columns.id, ("id",), "id", "Columns(id=...)", where),
    )
    if require_labels and resolved.label is None and resolved.answer is None:
        raise DataError(f"no label column (looked for {', '.join(LABEL_COLUMNS)}; columns: {shown}); use --label-col", where)
    return resolved


def _pick_column(names: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, option: str, where: str) -> str | None:
    if wanted is not None:
        if wanted not in names:
            raise DataError(f"no {what} column {wanted!r} (columns: {', '.join(map(repr, names))}); check {option}", where)
        return wanted
    return next((name for name in candidates if name in names), None)


def _example_from_row(row: Mapping[str, Any], columns: _ResolvedColumns, where: str, require_labels: bool) -> tuple[Example, bool]:
    def optional(column: str | None) -> str | None:
        return _clean_field(row.get(column), column, where, required=False) if column else None

    text = _clean_field(row.get(columns.text), columns.text, where, required=True)
    answer = optional(columns.answer)
    label = _clean_label(row.get(columns.label), columns.label, where, required=require_labels and answer is None) if columns.label else None
    if require_labels and label is None and answer is None:
        raise DataError(f"answer {columns.answer!r} is missing or empty", where)
    given_id = optional(columns.id)
    example = Example.create(
        text, label, text_pair=optional(columns.pair), answer=answer, provenance=_row_provenance(row, where), id=given_id
    )
    return example, given_id is not None


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _clean_field(value: Any, column: str, where: str, required: bool) -> str | None:
    """A field as stripped text; numbers become text. None (or an error when required) for a missing value."""
    if value is None or _is_nan(value):
        if required:
            raise DataError(f"{column!r} is missing", where)
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise DataError(f"{column!r} must be text or a number, got {_json_type(value)}", where)
    if len(value) > MAX_FIELD_CHARS:
        raise DataError(f"{column!r} is {len(value):,} characters long (limit {MAX_FIELD_CHARS:,})", where)
    if surrogate := _SURROGATE.search(value):
        raise DataError(f"{column!r} holds an unpaired surrogate U+{ord(surrogate.group()):04X}, which is not text", where)
    value = value.strip()
    if required and not value:
        raise DataError(f"{column!r} is empty or whitespace only", where)
    return value or None


def _clean_label(value: Any, column: str, where: str, required: bool) -> str | None:
    """Labels are text: 1 and 1.0 both become "1", so a CSV of 0/1 and a Parquet of 0.0/1.0 agree."""
    if _is_nan(value):
        if required:
            raise DataError(f"label {column!r} is NaN", where)
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _clean_field(value, column, where, required)


def _row_provenance(row: Mapping[str, Any], where: str) -> Provenance:
    raw = row.get("provenance")
    if raw is None or _is_nan(raw) or (isinstance(raw, str) and not raw.strip()):
        return Provenance()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise DataError("provenance is not valid JSON", where) from None
    try:
        return Provenance.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "provenance"
        raise DataError(f"invalid provenance: {field!r}: {first['msg']}", where) from None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


# ---------------------------------------------------------------------------------------------- writing


def example_rows(examples: Iterable[Example]) -> list[dict]:
    """Flat dicts for writing: optional fields left out when empty, provenance nested."""
    return [_example_row(example) for example in examples]


def _example_row(example: Example) -> dict:
    row = example.model_dump(exclude_none=True)
    row["provenance"] = example.provenance.model_dump()
    return row


def _flat_row(example: Example) -> dict:
    """All written fields present (None when empty) and provenance as a JSON string: for tables."""
    row = {field: getattr(example, field) for field in WRITTEN_FIELDS}
    row["provenance"] = json.dumps(example.provenance.model_dump(), ensure_ascii=False)
    return row


def save_examples(examples: Iterable[Example], target: str | Path, fmt: str | None = None) -> Path:
    """Write examples atomically as JSONL (provenance nested), CSV/TSV, Parquet or an HF dataset folder (provenance
    as a JSON column). A path without an extension is written as an HF save_to_disk folder."""
    target = Path(target)
    fmt = fmt or _write_format(target)
    shape = _example_row if fmt == "jsonl" else _flat_row
    columns = None if fmt == "jsonl" else [*WRITTEN_FIELDS, "provenance"]
    return save_rows([shape(example) for example in examples], target, fmt, columns)


def save_rows(rows: list[dict], target: str | Path, fmt: str | None = None, columns: list[str] | None = None) -> Path:
    """Write plain rows atomically in the format the target's extension names (a folder: an HF dataset).
    Tables get `columns` (default: every key, in first-seen order); a value that is not a string, number or
    boolean is written there as JSON."""
    target = Path(target)
    fmt = fmt or _write_format(target)
    if fmt == "jsonl":
        with atomic_path(target) as file:
            file.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return target
    if fmt not in ("csv", "parquet", "hf"):
        raise DataError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}", target)
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    table = [{column: _cell(row.get(column)) for column in columns} for row in rows]
    {"csv": _save_csv, "parquet": _save_parquet, "hf": _save_hf_dir}[fmt](table, columns, target)
    return target


def _write_format(target: Path) -> str:
    if target.suffix == "":
        return "hf"
    formats = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
    fmt = formats.get(target.suffix.lower())
    if fmt is None:
        raise DataError(f"unknown output format {target.suffix!r}; use .jsonl, .csv, .tsv, .parquet or a folder name", target)
    return fmt


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False)


def _save_csv(rows: list[dict], columns: list[str], target: Path) -> None:
    delimiter = "\t" if target.suffix.lower() == ".tsv" else ","
    with atomic_path(target, newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, delimiter=delimiter)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if value is None else value for key, value in row.items()})


def _arrow_table(rows: list[dict], columns: list[str]):
    """Rows as an Arrow table; text columns (and empty ones) typed as strings, others as Arrow infers them."""
    import pyarrow as pa

    fields = []
    for column in columns:
        values = [row[column] for row in rows if row[column] is not None]
        kind = pa.string() if all(isinstance(v, str) for v in values) else pa.array(values).type
        fields.append(pa.field(column, kind))
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def _save_parquet(rows: list[dict], columns: list[str], target: Path) -> None:
    import pyarrow.parquet as pq

    table = _arrow_table(rows, columns)
    with atomic_path(target, "wb") as file:
        pq.write_table(table, file)


def _save_hf_dir(rows: list[dict], columns: list[str], target: Path) -> None:
    from datasets import Dataset, Features

    if target.exists() and not target.is_dir():
        raise DataError("exists and is not a folder; cannot write a Hugging Face dataset folder there", target)
    table = _arrow_table(rows, columns)
    dataset = Dataset.from_list(rows, features=Features.from_arrow_schema(table.schema)) if rows else \
        Dataset.from_dict({column: [] for column in columns}, features=Features.from_arrow_schema(table.schema))
    with atomic_dir(target) as staging:
        dataset.save_to_disk(str(staging))

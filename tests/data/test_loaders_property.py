"""Property tests: any examples survive every format; any bytes give at worst a one-line DataError."""

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmaug.data import Example, Provenance, load_examples, save_examples
from llmaug.errors import DataError

TRICKY = ['"', "'", ",", ";", "\t", "\n", "\r\n", "\r", "{{ }}", "{", "}", "\\", "\u2028", "\x85", "\x00", "🙂", "#### 4", "NaN"]

# Loaders strip surrounding whitespace, so the examples generated here are stripped already.
tricky_text = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(TRICKY)), min_size=1, max_size=6).map(
    lambda parts: "".join(parts).strip()
).filter(bool)
optional_text = st.none() | tricky_text
provenance = st.builds(
    Provenance,
    origin=st.sampled_from(["seed", "synthetic", "relabelled"]),
    method=st.none() | st.text(max_size=10),
    round=st.none() | st.integers(0, 5),
    parent_ids=st.lists(st.text(max_size=8), max_size=3),
    raw_output=st.none() | st.text(max_size=30),
)
example = st.builds(
    lambda text, label, pair, answer, prov: Example.create(text, label, text_pair=pair, answer=answer, provenance=prov),
    tricky_text, tricky_text, optional_text, optional_text, provenance,
)
datasets_of_examples = st.lists(example, min_size=1, max_size=8, unique_by=lambda e: e.id)


def round_trip(examples, name):
    with tempfile.TemporaryDirectory() as folder:
        target = save_examples(examples, Path(folder) / name)
        return load_examples(target)


@settings(max_examples=150, deadline=None)
@given(examples=datasets_of_examples)
def test_jsonl_round_trip(examples):
    assert round_trip(examples, "set.jsonl") == examples


@settings(max_examples=150, deadline=None)
@given(examples=datasets_of_examples)
def test_csv_round_trip(examples):
    assert round_trip(examples, "set.csv") == examples


@settings(max_examples=60, deadline=None)
@given(examples=datasets_of_examples)
def test_tsv_round_trip(examples):
    assert round_trip(examples, "set.tsv") == examples


@settings(max_examples=80, deadline=None)
@given(examples=datasets_of_examples)
def test_parquet_round_trip(examples):
    assert round_trip(examples, "set.parquet") == examples


# ------------------------------------------------------------------------------------------- arbitrary input

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
column_names = st.sampled_from(["text", "label", "id", "answer", "question", "text_pair", "provenance", "intent", "other"])
some_value = st.text(min_size=1, max_size=15) | st.text(min_size=1, max_size=15) | json_values
plausible_rows = st.fixed_dictionaries(
    {"text": some_value, "label": some_value},
    optional={"id": some_value, "answer": some_value, "text_pair": some_value, "provenance": json_values},
)
json_rows = st.lists(plausible_rows | st.dictionaries(column_names, json_values, max_size=5) | json_values, max_size=5).map(
    lambda rows: "\n".join(json.dumps(row) for row in rows).encode()
)
csv_cells = st.text(alphabet=st.sampled_from('ab ,"\n\r\t1.{}\\') | st.characters(), max_size=10)
csv_header = st.lists(column_names.filter(lambda name: name not in ("text", "label")), max_size=3, unique=True).map(
    lambda names: ["text", "label", *names]
)
csv_tables = st.tuples(csv_header | st.lists(csv_cells, max_size=4), st.lists(st.lists(csv_cells, min_size=1, max_size=4), max_size=5)).map(
    lambda table: "\n".join(",".join(row) for row in [table[0], *table[1]]).encode("utf-8", errors="surrogatepass")
)


def damaged(data: st.DataObject, content: bytes) -> bytes:
    """Content with a few random bytes overwritten: near-valid files reach deeper than pure noise."""
    content = bytearray(content)
    for _ in range(data.draw(st.integers(0, 3))):
        if content:
            content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    return bytes(content)


def assert_loads_or_fails_cleanly(content: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            examples = load_examples(path)
        except DataError as err:
            message = str(err)
            assert "\n" not in message and "\r" not in message
            assert message.startswith(str(path))
        else:
            assert examples and all(isinstance(e, Example) and e.text == e.text.strip() and e.text for e in examples)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), suffix=st.sampled_from([".jsonl", ".json", ".csv", ".tsv"]))
def test_arbitrary_bytes_never_raise_anything_but_data_error(data, suffix):
    content = data.draw(st.binary(max_size=200) | json_rows | csv_tables)
    assert_loads_or_fails_cleanly(damaged(data, content), "input" + suffix)


@settings(max_examples=50, deadline=None)
@given(content=st.binary(max_size=300))
def test_arbitrary_bytes_as_parquet_give_data_error(content):
    assert_loads_or_fails_cleanly(content, "input.parquet")

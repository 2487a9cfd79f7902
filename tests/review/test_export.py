"""Exports of the curated data: every format loads back as the curated dataset, and the Argilla records file has
Argilla 2.x's record shape (what `rg.Record.to_dict()` writes and `rg.Record.from_dict` reads)."""

from __future__ import annotations

import json

import pytest

from llmaug.data import load_examples
from llmaug.errors import UserError
from llmaug.decisions import load_decisions
from llmaug.review.export import TARGETS, export, export_path
from llmaug.review.retrain import curated_data
from llmaug.review.rundata import ACCEPTED, RunData

ARGILLA_RECORD_KEYS = {"id", "fields", "metadata", "suggestions", "responses", "vectors", "status", "_server_id"}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "hf"])
def test_each_format_loads_back_as_the_curated_dataset(run_dir, fmt, decide_on):
    decide_on(run_dir, "reject", 2)
    decide_on(run_dir, "relabel", 1, label="ABBR")
    path = export(run_dir, fmt)

    assert path == run_dir / "reviewed" / "export" / TARGETS[fmt]
    loaded = load_examples(path)
    expected = curated_data(run_dir).kept
    assert [(e.id, e.text, e.label, e.provenance) for e in loaded] == [(e.id, e.text, e.label, e.provenance) for e in expected]


def test_argilla_records_have_the_row_and_its_parent_as_fields_and_review_state_as_metadata(run_dir, decide_on):
    out = decide_on(run_dir, "reject", 1)[0]
    relabelled = decide_on(run_dir, "relabel", 1, label="ABBR")[0]
    records = json.loads(export(run_dir, "argilla").read_text())

    run = RunData(run_dir)
    accepted = [row for row in run.rows if row.kind == ACCEPTED]
    assert [record["id"] for record in records] == [row.id for row in accepted]
    by_id = {record["id"]: record for record in records}
    for row in accepted:
        record = by_id[row.id]
        assert set(record) == ARGILLA_RECORD_KEYS
        assert record["fields"] == {"text": row.text, "parent": run.parent(row).text}
        assert record["metadata"]["round"] == row.round and record["metadata"]["method"] == "llm2llm"
        assert set(record["suggestions"]) == {"label"} and set(record["suggestions"]["label"]) == {"value", "score", "agent"}
        assert record["responses"] == {} and record["vectors"] == {} and record["status"] == "pending"
    assert by_id[out]["metadata"]["status"] == "reviewed-out"
    assert by_id[relabelled]["metadata"]["status"] == "relabelled"
    assert by_id[relabelled]["metadata"]["label"] == by_id[relabelled]["suggestions"]["label"]["value"] == "ABBR"
    assert {r["metadata"]["status"] for r in records} == {"accepted", "reviewed-out", "relabelled"}
    assert len(load_decisions(run_dir)) == 2


def test_an_unknown_format_is_a_user_error():
    with pytest.raises(UserError, match="unknown export format 'xlsx'"):
        export_path("run", "xlsx")

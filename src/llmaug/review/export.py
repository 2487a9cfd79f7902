"""Export a run's curated data (review decisions applied) into RUN_DIR/reviewed/export/.

Formats: `jsonl`, `csv`, `parquet`, `hf` (a `datasets` save_to_disk folder) through `llmaug.data.io.save_examples`,
and `argilla`: a records file for teams that review in Argilla.

The Argilla file follows the Argilla 2.x SDK's record format: a JSON array of what `rg.Record.to_dict()` returns
(argilla >= 2.1: `id`, `fields`, `metadata`, `suggestions` keyed by question name with `value`/`score`/`agent`,
`responses` keyed by question name, `vectors`, `status`, `_server_id`), which
`dataset.records.from_json(path)` reads back through `rg.Record.from_dict`. One record per synthetic row of the run
(rows reviewed out included, with their status), for a dataset with these settings:

    rg.Settings(
        fields=[rg.TextField(name="text"), rg.TextField(name="parent")],   # the row, and the seed it was made from
        questions=[rg.LabelQuestion(name="label", labels=LABELS)],          # suggested: the row's current label
        metadata=[rg.TermsMetadataProperty(name="label"), rg.IntegerMetadataProperty(name="round"),
                  rg.TermsMetadataProperty(name="method"), rg.TermsMetadataProperty(name="status")],
    )

Pair tasks add the fields `text_pair` and `parent_pair`; rows without a parent have an empty `parent`.
"""

from __future__ import annotations

import json
from pathlib import Path

from llmaug.atomic import write_text_atomic
from llmaug.data.io import save_examples
from llmaug.errors import UserError
from llmaug.decisions import Review, load_decisions, review_state
from llmaug.review.rundata import ACCEPTED, REVIEWED_DIR, Row, RunData

EXPORT_DIR = "export"
TARGETS = {
    "jsonl": "curated.jsonl",
    "csv": "curated.csv",
    "parquet": "curated.parquet",
    "hf": "curated-hf",
    "argilla": "argilla-records.json",
}


def export_path(run_dir: str | Path, fmt: str) -> Path:
    if fmt not in TARGETS:
        raise UserError(f"unknown export format {fmt!r}; choose from {', '.join(TARGETS)}", "format")
    return Path(run_dir) / REVIEWED_DIR / EXPORT_DIR / TARGETS[fmt]


def export(run_dir: str | Path, fmt: str, run: RunData | None = None, review: Review | None = None) -> Path:
    """Write the curated data of `run_dir` in `fmt`; returns the file (or folder) written. `run` and `review` can
    be passed when already loaded (the review server's index holds them)."""
    from llmaug.review.retrain import curated_data

    target = export_path(run_dir, fmt)
    if fmt == "argilla":
        run = run or RunData(run_dir)
        review = review or review_state(load_decisions(run_dir), {row.id: row.label for row in run.rows})
        records = argilla_records(run, review)
        write_text_atomic(target, json.dumps(records, ensure_ascii=False, indent=1) + "\n")
        return target
    return save_examples(curated_data(run_dir).kept, target, fmt)


def argilla_records(run: RunData, review: Review) -> list[dict]:
    return [_record(run, review, row) for row in run.rows if row.kind == ACCEPTED]


def _record(run: RunData, review: Review, row: Row) -> dict:
    state = review.state(row.id)
    label = state.label if state.label is not None else row.label
    parent = run.parent(row)
    fields = {"text": row.text, "parent": parent.text if parent else ""}
    if row.text_pair is not None:
        fields |= {"text_pair": row.text_pair, "parent_pair": (parent.text_pair if parent else None) or ""}
    status = "reviewed-out" if state.out else "relabelled" if state.label is not None else "accepted"
    metadata = {"label": label, "round": row.round, "method": row.method, "status": status,
                "original_label": row.label, "parent_id": row.parent_ids[0] if row.parent_ids else None,
                "teacher": row.teacher, "prompt": row.prompt}
    return {
        "id": row.id,
        "fields": fields,
        "metadata": {key: value for key, value in metadata.items() if value is not None},
        "suggestions": {"label": {"value": label, "score": None, "agent": row.teacher or "llmaug"}} if label else {},
        "responses": {},
        "vectors": {},
        "status": "pending",
        "_server_id": None,
    }

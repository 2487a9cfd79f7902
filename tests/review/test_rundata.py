"""Reading a run directory: rows with their round, parent and the wrong prediction behind them; unfinished runs;
folders of runs; rejected rows with and without an `id`; hidden secrets."""

from __future__ import annotations

import json
import shutil

from llmaug.review.rundata import ACCEPTED, REJECTED, RunData, current_examples, find_runs, redacted
from llmaug.testing.scripted import read_jsonl


def test_rows_are_the_accepted_and_rejected_outputs_of_every_round(finished_run):
    run = RunData(finished_run)
    summary = json.loads((finished_run / "summary.json").read_text())
    accepted = [row for row in run.rows if row.kind == ACCEPTED]
    rejected = [row for row in run.rows if row.kind == REJECTED]

    assert len(accepted) == summary["added"] > 0
    assert len(rejected) == sum(r["rejected"] for r in summary["rounds"]) > 0
    for k, record in enumerate(summary["rounds"]):
        assert sum(row.round == k and row.kind == ACCEPTED for row in run.rows) == record["added"]
    assert all(row.in_final for row in accepted) and all(row.reason for row in rejected)


def test_each_row_knows_its_parent_seed_and_what_the_student_predicted_for_it(finished_run):
    run = RunData(finished_run)
    for row in run.rows:
        errors = {item["id"]: item for item in read_jsonl(finished_run / "rounds" / f"{row.round:03d}" / "errors.jsonl")}
        parent = run.parent(row)
        assert parent is not None and parent.id in errors
        assert (parent.text, parent.label) == (errors[parent.id]["text"], errors[parent.id]["label"])
        assert run.wrong_prediction(row) == errors[parent.id]["predicted"] != parent.label


def test_rejected_rows_use_their_id_when_the_log_has_one_and_a_stable_one_otherwise(run_dir):
    path = run_dir / "rounds" / "000" / "rejected.jsonl"
    rows = read_jsonl(path)
    assert all(row["id"] for row in rows)  # runs write the ids; a log of an older run has none:
    path.write_text("".join(json.dumps({k: v for k, v in row.items() if k != "id"}) + "\n" for row in rows))
    before = [row.id for row in RunData(run_dir).rows if row.kind == REJECTED and row.round == 0]
    assert before == [f"rejected-0-{line}" for line in range(1, len(rows) + 1)]
    assert before == [row.id for row in RunData(run_dir).rows if row.kind == REJECTED and row.round == 0]  # stable

    path.write_text("".join(json.dumps({**row, "id": f"rej-{i}"}) + "\n" for i, row in enumerate(rows)))
    assert [row.id for row in RunData(run_dir).rows if row.kind == REJECTED and row.round == 0] == \
        [f"rej-{i}" for i in range(len(rows))]


def test_an_unfinished_run_is_read_from_its_rounds(run_dir):
    finished = RunData(run_dir)
    for name in ("summary.json", "data.jsonl", "report.md", "report.html"):
        (run_dir / name).unlink()
    shutil.rmtree(run_dir / "rounds" / "002")

    run = RunData(run_dir)
    assert not run.finished and [r["round"] for r in run.rounds] == [0, 1]
    assert [row.id for row in run.rows] == [row.id for row in finished.rows]
    current = current_examples(run_dir)  # round 1's data and what round 1 added: the run's data so far
    assert len(current) == finished.rounds[1]["train_size"] + finished.rounds[1]["added"]


def test_new_provenance_fields_are_read_without_complaint(run_dir):
    path = run_dir / "rounds" / "000" / "added.jsonl"
    rows = read_jsonl(path)
    path.write_text("".join(json.dumps({**row, "provenance": {**row["provenance"], "item_index": 0}}) + "\n" for row in rows))
    assert len([row for row in RunData(run_dir).rows if row.round == 0 and row.kind == ACCEPTED]) == len(rows)


def test_a_folder_of_runs_lists_the_runs_below_it_by_relative_path(finished_run, tmp_path):
    for name in ("work/cell-a", "work/nested/cell-b"):
        shutil.copytree(finished_run, tmp_path / name)
    (tmp_path / "work" / "notes").mkdir()

    assert sorted(find_runs(tmp_path)) == ["work/cell-a", "work/nested/cell-b"]
    assert list(find_runs(tmp_path / "work" / "cell-a")) == ["cell-a"]  # a run directory is a folder of one run
    assert find_runs(tmp_path / "work" / "notes") == {}


def test_settings_that_look_like_secrets_are_hidden_but_the_key_variable_name_is_shown():
    shown = redacted({"api_key_env": "OPENAI_API_KEY", "max_tokens_budget": 100,
                      "teacher_options": {"api_key": "sk-x", "auth_token": "t", "max_tokens": 64, "db_password": "p"}})
    assert shown == {"api_key_env": "OPENAI_API_KEY", "max_tokens_budget": 100,
                     "teacher_options": {"api_key": "(hidden)", "auth_token": "(hidden)", "max_tokens": 64,
                                         "db_password": "(hidden)"}}

"""Retraining a run's student on its curated data: into reviewed/ only, on the run's own eval set, with decisions
applied; the run's own files untouched."""

from __future__ import annotations

import json
import shutil

import pytest

from llmaug.data import load_examples
from llmaug.errors import ConfigError, DataError
from llmaug.review.retrain import curated_data, make_run_student, retrain, run_config, run_eval_set
from llmaug.session import load_run_data
from llmaug.students import Student
from llmaug.testing.scripted import run_fingerprint


def test_the_student_is_built_from_the_runs_config(run_dir):
    student = make_run_student(run_dir)
    assert student.kind == "tfidf" and not student.labels  # fresh and untrained


def test_the_eval_set_is_the_one_the_run_used(run_dir):
    config = run_config(run_dir)
    expected = load_run_data(config)[1]
    assert [e.id for e in run_eval_set(config)] == [e.id for e in expected] and len(expected) == 100


def test_retrain_writes_only_reviewed_and_applies_the_decisions(run_dir, decide_on):
    out = decide_on(run_dir, "reject", 3)
    relabelled = decide_on(run_dir, "relabel", 2, label="ABBR")
    untouched = run_fingerprint(run_dir)

    evaluation = retrain(run_dir)

    after = run_fingerprint(run_dir)
    assert {name for name in after if not name.startswith("reviewed/")} == set(untouched)
    assert all(after[name] == untouched[name] for name in untouched)
    data = load_examples(run_dir / "reviewed" / "data.jsonl")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(data) == summary["final_size"] - 3 == evaluation["train_size"]
    assert not set(out) & {e.id for e in data}
    assert {e.label for e in data if e.id in relabelled} == {"ABBR"}
    saved = json.loads((run_dir / "reviewed" / "evaluation.json").read_text())
    assert saved == evaluation
    assert saved["test"]["n"] == 100 and 0 <= saved["accuracy"] <= 1 and saved["macro_f1"] is not None
    assert (saved["reviewed_out"], saved["relabelled"], saved["decisions"]) == (3, 2, 5)
    assert saved["before"] == {"accuracy": summary["test"]["accuracy"], "macro_f1": summary["test"]["macro_f1"],
                               "train_size": summary["final_size"]}
    assert Student.load(run_dir / "reviewed" / "student").labels
    assert "| test accuracy |" in (run_dir / "reviewed" / "report.md").read_text()


def test_without_decisions_retrain_reproduces_the_runs_final_accuracy(run_dir):
    evaluation = retrain(run_dir)
    assert evaluation["accuracy"] == evaluation["before"]["accuracy"]  # same data, seed and eval set


def test_an_unfinished_run_is_retrained_on_its_data_so_far(run_dir):
    for name in ("summary.json", "data.jsonl"):
        (run_dir / name).unlink()
    shutil.rmtree(run_dir / "rounds" / "002")
    metrics = json.loads((run_dir / "rounds" / "001" / "metrics.json").read_text())

    evaluation = retrain(run_dir)
    assert evaluation["train_size"] == metrics["train_size"] + metrics["added"]
    assert evaluation["before"]["accuracy"] == metrics["test_accuracy"]


def test_a_folder_without_a_config_or_without_data_cannot_be_retrained(run_dir, tmp_path):
    (run_dir / "config.yaml").unlink()
    with pytest.raises(ConfigError, match="no config.yaml"):
        retrain(run_dir)
    with pytest.raises(ConfigError, match="not a run directory"):
        retrain(tmp_path / "nothing-here")
    empty = tmp_path / "empty-run"
    (empty / "rounds").mkdir(parents=True)
    shutil.copy(run_dir.parent / "llm2llm-trec6" / "summary.json", empty / "summary.json")
    with pytest.raises(DataError, match="no data yet"):
        curated_data(empty)

"""LLM2LLM end to end: the real embedded teacher, a really fine-tuned MiniLM student, 2 rounds, tiny sizes."""

from __future__ import annotations

import json

import pytest
import yaml

from llmaug.cli import main
from llmaug.data import load_bundled, sample_per_class, save_examples
from llmaug.students import Student
from llmaug.teachers.embedded import EmbeddedBackend

pytestmark = pytest.mark.slow


def test_llm2llm_cli_run_with_embedded_teacher_and_finetuned_student(tmp_path, capsys):
    seed = sample_per_class(load_bundled("trec6"), 3, seed=0)
    test = sample_per_class(load_bundled("trec6", "test"), 5, seed=0)
    save_examples(seed, tmp_path / "seed.jsonl")
    save_examples(test, tmp_path / "test.csv")
    config = {
        "train": str(tmp_path / "seed.jsonl"), "eval": str(tmp_path / "test.csv"), "rounds": 2,
        "student": "finetune", "student_options": {"epochs": 3}, "task": "question classification",
        "unit": "question", "cv_folds": 3, "method_options": {"max_tokens": 40},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    main(["run", "--config", str(tmp_path / "run.yaml"), "--out", str(out)])  # raises SystemExit on failure

    rounds = [json.loads((out / "rounds" / f"{k:03d}" / "metrics.json").read_text()) for k in range(3)]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert rounds[0]["teacher_requests"] >= rounds[0]["pool_errors"] > 0  # the teacher was really asked
    assert all(r["test_accuracy"] is not None for r in rounds)

    summary = json.loads((out / "summary.json").read_text())
    chosen = summary["chosen_round"]
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    assert len(rows) == rounds[chosen]["train_size"]  # the data of the round the run kept
    assert summary["verdict"]["on"] == "eval" and summary["verdict"]["final_round"] == chosen
    assert summary["selection"]["rule"] == "best-cv" and len(summary["selection"]["scores"]) == 3
    seed_ids = {e.id for e in seed}
    synthetic = [json.loads(line) for k in range(2) for line in (out / "rounds" / f"{k:03d}" / "added.jsonl").read_text().splitlines()]
    assert synthetic
    for row in synthetic:
        p = row["provenance"]
        assert p["teacher"] == EmbeddedBackend().identity and p["parent_ids"][0] in seed_ids
        assert p["raw_output"] and p["prompt"].startswith("llm2llm-")
    rejected = [json.loads(line) for k in range(2) for line in (out / "rounds" / f"{k:03d}" / "rejected.jsonl").read_text().splitlines()]
    assert all(r["reason"] for r in rejected)
    assert sum(r["added"] + r["rejected"] for r in rounds) >= rounds[0]["pool_errors"]

    report = (out / "report.md").read_text()
    assert "| round | train size | seed errors |" in report and "plots/test_accuracy.png" in report
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 4

    student = Student.load(out / "student")
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(out / "student"))
    assert classify("Where is the Eiffel Tower ?")[0]["label"] in student.labels
    assert "round" in capsys.readouterr().out

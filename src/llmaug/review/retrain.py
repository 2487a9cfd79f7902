"""Retrain a run's student on its curated data (review decisions applied), into RUN_DIR/reviewed/ only:

    reviewed/student/          the student, trained from scratch with the run's seed
    reviewed/data.jsonl        the curated dataset it was trained on
    reviewed/evaluation.json   accuracy, macro-F1, per-class scores on the run's eval set, and the run's own
                               final scores beside them ("before" review)
    reviewed/report.md/.html   the before/after table

The run's own files are never written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from llmaug.atomic import atomic_dir, write_json_atomic
from llmaug.data.example import Example
from llmaug.data.io import save_examples
from llmaug.errors import ConfigError, DataError
from llmaug.decisions import apply_decisions, load_decisions
from llmaug.review.rundata import REVIEWED_DIR, current_examples, is_run_dir, read_json, round_facts


@dataclass
class Curated:
    kept: list[Example]
    reviewed_out: list[Example]
    relabelled: int
    decisions: int


def make_run_student(run_dir: str | Path):
    """A fresh, untrained student as the run's config.yaml describes it, built as the run built its own."""
    from llmaug.session import configured_student

    return configured_student(run_config(run_dir))()


def run_config(run_dir: str | Path):
    from llmaug.config import load_config

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError("not a run directory llmaug can retrain (no config.yaml)", run_dir)
    return load_config(path, {})


def run_eval_set(config) -> list[Example] | None:
    """The run's eval set, loaded and capped exactly as the run loaded it."""
    from llmaug.session import load_run_data

    return load_run_data(config)[1]


def curated_data(run_dir: str | Path) -> Curated:
    """The run's data as it stands, with the review decisions applied."""
    examples = current_examples(run_dir)
    if not examples:
        raise DataError("the run has no data yet (no data.jsonl and no finished round)", run_dir)
    decisions = load_decisions(run_dir)
    kept, out = apply_decisions(examples, decisions)
    labels = {e.id: e.label for e in examples}
    relabelled = sum(e.label != labels[e.id] for e in kept)
    return Curated(kept, out, relabelled, len(decisions))


def retrain(run_dir: str | Path, console: Console | None = None) -> dict:
    """Train the run's student on the curated data and evaluate it; returns what evaluation.json holds."""
    from llmaug.data import check_trainable
    from llmaug.report import write_review_report
    from llmaug.rundir import claim_run_dir
    from llmaug.students import evaluate

    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise ConfigError("not a run directory", run_dir)
    console = console or Console(stderr=True)
    config = run_config(run_dir)
    curated = curated_data(run_dir)
    check_trainable(curated.kept, str(run_dir / "review.jsonl"))
    test = run_eval_set(config)
    started = time.perf_counter()
    folder = run_dir / REVIEWED_DIR
    with claim_run_dir(folder):  # one retrain at a time; the run's own lock is not taken (it may be running)
        console.print(f"training {config.student} on {len(curated.kept)} curated examples "
                      f"({len(curated.reviewed_out)} reviewed out, {curated.relabelled} relabelled)")
        student = make_run_student(run_dir).fit(curated.kept, seed=config.seed)
        metrics = evaluate(student, test)[0] if test else None
        with atomic_dir(folder / "student") as staging:
            student.save(staging)
        save_examples(curated.kept, folder / "data.jsonl")
        evaluation = _evaluation(run_dir, config, curated, metrics, time.perf_counter() - started)
        write_json_atomic(folder / "evaluation.json", evaluation)
        write_review_report(run_dir, evaluation)
    return evaluation


def _evaluation(run_dir: Path, config, curated: Curated, metrics, seconds: float) -> dict:
    return {
        "student": config.student,
        "train_size": len(curated.kept),
        "reviewed_out": len(curated.reviewed_out),
        "relabelled": curated.relabelled,
        "decisions": curated.decisions,
        "accuracy": metrics.accuracy if metrics else None,
        "macro_f1": metrics.macro_f1 if metrics else None,
        "test": metrics.model_dump() if metrics else None,
        "before": run_scores(run_dir),
        "seconds": round(seconds, 2),
    }


def run_scores(run_dir: Path) -> dict | None:
    """The run's own final scores on its eval set (summary.json, else its last round)."""
    summary = read_json(run_dir / "summary.json") or {}
    test = summary.get("test")
    if test:
        return {"accuracy": test.get("accuracy"), "macro_f1": test.get("macro_f1"),
                "train_size": summary.get("final_size")}
    rounds = round_facts(run_dir, summary or None)
    if rounds and rounds[-1].get("test_accuracy") is not None:
        last = rounds[-1]
        return {"accuracy": last["test_accuracy"], "macro_f1": last.get("test_macro_f1"), "train_size": last.get("train_size")}
    return None

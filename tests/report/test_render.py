"""What the report says: the fields newer runs record (verdict, round selection, stop reason, CV accuracy and
intervals) from summary.json, cost as n/a without a price, the stop reason of a budget-limited run, parent texts,
raw and parsed rejected outputs, before/after review, and HTML with no Markdown syntax left in it."""

from __future__ import annotations

import io
import itertools
import json
import re

import pytest
import yaml
from rich.console import Console

from llmaug.data import Example, Provenance
from llmaug.data.io import example_rows
from llmaug.methods.baselines import Paraphrase
from llmaug.report import write_report_for_run_dir
from llmaug.report.facts import rejected_sample
from llmaug.config import validate_config
from llmaug.runner import run
from llmaug.teachers import Budget, Price, Teacher
from llmaug.teachers.function import FunctionBackend

SEEDS = [("Where is Kyoto ?", "LOC"), ("Where is Oslo ?", "LOC"), ("How tall is Everest ?", "NUM"),
         ("How many legs does a spider have ?", "NUM")]
VERDICT = {
    "on": "eval", "outcome": "no detectable change", "delta_accuracy": 0.008, "ci95": [-0.02, 0.036],
    "delta_macro_f1": 0.011, "ci95_macro_f1": [-0.03, 0.05], "mcnemar_p": 0.62, "baseline_round": 0, "final_round": 2,
    "per_class_f1": {"LOC": {"before": 0.5, "after": 0.55, "delta": 0.05}, "NUM": {"before": 0.6, "after": 0.58, "delta": -0.02}},
}


def seed_set() -> list[Example]:
    return [Example.create(text, label) for text, label in SEEDS]


def counting_teacher(**options) -> Teacher:
    counter = itertools.count()
    return Teacher(FunctionBackend(lambda request: f"Which new question number {next(counter)} is this ?"), **options)


def quiet() -> Console:
    return Console(file=io.StringIO())


def finished(out, config: dict | None = None, **teacher_options):
    if config is not None:
        out.mkdir(parents=True, exist_ok=True)
    run(Paraphrase(per_example=2), seed_set(), teacher=counting_teacher(**teacher_options), student="tfidf",
        eval=seed_set(), out=out, console=quiet(), select="last",
        config=validate_config(config) if config is not None else None)
    return (out / "report.md").read_text(), (out / "report.html").read_text()


def round_rows(markdown: str) -> list[list[str]]:
    table = markdown.split("## Rounds")[1].split("\n## ")[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.strip().splitlines()[2:]]


def test_cost_is_n_a_when_no_price_was_given_and_dollars_when_one_was(tmp_path):
    without, _ = finished(tmp_path / "free", config={"method": "paraphrase", "price": None})
    assert {row[-1] for row in round_rows(without)} == {"n/a"}

    priced, _ = finished(tmp_path / "priced", config={"method": "paraphrase", "price": {"prompt": 1.0, "completion": 2.0}},
                         price=Price(prompt=1.0, completion=2.0))
    costs = [row[-1] for row in round_rows(priced)]
    assert costs[0] != "n/a" and float(costs[0]) > 0


def test_a_run_stopped_by_its_teacher_budget_says_so(tmp_path):
    markdown, html = finished(tmp_path / "run", config={"method": "paraphrase", "max_teacher_calls": 3},
                              budget=Budget(max_calls=3))
    stopped = "stopped: teacher budget reached (3 of 8 requests (max_teacher_calls 3))"
    assert f"> {stopped}" in markdown
    assert f'<p class="note">{stopped}</p>' in html


def test_the_html_has_code_spans_and_lists_and_no_markdown_syntax_left(tmp_path):
    _, html = finished(tmp_path / "run")
    text = re.sub(r"<[^>]+>", "", html.split("<body>")[1])
    assert "`" not in text and "![" not in text and "| " not in text and "\n- " not in text
    assert "<li>teacher: <code>function:scripted</code></li>" in html and "<ul>" in html


def test_added_rows_show_their_parent_text(tmp_path):
    markdown, _ = finished(tmp_path / "run")
    sample = markdown.split("## Sample of added examples")[1].strip().splitlines()[2:]
    parents = {text for text, _ in SEEDS}
    assert sample and all(line.split(" | ")[2] in parents for line in sample)


def test_the_rejected_sample_shows_raw_output_and_parsed_text_one_reason_of_each_kind_first(tmp_path):
    folder = tmp_path / "rounds" / "000"
    folder.mkdir(parents=True)
    rows = [{"text": "", "raw_output": "<<garbage>>", "reason": "unparseable"}] * 5 + [
        {"text": "Where is Oslo ?", "raw_output": "1. Where is Oslo ?\n2. And Bergen ?", "reason": "exact duplicate"},
        {"text": "Where is Oslo", "raw_output": "Sure! Where is Oslo", "reason": "not a question"}]
    (folder / "rejected.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))

    sample = rejected_sample(tmp_path, limit=4)
    assert [row.reason for row in sample] == ["unparseable", "exact duplicate", "not a question", "unparseable"]
    assert (sample[1].raw_output, sample[1].text) == ("1. Where is Oslo ?\n2. And Bergen ?", "Where is Oslo ?")


# ------------------------------------------------------------------ a run directory with newer summary.json fields


@pytest.fixture
def newer_run(tmp_path):
    """A run directory as runs with issue #13's fields will look: CV accuracy and intervals, verdict, selection,
    stop reason, costs of null (no price)."""
    out = tmp_path / "run"
    seeds = seed_set()
    child = Example.create("Where is Bergen ?", "LOC", provenance=Provenance(
        origin="synthetic", method="llm2llm", round=0, parent_ids=[seeds[0].id], teacher="openai:gpt-4o-mini",
        raw_output="Where is Bergen ?"))
    (out / "rounds" / "000").mkdir(parents=True)
    (out / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in example_rows([*seeds, child])))
    (out / "rounds" / "000" / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in example_rows(seeds)))
    (out / "rounds" / "000" / "added.jsonl").write_text(json.dumps(example_rows([child])[0]) + "\n")
    (out / "config.yaml").write_text(yaml.safe_dump({"method": "llm2llm", "student": "tfidf", "teacher": "openai:gpt-4o-mini"}))
    rounds = [{"round": k, "train_size": 4 + k, "pool_errors": 2 - k, "added": 1 - k, "rejected": 0,
               "test_accuracy": 0.700 + 0.004 * k, "test_accuracy_ci95": [0.65 + 0.004 * k, 0.75 + 0.004 * k],
               "cv_accuracy": 0.6 + 0.05 * k, "cv_accuracy_ci95": [0.5, 0.7 + 0.05 * k], "test_macro_f1": 0.6,
               "teacher_requests": 2, "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": None,
               "rejection_reasons": {}} for k in range(2)]
    (out / "summary.json").write_text(json.dumps({
        "method": "llm2llm", "options": {"rounds": 1}, "rounds": rounds, "final_size": 5, "added": 1,
        "test": None, "seconds": 1.0, "verdict": VERDICT,
        "selection": {"chosen_round": 1, "rule": "best-cv", "reason": "highest CV accuracy"},
        "stopped": {"reason": "teacher budget reached", "detail": "120 of 120 requests"},
    }))
    return out


def test_verdict_selection_stop_reason_and_intervals_come_from_summary_json(newer_run):
    write_report_for_run_dir(newer_run)
    markdown = (newer_run / "report.md").read_text()

    assert "> stopped: teacher budget reached (120 of 120 requests)" in markdown
    assert "> kept round 1 (best-cv): highest CV accuracy" in markdown
    assert "> no detectable change: round 0 → round 2 on the eval set" in markdown
    assert "| accuracy | +0.0080 | [-0.0200, 0.0360] |" in markdown
    assert "| macro-F1 | +0.0110 | [-0.0300, 0.0500] |" in markdown and "McNemar p = 0.620" in markdown
    assert "| NUM | 0.600 | 0.580 | -0.0200 |" in markdown
    header = markdown.split("## Rounds")[1].strip().splitlines()[0]
    assert "| test accuracy | CV accuracy |" in header
    assert round_rows(markdown)[1][5:7] == ["0.7040 [0.6540, 0.7540]", "0.6500 [0.5000, 0.7500]"]
    assert {row[-1] for row in round_rows(markdown)} == {"n/a"}
    assert "| LOC | Where is Bergen ? | Where is Kyoto ? | 0 |" in markdown


def test_a_retrained_run_shows_before_and_after_review(newer_run):
    (newer_run / "reviewed").mkdir()
    (newer_run / "reviewed" / "evaluation.json").write_text(json.dumps({
        "accuracy": 0.75, "macro_f1": 0.7, "train_size": 4, "reviewed_out": 1, "relabelled": 0, "decisions": 1,
        "before": {"accuracy": 0.704, "macro_f1": 0.6, "train_size": 5}}))
    write_report_for_run_dir(newer_run)
    markdown = (newer_run / "report.md").read_text()
    assert "| test accuracy | 0.7040 | 0.7500 | +0.0460 |" in markdown
    assert "| training examples | 5 | 4 | |" in markdown

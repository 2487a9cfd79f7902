"""`llmaug bench` end to end on a tiny grid (pool teacher, tf-idf student), resuming, budget matching, report."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import yaml

from llmaug.bench.grid import load_grid
from llmaug.bench.report import build_report
from llmaug.bench.results import read_rows
from llmaug.bench.run import run_bench
from llmaug.cli import main
from llmaug.data import load_bundled
from llmaug.errors import ConfigError

LABELS = ("LOC", "NUM", "HUM")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A folder `tiny` with 14 train and 5 test rows for each of three TREC labels."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "tiny"
    folder.mkdir()
    rng = random.Random(0)
    for split, per_label in (("train", 14), ("test", 5)):
        rows = load_bundled("trec6", split)
        chosen = []
        for label in LABELS:
            group = [r for r in rows if r.label == label]
            chosen += rng.sample(group, per_label)
        (folder / f"{split}.jsonl").write_text("".join(json.dumps({"text": r.text, "label": r.label}) + "\n" for r in chosen))
    return root


def grid_file(tmp_path, **changes) -> str:
    grid = {
        "name": "tiny",
        "title": "Tiny grid",
        "defaults": {"student": "tfidf"},
        "datasets": [{"name": "tiny", "path": "{data_root}/tiny"}],
        "settings": [{"name": "3/class", "per_class": 3}],
        "seeds": [0],
        "arms": [
            {"name": "none", "method": "none"},
            {"name": "oracle-llm2llm", "method": "llm2llm", "teacher": "pool:similar", "rounds": 2,
             "teacher_options": {"encoder": "tfidf"}, "cv_folds": 3},
            {"name": "oracle-random", "method": "paraphrase", "teacher": "pool:random", "match_added": "oracle-llm2llm"},
        ],
        "reported": [{"dataset": "tiny", "arm": "none", "accuracy": 50.0, "source": "a paper"}],
    }
    grid.update(changes)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return str(path)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_root):
    """The tiny grid, run once: (grid file, results folder, outcome)."""
    tmp = tmp_path_factory.mktemp("bench")
    grid = grid_file(tmp)
    results = tmp / "results"
    outcome = run_bench(grid, data_root=data_root, results=results)
    return grid, results, outcome


def test_a_tiny_grid_writes_csv_markdown_and_a_plot(finished):
    _, results, outcome = finished
    assert outcome.failed == [] and len(outcome.ran) == 3
    rows = read_rows(results / "bench_tiny.csv")
    assert [r["arm"] for r in rows] == ["none", "oracle-llm2llm", "oracle-random"]
    assert all(0 <= float(r["test_accuracy"]) <= 1 for r in rows)
    assert rows[0]["teacher_calls"] == "0" and int(rows[1]["teacher_calls"]) > 0 and int(rows[1]["added"]) > 0
    assert read_rows(results / "bench_tiny_rounds.csv")
    page = (results / "bench_tiny.md").read_text()
    assert "| 3/class | none |" in page and "50 (a paper)" in page
    oracle_rows = [line for line in page.splitlines() if "pool:" in line and line.startswith("|")]
    assert len(oracle_rows) == 2 and all("oracle" in line.split("|")[2] for line in oracle_rows)
    assert "![tiny: test accuracy against teacher calls](bench_tiny_tiny.png)" in page
    assert (results / "bench_tiny_tiny.png").stat().st_size > 1000


def test_the_random_arm_gets_as_many_calls_as_the_targeted_arm_added_rows(finished):
    _, results, _ = finished
    targeted, random_arm = read_rows(results / "bench_tiny.csv")[1:]
    assert random_arm["teacher_calls"] == targeted["added"]


def test_rerunning_recomputes_nothing(finished, data_root, monkeypatch):
    grid, results, _ = finished
    before = (results / "bench_tiny.csv").read_text()

    def no_runs(*args, **kwargs):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr("llmaug.session.start_run", no_runs)
    outcome = run_bench(grid, data_root=data_root, results=results)
    assert outcome.ran == [] and len(outcome.reused) == 3
    assert (results / "bench_tiny.csv").read_text() == before


def test_an_interrupted_cell_resumes_to_the_same_result(finished, data_root):
    grid, results, _ = finished
    rows = read_rows(results / "bench_tiny.csv")
    targeted = rows[1]
    (results / "bench_tiny.csv").unlink()
    summary = Path(targeted["run_dir"]) / "summary.json"
    summary.unlink()
    outcome = run_bench(grid, data_root=data_root, results=results)
    assert outcome.ran == ["tiny / 3/class / seed 0 / oracle-llm2llm"]
    again = read_rows(results / "bench_tiny.csv")[1]
    assert summary.is_file() and again["resumed"] == "True"
    for field in ("test_accuracy", "added", "teacher_calls", "final_size"):
        assert again[field] == targeted[field]


def test_report_assembles_every_section_in_a_stable_order(finished, tmp_path):
    _, results, _ = finished
    (results / "zeta_topic.md").write_text("# Zeta\n\n![curve](zeta.png)\n```\n# not a heading\n```\n")
    (results / "alpha.md").write_text("# Alpha\n\nText.\n")
    out = build_report(results, tmp_path / "BENCHMARKS.md")
    text = out.read_text()
    assert text.index("## Tiny grid") < text.index("## Alpha") < text.index("## Zeta")
    relative = os.path.relpath(results, tmp_path)
    assert f"![curve]({relative}/zeta.png)" in text and f"]({relative}/bench_tiny_tiny.png)" in text
    assert "\n# not a heading\n" in text and "### tiny" in text


def test_grid_mistakes_are_one_line_config_errors(tmp_path, data_root):
    with pytest.raises(ConfigError, match="data-root"):
        load_grid(grid_file(tmp_path))
    bad_arm = [{"name": "x", "method": "llm2llm", "roundz": 2}]
    with pytest.raises(ConfigError, match="'roundz' is not an arm setting"):
        load_grid(grid_file(tmp_path, arms=bad_arm), data_root)
    later = [{"name": "a", "method": "paraphrase", "match_calls": "b"}, {"name": "b", "method": "llm2llm"}]
    with pytest.raises(ConfigError, match="listed before it"):
        load_grid(grid_file(tmp_path, arms=later), data_root)


def test_unreadable_grid_files_are_errors_that_name_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match="grid file not found") as missing:
        load_grid(tmp_path / "no.yaml")
    assert str(tmp_path / "no.yaml") in str(missing.value)
    with pytest.raises(ConfigError, match="is a folder, not a grid file"):
        load_grid(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\narms: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML") as bad:
        load_grid(broken)
    assert f"{broken}:3:1" in str(bad.value)


def test_cli_needs_a_grid_or_report(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench"])
    assert exit_info.value.code == 2
    assert "give a grid file" in capsys.readouterr().err

"""Fold students as Ray tasks: the same held-out predictions as the sequential path, through the evaluator and
through `llmaug run --ray` (a bare `--ray` starting its own local Ray in a fresh process)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from llmaug.data import load_bundled
from llmaug.data.sampling import sample_per_class
from llmaug.distributed.training import RayFitRunner
from llmaug.evaluation import Evaluator, FitJob, FoldTask
from llmaug.students import make_student
from llmaug.testing.scripted import cli_exit_code, run_cli

pytestmark = pytest.mark.ray


tfidf = functools.partial(make_student, "tfidf")  # pickles by reference: test modules do not import on workers


def test_ray_folds_judge_the_seed_rows_as_sequential_folds_do(ray_cluster):
    seed = sample_per_class(load_bundled("trec6"), 6, seed=0)
    sequential = Evaluator(tfidf, seed=0, test=None).evaluate(seed, 0, seed, held_out_errors=True)
    on_ray = Evaluator(tfidf, seed=0, test=None, fit_runner=RayFitRunner()).evaluate(seed, 0, seed, held_out_errors=True)
    assert on_ray.held_out == sequential.held_out and len(sequential.held_out.judged) == len(seed)
    assert [(c.example.id, c.predicted) for c in on_ray.errors] == [(c.example.id, c.predicted) for c in sequential.errors]
    assert 0 < len(sequential.errors) < len(seed)


def test_a_fold_students_own_error_comes_back_as_it_is(ray_cluster):
    one_label = [e for e in sample_per_class(load_bundled("trec6"), 3, seed=0) if e.label == "LOC"]
    with pytest.raises(Exception, match="at least two labels"):
        RayFitRunner()(FoldTask(tfidf, 0), [FitJob(one_label, one_label)])


RUN = ["run", "--method", "llm2llm", "--dataset", "trec6", "--fraction", "0.01", "--max-eval", "60", "--student",
       "tfidf", "--teacher", "pool:trec6:similar", "--teacher-option", "encoder=tfidf", "--rounds", "2", "--no-cache"]


def test_llmaug_run_with_a_bare_ray_flag_starts_a_local_ray_and_makes_the_sequential_run(ray_cluster, tmp_path):
    assert cli_exit_code([*RUN, "--out", str(tmp_path / "sequential")]) == 0
    done = run_cli(*RUN, "--out", str(tmp_path / "ray"), "--ray", env={"RAY_ADDRESS": ""}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    compared = ["data.jsonl", *(str(p.relative_to(tmp_path / "sequential")) for p in
                                (tmp_path / "sequential").glob("rounds/*/*") if p.suffix in (".json", ".jsonl"))]
    assert any(name.endswith("evaluation.json") for name in compared)
    for name in compared:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "sequential" / name).read_bytes(), name
    assert "ray: auto" in (tmp_path / "ray" / "config.yaml").read_text()
    assert summary_rounds(tmp_path / "ray") == summary_rounds(tmp_path / "sequential")


def summary_rounds(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "summary.json").read_text())["rounds"]

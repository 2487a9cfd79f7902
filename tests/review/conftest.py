"""Run directories for the review tests: the real LLM2LLM run (shared, and copied for tests that change it), a
synthetic 100k-row run, and servers over them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmaug.decisions import append_decisions, decide, load_decisions, review_state
from llmaug.review.rundata import ACCEPTED, RunData
from llmaug.review.sample_run import write_sample_run

from .helpers import make_llm2llm_run, serve


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """The LLM2LLM run, shared: tests that change it work on `run_dir`, a copy."""
    return make_llm2llm_run(tmp_path_factory.mktemp("review") / "llm2llm-trec6")


@pytest.fixture
def run_dir(finished_run, tmp_path) -> Path:
    copy = tmp_path / "llm2llm-trec6"
    shutil.copytree(finished_run, copy, ignore=shutil.ignore_patterns(".lock"))
    return copy


@pytest.fixture(scope="session")
def big_run(tmp_path_factory) -> Path:
    """A synthetic finished run of 100k teacher outputs (about 80k accepted, 20k rejected) over 5 rounds."""
    return write_sample_run(tmp_path_factory.mktemp("review-big") / "big", rows=100_000)


@pytest.fixture
def decide_on():
    """`decide_on(run_dir, action, count, label=None)`: `action` on the first `count` accepted rows without a decision
    yet, written to review.jsonl; returns their ids."""
    def decide_on(run_dir: Path, action: str, count: int, label: str | None = None) -> list[str]:
        run = RunData(run_dir)
        review = review_state(load_decisions(run_dir), {row.id: row.label for row in run.rows})
        rows = [row for row in run.rows if row.kind == ACCEPTED and row.id not in review.states][:count]
        append_decisions(run_dir, decide(review, action, [row.id for row in rows], {row.id: row.label for row in rows}, label))
        return [row.id for row in rows]

    return decide_on


@pytest.fixture
def served(run_dir):
    handle = serve(run_dir)
    yield handle
    handle.server.stop()


@pytest.fixture(scope="module")
def served_big(big_run):
    handle = serve(big_run)
    yield handle
    handle.server.stop()

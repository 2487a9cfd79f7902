"""Fixtures for the reliability suites: one scripted loopback teacher per module, and runs of the real CLI."""

from __future__ import annotations

import pytest

from llmaug.testing.fake_openai import FakeOpenAIServer, FaultPlan
from llmaug.testing.scripted import question_responder, run_cli, run_settings, write_settings


@pytest.fixture(scope="module")
def teacher_server():
    """A scripted teacher on 127.0.0.1; a test sets its `faults` and calls `reset_log()` as it needs."""
    with FakeOpenAIServer(question_responder, latency=(0.0, 0.02)) as server:
        yield server


@pytest.fixture
def llmaug_run(tmp_path, teacher_server):
    """`llmaug_run(name, faults=None, **settings)`: the real CLI in a subprocess on a fresh run directory, against
    the module's server with `faults`; returns (CliResult, run dir)."""

    def start(name: str, faults: FaultPlan | None = None, **settings):
        teacher_server.faults = faults or FaultPlan()
        teacher_server.reset_log()
        config = write_settings(tmp_path / f"{name}.yaml", run_settings(teacher_server, **settings))
        out = tmp_path / name
        return run_cli("run", "--config", str(config), "--out", str(out)), out

    return start

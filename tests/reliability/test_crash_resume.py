"""kill -9 a real `llmaug run` at 20 seeded points across generation, filtering, training, file writes and the
report, `--resume` each time, and compare the finished run with an uninterrupted one.

See `llmaug.testing.crash` for how each stage is reached. "No teacher call is repeated" is checked on the server:
after each kill, the run's cache is read, and no later request may ask for an answer it already held (a request in
flight at the kill was never answered into the cache, so sending it again is not a repeat).
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from llmaug.rundir import claim_run_dir
from llmaug.testing.crash import (
    STAGES, KillPoint, KillSwitch, kill_plan, partial_files, repeated_calls, run_until_killed, temporary_files,
)
from llmaug.testing.fake_openai import FakeOpenAIServer
from llmaug.testing.scripted import run_cli, run_fingerprint, run_settings, start_cli, write_settings

SEED = 7
CHAINS, PER_CHAIN = 5, 4
SETTINGS = dict(rounds=3)


@pytest.fixture(scope="module")
def switch():
    return KillSwitch()


@pytest.fixture(scope="module")
def server(switch):
    with FakeOpenAIServer(switch, latency=(0.0, 0.01)) as server:
        yield server


@pytest.fixture(scope="module")
def reference(tmp_path_factory, server, switch):
    """An uninterrupted run: its files, how many requests it made, and how long its report took."""
    folder = tmp_path_factory.mktemp("reference")
    config = write_settings(folder / "run.yaml", run_settings(server, **SETTINGS))
    server.reset_log()
    switch.reset()
    result = run_cli("run", "--config", str(config), "--out", str(folder / "run"))
    assert result.returncode == 0, result.stderr[-2000:]
    out = folder / "run"
    report_seconds = ((out / "summary.json").stat().st_mtime_ns - (out / "usage.json").stat().st_mtime_ns) / 1e9
    return {"fingerprint": run_fingerprint(out), "requests": server.requests, "report_seconds": report_seconds,
            "config": config}


@pytest.fixture(scope="module")
def plan(reference):
    return kill_plan(SEED, CHAINS, PER_CHAIN, reference["requests"], SETTINGS["rounds"], reference["report_seconds"])


def test_the_plan_has_at_least_20_points_spread_over_every_stage(plan):
    stages = Counter(point.stage for chain in plan for point in chain)
    assert sum(stages.values()) >= 20
    assert set(stages) == set(STAGES) and min(stages.values()) >= 4


@pytest.mark.parametrize("chain", range(CHAINS))
def test_killed_and_resumed_runs_finish_as_if_never_interrupted(chain, plan, reference, server, switch, tmp_path):
    out = tmp_path / "run"
    first = ["run", "--config", str(reference["config"]), "--out", str(out)]
    resume = ["run", "--resume", str(out)]
    server.reset_log()
    switch.reset()
    outcomes = []
    for i, point in enumerate(plan[chain]):
        outcome = run_until_killed(first if i == 0 else resume, point, out, server, switch)
        assert outcome.reached, f"the run finished before {point}"
        assert outcome.partial_files == [], f"torn files after the kill at {point}"
        outcomes.append(outcome)

    result = run_cli(*resume)

    assert result.returncode == 0, result.stderr[-2000:]
    assert run_fingerprint(out) == reference["fingerprint"]
    assert temporary_files(out) == [] and partial_files(out) == []
    assert repeated_calls(outcomes, server) == []


def test_resuming_a_finished_run_calls_no_teacher_and_changes_nothing(reference, server, switch, tmp_path):
    out = tmp_path / "run"
    assert run_cli("run", "--config", str(reference["config"]), "--out", str(out)).returncode == 0
    server.reset_log()

    result = run_cli("run", "--resume", str(out))

    assert result.returncode == 0, result.stderr[-2000:]
    assert server.requests == 0
    assert run_fingerprint(out) == reference["fingerprint"]


def test_a_moved_run_directory_resumes_in_its_new_place(reference, server, switch, tmp_path):
    first = tmp_path / "first"
    server.reset_log()
    switch.reset()
    point = KillPoint("generation", request=reference["requests"] // 3)
    outcome = run_until_killed(["run", "--config", str(reference["config"]), "--out", str(first)], point, first,
                               server, switch)
    assert outcome.reached
    moved = first.rename(tmp_path / "moved")

    result = run_cli("run", "--resume", str(moved))

    assert result.returncode == 0, result.stderr[-2000:]
    assert run_fingerprint(moved) == reference["fingerprint"]
    assert not first.exists()
    assert repeated_calls([outcome], server) == []


def test_ctrl_c_stops_sending_at_once_and_the_run_resumes(reference, server, switch, tmp_path):
    out = tmp_path / "run"
    server.reset_log()
    switch.reset()
    process = start_cli("run", "--config", str(reference["config"]), "--out", str(out))
    wait_for(lambda: server.requests >= reference["requests"] // 2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr[-2000:]
    assert "--resume" in stderr and "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    result = run_cli("run", "--resume", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert run_fingerprint(out) == reference["fingerprint"]


def test_a_second_process_in_the_same_run_directory_is_refused(reference, tmp_path):
    out = tmp_path / "run"
    with claim_run_dir(out):  # as a running llmaug process holds it
        second = run_cli("run", "--config", str(reference["config"]), "--out", str(out))

    assert second.returncode == 2
    assert second.stderr.strip().startswith("error:") and "another llmaug process" in second.stderr
    assert sorted(path.name for path in out.iterdir()) == []  # the refused run wrote nothing; the holder's lock is gone


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_run_killed_under_a_call_budget_resumes_to_the_same_end_within_that_budget(reference, server, switch, tmp_path):
    budget = reference["requests"] // 2
    config = write_settings(tmp_path / "budget.yaml", {**run_settings(server, **SETTINGS), "max_teacher_calls": budget})
    uninterrupted = tmp_path / "uninterrupted"
    assert run_cli("run", "--config", str(config), "--out", str(uninterrupted)).returncode == 0
    out = tmp_path / "run"
    server.reset_log()
    switch.reset()
    outcome = run_until_killed(["run", "--config", str(config), "--out", str(out)],
                               KillPoint("generation", request=budget // 2), out, server, switch)
    assert outcome.reached

    result = run_cli("run", "--resume", str(out))

    assert result.returncode == 0, result.stderr[-2000:]
    in_flight = run_settings(server)["teacher_options"]["concurrency"]  # unanswered at the kill: sent again
    assert budget < server.requests <= budget + in_flight
    assert run_fingerprint(out) == run_fingerprint(uninterrupted)

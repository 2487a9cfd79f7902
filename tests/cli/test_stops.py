"""Budgets and failures that say so, through the real CLI against the loopback server: a budget stop in the
summary line, summary.json and the report; a round whose requests mostly failed stops the run with one line
(exit 2), keeps its directory, and `--resume` finishes it once the server is fixed."""

from __future__ import annotations

import json
import re

from llmaug.testing.fake_openai import FakeOpenAIServer, FaultPlan
from llmaug.testing.scripted import FAST_TEACHER_OPTIONS, MODEL, question_responder, run_settings, write_settings
from llmaug.testing.scripted import run_cli as cli_process


def settings_file(tmp_path, server, teacher_options=None, **overrides):
    settings = run_settings(server, **{"rounds": 2, **overrides})
    settings["teacher_options"].update(teacher_options or {})
    return str(write_settings(tmp_path / "run.yaml", settings))


def test_a_budget_stop_is_said_in_the_summary_line_summary_json_and_report(tmp_path, capsys, run_cli):
    out = tmp_path / "run"
    with FakeOpenAIServer(question_responder) as server:
        code = run_cli(["run", "--config", settings_file(tmp_path, server), "--max-teacher-calls", "10", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    stopped = summary["stopped"]
    assert stopped["reason"] == "teacher budget reached"
    assert stopped["detail"].startswith("10 of ") and stopped["detail"].endswith("requests (max_teacher_calls 10)")
    asked = int(stopped["detail"].split()[2])
    assert asked > 10
    rounds = summary["rounds"]
    assert sum(r["teacher_requests"] for r in rounds) == 10
    assert sum(r["skipped_requests"] for r in rounds) == asked - 10
    assert [r["stopped"] for r in rounds].count("teacher budget reached") == 1
    rejected = sum(1 for path in out.glob("rounds/*/rejected.jsonl") for _ in path.open())
    assert sum(r["rejected"] for r in rounds) == rejected  # skipped requests are not rejections
    assert f"stopped: teacher budget reached ({stopped['detail']})" in capsys.readouterr().out
    assert f"> stopped: teacher budget reached ({stopped['detail']})" in (out / "report.md").read_text()


def test_a_run_without_a_stop_says_nothing(tmp_path, run_cli):
    out = tmp_path / "run"
    with FakeOpenAIServer(question_responder) as server:
        assert run_cli(["run", "--config", settings_file(tmp_path, server, rounds=1), "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["stopped"] is None


def test_a_round_of_failed_requests_stops_with_one_line_and_resume_finishes_it(tmp_path):
    out = tmp_path / "run"
    failing = FaultPlan(server_error=1.0)
    with FakeOpenAIServer(question_responder, faults=failing) as server:
        config = settings_file(tmp_path, server, teacher_options={"max_retries": 0, "backoff": 0.01, "concurrency": 4})
        first = cli_process("run", "--config", config, "--out", str(out))
        assert first.returncode == 2
        lines = first.stderr.strip().splitlines()
        assert "Traceback" not in first.stderr and len(lines) <= 4  # a warning per kind of failure, then the error
        err = lines[-1]
        assert err.startswith(f"error: openai-compatible:{server.base_url}@{MODEL}: ")
        assert "teacher requests failed in round 0 (first: HTTP 50" in err and "--resume" in err
        assert (out / "config.yaml").exists() and (out / "rounds" / "000" / "evaluation.json").exists()
        assert not (out / "summary.json").exists()
        sent = server.requests

        server.faults = FaultPlan()  # the cause is fixed
        assert cli_process("run", "--resume", str(out)).returncode == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] is None and summary["added"] > 0
    assert server.requests > sent


def test_a_few_failures_do_not_stop_a_run(tmp_path, run_cli):
    out = tmp_path / "run"
    with FakeOpenAIServer(question_responder, faults=FaultPlan(server_error=0.2), seed=3) as server:
        config = settings_file(tmp_path, server, rounds=1, teacher_options={"max_retries": 0, "backoff": 0.01})
        assert run_cli(["run", "--config", config, "--out", str(out)]) == 0
    rounds = json.loads((out / "summary.json").read_text())["rounds"]
    assert rounds[0]["failed_requests"] > 0


def test_teachers_check_refuses_a_model_the_server_does_not_list(capsys, run_cli):
    with FakeOpenAIServer(known_models={"served-model"}) as server:
        assert run_cli(["teachers", "--check", f"openai-compatible:{server.base_url}@no-such-model"]) == 2
        assert server.requests == 0  # refused before any completion was paid for
    err = capsys.readouterr().err
    assert "does not serve model 'no-such-model'; it serves: served-model" in err


def test_teachers_check_names_the_path_tried_for_a_url_without_v1(capsys, run_cli):
    with FakeOpenAIServer() as server:
        root = server.base_url.removesuffix("/v1")
        assert run_cli(["teachers", "--check", f"openai-compatible:{root}@m"]) == 2
    err = capsys.readouterr().err
    assert f"GET {root}/models" in err and f"did you mean {root}/v1?" in err


def test_max_cost_stops_cleanly_once_the_teacher_cost_that_much(tmp_path, capsys, run_cli):
    out = tmp_path / "run"
    with FakeOpenAIServer(question_responder) as server:
        config = settings_file(tmp_path, server, price={"prompt": 100.0, "completion": 100.0})  # ~$0.005 a request
        assert run_cli(["run", "--config", config, "--max-cost", "0.05", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"]["reason"] == "teacher budget reached"
    assert re.search(r"^\d+ of \d+ requests \(max_cost \$0.05: \$0\.\d{4} spent\)$", summary["stopped"]["detail"])
    usage = json.loads((out / "usage.json").read_text())
    one_request = usage["cost_usd"] / usage["calls"]
    assert 0.05 <= usage["cost_usd"] < 0.05 + FAST_TEACHER_OPTIONS["concurrency"] * one_request  # stops after the one that reached it


def test_max_cost_without_a_price_is_refused(tmp_path, capsys, run_cli):
    with FakeOpenAIServer(question_responder) as server:
        assert run_cli(["run", "--config", settings_file(tmp_path, server), "--max-cost", "1", "--out", str(tmp_path / "r")]) == 2
    assert "--max-cost: needs a price" in capsys.readouterr().err

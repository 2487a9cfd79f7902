"""`llmaug run --batch` through the real CLI and the loopback Batch API: a run interrupted (Ctrl-C) while its batch
is pending records the batch in the run directory, and `--resume` picks that batch up instead of paying twice."""

from __future__ import annotations

import json
import signal
import time

from llmaug.testing.fake_openai import BatchPlan, FakeOpenAIServer
from llmaug.testing.scripted import question_responder, run_cli, run_settings, start_cli, write_settings


def settings(tmp_path, server) -> str:
    values = run_settings(server, rounds=1)
    values["teacher_options"].update(batch=True, batch_poll=0.05)
    return str(write_settings(tmp_path / "run.yaml", values))


def input_files(server) -> list[bytes]:
    return [server.files[batch["input_file_id"]]["content"] for batch in server.batches.values()]


def test_a_batch_run_completes_and_says_so_in_usage(tmp_path):
    out = tmp_path / "run"
    with FakeOpenAIServer(question_responder) as server:
        done = run_cli("run", "--config", settings(tmp_path, server), "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert server.requests == 0 and server.batches  # every answer came through the Batch API
    summary = json.loads((out / "summary.json").read_text())
    assert summary["added"] > 0
    assert sum(r["teacher_requests"] for r in summary["rounds"]) == server.batch_lines_run
    assert all(entry["status"] == "completed" for entry in json.loads((out / "batches.json").read_text()).values())


def test_ctrl_c_while_a_batch_is_pending_then_resume_picks_it_up(tmp_path):
    out = tmp_path / "run"
    with FakeOpenAIServer(question_responder, batch_plan=BatchPlan(seconds=5)) as server:
        process = start_cli("run", "--config", settings(tmp_path, server), "--out", str(out))
        deadline = time.monotonic() + 60
        while not (out / "batches.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "--resume" in stderr
        [entry] = json.loads((out / "batches.json").read_text()).values()
        assert entry["status"] == "pending" and entry["id"] == "batch_1"

        server.batch_plan = BatchPlan(seconds=0.2)  # the pending batch finishes on its own (5 s); later ones fast
        resumed = run_cli("run", "--resume", str(out))
        assert resumed.returncode == 0, resumed.stderr
        assert "picking up batch batch_1" in resumed.stderr
    files = input_files(server)
    assert len(files) == len(set(files))  # no batch of the same requests was made twice
    ledger = json.loads((out / "batches.json").read_text())
    assert all(entry["status"] == "completed" for entry in ledger.values()) and "batch_1" in {e["id"] for e in ledger.values()}
    assert (out / "summary.json").exists()

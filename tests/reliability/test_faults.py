"""Full LLM2LLM runs of the real CLI against a teacher server that injects faults, compared with fault-free runs.

Transport faults (429 with and without Retry-After, 500/502/503, resets mid-response, answers slower than the
client's timeout, truncated JSON, empty `choices`) must change nothing in the run directory but the usage counters.
Content faults (garbage, an off-set label, an empty string, a prompt-injection attempt) may only cost the rows the
teacher spoiled, each rejected with its reason.
"""

from __future__ import annotations

import json

from llmaug.testing.fake_openai import FaultPlan
from llmaug.testing.scripted import (
    completed_content_faults, question_responder, read_jsonl, request_rates_around_rate_limits, run_fingerprint,
)

RETRY_AFTER = 0.3
TRANSPORT = dict(
    server_error=0.10, rate_limit_retry_after=0.03, rate_limit=0.02, connection_reset=0.05, slow=0.05,
    truncated_json=0.03, empty_choices=0.02, retry_after=RETRY_AFTER, slow_seconds=3.0,
)
CONTENT = dict(garbage=0.04, off_label=0.02, empty_content=0.02, prompt_injection=0.02)
TRANSPORT_FAULTS = FaultPlan(**TRANSPORT)
FULL_MIX = FaultPlan(**TRANSPORT, **CONTENT)


def finished(result, out) -> None:
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "summary.json").exists()


def test_transport_faults_leave_every_output_identical_to_a_fault_free_run(llmaug_run, teacher_server):
    clean, clean_out = llmaug_run("clean", per_error=2)
    finished(clean, clean_out)
    clean_requests = teacher_server.requests

    faulty, faulty_out = llmaug_run("faulty", faults=TRANSPORT_FAULTS, per_error=2)
    finished(faulty, faulty_out)

    assert run_fingerprint(faulty_out) == run_fingerprint(clean_out)
    outcomes = teacher_server.outcomes
    assert outcomes["completed"] == clean_requests  # every request answered once, however often it was tried
    for outcome in ("rate_limited", "server_error", "reset", "client_gone", "truncated_json", "empty_choices"):
        assert outcomes[outcome] > 0, outcomes
    usage = json.loads((faulty_out / "usage.json").read_text())
    assert usage["failures"] == 0
    assert usage["retries"] == sum(outcomes.values()) - outcomes["completed"]
    assert usage["backoff_seconds"] > 0 and usage["rate_limited"] == outcomes["rate_limited"]
    reasons = set(usage["retry_reasons"])
    assert {"HTTP 429", "malformed completion"} <= reasons and reasons & {"HTTP 500", "HTTP 502", "HTTP 503"}
    assert len(reasons - {"HTTP 429", "HTTP 500", "HTTP 502", "HTTP 503", "malformed completion"}) >= 1  # dropped, slow


def test_content_faults_cost_only_the_spoiled_rows_each_rejected_with_its_reason(llmaug_run, teacher_server):
    # One round, one attempt: a spoiled answer is not asked again, so the runs differ in exactly those rows.
    settings = dict(rounds=1, method_options={"max_attempts": 1})
    clean, clean_out = llmaug_run("clean", **settings)
    finished(clean, clean_out)
    faulty, faulty_out = llmaug_run("faulty", faults=FULL_MIX, **settings)
    finished(faulty, faulty_out)

    spoiled = completed_content_faults(teacher_server.log)
    rejected = read_jsonl(faulty_out / "rounds" / "000" / "rejected.jsonl")
    assert spoiled and len(rejected) == len(spoiled)
    assert all(row["reason"] for row in rejected)
    spoiled_parents = {parent for row in rejected for parent in row["parent_ids"]}
    clean_rows = read_jsonl(clean_out / "data.jsonl")
    expected = [row for row in clean_rows if not spoiled_parents.intersection(row["provenance"]["parent_ids"])]
    assert read_jsonl(faulty_out / "data.jsonl") == expected
    assert len(clean_rows) - len(expected) == len(spoiled)


def test_a_full_run_under_the_whole_fault_mix_loses_and_duplicates_nothing(llmaug_run, teacher_server):
    result, out = llmaug_run("mixed", faults=FULL_MIX, per_error=2)
    finished(result, out)

    rows = read_jsonl(out / "data.jsonl")
    assert len({row["id"] for row in rows}) == len(rows)
    rounds = sorted((out / "rounds").iterdir())
    for folder in rounds:
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["teacher_requests"] == metrics["added"] + metrics["rejected"]  # every answer kept or rejected
    added = [row for folder in rounds for row in read_jsonl(folder / "added.jsonl")]
    assert [row for row in rows if row["provenance"]["origin"] == "synthetic"] == added

    answered = {question_responder(record.body) for record in teacher_server.log if record.outcome == "completed"
                and record.fault == "ok"}
    assert all(row["provenance"]["raw_output"] in answered for row in added)  # no spoiled answer got in
    rejected = [row for folder in rounds for row in read_jsonl(folder / "rejected.jsonl")]
    spoiled = completed_content_faults(teacher_server.log)
    assert len(spoiled) > 0 and all(row["reason"] for row in rejected)
    spoiled_rejections = [row for row in rejected if row["raw_output"] not in answered]
    assert len(spoiled_rejections) == len(spoiled)


def test_rate_limits_slow_the_client_down(llmaug_run, teacher_server):
    result, out = llmaug_run("limited", faults=FaultPlan(rate_limit_retry_after=0.08, retry_after=RETRY_AFTER), per_error=2)
    finished(result, out)

    during, outside = request_rates_around_rate_limits(teacher_server.log, RETRY_AFTER)
    assert during < 0.25 * outside, (during, outside)

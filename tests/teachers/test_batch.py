"""The Batch API path of the HTTP teacher against the loopback server's /v1/files and /v1/batches: one batch per
call, results into the same cache, failed lines and expired batches as failures, and a pending batch picked up
again (never paid twice) after the process that made it was stopped."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmaug.errors import TeacherError
from llmaug.teachers import Teacher
from llmaug.teachers.base import GenerationParams, TeacherRequest
from llmaug.testing.fake_openai import BatchPlan

LABELS = ("LOC", "NUM")


def requests(n: int, **options) -> list[TeacherRequest]:
    return [TeacherRequest.chat([{"role": "user", "content": f"question {i}"}], params=GenerationParams(seed=i), **options)
            for i in range(n)]


@pytest.fixture
def batch_teacher(make_backend, tmp_path):
    def make(server, **options) -> Teacher:
        backend = make_backend(server, batch=True, batch_poll=0.02, **options)
        return Teacher(backend, cache=tmp_path / "cache.sqlite")

    return make


def test_a_call_becomes_one_batch_whose_results_are_cached(serve, batch_teacher, tmp_path):
    server = serve()
    seen = []
    with batch_teacher(server) as teacher:
        responses = teacher.generate(requests(10), progress=lambda done, total: seen.append(done))
        again = teacher.generate(requests(10))
    assert [r.text for r in responses] == [f"echo: question {i}" for i in range(10)]
    assert server.requests == 0 and len(server.batches) == 1 and server.batch_lines_run == 10
    assert all(r.cached for r in again) and teacher.usage.calls == 10 and teacher.usage.cached == 10
    assert seen[-1] == 10 and seen == sorted(seen)
    ledger = json.loads((tmp_path / "batches.json").read_text())
    [entry] = ledger.values()
    assert entry["id"] == "batch_1" and entry["status"] == "completed" and entry["requests"] == 10
    lines = server.files["file-1"]["content"].decode().splitlines()
    first = json.loads(lines[0])
    assert (first["method"], first["url"], first["custom_id"]) == ("POST", "/v1/chat/completions", "request-0")
    assert first["body"]["messages"] == [{"role": "user", "content": "question 0"}]


def test_batched_choices_carry_the_servers_structured_fields(serve, batch_teacher):
    server = serve(server_kind="vllm")
    with batch_teacher(server) as teacher:
        responses = teacher.generate(requests(4, choices=LABELS))
    assert all(r.text in LABELS and r.finish_reason == "choice" for r in responses)
    body = json.loads(server.files["file-1"]["content"].decode().splitlines()[0])["body"]
    assert body["structured_outputs"] == {"choice": list(LABELS)}


def test_failed_lines_are_failures_asked_again_by_the_next_run(serve, batch_teacher):
    server = serve(batch_plan=BatchPlan(failed_lines=(1, 3)))
    with batch_teacher(server) as teacher:
        responses = teacher.generate(requests(6))
    assert [r.finish_reason for r in responses].count("error") == 2
    assert "HTTP 500" in responses[1].error and teacher.usage.failures == 2
    server.batch_plan = BatchPlan()
    with batch_teacher(server) as teacher:
        responses = teacher.generate(requests(6))
    assert all(r.finish_reason != "error" for r in responses)
    assert len(server.batches) == 2 and server.batch_lines_run == 6 + 2


def test_an_expired_batch_keeps_what_ran_and_fails_the_rest(serve, batch_teacher, tmp_path):
    server = serve(batch_plan=BatchPlan(expire_after=4))
    with batch_teacher(server) as teacher:
        responses = teacher.generate(requests(10))
    assert [r.finish_reason for r in responses] == ["stop"] * 4 + ["error"] * 6
    assert "batch_expired" in responses[-1].error
    assert [e["status"] for e in json.loads((tmp_path / "batches.json").read_text()).values()] == ["expired"]


def test_a_pending_batch_is_picked_up_after_the_process_stopped_not_paid_twice(serve, batch_teacher):
    server = serve(batch_plan=BatchPlan(seconds=1.0))
    teacher = batch_teacher(server)

    async def stopped_while_waiting():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(teacher.agenerate(requests(8)), 0.3)
        await teacher.backend.aclose()

    asyncio.run(stopped_while_waiting())
    assert len(server.batches) == 1 and teacher.cache is not None
    teacher.cache.close()

    with batch_teacher(server) as resumed:  # a new process: only the run directory remembers the batch
        responses = resumed.generate(requests(8))
    assert [r.text for r in responses] == [f"echo: question {i}" for i in range(8)]
    assert len(server.batches) == 1 and server.batch_lines_run == 8


def test_a_refused_batch_is_an_error_naming_the_reason(serve, batch_teacher):
    server = serve(batch_plan=BatchPlan(refuse="line 3: model not found"))
    with batch_teacher(server) as teacher, pytest.raises(TeacherError, match="refused batch batch_1: line 3: model not found"):
        teacher.generate(requests(3))


def test_a_server_without_the_batch_api_says_so(serve, make_backend, tmp_path):
    server = serve()
    root = server.base_url.removesuffix("/v1")
    backend = make_backend(root, batch=True, batch_poll=0.02)
    with Teacher(backend) as teacher, pytest.raises(TeacherError, match="no Batch API: drop --batch"):
        teacher.generate(requests(2))

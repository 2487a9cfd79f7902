"""The OpenAI-compatible HTTP backend against a real loopback server with injected faults."""

from __future__ import annotations

import logging
import socket
import time
import traceback
from email.utils import formatdate

import pytest

from llmaug.errors import TeacherError
from llmaug.teachers.base import GenerationParams, TeacherRequest
from llmaug.teachers.openai_compat import _retry_after_seconds, sample_seed
from llmaug.testing.fake_openai import FaultPlan


def test_success_returns_text_finish_reason_and_usage(serve, make_backend, run_backend):
    server = serve()
    backend = make_backend(server)
    request = TeacherRequest.chat(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello big world"}]
    )

    [response] = run_backend(backend, [request])

    assert response.text == "echo: hello big world"
    assert response.finish_reason == "stop"
    assert (response.prompt_tokens, response.completion_tokens) == (2 + 3, 4)
    assert not response.cached
    assert backend.retry_count == 0
    assert server.requests == server.completed == 1


def test_identity_names_url_and_model_without_key(monkeypatch, make_backend):
    monkeypatch.setenv("LLMAUG_TEST_TEACHER_KEY", "sk-very-secret")
    backend = make_backend("http://127.0.0.1:8000/v1/")
    assert backend.identity == "openai-compatible:http://127.0.0.1:8000/v1@fake-model"
    assert backend.batch_size == 1 and backend.max_concurrency == 4
    assert "sk-very-secret" not in repr(backend) + backend.identity


def test_generation_params_reach_the_server(serve, make_backend, run_backend):
    server = serve()
    params = GenerationParams(temperature=0.3, top_p=0.9, max_tokens=7, seed=42, stop=("END", "\n\n"),
                              repetition_penalty=1.1)
    run_backend(make_backend(server), [TeacherRequest.chat([{"role": "user", "content": "hi"}], params=params)])

    body = server.log[0].body
    assert body["model"] == "fake-model"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.3, 0.9, 7, 42)
    assert body["stop"] == ["END", "\n\n"]
    assert body["repetition_penalty"] == 1.1


def test_defaults_leave_out_optional_fields_and_honour_max_tokens_field(serve, make_backend, run_backend, chat):
    server = serve()
    run_backend(make_backend(server, max_tokens_field="max_completion_tokens"), [chat("hi")])

    body = server.log[0].body
    assert "stop" not in body and "repetition_penalty" not in body and "max_tokens" not in body
    assert body["max_completion_tokens"] == GenerationParams().max_tokens


def test_max_tokens_cut_reports_length(serve, make_backend, run_backend, chat):
    server = serve()
    [response] = run_backend(make_backend(server), [chat("one two three four", params=GenerationParams(max_tokens=2))])
    assert response.text == "echo: one"
    assert response.finish_reason == "length"


def test_repeated_samples_send_distinct_reproducible_seeds(serve, make_backend, run_backend, chat):
    server = serve()
    requests = [chat("same prompt", params=GenerationParams(seed=7), sample_index=i) for i in range(4)]
    run_backend(make_backend(server), requests)

    seeds = sorted(record.body["seed"] for record in server.log)
    assert seeds == sorted(sample_seed(7, i) for i in range(4))
    assert len(set(seeds)) == 4 and sample_seed(7, 0) == 7
    assert sample_seed(7, 3) == sample_seed(7, 3) != sample_seed(8, 3)


def test_no_authorization_header_without_a_key(serve, make_backend, run_backend, chat):
    server = serve()
    run_backend(make_backend(server), [chat("hi")])
    assert server.log[0].authorization is False


def test_the_right_key_is_sent_as_bearer_token(monkeypatch, serve, make_backend, run_backend, chat):
    server = serve(require_key="sk-right")
    monkeypatch.setenv("LLMAUG_TEST_TEACHER_KEY", "sk-right")
    [response] = run_backend(make_backend(server), [chat("hi")])
    assert response.text == "echo: hi"
    assert server.log[0].authorization is True


def test_wrong_key_names_the_variable_and_never_the_key(monkeypatch, caplog, serve, make_backend, run_backend, chat):
    caplog.set_level(logging.DEBUG)
    secret = "sk-wrong-but-secret-123"
    server = serve(require_key="sk-right")
    monkeypatch.setenv("LLMAUG_TEST_TEACHER_KEY", secret)
    backend = make_backend(server)

    with pytest.raises(TeacherError) as caught:
        run_backend(backend, [chat("hi")])

    message = str(caught.value)
    assert "$LLMAUG_TEST_TEACHER_KEY" in message and "401" in message and server.base_url in message
    everything = "".join(traceback.format_exception(caught.value)) + repr(caught.value.args) + caplog.text
    assert secret not in everything
    assert server.requests == 1  # a rejected key is not retried


def test_unknown_model_names_url_model_and_server_message(serve, make_backend, run_backend, chat):
    server = serve(known_models={"real-model"})
    with pytest.raises(TeacherError) as caught:
        run_backend(make_backend(server, model="no-such-model"), [chat("hi")])
    message = str(caught.value)
    assert server.base_url in message and "'no-such-model'" in message and "404" in message
    assert "does not exist" in message
    assert server.requests == 1


def test_unreachable_server_raises_naming_the_url(make_backend, run_backend, chat):
    with socket.socket() as probe:  # a port nobody listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    backend = make_backend(url, max_retries=2)

    with pytest.raises(TeacherError, match="cannot reach the teacher at") as caught:
        run_backend(backend, [chat("hi")])

    assert url in str(caught.value)
    assert backend.retry_count == 2


def test_retry_after_is_waited_for(serve, make_backend, run_backend, chat):
    server = serve(faults=FaultPlan(script=("429_retry_after",), retry_after=0.4))
    backend = make_backend(server)

    [response] = run_backend(backend, [chat("hi")])

    rejected, accepted = server.log
    assert accepted.arrived - rejected.finished >= 0.4 - 1e-3
    assert response.text == "echo: hi"
    assert backend.retry_count == 1 and backend.backoff_waits[0] >= 0.4


def test_retry_after_header_parses_seconds_and_http_dates():
    assert _retry_after_seconds("2.5") == 2.5
    assert 28 <= _retry_after_seconds(formatdate(time.time() + 30, usegmt=True)) <= 30
    assert _retry_after_seconds(formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert _retry_after_seconds("soon") is None and _retry_after_seconds(None) is None


@pytest.mark.parametrize(
    "fault", ["429", "429_retry_after", "500", "502", "503", "reset", "slow", "truncated_json", "empty_choices"]
)
def test_transient_faults_are_retried_until_success(fault, serve, make_backend, run_backend, chat):
    server = serve(faults=FaultPlan(script=(fault, fault), retry_after=0.05, slow_seconds=5.0))
    backend = make_backend(server, timeout=0.3)

    [response] = run_backend(backend, [chat("hi")])

    assert response.text == "echo: hi" and response.finish_reason == "stop"
    assert backend.retry_count == 2 and len(backend.backoff_waits) == 2
    assert server.requests == 3 and server.completed == 1


def test_exhausted_retries_give_an_error_response(serve, make_backend, run_backend, chat):
    server = serve(faults=FaultPlan(script=("500",) * 10))
    backend = make_backend(server, max_retries=2)

    [response] = run_backend(backend, [chat("hi")])

    assert (response.text, response.finish_reason) == ("", "error")
    assert server.requests == 3 and backend.retry_count == 2


def test_one_failing_request_does_not_sink_the_others(serve, make_backend, run_backend, chat):
    server = serve(faults=FaultPlan(script=("502",) * 3), latency=0.05)
    backend = make_backend(server, max_retries=0, concurrency=3)

    responses = run_backend(backend, [chat(f"q{i}") for i in range(6)])

    assert sum(r.finish_reason == "error" for r in responses) == 3
    assert all(r.text == f"echo: q{i}" for i, r in enumerate(responses) if r.finish_reason != "error")


@pytest.mark.parametrize("concurrency", [3, 20])  # 20: connections spread over pool shards of 8, 8 and 4
def test_concurrency_bound_is_respected(concurrency, serve, make_backend, run_backend, chat):
    server = serve(latency=0.05)
    count = 6 * concurrency
    responses = run_backend(make_backend(server, concurrency=concurrency), [chat(f"q{i}") for i in range(count)])

    assert [r.text for r in responses] == [f"echo: q{i}" for i in range(count)]
    assert server.max_in_flight == concurrency


def test_a_429_pauses_every_worker(serve, make_backend, run_backend, chat):
    server = serve(faults=FaultPlan(script=("429_retry_after",) * 4, retry_after=0.3), latency=0.02)
    backend = make_backend(server, concurrency=4)

    responses = run_backend(backend, [chat(f"q{i}") for i in range(12)])

    assert all(r.text for r in responses)
    first_429_seen = min(record.finished for record in server.log[:4])
    later = [record.arrived for record in server.log[4:]]
    assert min(later) >= first_429_seen + 0.3 - 1e-3  # queued requests waited too, not only the rejected ones


def test_a_429_storm_slows_the_request_rate(serve, make_backend, run_backend, chat):
    server = serve(faults=FaultPlan(rate_limit=1.0))
    backend = make_backend(server, concurrency=4, max_retries=3, backoff=0.01, max_backoff=0.08)

    responses = run_backend(backend, [chat(f"q{i}") for i in range(4)])

    assert all(r.finish_reason == "error" for r in responses)
    arrivals = sorted(record.arrived for record in server.log)
    assert len(arrivals) == 4 * 4
    assert arrivals[3] - arrivals[0] < 0.05  # the opening burst: every worker at once, before the first 429
    last_gaps = [later - earlier for earlier, later in zip(arrivals[-6:-1], arrivals[-5:], strict=True)]
    assert min(last_gaps) >= 0.08 - 1e-3  # by then one request per cool-down, not a storm
    assert backend.limiter.limit == 1.0  # AIMD: each burst of 429s halved the requests allowed in flight


def test_content_faults_arrive_as_ordinary_completions(serve, make_backend, run_backend, chat):
    plan = FaultPlan(script=("garbage", "off_label", "empty_content", "injection"))
    server = serve(faults=plan)
    backend = make_backend(server, concurrency=1)

    texts = [r.text for r in run_backend(backend, [chat(f"q{i}") for i in range(5)])]

    assert texts[0] and not texts[0].startswith("echo:")
    assert texts[1:] == [plan.off_label_text, "", plan.injection_text, "echo: q4"]
    assert plan.injection_text.startswith("Ignore previous instructions")
    assert backend.retry_count == 0 and server.completed == 5


def test_fault_draws_are_reproducible_however_requests_interleave(serve, make_backend, run_backend, chat):
    plan = FaultPlan(server_error=0.3, garbage=0.3)
    requests = [chat(f"q{i}") for i in range(20)]

    def faults_seen(concurrency: int) -> list[tuple[str, str]]:
        server = serve(faults=plan, seed=3, latency=(0.0, 0.01))
        run_backend(make_backend(server, concurrency=concurrency, max_retries=10), requests)
        return sorted((record.body["messages"][0]["content"], record.fault) for record in server.log)

    serial, parallel = faults_seen(1), faults_seen(8)
    assert serial == parallel
    assert {fault for _, fault in serial} - {"ok"}  # some faults were drawn


def test_a_failing_responder_is_a_logged_server_error(serve, make_backend, run_backend, chat):
    def broken(request_json: dict) -> str:
        raise RuntimeError("responder bug")

    server = serve(responder=broken)
    [response] = run_backend(make_backend(server, max_retries=1), [chat("hi")])

    assert response.finish_reason == "error"
    assert server.outcomes["responder_error"] == 2

"""`Teacher` over the HTTP backend: cache, sample indices, budget, usage and cost, against a loopback server."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing

import pytest

from llmaug.teachers import BUDGET_FINISH, Budget, Price, ResponseCache, Teacher
from llmaug.teachers.base import GenerationParams
from llmaug.testing.fake_openai import FaultPlan


def generate(backend, requests, **teacher_options):
    with Teacher(backend, **teacher_options) as teacher:
        responses = teacher.generate(requests)
    return responses, teacher.usage


def test_rerun_with_a_cache_makes_no_calls_and_returns_the_same_texts(tmp_path, serve, make_backend, chat):
    server = serve()
    requests = [chat(f"question {i}") for i in range(10)]
    cache = tmp_path / "cache.sqlite"

    first, first_usage = generate(make_backend(server), requests, cache=cache)
    second, second_usage = generate(make_backend(server), requests, cache=cache)

    assert server.requests == 10
    assert [r.text for r in second] == [r.text for r in first] == [f"echo: question {i}" for i in range(10)]
    assert all(r.cached for r in second) and not any(r.cached for r in first)
    assert (first_usage.calls, first_usage.cached) == (10, 0)
    assert (second_usage.calls, second_usage.cached) == (0, 10)


def test_sample_indices_are_distinct_calls_and_cache_entries(tmp_path, serve, make_backend, chat):
    server = serve()
    requests = [chat("one prompt", sample_index=i) for i in range(3)]
    cache = tmp_path / "cache.sqlite"

    generate(make_backend(server), requests, cache=cache)
    generate(make_backend(server), requests, cache=cache)

    assert server.requests == 3
    assert len({record.body["seed"] for record in server.log}) == 3
    with closing(ResponseCache(cache)) as stored:
        assert len(stored) == 3


def test_duplicate_requests_in_one_call_are_each_answered(serve, make_backend, chat):
    server = serve()
    responses, _ = generate(make_backend(server), [chat("same"), chat("same")])
    assert [r.text for r in responses] == ["echo: same", "echo: same"]


def test_a_torn_cache_row_is_a_miss_and_gets_rewritten(tmp_path, serve, make_backend, chat):
    server = serve()
    requests = [chat(f"question {i}") for i in range(4)]
    cache = tmp_path / "cache.sqlite"
    backend = make_backend(server)
    generate(backend, requests, cache=cache)
    torn_key = requests[2].cache_key(backend.identity)
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE responses SET response = ? WHERE key = ?", ('{"text": "half a resp', torn_key))

    responses, usage = generate(make_backend(server), requests, cache=cache)

    assert [r.text for r in responses] == [f"echo: question {i}" for i in range(4)]
    assert (usage.calls, usage.cached) == (1, 3)
    assert server.requests == 5
    with closing(ResponseCache(cache)) as stored:
        assert stored.get_many([torn_key])[torn_key].text == "echo: question 2"


_CACHE_WRITER = textwrap.dedent(
    """
    import sys
    from llmaug.teachers import Teacher, TeacherRequest
    from llmaug.teachers.openai_compat import OpenAICompatibleBackend

    url, cache, worker = sys.argv[1], sys.argv[2], sys.argv[3]
    prompts = [f"shared {i}" for i in range(30)] + [f"worker {worker} {i}" for i in range(30)]
    requests = [TeacherRequest.chat([{"role": "user", "content": p}]) for p in prompts]
    backend = OpenAICompatibleBackend(url, "fake-model", api_key_env="LLMAUG_NO_SUCH_KEY", concurrency=4)
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start writing together
    with Teacher(backend, cache=cache) as teacher:
        responses = teacher.generate(requests)
    assert [r.text for r in responses] == [f"echo: {p}" for p in prompts]
    """
)


def test_two_processes_share_one_cache_file(tmp_path, serve, make_backend, chat):
    server = serve(latency=(0.0, 0.02))
    cache = tmp_path / "shared.sqlite"
    workers = [
        subprocess.Popen([sys.executable, "-c", _CACHE_WRITER, server.base_url, str(cache), name],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
    errors = [worker.communicate("go\n", timeout=120)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], errors
    prompts = [f"shared {i}" for i in range(30)] + [f"worker {w} {i}" for w in "ab" for i in range(30)]
    identity = make_backend(server).identity
    keys = [chat(p).cache_key(identity) for p in prompts]
    with closing(ResponseCache(cache)) as opened:
        stored = opened.get_many(keys)
    assert len(stored) == 90
    assert [stored[key].text for key in keys] == [f"echo: {p}" for p in prompts]


def test_budget_stops_after_max_calls(tmp_path, serve, make_backend, chat):
    server = serve(latency=0.01)
    requests = [chat(f"question {i}") for i in range(10)]
    cache = tmp_path / "cache.sqlite"

    with Teacher(make_backend(server), cache=cache, budget=Budget(max_calls=3)) as teacher:
        responses = teacher.generate(requests)
        assert teacher.exhausted

    assert server.requests == 3
    assert teacher.usage.calls == 3 and teacher.usage.budget_skipped == 7
    skipped = [r for r in responses if r.finish_reason == BUDGET_FINISH]
    assert len(skipped) == 7 and all(r.text == "" for r in skipped)
    _, usage = generate(make_backend(server), requests, cache=cache)  # budget answers were not cached
    assert (usage.cached, usage.calls) == (3, 7)


def test_token_budget_stops_new_calls(serve, make_backend, chat):
    server = serve()
    backend = make_backend(server, concurrency=1)
    with Teacher(backend, budget=Budget(max_tokens=10)) as teacher:
        responses = teacher.generate([chat("three word prompt") for _ in range(5)])  # 3 + 4 tokens a call

    assert server.requests == 2
    assert [r.finish_reason for r in responses].count(BUDGET_FINISH) == 3


def test_usage_tokens_and_cost_from_a_price_table(serve, make_backend, chat):
    server = serve()
    price = Price(prompt=2.0, completion=10.0)
    responses, usage = generate(make_backend(server), [chat("a b c"), chat("d e f g h")], price=price)

    prompt_tokens = sum(r.prompt_tokens for r in responses)
    completion_tokens = sum(r.completion_tokens for r in responses)
    assert (prompt_tokens, completion_tokens) == (3 + 5, 4 + 6)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (8, 10, 18)
    assert usage.cost_usd == pytest.approx((8 * 2.0 + 10 * 10.0) / 1e6)


def test_retries_and_failures_reach_usage_and_failures_are_not_cached(tmp_path, serve, make_backend, chat):
    server = serve(faults=FaultPlan(script=("503", "500", "500")))
    cache = tmp_path / "cache.sqlite"
    backend = make_backend(server, max_retries=1, concurrency=1)

    # One request after the other: sent together, which retries first would depend on the random back-off.
    with Teacher(backend, cache=cache) as teacher:
        responses = teacher.generate([chat("first")]) + teacher.generate([chat("second")])
    usage = teacher.usage

    assert [r.finish_reason for r in responses] == ["error", "stop"]  # 503, 500: out of retries; 500, ok
    assert (usage.retries, usage.failures, usage.calls) == (2, 1, 2)
    _, rerun = generate(make_backend(server), [chat("first"), chat("second")], cache=cache)
    assert (rerun.cached, rerun.calls, rerun.failures) == (1, 1, 0)


def test_without_a_cache_every_call_goes_out(serve, make_backend, chat):
    server = serve()
    requests = [chat(f"question {i}") for i in range(5)]
    with Teacher(make_backend(server), cache=None) as teacher:
        teacher.generate(requests)
        teacher.generate(requests)
    assert server.requests == 10 and teacher.usage.cached == 0


def test_teacher_from_a_spec_string_passes_backend_options(serve, chat):
    server = serve(latency=0.02)
    spec = f"openai-compatible:{server.base_url}@fake-model"
    with Teacher(spec, concurrency=2, api_key_env="LLMAUG_NO_SUCH_KEY") as teacher:
        responses = teacher.generate([chat(f"q{i}", params=GenerationParams(max_tokens=8)) for i in range(6)])
    assert teacher.identity == spec
    assert [r.text for r in responses] == [f"echo: q{i}" for i in range(6)]
    assert server.max_in_flight == 2


def test_progress_reports_cached_and_finished_requests(tmp_path, serve, make_backend, chat):
    server = serve()
    cache = tmp_path / "cache.sqlite"
    generate(make_backend(server), [chat("warm")], cache=cache)
    seen: list[tuple[int, int]] = []
    with Teacher(make_backend(server), cache=cache) as teacher:
        teacher.generate([chat("warm"), chat("cold 1"), chat("cold 2")], progress=lambda *step: seen.append(step))
    assert seen[0] == (1, 3) and seen[-1] == (3, 3)


def test_a_rerun_with_the_same_budget_stops_where_the_first_run_did(tmp_path, serve, make_backend, chat):
    server = serve(latency=0.01)
    cache = tmp_path / "cache.sqlite"
    first = [chat(f"question {i}") for i in range(5)]
    with Teacher(make_backend(server), cache=cache, budget=Budget(max_calls=3)) as teacher:
        answered = teacher.generate(first)
    assert server.requests == 3

    # Rerun (or resume) with the same budget: the 3 cached answers spend it, so nothing more is bought.
    with Teacher(make_backend(server), cache=cache, budget=Budget(max_calls=3)) as teacher:
        again = teacher.generate(first)
    assert server.requests == 3
    assert [r.text for r in again] == [r.text for r in answered]
    assert (teacher.usage.calls, teacher.usage.cached, teacher.usage.budget_skipped) == (0, 3, 2)
    assert teacher.exhausted


def test_the_budget_counts_requests_in_order_even_where_a_later_one_is_cached(tmp_path, serve, make_backend, chat):
    server = serve(latency=0.01)
    cache = tmp_path / "cache.sqlite"
    requests = [chat(f"question {i}") for i in range(4)]
    generate(make_backend(server), requests[3:], cache=cache)  # only the last is cached, e.g. by another run

    with Teacher(make_backend(server), cache=cache, budget=Budget(max_calls=2)) as teacher:
        responses = teacher.generate(requests)
    assert [r.finish_reason for r in responses][2:] == [BUDGET_FINISH, BUDGET_FINISH]
    assert [r.text for r in responses[:2]] == ["echo: question 0", "echo: question 1"]
    assert (teacher.usage.calls, teacher.usage.cached) == (2, 0)


def test_cached_answers_count_toward_a_token_budget(tmp_path, serve, make_backend, chat):
    server = serve()
    cache = tmp_path / "cache.sqlite"
    generate(make_backend(server), [chat("three word prompt")], cache=cache)  # 3 + 4 tokens, now cached
    backend = make_backend(server, concurrency=1)
    with Teacher(backend, cache=cache, budget=Budget(max_tokens=10)) as teacher:
        responses = teacher.generate([chat("three word prompt")] + [chat(f"other prompt {i}") for i in range(3)])
    assert server.requests == 2  # the cached 7 tokens + one new call's tokens pass 10
    assert [r.finish_reason for r in responses].count(BUDGET_FINISH) == 2

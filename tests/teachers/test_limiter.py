"""The HTTP backend's plumbing for throughput: the request limiter, the proxy lookup, batched cache writes."""

from __future__ import annotations

import asyncio

import pytest

from llmaug.teachers import Teacher, TeacherResponse
from llmaug.teachers.openai_compat import AdaptiveLimiter, _environment_proxy


def limiter(ceiling: int) -> AdaptiveLimiter:
    return AdaptiveLimiter(ceiling, base_pause=0.01, max_pause=0.05)


def test_waiters_get_places_first_come_first_served_and_never_beyond_the_limit():
    async def scenario():
        gate = limiter(2)
        started, peak = [], 0

        async def request(name: str) -> None:
            nonlocal peak
            async with gate.slot():
                started.append(name)
                peak = max(peak, gate.in_flight)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(request(f"r{i}") for i in range(7)))
        return started, peak, gate.in_flight

    started, peak, left = asyncio.run(scenario())
    assert started == [f"r{i}" for i in range(7)]
    assert peak == 2 and left == 0


def test_a_cancelled_waiter_passes_its_place_on():
    async def scenario():
        gate = limiter(1)
        order = []

        async def request(name: str, hold: float) -> None:
            async with gate.slot():
                order.append(name)
                await asyncio.sleep(hold)

        first = asyncio.create_task(request("first", 0.02))
        await asyncio.sleep(0)
        doomed = asyncio.create_task(request("doomed", 0))
        last = asyncio.create_task(request("last", 0))
        await asyncio.sleep(0.005)
        doomed.cancel()
        await asyncio.gather(first, last)
        with pytest.raises(asyncio.CancelledError):
            await doomed
        return order, gate.in_flight

    order, left = asyncio.run(scenario())
    assert order == ["first", "last"] and left == 0


def test_a_rate_limit_halves_the_places_and_holds_newcomers_through_the_cool_down():
    async def scenario():
        gate = limiter(4)
        pause = gate.rate_limited(0.05)
        loop = asyncio.get_running_loop()
        began = loop.time()
        async with gate.slot():
            waited = loop.time() - began
        return pause, gate.limit, waited

    pause, limit, waited = asyncio.run(scenario())
    assert pause == 0.05 and limit == 2.0 and waited >= 0.045


def test_the_proxy_comes_from_the_environment_once_and_no_proxy_is_honoured(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert _environment_proxy("http://127.0.0.1:8000/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert _environment_proxy("https://api.openai.com/v1") == "http://proxy.example:3128"
    monkeypatch.setenv("NO_PROXY", "api.openai.com")
    assert _environment_proxy("https://api.openai.com/v1") is None


class AllAtOnce:
    """A backend whose requests all finish in the same pass of the event loop, once every one has arrived."""

    identity = "all-at-once"
    batch_size = 1

    def __init__(self, count: int):
        self.max_concurrency = count
        self.count = count
        self.arrived = 0
        self.gate: asyncio.Event | None = None

    async def generate(self, requests):
        self.gate = self.gate or asyncio.Event()
        self.arrived += 1
        if self.arrived == self.count:
            self.gate.set()
        await self.gate.wait()
        return [TeacherResponse(text=r.messages[-1].content.upper()) for r in requests]

    async def aclose(self) -> None:
        return None


def test_answers_that_finish_together_are_cached_in_one_write_and_all_before_generate_returns(tmp_path, chat):
    requests = [chat(f"question {i}") for i in range(12)]
    with Teacher(AllAtOnce(12), cache=tmp_path / "cache.sqlite") as teacher:
        writes = []
        put_many = teacher.cache.put_many
        teacher.cache.put_many = lambda items: (writes.append(len(items)), put_many(items))[1]
        responses = teacher.generate(requests)
        cached = len(teacher.cache)
    assert [r.text for r in responses] == [f"QUESTION {i}" for i in range(12)]
    assert cached == 12 and writes == [12]

"""Fixtures for the teacher layer: loopback fake servers and HTTP backends tuned for fast tests."""

from __future__ import annotations

import asyncio

import pytest

from llmaug.teachers.base import TeacherRequest
from llmaug.teachers.openai_compat import OpenAICompatibleBackend
from llmaug.testing.fake_openai import FakeOpenAIServer

KEY_ENV = "LLMAUG_TEST_TEACHER_KEY"
MODEL = "fake-model"

# Short timeouts and backoffs keep every retry test well under a second.
FAST = {"timeout": 2.0, "max_retries": 3, "backoff": 0.01, "max_backoff": 0.05, "concurrency": 4}


@pytest.fixture
def serve():
    """`serve(**FakeOpenAIServer options)` starts a loopback server, stopped after the test."""
    servers: list[FakeOpenAIServer] = []

    def start(**options) -> FakeOpenAIServer:
        server = FakeOpenAIServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def make_backend(monkeypatch):
    """`make_backend(server_or_url, **options)`: an HTTP backend with fast retries and no API key set."""
    monkeypatch.delenv(KEY_ENV, raising=False)

    def make(target: FakeOpenAIServer | str, **options) -> OpenAICompatibleBackend:
        url = target if isinstance(target, str) else target.base_url
        return OpenAICompatibleBackend(url, options.pop("model", MODEL), api_key_env=KEY_ENV, **(FAST | options))

    return make


@pytest.fixture
def run_backend():
    """`run_backend(backend, requests)`: one `generate` call on a fresh event loop, then the client is closed."""

    def run(backend: OpenAICompatibleBackend, requests: list[TeacherRequest]):
        async def go():
            try:
                return await backend.generate(requests)
            finally:
                await backend.aclose()

        return asyncio.run(go())

    return run


def ask(text: str, **options) -> TeacherRequest:
    return TeacherRequest.chat([{"role": "user", "content": text}], **options)


@pytest.fixture
def chat():
    """`chat(text, **TeacherRequest options)`: a one-message request."""
    return ask

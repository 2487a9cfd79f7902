"""Teacher spec strings: every kind parses, every malformed spec is a `--teacher` error."""

from __future__ import annotations

import re

import pytest

from llmaug.errors import TeacherError
from llmaug.teachers.openai_compat import OpenAICompatibleBackend
from llmaug.teachers.spec import OPENAI_URL, TeacherSpec, backend_from_spec, parse_spec


def spec_id(value) -> str | None:
    """Test ids without the word "embedded": `-k "not embedded"` deselects the slow model tests, not these."""
    if not isinstance(value, str):
        return None
    return re.sub("embedded", "local", value.strip(), flags=re.IGNORECASE) or "empty"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("embedded", TeacherSpec("embedded", "smollm2")),
        ("embedded:", TeacherSpec("embedded", "smollm2")),
        ("embedded:gemma3-270m", TeacherSpec("embedded", "gemma3-270m")),
        ("openai:gpt-4o-mini", TeacherSpec("openai", "gpt-4o-mini", OPENAI_URL)),
        ("openai-compatible:http://127.0.0.1:8000/v1@my-model",
         TeacherSpec("openai-compatible", "my-model", "http://127.0.0.1:8000/v1")),
        ("openai-compatible:https://user@host.example/v1@org/model",
         TeacherSpec("openai-compatible", "org/model", "https://user@host.example/v1")),
        ("llama-cpp:/models/qwen.gguf", TeacherSpec("llama-cpp", "/models/qwen.gguf")),
        ("pool:teachers.yaml", TeacherSpec("pool", "teachers.yaml")),
        ("  openai:gpt-4o-mini \n", TeacherSpec("openai", "gpt-4o-mini", OPENAI_URL)),
    ],
    ids=spec_id,
)
def test_each_kind_parses(text, expected):
    assert parse_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    ["embedded:smollm2", "openai:gpt-4o-mini", "openai-compatible:http://127.0.0.1:8000/v1@m", "llama-cpp:/m.gguf"],
    ids=spec_id,
)
def test_spec_round_trips_through_str(text):
    assert str(parse_spec(text)) == text


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("", "unknown teacher"),
        ("gpt-4o", "unknown teacher"),
        ("Embedded", "unknown teacher"),
        ("openai", "needs a model"),
        ("openai:", "needs a model"),
        ("openai-compatible:http://127.0.0.1:8000/v1", "expected openai-compatible"),
        ("openai-compatible:http://127.0.0.1:8000/v1@", "expected openai-compatible"),
        ("openai-compatible:127.0.0.1:8000/v1@m", "expected openai-compatible"),
        ("openai-compatible:", "expected openai-compatible"),
        ("llama-cpp", "needs a path"),
        ("llama-cpp:", "needs a path"),
        ("pool:", "needs a path"),
    ],
    ids=spec_id,
)
def test_malformed_specs_are_teacher_errors_on_the_option(text, mentions):
    with pytest.raises(TeacherError) as caught:
        parse_spec(text)
    assert caught.value.where == "--teacher"
    assert str(caught.value).startswith("--teacher: ") and mentions in str(caught.value)


def test_http_specs_build_the_http_backend_with_options():
    backend = backend_from_spec("openai-compatible:http://127.0.0.1:9/v1@m", concurrency=3, timeout=5.0)
    assert isinstance(backend, OpenAICompatibleBackend)
    assert backend.identity == "openai-compatible:http://127.0.0.1:9/v1@m"
    assert (backend.max_concurrency, backend.timeout) == (3, 5.0)

    hosted = backend_from_spec(parse_spec("openai:gpt-4o-mini"))
    assert hosted.identity == f"openai-compatible:{OPENAI_URL}@gpt-4o-mini"
    assert hosted.api_key_env == "OPENAI_API_KEY"

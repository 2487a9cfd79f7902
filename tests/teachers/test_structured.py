"""Structured output per server kind, against the loopback server playing each kind (it refuses fields that kind's
API does not take, with a 400 naming them, and answers within the constraint)."""

from __future__ import annotations

import json

import pytest

from llmaug.errors import TeacherError
from llmaug.teachers import Teacher
from llmaug.teachers.structured import (
    SERVER_KINDS, chosen, detect_server, examples_schema, exact_choice, json_items, read_choice,
)
from llmaug.teachers.base import GenerationParams, TeacherRequest, TeacherResponse
from llmaug.testing.scripted import question_responder

LABELS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")


def choice_request(text: str = "Which class is 'Where is Lima?'") -> TeacherRequest:
    return TeacherRequest.chat([{"role": "user", "content": text}], params=GenerationParams(temperature=0.0), choices=LABELS)


def examples_request(count: int = 3) -> TeacherRequest:
    prompt = f"Write {count} new questions about places. Reply with JSON."
    return TeacherRequest.chat([{"role": "user", "content": prompt}], json_schema=examples_schema(count))


@pytest.mark.parametrize("kind", ["openai", "vllm", "llama.cpp", "ollama"])
def test_choices_use_the_servers_own_fields_and_come_back_as_the_bare_label(kind, serve, make_backend, run_backend):
    server = serve(server_kind=kind)
    [response] = run_backend(make_backend(server), [choice_request()])

    body = server.log[-1].body
    expected_field = {"openai": "response_format", "ollama": "response_format", "vllm": "structured_outputs",
                      "llama.cpp": "grammar"}[kind]
    assert expected_field in body
    assert server.log[-1].outcome == "completed"
    assert response.text in LABELS and response.finish_reason == "choice"


def test_choice_bodies_match_each_api(serve, make_backend, run_backend):
    bodies = {}
    for kind in ("openai", "vllm", "llama.cpp", "ollama"):
        server = serve(server_kind=kind)
        run_backend(make_backend(server, server=kind), [choice_request()])
        bodies[kind] = server.log[-1].body

    openai = bodies["openai"]["response_format"]
    assert openai["type"] == "json_schema" and openai["json_schema"]["strict"] is True
    assert openai["json_schema"]["schema"]["properties"]["label"]["enum"] == list(LABELS)
    assert bodies["ollama"]["response_format"]["json_schema"]["schema"] == openai["json_schema"]["schema"]
    assert bodies["vllm"]["structured_outputs"] == {"choice": list(LABELS)}
    assert bodies["llama.cpp"]["grammar"].startswith('root ::= "ABBR" | "DESC"')
    assert not any(key.startswith("guided_") for body in bodies.values() for key in body)


@pytest.mark.parametrize("kind", ["openai", "vllm", "llama.cpp", "ollama"])
def test_a_schema_asks_for_several_examples_in_one_answer(kind, serve, make_backend, run_backend):
    server = serve(server_kind=kind, responder=question_responder)
    [response] = run_backend(make_backend(server, server=kind), [examples_request(3)])

    assert server.log[-1].outcome == "completed", server.log[-1].status
    items = json_items(response.text)
    assert items is not None and len(items) == 3 and len(set(items)) == 3
    body = server.log[-1].body
    if kind == "openai":  # strict mode: no length bounds, the prompt states the count
        schema = body["response_format"]["json_schema"]["schema"]
        assert "maxItems" not in json.dumps(schema)
    elif kind == "vllm":
        assert body["structured_outputs"]["json"]["properties"]["examples"]["maxItems"] == 3
    elif kind == "llama.cpp":
        assert body["response_format"]["type"] == "json_object" and "schema" in body["response_format"]


def test_the_fake_server_refuses_another_servers_fields(serve, make_backend, run_backend):
    server = serve(server_kind="openai")
    with pytest.raises(TeacherError, match="grammar"):  # what a real OpenAI answers to a llama.cpp field
        run_backend(make_backend(server, server="llama.cpp"), [choice_request()])


def test_generic_servers_get_free_text_and_the_label_is_read_out_of_it(serve, make_backend, run_backend):
    server = serve(responder=lambda body: "The answer is: LOC, since Lima is a city.")
    [response] = run_backend(make_backend(server), [choice_request()])

    body = server.log[-1].body
    assert not set(body) & {"response_format", "structured_outputs", "grammar"}
    assert response.finish_reason == "stop"
    assert chosen(response, LABELS) == "LOC"


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_auto_detects_the_server_kind_from_its_model_list(kind, serve, make_backend, run_backend):
    server = serve(server_kind=kind)
    backend = make_backend(server)
    run_backend(backend, [choice_request()])
    assert backend.server_kind == kind


def test_detection_rules():
    models = lambda owner: {"data": [{"id": "m", "owned_by": owner}]}  # noqa: E731
    assert detect_server("http://h:8000/v1", models("vllm"), {}) == "vllm"
    assert detect_server("http://h:8000/v1", models("me"), {}) == "llama.cpp"  # llama-cpp-python's server
    assert detect_server("http://h:8080/v1", {}, {"Server": "llama.cpp"}) == "llama.cpp"
    assert detect_server("http://h:11434/v1", models("someone"), {}) == "ollama"
    assert detect_server("http://h:8000/v1", models("acme"), {}) == "generic"
    assert detect_server("http://h:8000/v1", None, {}) == "generic"


def test_a_server_without_a_model_list_is_generic(serve, make_backend, run_backend):
    server = serve(server_kind="generic", list_models=False)
    backend = make_backend(server)
    run_backend(backend, [choice_request()])
    assert backend.server_kind == "generic"


def test_reading_choices():
    assert exact_choice(' LOC\n', LABELS) == "LOC"
    assert exact_choice('{"label": "NUM"}', LABELS) == "NUM"
    assert exact_choice("It is LOC.", LABELS) is None
    assert read_choice("It is LOC.", LABELS) == "LOC"
    assert read_choice("LOC or NUM", LABELS) is None
    assert chosen(TeacherResponse(text="", finish_reason="budget"), LABELS) is None


def test_reading_json_items():
    assert json_items('{"examples": ["a", "b"]}') == ["a", "b"]
    assert json_items('Sure! ```json\n["a", "b"]\n```') == ["a", "b"]
    assert json_items("1. a\n2. b") is None


def test_the_teacher_counts_unusable_choice_answers(serve, make_backend):
    answers = iter(["LOC", "no idea", "It is a number question: NUM"])
    server = serve(responder=lambda body: next(answers))
    with Teacher(make_backend(server, concurrency=1)) as teacher:
        teacher.generate([choice_request(f"q{i}") for i in range(3)])
    assert (teacher.usage.choice_answers, teacher.usage.unusable_choices) == (3, 1)


def test_check_verifies_the_model_is_served(serve, make_backend):
    import asyncio

    server = serve(known_models={"fake-model", "other"})
    backend = make_backend(server, model="no-such-model")
    with pytest.raises(TeacherError, match="does not serve model 'no-such-model'; it serves: fake-model, other"):
        asyncio.run(backend.check())
    assert asyncio.run(make_backend(server).check()) == "generic"


def test_a_url_without_v1_is_blamed_on_the_path_with_a_hint(serve, make_backend, run_backend, chat):
    import asyncio

    server = serve()
    root = server.base_url.removesuffix("/v1")
    with pytest.raises(TeacherError, match=r"has no POST .*/chat/completions \(HTTP 404.*did you mean .*/v1\?"):
        run_backend(make_backend(root), [chat("hi")])
    with pytest.raises(TeacherError, match=r"has no GET .*/models \(HTTP 404\).*did you mean"):
        asyncio.run(make_backend(root).check())


def test_an_unknown_model_is_still_blamed_on_the_model(serve, make_backend, run_backend, chat):
    server = serve(known_models={"fake-model"})
    with pytest.raises(TeacherError, match="rejected the request for model 'nope'"):
        run_backend(make_backend(server, model="nope"), [chat("hi")])

"""Against a real llama.cpp server (llama-cpp-python's, serving SmolLM2-135M): start one with
`python bench/llama_server.py --serve-only` and point LLMAUG_LLAMA_SERVER at its /v1 URL; skipped otherwise."""

from __future__ import annotations

import os

import pytest

from llmaug.data import load_bundled, sample_per_class
from llmaug.teachers import GenerationParams, Teacher, TeacherRequest
from llmaug.teachers.openai_compat import OpenAICompatibleBackend
from llmaug.teachers.structured import chosen, examples_schema, json_items

URL = os.environ.get("LLMAUG_LLAMA_SERVER")
MODEL = os.environ.get("LLMAUG_LLAMA_MODEL", "smollm2")
LABELS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not URL, reason="no llama.cpp server: run `python bench/llama_server.py --serve-only` and set "
                                       "LLMAUG_LLAMA_SERVER=http://127.0.0.1:8765/v1"),
]


def backend(**options) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(URL, MODEL, timeout=120, concurrency=2, **options)


def label_requests(n: int) -> list[TeacherRequest]:
    questions = sample_per_class(load_bundled("trec6", "test"), 2, seed=1)[:n]
    return [TeacherRequest.chat([{"role": "user", "content": f"Question: {q.text}\nWhich category is it, one of "
                                  f"{', '.join(LABELS)}? Answer with the category."}],
                                params=GenerationParams(temperature=0.0, max_tokens=16), choices=LABELS)
            for q in questions]


def test_the_server_is_detected_as_llama_cpp_and_serves_the_model():
    with Teacher(backend()) as teacher:
        assert teacher.check() == "llama.cpp"


def test_constrained_choices_are_always_a_label_free_text_often_not():
    requests = label_requests(12)
    with Teacher(backend()) as constrained:
        answers = constrained.generate(requests)
    assert all(a.text in LABELS and a.finish_reason == "choice" for a in answers)
    with Teacher(backend(server="generic")) as free:
        free_answers = free.generate(requests)
    unusable = sum(chosen(a, LABELS) is None for a in free_answers)
    assert constrained.usage.unusable_choices == 0 and free.usage.unusable_choices == unusable


def test_a_json_schema_gets_the_number_of_examples_asked_for():
    request = TeacherRequest.chat([{"role": "user", "content": "Write 3 new questions about cities. Reply with only a "
                                    "JSON object: {\"examples\": [the 3 questions, as strings]}."}],
                                  params=GenerationParams(max_tokens=200), json_schema=examples_schema(3))
    with Teacher(backend()) as teacher:
        [answer] = teacher.generate([request])
    items = json_items(answer.text)
    assert items is not None and len(items) == 3


def test_promptmix_and_llm2llm_run_over_http_within_their_plan(tmp_path):
    from rich.console import Console

    from llmaug.config import load_config
    from llmaug.plan import make_plan
    from llmaug.session import resolve_run_config, start_run

    teacher = {"teacher": f"openai-compatible:{URL}@{MODEL}", "teacher_options": {"timeout": 120, "concurrency": 2}}
    for name, settings in {
        "promptmix": {"method_options": {"cycles": 1, "per_cycle": 1}, "method": "promptmix"},
        "llm2llm": {"method_options": {"max_attempts": 1}, "method": "llm2llm", "rounds": 1},
    }.items():
        values = {**settings, "dataset": "trec6", "per_class": 2, "student": "tfidf", "max_eval": 30, **teacher}
        plan = make_plan(load_config(None, values))
        result = start_run(resolve_run_config(None, {**values, "out": str(tmp_path / name)}, {}, None), Console(quiet=True))
        spent = sum(r.teacher_requests for r in result.rounds)
        assert 0 < spent <= plan.requests
        assert sum(r.completion_tokens for r in result.rounds) <= plan.completion_bound
        if name == "promptmix":
            assert result.usage["unusable_choices"] == 0 and result.usage["choice_answers"] > 0

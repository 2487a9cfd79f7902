"""LLM2LLM's `per_request: k`: k examples per request as a JSON array under a schema, over real HTTP to the loopback
server playing a vLLM server (which enforces the schema) and a generic one (which does not)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from llmaug.data import Example
from llmaug.methods import LLM2LLM
from llmaug.runner import run
from llmaug.students.base import Student
from llmaug.teachers import Teacher
from llmaug.teachers.openai_compat import OpenAICompatibleBackend
from llmaug.testing.fake_openai import FakeOpenAIServer
from llmaug.testing.scripted import question_responder

SEEDS = [("What city hosts the Eiffel Tower ?", "LOC"), ("Where is Mount Kilimanjaro ?", "LOC"),
         ("In which country is Kyoto ?", "LOC"), ("How many legs does a spider have ?", "NUM"),
         ("What year did the Berlin Wall fall ?", "NUM"), ("How far is the Moon from Earth ?", "NUM")]


def seed_set() -> list[Example]:
    return [Example.create(text, label) for text, label in SEEDS]


class AlwaysWrong(Student):
    """Predicts a label other than the gold one: every seed is an error in every round."""

    kind = "always-wrong"

    def _fit(self, examples, seed):
        pass

    def predict(self, examples):
        return [next(label for label in self.labels if label != e.label) for e in examples]

    def predict_proba(self, examples):
        return np.full((len(examples), len(self.labels)), 1 / len(self.labels))

    def _save(self, directory):
        (directory / "nothing-to-save").write_text("")


def run_with(server: FakeOpenAIServer, **options):
    backend = OpenAICompatibleBackend(server.base_url, "fake-model", api_key_env="LLMAUG_NO_KEY", timeout=5, max_retries=1)
    with Teacher(backend) as teacher:
        result = run(LLM2LLM(rounds=1, per_error=5, error_source="train", **options), seed_set(), teacher=teacher,
                     student=AlwaysWrong, label_check="none", select="last")
    return result, teacher


def test_k_examples_per_request_each_with_its_own_provenance_and_id():
    with FakeOpenAIServer(question_responder, server_kind="vllm") as server:
        result, teacher = run_with(server, per_request=3)
        bodies = [record.body for record in server.log if record.body]

    # 6 wrong seeds x 5 examples, asked as 3 + 2 per seed: 12 requests instead of 30
    assert len(bodies) == 12 and teacher.usage.calls == 12
    sizes = Counter(body["structured_outputs"]["json"]["properties"]["examples"]["maxItems"] for body in bodies)
    assert sizes == {3: 6, 2: 6}
    added = result.added
    assert len(added) == 30 and len({e.id for e in added}) == 30
    by_parent = Counter(e.provenance.parent_ids[0] for e in added)
    assert set(by_parent.values()) == {5}
    assert {e.provenance.item_index for e in added} == {0, 1, 2}
    assert all(e.provenance.prompt == "llm2llm-classification-many@1" for e in added)


def test_default_is_one_request_per_example_without_a_schema():
    with FakeOpenAIServer(question_responder, server_kind="vllm") as server:
        result, _ = run_with(server)
        bodies = [record.body for record in server.log if record.body]
    assert len(bodies) == 30 and not any("structured_outputs" in body for body in bodies)
    assert len(result.added) == 30


def test_a_generic_server_answer_without_json_is_read_as_a_list():
    with FakeOpenAIServer(question_responder, server_kind="generic") as server:
        result, _ = run_with(server, per_request=5, max_attempts=1)
        bodies = [record.body for record in server.log if record.body]
    assert len(bodies) == 6 and not any("structured_outputs" in b or "response_format" in b for b in bodies)
    assert len(result.added) == 6  # one question per plain-text answer

"""`PromptTemplate`: how a template renders, and the `name@version` every synthetic row records as its prompt."""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil

import pytest
from jinja2.exceptions import UndefinedError

import llmaug.prompts
from llmaug.prompts.base import PromptTemplate

# The wording behind each `name@version`. A row's provenance names the prompt that made it by `name@version` only,
# so two wordings must never share one: when a template's text changes, bump its version and update its line here.
PINNED = {
    "paraphrase@1": "7b945770b6be13bb",
    "zerogen@1": "724a3415537371a3",
    "zerogen-pair@1": "69b7e6340371f0a5",
    "zerogen-on-premise@1": "73cab116433b079c",
    "llm2llm-classification@2": "10e1fe9f37abc014",
    "llm2llm-classification-many@1": "908695b334b4e6c3",
    "llm2llm-pair@1": "1a3f25293f9b08eb",
    "llm2llm-qa@1": "51d76f83600eba7a",
    "llm2llm-diverse@1": "862855fccef05a40",
    "llm2llm-boundary@1": "06fcc2b7fd0e7656",
    "msp-context@1": "16d6570a0caba3d5",
    "msp-describe@1": "518e88a3040696a2",
    "promptmix-mix@1": "b3244eb8d9a9266c",
    "promptmix-relabel@1": "e5dc55c164d61d65",
    "promptmix-describe@1": "f9d0494202953fd0",
    "s3-rationales@1": "39126f7058263bf9",
    "s3-rationales-pair@1": "264f66905ed5f5c0",
    "s3-seed@1": "dc3ca82a44c83b6e",
    "s3-seed-pair@1": "63f4fab56701455e",
    "s3-seed-on-premise@1": "f1bd0c2892857ecb",
    "s3-extrapolate@1": "304ef751ed09f841",
    "s3-extrapolate-pair@1": "22a6df99df98dfde",
}


def all_templates() -> list[PromptTemplate]:
    found = []
    for module in pkgutil.iter_modules(llmaug.prompts.__path__):
        loaded = importlib.import_module(f"llmaug.prompts.{module.name}")
        found += [value for value in vars(loaded).values() if isinstance(value, PromptTemplate)]
    return list({id(t): t for t in found}.values())  # a template re-exported by another module counts once


def wording(template: PromptTemplate) -> str:
    text = json.dumps([template.system, template.user, [list(shot) for shot in template.shots]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_every_template_has_its_own_name_and_its_wording_is_pinned_to_its_version():
    templates = all_templates()
    names = [t.name for t in templates]
    assert len(set(names)) == len(names), "two templates share a name"
    changed = {t.ref for t in templates if PINNED.get(t.ref) != wording(t)}
    assert not changed, f"wording changed or new without a version bump (then update PINNED): {sorted(changed)}"
    assert {t.ref for t in templates} == set(PINNED), "a pinned template was removed or renamed"


def test_ref_is_name_at_version():
    assert PromptTemplate(name="demo", version=3, user="hi").ref == "demo@3"


def test_messages_are_system_then_demonstrations_then_the_user_turn():
    template = PromptTemplate(
        name="demo", version=1, system="You write {{ unit }}s.", user="Write one {{ unit }} about {{ topic }}.",
        shots=(("Write one question about cats.", "Do cats purr?"), ("Write one question about dogs.", "Do dogs bark?")),
    )
    messages = template.render(unit="question", topic="the sea")
    assert [(m.role, m.content) for m in messages] == [
        ("system", "You write questions."),
        ("user", "Write one question about cats."), ("assistant", "Do cats purr?"),
        ("user", "Write one question about dogs."), ("assistant", "Do dogs bark?"),
        ("user", "Write one question about the sea."),
    ]


def test_without_a_system_text_there_is_no_system_message_and_surrounding_whitespace_is_trimmed():
    messages = PromptTemplate(name="demo", version=1, user="\n  {{ a }}\n{% if b %}{{ b }}{% endif %}\n\n").render(a="x", b="")
    assert [(m.role, m.content) for m in messages] == [("user", "x")]


def test_demonstrations_are_sent_verbatim_not_rendered():
    template = PromptTemplate(name="demo", version=1, user="{{ q }}", shots=(("Say {{ q }}", "{{ 7*7 }}"),))
    user, assistant, _ = template.render(q="now")
    assert user.content == "Say {{ q }}" and assistant.content == "{{ 7*7 }}"


@pytest.mark.parametrize("part", ["system", "user"])
def test_a_variable_the_caller_did_not_pass_is_an_error_not_an_empty_string(part):
    texts = {"system": "Task: {{ task }}", "user": "Write about {{ topic }}."} | {part: "{{ missing }} and {{ topic }}"}
    template = PromptTemplate(name="demo", version=1, **texts)
    with pytest.raises(UndefinedError, match="missing"):
        template.render(task="t", topic="x")

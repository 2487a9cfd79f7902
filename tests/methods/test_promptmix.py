"""PromptMix control flow with a scripted teacher and a keyword embedding in place of MiniLM; one end-to-end run
with the real embedded teacher, MiniLM and the embed-lr student (slow)."""

from __future__ import annotations

import itertools
import json
import random
import re

import numpy as np
import pytest

from llmaug.data import Example
from llmaug.errors import ConfigError
from llmaug.filters import similarity
from llmaug.methods import PromptMix, TaskInfo
from llmaug.methods.promptmix import groups, sample_alpha
from llmaug.testing.scripted import run_method as run  # the method's own rounds, as the paper keeps them
from llmaug.teachers import Teacher
from llmaug.teachers.function import FunctionBackend

KEYWORDS = {"A": "apple", "B": "banana", "C": "cherry", "D": "date", "E": "elder"}
DESCRIPTIONS = {label: f"questions about the {word}" for label, word in KEYWORDS.items()}


def seed_set() -> list[Example]:
    return [Example.create(f"What colour is a {word} {kind} ?", label)
            for label, word in KEYWORDS.items() for kind in ("fruit", "tree")]


def task() -> TaskInfo:
    return TaskInfo(unit="question", label_descriptions=dict(DESCRIPTIONS))


class KeywordEncoder:
    """Embeds a text as its counts of the five keywords (plus a constant, so that label names embed too)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = np.array([[t.count(word) for word in KEYWORDS.values()] + [0.5] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def _keyword_embeddings(monkeypatch):
    monkeypatch.setattr(similarity, "shared_encoder", lambda model_dir=None, device="auto": KeywordEncoder())


MIX_ASK = re.compile(r"belongs (\d+)% to (\w+) and (\d+)% to (\w+)\.")


def scripted_teacher(relabel_answer=lambda choices, label: label) -> tuple[Teacher, FunctionBackend]:
    """Mix prompts: three questions naming the main and the other class's keywords; relabel prompts: the
    answer `relabel_answer(choices, generated label)`; description prompts: one phrase."""
    counter = itertools.count()

    def respond(request) -> str:
        prompt = request.messages[-1].content
        if request.choices:
            generated = next(label for label, word in KEYWORDS.items() if f"1. Is {word}" in prompt)
            return relabel_answer(list(request.choices), generated)
        if "what are questions of this category about" in prompt:
            return "Things people ask."
        _, label, _, other = MIX_ASK.search(prompt).groups()
        n = next(counter)
        first, second = KEYWORDS[label], KEYWORDS[other]
        return (f"Is {first} sweeter than {second} in case {n} one ?\nExample 2: Is {first} sweeter than {second} in case {n} two ?\n"
                f"Example 3: Is {first} sweeter than {second} in case {n} three ? ({100}% {label})")

    backend = FunctionBackend(respond)
    return Teacher(backend), backend


def mix_prompts(backend: FunctionBackend) -> list[str]:
    return [r.messages[-1].content for r in backend.requests if "Generate a diverse set" in r.messages[-1].content]


def test_alpha_is_in_range_on_the_005_grid_peaked_near_09_and_seeded():
    draws = [sample_alpha(random.Random(7)) for _ in range(3)]
    assert len(set(draws)) == 1
    rng = random.Random(0)
    alphas = [sample_alpha(rng) for _ in range(2000)]
    assert all(0.5 <= a <= 1.0 and abs(a * 20 - round(a * 20)) < 1e-9 for a in alphas)
    assert 0.83 < sum(alphas) / len(alphas) < 0.88  # 0.5 + 0.5 · E[Beta(5, 2)] = 0.857
    assert [sample_alpha(random.Random(1)) for _ in range(5)] != [sample_alpha(random.Random(2)) for _ in range(5)]


@pytest.mark.parametrize("count, size, expected", [(6, 4, [4, 2]), (5, 4, [5]), (9, 4, [4, 5]), (77, 4, [4] * 18 + [5])])
def test_groups_cover_every_label_once_and_leave_no_class_alone(count, size, expected):
    labels = [f"L{i}" for i in range(count)]
    chunks = groups(labels, size, random.Random(0))
    assert [len(c) for c in chunks] == expected
    assert sorted(label for chunk in chunks for label in chunk) == sorted(labels)


def test_mix_prompts_show_t_classes_with_descriptions_and_k_examples_and_ask_for_an_alpha_mix():
    teacher, backend = scripted_teacher()
    seeds = seed_set()
    run(PromptMix(cycles=2, per_cycle=3, classes_per_prompt=3, examples_per_class=1, relabel=False), seeds,
        teacher=teacher, student="tfidf", task=task())
    prompts = mix_prompts(backend)
    assert len(prompts) == 5 * 2 * 3  # every class, every cycle, per_cycle prompts
    main_classes = []
    for prompt in prompts:
        listed = re.findall(r"^\d+\. (\w+): (.+)\. Some examples of questions include:$", prompt, re.MULTILINE)
        assert len(listed) in (3, 2)  # five classes in groups of t = 3: one group of 3, one of 2
        assert all(description == DESCRIPTIONS[name] for name, description in listed)
        assert len(re.findall(r"^- What colour", prompt, re.MULTILINE)) == len(listed)  # k = 1 seed per class
        major, label, minor, other = MIX_ASK.search(prompt).groups()
        assert 50 <= int(major) <= 100 and int(major) + int(minor) == 100
        assert other != label and {label, other} <= {name for name, _ in listed}
        assert "Generate a diverse set of 3 short questions" in prompt and prompt.endswith("Example 1:")
        main_classes.append(label)
    assert all(main_classes.count(label) == 6 for label in KEYWORDS)


def test_a1_keeps_one_usable_text_per_prompt_with_the_main_label_and_no_relabelling():
    teacher, backend = scripted_teacher()
    result = run(PromptMix(cycles=1, per_cycle=2, relabel=False), seed_set(), teacher=teacher, student="tfidf", task=task())
    assert not any(r.choices for r in backend.requests)
    assert len(result.added) == 10
    assert result.rounds[0].rejection_reasons == {"unused": 20}  # three usable texts per prompt, one kept
    for example in result.added:
        word = KEYWORDS[example.label]
        assert example.text.startswith(f"Is {word} sweeter") and "%" not in example.text
        assert example.provenance.origin == "synthetic" and example.provenance.prompt == "promptmix-mix@1"
        assert len(example.provenance.parent_ids) >= 2 * 4  # the seeds shown in its prompt


def test_relabelling_offers_only_the_nearest_classes_at_temperature_zero():
    teacher, backend = scripted_teacher()
    run(PromptMix(cycles=1, per_cycle=2, nearest=2), seed_set(), teacher=teacher, student="tfidf", task=task())
    relabels = [r for r in backend.requests if r.choices]
    assert len(relabels) == 10
    for request in relabels:
        prompt = request.messages[-1].content
        mentioned = {label for label, word in KEYWORDS.items() if f"1. Is {word}" in prompt or f"sweeter than {word}" in prompt}
        assert set(request.choices) == mentioned  # the two classes whose keywords the text names
        listed = re.findall(r"^\d+\. (\w+): ", prompt, re.MULTILINE)
        assert listed == sorted(request.choices)
        assert request.params.temperature == 0.0


def test_changed_labels_become_relabelled_rows_and_are_counted(tmp_path):
    # The teacher moves every text to the other class it names, except for class A, where it answers nonsense.
    def answer(choices, generated):
        return "no idea" if generated == "A" else next(c for c in choices if c != generated)

    teacher, _ = scripted_teacher(answer)
    result = run(PromptMix(cycles=1, per_cycle=2, nearest=2), seed_set(), teacher=teacher, student="tfidf",
                 task=task(), out=tmp_path)
    report = json.loads((tmp_path / "relabel.json").read_text())
    assert report["relabelled"] == 10 and report["changed"] == 8 and report["unusable_answers"] == 2
    relabelled = [e for e in result.added if e.provenance.origin == "relabelled"]
    assert len(relabelled) == 8
    generated = {change["id"]: change["generated"] for change in report["changes"]}
    for example in relabelled:
        original = generated[example.id]
        assert example.provenance.parent_ids == [original["id"]] and example.label != original["label"]
        assert example.provenance.prompt == "promptmix-relabel@1" and example.text == original["text"]
    assert all(e.label == "A" for e in result.added if e.provenance.origin == "synthetic")


def test_descriptions_come_from_a_file_then_the_task_then_the_teacher_and_are_saved(tmp_path):
    (tmp_path / "descriptions.yaml").write_text("A: apples and nothing else\n")
    teacher, backend = scripted_teacher()
    partial = TaskInfo(unit="question", label_descriptions={"A": "ignored", "B": "bananas only"})
    method = PromptMix(cycles=1, per_cycle=1, relabel=False, descriptions=str(tmp_path / "descriptions.yaml"))
    run(method, seed_set(), teacher=teacher, student="tfidf", task=partial, out=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "descriptions.json").read_text())
    assert saved == {"A": "apples and nothing else", "B": "bananas only", "C": "Things people ask",
                     "D": "Things people ask", "E": "Things people ask"}
    describe = [r for r in backend.requests if "of this category about" in r.messages[-1].content]
    assert len(describe) == 3 and all(r.params.temperature == 0.0 for r in describe)
    assert any(". A: apples and nothing else. Some examples" in p for p in mix_prompts(backend))


def test_a_descriptions_file_naming_unknown_labels_is_a_config_error(tmp_path):
    (tmp_path / "d.json").write_text('{"Z": "no such class"}')
    with pytest.raises(ConfigError, match="labels not in the label set: 'Z'"):
        run(PromptMix(descriptions=str(tmp_path / "d.json")), seed_set(), teacher=scripted_teacher()[0], student="tfidf")


@pytest.mark.parametrize(("content", "message"), [
    ("A: apples\nB: [bananas\n", r"invalid YAML: .*"),
    (None, "class descriptions file not found"),
])
def test_a_bad_or_missing_descriptions_file_is_a_config_error_naming_where(tmp_path, content, message):
    path = tmp_path / "d.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        run(PromptMix(descriptions=str(path)), seed_set(), teacher=scripted_teacher()[0], student="tfidf")
    assert str(caught.value.where).startswith(str(path))
    if content is not None:
        assert str(caught.value.where).startswith(f"{path}:3:")  # the line and column of the YAML error


def test_a_rerun_from_the_cache_makes_no_teacher_calls_and_the_same_data(tmp_path):
    cache = tmp_path / "cache.sqlite"
    _, backend = scripted_teacher()
    with Teacher(backend, cache=cache) as teacher:
        first = run(PromptMix(cycles=2, per_cycle=2), seed_set(), teacher=teacher, student="tfidf", task=task())
    silent = FunctionBackend(lambda request: pytest.fail("the teacher was called on a rerun"))
    with Teacher(silent, cache=cache) as teacher:
        again = run(PromptMix(cycles=2, per_cycle=2), seed_set(), teacher=teacher, student="tfidf", task=task())
    assert [e.id for e in again.data] == [e.id for e in first.data]


@pytest.mark.slow
def test_end_to_end_with_the_embedded_teacher_minilm_relabelling_and_a_real_student(tmp_path):
    from llmaug.data import load_bundled
    from llmaug.data.bundled import BUNDLED
    from llmaug.data.sampling import sample_per_class
    from llmaug.filters.quality import QualityFilter

    seeds = sample_per_class(load_bundled("trec6"), 2, seed=0)
    test = sample_per_class(load_bundled("trec6", "test"), 5, seed=0)
    info = TaskInfo(description="question classification", unit="question",
                    label_descriptions=dict(BUNDLED["trec6"].label_descriptions))
    with Teacher("embedded", threads=1, cache=tmp_path / "cache.sqlite") as teacher:
        result = run(PromptMix(cycles=1, per_cycle=1, max_tokens=48), seeds, teacher=teacher, student="embed-lr",
                     eval=test, task=info, out=tmp_path / "run", quality=QualityFilter())
    report = json.loads((tmp_path / "run" / "relabel.json").read_text())
    assert report["relabelled"] == len([e for e in result.added])
    assert report["unusable_answers"] == 0  # the embedded backend scores the choices: always a valid label
    assert result.test is not None and result.test.n == 30

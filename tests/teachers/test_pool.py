"""The oracle pool teacher: real unused rows of the requested label, chosen by similarity or at random."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmaug.data import Example
from llmaug.errors import ConfigError, TeacherError
from llmaug.methods import LLM2LLM, TaskInfo
from llmaug.runner import run
from llmaug.teachers import Teacher
from llmaug.teachers.base import RequestTarget, TeacherRequest
from llmaug.teachers.pool import PoolBackend

ROWS = [
    ("Where is the Eiffel Tower ?", "LOC"),
    ("Where is the Leaning Tower of Pisa ?", "LOC"),
    ("Which river flows through Cairo ?", "LOC"),
    ("What mountain range crosses Peru ?", "LOC"),
    ("How many legs does a spider have ?", "NUM"),
    ("How many legs does an ant have ?", "NUM"),
    ("What year did the Berlin Wall fall ?", "NUM"),
    ("How far away is the Moon ?", "NUM"),
]


def pool_rows() -> list[Example]:
    return [Example.create(text, label) for text, label in ROWS]


def ask(label: str | None = None, like: str | None = None, prompt: str = "Write one new question.", index: int = 0):
    target = RequestTarget(label=label, like=like) if label is not None else None
    return TeacherRequest.chat([{"role": "user", "content": prompt}], sample_index=index, target=target)


def answers(backend: PoolBackend, requests: list[TeacherRequest]):
    return asyncio.run(backend.generate(requests))


def test_never_returns_a_row_twice_and_reports_an_exhausted_label():
    backend = PoolBackend(pool_rows(), "random", encoder="tfidf")
    responses = answers(backend, [ask("LOC", index=i) for i in range(5)])
    texts = [r.text for r in responses[:4]]
    assert sorted(texts) == sorted(text for text, label in ROWS if label == "LOC")
    assert responses[4].text == "" and responses[4].finish_reason == "error"
    assert backend.served == 4 and backend.exhausted_requests == 1


def test_the_requested_label_is_respected():
    backend = PoolBackend(pool_rows(), "similar", encoder="tfidf")
    labels = {text: label for text, label in ROWS}
    for label in ("NUM", "LOC", "NUM"):
        response = answers(backend, [ask(label, like="Where is the Eiffel Tower ?")])[0]
        assert labels[response.text] == label


def test_similar_mode_picks_the_nearest_unused_row_and_never_the_example_shown():
    backend = PoolBackend(pool_rows(), "similar", encoder="tfidf")
    first, second = answers(backend, [ask("NUM", like="How many legs does a spider have ?", index=i) for i in range(2)])
    assert first.text == "How many legs does an ant have ?"  # the spider row itself is the example shown
    assert second.text != "How many legs does a spider have ?"
    tower = answers(backend, [ask("LOC", like="Where is the Eiffel Tower ?")])[0]
    assert tower.text == "Where is the Leaning Tower of Pisa ?"


def test_random_mode_ignores_similarity_and_depends_on_the_seed():
    like = "Where is the Eiffel Tower ?"
    orders = set()
    for seed in range(6):
        backend = PoolBackend(pool_rows(), "random", encoder="tfidf", seed=seed, exclude=[like])
        orders.add(tuple(r.text for r in answers(backend, [ask("LOC", like=like, index=i) for i in range(3)])))
    assert len(orders) > 1
    first_picks = {order[0] for order in orders}
    assert first_picks != {"Where is the Leaning Tower of Pisa ?"}


def test_same_requests_in_the_same_order_get_the_same_answers():
    requests = [ask("LOC", like=text, index=i) for i, (text, _) in enumerate(ROWS[:3])]
    for mode in ("similar", "random"):
        once = [r.text for r in answers(PoolBackend(pool_rows(), mode, encoder="tfidf"), requests)]
        again = [r.text for r in answers(PoolBackend(pool_rows(), mode, encoder="tfidf"), requests)]
        assert once == again


def test_excluded_rows_are_never_handed_out():
    seed = [Example.create(text, label) for text, label in ROWS if label == "NUM"][:3]
    backend = PoolBackend(pool_rows(), "random", encoder="tfidf", exclude=seed)
    responses = answers(backend, [ask("NUM", index=i) for i in range(2)])
    assert responses[0].text == "How far away is the Moon ?"
    assert responses[1].finish_reason == "error"


def test_a_request_without_target_is_read_from_the_pool_row_it_quotes():
    backend = PoolBackend(pool_rows(), "similar", encoder="tfidf")
    prompt = 'Here is a question: "How many legs does a spider have ?" Write a new, different one.'
    response = answers(backend, [ask(prompt=prompt)])[0]
    assert response.text == "How many legs does an ant have ?"


def test_a_request_without_target_or_quoted_row_uses_the_one_quoted_label():
    backend = PoolBackend(pool_rows(), "random", encoder="tfidf")
    response = answers(backend, [ask(prompt='Write one question of the category "LOC".')])[0]
    assert dict(ROWS)[response.text] == "LOC"
    with pytest.raises(TeacherError, match="cannot tell which label"):
        answers(backend, [ask(prompt="Write one question.")])


def test_pair_rows_answer_in_the_llm2llm_pair_format():
    rows = [Example.create("A man sleeps.", "entailment", text_pair="Someone rests."),
            Example.create("A dog runs.", "entailment", text_pair="An animal moves.")]
    backend = PoolBackend(rows, "similar", encoder="tfidf")
    request = TeacherRequest.chat([{"role": "user", "content": "x"}],
                                  target=RequestTarget(label="entailment", like="A man sleeps.", like_pair="Someone rests."))
    assert answers(backend, [request])[0].text == "First text: A dog runs.\nSecond text: An animal moves."


def test_identity_names_the_pool_and_the_mode(tmp_path):
    folder = tmp_path / "mini"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in ROWS))
    assert PoolBackend(str(folder), encoder="tfidf").identity == "pool:mini:similar"
    assert PoolBackend(f"{folder}:random", encoder="tfidf").identity == "pool:mini:random"
    with Teacher("pool:trec6:random") as teacher:
        assert teacher.identity == "pool:trec6:random"
    with pytest.raises(ConfigError, match="option 'mode' of teacher 'pool'"):
        PoolBackend(pool_rows(), "nearest")


def test_target_does_not_change_the_cache_key():
    plain = ask(prompt="Write one question.")
    targeted = TeacherRequest.chat([{"role": "user", "content": "Write one question."}],
                                   target=RequestTarget(label="LOC", like="Where?"))
    assert plain.cache_key("b") == targeted.cache_key("b")


def test_llm2llm_with_the_pool_adds_real_rows_of_the_parents_labels():
    from llmaug.data import load_bundled, sample_per_class

    train = load_bundled("trec6")[:600]
    seed = sample_per_class(train, 3, seed=0)
    backend = PoolBackend(train, "similar", encoder="tfidf", exclude=seed, name="trec6-head")
    result = run(LLM2LLM(rounds=2, folds=3), seed, teacher=Teacher(backend), student="tfidf",
                 task=TaskInfo(labels=sorted({e.label for e in seed})))
    real = {(e.text, e.label) for e in train}
    seed_texts = {e.text for e in seed}
    assert result.added
    assert all((e.text, e.label) in real and e.text not in seed_texts for e in result.added)
    assert len({e.text for e in result.added}) == len(result.added)
    parents = {e.id: e.label for e in seed}
    assert all(parents[e.provenance.parent_ids[0]] == e.label for e in result.added)

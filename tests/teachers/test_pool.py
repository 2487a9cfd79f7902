"""The oracle pool teacher: real unused rows of the requested label, chosen by similarity or at random."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmaug.data import Example
from llmaug.errors import ConfigError, TeacherError
from llmaug.methods import LLM2LLM, TaskInfo
from llmaug.testing.scripted import run_method as run  # the method's own rounds, as the paper keeps them
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
    result = run(LLM2LLM(rounds=2), seed, teacher=Teacher(backend), student="tfidf", folds=3,
                 task=TaskInfo(labels=sorted({e.label for e in seed})))
    real = {(e.text, e.label) for e in train}
    seed_texts = {e.text for e in seed}
    assert result.added
    assert all((e.text, e.label) in real and e.text not in seed_texts for e in result.added)
    assert len({e.text for e in result.added}) == len(result.added)
    parents = {e.id: e.label for e in seed}
    assert all(parents[e.provenance.parent_ids[0]] == e.label for e in result.added)


# ----------------------------------------------------------------------------------- targeting policies


def vector_encoder(vectors: dict[str, list[float]]):
    """An encoder with hand-placed unit vectors, so the expected choice can be worked out on paper."""
    import numpy as np

    def encode(texts):
        rows = np.array([vectors[text] for text in texts], dtype=float)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return encode


TOY = {  # (label, vector); the seeds are the first two A rows and the B row
    "seed a1": ("A", [1.0, 0.0, 0.0]), "seed a2": ("A", [0.9, 0.1, 0.0]), "seed b": ("B", [0.0, 1.0, 0.0]),
    "a close to the seeds": ("A", [0.95, 0.05, 0.0]), "a far from them": ("A", [0.0, 0.0, 1.0]),
    "a near class B": ("A", [0.3, 0.9, 0.1]), "b other": ("B", [0.1, 1.0, 0.2]),
}


def toy_pool(mode: str = "similar") -> PoolBackend:
    rows = [Example.create(text, label) for text, (label, _) in TOY.items()]
    seeds = [row for row in rows if row.text.startswith("seed")]
    return PoolBackend(rows, mode, exclude=seeds, encoder=vector_encoder({t: v for t, (_, v) in TOY.items()}))


def policy_ask(ask: str, confused_with: str | None = None) -> TeacherRequest:
    target = RequestTarget(label="A", like="seed a1", ask=ask, confused_with=confused_with)
    return TeacherRequest.chat([{"role": "user", "content": "Write one."}], target=target)


def test_similar_picks_the_unused_row_nearest_the_seed():
    assert answers(toy_pool(), [policy_ask("similar")])[0].text == "a close to the seeds"


def test_diverse_picks_the_row_whose_nearest_held_row_is_farthest():
    """max over candidates of min distance to the A rows held (the two A seeds): [0, 0, 1] is orthogonal to both."""
    first, second = answers(toy_pool(), [policy_ask("diverse"), policy_ask("diverse")])
    assert first.text == "a far from them"
    assert second.text == "a near class B"  # now [0, 0, 1] is held too: of the rest, the one least like any of them


def test_boundary_picks_the_row_of_the_label_nearest_the_confused_labels_centroid():
    assert answers(toy_pool(), [policy_ask("boundary", confused_with="B")])[0].text == "a near class B"


def test_prior_draws_labels_from_the_seed_distribution_not_the_request():
    rows = [Example.create(f"question {i} ?", "A" if i < 40 else "B") for i in range(80)]
    seeds = rows[:9] + rows[40:41]  # nine A seeds, one B seed
    backend = PoolBackend(rows, "prior", exclude=seeds, encoder="tfidf", seed=1)
    labels = {row.text: row.label for row in rows}
    served = [labels[r.text] for r in answers(backend, [ask("B", index=i) for i in range(20)])]
    assert served.count("A") > served.count("B")  # the request asked for B every time

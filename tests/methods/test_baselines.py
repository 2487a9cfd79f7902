"""The one-pass baselines (paraphrase, ZeroGen, none) and --match-budget, with a scripted teacher; one small
end-to-end run of each generating baseline with the real embedded teacher (slow)."""

from __future__ import annotations

import itertools

import pytest

from llmaug.config import RunConfig
from llmaug.data import Example
from llmaug.errors import ConfigError
from llmaug.methods import NoAugmentation, Paraphrase, S3, TaskInfo, ZeroGen
from llmaug.testing.scripted import run_method as run  # the method's own rounds, as the paper keeps them
from llmaug.session import build_method
from llmaug.teachers import Budget, Teacher
from llmaug.teachers.function import FunctionBackend

SEED_ROWS = [
    ("Where is Mount Kilimanjaro ?", "LOC"),
    ("In which country is Kyoto ?", "LOC"),
    ("How many legs does a spider have ?", "NUM"),
    ("What year did the Berlin Wall fall ?", "NUM"),
]
PAIRS = [
    ("The cat sat on the mat all day.", "A cat sat.", "entailment"),
    ("Rome is the capital of Italy.", "Rome is in Italy.", "entailment"),
    ("The shop closes at noon on Sundays.", "The shop never closes.", "not_entailment"),
    ("Paris hosted the 1924 Olympics.", "Paris never hosted the Games.", "not_entailment"),
]


def seed_set() -> list[Example]:
    return [Example.create(text, label) for text, label in SEED_ROWS]


def pair_set() -> list[Example]:
    return [Example.create(text, label, text_pair=pair) for text, pair, label in PAIRS]


def numbered_teacher(batch_size: int = 8, **teacher_options) -> tuple[Teacher, FunctionBackend]:
    counter = itertools.count()

    def respond(request) -> str:
        if "different reasons" in request.messages[-1].content:  # S3's rationales, for the --match-budget test
            return "1. it names a place\n2. it asks for a count"
        if "First text: ..." in request.messages[-1].content:
            return f"First text: A premise about rivers number {next(counter)}.\nSecond text: A hypothesis {next(counter)}."
        return f"Which new question number {next(counter)} is this ?"

    backend = FunctionBackend(respond, batch_size=batch_size)
    return Teacher(backend, **teacher_options), backend


def test_none_trains_once_on_the_seed_set():
    teacher, backend = numbered_teacher()
    result = run(NoAugmentation(), seed_set(), teacher=teacher, student="tfidf")
    assert backend.requests == [] and len(result.rounds) == 1 and result.data == seed_set()


def test_paraphrase_rewrites_every_seed_n_times_and_keeps_the_seeds():
    teacher, backend = numbered_teacher()
    seeds = seed_set()
    result = run(Paraphrase(per_example=2), seeds, teacher=teacher, student="tfidf", task=TaskInfo(unit="question"))
    assert len(backend.requests) == 2 * len(seeds)
    for seed in seeds:
        asked = [r for r in backend.requests if seed.text in r.messages[-1].content]
        assert [r.sample_index for r in asked] == [0, 1]
        assert "Rewrite this question with different words" in asked[0].messages[-1].content
    assert result.data[: len(seeds)] == seeds and len(result.added) == 8
    by_id = {e.id: e for e in seeds}
    for example in result.added:
        p = example.provenance
        assert p.origin == "synthetic" and p.method == "paraphrase" and p.prompt == "paraphrase@1"
        assert example.label == by_id[p.parent_ids[0]].label and p.raw_output and p.sample_index in (0, 1)
        assert p.teacher == "function:scripted"


def test_paraphrase_total_spreads_exactly_that_many_calls_over_the_seeds():
    teacher, backend = numbered_teacher()
    run(Paraphrase(total=7), seed_set(), teacher=teacher, student="tfidf")
    per_seed = [sum(text in r.messages[-1].content for r in backend.requests) for text, _ in SEED_ROWS]
    assert sorted(per_seed, reverse=True) == [2, 2, 2, 1]


def test_paraphrased_pairs_keep_the_first_text_and_are_not_taken_for_duplicates_of_it():
    teacher, _ = numbered_teacher()
    result = run(Paraphrase(per_example=1), pair_set(), teacher=teacher, student="tfidf")
    assert len(result.added) == 4
    firsts = {text for text, _, _ in PAIRS}
    assert all(e.text in firsts and e.text_pair.startswith("Which new question") for e in result.added)


def test_zerogen_writes_n_per_label_from_the_label_alone_and_trains_on_synthetic_rows_only():
    teacher, backend = numbered_teacher()
    seeds = seed_set()
    task = TaskInfo(unit="question", labels=["LOC", "NUM"], label_descriptions={"LOC": "asks about a place"})
    result = run(ZeroGen(per_label=3), seeds, teacher=teacher, student="tfidf", task=task)
    assert len(backend.requests) == 6
    for request in backend.requests:
        prompt = request.messages[-1].content
        assert not any(text in prompt for text, _ in SEED_ROWS)
    assert sum('"LOC" (asks about a place)' in r.messages[-1].content for r in backend.requests) == 3
    assert len(result.data) == 6 and not any(e.is_seed for e in result.data)
    assert all(e.provenance.prompt == "zerogen@1" and e.provenance.parent_ids == [] for e in result.data)


def test_zerogen_writes_whole_pairs_for_pair_tasks():
    teacher, _ = numbered_teacher()
    result = run(ZeroGen(per_label=2), pair_set(), teacher=teacher, student="tfidf")
    assert len(result.data) == 4
    assert all(e.text.startswith("A premise") and e.text_pair.startswith("A hypothesis") for e in result.data)
    assert {e.provenance.prompt for e in result.data} == {"zerogen-pair@1"}


def test_zerogen_on_real_premises_writes_second_texts_for_seed_first_texts():
    teacher, backend = numbered_teacher()
    seeds = pair_set()
    result = run(ZeroGen(per_label=3, premises="real"), seeds, teacher=teacher, student="tfidf")
    by_id = {e.id: e for e in seeds}
    assert len(result.data) == 6
    for example, request in zip(result.data, backend.requests):
        parent = by_id[example.provenance.parent_ids[0]]
        assert example.text == parent.text and request.messages[-1].content.startswith(parent.text)
        assert example.text_pair.startswith("Which new question") and example.provenance.prompt == "zerogen-on-premise@1"


def test_requests_the_budget_did_not_allow_are_counted_as_skipped_not_rejected():
    teacher, _ = numbered_teacher(batch_size=1, budget=Budget(max_calls=3))
    result = run(Paraphrase(per_example=2), seed_set(), teacher=teacher, student="tfidf")
    assert len(result.added) == 3
    assert result.rounds[0].rejection_reasons == {} and result.rounds[0].rejected == 0
    assert result.rounds[0].skipped_requests == 5 and result.rounds[0].teacher_requests == 3


def test_match_budget_gives_the_baseline_the_teacher_calls_of_a_finished_run(tmp_path):
    s3_teacher, s3_backend = numbered_teacher()
    run(S3(rounds=1, per_label=3), seed_set(), teacher=s3_teacher, student="tfidf", out=tmp_path / "s3")
    spent = len(s3_backend.requests)
    method = build_method(RunConfig(method="paraphrase", match_budget=str(tmp_path / "s3")))
    assert method.total == spent
    teacher, backend = numbered_teacher()
    run(method, seed_set(), teacher=teacher, student="tfidf")
    assert len(backend.requests) == spent


def test_match_budget_is_refused_for_other_methods_and_unfinished_runs(tmp_path):
    with pytest.raises(ConfigError, match="cannot match another run's budget"):
        build_method(RunConfig(method="s3", match_budget=str(tmp_path)))
    with pytest.raises(ConfigError, match="not a finished run directory"):
        build_method(RunConfig(method="zerogen", match_budget=str(tmp_path)))


@pytest.mark.slow
@pytest.mark.parametrize("method", [Paraphrase(per_example=1), ZeroGen(per_label=4)], ids=["paraphrase", "zerogen"])
def test_end_to_end_with_the_embedded_teacher(method, tmp_path):
    from llmaug.data import load_bundled
    from llmaug.data.sampling import sample_per_class

    seeds = sample_per_class(load_bundled("trec6"), 2, seed=0)
    test = sample_per_class(load_bundled("trec6", "test"), 5, seed=0)
    with Teacher("embedded", threads=1, cache=tmp_path / "cache.sqlite") as teacher:
        # Without the embedding label check (on by default for this teacher): label-only generation by a 135M
        # model rarely fits its label, and this test is about the method's flow, not about filtering.
        result = run(method, seeds, teacher=teacher, student="embed-lr", eval=test, label_check="none",
                     task=TaskInfo(description="question classification", unit="question"), out=tmp_path / "run")
    record = result.rounds[0]
    assert record.teacher_requests == {"paraphrase": 12, "zerogen": 24}[method.name]
    assert record.added + record.rejected == record.teacher_requests
    assert all(e.text.endswith("?") for e in result.added)  # the shared filter's question form, learnt from TREC
    assert result.test is not None and result.test.n == 30

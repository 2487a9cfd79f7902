"""LLM2LLM control flow with a scripted teacher and real (tf-idf) or instrumented students."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from llmaug.data import Example, Provenance, load_examples
from llmaug.methods import LLM2LLM, TaskInfo
from llmaug.testing.scripted import run_method as run  # the method's own rounds, as the paper keeps them
from llmaug.students.base import Student
from llmaug.students.tfidf import TfidfStudent
from llmaug.teachers import Teacher
from llmaug.teachers.function import FunctionBackend

SEED_ROWS = [
    ("What city hosts the Eiffel Tower ?", "LOC"),
    ("Where is Mount Kilimanjaro ?", "LOC"),
    ("In which country is Kyoto ?", "LOC"),
    ("How many legs does a spider have ?", "NUM"),
    ("What year did the Berlin Wall fall ?", "NUM"),
    ("How far is the Moon from Earth ?", "NUM"),
]


def seed_set() -> list[Example]:
    return [Example.create(text, label) for text, label in SEED_ROWS]


def numbered_teacher(prefix: str = "Generated") -> tuple[Teacher, FunctionBackend]:
    counter = itertools.count()
    backend = FunctionBackend(lambda request: f"{prefix} question number {next(counter)} about something new ?")
    return Teacher(backend), backend


class AlwaysWrong(Student):
    """Predicts the alphabetically first label that is not the gold one: every example is an error."""

    kind = "always-wrong"
    instances: list["AlwaysWrong"] = []

    def __init__(self, **options):
        super().__init__(**options)
        self.fit_calls: list[list[str]] = []
        AlwaysWrong.instances.append(self)

    def _fit(self, examples, seed):
        self.fit_calls.append([e.id for e in examples])
        self._gold = {e.text: e.label for e in examples}

    def predict(self, examples):
        return [next(l for l in self.labels if l != e.label) for e in examples]

    def predict_proba(self, examples):
        return np.full((len(examples), len(self.labels)), 1 / len(self.labels))

    def _save(self, directory):
        (directory / "nothing-to-save").write_text("")


@pytest.fixture(autouse=True)
def _reset_instances():
    AlwaysWrong.instances.clear()


def test_student_is_trained_from_scratch_every_round():
    teacher, _ = numbered_teacher()
    result = run(LLM2LLM(rounds=2, error_source="train"), seed_set(), teacher=teacher, student=AlwaysWrong)
    fits = [s.fit_calls for s in AlwaysWrong.instances]
    assert all(len(calls) == 1 for calls in fits), "a student instance was trained more than once"
    sizes = [len(calls[0]) for calls in fits[:3]]
    assert sizes == [6, 12, 18]  # D_0, D_1 = D_0 + 6 new, D_2 = D_1 + 6 new
    assert len(result.data) == 18


def test_only_seed_errors_spawn_new_examples_even_when_synthetic_rows_are_wrong():
    teacher, backend = numbered_teacher()
    seeds = seed_set()
    run(LLM2LLM(rounds=3, evaluate_on="all"), seeds, teacher=teacher, student=AlwaysWrong)
    seed_texts = {e.text for e in seeds}
    for request in backend.requests:
        prompt = request.messages[-1].content
        assert any(text in prompt for text in seed_texts)
        assert "Generated question" not in prompt
    assert len(backend.requests) == 3 * len(seeds)


@pytest.mark.parametrize("show", [True, False])
def test_wrong_prediction_in_prompt_only_when_enabled(show):
    teacher, backend = numbered_teacher()
    run(LLM2LLM(rounds=1, show_wrong_prediction=show), seed_set(), teacher=teacher, student=AlwaysWrong)
    for request in backend.requests:
        prompt = request.messages[-1].content
        assert ("A student model got it wrong" in prompt) is show
    if show:
        first = backend.requests[0].messages[-1].content
        assert 'it labelled it "LOC" instead of "NUM"' in first or 'it labelled it "NUM" instead of "LOC"' in first


def test_near_duplicates_and_exact_duplicates_are_rejected_with_reasons():
    seeds = seed_set()
    echo = FunctionBackend(lambda request: _quoted_example(request) + " !")  # the seed again, one token changed
    result = run(LLM2LLM(rounds=1, max_attempts=1), seeds, teacher=Teacher(echo), student=AlwaysWrong)
    assert result.added == []
    reasons = result.rounds[0].rejection_reasons
    assert sum(reasons.values()) == len(seeds)
    assert set(reasons) <= {"near duplicate", "exact duplicate"}


def _quoted_example(request) -> str:
    prompt = request.messages[-1].content
    return prompt.split('": "', 1)[1].split('"\n', 1)[0]


def test_every_synthetic_row_has_full_provenance():
    teacher, _ = numbered_teacher()
    seeds = seed_set()
    result = run(LLM2LLM(rounds=2), seeds, teacher=teacher, student=AlwaysWrong)
    seed_ids = {e.id for e in seeds}
    assert result.added
    for example in result.added:
        p: Provenance = example.provenance
        assert p.origin == "synthetic" and p.method == "llm2llm"
        assert p.round in (0, 1)  # written from round 0's or round 1's errors
        assert len(p.parent_ids) == 1 and p.parent_ids[0] in seed_ids
        assert p.teacher == "function:scripted"
        assert p.prompt == "llm2llm-classification@2"
        assert p.sample_index is not None and p.raw_output
        assert example.label == next(s.label for s in seeds if s.id == p.parent_ids[0])


def test_stops_when_the_student_makes_no_seed_errors():
    teacher, backend = numbered_teacher()
    seeds = seed_set()
    result = run(LLM2LLM(rounds=5, error_source="train"), seeds, teacher=teacher, student=TfidfStudent)
    assert result.rounds[-1].pool_errors == 0
    assert len(result.rounds) == 1 and backend.requests == []


def test_budget_stops_cleanly_and_keeps_what_was_made():
    from llmaug.teachers import Budget

    counter = itertools.count()
    backend = FunctionBackend(lambda r: f"Budget question {next(counter)} on a fresh topic ?", batch_size=1)
    teacher = Teacher(backend, budget=Budget(max_calls=4))
    result = run(LLM2LLM(rounds=3), seed_set(), teacher=teacher, student=AlwaysWrong)
    assert teacher.usage.calls == 4
    assert len(result.added) == 4
    assert teacher.usage.budget_skipped == 2


def test_one_shot_spends_rounds_times_errors_in_one_go():
    teacher, backend = numbered_teacher()
    result = run(LLM2LLM(rounds=3, one_shot=True, error_source="train"), seed_set(), teacher=teacher, student=AlwaysWrong)
    assert len(backend.requests) == 18
    assert len(AlwaysWrong.instances) == 2  # trained on seeds, then once on seeds + all new data
    assert {e.provenance.round for e in result.added} == {0}  # all written from round 0's errors


def test_task_description_and_label_description_reach_the_prompt():
    teacher, backend = numbered_teacher()
    task = TaskInfo(description="question classification", unit="question", label_descriptions={"LOC": "asks about a place"})
    run(LLM2LLM(rounds=1), seed_set(), teacher=teacher, student=AlwaysWrong, task=task)
    loc_prompt = next(r.messages[-1].content for r in backend.requests if "Kyoto" in r.messages[-1].content)
    assert loc_prompt.startswith('Here is a question that asks about a place: "In which country is Kyoto ?"')
    assert "Write 1 new, different question that also asks about a place" in loc_prompt
    num_prompt = next(r.messages[-1].content for r in backend.requests if "spider" in r.messages[-1].content)
    assert 'belongs to the category "NUM"' in num_prompt  # no description given for NUM


def test_cross_validated_errors_never_let_a_student_see_the_seed_it_judges_or_its_children():
    teacher, _ = numbered_teacher()
    seeds = seed_set()
    result = run(LLM2LLM(rounds=2), seeds, teacher=teacher, student=AlwaysWrong, folds=3)
    children = {e.id: e.provenance.parent_ids[0] for e in result.added}
    seed_ids = {s.id for s in seeds}
    fold_fits = [s.fit_calls[0] for s in AlwaysWrong.instances if not seed_ids <= set(s.fit_calls[0])]
    assert len(fold_fits) == 3 * 3  # rounds 0, 1 and 2 (reported, not augmented), three folds each
    for trained_on in fold_fits:
        held_out = {s.id for s in seeds} - set(trained_on)
        assert held_out, "a fold student saw every seed"
        assert not any(children.get(i) in held_out for i in trained_on), "a fold student saw a held-out seed's child"


def test_cross_validation_finds_errors_a_perfectly_fitting_student_hides():
    teacher, backend = numbered_teacher()
    seeds = seed_set()
    paper_rule = run(LLM2LLM(rounds=1, error_source="train"), seeds, teacher=teacher, student=TfidfStudent)
    held_out = run(LLM2LLM(rounds=1), seeds, teacher=numbered_teacher()[0], student=TfidfStudent, folds=3)
    assert paper_rule.rounds[0].pool_errors == 0
    assert held_out.rounds[0].pool_errors > 0 and held_out.added


def test_method_run_api_and_run_directory(tmp_path):
    from llmaug.teachers import Price

    counter = itertools.count()
    teacher = Teacher(FunctionBackend(lambda r: f"Which ocean number {next(counter)} borders Chile ?"), price=Price(prompt=1.0, completion=2.0))
    result = run(LLM2LLM(rounds=1, error_source="train"), seed_set(), teacher=teacher, student=AlwaysWrong, eval=seed_set(),
                 out=tmp_path / "run")
    assert len(result.added) == 6 and result.rounds[0].cost_usd > 0
    added = load_examples(tmp_path / "run" / "rounds" / "000" / "added.jsonl")
    assert added == result.added and {e.provenance.round for e in added} == {0}  # the folder and provenance agree
    for name in ("data.jsonl", "report.md", "report.html", "summary.json", "usage.json", "student/llmaug_student.json",
                 "rounds/000/added.jsonl", "rounds/000/errors.jsonl", "rounds/000/metrics.json", "rounds/001/data.jsonl"):
        assert (tmp_path / "run" / name).exists(), name
    assert "cost (USD)" in (tmp_path / "run" / "report.md").read_text()


# ----------------------------------------------------------------------------------- targeting policies


def test_a_diverse_prompt_shows_examples_of_the_label_and_asks_for_one_unlike_them():
    teacher, backend = numbered_teacher()
    run(LLM2LLM(rounds=1, ask="diverse", shown=3, error_source="train"), seed_set(), teacher=teacher, student=AlwaysWrong)
    prompts = [r.messages[-1].content for r in backend.requests]
    assert prompts and all("differs from all of them" in p for p in prompts)
    for request, prompt in zip(backend.requests, prompts):
        seed = request.target.like
        quoted = [line for line in prompt.splitlines() if line.startswith('- "')]
        assert quoted[0] == f'- "{seed}"' and len(quoted) == 3  # the seed, then two others of its label
        label = request.target.label
        same_label = {text for text, lab in SEED_ROWS if lab == label}
        assert all(line[3:-1] in same_label for line in quoted)
        assert request.target.ask == "diverse"


def test_a_boundary_prompt_names_the_label_and_the_one_the_student_confused_it_with():
    teacher, backend = numbered_teacher()
    run(LLM2LLM(rounds=1, ask="boundary", error_source="train"), seed_set(), teacher=teacher, student=AlwaysWrong)
    for request in backend.requests:
        prompt, target = request.messages[-1].content, request.target
        assert target.ask == "boundary" and target.confused_with not in (None, target.label)
        assert f'clearly belongs to "{target.label}", not "{target.confused_with}"' in prompt
        assert f'confused it with the category "{target.confused_with}"' in prompt


def test_targets_all_and_uncertain_reach_correct_seeds_too():
    from llmaug.students.tfidf import TfidfStudent

    seeds = seed_set()
    everyone = run(LLM2LLM(rounds=1, target="all"), seeds, teacher=numbered_teacher()[0], student=TfidfStudent, folds=3)
    assert {e.provenance.parent_ids[0] for e in everyone.added} == {e.id for e in seeds}
    wrong = run(LLM2LLM(rounds=1), seeds, teacher=numbered_teacher()[0], student=TfidfStudent, folds=3)
    uncertain = run(LLM2LLM(rounds=1, target="uncertain"), seeds, teacher=numbered_teacher()[0], student=TfidfStudent, folds=3)
    assert len({e.provenance.parent_ids[0] for e in uncertain.added}) == max(1, wrong.rounds[0].pool_errors)

"""S3 control flow with a scripted teacher and an instrumented student; one end-to-end run with the real
embedded teacher and a fine-tuned MiniLM student (slow)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from llmaug.data import Example, save_examples
from llmaug.errors import UserError
from llmaug.methods import S3, TaskInfo
from llmaug.testing.scripted import run_method as run  # the method's own rounds, as the paper keeps them
from llmaug.students.base import Student
from llmaug.teachers import Teacher
from llmaug.teachers.function import FunctionBackend

SEED_ROWS = [
    ("Where is Mount Kilimanjaro ?", "LOC"),
    ("In which country is Kyoto ?", "LOC"),
    ("How many legs does a spider have ?", "NUM"),
    ("What year did the Berlin Wall fall ?", "NUM"),
]
HARD = {"In which country is Kyoto ?", "What year did the Berlin Wall fall ?"}  # what the student gets wrong
RATIONALES = {"LOC": ["asks where a place is", "names a country"], "NUM": ["asks for a count", "asks for a year"]}


def seed_set() -> list[Example]:
    return [Example.create(text, label) for text, label in SEED_ROWS]


class HardRows(Student):
    """Gets every example right except those whose text is in `hard` (or every one, with `wrong_everywhere`);
    records what each fit saw."""

    kind = "hard-rows"
    fits: list[list[Example]] = []
    hard: set[str] = HARD
    wrong_everywhere = False

    def _fit(self, examples, seed):
        HardRows.fits.append(list(examples))

    def predict(self, examples):
        return [self._other(e.label) if e.text in self.hard or self.wrong_everywhere else e.label for e in examples]

    def predict_proba(self, examples):
        return np.full((len(examples), len(self.labels)), 1 / len(self.labels))

    def _other(self, label):
        return next(l for l in self.labels if l != label)


@pytest.fixture(autouse=True)
def _reset():
    HardRows.fits = []
    HardRows.hard = HARD
    HardRows.wrong_everywhere = False


def scripted_teacher() -> tuple[Teacher, FunctionBackend]:
    counter = itertools.count()

    def respond(request) -> str:
        prompt = request.messages[-1].content
        if "different reasons" in prompt:
            label = "LOC" if '"LOC"' in prompt else "NUM"
            return "\n".join(f"{i}. {reason}" for i, reason in enumerate(RATIONALES[label], 1))
        if "First text" in prompt:
            return f"First text: A premise sentence number {next(counter)} about rivers.\nSecond text: A hypothesis sentence {next(counter)}."
        if "Now write a new sentence" in prompt or "Write one sentence whose relation" in prompt:
            return f"A new hypothesis sentence number {next(counter)}."
        return f"Which generated question number {next(counter)} is this ?"

    backend = FunctionBackend(respond)
    return Teacher(backend), backend


def prompts_of(backend: FunctionBackend, marker: str) -> list:
    return [r for r in backend.requests if marker in r.messages[-1].content]


def test_rationales_per_label_steer_seed_synthesis_at_the_papers_temperature():
    teacher, backend = scripted_teacher()
    run(S3(rounds=0, per_label=3, rationales=2), seed_set(), teacher=teacher, student=HardRows)
    rationale_prompts = prompts_of(backend, "different reasons")
    assert len(rationale_prompts) == 2
    assert all("List 2 different reasons" in r.messages[-1].content for r in rationale_prompts)
    seed_prompts = prompts_of(backend, "for this reason:")
    assert len(seed_prompts) == 2 * 3
    for request in seed_prompts:
        prompt = request.messages[-1].content
        label = "LOC" if 'category "LOC"' in prompt else "NUM"
        assert sum(reason in prompt for reason in RATIONALES[label]) == 1  # exactly one of its own label's reasons
        assert not any(reason in prompt for reason in RATIONALES["NUM" if label == "LOC" else "LOC"])
        assert request.params.temperature == 0.9
    assert len({(r.messages, r.sample_index) for r in seed_prompts}) == len(seed_prompts)


def test_student_trains_from_scratch_on_synthetic_rows_only_and_ees_spawns_only_from_misclassified_real_rows():
    teacher, backend = scripted_teacher()
    seeds = seed_set()
    result = run(S3(rounds=2, per_label=3), seeds, teacher=teacher, student=HardRows, task=TaskInfo(unit="question"))
    # D_seed, + one per wrong real row, twice; then the seeds alone: the student without augmentation, for the verdict
    assert [len(fit) for fit in HardRows.fits] == [6, 8, 10, 4]
    assert all(e.provenance.origin == "synthetic" for fit in HardRows.fits[:3] for e in fit)
    ees = prompts_of(backend, "similar to this one")
    quoted = [next(text for text, _ in SEED_ROWS if text in r.messages[-1].content) for r in ees]
    assert sorted(quoted) == sorted(list(HARD) * 2)  # each wrong real row, once per EES round
    children = [e for e in result.data if e.provenance.parent_ids]  # the extrapolations, written in rounds 0 and 1
    by_id = {e.id: e for e in seeds}
    for child in children:
        parent = by_id[child.provenance.parent_ids[0]]
        assert parent.text in HARD and child.label == parent.label
    assert [r.added for r in result.rounds] == [8, 2, 0]  # what each round wrote: seed synthesis + its errors' children
    assert [r.pool_errors for r in result.rounds] == [2, 2, 2]


def test_synthetic_predictions_never_spawn_children():
    HardRows.wrong_everywhere = True
    teacher, backend = scripted_teacher()
    seeds = seed_set()
    run(S3(rounds=1, per_label=2), seeds, teacher=teacher, student=HardRows)
    ees = prompts_of(backend, "similar to this one")
    assert len(ees) == len(seeds)  # the pool is the real set: synthetic rows are trained on, never extrapolated
    assert all(any(text in r.messages[-1].content for text, _ in SEED_ROWS) for r in ees)


def test_a_real_set_file_replaces_the_seed_set_as_the_pool(tmp_path):
    teacher, backend = scripted_teacher()
    real = [Example.create("In which country is Kyoto ?", "LOC"), Example.create("How tall is Everest ?", "NUM")]
    save_examples(real, tmp_path / "real.jsonl")
    result = run(S3(rounds=1, per_label=2, real_set=str(tmp_path / "real.jsonl")), seed_set(), teacher=teacher, student=HardRows)
    assert result.rounds[0].pool_errors == 1  # Kyoto; the seed row about the Berlin Wall is not in the pool
    [ees] = prompts_of(backend, "similar to this one")
    assert "Kyoto" in ees.messages[-1].content


def test_sentence_pairs_are_written_whole_then_extrapolated_with_the_same_first_text():
    teacher, backend = scripted_teacher()
    pairs = [
        Example.create("The cat sat on the mat all day.", "entailment", text_pair="A cat sat."),
        Example.create("Rome is the capital of Italy.", "entailment", text_pair="Rome is in Italy."),
        Example.create("The shop closes at noon on Sundays.", "not_entailment", text_pair="The shop never closes."),
        Example.create("Paris hosted the 1924 Olympics.", "not_entailment", text_pair="Paris never hosted the Games."),
    ]
    HardRows.hard = {"Rome is the capital of Italy."}
    result = run(S3(rounds=1, per_label=2), pairs, teacher=teacher, student=HardRows)
    seed_rows = [e for e in result.data if not e.provenance.parent_ids]
    assert len(seed_rows) == 4 and all(e.text_pair and e.text.startswith("A premise") for e in seed_rows)
    assert all(r.messages[-1].content.count("pair") for r in prompts_of(backend, "different reasons"))
    [child] = [e for e in result.data if e.provenance.parent_ids]
    assert child.text == "Rome is the capital of Italy." and child.text_pair.startswith("A new hypothesis")
    assert child.label == "entailment"


def test_sentence_pairs_on_real_premises_get_a_new_second_text_for_a_real_first_text():
    teacher, backend = scripted_teacher()
    pairs = [Example.create(f"Premise number {i} about the weather today.", label, text_pair=f"Hypothesis {i}.")
             for i, label in enumerate(["entailment", "entailment", "not_entailment", "not_entailment"])]
    result = run(S3(rounds=0, per_label=3, premises="real"), pairs, teacher=teacher, student=HardRows)
    by_id = {e.id: e for e in pairs}
    assert len(result.data) == 6
    for example in result.data:
        parent = by_id[example.provenance.parent_ids[0]]
        assert example.text == parent.text and example.text_pair.startswith("A new hypothesis")
        assert example.provenance.prompt == "s3-seed-on-premise@1"
    seed_prompts = [r.messages[-1].content for r in backend.requests if "Write one sentence whose relation" in r.messages[-1].content]
    assert len(seed_prompts) == 6 and all(any(p.startswith(e.text) for e in pairs) for p in seed_prompts)


def test_every_synthetic_row_has_full_provenance_and_reruns_are_identical():
    first = run(S3(rounds=1, per_label=2), seed_set(), teacher=scripted_teacher()[0], student=HardRows)
    again = run(S3(rounds=1, per_label=2), seed_set(), teacher=scripted_teacher()[0], student=HardRows)
    assert [e.id for e in first.data] == [e.id for e in again.data]
    for example in first.data:
        p = example.provenance
        assert p.origin == "synthetic" and p.method == "s3" and p.teacher == "function:scripted"
        assert p.prompt in ("s3-seed@1", "s3-extrapolate@1") and p.sample_index is not None and p.raw_output
        assert p.round == 0  # seed synthesis and the children of round 0's errors: both written in round 0
        assert (p.prompt == "s3-seed@1") == (p.parent_ids == [])


def test_rationales_are_saved_for_review(tmp_path):
    run(S3(rounds=0, per_label=1, rationales=2), seed_set(), teacher=scripted_teacher()[0], student="tfidf", out=tmp_path)
    assert json.loads((tmp_path / "rationales.json").read_text()) == RATIONALES


def test_seed_synthesis_without_two_labels_is_a_clear_error():
    teacher = Teacher(FunctionBackend(lambda request: "1. reason" if "reasons" in request.messages[-1].content else ""))
    with pytest.raises(UserError, match="seed synthesis gave no usable examples for 'LOC', 'NUM'"):
        run(S3(rounds=1, per_label=2), seed_set(), teacher=teacher, student=HardRows)


@pytest.mark.slow
def test_end_to_end_with_the_embedded_teacher_and_a_finetuned_student(tmp_path):
    from llmaug.data import load_bundled
    from llmaug.data.sampling import sample_per_class
    from llmaug.filters.quality import QualityFilter

    seeds = sample_per_class(load_bundled("sst2"), 3, seed=0)
    test = sample_per_class(load_bundled("sst2", "test"), 10, seed=0)
    task = TaskInfo(description="sentiment of movie reviews", unit="movie review sentence",
                    label_descriptions={"negative": "the reviewer dislikes the movie", "positive": "the reviewer likes the movie"})
    with Teacher("embedded", threads=1, cache=tmp_path / "cache.sqlite") as teacher:
        result = run(S3(rounds=1, per_label=6, rationales=3), seeds, teacher=teacher, student="finetune", eval=test,
                     task=task, out=tmp_path / "run", quality=QualityFilter())
    assert len(result.rounds) == 2 and result.test is not None
    assert all(not e.is_seed for e in result.data) and {e.label for e in result.data} == {"negative", "positive"}
    assert (tmp_path / "run" / "rationales.json").exists() and (tmp_path / "run" / "summary.json").exists()

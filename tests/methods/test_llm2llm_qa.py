"""LLM2LLM on QA (GSM8K-style) data: a scripted teacher, a scripted QA student, and one slow run for real."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmaug.data import Example
from llmaug.filters.answers import answers_match, extract_answer
from llmaug.methods import LLM2LLM
from llmaug.methods.llm2llm import QA_STOP
from llmaug.testing.scripted import run_method as run  # the method's own rounds, as the paper keeps them
from llmaug.students.base import Student
from llmaug.teachers import Teacher
from llmaug.teachers.function import FunctionBackend

SEEDS = [
    ("Tom has 3 boxes with 4 pens in each. How many pens does he have?", "Tom has 3 * 4 = <<3*4=12>>12 pens.\n#### 12"),
    ("A cake costs $15 and a pie costs $7. How much do both cost?", "Both cost 15 + 7 = $<<15+7=22>>22.\n#### 22"),
    ("Mia reads 20 pages a day for 5 days. How many pages does she read?", "She reads 20 * 5 = <<20*5=100>>100 pages.\n#### 100"),
]
WRONG = "I think it is 7.\n#### 7"
GSM8K = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k"  # ../shared beside the repo


def seed_set() -> list[Example]:
    return [Example.create(question, answer=answer) for question, answer in SEEDS]


class FirstSeedRight(Student):
    """A QA student that answers the first seed correctly and every other question with "#### 7"."""

    kind = "first-seed-right"

    def _fit(self, examples, seed):
        self.first = examples[0]

    def predict(self, examples):
        return [e.answer if e.id == self.first.id else WRONG for e in examples]

    def is_correct(self, example, prediction):
        return answers_match(prediction, example.answer)

    def _save(self, directory):
        (directory / "first.json").write_text(self.first.model_dump_json())


def scripted_teacher(non_numeric_for: str = "cake") -> tuple[Teacher, FunctionBackend]:
    """Writes a new problem for each prompt; for the seed that mentions `non_numeric_for`, a non-numeric answer."""

    def respond(request) -> str:
        prompt = request.messages[-1].content
        number = 30 + request.sample_index
        if non_numeric_for in prompt:
            return f"1. Question: A shop sells {number} cakes. How many are sold?\nAnswer: It sells {number}.\n#### many"
        return (f"Sure!\n1. Question: Sara has {number} stickers and gets 5 more. How many stickers does she have?\n"
                f"Answer: Sara has {number} + 5 = {number + 5} stickers.\n#### {number + 5}")

    backend = FunctionBackend(respond)
    return Teacher(backend), backend


def test_qa_prompt_follows_the_official_one_and_shows_the_wrong_answer():
    teacher, backend = scripted_teacher()
    run(LLM2LLM(rounds=1, error_source="train"), seed_set(), teacher=teacher, student=FirstSeedRight)
    seeds = seed_set()
    asked_about = {seed.text for seed in seeds if any(seed.text in r.messages[-1].content for r in backend.requests)}
    assert asked_about == {seeds[1].text, seeds[2].text}  # only the wrong seeds
    request = backend.requests[0]
    system, demo_question, demo_answer, user = request.messages
    assert system.role == "system" and "practice problems" in system.content and "#### <number>" in system.content
    assert "Betty" in demo_question.content and demo_answer.content.startswith("1. Question:")
    assert "The answer key has this as the rationale and answer:" in user.content
    assert "The student answered: I think it is 7.\n#### 7" in user.content
    assert request.params.stop == QA_STOP and request.params.max_tokens == LLM2LLM().qa_max_tokens


def test_new_problems_carry_their_solution_and_full_provenance(tmp_path):
    teacher, _ = scripted_teacher()
    seeds = seed_set()
    result = run(LLM2LLM(rounds=1, error_source="train"), seeds, teacher=teacher, student=FirstSeedRight,
                 out=tmp_path / "run")
    mia = seeds[2]
    assert len(result.added) == 1
    new = result.added[0]
    assert new.label is None and new.text.startswith("Sara has") and new.text.endswith("?")
    assert re.fullmatch(r"Sara has (\d+) \+ 5 = (\d+) stickers\.\n#### \2", new.answer)
    p = new.provenance
    assert p.origin == "synthetic" and p.method == "llm2llm" and p.round == 0 and p.parent_ids == [mia.id]
    assert p.teacher == "function:scripted" and p.prompt == "llm2llm-qa@1"
    assert p.sample_index is not None and p.raw_output.startswith("Sure!\n1. Question:")
    saved = [json.loads(line) for line in (tmp_path / "run" / "data.jsonl").read_text().splitlines()]
    assert any(row["answer"] == new.answer and row.get("label") is None for row in saved)


def test_non_numeric_answers_are_rejected_with_a_reason(tmp_path):
    teacher, _ = scripted_teacher(non_numeric_for="cake")
    result = run(LLM2LLM(rounds=1, max_attempts=2, error_source="train"), seed_set(), teacher=teacher,
                 student=FirstSeedRight, out=tmp_path / "run")
    assert result.rounds[0].rejection_reasons == {"answer not numeric": 2}  # both attempts for the cake seed
    rejected = [json.loads(line) for line in (tmp_path / "run" / "rounds" / "000" / "rejected.jsonl").read_text().splitlines()]
    cake = seed_set()[1]
    assert all(r["reason"] == "answer not numeric" and r["parent_ids"] == [cake.id] and "#### many" in r["raw_output"]
               for r in rejected)


def test_copies_of_the_seed_problem_are_dropped_as_duplicates():
    seeds = seed_set()

    def copy_the_seed(request) -> str:
        question, answer = next((q, a) for q, a in SEEDS if q in request.messages[-1].content)
        return f"1. Question: {question}\nAnswer: {answer.replace('<<', '').replace('>>', ' ')}"

    result = run(LLM2LLM(rounds=1, max_attempts=1, error_source="train"), seeds,
                 teacher=Teacher(FunctionBackend(copy_the_seed)), student=FirstSeedRight)
    assert result.added == []
    assert result.rounds[0].rejection_reasons == {"exact duplicate": 2}


def test_problems_that_copy_the_prompt_wording_are_rejected():
    # What SmolLM2-135M wrote in a GSM8K run: a problem that runs on into the prompt's wording.
    leaked = ("1. Question: A woman sells her old car for 20 dollars. How much money does she have left? The answer "
              "key has this as the rationale and\nAnswer: She has 20 - 1 = 19 dollars left.\n#### 19")
    result = run(LLM2LLM(rounds=1, max_attempts=1, error_source="train"), seed_set(),
                 teacher=Teacher(FunctionBackend(lambda request: leaked)), student=FirstSeedRight)
    assert result.added == []
    assert result.rounds[0].rejection_reasons == {"echo of the prompt instructions": 2}


def test_qa_metrics_report_accuracy_and_no_macro_f1(tmp_path):
    teacher, _ = scripted_teacher()
    seeds = seed_set()
    result = run(LLM2LLM(rounds=1, error_source="train"), seeds, teacher=teacher, student=FirstSeedRight,
                 eval=seeds[:2], out=tmp_path / "run")
    first = result.rounds[0]
    assert first.pool_errors == 2 and first.pool_accuracy == pytest.approx(1 / 3)
    assert first.test_accuracy == pytest.approx(0.5) and first.test_macro_f1 is None
    assert result.test.per_class == {} and result.test.confusion == []
    report = (tmp_path / "run" / "report.md").read_text()
    assert "accuracy 0.5000 (answers judged by the student's `is_correct`) on 2 examples" in report
    assert "macro-F1" not in report.split("## Final student")[1]
    metrics = json.loads((tmp_path / "run" / "rounds" / "000" / "metrics.json").read_text())
    assert metrics["test"]["macro_f1"] is None


@pytest.mark.slow
@pytest.mark.skipif(not GSM8K.exists(), reason="shared data not mounted")
def test_gsm8k_with_the_embedded_teacher_and_a_lora_tuned_student(tmp_path):
    """4 GSM8K seeds, 1 round: the real SmolLM2 teacher writes problems, the causal-LM student really trains."""
    import torch

    from llmaug.data import load_examples, sample_fraction
    from llmaug.students.causal_lm import CausalLMStudent
    from llmaug.teachers.embedded import EmbeddedBackend

    seeds = sample_fraction(load_examples(GSM8K / "train.jsonl"), 0.01, seed=0)[:4]
    test = load_examples(GSM8K / "test.jsonl")[:1]
    backend = EmbeddedBackend(threads=1)
    teacher = Teacher(backend, cache=tmp_path / "cache.sqlite")
    student = lambda: CausalLMStudent(epochs=1, batch_size=4, max_new_tokens=24, threads=1)  # noqa: E731
    previous_threads = torch.get_num_threads()
    try:
        result = run(LLM2LLM(rounds=1, error_source="train", max_attempts=1, qa_max_tokens=128), seeds, teacher=teacher,
                     student=student, eval=test, out=tmp_path / "run")
    finally:
        teacher.close()
        torch.set_num_threads(previous_threads)  # the embedded backend sets it for the process

    assert [r.round for r in result.rounds] == [0, 1]
    first = result.rounds[0]
    assert first.pool_errors > 0 and first.teacher_requests >= first.pool_errors  # the teacher was really asked
    assert first.added + first.rejected >= first.pool_errors
    assert all(r.test_macro_f1 is None and 0 <= r.test_accuracy <= 1 for r in result.rounds)
    for example in result.added:
        assert example.label is None and extract_answer(example.answer) is not None
        assert example.provenance.parent_ids[0] in {s.id for s in seeds}
        assert example.provenance.teacher == backend.identity
    rejected = [json.loads(line) for line in (tmp_path / "run" / "rounds" / "000" / "rejected.jsonl").read_text().splitlines()]
    assert all(r["reason"] and r["raw_output"] is not None for r in rejected)
    assert (tmp_path / "run" / "student" / "adapter_model.safetensors").is_file()
    assert len(result.data) == len(seeds) + len(result.added)

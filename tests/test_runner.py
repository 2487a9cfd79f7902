"""The runner's own contract, below any one method: memoised trainings on replay, the closing round, per-round
accounting of teacher use, RunResult and the run directory's files. Methods' behaviour is in tests/methods; kills
and resumes of the real CLI are in tests/reliability/test_crash_resume.py."""

from __future__ import annotations

import io
import json

import pytest
import yaml
from rich.console import Console

from llmaug.data import Example, Provenance, load_examples
from llmaug.filters.quality import Rejected
from llmaug.methods.base import Context, Method
from llmaug.runner import RunResult
from llmaug.testing.scripted import run_method as run  # the last round: these tests are about memos and records
from llmaug.students.tfidf import TfidfStudent
from llmaug.teachers import Budget, Price, Teacher, TeacherRequest
from llmaug.teachers.function import FunctionBackend

SEEDS = [
    ("What city hosts the Eiffel Tower ?", "LOC"), ("Where is Mount Kilimanjaro ?", "LOC"),
    ("In which country is Kyoto ?", "LOC"), ("How many legs does a spider have ?", "NUM"),
    ("What year did the Berlin Wall fall ?", "NUM"), ("How far is the Moon from Earth ?", "NUM"),
]
EXTRA = [("Where is the Louvre ?", "LOC"), ("How tall is Everest ?", "NUM")]


def seed_set() -> list[Example]:
    return [Example.create(text, label) for text, label in SEEDS]


def synthetic(text: str, label: str, round: int) -> Example:
    return Example.create(text, label, provenance=Provenance(origin="synthetic", method="grow", round=round))


class CountingTfidf(TfidfStudent):
    """The real tf-idf student, logging the size of every training set it is fitted on."""

    fits: list[int] = []

    def _fit(self, examples, seed):
        CountingTfidf.fits.append(len(examples))
        super()._fit(examples, seed)


@pytest.fixture(autouse=True)
def _reset_fits():
    CountingTfidf.fits = []


class Grow(Method):
    """Two rounds: train on the seeds, add two fixed rows (and reject one), train again on all of them."""

    name = "grow"

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        ctx.end_round(0, seed, [], [], ctx.train_and_evaluate(seed, 0, pool=seed))
        added = [synthetic(text, label, 1) for text, label in EXTRA]
        rejected = [Rejected(text="Where is Where ?", reason="near duplicate (ROUGE-L 0.97 with a seed)", label="LOC")]
        data = seed + added
        ctx.end_round(1, data, added, rejected, ctx.train_and_evaluate(data, 1, pool=seed))
        return data


class AddsWithoutTraining(Method):
    """Evaluates the seeds only, then returns more rows than it trained on."""

    name = "adds-without-training"

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        ctx.end_round(0, seed, [], [], ctx.train_and_evaluate(seed, 0, pool=seed))
        return seed + [synthetic(text, label, 0) for text, label in EXTRA]


class AsksTheTeacher(Method):
    """Round 0 sends `n` requests and records whatever comes back, then trains on the seeds."""

    name = "asks"
    n: int

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        requests = [TeacherRequest.chat([{"role": "user", "content": f"Write question {i} please"}], sample_index=i)
                    for i in range(self.n)]
        ctx.generate(requests, stage="asking")
        ctx.end_round(0, seed, [], [], ctx.train_and_evaluate(seed, 0, pool=seed))
        return seed


def silent_teacher() -> Teacher:
    return Teacher(FunctionBackend(lambda request: "Which river runs through Paris ?"))


def quiet() -> Console:
    return Console(file=io.StringIO())


def grow(out=None, random_seed: int = 0) -> RunResult:
    return run(Grow(), seed_set(), teacher=silent_teacher(), student=CountingTfidf, eval=seed_set(), out=out,
               random_seed=random_seed, console=quiet())


def test_a_replay_in_the_same_run_directory_trains_only_the_final_student_again(tmp_path):
    first = grow(tmp_path / "run")
    assert CountingTfidf.fits == [6, 8]  # round 0, round 1; the final student is round 1's
    CountingTfidf.fits = []

    replay = grow(tmp_path / "run")

    assert CountingTfidf.fits == [8]  # both rounds' evaluations read back from evaluation.json
    assert replay.rounds == first.rounds and replay.test == first.test and replay.data == first.data
    assert replay.student.predict(seed_set()) == first.student.predict(seed_set())


def test_a_damaged_saved_evaluation_is_trained_again_and_the_others_are_reused(tmp_path):
    first = grow(tmp_path / "run")
    (tmp_path / "run" / "rounds" / "001" / "evaluation.json").write_text('{"fingerprint": ')
    CountingTfidf.fits = []

    replay = grow(tmp_path / "run")

    assert CountingTfidf.fits == [8]  # round 1 again; round 0 read back; the final student is round 1's
    assert replay.rounds == first.rounds
    assert json.loads((tmp_path / "run" / "rounds" / "001" / "evaluation.json").read_text())["train_size"] == 8


def test_saved_evaluations_of_another_random_seed_are_not_reused(tmp_path):
    grow(tmp_path / "run", random_seed=0)
    CountingTfidf.fits = []
    grow(tmp_path / "run", random_seed=1)
    assert CountingTfidf.fits == [6, 8]


def test_without_a_run_directory_nothing_is_saved_or_reused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = grow()
    grow()
    assert CountingTfidf.fits == [6, 8, 6, 8]
    assert result.out is None and list(tmp_path.iterdir()) == []


def test_run_result_holds_the_data_the_rounds_the_final_student_and_its_test_scores():
    result = grow()
    assert [e.text for e in result.data] == [t for t, _ in SEEDS + EXTRA]
    assert [e.text for e in result.added] == [t for t, _ in EXTRA] and all(not e.is_seed for e in result.added)
    assert [(r.round, r.train_size, r.added, r.rejected) for r in result.rounds] == [(0, 6, 0, 0), (1, 8, 2, 1)]
    assert result.rounds[1].rejection_reasons == {"near duplicate": 1}  # counted by kind, without the detail
    assert isinstance(result.student, CountingTfidf) and result.student.labels == ["LOC", "NUM"]
    assert result.test is not None and result.test.n == len(SEEDS)
    assert result.rounds[-1].test_accuracy == result.test.accuracy and result.rounds[-1].test_macro_f1 == result.test.macro_f1
    assert result.seconds > 0 and result.quality["near_duplicate_threshold"] == 0.95


def test_without_a_test_set_the_rounds_have_no_test_scores():
    result = run(Grow(), seed_set(), teacher=silent_teacher(), student="tfidf", console=quiet())
    assert result.test is None
    assert all(r.test_accuracy is None and r.test_macro_f1 is None for r in result.rounds)


def test_data_the_method_never_trained_on_gets_a_closing_round():
    result = run(AddsWithoutTraining(), seed_set(), teacher=silent_teacher(), student=CountingTfidf, eval=seed_set(),
                 console=quiet())
    assert [(r.round, r.train_size, r.added) for r in result.rounds] == [(0, 6, 0), (1, 8, 0)]
    assert CountingTfidf.fits == [6, 8]  # the closing round's student is the final one: 8 rows trained on once
    assert result.test is not None and result.rounds[-1].test_accuracy == result.test.accuracy


def test_each_round_counts_the_teacher_requests_tokens_and_cost_it_spent():
    backend = FunctionBackend(lambda request: "Which river runs through Paris ?")
    teacher = Teacher(backend, price=Price(prompt=2.0, completion=10.0))
    result = run(AsksTheTeacher(n=3), seed_set(), teacher=teacher, student="tfidf", console=quiet())
    [record] = result.rounds
    assert (record.teacher_requests, record.prompt_tokens, record.completion_tokens) == (3, 3 * 4, 3 * 6)
    assert record.cost_usd == pytest.approx((12 * 2.0 + 18 * 10.0) / 1e6)


def test_requests_the_budget_refused_are_not_counted_as_teacher_requests():
    backend = FunctionBackend(lambda request: "Which river runs through Paris ?", batch_size=1)
    teacher = Teacher(backend, budget=Budget(max_calls=2))
    result = run(AsksTheTeacher(n=5), seed_set(), teacher=teacher, student="tfidf", console=quiet())
    assert len(backend.requests) == 2 and result.rounds[0].teacher_requests == 2
    assert result.rounds[0].cost_usd is None  # no price given: no cost, rather than a cost of 0


def test_the_run_directory_records_what_the_result_holds(tmp_path):
    out = tmp_path / "run"
    result = run(Grow(), seed_set(), teacher=silent_teacher(), student="tfidf", eval=seed_set(), out=out,
                 output_format="csv", console=quiet())
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["method"] == "grow" and config["student"] == "tfidf" and config["output_format"] == "csv"
    assert load_examples(config["train"]) == seed_set() and load_examples(config["eval"]) == seed_set()
    assert [e.id for e in load_examples(out / "data.csv")] == [e.id for e in result.data]
    assert not (out / "data.jsonl").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "grow" and summary["final_size"] == 8 and summary["added"] == 2
    assert summary["rounds"] == [r.__dict__ for r in result.rounds]
    assert summary["test"] == result.test.model_dump()
    assert [e.id for e in load_examples(out / "rounds" / "001" / "added.jsonl")] == [e.id for e in result.added]
    [rejected] = [json.loads(line) for line in (out / "rounds" / "001" / "rejected.jsonl").read_text().splitlines()]
    assert rejected["reason"] == "near duplicate (ROUGE-L 0.97 with a seed)"  # the full reason is kept in the log
    metrics = json.loads((out / "rounds" / "001" / "metrics.json").read_text())
    assert metrics["train_size"] == 8 and metrics["test"] == result.test.model_dump()
    errors = [json.loads(line) for line in (out / "rounds" / "000" / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == result.rounds[0].pool_errors and all(e["predicted"] != e["label"] for e in errors)


# --------------------------------------------------------------------------------- round choice and verdict


def trec_seed_and_test():
    from llmaug.data import load_bundled, sample_fraction

    return sample_fraction(load_bundled("trec6"), 0.01, seed=0), load_bundled("trec6", "test")[:200]


def pool_teacher(seed) -> Teacher:
    from llmaug.teachers.pool import PoolBackend

    return Teacher(PoolBackend("trec6", "similar", exclude=seed, encoder="tfidf"))


def mislabelling_teacher(seed) -> Teacher:
    """Answers every request with a real question of another class: data that can only hurt."""
    from llmaug.data import load_bundled

    rows = [e for e in load_bundled("trec6") if e.id not in {s.id for s in seed}]
    counter = iter(range(10**6))

    def respond(request):
        other = [e for e in rows if e.label != request.target.label]
        return other[(next(counter) * 7919) % len(other)].text

    return Teacher(FunctionBackend(respond))


def test_the_round_choice_never_looks_at_the_eval_set(tmp_path):
    from llmaug import LLM2LLM
    from llmaug.runner import run as run_selecting

    seed, test = trec_seed_and_test()
    labels = [e.label for e in test]
    shuffled = [e.model_copy(update={"label": label}) for e, label in zip(test, labels[7:] + labels[:7])]
    results = [run_selecting(LLM2LLM(rounds=2), seed, teacher=pool_teacher(seed), student="tfidf", eval=rows,
                             console=quiet()) for rows in (test, shuffled)]
    assert results[0].selection == results[1].selection
    assert [e.id for e in results[0].data] == [e.id for e in results[1].data]
    assert results[0].test.accuracy != results[1].test.accuracy  # the eval set did change


def test_a_run_whose_augmentation_only_hurts_returns_the_student_without_it_and_says_so(tmp_path):
    from llmaug import LLM2LLM
    from llmaug.runner import run as run_selecting

    seed, test = trec_seed_and_test()
    result = run_selecting(LLM2LLM(rounds=2, per_error=3), seed, teacher=mislabelling_teacher(seed), student="tfidf",
                           eval=test, out=tmp_path / "run", console=quiet())
    assert result.chosen_round == 0 and "do no harm" in result.selection.reason
    assert [e.id for e in result.data] == [e.id for e in seed] and result.rounds[-1].train_size > len(seed)
    assert result.verdict.on == "eval" and result.verdict.delta_accuracy == 0.0 and result.verdict.final_round == 0
    assert result.rounds[-1].test_accuracy < result.rounds[0].test_accuracy  # "last" would have handed back harm
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["chosen_round"] == 0 and summary["selection"]["rule"] == "best-cv"
    assert summary["verdict"]["outcome"] == "no detectable change" and len(summary["verdict"]["ci95"]) == 2
    assert {e.id for e in load_examples(tmp_path / "run" / "data.jsonl")} == {e.id for e in seed}
    assert all(r["cv_accuracy"] is not None and len(r["test_accuracy_ci95"]) == 2 for r in summary["rounds"])


def test_a_helpful_pool_beats_round_0_and_the_verdict_compares_on_the_eval_rows(tmp_path):
    from llmaug import LLM2LLM
    from llmaug.runner import run as run_selecting

    seed, test = trec_seed_and_test()
    result = run_selecting(LLM2LLM(rounds=2, per_error=4, target="all"), seed, teacher=pool_teacher(seed),
                           student="tfidf", eval=test, console=quiet())
    assert result.chosen_round > 0 and result.added
    verdict = result.verdict
    assert verdict.final_round == result.chosen_round and verdict.n == len(test)
    assert verdict.delta_accuracy == pytest.approx(result.test.accuracy - result.rounds[0].test_accuracy)
    assert verdict.ci95[0] <= verdict.delta_accuracy <= verdict.ci95[1]


def test_patience_stops_the_rounds_when_held_out_scores_stop_improving():
    from llmaug import LLM2LLM
    from llmaug.runner import run as run_selecting

    seed, test = trec_seed_and_test()
    result = run_selecting(LLM2LLM(rounds=5, per_error=3), seed, teacher=mislabelling_teacher(seed), student="tfidf",
                           patience=1, console=quiet())
    assert [r.round for r in result.rounds] == [0, 1]  # round 1 did not beat round 0: stop


def test_a_seed_set_too_small_for_held_out_students_says_so_instead_of_reporting_no_errors():
    from llmaug import LLM2LLM
    from llmaug.runner import run as run_selecting

    tiny = [Example.create("Where is Lima ?", "LOC"), Example.create("How many legs does a spider have ?", "NUM")]
    result = run_selecting(LLM2LLM(rounds=1), tiny, teacher=silent_teacher(), student="tfidf", console=quiet())
    first = result.rounds[0]
    assert first.unjudged_seeds == 2 and "could not be judged held out" in first.held_out_note
    assert "errors are those of the student trained on them" in first.held_out_note


def test_one_pass_methods_are_compared_with_a_student_trained_on_the_seeds_alone(tmp_path):
    from llmaug.methods import Paraphrase
    from llmaug.runner import run as run_selecting

    seed, test = trec_seed_and_test()
    result = run_selecting(Paraphrase(per_example=1), seed, teacher=pool_teacher(seed), student="tfidf", eval=test,
                           out=tmp_path / "run", console=quiet())
    assert result.baseline is not None and result.baseline.round == -1 and result.baseline.train_size == len(seed)
    assert (tmp_path / "run" / "rounds" / "baseline" / "evaluation.json").is_file()
    assert result.chosen_round in (-1, 0) and result.verdict.baseline_round == -1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["baseline"]["train_size"] == len(seed)


def test_a_resumed_run_honours_the_review_decisions_made_so_far(tmp_path):
    """Rows a reviewer rejected are left out and relabelled rows keep their new label when the run replays."""
    from llmaug import LLM2LLM
    from llmaug.decisions import append_decisions, decide, review_state

    seed = seed_set()
    teacher = Teacher(FunctionBackend(lambda r: f"Where is the harbour number {r.sample_index} of {r.target.like[:12]} ?"))
    first = run(LLM2LLM(rounds=1, error_source="train"), seed, teacher=teacher, student=AlwaysWrongTfidf, out=tmp_path / "run",
                console=quiet())
    written = first.added
    assert len(written) >= 2
    state = review_state([], {e.id: e.label for e in written})
    labels = {e.id: e.label for e in written}
    append_decisions(tmp_path / "run", decide(state, "reject", [written[0].id], labels))
    other = "NUM" if written[1].label == "LOC" else "LOC"
    append_decisions(tmp_path / "run", decide(state, "relabel", [written[1].id], labels, new_label=other))

    teacher = Teacher(FunctionBackend(lambda r: f"Where is the harbour number {r.sample_index} of {r.target.like[:12]} ?"))
    again = run(LLM2LLM(rounds=1, error_source="train"), seed, teacher=teacher, student=AlwaysWrongTfidf, out=tmp_path / "run",
                console=quiet())
    ids = [e.id for e in again.added]
    assert written[0].id not in ids and written[1].id in ids
    assert next(e for e in again.added if e.id == written[1].id).label == other
    rejected = [json.loads(line) for line in (tmp_path / "run" / "rounds" / "000" / "rejected.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rejected if r["reason"] == "rejected in review"] == [written[0].id]


class AlwaysWrongTfidf(TfidfStudent):
    """tf-idf, except that it gets every row wrong: every seed is an error, every round."""

    def predict(self, examples):
        return [next(label for label in self.labels if label != e.label) for e in examples]


class JudgedByFolds(Method):
    """One round whose seed errors come from 3-fold held-out students."""

    name = "judged-by-folds"

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        ctx.end_round(0, seed, [], [], ctx.train_and_evaluate(seed, 0, pool=seed, held_out_errors=True))
        return seed


class FoldTfidf(TfidfStudent):
    fits: list[int] = []

    def _fit(self, examples, seed):
        FoldTfidf.fits.append(len(examples))
        super()._fit(examples, seed)


def test_the_fold_student_trains_the_k_fold_students_and_the_run_student_the_rest(tmp_path):
    FoldTfidf.fits = []
    run(JudgedByFolds(), seed_set(), teacher=silent_teacher(), student=CountingTfidf, fold_student=FoldTfidf,
        out=tmp_path / "run", console=quiet(), folds=3)
    assert CountingTfidf.fits == [6]  # the round's (and final) student
    assert FoldTfidf.fits == [4, 4, 4]  # three folds, each without its two held-out seeds
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert recorded["fold_student"] == "tfidf"  # a Student class by its kind, as the run student


def test_a_student_given_as_a_spec_has_folds_with_its_kinds_fold_settings(monkeypatch):
    from llmaug.students import spec

    made = []
    monkeypatch.setattr(TfidfStudent, "fold_options", {"max_features": 50})
    real = spec.make_student
    monkeypatch.setattr(spec, "make_student", lambda s, **options: (made.append(options), real(s, **options))[1])
    run(JudgedByFolds(), seed_set(), teacher=silent_teacher(), student="tfidf", console=quiet(), folds=3)
    assert made.count({"max_features": 50}) == 3 and {} in made

"""The runner: data in, a method's rounds, a run directory out.

    runs/<name>/
      config.yaml          everything needed to rerun (no secrets)
      cache.sqlite         every teacher response (reruns and resumes cost nothing)
      rounds/<k>/          data.jsonl  added.jsonl  rejected.jsonl  errors.jsonl  metrics.json  evaluation.json
      data.jsonl           the final augmented dataset, provenance on every row
      student/             the final student
      report.md report.html plots/
      summary.json         written last: the run is complete

Round k trains its student on rounds/<k>/data.jsonl and finds errors (errors.jsonl); rounds/<k>/added.jsonl and
rejected.jsonl hold what the teacher wrote in round k, which is what a row's provenance `round` says. Iterative
methods write from round k's errors, so round k + 1 is the first to train on those rows; one-pass methods write
before their only training, in round 0.

Resume replays the method from the top: teacher calls come from the cache and finished trainings from each
round's evaluation.json, so only unfinished work is done again, and the result equals an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from llmaug import crashpoints
from llmaug.candidates import Ask, candidates
from llmaug.config import RunConfig, config_yaml
from llmaug.data.example import Example, label_set
from llmaug.data.io import save_examples
from llmaug.errors import TeacherFailures
from llmaug.evaluation import BASELINE, Evaluation, Evaluator, FitRunner, fit_sequentially
from llmaug.evaluation.selection import MARGIN, Selection, choose_round, stalled
from llmaug.evaluation.verdict import Verdict, accuracy_interval, compare
from llmaug.decisions import apply_decisions, load_decisions
from llmaug.filters.quality import QualityFilter, Rejected, rejection
from llmaug.methods.base import Method, TaskInfo
from llmaug.rundir import RunDirectory, claim_run_dir
from llmaug.students.base import Student
from llmaug.students.metrics import Metrics
from llmaug.teachers.base import TeacherRequest, TeacherResponse
from llmaug.teachers.teacher import BUDGET_FINISH, Teacher
from llmaug.teachers.usage import BUDGET_STOP


REVIEWED_OUT = "rejected in review"


@dataclass
class RoundRecord:
    round: int
    train_size: int
    added: int
    rejected: int
    pool_errors: int
    pool_accuracy: float
    test_accuracy: float | None
    test_macro_f1: float | None
    teacher_requests: int  # requests answered (from the teacher or its cache)
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None without a price table
    failed_requests: int = 0  # requests that failed after every retry: no output
    skipped_requests: int = 0  # requests the budget did not allow
    rejection_reasons: dict[str, int] = field(default_factory=dict)
    cv_accuracy: float | None = None  # the seed rows' held-out accuracy
    cv_accuracy_ci95: list[float] | None = None
    test_accuracy_ci95: list[float] | None = None
    unjudged_seeds: int = 0  # seed rows no held-out student could judge
    held_out_note: str = ""  # how the seeds were judged, when not by plain k-fold
    stopped: str | None = None  # "teacher budget reached" in the round where the budget stopped the run


@dataclass
class RunResult:
    """A finished run. `data`, `student` and `test` are those of the round the run chose (`selection`), which may
    be the student without augmentation; `verdict` says whether augmentation helped."""

    out: Path | None
    data: list[Example]
    rounds: list[RoundRecord]
    student: Student
    test: Metrics | None
    seconds: float
    quality: dict = field(default_factory=dict)
    usage: dict = field(default_factory=dict)  # the teacher's whole-run Usage
    selection: Selection | None = None
    verdict: Verdict | None = None
    baseline: RoundRecord | None = None  # the student on the seed set alone, when no round of the method was that
    stopped: dict | None = None  # {"reason": "teacher budget reached", "detail": "N of M requests ..."}

    @property
    def added(self) -> list[Example]:
        return [e for e in self.data if not e.is_seed]

    @property
    def chosen_round(self) -> int | None:
        return self.selection.chosen_round if self.selection else None


class RunContext:
    """The services a method uses (see `llmaug.methods.base.Context`): the teacher, the shared filters, the
    evaluator that trains students, and the round records with their run-directory files."""

    def __init__(self, method: Method, teacher: Teacher, evaluator: Evaluator, task: TaskInfo, seed: int,
                 quality: QualityFilter, console: Console, rundir: RunDirectory | None, patience: int | None = None):
        self.patience = patience
        self.round_data: dict[int, list[Example]] = {}  # round -> the data its student trained on
        self.method_name = method.name
        self.teacher = teacher
        self.evaluator = evaluator
        self.task = task
        self.seed = seed
        self.quality = quality
        self.console = console
        self.rundir = rundir
        self.rounds: list[RoundRecord] = []
        self.decisions = load_decisions(rundir.path) if rundir is not None else []
        self._round_usage: Counter[str] = Counter()
        self._first_failure: str | None = None

    @property
    def teacher_identity(self) -> str:
        return self.teacher.identity

    @property
    def out_of_budget(self) -> bool:
        return self.teacher.exhausted

    @property
    def last_evaluation(self) -> Evaluation | None:
        return self.evaluator.last

    @property
    def stalled(self) -> bool:
        return stalled([self.evaluator.history[r] for r in sorted(self.evaluator.history) if r >= 0], self.patience)

    def generate(self, requests: list[TeacherRequest], stage: str) -> list[TeacherResponse]:
        with _progress(self.console) as progress:
            task = progress.add_task(stage, total=len(requests))
            responses = self.teacher.generate(requests, progress=lambda done, total: progress.update(task, completed=done))
        for response in responses:
            if response.finish_reason == BUDGET_FINISH:
                self._round_usage["skipped"] += 1
                continue
            self._round_usage["requests"] += 1
            self._round_usage["failed"] += response.finish_reason == "error"
            self._round_usage["prompt_tokens"] += response.prompt_tokens
            self._round_usage["completion_tokens"] += response.completion_tokens
            if response.finish_reason == "error" and self._first_failure is None:
                self._first_failure = response.error or "no output and no reason given"
        self._stop_if_failing()
        return responses

    def _stop_if_failing(self) -> None:
        """More than half of this round's requests failed (not rejected: failed): stop, keeping what is written."""
        failed, requests = self._round_usage["failed"], self._round_usage["requests"]
        if failed * 2 > requests:
            where = f" `llmaug run --resume {self.rundir.path}`" if self.rundir is not None else ""
            raise TeacherFailures(f"{failed} of {requests} teacher requests failed in round {len(self.rounds)} "
                                  f"(first: {self._first_failure}); fix the cause, then continue with{where or ' a rerun'}",
                                  self.teacher.spec)

    def generate_examples(self, asks: list[Ask], round: int, existing: list[Example], stage: str) -> tuple[list[Example], list[Rejected]]:
        responses = self.generate([ask.request for ask in asks], stage)
        made, unreadable, instructions = candidates(asks, responses, method=self.method_name, round=round,
                                                    teacher=self.teacher_identity)
        kept, dropped = self.filter(made, existing, instructions)
        return kept, unreadable + dropped

    @contextlib.contextmanager
    def progress(self, stage: str, total: int | None):
        with _progress(self.console) as progress:
            task = progress.add_task(stage, total=total)
            yield lambda done: progress.update(task, completed=done)

    def artifact_dir(self, name: str) -> Path | None:
        return self.rundir.path / name if self.rundir is not None else None

    def train_and_evaluate(self, data: list[Example], round: int, pool: list[Example], held_out_errors: bool = False) -> Evaluation:
        self.round_data[round] = data
        return self.evaluator.evaluate(data, round, pool, held_out_errors)

    def filter(self, candidates, existing, instructions=None) -> tuple[list[Example], list[Rejected]]:
        """The shared filters, then the review decisions made in this run directory so far (`llmaug review`): a
        resumed run leaves out the rows a reviewer rejected and keeps the labels a reviewer set."""
        crashpoints.reached("filter")
        kept, dropped = self.quality.apply(candidates, existing, self.task.labels or None, instructions)
        if not self.decisions:
            return kept, dropped
        kept, reviewed_out = apply_decisions(kept, self.decisions)
        return kept, dropped + [rejection(e, REVIEWED_OUT) for e in reviewed_out]

    def end_round(self, round: int, data, added, rejected, evaluation) -> None:
        evaluation = evaluation or self.evaluator.last
        usage, self._round_usage, self._first_failure = self._round_usage, Counter(), None
        record = self.record(round, data, added, rejected, evaluation, usage)
        self.rounds.append(record)
        self.console.print(_round_line(record))
        if self.rundir is not None:
            self.rundir.write_round(round, data, added, rejected, evaluation.errors, {
                **record.__dict__,
                "pool": evaluation.pool.model_dump(), "test": evaluation.test.model_dump() if evaluation.test else None,
            })

    def record(self, round: int, data, added, rejected, evaluation: Evaluation, usage: Counter) -> RoundRecord:
        held_out = evaluation.held_out
        judged = [held_out.correct[i] for i in held_out.judged] if held_out else []
        return RoundRecord(
            round=round, train_size=len(data), added=len(added), rejected=len(rejected),
            pool_errors=len(evaluation.errors), pool_accuracy=evaluation.pool.accuracy,
            test_accuracy=evaluation.test.accuracy if evaluation.test else None,
            test_macro_f1=evaluation.test.macro_f1 if evaluation.test else None,
            teacher_requests=usage["requests"], prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"], cost_usd=self._cost(usage),
            failed_requests=usage["failed"], skipped_requests=usage["skipped"],
            rejection_reasons=dict(Counter(_reason_kind(r.reason) for r in rejected).most_common()),
            cv_accuracy=held_out.accuracy if held_out else None,
            cv_accuracy_ci95=accuracy_interval(judged, seed=self.seed) if judged else None,
            test_accuracy_ci95=accuracy_interval(evaluation.test_correct, seed=self.seed) if evaluation.test_correct else None,
            unjudged_seeds=len(held_out.unjudged) if held_out else 0, held_out_note=held_out.note if held_out else "",
            stopped=BUDGET_STOP if usage["skipped"] and not any(r.stopped for r in self.rounds) else None,
        )

    def save_json(self, name: str, payload) -> None:
        if self.rundir is not None:
            self.rundir.save_json(name, payload)

    def status(self, stage: str):
        """A spinner for a step without a known length (training a student)."""
        return self.progress(stage, None)

    def _cost(self, usage: Counter) -> float | None:
        price = self.teacher.price
        if price is None:
            return None
        return round((usage["prompt_tokens"] * price.prompt + usage["completion_tokens"] * price.completion) / 1e6, 6)


def run(
    method: Method,
    seed: list[Example],
    *,
    teacher: Teacher | str,
    student="finetune",
    eval: list[Example] | None = None,
    out: str | Path | None = None,
    task: TaskInfo | None = None,
    random_seed: int = 0,
    quality: QualityFilter | None = None,
    label_check: str = "auto",
    select: str = "best-cv",
    select_margin: float = MARGIN,
    patience: int | None = None,
    folds: int = 5,
    fit_runner: FitRunner = fit_sequentially,
    fold_student=None,
    config: RunConfig | None = None,
    output_format: str = "jsonl",
    console: Console | None = None,
) -> RunResult:
    """Run `method` on `seed` and return the chosen round's data and student, per-round records and a verdict.

    `teacher` is a `Teacher` or a spec string (`embedded`, `openai:gpt-4o-mini`, ...); `student` a spec string
    (`finetune`, `embed-lr`, `tfidf`, ...), a `Student` class or a zero-argument factory: a fresh, untrained
    student is made for every training (always from scratch). With `out`, everything is written to that run
    directory, `config.yaml` included (an API run's seed and eval rows are saved beside it, so that
    `llmaug run --resume OUT` and `llmaug run --config OUT/config.yaml` work for it too).
    `label_check` (auto | none | centroid) is the embedding label check of the shared filters; auto turns it on
    for teachers whose own labels are unreliable (the embedded 135M model). `select` (best-cv | last) is the round
    the run returns, chosen on held-out seed judgements (`folds`-fold), never on `eval`; `patience` stops after that
    many rounds without held-out improvement. `fold_student` (a spec, class or factory, like `student`) trains
    those held-out students; by default the run's student, with its kind's cheaper fold settings when it is a spec.
    """
    started = time.perf_counter()
    console = console or Console(stderr=True)
    out = Path(out) if out is not None else None
    own_teacher = isinstance(teacher, str)
    if own_teacher:
        teacher = Teacher(teacher, cache=out / "cache.sqlite" if out else None)
    factory = student_factory(student)
    labels = label_set(seed)
    task = task or TaskInfo(labels=labels)
    if not task.labels:
        task.labels = labels
    quality = (quality or default_quality(label_check, teacher, device=config.device if config else "auto")).fit(seed)
    rundir = RunDirectory(out) if out is not None else None
    evaluator = Evaluator(factory, random_seed, eval, rundir, folds=folds, judge_seeds=select == "best-cv" or bool(patience),
                          fit_runner=fit_runner, fold_factory=student_factory(fold_student or _fold_spec(student)))
    ctx = RunContext(method, teacher, evaluator, task, random_seed, quality, console, rundir, patience)
    evaluator.status = ctx.status
    try:
        with claim_run_dir(out) if out is not None else nullcontext():
            if rundir is not None:
                config = config or _api_config(rundir, method, seed, eval, teacher, student, random_seed, label_check,
                                               output_format, fold_student)
                rundir.write_config(config_yaml(config))
            data = method.algorithm(seed, ctx)
            last = evaluator.last
            if last is None or last.train_size != len(data):
                ctx.end_round(len(ctx.rounds), data, [], [], ctx.train_and_evaluate(data, len(ctx.rounds), seed))
            result = _result(ctx, seed, select, select_margin, started)
            if rundir is not None:
                _write_outputs(rundir, result, method, teacher, output_format)
            return result
    finally:
        if own_teacher:
            teacher.close()


def _result(ctx: RunContext, seed: list[Example], select: str, margin: float, started: float) -> RunResult:
    """The run's outcome: the round chosen without the test set, its data and student, and the verdict."""
    evaluator = ctx.evaluator
    rounds = [evaluator.history[r] for r in sorted(evaluator.history) if r >= 0]
    baseline_round = next((r for r in sorted(ctx.round_data) if _same_rows(ctx.round_data[r], seed)), None)
    baseline, baseline_record = None, None
    if baseline_round is None:  # no round trained on the seeds alone: train that student too, to compare with
        baseline = evaluator.evaluate(seed, BASELINE, seed)
        ctx.round_data[BASELINE] = seed
        baseline_record = ctx.record(BASELINE, seed, [], [], baseline, Counter())
    candidates = ([baseline] if baseline is not None else []) + rounds
    selection = choose_round(candidates, select, margin)
    chosen = evaluator.history[selection.chosen_round]
    first = candidates[0]
    data = ctx.round_data[selection.chosen_round]
    return RunResult(
        out=ctx.rundir.path if ctx.rundir else None, data=data, rounds=ctx.rounds, student=evaluator.final_student(data),
        test=chosen.test, seconds=time.perf_counter() - started, quality=ctx.quality.model_dump(),
        usage=ctx.teacher.usage.model_dump(), selection=selection,
        verdict=judge_augmentation(first, chosen, evaluator.test, seed, ctx.seed),
        baseline=baseline_record, stopped=ctx.teacher.budget.stop(ctx.teacher.usage),
    )


def judge_augmentation(before: Evaluation, after: Evaluation, test: list[Example] | None, seed: list[Example],
                       random_seed: int) -> Verdict | None:
    """The chosen student against the one without augmentation: on the eval set, else on held-out seed rows."""
    classes = bool(before.pool.per_class)
    rounds = {"baseline_round": before.round, "final_round": after.round, "classes": classes, "seed": random_seed}
    if test and before.test_correct is not None and after.test_correct is not None:
        gold = [e.label if e.label is not None else (e.answer or "") for e in test]
        return compare(gold, before.test_predictions, after.test_predictions, correct_before=before.test_correct,
                       correct_after=after.test_correct, on="eval", **rounds)
    if before.held_out is None or after.held_out is None:
        return None
    ids = sorted(i for i in before.held_out.judged if i in after.held_out.correct)
    if not ids:
        return None
    gold = {e.id: e.label or "" for e in seed}
    return compare([gold[i] for i in ids], [before.held_out.predicted[i] for i in ids],
                   [after.held_out.predicted[i] for i in ids], correct_before=[before.held_out.correct[i] for i in ids],
                   correct_after=[after.held_out.correct[i] for i in ids], on="cv-seed",
                   note="no eval set: judged on the seed rows held out, the same rows that chose the round, so it "
                        "leans optimistic", **rounds)


def _same_rows(data: list[Example], seed: list[Example]) -> bool:
    return [e.id for e in data] == [e.id for e in seed]


def default_quality(label_check: str, teacher: Teacher, centroid_top: int = 1, device: str = "auto") -> QualityFilter:
    """The shared filters; `auto` turns the embedding label check on for teachers whose labels are unreliable."""
    check = label_check
    if check == "auto":
        check = "none" if teacher.reliable_labels else "centroid"
    return QualityFilter(centroid_top=centroid_top if check == "centroid" else None, device=device)


def _fold_spec(student):
    """The default fold student for a student given as a spec: the same, with its kind's fold settings."""
    if not isinstance(student, str):
        return student
    from llmaug.students.spec import fold_student_options

    return StudentSpec(student, tuple(sorted(fold_student_options(student).items())))


def student_factory(student) -> Callable[[], Student]:
    """A zero-argument factory of fresh students from a spec string, a `Student` class or a factory."""
    if isinstance(student, str):
        factory = StudentSpec(student)
        factory()  # a bad spec fails now, before any teacher call
        return factory
    return student


@dataclass(frozen=True)
class StudentSpec:
    """Makes fresh students of a spec with options: a picklable factory, for fold students trained elsewhere."""

    spec: str
    options: tuple[tuple[str, Any], ...] = ()

    def __call__(self) -> Student:
        from llmaug.students.spec import make_student

        return make_student(self.spec, **dict(self.options))


def _api_config(rundir: RunDirectory, method: Method, seed: list[Example], eval: list[Example] | None, teacher: Teacher,
                student, random_seed: int, label_check: str, output_format: str, fold_student=None) -> RunConfig:
    """What an API run records as config.yaml: its seed and eval rows saved beside it, and its components by spec
    (a Python-object teacher or student by its identity, which cannot be rebuilt from the file)."""
    save_examples(seed, rundir.path / "seed.jsonl")
    if eval is not None:
        save_examples(eval, rundir.path / "eval.jsonl")
    options = getattr(teacher.backend, "options", None)
    return RunConfig(
        method=method.name, method_options=method.options(), dataset=None, fraction=None,
        train=str(rundir.path / "seed.jsonl"), eval=str(rundir.path / "eval.jsonl") if eval is not None else None,
        teacher=teacher.spec, teacher_options=options.model_dump(mode="json") if isinstance(options, BaseModel) else {},
        student=_student_spec(student), student_options={}, seed=random_seed, label_check=label_check,
        fold_student=_student_spec(fold_student) if fold_student is not None else None,
        cache=teacher.cache is not None, max_teacher_calls=teacher.budget.max_calls,
        max_tokens_budget=teacher.budget.max_tokens, price=teacher.price, output_format=output_format,
    )


def _student_spec(student) -> str:
    if isinstance(student, str):
        return student
    if isinstance(student, StudentSpec):
        return student.spec
    kind = getattr(student, "kind", None)
    return kind if isinstance(kind, str) else f"python:{getattr(student, '__name__', type(student).__name__)}"


def _write_outputs(rundir: RunDirectory, result: RunResult, method: Method, teacher: Teacher, output_format: str) -> None:
    from llmaug.report import write_report

    rundir.save_data(result.data, output_format)
    rundir.save_student(result.student)
    rundir.save_json("usage.json", teacher.usage.model_dump())
    write_report(result, method, teacher.identity)
    rundir.save_json("summary.json", {
        "method": method.name, "options": method.options(), "rounds": [r.__dict__ for r in result.rounds],
        "baseline": result.baseline.__dict__ if result.baseline else None,
        "chosen_round": result.chosen_round, "selection": result.selection.to_json(),
        "verdict": result.verdict.to_json() if result.verdict else None,
        "final_size": len(result.data), "added": len(result.added),
        "test": result.test.model_dump() if result.test else None, "seconds": round(result.seconds, 1),
        "stopped": result.stopped,
    })


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0]


def _round_line(record: RoundRecord) -> str:
    test = f"{record.test_accuracy:.3f}" if record.test_accuracy is not None else "-"
    stopped = f" (stopped: {record.stopped}, {record.skipped_requests} requests not sent)" if record.stopped else ""
    return (
        f"round {record.round}: train {record.train_size}, seed errors {record.pool_errors}, "
        f"added {record.added} (rejected {record.rejected}), test accuracy {test}{stopped}"
    )


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )

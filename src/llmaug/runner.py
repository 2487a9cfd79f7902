"""The runner: data in, a method's rounds, a run directory out.

    runs/<name>/
      config.yaml          everything needed to rerun (no secrets)
      cache.sqlite         every teacher response (reruns and resumes cost nothing)
      rounds/<k>/          data.jsonl  added.jsonl  rejected.jsonl  errors.jsonl  metrics.json  evaluation.json
      data.jsonl           the final augmented dataset, provenance on every row
      student/             the final student
      report.md report.html plots/
      summary.json         written last: the run is complete

Resume replays the method from the top: teacher calls come from the cache and finished trainings from each
round's evaluation.json, so only unfinished work is done again, and the result equals an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from llmaug import crashpoints
from llmaug.data.example import Example, label_set
from llmaug.data.io import atomic_dir, example_rows, save_examples, write_json_atomic, write_text_atomic
from llmaug.filters.quality import QualityFilter, Rejected
from llmaug.methods.base import ErrorCase, Evaluation, Method, TaskInfo
from llmaug.rundir import claim_run_dir
from llmaug.students.base import Student
from llmaug.students.metrics import Metrics, evaluate
from llmaug.teachers.base import TeacherRequest, TeacherResponse
from llmaug.teachers.teacher import Teacher


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
    teacher_requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    rejection_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class RunResult:
    out: Path | None
    data: list[Example]
    rounds: list[RoundRecord]
    student: Student
    test: Metrics | None
    seconds: float
    quality: dict = field(default_factory=dict)

    @property
    def added(self) -> list[Example]:
        return [e for e in self.data if not e.is_seed]


class RunContext:
    """The services a method uses (see `llmaug.methods.base.Context`)."""

    def __init__(
        self,
        teacher: Teacher,
        student_factory,
        task: TaskInfo,
        seed: int,
        test: list[Example] | None,
        out: Path | None,
        quality: QualityFilter,
        console: Console,
    ):
        self.teacher = teacher
        self.student_factory = student_factory
        self.task = task
        self.seed = seed
        self.test = test
        self.out = out
        self.quality = quality
        self.console = console
        self.rounds: list[RoundRecord] = []
        self.last_evaluation: Evaluation | None = None
        self.last_student: tuple[str, Student] | None = None
        self._round_usage = Counter()

    @property
    def teacher_identity(self) -> str:
        return self.teacher.identity

    @property
    def out_of_budget(self) -> bool:
        return self.teacher.exhausted

    def generate(self, requests: list[TeacherRequest], stage: str) -> list[TeacherResponse]:
        with _progress(self.console) as progress:
            task = progress.add_task(stage, total=len(requests))
            responses = self.teacher.generate(requests, progress=lambda done, total: progress.update(task, completed=done))
        for response in responses:
            if response.finish_reason == "budget":
                continue
            self._round_usage["requests"] += 1
            self._round_usage["prompt_tokens"] += response.prompt_tokens
            self._round_usage["completion_tokens"] += response.completion_tokens
        return responses

    @contextlib.contextmanager
    def progress(self, stage: str, total: int | None):
        with _progress(self.console) as progress:
            task = progress.add_task(stage, total=total)
            yield lambda done: progress.update(task, completed=done)

    def artifact_dir(self, name: str) -> Path | None:
        return self.out / name if self.out is not None else None

    def train_and_evaluate(self, data: list[Example], round: int, pool: list[Example], error_folds: int | None = None) -> Evaluation:
        fingerprint = self._fingerprint(data, pool) + f":{error_folds}"
        saved = self._saved_evaluation(round, fingerprint, pool)
        if saved is not None:
            self.last_evaluation = saved
            return saved
        with _progress(self.console) as progress:
            progress.add_task(f"round {round}: training the student on {len(data)} examples", total=None)
            student = self._fit(data)
            pool_predictions = student.predict(pool)
            test_metrics = evaluate(student, self.test)[0] if self.test else None
            if error_folds:
                progress.add_task(f"round {round}: {error_folds}-fold held-out predictions for the seed rows", total=None)
                pool_predictions = self._held_out_predictions(data, pool, pool_predictions, error_folds)
        pool_metrics = _score(student, pool, pool_predictions)
        errors = [ErrorCase(e, p) for e, p in zip(pool, pool_predictions) if not student.is_correct(e, p)]
        evaluation = Evaluation(round, len(data), pool_metrics, errors, test_metrics)
        self.last_student = (fingerprint, student)
        self.last_evaluation = evaluation
        if self.out is not None:
            write_json_atomic(self._round_dir(round) / "evaluation.json", {
                "fingerprint": fingerprint, "train_size": len(data), "pool": pool_metrics.model_dump(),
                "test": test_metrics.model_dump() if test_metrics else None,
                "errors": [{"id": c.example.id, "predicted": c.predicted} for c in errors],
            })
        return evaluation

    def _held_out_predictions(self, data: list[Example], pool: list[Example], predictions: list[str], folds: int) -> list[str]:
        seeds = [i for i, e in enumerate(pool) if e.is_seed]
        predictions = list(predictions)
        for held in _folds([pool[i] for i in seeds], folds, self.seed):
            held_ids = {pool[seeds[j]].id for j in held}
            train = [e for e in data if e.id not in held_ids and not held_ids.intersection(e.provenance.parent_ids)]
            if len({e.label for e in train}) < 2:
                continue
            student = self._fit(train)
            for j, predicted in zip(held, student.predict([pool[seeds[j]] for j in held])):
                predictions[seeds[j]] = predicted
        return predictions

    def filter(self, candidates, existing, instructions=None) -> tuple[list[Example], list[Rejected]]:
        crashpoints.reached("filter")
        return self.quality.apply(candidates, existing, self.task.labels or None, instructions)

    def end_round(self, round: int, data, added, rejected, evaluation) -> None:
        evaluation = evaluation or self.last_evaluation
        price = self.teacher.price
        usage, self._round_usage = self._round_usage, Counter()
        cost = (usage["prompt_tokens"] * price.prompt + usage["completion_tokens"] * price.completion) / 1e6 if price else 0.0
        record = RoundRecord(
            round=round, train_size=len(data), added=len(added), rejected=len(rejected),
            pool_errors=len(evaluation.errors), pool_accuracy=evaluation.pool.accuracy,
            test_accuracy=evaluation.test.accuracy if evaluation.test else None,
            test_macro_f1=evaluation.test.macro_f1 if evaluation.test else None,
            teacher_requests=usage["requests"], prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"], cost_usd=round_cost(cost),
            rejection_reasons=dict(Counter(_reason_kind(r.reason) for r in rejected).most_common()),
        )
        self.rounds.append(record)
        self.console.print(_round_line(record))
        if self.out is None:
            return
        folder = self._round_dir(round)
        save_examples(data, folder / "data.jsonl")
        save_examples(added, folder / "added.jsonl")
        _write_jsonl(folder / "rejected.jsonl", [r.model_dump() for r in rejected])
        _write_jsonl(folder / "errors.jsonl", [
            {**example_rows([c.example])[0], "predicted": c.predicted} for c in evaluation.errors
        ])
        write_json_atomic(folder / "metrics.json", {
            **record.__dict__,
            "pool": evaluation.pool.model_dump(), "test": evaluation.test.model_dump() if evaluation.test else None,
        })

    def save_json(self, name: str, payload) -> None:
        if self.out is not None:
            write_json_atomic(self.out / name, payload)

    def final_student(self, data: list[Example]) -> Student:
        """The student trained on `data`: the one from the last round when it saw exactly this data."""
        fingerprint = self._fingerprint(data, data)
        if self.last_student is not None and self.last_student[0].split(":")[0] == fingerprint.split(":")[0]:
            return self.last_student[1]
        return self._fit(data)

    def _fit(self, data: list[Example]) -> Student:
        crashpoints.reached("train")
        return self.student_factory().fit(data, seed=self.seed)

    def _fingerprint(self, data: list[Example], pool: list[Example]) -> str:
        digest = hashlib.sha256()
        for example in data:
            digest.update(example.id.encode())
        pool_digest = hashlib.sha256("".join(e.id for e in pool).encode()).hexdigest()[:12]
        return f"{digest.hexdigest()[:24]}:{pool_digest}:{self.seed}"

    def _saved_evaluation(self, round: int, fingerprint: str, pool: list[Example]) -> Evaluation | None:
        if self.out is None:
            return None
        path = self._round_dir(round) / "evaluation.json"
        try:
            saved = json.loads(path.read_text())
            if saved["fingerprint"] != fingerprint:
                return None
            by_id = {e.id: e for e in pool}
            errors = [ErrorCase(by_id[item["id"]], item["predicted"]) for item in saved["errors"]]
            test = Metrics.model_validate(saved["test"]) if saved["test"] else None
            return Evaluation(round, saved["train_size"], Metrics.model_validate(saved["pool"]), errors, test)
        except (OSError, ValueError, KeyError):
            return None

    def _round_dir(self, round: int) -> Path:
        assert self.out is not None
        return self.out / "rounds" / f"{round:03d}"


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
    config_text: str | None = None,
    output_format: str = "jsonl",
    console: Console | None = None,
) -> RunResult:
    """Run `method` on `seed` and return the augmented data, per-round records and the final student.

    `student` is a spec string (`finetune`, `embed-lr`, `tfidf`, ...), a `Student` class or a zero-argument
    factory; a fresh, untrained student is made for every round (training is always from scratch).
    """
    from llmaug.students.spec import make_student

    started = time.perf_counter()
    console = console or Console(stderr=True)
    out = Path(out) if out is not None else None
    own_teacher = isinstance(teacher, str)
    if own_teacher:
        teacher = Teacher(teacher, cache=out / "cache.sqlite" if out else None)
    factory = (lambda: make_student(student)) if isinstance(student, str) else student
    labels = label_set(seed)
    task = task or TaskInfo(labels=labels)
    if not task.labels:
        task.labels = labels
    quality = (quality or QualityFilter()).fit(seed)
    ctx = RunContext(teacher, factory, task, random_seed, eval, out, quality, console)
    try:
        with claim_run_dir(out) if out is not None else nullcontext():
            if out is not None and config_text is not None:
                write_text_atomic(out / "config.yaml", config_text)
            data = method.algorithm(seed, ctx)
            if ctx.last_evaluation is None or ctx.last_evaluation.train_size != len(data):
                ctx.end_round(len(ctx.rounds), data, [], [], ctx.train_and_evaluate(data, len(ctx.rounds), seed))
            final_student = ctx.final_student(data)  # after the closing round, which may have trained it already
            test = ctx.last_evaluation.test
            result = RunResult(out, data, ctx.rounds, final_student, test, time.perf_counter() - started, quality.model_dump())
            if out is not None:
                _write_outputs(result, method, teacher, output_format)
            return result
    finally:
        if own_teacher:
            teacher.close()


def _write_outputs(result: RunResult, method: Method, teacher: Teacher, output_format: str) -> None:
    from llmaug.report import write_report

    out = result.out
    assert out is not None
    save_examples(result.data, out / f"data.{output_format}")
    with atomic_dir(out / "student") as staging:
        result.student.save(staging)
    write_json_atomic(out / "usage.json", teacher.usage.model_dump())
    write_report(result, method, teacher.identity)
    write_json_atomic(out / "summary.json", {
        "method": method.name, "options": method.options(), "rounds": [r.__dict__ for r in result.rounds],
        "final_size": len(result.data), "added": len(result.added),
        "test": result.test.model_dump() if result.test else None, "seconds": round(result.seconds, 1),
    })


def _folds(examples: list[Example], k: int, seed: int) -> list[list[int]]:
    """Stratified k-fold index lists (as even as small classes allow)."""
    import random

    by_label: dict[str | None, list[int]] = {}
    for i, example in enumerate(examples):
        by_label.setdefault(example.label, []).append(i)
    rng = random.Random(seed)
    folds: list[list[int]] = [[] for _ in range(min(k, len(examples)))]
    position = 0
    for label in sorted(by_label, key=str):
        members = by_label[label]
        rng.shuffle(members)
        for i in members:
            folds[position % len(folds)].append(i)
            position += 1
    return [sorted(f) for f in folds if f]


def _score(student: Student, pool: list[Example], predictions: list[str]) -> Metrics:
    from llmaug.students.metrics import score

    gold = [e.label if e.label is not None else (e.answer or "") for e in pool]
    correct = [student.is_correct(e, p) for e, p in zip(pool, predictions)]
    return score(gold, predictions, labels=list(student.labels) or None, correct=correct)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0]


def round_cost(cost: float) -> float:
    return round(cost, 6)


def _round_line(record: RoundRecord) -> str:
    test = f"{record.test_accuracy:.3f}" if record.test_accuracy is not None else "-"
    return (
        f"round {record.round}: train {record.train_size}, seed errors {record.pool_errors}, "
        f"added {record.added} (rejected {record.rejected}), test accuracy {test}"
    )


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )

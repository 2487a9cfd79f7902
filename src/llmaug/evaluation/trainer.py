"""Train a fresh student on a round's data and score it on the pool that drives augmentation and on the test set,
and judge every seed row by a student that saw neither it nor its synthetic children (held-out, stratified k-fold).

The held-out judgements give each round a cross-validated accuracy and, finer, each seed's held-out probability
of its gold label and margin: the signals that choose the round to keep (`selection`) and that LLM2LLM targets.
Seed rows a round's student never saw (S3 and ZeroGen train on synthetic rows only) are held out already: the
main student judges them. Results are memoised by a fingerprint of the data, so a method replayed after a crash
trains nothing twice.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

from llmaug import crashpoints
from llmaug.data.example import Example
from llmaug.students.base import Student
from llmaug.students.metrics import Metrics, evaluate, score


BASELINE = -1  # the round number of the student on the seed set alone, when no round of the method was that


@dataclass
class ErrorCase:
    """An example the student got wrong, with what it predicted."""

    example: Example
    predicted: str


@dataclass
class HeldOut:
    """Seed rows judged by students that saw neither them nor their synthetic children."""

    predicted: dict[str, str] = field(default_factory=dict)  # seed id -> held-out prediction
    correct: dict[str, bool] = field(default_factory=dict)
    gold_probability: dict[str, float] = field(default_factory=dict)  # classifiers only
    margin: dict[str, float] = field(default_factory=dict)  # p(gold) - max p(other); negative when wrong
    rival: dict[str, str] = field(default_factory=dict)  # the most probable label other than the gold one
    unjudged: list[str] = field(default_factory=list)  # seed ids no held-out student could judge
    folds: int = 0  # 0: every seed was unseen by the round's student, which judged them
    note: str = ""  # how the seeds were judged, in words, when it is not plain k-fold

    @property
    def judged(self) -> list[str]:
        return sorted(self.correct)

    @property
    def accuracy(self) -> float | None:
        return sum(self.correct.values()) / len(self.correct) if self.correct else None

    def scores(self, ids: list[str]) -> np.ndarray:
        """Per seed, the finest signal there is: the held-out probability of the gold label, else correctness."""
        source = self.gold_probability if self.gold_probability else {k: float(v) for k, v in self.correct.items()}
        return np.array([source[i] for i in ids], dtype=float)


@dataclass
class Evaluation:
    """One training of the student from scratch, scored on the pool that drives augmentation and on test."""

    round: int
    train_size: int
    pool: Metrics
    errors: list[ErrorCase]
    test: Metrics | None = None
    test_predictions: list[str] | None = None
    test_correct: list[bool] | None = None  # per test row, as the student judges answers
    held_out: HeldOut | None = None


class EvaluationStore(Protocol):
    """Where finished evaluations are kept between processes (the run directory)."""

    def load_evaluation(self, round: int) -> dict[str, Any] | None: ...

    def save_evaluation(self, round: int, payload: dict[str, Any]) -> None: ...


class FitJob(NamedTuple):
    """Train a fresh student on `train`, then judge `rows` (one fold of the held-out predictions)."""

    train: list[Example]
    rows: list[Example]


class Judged(NamedTuple):
    """What a fold student says of its held-out rows: predictions, whether it could judge each row at all (it knows
    the row's class), and for classifiers the gold label's probability and the margin over the next label."""

    predicted: list[str]
    correct: list[bool]
    judgeable: list[bool]
    gold_probability: list[float] | None
    margin: list[float] | None
    rival: list[str] | None


StudentFactory = Callable[[], Student]
FitRunner = Callable[[Callable[[FitJob], Judged], list[FitJob]], list[Judged]]
Status = Callable[[str], AbstractContextManager]


def fit_sequentially(task: Callable[[FitJob], Judged], jobs: list[FitJob]) -> list[Judged]:
    """Run the fold jobs one after the other (a Ray runner maps `task` over them in parallel)."""
    return [task(job) for job in jobs]


@dataclass
class FoldTask:
    """Fit a fresh student on a fold's training rows and judge its held-out rows. A plain, picklable callable, so
    that fold jobs can run in other processes or on other machines."""

    factory: StudentFactory
    seed: int

    def __call__(self, job: FitJob) -> Judged:
        crashpoints.reached("train")
        student = self.factory().fit(job.train, seed=self.seed)
        return judge(student, job.rows)


def judge(student: Student, rows: list[Example]) -> Judged:
    predicted = student.predict(rows)
    correct = [student.is_correct(e, p) for e, p in zip(rows, predicted, strict=True)]
    if not student.labels:  # a QA student: answers are right or wrong, nothing finer
        return Judged(predicted, correct, [True] * len(rows), None, None, None)
    probabilities = student.predict_proba(rows)
    judgeable = [e.label in student.labels for e in rows]
    gold, margin, rival = [], [], []
    for example, row, known in zip(rows, probabilities, judgeable, strict=True):
        column = student.labels.index(example.label) if known else None
        p_gold = float(row[column]) if column is not None else 0.0
        others = [(float(p), label) for j, (p, label) in enumerate(zip(row, student.labels)) if j != column]
        best_other = max(others, default=(0.0, ""))
        gold.append(p_gold)
        margin.append(p_gold - best_other[0])
        rival.append(best_other[1])
    return Judged(predicted, correct, judgeable, gold, margin, rival)


class Evaluator:
    def __init__(self, student_factory: StudentFactory, seed: int, test: list[Example] | None,
                 store: EvaluationStore | None = None, status: Status | None = None, folds: int = 5,
                 judge_seeds: bool = True, fit_runner: FitRunner = fit_sequentially,
                 fold_factory: StudentFactory | None = None):
        self.student_factory = student_factory
        self.seed = seed
        self.test = test
        self.store = store
        self.status = status or _silent
        self.folds = folds  # k of the held-out students
        self.judge_seeds = judge_seeds  # held-out judgements every round (round selection needs them)
        self.fit_runner = fit_runner  # how the fold students are trained: one after the other, or on Ray
        self.fold_factory = fold_factory or student_factory  # the fold students may be a cheaper kind
        self.last: Evaluation | None = None
        self.history: dict[int, Evaluation] = {}  # round -> its evaluation, as the run saw it
        self._students: dict[str, Student] = {}  # data fingerprint -> the student trained on that data

    def evaluate(self, data: list[Example], round: int, pool: list[Example], held_out_errors: bool = False) -> Evaluation:
        """Train on `data`, score on `pool` and the test set, and judge the seeds held out. With `held_out_errors`
        the errors are the held-out judgements of the seeds (a converged classifier gets its training rows right),
        else the main student's predictions on the pool. QA seeds (answers, no labels) are judged by the student
        trained on them, as LLM2LLM publishes: a fold of LoRA trainings per seed group would cost hours on a CPU."""
        judge_seeds = (self.judge_seeds or held_out_errors) and any(e.label is not None for e in pool)
        fingerprint = f"{self._fingerprint(data, pool)}:{self.folds if judge_seeds else 0}:{held_out_errors}"
        evaluation = self._saved(round, fingerprint, pool) or self._evaluate(data, round, pool, judge_seeds, held_out_errors, fingerprint)
        self.last = evaluation
        self.history[round] = evaluation
        return evaluation

    def _evaluate(self, data, round, pool, judge_seeds, held_out_errors, fingerprint) -> Evaluation:
        with self.status(f"round {round}: training the student on {len(data)} examples"):
            student = self.fit(data)
            pool_predictions = student.predict(pool)
            test_metrics, test_predictions = evaluate(student, self.test) if self.test else (None, None)
            test_correct = [student.is_correct(e, p) for e, p in zip(self.test, test_predictions)] if self.test else None
        held_out = None
        if judge_seeds:
            with self.status(f"round {round}: held-out judgements of the seed rows"):
                held_out = self._held_out(data, pool, student)
        if held_out_errors and held_out is not None and held_out.correct:
            pool_predictions = [held_out.predicted.get(e.id, p) for e, p in zip(pool, pool_predictions)]
            errors = [ErrorCase(e, held_out.predicted[e.id]) for e in pool if held_out.correct.get(e.id) is False]
        else:
            if held_out_errors and held_out is not None:
                held_out.note = "; ".join(filter(None, [held_out.note, "no seed row could be judged held out, so the "
                                                        "errors are those of the student trained on them"]))
            errors = [ErrorCase(e, p) for e, p in zip(pool, pool_predictions) if not student.is_correct(e, p)]
        evaluation = Evaluation(round, len(data), _score(student, pool, pool_predictions), errors, test_metrics,
                                test_predictions, test_correct, held_out)
        self._students[fingerprint.split(":")[0]] = student
        if self.store is not None:
            self.store.save_evaluation(round, _payload(evaluation, fingerprint))
        return evaluation

    def final_student(self, data: list[Example]) -> Student:
        """The student trained on `data`: the one this run trained, if it is still at hand, else a new one."""
        key = self._fingerprint(data, data).split(":")[0]
        return self._students.get(key) or self.fit(data)

    def fit(self, data: list[Example]) -> Student:
        crashpoints.reached("train")
        return self.student_factory().fit(data, seed=self.seed)

    def _held_out(self, data: list[Example], pool: list[Example], student: Student) -> HeldOut:
        seeds = [e for e in pool if e.is_seed]
        trained_on = {e.id for e in data} | {parent for e in data if not e.is_seed for parent in e.provenance.parent_ids}
        seen = [e for e in seeds if e.id in trained_on]
        held_out = HeldOut()
        unseen = [e for e in seeds if e.id not in trained_on]
        if unseen:  # held out already: the round's own student judges them
            _record(held_out, unseen, judge(student, unseen))
        if not seen:
            return held_out
        fold_lists, note = fold_plan(seen, self.folds, self.seed)
        held_out.folds, held_out.note = len(fold_lists), note
        jobs, members = [], []
        for fold in fold_lists:
            rows = [seen[j] for j in fold]
            ids = {e.id for e in rows}
            train = [e for e in data if e.id not in ids and not ids.intersection(e.provenance.parent_ids)]
            if len({e.label for e in train}) < 2:
                held_out.unjudged += sorted(ids)
                continue
            jobs.append(FitJob(train, rows))
            members.append(rows)
        for rows, judged in zip(members, self.fit_runner(FoldTask(self.fold_factory, self.seed), jobs), strict=True):
            _record(held_out, rows, judged)
        if held_out.unjudged:
            held_out.note = "; ".join(filter(None, [held_out.note, f"{len(held_out.unjudged)} seed row(s) could not be "
                                                    "judged held out: no other example of their class outside their fold"]))
        return held_out

    def _fingerprint(self, data: list[Example], pool: list[Example]) -> str:
        digest = hashlib.sha256()
        for example in data:
            digest.update(example.id.encode())
        pool_digest = hashlib.sha256("".join(e.id for e in pool).encode()).hexdigest()[:12]
        return f"{digest.hexdigest()[:24]}:{pool_digest}:{self.seed}"

    def _saved(self, round: int, fingerprint: str, pool: list[Example]) -> Evaluation | None:
        saved = self.store.load_evaluation(round) if self.store is not None else None
        if not saved or saved.get("fingerprint") != fingerprint:
            return None
        try:
            by_id = {e.id: e for e in pool}
            errors = [ErrorCase(by_id[item["id"]], item["predicted"]) for item in saved["errors"]]
            test = Metrics.model_validate(saved["test"]) if saved["test"] else None
            held_out = HeldOut(**saved["held_out"]) if saved.get("held_out") else None
            return Evaluation(round, saved["train_size"], Metrics.model_validate(saved["pool"]), errors, test,
                              saved.get("test_predictions"), saved.get("test_correct"), held_out)
        except (ValueError, KeyError, TypeError):
            return None


def fold_plan(seeds: list[Example], k: int, seed: int) -> tuple[list[list[int]], str]:
    """The folds that judge `seeds`, and a note when the seed set is too small for plain k-fold: the folds then
    number at most the size of the smallest class that has two rows or more (so every fold's training data keeps
    an example of each of those classes), down to two."""
    counts = Counter(str(e.label) for e in seeds)
    repeated = [n for n in counts.values() if n >= 2]
    usable = min(k, min(repeated)) if repeated else min(k, len(seeds))
    usable = max(2, usable) if len(seeds) >= 2 else len(seeds)
    folds = stratified_folds(seeds, usable, seed)
    note = "" if len(folds) == k else f"{len(folds)}-fold instead of {k}-fold: the seed set has classes of {min(counts.values())} row(s)"
    return folds, note


def stratified_folds(examples: list[Example], k: int, seed: int) -> list[list[int]]:
    """Index lists of stratified k-fold test folds (as even as small classes allow), seeded."""
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = [str(e.label) for e in examples]
    largest_class = max(Counter(labels).values(), default=0)
    splits = min(k, len(examples), largest_class)
    if splits >= 2:
        splitter = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    elif min(k, len(examples)) >= 2:  # every class a single row: stratifying means nothing
        splitter = KFold(n_splits=min(k, len(examples)), shuffle=True, random_state=seed)
    else:
        return [list(range(len(examples)))] if examples else []
    with warnings.catch_warnings():  # classes smaller than k: some folds then lack them, which is fine here
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return [sorted(int(i) for i in test) for _, test in splitter.split(labels, labels)]


def _record(held_out: HeldOut, rows: list[Example], judged: Judged) -> None:
    for i, example in enumerate(rows):
        if not judged.judgeable[i]:  # its fold student never saw its class
            held_out.unjudged.append(example.id)
            continue
        held_out.predicted[example.id] = judged.predicted[i]
        held_out.correct[example.id] = judged.correct[i]
        if judged.gold_probability is not None:
            held_out.gold_probability[example.id] = judged.gold_probability[i]
            held_out.margin[example.id] = judged.margin[i]
            held_out.rival[example.id] = judged.rival[i]


def _payload(evaluation: Evaluation, fingerprint: str) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint, "train_size": evaluation.train_size, "pool": evaluation.pool.model_dump(),
        "test": evaluation.test.model_dump() if evaluation.test else None,
        "errors": [{"id": c.example.id, "predicted": c.predicted} for c in evaluation.errors],
        "test_predictions": evaluation.test_predictions, "test_correct": evaluation.test_correct,
        "held_out": asdict(evaluation.held_out) if evaluation.held_out else None,
    }


def _score(student: Student, pool: list[Example], predictions: list[str]) -> Metrics:
    gold = [e.label if e.label is not None else (e.answer or "") for e in pool]
    correct = [student.is_correct(e, p) for e, p in zip(pool, predictions)]
    return score(gold, predictions, labels=list(student.labels) or None, correct=correct)


class _Silent(AbstractContextManager):
    def __exit__(self, *exc) -> None:
        return None


def _silent(message: str) -> AbstractContextManager:
    return _Silent()

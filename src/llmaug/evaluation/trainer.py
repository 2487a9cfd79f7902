"""Train a fresh student on a round's data and score it on the pool that drives augmentation and on the test set.

With `error_folds`, the seed rows of the pool are judged by students that did not see them (stratified k-fold,
their synthetic children held out too), because a converged classifier gets every training row right.
Results are memoised by a fingerprint of the data, so a method replayed after a crash trains nothing twice.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from llmaug import crashpoints
from llmaug.data.example import Example
from llmaug.students.base import Student
from llmaug.students.metrics import Metrics, evaluate, score


@dataclass
class ErrorCase:
    """An example the student got wrong, with what it predicted."""

    example: Example
    predicted: str


@dataclass
class Evaluation:
    """One training of the student from scratch, scored on the pool that drives augmentation and on test."""

    round: int
    train_size: int
    pool: Metrics
    errors: list[ErrorCase]
    test: Metrics | None = None


class EvaluationStore(Protocol):
    """Where finished evaluations are kept between processes (the run directory)."""

    def load_evaluation(self, round: int) -> dict[str, Any] | None: ...

    def save_evaluation(self, round: int, payload: dict[str, Any]) -> None: ...


StudentFactory = Callable[[], Student]
Status = Callable[[str], AbstractContextManager]


class FitJob(NamedTuple):
    """Train a fresh student on `train`, then predict `rows` (one fold of the held-out predictions)."""

    train: list[Example]
    rows: list[Example]


FitRunner = Callable[[Callable[[list[Example]], Student], list[FitJob]], list[list[str]]]


@dataclass(frozen=True)
class FreshFit:
    """Train a fresh student from `factory` with `seed`: a fit that pickles (with its factory), so that a
    `FitRunner` can send it to other processes (`llmaug.distributed.training.RayFitRunner`)."""

    factory: StudentFactory
    seed: int

    def __call__(self, data: list[Example]) -> Student:
        crashpoints.reached("train")
        return self.factory().fit(data, seed=self.seed)


def fit_sequentially(fit: Callable[[list[Example]], Student], jobs: list[FitJob]) -> list[list[str]]:
    """The predictions of each job, one job after the other (a Ray runner does them in parallel)."""
    return [fit(job.train).predict(job.rows) for job in jobs]


class Evaluator:
    def __init__(self, student_factory: StudentFactory, seed: int, test: list[Example] | None,
                 store: EvaluationStore | None = None, status: Status | None = None,
                 fit_runner: FitRunner = fit_sequentially, fold_factory: StudentFactory | None = None):
        self.fit_runner = fit_runner  # how the k-fold students are trained: one after the other, or on Ray
        self.student_factory = student_factory
        self.fold_factory = fold_factory or student_factory  # the k-fold students may be a cheaper kind
        self.seed = seed
        self.test = test
        self.store = store
        self.status = status or _silent
        self.last: Evaluation | None = None
        self._last_student: tuple[str, Student] | None = None  # (data fingerprint, the student trained on it)

    def evaluate(self, data: list[Example], round: int, pool: list[Example], error_folds: int | None = None) -> Evaluation:
        fingerprint = f"{self._fingerprint(data, pool)}:{error_folds}"
        saved = self._saved(round, fingerprint, pool)
        if saved is not None:
            self.last = saved
            return saved
        with self.status(f"round {round}: training the student on {len(data)} examples"):
            student = self.fit(data)
            pool_predictions = student.predict(pool)
            test_metrics = evaluate(student, self.test)[0] if self.test else None
        if error_folds:
            with self.status(f"round {round}: {error_folds}-fold held-out predictions for the seed rows"):
                pool_predictions = self._held_out_predictions(data, pool, pool_predictions, error_folds)
        pool_metrics = _score(student, pool, pool_predictions)
        errors = [ErrorCase(e, p) for e, p in zip(pool, pool_predictions) if not student.is_correct(e, p)]
        evaluation = Evaluation(round, len(data), pool_metrics, errors, test_metrics)
        self._last_student = (fingerprint, student)
        self.last = evaluation
        if self.store is not None:
            self.store.save_evaluation(round, {
                "fingerprint": fingerprint, "train_size": len(data), "pool": pool_metrics.model_dump(),
                "test": test_metrics.model_dump() if test_metrics else None,
                "errors": [{"id": c.example.id, "predicted": c.predicted} for c in errors],
            })
        return evaluation

    def final_student(self, data: list[Example]) -> Student:
        """The student trained on `data`: the last round's when it saw exactly this data, else a new one."""
        data_part = self._fingerprint(data, data).split(":")[0]
        if self._last_student is not None and self._last_student[0].split(":")[0] == data_part:
            return self._last_student[1]
        return self.fit(data)

    def fit(self, data: list[Example]) -> Student:
        crashpoints.reached("train")
        return self.student_factory().fit(data, seed=self.seed)

    def fit_fold(self, data: list[Example]) -> Student:
        return FreshFit(self.fold_factory, self.seed)(data)

    def _held_out_predictions(self, data: list[Example], pool: list[Example], predictions: list[str], folds: int) -> list[str]:
        seeds = [i for i, e in enumerate(pool) if e.is_seed]
        predictions = list(predictions)
        jobs, held_positions = [], []
        for held in stratified_folds([pool[i] for i in seeds], folds, self.seed):
            held_ids = {pool[seeds[j]].id for j in held}
            train = [e for e in data if e.id not in held_ids and not held_ids.intersection(e.provenance.parent_ids)]
            if len({e.label for e in train}) < 2:
                continue
            jobs.append(FitJob(train, [pool[seeds[j]] for j in held]))
            held_positions.append(held)
        for held, fold_predictions in zip(held_positions, self.fit_runner(FreshFit(self.fold_factory, self.seed), jobs), strict=True):
            for j, predicted in zip(held, fold_predictions):
                predictions[seeds[j]] = predicted
        return predictions

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
            return Evaluation(round, saved["train_size"], Metrics.model_validate(saved["pool"]), errors, test)
        except (ValueError, KeyError, TypeError):
            return None


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


def _score(student: Student, pool: list[Example], predictions: list[str]) -> Metrics:
    gold = [e.label if e.label is not None else (e.answer or "") for e in pool]
    correct = [student.is_correct(e, p) for e, p in zip(pool, predictions)]
    return score(gold, predictions, labels=list(student.labels) or None, correct=correct)


class _Silent(AbstractContextManager):
    def __exit__(self, *exc) -> None:
        return None


def _silent(message: str) -> AbstractContextManager:
    return _Silent()

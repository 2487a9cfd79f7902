"""`RayFitRunner`: a round's k-fold held-out students trained as Ray tasks, one per fold, in parallel.

    run(method, seed, teacher=..., fit_runner=RayFitRunner("auto"))     # what `llmaug run --ray` does

The evaluator hands over a picklable fit (a student factory and the seed) and the folds' `FitJob`s; each task
trains a fresh student on its fold and returns its predictions for the held-out rows, so nothing but data and
labels travels, and the predictions are those of the sequential path for the same seed. A task whose worker dies
(killed, its node gone) is run again by Ray (`max_retries`); an error of the student itself is raised as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from llmaug.data.example import Example
from llmaug.evaluation import FitJob, fit_sequentially
from llmaug.students.base import Student


class RayFitRunner:
    def __init__(self, address: str | None = "auto", num_cpus: float = 1, num_gpus: float = 0, max_retries: int = 3):
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries

    def __call__(self, fit: Callable[[list[Example]], Student], jobs: list[FitJob]) -> list[list[str]]:
        if not jobs:
            return []
        from llmaug.distributed.cluster import connect, task_error_cause

        ray = connect(self.address)
        task = ray.remote(_fit_and_predict).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=self.max_retries, retry_exceptions=False)
        fit_ref = ray.put(fit)  # once, not once per fold
        refs = [task.remote(fit_ref, job) for job in jobs]
        try:
            return ray.get(refs)
        except BaseException as err:
            for ref in refs:  # after an error or Ctrl-C, the other folds stop too
                ray.cancel(ref)
            if isinstance(err, ray.exceptions.RayTaskError):
                raise task_error_cause(err) from None
            raise


def _fit_and_predict(fit: Callable[[list[Example]], Student], job: FitJob) -> list[str]:
    return fit_sequentially(fit, [job])[0]

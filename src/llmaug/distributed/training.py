"""`RayFitRunner`: a round's k-fold held-out students trained as Ray tasks, one per fold, in parallel.

    run(method, seed, teacher=..., fit_runner=RayFitRunner("auto"))     # what `llmaug run --ray` does

The evaluator hands over a picklable fold task (`FoldTask`: a student factory and the seed) and the folds'
`FitJob`s; each Ray task trains a fresh student on its fold and returns its judgement of the held-out rows, so
nothing but data and judgements travels, and the judgements are those of the sequential path for the same seed.
A task whose worker dies (killed, its node gone) is run again by Ray (`max_retries`); an error of the student
itself is raised as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from llmaug.evaluation import FitJob, Judged


class RayFitRunner:
    def __init__(self, address: str | None = "auto", num_cpus: float = 1, num_gpus: float = 0, max_retries: int = 3):
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries

    def __call__(self, task: Callable[[FitJob], Judged], jobs: list[FitJob]) -> list[Judged]:
        if not jobs:
            return []
        from llmaug.distributed.cluster import connect, task_error_cause

        ray = connect(self.address)
        remote = ray.remote(_run_fold).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=self.max_retries, retry_exceptions=False)
        task_ref = ray.put(task)  # once, not once per fold
        refs = [remote.remote(task_ref, job) for job in jobs]
        try:
            return ray.get(refs)
        except BaseException as err:
            for ref in refs:  # after an error or Ctrl-C, the other folds stop too
                ray.cancel(ref)
            if isinstance(err, ray.exceptions.RayTaskError):
                raise task_error_cause(err) from None
            raise


def _run_fold(task: Callable[[FitJob], Judged], job: FitJob) -> Judged:
    return task(job)

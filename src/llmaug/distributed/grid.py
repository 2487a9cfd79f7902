"""`RayCellRunner`: `llmaug bench GRID.yaml --ray [ADDRESS]` runs the grid's cells as Ray tasks.

Each cell is one task that reserves the grid's `resources` (cpus, gpus; an arm may set its own) and runs the
cell as `llmaug run` would, into its run directory under the work folder. The driver keeps the schedule (a
matched arm starts once the arm it matches has finished), skips finished cells and writes the tables, in grid
order, so they are those of a sequential bench. A task whose worker dies (killed, its node gone) is run again by
Ray, up to `max_retries` times, and resumes from what its run directory holds.

Run directories live on a filesystem every node sees at the same path (NFS or a cluster file system): the
driver writes a marker into the work folder, and a task that cannot read it fails the bench at once with a
message that says so, rather than writing runs nobody will find.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from llmaug.bench.run import CellDone, CellJob, cell_log, run_cell
from llmaug.errors import UserError

MARKER = ".llmaug-work"


class WorkFolderUnseen(UserError):
    """A Ray worker cannot see the bench's work folder."""


class RayCellRunner:
    def __init__(self, address: str | None = "auto", max_retries: int = 3):
        self.address = address
        self.max_retries = max_retries
        self.nodes: dict[str, str] = {}  # cell label -> the Ray node that computed it
        self._running: dict = {}  # ObjectRef -> (job, done)

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self, work: Path) -> None:
        from llmaug.distributed.cluster import connect

        self._ray = connect(self.address)
        work = work.resolve()
        work.mkdir(parents=True, exist_ok=True)
        self._token = uuid.uuid4().hex
        (work / MARKER).write_text(self._token, encoding="utf-8")
        self._work = work
        self._cwd = os.getcwd()

    def submit(self, job: CellJob, done: Callable[[CellJob, CellDone | UserError], None]) -> None:
        task = self._ray.remote(_cell_task).options(
            num_cpus=job.resources.cpus, num_gpus=job.resources.gpus, max_retries=self.max_retries,
            retry_exceptions=False, name=f"llmaug cell {job.cell.label()}")
        self._running[task.remote(job, str(self._work), self._token, self._cwd)] = (job, done)

    def wait(self) -> None:
        from llmaug.distributed.cluster import task_error_cause

        ready, _ = self._ray.wait(list(self._running), num_returns=1)
        for ref in ready:
            job, done = self._running.pop(ref)
            try:
                result, node = self._ray.get(ref)
            except self._ray.exceptions.RayTaskError as err:
                cause = task_error_cause(err)
                if isinstance(cause, WorkFolderUnseen):
                    raise cause from None
                if not isinstance(cause, UserError):
                    raise cause from None
                done(job, cause)
                continue
            except self._ray.exceptions.RayError as err:  # its worker died more often than Ray retries
                done(job, UserError(f"its Ray task failed {self.max_retries + 1} times: {' '.join(str(err).split())[:200]}"))
                continue
            self.nodes[job.cell.label()] = node
            done(job, result)

    def close(self) -> None:
        """Stop cells still running (after an error or Ctrl-C); a later bench resumes them."""
        for ref in self._running:
            self._ray.cancel(ref)
        self._running.clear()


def _cell_task(job: CellJob, work: str, token: str, cwd: str) -> tuple[CellDone, str]:
    from llmaug.distributed.cluster import WORKER_ENV, node_id

    for key, value in WORKER_ENV.items():
        os.environ.setdefault(key, value)
    node = node_id()
    check_work_folder(Path(work), token, Path(cwd), node)
    os.chdir(cwd)  # the grid's relative paths (work folder, data root) mean what they mean on the driver
    log = cell_log(job)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"[ray] node {node}, pid {os.getpid()}\n")
    return run_cell(job), node


def check_work_folder(work: Path, token: str, cwd: Path, node: str) -> None:
    """Raise `WorkFolderUnseen` unless this process sees the driver's marker in `work`, and the driver's working
    folder, at the same paths."""
    try:
        seen = (work / MARKER).read_text(encoding="utf-8")
    except OSError:
        seen = None
    if seen != token or not cwd.is_dir():
        raise WorkFolderUnseen(
            f"the Ray worker on node {node[:12]} cannot see the work folder: run directories must live on a "
            "filesystem every node sees at the same path (NFS, a cluster file system); give --work on one", work)

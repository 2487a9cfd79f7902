"""The run directory: one process at a time in it, no debris left by one that was killed, and every file a run
writes there (atomically), in one place.

    config.yaml  cache.sqlite  rounds/<k>/{data,added,rejected,errors}.jsonl metrics.json evaluation.json
    data.<format>  student/  usage.json  summary.json  report.md report.html plots/
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmaug.atomic import atomic_dir, remove_stale_temporaries, write_json_atomic, write_text_atomic
from llmaug.data.example import Example
from llmaug.data.io import example_rows, save_examples
from llmaug.errors import UserError

LOCK_FILE = ".lock"
RUN_MARKERS = ("config.yaml", "summary.json", "cache.sqlite", "rounds", LOCK_FILE)  # files only a run directory has

_held: Counter[Path] = Counter()  # run directories this process holds, with how many claims are open


@contextmanager
def claim_run_dir(out: Path) -> Iterator[Path]:
    """Create `out` if needed and hold its lock for the block; refuse if another process holds it.

    The lock is an OS file lock, so a process killed with -9 releases it: a resume never finds a stale lock.
    The lock file is removed when the last claim ends. Temporary files of atomic writes that a killed process
    left behind are removed once the lock is held. Claims nest within a process (the CLI claims before opening
    the cache, the runner again).
    """
    key = out.resolve()
    if _held[key]:
        _held[key] += 1
        try:
            yield out
        finally:
            _held[key] -= 1
        return
    out.mkdir(parents=True, exist_ok=True)
    lock = out / LOCK_FILE
    with open(lock, "a") as handle:
        _lock(handle, lock, out)
        _held[key] += 1
        try:
            remove_stale_temporaries(out)
            yield out
        finally:
            _held[key] -= 1
            lock.unlink(missing_ok=True)  # still holding it: a process that opened it meanwhile sees it is stale


def _lock(handle, lock: Path, out: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks through fcntl; run without one
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UserError("another llmaug process is running in this run directory; wait for it or choose another --out", out) from None
    try:
        current = os.stat(lock).st_ino
    except FileNotFoundError:
        current = None
    if current != os.fstat(handle.fileno()).st_ino:  # the holder removed the file as we opened it: it was busy
        raise UserError("another llmaug process was just using this run directory; try again", out)


def is_run_dir(folder: Path) -> bool:
    return any((folder / marker).exists() for marker in RUN_MARKERS)


class RunDirectory:
    """Writes a run's files. Every write is atomic, so a crash leaves each file whole, old or new."""

    def __init__(self, path: Path):
        self.path = path

    def round_dir(self, round: int) -> Path:
        """rounds/<k>/; the student without augmentation, when a method has no such round, in rounds/baseline/."""
        return self.path / "rounds" / (f"{round:03d}" if round >= 0 else "baseline")

    def write_config(self, text: str) -> None:
        write_text_atomic(self.path / "config.yaml", text)

    def load_evaluation(self, round: int) -> dict[str, Any] | None:
        try:
            return json.loads((self.round_dir(round) / "evaluation.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def save_evaluation(self, round: int, payload: dict[str, Any]) -> None:
        write_json_atomic(self.round_dir(round) / "evaluation.json", payload)

    def write_round(self, round: int, data: list[Example], added: list[Example], rejected: list, errors: list,
                    metrics: dict[str, Any]) -> None:
        """rounds/<k>/: the data round k trained on, what it added for the next round, what was rejected, the
        seed rows its student got wrong, and its metrics."""
        folder = self.round_dir(round)
        save_examples(data, folder / "data.jsonl")
        save_examples(added, folder / "added.jsonl")
        write_jsonl(folder / "rejected.jsonl", [r.model_dump() for r in rejected])
        write_jsonl(folder / "errors.jsonl", [{**example_rows([c.example])[0], "predicted": c.predicted} for c in errors])
        write_json_atomic(folder / "metrics.json", metrics)

    def save_json(self, name: str, payload: Any) -> None:
        write_json_atomic(self.path / name, payload)

    def save_data(self, data: list[Example], output_format: str) -> None:
        save_examples(data, self.path / f"data.{output_format}")

    def save_student(self, student) -> None:
        with atomic_dir(self.path / "student") as staging:
            student.save(staging)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))

"""One process at a time in a run directory, and no debris left by one that was killed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmaug.data.io import remove_stale_temporaries
from llmaug.errors import UserError

LOCK_FILE = ".lock"

_held: Counter[Path] = Counter()  # run directories this process holds, with how many claims are open


@contextmanager
def claim_run_dir(out: Path) -> Iterator[Path]:
    """Create `out` if needed and hold its lock for the block; refuse if another process holds it.

    The lock is an OS file lock, so a process killed with -9 releases it: a resume never finds a stale lock.
    Temporary files of atomic writes that a killed process left behind are removed once the lock is held.
    Claims nest within a process (the CLI claims before opening the cache, the runner again).
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
    with open(out / LOCK_FILE, "a") as handle:
        _lock(handle, out)
        _held[key] += 1
        try:
            remove_stale_temporaries(out)
            yield out
        finally:
            _held[key] -= 1


def _lock(handle, out: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks through fcntl; run without one
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UserError("another llmaug process is running in this run directory; wait for it or choose another --out", out) from None

"""The run directory's lock: one process at a time, and no lock file left behind once a run ends."""

from __future__ import annotations

import os

import pytest

from llmaug.errors import UserError
from llmaug.rundir import LOCK_FILE, claim_run_dir, is_run_dir


def test_the_lock_file_is_there_while_the_run_holds_it_and_gone_after(tmp_path):
    out = tmp_path / "run"
    with claim_run_dir(out):
        assert (out / LOCK_FILE).exists() and is_run_dir(out)
        with claim_run_dir(out):  # claims nest within a process
            pass
        assert (out / LOCK_FILE).exists()
    assert not (out / LOCK_FILE).exists()


def test_a_lock_file_removed_under_a_waiting_process_counts_as_busy(tmp_path, monkeypatch):
    """A process that opened the lock file just before its holder removed it must not think it holds the lock."""
    import llmaug.rundir as rundir

    out = tmp_path / "run"
    out.mkdir()
    real_open = open

    def open_then_lose_the_file(path, *args, **kwargs):
        handle = real_open(path, *args, **kwargs)
        os.unlink(path)  # as the holder does when it finishes
        return handle

    monkeypatch.setattr(rundir, "open", open_then_lose_the_file, raising=False)
    with pytest.raises(UserError, match="just using this run directory"):
        with claim_run_dir(out):
            pass

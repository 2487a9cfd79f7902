"""Atomic files and folders, the crash seam, and the clean-up a resume does after a kill mid-write."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from llmaug.crashpoints import ENV
from llmaug.atomic import TEMP_SUFFIX, atomic_dir, remove_stale_temporaries, write_text_atomic

WRITER = "import sys; from llmaug.atomic import write_text_atomic; write_text_atomic(sys.argv[1], 'new\\n')"


def test_a_kill_between_fsync_and_rename_keeps_the_old_file_and_leaves_only_a_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old\n")

    done = subprocess.run([sys.executable, "-c", WRITER, str(target)], env={ENV: "write/metrics.json:1"},
                          capture_output=True)

    assert done.returncode == -signal.SIGKILL
    assert target.read_text() == "old\n"
    leftovers = list(tmp_path.glob(f".metrics.json.*{TEMP_SUFFIX}"))
    assert len(leftovers) == 1 and leftovers[0].read_text() == "new\n"
    assert remove_stale_temporaries(tmp_path) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_the_seam_counts_hits_and_ignores_other_files(tmp_path):
    script = ("import sys; from llmaug.atomic import write_text_atomic\n"
              "for name in ['a.txt', 'b.txt', 'a.txt', 'a.txt']: write_text_atomic(sys.argv[1] + '/' + name, name)")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env={ENV: "write/a.txt:2"}, capture_output=True)
    assert done.returncode == -signal.SIGKILL
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["a.txt", "b.txt"]


def test_without_the_variable_nothing_is_killed(tmp_path):
    write_text_atomic(tmp_path / "x.txt", "x")
    assert (tmp_path / "x.txt").read_text() == "x"


def test_atomic_dir_swaps_in_a_complete_folder(tmp_path):
    target = tmp_path / "student"
    target.mkdir()
    (target / "old.json").write_text("{}")
    with atomic_dir(target) as staging:
        (staging / "new.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["new.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student"]


def test_atomic_dir_leaves_the_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "student"
    target.mkdir()
    (target / "old.json").write_text("{}")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as staging:
            (staging / "half.json").write_text("{")
            raise RuntimeError("disk full")
    assert sorted(p.name for p in target.iterdir()) == ["old.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student"]


def test_stale_temporaries_are_found_in_subfolders_and_nothing_else_is_touched(tmp_path):
    (tmp_path / "rounds" / "001").mkdir(parents=True)
    stale = [tmp_path / f".data.jsonl.abc{TEMP_SUFFIX}", tmp_path / "rounds" / "001" / f".metrics.json.def{TEMP_SUFFIX}"]
    for path in stale:
        path.write_text("half")
    (tmp_path / f".student.123{TEMP_SUFFIX}").mkdir()
    kept = [tmp_path / "data.jsonl", tmp_path / ".lock", tmp_path / "rounds" / "001" / "metrics.json"]
    for path in kept:
        path.write_text("whole")
    remove_stale_temporaries(tmp_path)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)

"""Atomic writes: a temporary file (or folder) beside the target, fsynced, then renamed over it, so a reader
or a crash never sees a half-written file; and the clean-up of temporaries a killed process left behind."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmaug import crashpoints

TEMP_SUFFIX = ".llmaug-tmp"  # temporary files and folders of atomic writes, beside their target


def _temp_name(target: Path) -> Path:
    """A hidden name beside `target` that `remove_stale_temporaries` recognises."""
    return target.parent / f".{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"


def _create_temp_beside(target: Path) -> tuple[int, Path]:
    """A new hidden file next to `target`, created like open() does (0666 less the umask; mkstemp would give 0600)."""
    while True:
        tmp = _temp_name(target)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_path(target: str | Path, mode: str = "w", newline: str | None = None):
    """Yield an open temporary file beside `target`; on success it replaces `target` in one rename.

    On any error the temporary file is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = _create_temp_beside(target)
    text_options = {} if "b" in mode else {"encoding": "utf-8", "newline": newline}
    try:
        with os.fdopen(handle, mode, **text_options) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        crashpoints.reached("write", target.name)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(target: str | Path):
    """Yield an empty hidden folder beside `target`; on success it replaces the folder `target` (two renames, the
    old folder removed after). On any error the staging folder is removed and `target` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _temp_name(target)
    staging.mkdir()
    retired = _temp_name(target)
    try:
        yield staging
        crashpoints.reached("write", target.name)
        if target.exists():
            os.replace(target, retired)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files and folders that atomic writes killed mid-way (kill -9, power loss) left in
    `folder` and below. Only for a folder no other process is writing to."""
    removed = []
    for path in sorted(Path(folder).rglob(f".*{TEMP_SUFFIX}"), reverse=True):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def write_text_atomic(target: str | Path, text: str) -> None:
    with atomic_path(target) as file:
        file.write(text)


def write_json_atomic(target: str | Path, data: Any) -> None:
    write_text_atomic(target, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")

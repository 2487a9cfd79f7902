"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input: a file, a value or an option the user gave. `where` says where, e.g. 'seed.jsonl:12:5'."""

    exit_code = 2

    def __init__(self, message: str, where: str | Path | None = None):
        self.message = message
        self.where = str(where) if where is not None else None
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class DataError(UserError):
    """A data file cannot be read or does not make a usable dataset."""


class ConfigError(UserError):
    """A config file or option has a wrong key, type or value."""


class TeacherError(UserError):
    """The teacher cannot be reached, rejects the key, or the spec names no known backend."""


class TeacherFailures(TeacherError):
    """More than half of a round's requests failed: the run stops, its directory kept for `--resume`."""


class StudentError(UserError):
    """The student spec or a saved student directory is not usable."""


def location(path: str | Path, line: int | None = None, column: int | None = None) -> str:
    where = str(path)
    if line is not None:
        where += f":{line}"
        if column is not None:
            where += f":{column}"
    return where

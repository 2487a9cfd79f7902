"""Persistent per-request cache of teacher responses in SQLite.

Keys come from `TeacherRequest.cache_key`: backend identity, messages, generation params, choices and the
sample index, so a rerun makes no call and repeated samples of one prompt stay distinct. WAL mode and a busy
timeout make several processes sharing one file safe; a row that does not decode is a miss, never an error.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from llmaug.errors import UserError
from llmaug.teachers.base import TeacherResponse

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL, created REAL NOT NULL)"


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.OperationalError:
            self._db.close()
            raise
        except sqlite3.DatabaseError as err:  # not a database, or a damaged one
            self._db.close()
            raise _unusable(self.path, err) from None

    def get_many(self, keys: list[str]) -> dict[str, TeacherResponse]:
        found: dict[str, TeacherResponse] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                marks = ",".join("?" * len(part))
                try:
                    rows = self._db.execute(f"SELECT key, response FROM responses WHERE key IN ({marks})", part).fetchall()
                except sqlite3.OperationalError:
                    raise
                except sqlite3.DatabaseError as err:
                    raise _unusable(self.path, err) from None
                for key, raw in rows:
                    response = _decode(raw)
                    if response is not None:
                        found[key] = response
        return found

    def put_many(self, items: list[tuple[str, TeacherResponse]]) -> None:
        """Store several responses in one transaction: after a crash either all of them are there or none."""
        if not items:
            return
        now = time.time()
        rows = [(key, response.model_dump_json(exclude={"cached"}), now) for key, response in items]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                # A Ctrl-C can land just after COMMIT finished: rolling back then fails, and that error would
                # replace the KeyboardInterrupt, so the run would go on.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _unusable(path: Path, err: sqlite3.DatabaseError) -> UserError:
    return UserError(f"the teacher cache is damaged (SQLite: {err}); move it away to start a new one, or use --no-cache", path)


def _decode(raw: str) -> TeacherResponse | None:
    try:
        return TeacherResponse.model_validate(json.loads(raw)).model_copy(update={"cached": True})
    except (ValueError, TypeError):
        return None

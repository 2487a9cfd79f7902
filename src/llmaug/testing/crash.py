"""Kill a real `llmaug run` process with SIGKILL at chosen points, resume it, and check what a crash may not do.

Where the kills land (`KillPoint.stage`):

* generation: the scripted server SIGKILLs the client while it is answering its n-th request (`KillSwitch`), so
  requests are in flight and others just answered; no seam, the process dies from outside.
* report: from outside too, a chosen delay after the process wrote `usage.json` (the step before the report and
  its plots, which take about a second).
* filtering, training and writing: too short to hit from outside, so through the `LLMAUG_CRASH_AT` seam
  (`llmaug.crashpoints`): before the n-th filter call, the n-th student fit, or the n-th replacement of a named
  file, its new content already fsynced beside it.

A chain kills one run directory several times, each `--resume` dying at the next point, then lets a last resume
finish; every point is reachable in every resumed process because a resume replays the finished work (filters,
round files, the report) and always trains at least once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmaug.crashpoints import ENV as CRASH_ENV
from llmaug.atomic import TEMP_SUFFIX
from llmaug.testing.fake_openai import FakeOpenAIServer
from llmaug.testing.scripted import question_responder, start_cli

STAGES = ("generation", "filtering", "training", "writing", "report")
ROUND_FILES = ("metrics.json", "data.jsonl", "added.jsonl", "rejected.jsonl", "errors.jsonl")
GENERATION_SPACING = 12  # more than the requests a run keeps in flight (FAST_TEACHER_OPTIONS: 8)
REPORT_FILES = ("report.md", "report.html", "summary.json", "test_accuracy.png", "confusion_matrix.png")


@dataclass(frozen=True)
class KillPoint:
    stage: str
    request: int | None = None  # generation: the server's n-th answer, counted over the whole chain
    seam: str | None = None  # filtering/training/writing (and some report points): LLMAUG_CRASH_AT
    delay: float | None = None  # report: seconds after usage.json was written

    def __str__(self) -> str:
        if self.request is not None:
            return f"{self.stage}: server answering request {self.request}"
        if self.seam is not None:
            return f"{self.stage}: {CRASH_ENV}={self.seam}"
        return f"{self.stage}: {self.delay:.2f}s after usage.json"


def kill_plan(seed: int, chains: int, per_chain: int, total_requests: int, rounds: int,
              report_seconds: float) -> list[list[KillPoint]]:
    """`chains` lists of `per_chain` points, spread evenly over the stages, each list in run order."""
    rng = random.Random(seed)
    deck = [STAGES[i % len(STAGES)] for i in range(chains * per_chain)]
    rng.shuffle(deck)
    plan, reports = [], 0  # report points alternate between a kill from outside and the seam
    for c in range(chains):
        stages = sorted(deck[c * per_chain:(c + 1) * per_chain], key=STAGES.index)
        # Points of one chain lie at least GENERATION_SPACING answers apart: requests in flight when a run is killed
        # are still answered (to nobody), and the next point must fall among the next run's own answers.
        grid = range(rng.randint(1, GENERATION_SPACING), total_requests + 1, GENERATION_SPACING)
        requests = iter(sorted(rng.sample(grid, stages.count("generation"))))
        points = []
        for stage in stages:
            points.append(_point(stage, rng, requests, rounds, report_seconds, from_outside=reports % 2 == 0))
            reports += stage == "report"
        plan.append(points)
    return plan


def _point(stage: str, rng: random.Random, requests, rounds: int, report_seconds: float,
           from_outside: bool) -> KillPoint:
    if stage == "generation":
        return KillPoint(stage, request=next(requests))
    if stage == "filtering":
        return KillPoint(stage, seam=f"filter:{rng.randint(1, rounds)}")
    if stage == "training":
        return KillPoint(stage, seam=f"train:{rng.randint(1, 3)}")
    if stage == "writing":
        name = rng.choice((*ROUND_FILES, "student", "config.yaml"))
        count = rng.randint(1, rounds + 1) if name in ROUND_FILES else 1
        return KillPoint(stage, seam=f"write/{name}:{count}")
    if from_outside:
        return KillPoint(stage, delay=round(rng.uniform(0.0, 0.6 * report_seconds), 3))
    return KillPoint(stage, seam=f"write/{rng.choice(REPORT_FILES)}:1")


class KillSwitch:
    """A responder that SIGKILLs a process while the server answers a chosen request (counted since `reset`)."""

    def __init__(self, responder: Callable[[dict], str] = question_responder):
        self.responder = responder
        self._lock = threading.Lock()
        self._answers = 0
        self._target: tuple[int, int] | None = None  # (answer number, pid)

    def reset(self) -> None:
        with self._lock:
            self._answers, self._target = 0, None

    def arm(self, answer: int, pid: int) -> None:
        with self._lock:
            if answer <= self._answers:
                raise ValueError(f"answer {answer} was already given ({self._answers} so far)")
            self._target = (answer, pid)

    def disarm(self) -> None:
        with self._lock:
            self._target = None

    def __call__(self, body: dict) -> str:
        with self._lock:
            self._answers += 1
            hit = self._target is not None and self._target[0] == self._answers
            pid = self._target[1] if hit else None
        if pid is not None:
            _kill(pid)
        return self.responder(body)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class KillOutcome:
    point: KillPoint
    reached: bool  # False: the process finished before getting there
    server_requests: int  # requests the server had received when the process was dead
    cached_texts: frozenset[str]  # what the run's cache held then
    partial_files: list[str]


def run_until_killed(args: list[str], point: KillPoint, out: Path, server: FakeOpenAIServer, switch: KillSwitch,
                     timeout: float = 300) -> KillOutcome:
    """Start `llmaug run ARGS`, kill it at `point` (or let it finish), and inspect what it left."""
    env = {CRASH_ENV: point.seam} if point.seam else {}
    started = time.time_ns()
    process = start_cli(*args, env=env)
    if point.request is not None:
        switch.arm(point.request, process.pid)
    try:
        if point.delay is not None:
            _kill_after_file(process, out / "usage.json", started, point.delay, timeout)
        _, stderr = process.communicate(timeout=timeout)
    finally:
        switch.disarm()
        if process.poll() is None:
            process.kill()
            process.wait()
    reached = process.returncode == -signal.SIGKILL
    if not reached and process.returncode != 0:
        raise AssertionError(f"run failed ({process.returncode}) at {point}: {stderr[-2000:]}")
    return KillOutcome(point, reached, server.requests, cached_texts(out / "cache.sqlite"), partial_files(out))


def _kill_after_file(process: subprocess.Popen, path: Path, started_ns: int, delay: float, timeout: float) -> None:
    """SIGKILL `process` `delay` seconds after it (re)wrote `path`; return early if it exits first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if path.stat().st_mtime_ns >= started_ns:
                time.sleep(delay)
                _kill(process.pid)
                return
        except FileNotFoundError:
            pass
        time.sleep(0.005)


def cached_texts(path: Path) -> frozenset[str]:
    if not path.exists():
        return frozenset()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT response FROM responses").fetchall()
    return frozenset(json.loads(raw)["text"] for (raw,) in rows)


def repeated_calls(outcomes: list[KillOutcome], server: FakeOpenAIServer) -> list[str]:
    """Requests sent again after their answer had been received and cached: each kill's cache snapshot against
    every request the server saw after that kill."""
    log = server.log
    repeats = []
    for outcome in outcomes:
        for record in log[outcome.server_requests:]:
            if record.body is not None and question_responder(record.body) in outcome.cached_texts:
                repeats.append(f"request {record.index} after the kill at {outcome.point}")
    return repeats


def partial_files(out: Path) -> list[str]:
    """Files in the run directory that do not parse as what their name says (temporary files aside)."""
    broken = []
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or path.name.startswith("cache.sqlite"):
            continue
        if not _complete(path):
            broken.append(path.relative_to(out).as_posix())
    return broken


def _complete(path: Path) -> bool:
    raw = path.read_bytes()
    try:  # any parse error means a torn file
        if path.suffix == ".jsonl":
            text = raw.decode()
            return text == "" or (text.endswith("\n") and all(json.loads(line) is not None for line in text.splitlines()))
        if path.suffix == ".json":
            json.loads(raw)
        elif path.suffix in (".md", ".html", ".yaml"):
            text = raw.decode()
            return text.endswith("\n") and (path.suffix != ".html" or text.rstrip().endswith("</html>"))
        elif path.suffix == ".png":
            return raw.endswith(b"IEND\xaeB`\x82")
        elif path.suffix == ".safetensors":
            from safetensors.numpy import load

            load(raw)
    except Exception:
        return False
    return True


def temporary_files(out: Path) -> list[str]:
    return sorted(path.relative_to(out).as_posix() for path in out.rglob(f".*{TEMP_SUFFIX}"))

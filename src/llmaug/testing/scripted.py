"""A deterministic stand-in teacher and helpers to drive the real CLI against it, for the reliability suites
(`tests/reliability`, `tests/test_bad_input.py`, `tests/test_security.py`) and the soak script (`bench/soak.py`).

`question_responder` answers every request with a well-formed question drawn from a hash of the request's last
user message and its seed (the sample index), so a rerun, a resume or a retry gets exactly the same text, and
distinct requests get distinct questions that pass the quality filters. Runs against it are fast with the tfidf
student and reproducible, which is what lets a faulty, or crashed-and-resumed, run be compared file by file with
an undisturbed one.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from llmaug.testing.fake_openai import (
    EMPTY_CONTENT, GARBAGE, INJECTION, OFF_LABEL, RATE_LIMIT_RETRY_AFTER, FakeOpenAIServer, RequestRecord,
    last_user_message,
)

MODEL = "scripted"
CONTENT_FAULTS = (GARBAGE, OFF_LABEL, EMPTY_CONTENT, INJECTION)
# Short timeouts and back-offs keep a faulty run to seconds; ten retries make exhausting them (which would change
# the data: the request then fails and is asked again later) a one-in-100,000 event at a 35% fault rate.
FAST_TEACHER_OPTIONS = {"timeout": 1.0, "max_retries": 10, "backoff": 0.05, "max_backoff": 0.4, "concurrency": 8}

_OPENERS = ("Which", "What", "Where", "Who", "How many", "When")
_ADJECTIVES = (
    "ancient", "northern", "famous", "hidden", "largest", "oldest", "coastal", "copper", "silent", "frozen",
    "golden", "narrow", "distant", "crimson", "rural", "wooden", "tropical", "rapid", "marble", "velvet",
)
_NOUNS = (
    "lighthouse", "glacier", "harbor", "violin", "comet", "orchard", "canal", "volcano", "museum", "bridge",
    "tapestry", "lagoon", "monastery", "railway", "telescope", "cathedral", "windmill", "meadow", "fortress",
    "aqueduct", "observatory", "vineyard", "archipelago", "citadel",
)
_VERBS = (
    "describe", "discover", "measure", "paint", "guard", "rebuild", "map", "photograph", "visit", "restore",
    "survey", "name", "celebrate", "explore", "sketch", "chart",
)
_PLACES = (
    "Lisbon", "Nairobi", "Quito", "Oslo", "Hanoi", "Tbilisi", "Perth", "Montreal", "Cusco", "Riga", "Dakar",
    "Osaka", "Valparaiso", "Tromso", "Zanzibar", "Galway",
)


def question_responder(request_json: dict) -> str:
    """A question that depends only on the request's last user message and its seed."""
    key = f"{last_user_message(request_json)}\x00{request_json.get('seed', 0)}"
    digest = hashlib.sha256(key.encode()).digest()

    def pick(words: tuple[str, ...], byte: int) -> str:
        return words[digest[byte] % len(words)]

    year = 1700 + int.from_bytes(digest[8:10], "big") % 320
    return (
        f"{pick(_OPENERS, 0)} {pick(_ADJECTIVES, 1)} {pick(_NOUNS, 2)} did explorers {pick(_VERBS, 3)} "
        f"near {pick(_PLACES, 4)} in {year} beside the {pick(_ADJECTIVES, 5)} {pick(_NOUNS, 6)} ?"
    )


def run_settings(server: FakeOpenAIServer, **overrides) -> dict:
    """A small, fast LLM2LLM run against `server`: TREC-6 at 1% (54 seeds), tfidf student, 3 rounds."""
    return {
        # select: last keeps every round's rows in the final data, which these suites check row by row
        "dataset": "trec6", "fraction": 0.01, "max_eval": 100, "student": "tfidf", "rounds": 3, "seed": 0, "select": "last",
        "teacher": f"openai-compatible:{server.base_url}@{MODEL}", "teacher_options": dict(FAST_TEACHER_OPTIONS),
        **overrides,
    }


def write_settings(path: Path, settings: dict) -> Path:
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------- the CLI


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmaug.cli", *args]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess: no proxies (loopback only), one BLAS thread (the machine is shared)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update({"NO_PROXY": "127.0.0.1,localhost", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1", "COLUMNS": "200"})
    env.update(extra or {})
    return env


def run_cli(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None, timeout: float = 300) -> CliResult:
    done = subprocess.run(cli_command(*args), cwd=cwd, env=cli_env(env), capture_output=True, text=True, timeout=timeout)
    return CliResult(done.returncode, done.stdout, done.stderr)


def cli_exit_code(args: list[str]) -> int:
    """The exit code `llmaug ARGS` would have, run in this process (its output goes to this process's streams)."""
    from llmaug.cli import main

    try:
        main(args)
    except SystemExit as exit_info:
        return exit_info.code or 0
    return 0


def start_cli(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(cli_command(*args), cwd=cwd, env=cli_env(env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_hear_ctrl_c)


def _hear_ctrl_c() -> None:
    """A shell without job control starts background jobs with SIGINT ignored, and children inherit that (Python
    then installs no KeyboardInterrupt handler): tests that press Ctrl-C must not depend on how pytest was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# --------------------------------------------------------------------------------------- run folders

# Per-invocation counters: a resumed process reads from the cache what the first one fetched, and retries differ.
VOLATILE_FILES = ("usage.json",)


def run_fingerprint(run_dir: Path) -> dict[str, str]:
    """Every file a finished run wrote, by relative path, as comparable text (hex for binary files), with
    wall-clock times blanked. The cache and the lock file are left out: the cache holds the same answers, in its
    own page layout."""
    files: dict[str, str] = {}
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir).as_posix()
        if not path.is_file() or relative.startswith("cache.sqlite") or relative in (*VOLATILE_FILES, ".lock"):
            continue
        files[relative] = _comparable(relative, path.read_bytes())
    return files


def _comparable(relative: str, raw: bytes) -> str:
    if relative == "config.yaml":  # runs compared live in different folders
        settings = yaml.safe_load(raw)
        settings.pop("out", None)
        return json.dumps(settings, sort_keys=True)
    if relative == "summary.json":
        summary = json.loads(raw)
        summary["seconds"] = None
        return json.dumps(summary, sort_keys=True)
    if relative in ("report.md", "report.html"):
        text = raw.decode()
        return "\n".join(line for line in text.replace("<li>", "\n<li>").splitlines() if "wall time" not in line)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.hex()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def completed_content_faults(log: list[RequestRecord]) -> list[RequestRecord]:
    """Requests the server answered with a well-formed completion whose content was garbage."""
    return [record for record in log if record.outcome == "completed" and record.fault in CONTENT_FAULTS]


def request_rates_around_rate_limits(log: list[RequestRecord], pause: float) -> tuple[float, float]:
    """Requests per second arriving in the `pause` after each 429 that announced Retry-After: `pause`, and at all
    other times of the run."""
    windows = _merged([(r.finished, r.finished + pause) for r in log if r.fault == RATE_LIMIT_RETRY_AFTER and r.finished])
    start, end = log[0].arrived, max(r.finished or r.arrived for r in log)
    inside = sum(any(a < r.arrived < b for a, b in windows) for r in log)
    covered = sum(min(b, end) - a for a, b in windows)
    return inside / covered if covered else 0.0, (len(log) - inside) / (end - start - covered)


def _merged(windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(windows):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def run_method(*args, **kwargs):
    """`llmaug.run` keeping the method's last round (`select="last"`): for tests of a method's own algorithm, which
    the round a run chooses to return would otherwise hide."""
    from llmaug.runner import run

    return run(*args, **{"select": "last", **kwargs})

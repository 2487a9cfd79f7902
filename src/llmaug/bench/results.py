"""The bench's CSV files: one row per finished cell, and one per round of each cell (for the plots).

Rows are read back from each run's own files (summary.json, rounds/), so a cell that finished in an earlier,
interrupted bench is recorded without being run again.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from llmaug.atomic import write_text_atomic

CELL_FIELDS = [
    "dataset", "setting", "seed", "arm", "method", "oracle", "teacher", "student", "seed_size", "final_size", "added",
    "rounds", "chosen_round", "test_accuracy", "test_macro_f1", "last_accuracy", "teacher_calls", "prompt_tokens",
    "completion_tokens", "wall_seconds", "resumed", "config_hash", "run_dir", "test_correct", "last_correct",
]
ROUND_FIELDS = ["dataset", "setting", "seed", "arm", "oracle", "round", "train_size", "added", "calls_before",
                "test_accuracy", "test_macro_f1", "config_hash"]
KEY_FIELDS = ("dataset", "setting", "seed", "arm", "config_hash")


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def write_rows(path: Path, rows: list[dict], fields: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def row_key(row: dict) -> tuple[str, ...]:
    return tuple(str(row[name]) for name in KEY_FIELDS)


def is_finished(run_dir: Path) -> bool:
    return (run_dir / "summary.json").is_file()


def cell_row(identity: dict, run_dir: Path, seed_size: int, wall_seconds: float, resumed: bool) -> dict:
    """The CSV row of a finished run. `identity`: dataset, setting, seed, arm, method, oracle, teacher, student,
    config_hash. Teacher calls and tokens count every request the run made, whether answered from its cache or not."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    rounds = summary["rounds"]
    test = summary.get("test") or {}
    chosen = summary.get("chosen_round", rounds[-1]["round"])
    return {
        **identity,
        "seed_size": seed_size,
        "final_size": summary["final_size"],
        "added": sum(int(r["added"]) for r in rounds),
        "rounds": len(rounds),
        "chosen_round": chosen,
        "test_accuracy": _number(test.get("accuracy")),
        "test_macro_f1": _number(test.get("macro_f1")),
        "last_accuracy": _number(rounds[-1].get("test_accuracy")),
        "test_correct": _correct_bits(run_dir, chosen),
        "last_correct": _correct_bits(run_dir, rounds[-1]["round"]),
        "teacher_calls": sum(int(r["teacher_requests"]) for r in rounds),
        "prompt_tokens": sum(int(r["prompt_tokens"]) for r in rounds),
        "completion_tokens": sum(int(r["completion_tokens"]) for r in rounds),
        "wall_seconds": round(wall_seconds, 1),
        "resumed": resumed,
        "run_dir": str(run_dir),
    }


def round_rows(identity: dict, run_dir: Path) -> list[dict]:
    """One row per round record: the student of that round, and the teacher calls spent on the data it trained on.

    Methods record a round's calls either with the training that used their output (S3, the baselines) or with
    the training that found the errors they answer (LLM2LLM); the round's files tell which: whether the rows it
    added are in the data it trained on.
    """
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    rows, spent = [], 0
    for record in summary["rounds"]:
        own = int(record["teacher_requests"])
        calls_before = spent + (own if _added_rows_trained(run_dir, int(record["round"])) else 0)
        spent += own
        rows.append({
            **{key: identity[key] for key in ("dataset", "setting", "seed", "arm", "oracle", "config_hash")},
            "round": record["round"], "train_size": record["train_size"], "added": record["added"],
            "calls_before": calls_before, "test_accuracy": _number(record.get("test_accuracy")),
            "test_macro_f1": _number(record.get("test_macro_f1")),
        })
    return rows


def _added_rows_trained(run_dir: Path, round_: int) -> bool:
    folder = run_dir / "rounds" / f"{round_:03d}"
    added = _first_id(folder / "added.jsonl")
    if added is None:
        return False
    return added in _ids(folder / "data.jsonl")


def _first_id(path: Path) -> str | None:
    try:
        with path.open(encoding="utf-8") as file:
            line = file.readline()
    except OSError:
        return None
    return json.loads(line)["id"] if line.strip() else None


def _ids(path: Path) -> set[str]:
    try:
        with path.open(encoding="utf-8") as file:
            return {json.loads(line)["id"] for line in file if line.strip()}
    except OSError:
        return set()


def _correct_bits(run_dir: Path, round_: int) -> str:
    """Which eval rows a round's student got right, as a string of 0s and 1s (for intervals paired on rows)."""
    folder = run_dir / "rounds" / (f"{round_:03d}" if round_ >= 0 else "baseline")
    try:
        correct = json.loads((folder / "evaluation.json").read_text(encoding="utf-8")).get("test_correct") or []
    except (OSError, ValueError):
        return ""
    return "".join("1" if value else "0" for value in correct)


def _number(value) -> str:
    return "" if value is None else f"{float(value):.6f}"


GENERATED_START = "<!-- generated by its bench script: edit outside these markers -->"
GENERATED_END = "<!-- end of the generated part -->"


def write_page(path: Path, generated: str, title: str) -> None:
    """A results page whose `generated` part a bench script rewrites, keeping the hand-written text around it
    (set-up, interpretation); a new page gets `title` above it."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    before, after = f"# {title}\n\n", "\n"
    if GENERATED_START in text and GENERATED_END in text:
        before, rest = text.split(GENERATED_START, 1)
        after = rest.split(GENERATED_END, 1)[1]
    write_text_atomic(path, f"{before}{GENERATED_START}\n{generated.strip()}\n{GENERATED_END}{after}")

"""The one reader of run directories for review, retrain and export: what the runner wrote, as plain records.

Files read (all optional except that a run directory has at least one of config.yaml, summary.json, rounds/):

    config.yaml  summary.json  usage.json  data.{jsonl,csv,parquet}  plots/*.png  reviewed/evaluation.json
    rounds/<k>/  data.jsonl added.jsonl rejected.jsonl errors.jsonl metrics.json

A format change in the run directory is absorbed here. Rows are parsed as plain JSON, not validated `Example`s:
a run of 100k rows loads in about a second. Nothing here writes to the run directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmaug.data.example import Example
from llmaug.report.facts import read_json, read_yaml

DATA_FORMATS = ("jsonl", "csv", "parquet")
REVIEWED_DIR = "reviewed"
HIDDEN = "(hidden)"
ACCEPTED, REJECTED = "accepted", "rejected"
_SECRET_NAME = re.compile(r"(^|[_-])(api_?key|key|token|secret|password|passwd|credentials?|auth)$|secret|password",
                          re.IGNORECASE)
_NOT_RUNS = {"rounds", "student", "plots", REVIEWED_DIR, "cache", "prompts"}


@dataclass(frozen=True)
class Row:
    """A teacher output: accepted into the data, or rejected by the filters (then with `reason`).

    `round` is the round whose rounds/<k>/ folder added or rejected it (the round table's "added" counts it there);
    `in_final` is False for an accepted row that the run's final dataset does not hold.
    """

    id: str
    kind: str
    round: int
    text: str
    label: str | None
    text_pair: str | None = None
    answer: str | None = None
    parent_ids: tuple[str, ...] = ()
    method: str | None = None
    teacher: str | None = None
    prompt: str | None = None
    raw_output: str | None = None
    reason: str | None = None
    in_final: bool = True

    @property
    def reason_kind(self) -> str:
        """The reason without its details: 'near duplicate (ROUGE-L 0.97 with …)' → 'near duplicate'."""
        return (self.reason or "").split(" (")[0]


@dataclass(frozen=True)
class SeedRow:
    """A row the teacher's outputs can descend from (a seed, or a synthetic row that was augmented again)."""

    id: str
    text: str
    label: str | None
    text_pair: str | None = None


@dataclass(frozen=True)
class SeedError:
    """A seed row the student got wrong in a round, and what it predicted."""

    round: int
    seed: SeedRow
    predicted: str


class RunData:
    """Everything review shows of one run directory, read once."""

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.name
        self.config = redacted(read_yaml(self.path / "config.yaml"))
        self.summary = read_json(self.path / "summary.json")
        self.usage = read_json(self.path / "usage.json")
        self.round_dirs = round_dirs(self.path)
        self.rounds = round_facts(self.path, self.summary)
        self.errors = {k: list(_seed_errors(folder, k)) for k, folder in self.round_dirs.items()}
        final = final_rows(self.path, self.config)
        self.finished = self.summary is not None
        self.rows = self._rows(final)
        self.parents = self._parents(final)
        self._predicted = {(e.round, e.seed.id): e.predicted for errors in self.errors.values() for e in errors}

    @property
    def review_evaluation(self) -> dict | None:
        """reviewed/evaluation.json, read afresh: a retrain from the command line shows without a restart."""
        return read_json(self.path / REVIEWED_DIR / "evaluation.json")

    @property
    def plots(self) -> list[str]:
        folder = self.path / "plots"
        return sorted(p.name for p in folder.glob("*.png") if p.is_file()) if folder.is_dir() else []

    @property
    def labels(self) -> list[str]:
        labels = {row.label for row in self.rows if row.label is not None}
        labels |= {seed.label for seed in self.parents.values() if seed.label is not None}
        return sorted(labels)

    def parent(self, row: Row) -> SeedRow | None:
        return self.parents.get(row.parent_ids[0]) if row.parent_ids else None

    def wrong_prediction(self, row: Row) -> str | None:
        """What the student predicted for the row's parent in the round whose errors spawned the row."""
        return self._predicted.get((row.round, row.parent_ids[0])) if row.parent_ids else None

    def _rows(self, final: list[dict] | None) -> list[Row]:
        rows: list[Row] = []
        seen: set[str] = set()
        final_ids = {item["id"] for item in final} if final is not None else None
        for k, folder in self.round_dirs.items():
            for item in _jsonl(folder / "added.jsonl"):
                if item["id"] not in seen:
                    seen.add(item["id"])
                    rows.append(_accepted(item, k, final_ids is None or item["id"] in final_ids))
            for number, item in enumerate(_jsonl(folder / "rejected.jsonl"), start=1):
                rows.append(_rejected(item, k, number))
        for item in final or ():  # synthetic rows no added.jsonl lists (methods that assemble the data at the end)
            provenance = item.get("provenance") or {}
            if provenance.get("origin", "seed") != "seed" and item["id"] not in seen:
                seen.add(item["id"])
                rows.append(_accepted(item, int(provenance.get("round") or 0), True))
        return rows

    def _parents(self, final: list[dict] | None) -> dict[str, SeedRow]:
        parents: dict[str, SeedRow] = {}
        sources = [final or []]
        if self.round_dirs:
            sources.append(_jsonl(next(iter(self.round_dirs.values())) / "data.jsonl"))
        for source in sources:
            for item in source:
                parents.setdefault(item["id"], _seed_row(item))
        for errors in self.errors.values():
            for error in errors:
                parents.setdefault(error.seed.id, error.seed)
        for row in self.rows:  # a synthetic row can be the parent of a later one
            if row.kind == ACCEPTED:
                parents.setdefault(row.id, SeedRow(row.id, row.text, row.label, row.text_pair))
        return parents


# ------------------------------------------------------------------------------------------- run folders


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in ("config.yaml", "summary.json", "rounds"))


def find_runs(root: str | Path, depth: int = 4) -> dict[str, Path]:
    """`root` itself when it is a run directory, else the run directories below it (a bench work folder), by
    their path relative to `root`."""
    root = Path(root)
    if is_run_dir(root):
        return {root.resolve().name: root}
    found: dict[str, Path] = {}

    def walk(folder: Path, level: int) -> None:
        for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if child.name in _NOT_RUNS:
                continue
            if is_run_dir(child):
                found[child.relative_to(root).as_posix()] = child
            elif level < depth:
                walk(child, level + 1)

    if root.is_dir():
        walk(root, 1)
    return found


def round_dirs(run_dir: Path) -> dict[int, Path]:
    folder = run_dir / "rounds"
    if not folder.is_dir():
        return {}
    found = {int(p.name): p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()}
    return dict(sorted(found.items()))


def round_facts(run_dir: Path, summary: dict | None) -> list[dict]:
    """One dict per round: summary.json's rounds, or in an unfinished run each round's metrics.json."""
    if summary and isinstance(summary.get("rounds"), list):
        return summary["rounds"]
    facts = []
    for k, folder in round_dirs(run_dir).items():
        metrics = read_json(folder / "metrics.json")
        if metrics is not None:
            facts.append({"round": k, **metrics})
    return facts


def final_rows(run_dir: Path, config: dict | None = None) -> list[dict] | None:
    """The run's final dataset as JSON rows (None before the run wrote it)."""
    formats = [str((config or {}).get("output_format") or "jsonl"), *DATA_FORMATS]
    for fmt in dict.fromkeys(formats):
        path = run_dir / f"data.{fmt}"
        if path.is_file():
            if fmt == "jsonl":
                return list(_jsonl(path))
            from llmaug.data.io import example_rows, load_examples

            return example_rows(load_examples(path))
    return None


def current_examples(run_dir: str | Path) -> list[Example]:
    """The run's dataset as it stands: the final one, or in an unfinished run the last round's data and what that
    round added."""
    from llmaug.data.io import load_examples

    run_dir = Path(run_dir)
    final = final_rows(run_dir, read_yaml(run_dir / "config.yaml"))
    if final is not None:
        return [Example.model_validate(item) for item in final]
    rounds = round_dirs(run_dir)
    if not rounds:
        return []
    last = list(rounds.values())[-1]
    examples: dict[str, Example] = {}
    for name in ("data.jsonl", "added.jsonl"):
        if (last / name).is_file():
            for example in load_examples(last / name):
                examples.setdefault(example.id, example)
    return list(examples.values())


def redacted(config: dict) -> dict:
    """The settings with any value whose name suggests a secret hidden. `api_key_env` names a variable and stays;
    the variable's value is never read."""
    def hide(key: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: hide(str(k), v) for k, v in value.items()}
        return HIDDEN if key != "api_key_env" and _SECRET_NAME.search(key) else value

    return {key: hide(str(key), value) for key, value in (config or {}).items()}


# ------------------------------------------------------------------------------------------------ parsing


def _accepted(item: dict, round: int, in_final: bool) -> Row:
    provenance = item.get("provenance") or {}
    return Row(
        id=item["id"], kind=ACCEPTED, round=round, text=item.get("text") or "", label=item.get("label"),
        text_pair=item.get("text_pair"), answer=item.get("answer"),
        parent_ids=tuple(provenance.get("parent_ids") or ()), method=provenance.get("method"),
        teacher=provenance.get("teacher"), prompt=provenance.get("prompt"), raw_output=provenance.get("raw_output"),
        in_final=in_final,
    )


def _rejected(item: dict, round: int, line: int) -> Row:
    return Row(
        id=str(item.get("id") or f"rejected-{round}-{line}"), kind=REJECTED, round=round,
        text=item.get("text") or "", label=item.get("label"), parent_ids=tuple(item.get("parent_ids") or ()),
        method=item.get("method"), teacher=item.get("teacher"), prompt=item.get("prompt"),
        raw_output=item.get("raw_output"), reason=item.get("reason") or "", in_final=False,
    )


def _seed_row(item: dict) -> SeedRow:
    return SeedRow(item["id"], item.get("text") or "", item.get("label"), item.get("text_pair"))


def _seed_errors(folder: Path, round: int) -> Iterator[SeedError]:
    for item in _jsonl(folder / "errors.jsonl"):
        yield SeedError(round, _seed_row(item), str(item.get("predicted")))


def _jsonl(path: Path) -> Iterator[dict]:
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as file:
        for line in file:
            if line.strip():
                yield json.loads(line)

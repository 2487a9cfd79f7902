"""What a report says, gathered in one record with summary.json's field names, from a finished `RunResult` (the
runner, before it writes summary.json) or from a run directory's files (a report rebuilt later, or a run written by
another version). Fields that newer runs add (CV accuracy, intervals, verdict, selection, stop reason) are shown
when present and skipped when not.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmaug.filters.answers import extract_answer

ADDED_SAMPLE = 5
REJECTED_SAMPLE = 8


@dataclass
class AddedRow:
    label: str  # the label, or "#### <answer>" for QA rows
    text: str
    parent: str  # the parent's text ("" when unknown)
    round: int | None


@dataclass
class RejectedRow:
    raw_output: str
    text: str  # what the parser made of the raw output: the text the reason is about
    reason: str


@dataclass
class ReportFacts:
    out: Path
    method: str
    teacher: str
    student: str
    student_options: dict[str, Any]
    settings: dict[str, Any]
    rounds: list[dict]
    test: dict | None
    seeds: int
    added: int
    seconds: float | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    price_known: bool = False
    stopped: dict | None = None
    selection: dict | None = None
    verdict: dict | None = None
    added_sample: list[AddedRow] = field(default_factory=list)
    rejected_sample: list[RejectedRow] = field(default_factory=list)
    review: dict | None = None  # reviewed/evaluation.json, after `llmaug retrain`

    @property
    def has_cv(self) -> bool:
        return any(r.get("cv_accuracy") is not None for r in self.rounds)


def facts_from_result(result, method, teacher_identity: str) -> ReportFacts:
    out: Path = result.out
    config = read_yaml(out / "config.yaml")
    rounds = [_plain(r) for r in result.rounds]
    return ReportFacts(
        out=out, method=method.name, teacher=teacher_identity, student=result.student.kind,
        student_options=dict(result.student.options),
        settings=method.options(), rounds=rounds, test=result.test.model_dump() if result.test else None,
        seeds=sum(e.is_seed for e in result.data), added=len(result.added), seconds=result.seconds,
        filters=dict(result.quality), price_known=price_known(config, rounds),
        stopped=_plain(getattr(result, "stopped", None)) or budget_stop(read_json(out / "usage.json"), config),
        selection=_plain(getattr(result, "selection", None)), verdict=_plain(getattr(result, "verdict", None)),
        added_sample=added_sample(out), rejected_sample=rejected_sample(out),
        review=read_json(out / "reviewed" / "evaluation.json"),
    )


def facts_from_run_dir(run_dir: str | Path) -> ReportFacts:
    """The facts of a finished run directory, from summary.json and the files beside it."""
    from llmaug.data.example import Example

    out = Path(run_dir)
    summary = read_json(out / "summary.json") or {}
    config = read_yaml(out / "config.yaml")
    rows = [Example.model_validate(row) for row in _jsonl(out / "data.jsonl")]
    added = [e for e in rows if not e.is_seed]
    rounds = summary.get("rounds") or []
    return ReportFacts(
        out=out, method=summary.get("method") or config.get("method", "?"),
        teacher=next((e.provenance.teacher for e in added if e.provenance.teacher), None) or str(config.get("teacher", "?")),
        student=str(config.get("student", "?")), student_options=config.get("student_options") or {},
        settings=summary.get("options") or {}, rounds=rounds, test=summary.get("test"),
        seeds=len(rows) - len(added), added=summary.get("added", len(added)), seconds=summary.get("seconds"),
        price_known=price_known(config, rounds),
        stopped=summary.get("stopped") or budget_stop(read_json(out / "usage.json"), config),
        selection=summary.get("selection"), verdict=summary.get("verdict"),
        added_sample=added_sample(out), rejected_sample=rejected_sample(out),
        review=read_json(out / "reviewed" / "evaluation.json"),
    )


def added_sample(out: Path) -> list[AddedRow]:
    """The first rows the teacher wrote that passed the filters, from every round (whichever round the run kept),
    each with its parent's text."""
    from llmaug.data.example import Example

    rounds = sorted(path for path in (out / "rounds").glob("*") if path.is_dir()) if (out / "rounds").is_dir() else []
    known = {row["id"]: row for folder in rounds for row in _jsonl(folder / "data.jsonl")}
    written = [Example.model_validate(row) for folder in rounds for row in _jsonl(folder / "added.jsonl")]
    parents = {key: Example.model_validate(row) for key, row in known.items()}
    return [_added_row(e, parents.get(e.provenance.parent_ids[0]) if e.provenance.parent_ids else None)
            for e in written[:ADDED_SAMPLE]]


def budget_stop(usage: dict | None, config: dict | None) -> dict | None:
    """The stop reason of a run that did not record one: requests left unsent for lack of budget mean the teacher
    budget was reached."""
    usage, config = usage or {}, config or {}
    if not usage.get("budget_skipped"):
        return None
    answered = int(usage.get("calls", 0)) + int(usage.get("cached", 0))
    if config.get("max_teacher_calls") is not None:
        detail = f"{answered} of {config['max_teacher_calls']} requests"
    elif config.get("max_tokens_budget") is not None:
        used = int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0)) + int(usage.get("cached_tokens", 0))
        detail = f"{used:,} of {int(config['max_tokens_budget']):,} tokens"
    else:
        detail = f"{usage['budget_skipped']} requests not sent"
    return {"reason": "teacher budget reached", "detail": detail}


def cost_text(cost: float | None, price_known: bool) -> str:
    """A round's cost in US dollars; "n/a" when no price was given (a cost of 0 then means nothing)."""
    return f"{cost:.4f}" if price_known and cost is not None else "n/a"


def rejected_sample(out: Path, limit: int = REJECTED_SAMPLE) -> list[RejectedRow]:
    """Up to `limit` rejected outputs, one per kind of reason first (in the order the kinds first occur), so that a
    sample is not eight copies of the most common rejection."""
    by_kind: dict[str, list[RejectedRow]] = {}
    for path in sorted((out / "rounds").glob("*/rejected.jsonl")):
        for row in _jsonl(path):
            reason = row.get("reason") or ""
            by_kind.setdefault(reason.split(" (")[0], []).append(
                RejectedRow(row.get("raw_output") or "", row.get("text") or "", reason))
    sample: list[RejectedRow] = []
    depth = 0
    while len(sample) < limit and any(len(rows) > depth for rows in by_kind.values()):
        sample += [rows[depth] for rows in by_kind.values() if len(rows) > depth][: limit - len(sample)]
        depth += 1
    return sample


def _added_row(example, parent) -> AddedRow:
    label = example.label if example.label is not None else f"#### {extract_answer(example.answer)}"
    return AddedRow(label, example.text, parent.text if parent is not None else "", example.provenance.round)


def price_known(config: dict, rounds: list[dict]) -> bool:
    """Whether the run's costs mean anything: it was given a price (config.yaml), or, without a config.yaml (a run
    from the Python API), some round cost something."""
    if config:
        return config.get("price") is not None
    return any(r.get("cost_usd") for r in rounds)


def _plain(value: Any) -> Any:
    """A record as a dict (pydantic models and dataclasses alike); None stays None."""
    if value is None or isinstance(value, dict):
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return dict(vars(value))


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_yaml(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}

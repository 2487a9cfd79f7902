"""What the templates show, prepared from a run's records: row views, overview facts, error groups, run cards.

Templates only lay out; numbers are formatted by the filters here ("n/a" where a value is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmaug.report.facts import budget_stop, price_known
from llmaug.decisions import load_decisions
from llmaug.review.rundata import Row, RunData, SeedRow, read_json, read_yaml

if TYPE_CHECKING:
    from llmaug.review.server import RunState

CHILDREN_SHOWN = 5
PLOT_ORDER = ("test_accuracy", "train_size", "accepted_rejected", "seed_errors", "teacher_requests", "teacher_tokens",
              "cost", "per_class_accuracy", "confusion_matrix")


def number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def signed(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):+.{digits}f}"


def interval(bounds: Any, digits: int = 3) -> str:
    if not bounds or len(bounds) != 2 or None in bounds:
        return ""
    return f"[{float(bounds[0]):.{digits}f}, {float(bounds[1]):.{digits}f}]"


def cost(value: Any, known: bool = True) -> str:
    """US dollars; "n/a" when the run had no price (its costs of 0 mean nothing) or recorded none."""
    return "n/a" if value is None or not known else f"${float(value):.4f}"


def count(value: Any) -> str:
    return "n/a" if value is None else f"{int(value):,}"


FILTERS = {"number": number, "signed": signed, "interval": interval, "cost": cost, "count": count}


@dataclass
class RowView:
    """A row as the Rows view shows it: its current label and status, its parent and the parent's wrong prediction."""

    row: Row
    position: int
    label: str | None
    status: str
    parent: SeedRow | None
    predicted: str | None

    @classmethod
    def factory(cls, state: "RunState"):
        index, run = state.index, state.data

        def make(row: Row) -> "RowView":
            return cls(row, index.position[row.id], index.label_of(row), index.status_of(row), run.parent(row),
                       run.wrong_prediction(row))

        return make

    @property
    def relabelled_from(self) -> str | None:
        return self.row.label if self.label != self.row.label else None

    def as_json(self) -> dict:
        row = self.row
        return {
            "id": row.id, "kind": row.kind, "round": row.round, "text": row.text, "text_pair": row.text_pair,
            "label": self.label, "original_label": row.label, "status": self.status, "reason": row.reason,
            "method": row.method, "teacher": row.teacher, "prompt": row.prompt, "raw_output": row.raw_output,
            "in_final": row.in_final,
            "parent": None if self.parent is None else {
                "id": self.parent.id, "text": self.parent.text, "label": self.parent.label, "predicted": self.predicted},
        }


@dataclass
class ErrorGroup:
    seed: SeedRow
    predicted: str
    children: list[RowView]
    total: int


def error_groups(state: "RunState", round: int) -> list[ErrorGroup]:
    make = RowView.factory(state)
    groups = []
    for error in state.data.errors.get(round, []):
        spawned = state.children(round, error.seed.id)
        shown = [make(state.index.rows[i]) for i in spawned[:CHILDREN_SHOWN]]
        groups.append(ErrorGroup(error.seed, error.predicted, shown, len(spawned)))
    return groups


def overview(run: RunData) -> dict:
    """The Overview's facts: settings, rounds, verdict, selection, stop reason, review before/after."""
    summary = run.summary or {}
    config = run.config
    return {
        "settings": _settings(config),
        "method": summary.get("method") or config.get("method"),
        "rounds": run.rounds,
        "has_cv": any(r.get("cv_accuracy") is not None for r in run.rounds),
        "price_known": price_known(config, run.rounds),
        "verdict": summary.get("verdict"),
        "selection": summary.get("selection"),
        "stopped": summary.get("stopped") or budget_stop(run.usage, run.config),
        "test": summary.get("test"),
        "finished": run.finished,
        "review": run.review_evaluation,
        "decisions": len(load_decisions(run.path)),
        "plots": sorted(run.plots, key=_plot_rank),
        "has_report": (run.path / "report.html").is_file(),
        "synthetic": sum(row.kind == "accepted" for row in run.rows),
        "rejected": sum(row.kind == "rejected" for row in run.rows),
    }


def _plot_rank(name: str) -> tuple[int, str]:
    stem = name.removesuffix(".png")
    return (PLOT_ORDER.index(stem) if stem in PLOT_ORDER else len(PLOT_ORDER), stem)


def _settings(config: dict) -> list[tuple[str, str]]:
    shown = []
    for key, value in config.items():
        if value in (None, {}, []) or key == "out":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        shown.append((key, str(value)))
    return shown


def run_card(key: str, name: str, path: Path) -> dict:
    """A run picker line, from the small files only."""
    summary = read_json(path / "summary.json") or {}
    config = read_yaml(path / "config.yaml")
    test = summary.get("test") or {}
    return {
        "key": key, "name": name, "method": summary.get("method") or config.get("method"),
        "dataset": config.get("dataset") or config.get("train"), "student": config.get("student"),
        "rounds": len(summary.get("rounds") or []) or None, "added": summary.get("added"),
        "accuracy": test.get("accuracy"), "finished": bool(summary),
        "reviewed": (path / "review.jsonl").is_file(),
    }


def change_notice(action: str, changed: int) -> str:
    if action == "undo":
        return f"undone: {changed} decision{'s' if changed != 1 else ''}" if changed else "nothing to undo"
    verb = {"reject": "reviewed out", "restore": "restored", "relabel": "relabelled"}[action]
    return f"{changed} row{'s' if changed != 1 else ''} {verb}" if changed else f"no row changed (already {verb})"

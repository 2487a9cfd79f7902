"""Review decisions: `review.jsonl` in a run directory, and what they do to a dataset.

One JSON line per decision, appended in order and never rewritten:

    {"row_id": "syn-…", "action": "reject" | "restore" | "relabel", "old": …, "new": …, "time": "2026-…Z",
     "batch": "…", "filter": {…} (bulk actions only), "undoes": "…" (undo only)}

For `reject`/`restore`, `old`/`new` are the row's state ("kept" / "out"); for `relabel`, its labels. Later decisions
win: a row rejected and then restored is kept; a row relabelled back to its first label is no longer relabelled.
An undo is the inverse decisions of one earlier batch, appended (the log stays append-only).

Only decisions that change a row are recorded, so the inverse of a batch restores exactly the state before it.
This module imports neither torch nor aiohttp: the runner can apply decisions when a run is resumed.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from llmaug.data.example import Example
from llmaug.atomic import atomic_path
from llmaug.errors import DataError, location

DECISIONS_FILE = "review.jsonl"
KEPT, OUT = "kept", "out"
Action = Literal["reject", "restore", "relabel"]
ACTIONS = ("reject", "restore", "relabel")
_INVERSE = {"reject": "restore", "restore": "reject", "relabel": "relabel"}


@dataclass(frozen=True)
class Decision:
    row_id: str
    action: Action
    old: str | None
    new: str | None
    time: str = ""
    batch: str = ""
    filter: dict | None = None
    undoes: str | None = None

    def to_json(self) -> str:
        row = {key: value for key, value in asdict(self).items() if value is not None}
        return json.dumps(row, ensure_ascii=False, sort_keys=True)

    def inverse(self, batch: str, time: str) -> "Decision":
        return Decision(self.row_id, _INVERSE[self.action], self.new, self.old, time, batch, undoes=self.batch)


@dataclass(frozen=True)
class RowState:
    """What the decisions so far made of one row. `label` is None unless a relabel changed it."""

    out: bool = False
    label: str | None = None


@dataclass
class Review:
    """Every row's state after the decisions, and the batches that can still be undone (last first)."""

    states: dict[str, RowState] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)

    def state(self, row_id: str) -> RowState:
        return self.states.get(row_id, RowState())

    @property
    def reviewed_out(self) -> int:
        return sum(state.out for state in self.states.values())

    @property
    def relabelled(self) -> int:
        return sum(state.label is not None for state in self.states.values())

    def last_open_batch(self) -> list[Decision]:
        """The decisions of the latest batch that is not undone (undos themselves are not undone again)."""
        undone = {d.undoes for d in self.decisions if d.undoes}
        for decision in reversed(self.decisions):
            if decision.undoes is None and decision.batch not in undone:
                return [d for d in self.decisions if d.batch == decision.batch]
        return []


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_batch_id() -> str:
    return secrets.token_hex(6)


def load_decisions(run_dir: str | Path) -> list[Decision]:
    """The decisions in `run_dir/review.jsonl`, in the order they were made ([] when there are none)."""
    path = Path(run_dir) / DECISIONS_FILE
    if not path.is_file():
        return []
    decisions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            decisions.append(_parse(line, path, number))
    return decisions


def _parse(line: str, path: Path, number: int) -> Decision:
    where = location(path, number)
    try:
        row = json.loads(line)
        decision = Decision(**{key: row.get(key) for key in Decision.__dataclass_fields__ if key in row})
    except (ValueError, TypeError) as err:
        raise DataError(f"not a review decision: {err}", where) from None
    if decision.action not in ACTIONS or not isinstance(decision.row_id, str):
        raise DataError(f"not a review decision: action {decision.action!r}", where)
    return decision


def append_decisions(run_dir: str | Path, decisions: Iterable[Decision]) -> None:
    """Add `decisions` at the end of review.jsonl, all or none: the old lines and the new ones are written to a
    temporary file that replaces review.jsonl in one rename, so a reader (a resumed run) never sees half a batch."""
    lines = "".join(decision.to_json() + "\n" for decision in decisions)
    if not lines:
        return
    path = Path(run_dir) / DECISIONS_FILE
    with atomic_path(path, "wb") as file:
        if path.is_file():
            with path.open("rb") as old:
                old_bytes = old.read()
            file.write(old_bytes if old_bytes.endswith(b"\n") or not old_bytes else old_bytes + b"\n")
        file.write(lines.encode("utf-8"))


def review_state(decisions: Iterable[Decision], original_labels: dict[str, str | None] | None = None) -> Review:
    """Fold the decisions in order. With `original_labels`, a row relabelled back to its own label counts as not
    relabelled; without, the `old` label of its first relabel stands for the original."""
    review = Review()
    first_label: dict[str, str | None] = dict(original_labels or {})
    for decision in decisions:
        review.decisions.append(decision)
        state = review.state(decision.row_id)
        if decision.action == "reject":
            state = RowState(True, state.label)
        elif decision.action == "restore":
            state = RowState(False, state.label)
        else:
            original = first_label.setdefault(decision.row_id, decision.old)
            state = RowState(state.out, None if decision.new == original else decision.new)
        review.states[decision.row_id] = state
    return review


def apply_decisions(examples: Iterable[Example], decisions: Iterable[Decision]) -> tuple[list[Example], list[Example]]:
    """(the examples kept, with their new labels; the examples reviewed out, as they were), in the given order."""
    examples = list(examples)
    review = review_state(decisions, {e.id: e.label for e in examples})
    kept, out = [], []
    for example in examples:
        state = review.state(example.id)
        if state.out:
            out.append(example)
        elif state.label is not None:
            kept.append(example.model_copy(update={"label": state.label}))
        else:
            kept.append(example)
    return kept, out


def decide(review: Review, action: Action, row_ids: Iterable[str], current_labels: dict[str, str | None],
           new_label: str | None = None, filter: dict | None = None) -> list[Decision]:
    """The decisions that carry out `action` on `row_ids`, leaving out rows it would not change.
    `current_labels` are the rows' labels now (after earlier relabels)."""
    batch, time = new_batch_id(), now()
    made = []
    for row_id in row_ids:
        state = review.state(row_id)
        label = current_labels.get(row_id)
        if action == "reject" and not state.out:
            made.append(Decision(row_id, "reject", KEPT, OUT, time, batch, filter))
        elif action == "restore" and state.out:
            made.append(Decision(row_id, "restore", OUT, KEPT, time, batch, filter))
        elif action == "relabel" and new_label is not None and label != new_label:
            made.append(Decision(row_id, "relabel", label, new_label, time, batch, filter))
    return made


def undo_last(review: Review) -> list[Decision]:
    """The decisions that undo the latest batch not undone yet ([] when there is none)."""
    batch, time = new_batch_id(), now()
    return [decision.inverse(batch, time) for decision in reversed(review.last_open_batch())]


__all__ = [
    "ACTIONS", "DECISIONS_FILE", "Decision", "Review", "RowState", "append_decisions", "apply_decisions", "decide",
    "load_decisions", "review_state", "undo_last",
]

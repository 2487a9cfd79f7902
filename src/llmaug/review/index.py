"""An in-memory index over a run's rows, built once: filtering, sorting and paging without touching the files.

Each filterable property is a numpy column of small integer codes, so a filter is a few vectorised comparisons
over all rows; sort orders are computed once per column (again only when decisions change labels or states).
Free-text search is a substring test over each candidate row's lower-cased text, raw output, reason and id.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from llmaug.errors import UserError
from llmaug.decisions import Decision, review_state
from llmaug.review.rundata import ACCEPTED, REJECTED, Row, RunData

STATUSES = ("accepted", "rejected", "reviewed-out", "relabelled")
SORT_KEYS = ("round", "label", "status", "method", "reason", "text")
PER_PAGE = 50
MAX_PER_PAGE = 500


@dataclass(frozen=True)
class Query:
    """What the Rows view asks for. Empty strings mean "any"."""

    round: str = ""
    label: str = ""
    method: str = ""
    status: str = ""
    reason: str = ""
    parent: str = ""
    q: str = ""
    sort: str = ""
    page: int = 1
    per_page: int = PER_PAGE

    FILTERS = ("round", "label", "method", "status", "reason", "parent", "q")

    @classmethod
    def from_params(cls, params: Any) -> "Query":
        """From a request's query string or form; a bad number or sort key is a UserError naming the parameter."""
        values = {name: str(params.get(name, "")).strip() for name in (*cls.FILTERS, "sort")}
        page = _positive_int(params.get("page") or "1", "page")
        per_page = min(_positive_int(params.get("per_page") or str(PER_PAGE), "per_page"), MAX_PER_PAGE)
        if values["round"] and not values["round"].isdigit():
            raise UserError(f"must be a round number, got {values['round']!r}", "round")
        if values["sort"] and values["sort"].lstrip("-") not in SORT_KEYS:
            raise UserError(f"unknown sort key {values['sort']!r}; choose from {', '.join(SORT_KEYS)}", "sort")
        if values["status"] and values["status"] not in STATUSES:
            raise UserError(f"unknown status {values['status']!r}; choose from {', '.join(STATUSES)}", "status")
        return cls(**values, page=page, per_page=per_page)

    def filters(self) -> dict[str, str]:
        """The filters that are set (what a bulk action records)."""
        return {name: getattr(self, name) for name in self.FILTERS if getattr(self, name)}

    def params(self, **changes) -> dict[str, str]:
        """This query as URL parameters, with `changes`, leaving out defaults."""
        query = replace(self, **changes)
        params = {name: getattr(query, name) for name in (*self.FILTERS, "sort") if getattr(query, name)}
        if query.page != 1:
            params["page"] = str(query.page)
        if query.per_page != PER_PAGE:
            params["per_page"] = str(query.per_page)
        return params


@dataclass
class Page:
    rows: list[Row]
    total: int
    query: Query
    status_counts: dict[str, int] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))


class Codes:
    """Distinct values of one column, each with a small integer code."""

    def __init__(self, values: list[str | None] = ()):
        self.names: list[str | None] = []
        self.codes: dict[str | None, int] = {}
        for value in values:
            self.code(value)

    def code(self, value: str | None) -> int:
        if value not in self.codes:
            self.codes[value] = len(self.names)
            self.names.append(value)
        return self.codes[value]

    def lookup(self, value: str | None) -> int:
        """The value's code, or -1 (matches no row) for a value no row has."""
        return self.codes.get(value, -1)

    def column(self, values: list[str | None]) -> np.ndarray:
        return np.fromiter((self.code(v) for v in values), dtype=np.int32, count=len(values))


class RowIndex:
    def __init__(self, run: RunData, decisions: list[Decision] | None = None):
        self.run = run
        self.rows = run.rows
        self.position = {row.id: i for i, row in enumerate(self.rows)}
        self.original_label = {row.id: row.label for row in self.rows}
        self.review = review_state(decisions or [], self.original_label)
        rows = self.rows
        self.rounds = np.fromiter((row.round for row in rows), dtype=np.int32, count=len(rows))
        self.label_codes = Codes(run.labels)
        self.labels = self.label_codes.column([row.label for row in rows])
        self.methods = Codes()
        self.method = self.methods.column([row.method for row in rows])
        self.reasons = Codes()
        self.reason = self.reasons.column([row.reason_kind or None for row in rows])
        self.parent_codes = Codes()
        self.parent = self.parent_codes.column([row.parent_ids[0] if row.parent_ids else None for row in rows])
        self.rejected = np.fromiter((row.kind == REJECTED for row in rows), dtype=bool, count=len(rows))
        self.status = np.where(self.rejected, STATUSES.index("rejected"), 0).astype(np.int8)
        self.search = ["\n".join((row.text, row.raw_output or "", row.reason or "", row.id)).casefold() for row in rows]
        self._orders: dict[str, np.ndarray] = {}
        for row_id in self.review.states:
            self._show_state(row_id)

    # ------------------------------------------------------------------------------------------------ reading

    @property
    def round_numbers(self) -> list[int]:
        return sorted(set(self.run.round_dirs) | {int(r) for r in np.unique(self.rounds)})

    @property
    def method_names(self) -> list[str]:
        return sorted(name for name in self.methods.names if name)

    @property
    def reason_names(self) -> list[str]:
        return sorted(name for name in self.reasons.names if name)

    def label_of(self, row: Row) -> str | None:
        state = self.review.state(row.id)
        return state.label if state.label is not None else row.label

    def status_of(self, row: Row) -> str:
        return STATUSES[int(self.status[self.position[row.id]])]

    def row(self, row_id: str) -> Row | None:
        position = self.position.get(row_id)
        return self.rows[position] if position is not None else None

    def page(self, query: Query) -> Page:
        matching = self.matching(query)
        start = (query.page - 1) * query.per_page
        chosen = matching[start:start + query.per_page]
        counts = np.bincount(self.status[self._mask(replace(query, status=""))], minlength=len(STATUSES))
        return Page([self.rows[i] for i in chosen], len(matching), query, dict(zip(STATUSES, map(int, counts))))

    def matching(self, query: Query) -> np.ndarray:
        """Positions of the rows that match, in the query's order."""
        mask = self._mask(query)
        descending = query.sort.startswith("-")
        order = self._order(query.sort.lstrip("-"))
        if descending:
            order = order[::-1]
        return order[mask[order]]

    def _mask(self, query: Query) -> np.ndarray:
        mask = np.ones(len(self.rows), dtype=bool)
        if query.round:
            mask &= self.rounds == int(query.round)
        if query.label:
            mask &= self.labels == self.label_codes.lookup(query.label)
        if query.method:
            mask &= self.method == self.methods.lookup(query.method)
        if query.status:
            mask &= self.status == STATUSES.index(query.status)
        if query.reason:
            mask &= self.reason == self.reasons.lookup(query.reason)
        if query.parent:
            mask &= self.parent == self.parent_codes.lookup(query.parent)
        needle = query.q.casefold()
        if needle:
            search = self.search
            for i in np.flatnonzero(mask):
                if needle not in search[i]:
                    mask[i] = False
        return mask

    def _order(self, key: str) -> np.ndarray:
        if key not in self._orders:
            self._orders[key] = self._sort(key)
        return self._orders[key]

    def _sort(self, key: str) -> np.ndarray:
        if key == "round":
            return np.argsort(self.rounds, kind="stable")
        if key == "status":
            return np.argsort(self.status, kind="stable")
        if key in ("label", "method", "reason"):
            codes, names = {"label": (self.labels, self.label_codes), "method": (self.method, self.methods),
                            "reason": (self.reason, self.reasons)}[key]
            rank = _rank_of_names(names.names)
            return np.argsort(rank[codes], kind="stable")
        if key == "text":
            return np.array(sorted(range(len(self.rows)), key=lambda i: self.rows[i].text.casefold()), dtype=np.int64)
        return np.arange(len(self.rows))

    # ---------------------------------------------------------------------------------------------- decisions

    def decidable(self, positions: np.ndarray | list[int]) -> list[str]:
        """The ids of rows at `positions` that decisions apply to (accepted rows; filter rejections are final)."""
        return [self.rows[i].id for i in positions if not self.rejected[i]]

    def current_labels(self, row_ids: list[str]) -> dict[str, str | None]:
        return {row_id: self.label_of(self.rows[self.position[row_id]]) for row_id in row_ids}

    def apply(self, decisions: list[Decision]) -> None:
        """Record decisions already written to review.jsonl in the index's state."""
        self.review = review_state([*self.review.decisions, *decisions], self.original_label)
        for decision in decisions:
            self._show_state(decision.row_id)
        self._orders.pop("label", None)
        self._orders.pop("status", None)

    def _show_state(self, row_id: str) -> None:
        position = self.position.get(row_id)
        if position is None or self.rejected[position]:
            return
        state = self.review.state(row_id)
        row = self.rows[position]
        self.labels[position] = self.label_codes.code(state.label if state.label is not None else row.label)
        status = "reviewed-out" if state.out else "relabelled" if state.label is not None else ACCEPTED
        self.status[position] = STATUSES.index(status)


def _rank_of_names(names: list[str | None]) -> np.ndarray:
    """Each code's rank when the names are sorted (None first)."""
    ordered = sorted(range(len(names)), key=lambda code: (names[code] is not None, str(names[code] or "").casefold()))
    rank = np.empty(len(names), dtype=np.int32)
    rank[ordered] = np.arange(len(names), dtype=np.int32)
    return rank if len(names) else np.zeros(1, dtype=np.int32)


def _positive_int(value: str, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise UserError(f"must be a whole number, got {value!r}", name) from None
    if number < 1:
        raise UserError(f"must be at least 1, got {number}", name)
    return number


__all__ = ["MAX_PER_PAGE", "PER_PAGE", "Page", "Query", "RowIndex", "SORT_KEYS", "STATUSES"]

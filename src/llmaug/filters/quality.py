"""The candidate filters every method shares: label in the label set, length bounds, echo of the prompt,
exact and near duplicates (against the existing data and the batch so far). Each rejection keeps its reason."""

from __future__ import annotations

from pydantic import BaseModel, Field

from llmaug.data.example import Example
from llmaug.filters.dedup import NearDuplicateIndex, rouge_l_recall


class Rejected(BaseModel):
    """A candidate that did not make it into the data, with why; written to the run's rejection log."""

    text: str
    reason: str
    label: str | None = None
    parent_ids: list[str] = Field(default_factory=list)
    round: int | None = None
    method: str | None = None
    raw_output: str | None = None


class QualityFilter(BaseModel):
    min_chars: int = Field(8, ge=0)
    max_chars: int = Field(600, ge=1)
    near_duplicate_threshold: float = Field(0.95, gt=0, le=1)
    echo_threshold: float = Field(0.6, gt=0, le=1)  # share of the output found, in order, in the instructions

    def apply(
        self,
        candidates: list[Example],
        existing: list[Example],
        labels: list[str] | None,
        instructions: dict[str, str] | None = None,
    ) -> tuple[list[Example], list[Rejected]]:
        """Accepted candidates (in order) and rejections. `instructions` maps a candidate id to the prompt that
        produced it, without the quoted example, to catch teachers that parrot the instructions back."""
        index = NearDuplicateIndex(self.near_duplicate_threshold, [e.text for e in existing])
        accepted: list[Example] = []
        rejected: list[Rejected] = []
        for candidate in candidates:
            reason = self._reason(candidate, index, labels, (instructions or {}).get(candidate.id))
            if reason is None:
                accepted.append(candidate)
                index.add(candidate.text)
            else:
                rejected.append(rejection(candidate, reason))
        return accepted, rejected

    def _reason(self, candidate: Example, index: NearDuplicateIndex, labels: list[str] | None, prompt: str | None) -> str | None:
        text = candidate.text.strip()
        if not text:
            return "empty"
        if labels is not None and candidate.label is not None and candidate.label not in labels:
            return f"label {candidate.label!r} not in the label set"
        if len(text) < self.min_chars:
            return f"too short ({len(text)} < {self.min_chars} characters)"
        if len(text) > self.max_chars:
            return f"too long ({len(text)} > {self.max_chars} characters)"
        if index.exact(text) is not None:
            return "exact duplicate"
        match = index.match(text)
        if match is not None:
            return f"near duplicate (ROUGE-L {match[1]:.2f} > {self.near_duplicate_threshold})"
        if prompt and rouge_l_recall(text, prompt) >= self.echo_threshold:
            return "echo of the prompt instructions"
        return None


def rejection(candidate: Example, reason: str) -> Rejected:
    p = candidate.provenance
    return Rejected(text=candidate.text, reason=reason, label=candidate.label, parent_ids=p.parent_ids,
                    round=p.round, method=p.method, raw_output=p.raw_output)

"""The one record every layer passes around: an example with its provenance."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Origin = Literal["seed", "synthetic", "relabelled"]


class Provenance(BaseModel):
    """Where an example came from. Seeds carry only `origin`; synthetic rows carry all of it."""

    model_config = ConfigDict(extra="forbid")

    origin: Origin = "seed"
    method: str | None = None
    round: int | None = None
    parent_ids: list[str] = Field(default_factory=list)
    teacher: str | None = None
    prompt: str | None = None  # template name@version
    sample_index: int | None = None
    item_index: int | None = None  # which of the examples one answer held (answers with several)
    raw_output: str | None = None


class Example(BaseModel):
    """A labelled (or QA) example. `text_pair` is the second sentence of pair tasks (RTE: the hypothesis)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    text_pair: str | None = None
    answer: str | None = None
    label: str | None = None
    provenance: Provenance = Field(default_factory=Provenance)

    @property
    def is_seed(self) -> bool:
        return self.provenance.origin == "seed"

    @classmethod
    def create(
        cls,
        text: str,
        label: str | None = None,
        *,
        text_pair: str | None = None,
        answer: str | None = None,
        provenance: Provenance | None = None,
        id: str | None = None,
    ) -> "Example":
        """An example whose id is a hash of its content and provenance, so reruns give identical ids."""
        provenance = provenance or Provenance()
        if id is None:
            id = content_id(text, label, text_pair, answer, provenance)
        return cls(id=id, text=text, text_pair=text_pair, answer=answer, label=label, provenance=provenance)


def content_id(
    text: str, label: str | None, text_pair: str | None, answer: str | None, provenance: Provenance
) -> str:
    identity = {
        "text": text,
        "text_pair": text_pair,
        "answer": answer,
        "label": label,
        "origin": provenance.origin,
        "method": provenance.method,
        "round": provenance.round,
        "parents": provenance.parent_ids,
        "sample": provenance.sample_index,
    }
    if provenance.item_index is not None:  # only then: ids of one-example answers stay as they were
        identity["item"] = provenance.item_index
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return f"{provenance.origin[:3]}-{digest}"


def label_set(examples: list[Example]) -> list[str]:
    """The sorted distinct labels of a dataset."""
    return sorted({e.label for e in examples if e.label is not None})

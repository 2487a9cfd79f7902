"""The candidate filters every method shares: label in the label set, length bounds, question form, assistant
chatter, echo of the prompt, exact and near duplicates (against the existing data and the batch so far), and an optional embedding
check that the label fits. Each rejection keeps its reason.

`fit(seed)` lets the filter learn from the seed set: whether its texts are questions (then candidates are cut to
their first question, and non-questions rejected) and, with `centroid_top`, each label's mean MiniLM embedding.
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import BaseModel, Field, PrivateAttr

from llmaug.data.example import Example
from llmaug.filters.dedup import NearDuplicateIndex, rouge_l_recall

QUESTION_SHARE = 0.8  # seed texts ending in "?" above this share make the task a question task
# A chat model talking to its user instead of writing an example: "I'm not sure...", "Can you please provide...".
_ASSISTANT_CHATTER = re.compile(
    r"\b(?:i'?m (?:not|happy|glad|sorry|here|ready)|i am (?:not|happy|an ai)|i (?:don'?t|do not|cannot|can'?t) "
    r"(?:have|know|provide)|i'?d be (?:happy|glad)|as an ai|(?:can|could) you (?:please )?(?:provide|give|tell|clarify)"
    r"|(?:your|an) ai assistant|let me know|here (?:is|are) (?:a|an|the|some) (?:new |different )?(?:question|example)s?)\b",
    re.IGNORECASE,
)
_FIRST_QUESTION = re.compile(r"[^\"“”?:\n]*\?")
# A teacher output that tries to steer whatever reads it next (a later prompt, a judge, the user's LLM app).
PROMPT_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.?!\n]{0,40}\b(?:instructions?|prompts?|rules|directions)\b"
    r"|\bsystem prompt\b",
    re.IGNORECASE,
)
WORD_SHARE = 0.6  # of the characters in tokens that are not bare punctuation, this share must be in words or numbers
SYMBOL_SHARE = 0.1  # at most this share of the non-space characters may be symbols such as # { | ~ ^
_NUMBER = re.compile(r"^[$€£]?\d[\d,.:/+*=x-]*(?:%|st|nd|rd|th|s)?$")
_EDGE_PUNCTUATION = "\"'“”‘’`()[]{}<>.,;:!?-–—*"
_VOWELS = frozenset("aeiouy")
_WORD_JOINS = re.compile(r"['’./\\-]")
_SYMBOLS = frozenset("#&+/<=>@[]^_{|}~")  # not $ % (prices, rates) nor ` * \ (treebank quotes, escapes)


class Rejected(BaseModel):
    """A candidate that did not make it into the data, with why; written to the run's rejection log. `text` is
    what the reason refers to (the parsed text, empty when nothing could be parsed), `raw_output` the answer."""

    id: str = ""
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
    question_form: bool | None = None  # None: decided by `fit` from the seed texts
    centroid_top: int | None = Field(None, ge=1)  # label must be among the k nearest label centroids
    device: str = "auto"  # where the label check's MiniLM encoder runs (llmaug.device)

    _centroids: np.ndarray | None = PrivateAttr(None)
    _centroid_labels: list[str] = PrivateAttr(default_factory=list)

    def fit(self, seed: list[Example]) -> "QualityFilter":
        single = [e for e in seed if e.text_pair is None and e.label is not None]
        if self.question_form is None:
            self.question_form = bool(single) and sum(e.text.rstrip().endswith("?") for e in single) / len(single) >= QUESTION_SHARE
        if self.centroid_top is not None and single:
            from llmaug.embedding import shared_encoder

            vectors = shared_encoder(device=self.device).encode([e.text for e in single])
            self._centroid_labels = sorted({e.label for e in single})
            self._centroids = np.stack([
                vectors[[i for i, e in enumerate(single) if e.label == label]].mean(axis=0) for label in self._centroid_labels
            ])
        return self

    def apply(
        self,
        candidates: list[Example],
        existing: list[Example],
        labels: list[str] | None,
        instructions: dict[str, str] | None = None,
    ) -> tuple[list[Example], list[Rejected]]:
        """Accepted candidates (in order) and rejections. `instructions` maps a candidate id to the prompt that
        produced it, without the quoted example, to catch teachers that parrot the instructions back."""
        index = NearDuplicateIndex(self.near_duplicate_threshold, [_written(e) for e in existing])
        accepted: list[Example] = []
        rejected: list[Rejected] = []
        for candidate in candidates:
            prompt = (instructions or {}).get(candidate.id)
            candidate, reason = self._shaped(candidate)
            reason = reason or self._reason(candidate, index, labels, prompt)
            if reason is None:
                accepted.append(candidate)
                index.add(_written(candidate))
            else:
                rejected.append(rejection(candidate, reason))
        return self._label_fit(accepted, rejected)

    def _shaped(self, candidate: Example) -> tuple[Example, str | None]:
        """In question tasks, the candidate cut to its first question (teachers wrap it in chatter)."""
        if not self.question_form or candidate.text_pair is not None:
            return candidate, None
        match = _FIRST_QUESTION.search(candidate.text)
        if match is None:
            return candidate, "not a question"
        question = match.group(0).strip(" '\"*")
        if question == candidate.text:
            return candidate, None
        return Example.create(question, candidate.label, provenance=candidate.provenance), None

    def _reason(self, candidate: Example, index: NearDuplicateIndex, labels: list[str] | None, prompt: str | None) -> str | None:
        if not candidate.text.strip() or (candidate.text_pair is not None and not candidate.text_pair.strip()):
            return "empty"
        text = _written(candidate).strip()
        if labels is not None and candidate.label is not None and candidate.label not in labels:
            return f"label {candidate.label!r} not in the label set"
        if len(text) < self.min_chars:
            return f"too short ({len(text)} < {self.min_chars} characters)"
        if len(text) > self.max_chars:
            return f"too long ({len(text)} > {self.max_chars} characters)"
        if PROMPT_INJECTION.search(candidate.provenance.raw_output or text):
            return "prompt injection attempt"
        if not looks_like_language(text):
            return "gibberish (too few real words)"
        if _ASSISTANT_CHATTER.search(text):
            return "assistant chatter"
        if index.exact(text) is not None:
            return "exact duplicate"
        match = index.match(text)
        if match is not None:
            return f"near duplicate (ROUGE-L {match[1]:.2f} > {self.near_duplicate_threshold})"
        if prompt and rouge_l_recall(text, prompt) >= self.echo_threshold:
            return "echo of the prompt instructions"
        return None

    def _label_fit(self, accepted: list[Example], rejected: list[Rejected]) -> tuple[list[Example], list[Rejected]]:
        """Drop candidates whose label is not among the `centroid_top` nearest label centroids."""
        checkable = [e for e in accepted if e.text_pair is None and e.label in self._centroid_labels]
        if self._centroids is None or not checkable:
            return accepted, rejected
        from llmaug.embedding import shared_encoder

        similarity = shared_encoder(device=self.device).encode([e.text for e in checkable]) @ self._centroids.T
        nearest = np.argsort(-similarity, axis=1)[:, : self.centroid_top]
        misfits = {
            e.id: self._centroid_labels[row[0]]
            for e, row in zip(checkable, nearest)
            if self._centroid_labels.index(e.label) not in row
        }
        kept = [e for e in accepted if e.id not in misfits]
        dropped = [rejection(e, f"label does not fit (nearest label {misfits[e.id]})") for e in accepted if e.id in misfits]
        return kept, rejected + dropped


def _written(example: Example) -> str:
    """What the length, duplicate and echo checks judge: the text, or of a pair the second text, which every
    method writes (the first may be a real premise kept from the parent, and a long shared premise would make
    any two hypotheses under it look like near duplicates)."""
    return example.text if example.text_pair is None else example.text_pair


def rejection(candidate: Example, reason: str) -> Rejected:
    p = candidate.provenance
    return Rejected(id=candidate.id, text=candidate.text, reason=reason, label=candidate.label, parent_ids=p.parent_ids,
                    round=p.round, method=p.method, raw_output=p.raw_output)


def looks_like_language(text: str) -> bool:
    """Whether most of the text (by characters, bare punctuation aside) is words (letters in one case pattern,
    inner ' - . allowed) or numbers, with few symbols: false for the keyboard noise a broken teacher or a decoding
    bug emits (all but 1 in 10,000 random strings), true for all but 3 of the 14,693 bundled texts."""
    cores = [token.strip(_EDGE_PUNCTUATION) for token in text.split()]
    total = sum(len(core) for core in cores)
    in_words = sum(len(core) for core in cores if core and _is_word(core))
    visible = [char for char in text if not char.isspace()]
    symbols = sum(char in _SYMBOLS for char in visible)
    return in_words > 0 and in_words >= WORD_SHARE * total and symbols <= SYMBOL_SHARE * len(visible)


def _is_word(core: str) -> bool:
    if _NUMBER.match(core):
        return True
    parts = [part for part in _WORD_JOINS.split(core) if part]
    return bool(parts) and all(_is_word_part(part) for part in parts)


def _is_word_part(part: str) -> bool:
    letters = part.rstrip("0123456789")  # "Internet2", "MP3"
    if not letters.isalpha():
        return False
    if len(letters) >= 3 and letters.isascii() and not _VOWELS.intersection(letters.lower()):
        return False  # "ZHXQ"; the odd acronym ("CNN") costs little of the share
    return letters in (letters.lower(), letters.upper()) or letters.istitle()

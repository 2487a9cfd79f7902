"""Exact and near-duplicate detection. Near = ROUGE-L F-measure above a threshold (LLM2LLM and Self-Instruct
use 0.95), computed with `rouge-score` after a cheap upper bound rules most pairs out."""

from __future__ import annotations

import functools
import re
from collections import Counter


@functools.cache
def _rouge():
    """rouge-score's tokenizer and ROUGE-L scorer, imported on first use: rouge_score pulls in nltk (~1.5 s)."""
    from rouge_score import rouge_scorer, tokenizers

    return tokenizers.DefaultTokenizer(use_stemmer=False), rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def _tokens(text: str) -> list[str]:
    return _rouge()[0].tokenize(text)


def _score(reference: str, candidate: str):
    return _rouge()[1].score(reference, candidate)["rougeL"]


def normalise(text: str) -> str:
    """The key for exact-duplicate checks: case, spacing and punctuation do not count."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


class NearDuplicateIndex:
    """Texts seen so far; `match(text)` returns the first seen text whose ROUGE-L F exceeds the threshold."""

    def __init__(self, threshold: float = 0.95, texts: list[str] = ()):
        self.threshold = threshold
        self._texts: list[str] = []
        self._bags: list[Counter] = []
        self._exact: dict[str, str] = {}
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        self._texts.append(text)
        self._bags.append(Counter(_tokens(text)))
        self._exact.setdefault(normalise(text), text)

    def exact(self, text: str) -> str | None:
        return self._exact.get(normalise(text))

    def match(self, text: str) -> tuple[str, float] | None:
        bag = Counter(_tokens(text))
        size = sum(bag.values())
        for seen, seen_bag in zip(self._texts, self._bags):
            # ROUGE-L F <= 2 * |multiset overlap| / (|a| + |b|): skip pairs that cannot pass the threshold.
            total = size + sum(seen_bag.values())
            if total == 0 or 2 * sum((bag & seen_bag).values()) / total <= self.threshold:
                continue
            f_measure = _score(seen, text).fmeasure
            if f_measure > self.threshold:
                return seen, f_measure
        return None


def rouge_l(reference: str, candidate: str) -> float:
    return _score(reference, candidate).fmeasure


def rouge_l_recall(reference: str, candidate: str) -> float:
    """How much of `reference` reappears (in order) in `candidate`."""
    return _score(reference, candidate).recall

"""MSP's data selection (Chen et al., 2023): which attribute sets to generate for, and which generations to keep.

- Inverse frequency: attribute sets get generation slots in proportion to weights that favour rare attributes,
  so the rarest get the most new data (the paper's sampling; a commented-out line in the official code).
- Denoising: a generation is kept only if its MiniLM embedding is close to the real examples of its attributes
  (cosine similarity to each attribute's centroid, averaged over its attributes): above `threshold`, and/or among
  the top `keep_fraction` of its attribute set's generations. The official code computes a similar score but
  only reorders the data and keeps all of it; here the far ones are dropped, with their scores.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Hashable

import numpy as np

from llmaug.data.example import Example
from llmaug.embedding import shared_encoder
from llmaug.filters.quality import Rejected, rejection

AttributeSet = tuple[str, ...]
FAR = "far from its attributes' examples"  # the rejection reason's kind


def inverse_frequency_weights(sets: list[AttributeSet]) -> dict[AttributeSet, float]:
    """Each distinct set's weight: the mean of 1 / (examples carrying the attribute) over its attributes."""
    frequency = Counter(attribute for attribute_set in sets for attribute in set(attribute_set))
    return {s: sum(1 / frequency[a] for a in s) / len(s) for s in sorted(set(sets))}


def inverse_frequency_sample(sets: list[AttributeSet], count: int, rng: random.Random) -> list[AttributeSet]:
    """`count` attribute sets drawn from the distinct sets among `sets` (one per real example) in proportion to
    `inverse_frequency_weights`: each set gets the whole part of its share, and the draws left over go to sets
    picked at random in proportion to what their shares have left (each at most once). Unlike independent
    draws, this never starves a set whose share is a draw or more: balanced data gives every set the same."""
    weights = inverse_frequency_weights(sets)
    total = sum(weights.values())
    shares = {s: count * w / total for s, w in weights.items()}
    drawn = {s: int(share) for s, share in shares.items()}
    leftover = {s: shares[s] - drawn[s] for s in shares}
    for _ in range(count - sum(drawn.values())):
        pick = rng.choices(list(leftover), weights=list(leftover.values()))[0]
        drawn[pick] += 1
        del leftover[pick]
    return [s for s in weights for _ in range(drawn[s])]


def keep_mask(scores: list[float], groups: list[Hashable], threshold: float | None = None,
              keep_fraction: float | None = None) -> list[bool]:
    """Which scores to keep: at least `threshold`, and within each group the best ceil(`keep_fraction` · n) of
    those (ties keep the earlier one). Neither set: keep all."""
    keep = [threshold is None or s >= threshold for s in scores]
    if keep_fraction is None:
        return keep
    by_group: dict[Hashable, list[int]] = {}
    for i, group in enumerate(groups):
        if keep[i]:
            by_group.setdefault(group, []).append(i)
    keep = [False] * len(scores)
    for members in by_group.values():
        best = sorted(members, key=lambda i: -scores[i])[: math.ceil(keep_fraction * len(members))]
        for i in best:
            keep[i] = True
    return keep


class AttributeSimilarity:
    """Scores texts by how close they are to the real examples of given attributes: per attribute, the unit mean
    of the MiniLM embeddings of the real examples carrying it; a text's score is its mean cosine similarity to
    the centroids of its attributes."""

    def __init__(self, real: list[Example], attributes_of: Callable[[Example], AttributeSet], device: str = "auto"):
        self.device = device
        vectors = shared_encoder(device=device).encode([e.text for e in real])
        carriers: dict[str, list[int]] = {}
        for i, example in enumerate(real):
            for attribute in attributes_of(example):
                carriers.setdefault(attribute, []).append(i)
        self.centroids = {a: _unit(vectors[rows].mean(axis=0)) for a, rows in carriers.items()}

    def scores(self, texts: list[str], attribute_sets: list[AttributeSet]) -> list[float]:
        if not texts:
            return []
        vectors = shared_encoder(device=self.device).encode(texts)
        return [float(np.mean([vector @ self.centroids[a] for a in attribute_set]))
                for vector, attribute_set in zip(vectors, attribute_sets, strict=True)]


class SimilarityDenoiser:
    """Drops generations far from the real examples of their attributes (see `keep_mask` for the rule)."""

    def __init__(self, real: list[Example], attributes_of: Callable[[Example], AttributeSet],
                 threshold: float | None = None, keep_fraction: float | None = 0.5, device: str = "auto"):
        self.attributes_of = attributes_of
        self.threshold = threshold
        self.keep_fraction = keep_fraction
        self.similarity = AttributeSimilarity(real, attributes_of, device)

    def apply(self, candidates: list[Example]) -> tuple[list[Example], list[Rejected], dict]:
        """Kept candidates (in order), rejections with their scores, and a report: counts and mean similarity
        per attribute set, kept and dropped."""
        sets = [self.attributes_of(e) for e in candidates]
        scores = self.similarity.scores([e.text for e in candidates], sets)
        keep = keep_mask(scores, sets, self.threshold, self.keep_fraction)
        kept = [e for e, k in zip(candidates, keep) if k]
        dropped = [rejection(e, f"{FAR} (similarity {s:.3f})") for e, s, k in zip(candidates, scores, keep) if not k]
        return kept, dropped, self._report(sets, scores, keep)

    def _report(self, sets: list[AttributeSet], scores: list[float], keep: list[bool]) -> dict:
        per_set = {}
        for attribute_set in sorted(set(sets)):
            rows = [i for i, s in enumerate(sets) if s == attribute_set]
            kept = [scores[i] for i in rows if keep[i]]
            dropped = [scores[i] for i in rows if not keep[i]]
            per_set["+".join(attribute_set)] = {
                "scored": len(rows), "kept": len(kept),
                "mean_similarity_kept": _mean(kept), "mean_similarity_dropped": _mean(dropped),
            }
        return {"threshold": self.threshold, "keep_fraction": self.keep_fraction, "scored": len(scores),
                "kept": sum(keep), "per_attribute_set": per_set}


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None

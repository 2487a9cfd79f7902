"""`Teacher`: any backend plus cache, batching, bounded concurrency, usage and budget."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from llmaug.teachers.base import Backend, TeacherRequest, TeacherResponse
from llmaug.teachers.cache import ResponseCache
from llmaug.teachers.usage import Budget, Price, Usage

ProgressCallback = Callable[[int, int], None]  # (requests finished, requests in total)

BUDGET_FINISH = "budget"


class Teacher:
    """The LLM that writes data. Build it from a spec string or a backend object.

    >>> teacher = Teacher("embedded")                      # SmolLM2-135M-Instruct from its PyPI package
    >>> teacher = Teacher("openai-compatible:http://127.0.0.1:8000/v1@my-model", cache="cache.sqlite")

    `generate` returns one response per request, in order. Requests are cut into batches of the backend's
    batch size *in request order*, and each batch is cached whole in one transaction (with the other batches that
    finished in the same pass of the event loop), so a rerun after a crash sends exactly the batches whose answers
    were not written, composed as before: sampled outputs are reproducible.
    Requests that the budget does not allow come back with `finish_reason="budget"` and empty text.
    """

    def __init__(
        self,
        backend: Backend | str = "embedded",
        *,
        cache: ResponseCache | str | Path | None = None,
        budget: Budget | None = None,
        price: Price | None = None,
        **backend_options,
    ):
        if isinstance(backend, str):
            from llmaug.teachers.spec import backend_from_spec

            backend = backend_from_spec(backend, **backend_options)
        self.backend = backend
        self.cache = ResponseCache(cache) if isinstance(cache, (str, Path)) else cache
        self.budget = budget or Budget()
        self.price = price
        self.usage = Usage()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reserved = 0  # calls dispatched but not yet counted in usage
        self._unwritten: list[tuple[str, TeacherResponse]] = []  # answers waiting for the next cache write

    @property
    def identity(self) -> str:
        return self.backend.identity

    @property
    def exhausted(self) -> bool:
        return self.budget.calls_left(self.usage) == 0

    def generate(self, requests: list[TeacherRequest], progress: ProgressCallback | None = None) -> list[TeacherResponse]:
        """Synchronous `agenerate`, on one event loop kept for this teacher's lifetime."""
        coroutine = self.agenerate(requests, progress)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(coroutine)
        return _run_in_thread(coroutine)  # called from inside a running loop (e.g. a notebook)

    async def agenerate(self, requests: list[TeacherRequest], progress: ProgressCallback | None = None) -> list[TeacherResponse]:
        keys = [request.cache_key(self.identity) for request in requests]
        results: list[TeacherResponse | None] = [None] * len(requests)
        if self.cache is not None:
            hits = self.cache.get_many(list(dict.fromkeys(keys)))
            for index, key in enumerate(keys):
                if key in hits:
                    results[index] = hits[key]
                    self.usage.cached += 1
        done = sum(r is not None for r in results)
        if progress:
            progress(done, len(requests))
        size = max(1, self.backend.batch_size)
        batches = [list(range(start, min(start + size, len(requests)))) for start in range(0, len(requests), size)]
        pending = [[i for i in batch if results[i] is None] for batch in batches]
        pending = [batch for batch in pending if batch]
        semaphore = asyncio.Semaphore(max(1, self.backend.max_concurrency))

        async def run_batch(batch: list[int]) -> None:
            nonlocal done
            async with semaphore:
                allowed = self._reserve(len(batch))
                sent, skipped = batch[:allowed], batch[allowed:]
                for index in skipped:
                    results[index] = TeacherResponse(text="", finish_reason=BUDGET_FINISH)
                    self.usage.budget_skipped += 1
                if sent:
                    try:
                        responses = await self.backend.generate([requests[i] for i in sent])
                    finally:
                        self._reserved -= len(sent)
                    self._record(sent, keys, responses, results)
                done += len(batch)
                if progress:
                    progress(done, len(requests))

        try:
            await asyncio.gather(*(run_batch(batch) for batch in pending))
        finally:
            self._write_cache()
        self.usage.retries = getattr(self.backend, "retry_count", self.usage.retries)
        return [r if r is not None else TeacherResponse(text="", finish_reason="error") for r in results]

    def _reserve(self, wanted: int) -> int:
        left = self.budget.calls_left(self.usage)
        if left is None:
            self._reserved += wanted
            return wanted
        allowed = max(0, min(wanted, left - self._reserved))
        self._reserved += allowed
        return allowed

    def _record(self, sent: list[int], keys: list[str], responses: list[TeacherResponse], results: list) -> None:
        to_cache = []
        for index, response in zip(sent, responses, strict=True):
            results[index] = response
            self.usage.add(response.prompt_tokens, response.completion_tokens, self.price)
            if response.finish_reason == "error":
                self.usage.failures += 1
            else:
                to_cache.append((keys[index], response))
        if self.cache is not None and to_cache:
            self._cache_soon(to_cache)

    def _cache_soon(self, items: list[tuple[str, TeacherResponse]]) -> None:
        """Write answers at the end of this pass of the event loop, together with every other batch that finished
        in it: one SQLite transaction per answer costs more CPU than its HTTP request at hundreds per second."""
        if not self._unwritten:
            asyncio.get_running_loop().call_soon(self._write_cache)
        self._unwritten.extend(items)

    def _write_cache(self) -> None:
        items, self._unwritten = self._unwritten, []
        if items:
            self.cache.put_many(items)

    def close(self) -> None:
        closer = getattr(self.backend, "aclose", None)
        if closer is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.run_until_complete(closer())
                self._loop.close()
            else:
                asyncio.run(closer())
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> "Teacher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _run_in_thread(coroutine):
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as err:  # re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]

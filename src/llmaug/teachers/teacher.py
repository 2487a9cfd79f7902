"""`Teacher`: any backend plus cache, batching, bounded concurrency, usage and budget."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from llmaug.teachers.base import Backend, TeacherRequest, TeacherResponse, gather_or_cancel
from llmaug.teachers.cache import ResponseCache
from llmaug.teachers.structured import chosen
from llmaug.teachers.usage import Budget, Price, Usage, cost

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

    At most `backend.max_concurrency` batches are dispatched at once, or `backend.max_pending` for backends that
    bound requests in flight themselves and retry with back-off (unless a token budget is set): a request
    sleeping out its back-off then does not keep the next one from being sent.
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

            self.spec = backend
            backend = backend_from_spec(backend, **backend_options)
        else:
            self.spec = backend.identity
        self.backend = backend
        self.cache = ResponseCache(cache) if isinstance(cache, (str, Path)) else cache
        self.budget = budget or Budget()
        self.price = price
        self.usage = Usage()
        if self.cache is not None and hasattr(backend, "keep_state_in"):  # e.g. pending Batch API jobs
            backend.keep_state_in(self.cache.path.parent)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unwritten: list[tuple[str, TeacherResponse]] = []  # answers waiting for the next cache write
        self._closed = False

    @property
    def identity(self) -> str:
        return self.backend.identity

    @property
    def reliable_labels(self) -> bool:
        """Whether the model's labels can be trusted (not the embedded 135M model's: it labels at chance)."""
        return getattr(self.backend, "reliable_labels", True)

    @property
    def exhausted(self) -> bool:
        return self.budget.calls_left(self.usage) == 0

    def check(self) -> str | None:
        """What the backend can check before answering (an HTTP server: its URL, that it serves the model; its
        kind); None for backends with nothing to check."""
        checker = getattr(self.backend, "check", None)
        return self._run(checker()) if checker is not None else None

    def generate(self, requests: list[TeacherRequest], progress: ProgressCallback | None = None) -> list[TeacherResponse]:
        """Synchronous `agenerate`, on one event loop kept for this teacher's lifetime."""
        return self._run(self.agenerate(requests, progress))

    def _run(self, coroutine):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
                self._loop.set_exception_handler(_quiet_about_interrupts)
            return self._loop.run_until_complete(coroutine)
        return _run_in_thread(coroutine)  # called from inside a running loop (e.g. a notebook)

    async def agenerate(self, requests: list[TeacherRequest], progress: ProgressCallback | None = None) -> list[TeacherResponse]:
        keys = [request.cache_key(self.identity) for request in requests]
        results: list[TeacherResponse | None] = [None] * len(requests)
        hits = self.cache.get_many(list(dict.fromkeys(keys))) if self.cache is not None else {}
        allowed = self.budget.calls_left(self.usage)
        for index, key in enumerate(keys):
            if allowed is not None and index >= allowed:  # in request order, cached answers included
                results[index] = self._over_budget()
            elif key in hits:
                hit = results[index] = hits[key]
                self.usage.cached += 1
                self.usage.cached_tokens += hit.prompt_tokens + hit.completion_tokens
                self.usage.cached_cost_usd += cost(hit.prompt_tokens, hit.completion_tokens, self.price)
        done = sum(r is not None for r in results)
        if progress:
            progress(done, len(requests))
        size = max(1, self.backend.batch_size)
        batches = [list(range(start, min(start + size, len(requests)))) for start in range(0, len(requests), size)]
        pending = [[i for i in batch if results[i] is None] for batch in batches]
        pending = [batch for batch in pending if batch]
        semaphore = asyncio.Semaphore(self._dispatch_width())

        async def run_batch(batch: list[int]) -> None:
            nonlocal done
            async with semaphore:
                sent, skipped = (batch, []) if self.budget.spend_left(self.usage) else ([], batch)
                for index in skipped:
                    results[index] = self._over_budget()
                if sent:
                    def report(finished: int) -> None:
                        if progress:
                            progress(done + finished, len(requests))

                    responses = await self._send([requests[i] for i in sent], report)
                    self._record(sent, keys, responses, results)
                done += len(batch)
                if progress:
                    progress(done, len(requests))

        try:
            await gather_or_cancel([run_batch(batch) for batch in pending])
        finally:
            self._write_cache()
            self._copy_retry_counters()
        responses = [r if r is not None else TeacherResponse(text="", finish_reason="error") for r in results]
        self._count_choices(requests, responses)
        return responses

    async def _send(self, requests: list[TeacherRequest], progress: Callable[[int], None]) -> list[TeacherResponse]:
        """One batch to the backend; a backend that works a batch in steps (the Batch API) reports them."""
        if getattr(self.backend, "reports_progress", False):
            return await self.backend.generate(requests, progress=progress)
        return await self.backend.generate(requests)

    def _count_choices(self, requests: list[TeacherRequest], responses: list[TeacherResponse]) -> None:
        """Answers to choice requests, and those naming no choice: the run's unusable-answer rate."""
        for request, response in zip(requests, responses, strict=True):
            if request.choices and response.finish_reason not in (BUDGET_FINISH, "error"):
                self.usage.choice_answers += 1
                self.usage.unusable_choices += chosen(response, request.choices) is None

    def _dispatch_width(self) -> int:
        # Token and dollar budgets only know a call's spend once it returns, so they keep dispatch at the
        # concurrency: with more requests handed over at once they would overshoot by more.
        pending = getattr(self.backend, "max_pending", None)
        if pending is None or self.budget.spend_limited:
            return max(1, self.backend.max_concurrency)
        return max(1, pending)

    def _copy_retry_counters(self) -> None:
        backend = self.backend
        self.usage.retries = getattr(backend, "retry_count", self.usage.retries)
        self.usage.rate_limited = getattr(backend, "rate_limited_count", self.usage.rate_limited)
        self.usage.backoff_seconds = round(getattr(backend, "backoff_total", self.usage.backoff_seconds), 3)
        self.usage.retry_reasons = dict(getattr(backend, "retry_reasons", self.usage.retry_reasons))

    def _over_budget(self) -> TeacherResponse:
        self.usage.budget_skipped += 1
        return TeacherResponse(text="", finish_reason=BUDGET_FINISH)

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
        """Release the backend and the cache; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._cancel_leftover_tasks()
        closer = getattr(self.backend, "aclose", None)
        if closer is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.run_until_complete(closer())
                self._loop.close()
            else:
                asyncio.run(closer())
        if self.cache is not None:
            self.cache.close()

    def _cancel_leftover_tasks(self) -> None:
        """After Ctrl-C stopped `generate` mid-way, its requests are still scheduled on the loop: cancel them
        rather than let them run (and spend) while the backend closes."""
        if self._loop is None or self._loop.is_closed():
            return
        leftover = [task for task in asyncio.all_tasks(self._loop) if not task.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            self._loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))

    def __enter__(self) -> "Teacher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _quiet_about_interrupts(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """Ctrl-C lands in whichever task is running, often one of the HTTP client's own, which nobody awaits: asyncio
    would print its KeyboardInterrupt as a traceback on exit, after the CLI's one-line message."""
    if isinstance(context.get("exception"), (KeyboardInterrupt, asyncio.CancelledError)):
        return
    loop.default_exception_handler(context)


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

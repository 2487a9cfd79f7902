"""A teacher behind an OpenAI-compatible `/chat/completions` endpoint: OpenAI, vLLM, llama.cpp server, Ollama...

Plain aiohttp rather than the openai SDK or httpx: at a few dozen requests in flight the SDK spends most of two
cores on its own bookkeeping, and httpx several times the CPU per request that aiohttp does (bench/results/
throughput_http.md). Transient failures (429, 5xx, timeouts, dropped connections, malformed bodies) are
retried by tenacity with jittered exponential backoff, honouring Retry-After. A 429 also makes every worker
pause until the announced time and halves the number of requests in flight, which then grows back by one per
round of successes (AIMD), so a rate-limited client backs off instead of storming the server.

Failures the user must fix raise `TeacherError` (unreachable server, rejected key, unknown model, a URL path the
server does not have); anything else that outlasts the retries becomes a `finish_reason="error"` response with
the reason in `error`, which the `Teacher` counts and never caches, so one bad request does not end a long run.

Requests with `choices` or a `json_schema` get the structured-output fields of the server's kind (option `server`,
detected from `GET /models` when `auto`; `teachers.structured`), and a JSON choice comes back as the bare label.
With `batch: true` a round's requests go through the OpenAI Batch API instead (`teachers.batch`).

The API key is read from an environment variable and appears only in the Authorization header: never in
identity, messages or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from pydantic import Field

from llmaug.errors import TeacherError
from llmaug.options import Options as OptionsModel
from llmaug.options import validate_options
from llmaug.teachers import structured
from llmaug.teachers.base import TeacherRequest, TeacherResponse, gather_or_cancel
from llmaug.teachers.spec import OPENAI_URL

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
AUTH_STATUSES = frozenset({401, 403})
MAX_RETRY_AFTER = 600.0  # a longer Retry-After is a misconfigured server, not a plan
MAX_ERROR_CHARS = 300
# Requests the Teacher may hand over per slot in flight: the extra ones wait out retry back-offs or the limiter,
# so a few requests sleeping before a retry never leave a slot idle.
PENDING_PER_SLOT = 4
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"  # an environment variable's name, which an API key never looks like
_UNREACHABLE = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
_NOT_RETRYABLE_TRANSPORT = (aiohttp.InvalidURL,)
_TRANSIENT_TRANSPORT = (aiohttp.ClientError, asyncio.TimeoutError)


class TransientFailure(Exception):
    """One attempt failed in a way that another attempt may not. `retry_after` is the server's wish, if any;
    `kind` a short, countable name for the failure ("HTTP 503", "ReadTimeout", "malformed completion")."""

    def __init__(self, reason: str, retry_after: float | None = None, kind: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.kind = kind or reason


class AdaptiveLimiter:
    """Bounds requests in flight (AIMD between 1 and `ceiling`) and holds every worker during a 429 cool-down.

    Waiting requests queue first come, first served; a request that finishes hands its place straight to the
    next one in the queue, so a reply wakes one waiter, never all of them (hundreds at high concurrency).
    """

    def __init__(self, ceiling: int, base_pause: float, max_pause: float):
        self.ceiling = ceiling
        self.limit = float(ceiling)
        self.in_flight = 0  # requests holding a place, including ones handed a place and not yet resumed
        self.cooldown_until = 0.0  # time.monotonic() before which nobody sends
        self._base_pause = base_pause
        self._max_pause = max_pause
        self._pause = base_pause  # cool-down for a 429 that names no Retry-After; doubles per burst
        self._next_decrease = 0.0  # a burst of 429s from requests already in flight halves the limit once
        self._waiting: deque[asyncio.Future] = deque()

    def slot(self) -> "_Place":
        """`async with limiter.slot():` holds a place for one request."""
        return _Place(self)

    async def _acquire(self) -> None:
        await self._sleep_through_cooldown()
        if not self._waiting and self.in_flight < max(1, int(self.limit)):
            self.in_flight += 1
            return
        place = asyncio.get_running_loop().create_future()
        self._waiting.append(place)
        try:
            await place  # resolved by `_release`, which has counted this request in `in_flight`
            await self._sleep_through_cooldown()  # a 429 may have come in since
        except asyncio.CancelledError:
            if place.done() and not place.cancelled():
                self._release()  # it had been handed a place: pass it on
            elif place in self._waiting:  # (a release may have dropped it already, seeing it cancelled)
                self._waiting.remove(place)
            raise

    def _release(self) -> None:
        self.in_flight -= 1
        while self._waiting and self.in_flight < max(1, int(self.limit)):
            place = self._waiting.popleft()
            if not place.done():
                self.in_flight += 1
                place.set_result(None)

    async def _sleep_through_cooldown(self) -> None:
        while (pause := self.cooldown_until - time.monotonic()) > 0:
            await asyncio.sleep(pause)

    def rate_limited(self, retry_after: float | None) -> float:
        """Start (or extend) the shared cool-down; returns its length."""
        now = time.monotonic()
        pause = retry_after if retry_after is not None else self._pause
        self.cooldown_until = max(self.cooldown_until, now + pause)
        if now >= self._next_decrease:
            self.limit = max(1.0, self.limit / 2)
            self._pause = min(self._max_pause, self._pause * 2)
            self._next_decrease = self.cooldown_until
        return pause

    def succeeded(self) -> None:
        self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)
        self._pause = self._base_pause


class _Place:
    """A place in the limiter for one request (a plain class: a generator-based context manager costs more)."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: AdaptiveLimiter):
        self._limiter = limiter

    async def __aenter__(self) -> None:
        await self._limiter._acquire()

    async def __aexit__(self, *exc) -> None:
        self._limiter._release()


class OpenAICompatibleBackend:
    batch_size = 1

    class Options(OptionsModel):
        api_key_env: str = Field(
            "OPENAI_API_KEY", pattern=ENV_NAME,
            description="the environment variable holding the API key (the key itself is never stored)")
        concurrency: int = Field(16, ge=1, le=4096, description="requests in flight at most")
        timeout: float = Field(60.0, gt=0, description="seconds before a request times out (and is retried)")
        max_retries: int = Field(6, ge=0, le=100, description="retries of a failed request")
        max_tokens_field: str = Field("max_tokens", description="the request field for the token limit (newer OpenAI models: max_completion_tokens)")
        backoff: float = Field(0.5, gt=0, description="base of the exponential back-off between retries, seconds")
        max_backoff: float = Field(30.0, gt=0, description="longest back-off between retries, seconds")
        server: Literal["auto", "openai", "vllm", "llama.cpp", "ollama", "generic"] = Field(
            "auto", description="the server kind, for structured output (auto: detected from GET /models)")
        batch: bool = Field(False, description="send each round's requests through the Batch API (/files + /batches; ~50% cheaper on OpenAI)")
        batch_poll: float = Field(10.0, gt=0, description="seconds between two looks at a pending batch")

    def __init__(self, base_url: str, model: str, **options):
        kind = "openai" if base_url.rstrip("/") == OPENAI_URL else "openai-compatible"
        opts = validate_options(self.Options, options, f"teacher {kind!r}")
        self.options = opts
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = opts.api_key_env
        self.identity = f"openai-compatible:{self.base_url}@{model}"
        self.max_concurrency = opts.concurrency
        self.max_pending = PENDING_PER_SLOT * opts.concurrency
        self.timeout = opts.timeout
        self.max_retries = opts.max_retries
        self.max_tokens_field = opts.max_tokens_field
        self.backoff = opts.backoff
        self.max_backoff = opts.max_backoff
        self._jitter = wait_random_exponential(multiplier=opts.backoff, max=opts.max_backoff)
        self.retry_count = 0
        self.retry_reasons: Counter[str] = Counter()
        self.failure_kinds: Counter[str] = Counter()  # requests that failed after every retry, by what they met
        self.rate_limited_count = 0
        self.backoff_total = 0.0  # seconds slept before retries, all requests together
        self.backoff_waits: deque[float] = deque(maxlen=1000)  # seconds slept before each retry, newest last
        self._api_key = os.environ.get(opts.api_key_env) or None
        self.server_kind: str | None = opts.server if opts.server != "auto" else ("openai" if kind == "openai" else None)
        self._detecting: asyncio.Lock | None = None
        self.batch = None
        if opts.batch:
            from llmaug.teachers.batch import BatchClient

            self.batch = BatchClient(self, opts.batch_poll)
            self.batch_size = self.batch.max_requests  # a round's requests form one batch; one batch at a time
            self.max_concurrency = 1
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None
        self._limiter: AdaptiveLimiter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def reports_progress(self) -> bool:
        return self.batch is not None

    def keep_state_in(self, folder) -> None:
        """Record pending batches in `folder` (the run directory), so that a resumed run picks them up."""
        if self.batch is not None:
            self.batch.ledger_dir = folder

    def __repr__(self) -> str:
        return f"OpenAICompatibleBackend({self.identity!r}, concurrency={self.max_concurrency})"

    @property
    def limiter(self) -> AdaptiveLimiter | None:
        """The limiter of the event loop used last (None before the first request)."""
        return self._limiter

    async def generate(self, requests: list[TeacherRequest], progress=None) -> list[TeacherResponse]:
        if self.batch is not None:
            self._bind_to_running_loop()
            return await self.batch.run(requests, progress)
        if len(requests) == 1:  # the Teacher's usual call (batch size 1): no task to spawn
            return [await self._generate_one(requests[0])]
        return await gather_or_cancel([self._generate_one(request) for request in requests])

    async def aclose(self) -> None:
        if self._loop is asyncio.get_running_loop() and self._session is not None:
            await self._session.close()
        self._session, self._loop = None, None  # the limiter stays readable for reports

    # ----- one request -----

    async def _generate_one(self, request: TeacherRequest) -> TeacherResponse:
        self._bind_to_running_loop()
        body = await self.request_body(request)
        try:
            return await self._attempt(body, request)  # most requests succeed at once: no retry machinery for them
        except TransientFailure as failure:
            first_failure = failure
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(TransientFailure),
            before_sleep=self._note_retry,
            reraise=True,
        )
        replayed = [first_failure]

        async def attempt(body: dict) -> TeacherResponse:
            if replayed:  # tenacity's attempt 1 is the one already made: it waits and counts as before
                raise replayed.pop()
            return await self._attempt(body, request)

        try:
            return await retrying(attempt, body)
        except TransientFailure as failure:
            if isinstance(failure.__cause__, _UNREACHABLE):
                raise TeacherError(f"cannot reach the teacher at {self.base_url}: {failure.reason}") from None
            self._note_failure(failure)
            return TeacherResponse(text="", finish_reason="error", error=f"{failure.reason} (after {self.max_retries + 1} attempts)")

    async def _attempt(self, body: dict, request: TeacherRequest) -> TeacherResponse:
        async with self._limiter.slot():
            try:
                async with self._session.post(f"{self.base_url}/chat/completions", json=body, proxy=self._proxy) as raw:
                    response = _Reply(raw.status, raw.reason or "", raw.headers, await raw.read())
            except _NOT_RETRYABLE_TRANSPORT as err:
                raise TeacherError(f"cannot talk to the teacher at {self.base_url}: {err}") from None
            except _TRANSIENT_TRANSPORT as err:
                raise TransientFailure(f"{type(err).__name__}: {str(err) or 'no detail'}", kind=type(err).__name__) from err
            if response.status_code != 200:
                self._raise_for_status(response)  # inside the slot: a 429's cool-down starts before it frees
        parsed = self.parse_completion(response.json_or_none(), request)
        self._limiter.succeeded()
        return parsed

    def _raise_for_status(self, response: _Reply) -> None:
        status = response.status_code
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        if status == 429 or (status == 503 and retry_after is not None):
            self.rate_limited_count += 1
            pause = self._limiter.rate_limited(retry_after)
            raise TransientFailure(f"HTTP {status} (pausing all requests {pause:.2f}s)", retry_after, f"HTTP {status}")
        if status in RETRY_STATUSES or status >= 500:
            raise TransientFailure(f"HTTP {status}: {self._server_message(response)}", retry_after, f"HTTP {status}")
        if status in AUTH_STATUSES:
            raise TeacherError(
                f"the teacher at {self.base_url} rejected the API key (HTTP {status}); check ${self.api_key_env}"
            )
        message = self._server_message(response)
        if status == 404 and not _names_a_model(response, self.model):
            raise TeacherError(self.missing_path(f"POST {self.base_url}/chat/completions", message))
        raise TeacherError(
            f"the teacher at {self.base_url} rejected the request for model {self.model!r} (HTTP {status}): {message}"
        )

    def missing_path(self, tried: str, message: str = "") -> str:
        """An HTTP 404 for a path: the URL is wrong, not the model; a URL without /v1 gets a hint."""
        hint = ""
        if not urlsplit(self.base_url).path.rstrip("/").endswith("/v1"):
            hint = f"; OpenAI-compatible servers serve under /v1: did you mean {self.base_url}/v1?"
        detail = f" ({message})" if message else ""
        return f"the teacher server has no {tried} (HTTP 404{detail}){hint}"

    def parse_completion(self, data: object, request: TeacherRequest) -> TeacherResponse:
        """A chat completion body as a response; a JSON choice becomes the bare label. Malformed: transient."""
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as err:
            raise TransientFailure(f"malformed completion ({type(err).__name__}: {err})", kind="malformed completion") from err
        if not isinstance(text, str):
            raise TransientFailure(f"malformed completion (content is {type(text).__name__})", kind="malformed completion")
        prompt_tokens, completion_tokens = _usage_tokens(data.get("usage"))
        finish = str(choice.get("finish_reason") or "stop")
        if request.choices and (label := structured.exact_choice(text, request.choices)) is not None:
            text, finish = label, "choice"
        return TeacherResponse(text=text, finish_reason=finish, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    async def request_body(self, request: TeacherRequest) -> dict:
        """The chat-completion body for `request`, with the structured-output fields of the server's kind."""
        body = self._body(request)
        if request.choices or request.json_schema is not None:
            kind = await self.detect_server()
            if request.choices:
                body.update(structured.choice_fields(kind, request.choices))
            else:
                body.update(structured.schema_fields(kind, request.json_schema))
        return body

    async def detect_server(self) -> str:
        """The server kind: the `server` option, else detected once from GET /models and its headers."""
        if self.server_kind is None:
            self._bind_to_running_loop()
            async with self._detecting:
                if self.server_kind is None:
                    status, headers, payload = await self.get_json("models")
                    self.server_kind = structured.detect_server(self.base_url, payload, headers) if status == 200 else "generic"
        return self.server_kind

    async def get_json(self, path: str) -> tuple[int, Mapping[str, str], object]:
        """GET base_url/path: status, headers and the JSON body (None if not JSON); status 0 when unreachable."""
        self._bind_to_running_loop()
        try:
            async with self._session.get(f"{self.base_url}/{path}", proxy=self._proxy) as raw:
                reply = _Reply(raw.status, raw.reason or "", raw.headers, await raw.read())
        except _TRANSIENT_TRANSPORT:
            return 0, {}, None
        return reply.status_code, reply.headers, reply.json_or_none()

    async def check(self) -> str:
        """Check the URL and the model before any completion: the model must be among those GET /models lists
        (when the server lists any). Returns the server kind."""
        status, headers, payload = await self.get_json("models")
        if status == 404:
            raise TeacherError(self.missing_path(f"GET {self.base_url}/models"))
        if status in AUTH_STATUSES:
            raise TeacherError(f"the teacher at {self.base_url} rejected the API key (HTTP {status}); check ${self.api_key_env}")
        served = structured.model_ids(payload) if status == 200 else None
        if served is not None and self.model not in served:
            shown = ", ".join(served[:10]) + (" ..." if len(served) > 10 else "")
            raise TeacherError(f"the teacher at {self.base_url} does not serve model {self.model!r}; it serves: {shown}")
        if self.server_kind is None:
            self.server_kind = structured.detect_server(self.base_url, payload, headers) if status == 200 else "generic"
        return self.server_kind

    def _body(self, request: TeacherRequest) -> dict:
        params = request.params
        body = {
            "model": self.model,
            "messages": [message.model_dump() for message in request.messages],
            "temperature": params.temperature,
            "top_p": params.top_p,
            self.max_tokens_field: params.max_tokens,
            "seed": sample_seed(params.seed, request.sample_index),
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.repetition_penalty != 1.0:
            body["repetition_penalty"] = params.repetition_penalty  # vLLM extension; OpenAI rejects it, so only if set
        return body

    def _note_failure(self, failure: TransientFailure) -> None:
        """A warning for the first failure of each kind; the Teacher counts them all (and the run may stop)."""
        first = failure.kind not in self.failure_kinds
        self.failure_kinds[failure.kind] += 1
        log.log(logging.WARNING if first else logging.DEBUG, "teacher request failed after %d attempts: %s%s",
                self.max_retries + 1, failure.reason, " (further failures like it are counted, not shown)" if first else "")

    # ----- retry policy -----

    def _wait(self, state: RetryCallState) -> float:
        """Full-jitter exponential backoff, never shorter than the server's Retry-After."""
        jittered = self._jitter(state)
        failure = state.outcome.exception() if state.outcome else None
        retry_after = getattr(failure, "retry_after", None)
        return max(jittered, retry_after) if retry_after is not None else jittered

    def _note_retry(self, state: RetryCallState) -> None:
        self.retry_count += 1
        wait = state.next_action.sleep if state.next_action else 0.0
        self.backoff_waits.append(wait)
        self.backoff_total += wait
        failure = state.outcome.exception() if state.outcome else None
        self.retry_reasons[getattr(failure, "kind", type(failure).__name__)] += 1
        log.debug("retrying a teacher request in %.2fs after %s", wait, getattr(failure, "reason", failure))

    # ----- plumbing -----

    def _bind_to_running_loop(self) -> None:
        """HTTP sessions and asyncio conditions belong to one event loop; make them for the one running now."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self._detecting = asyncio.Lock()
        self._limiter = AdaptiveLimiter(self.max_concurrency, self.backoff, self.max_backoff)
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._proxy = _environment_proxy(self.base_url)
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=self.max_concurrency, limit_per_host=0),
        )

    def _server_message(self, response: _Reply) -> str:
        try:
            data = response.json()
        except ValueError:
            data = None
        message = _error_message(data) if isinstance(data, dict) else None
        return self._redact(_shorten(message or response.text or response.reason_phrase))

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


@dataclass(frozen=True)
class _Reply:
    """An HTTP response read whole: what the parsing and error reporting need of it."""

    status_code: int
    reason_phrase: str
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)

    def json_or_none(self):
        try:
            return self.json()
        except ValueError:
            return None


def _environment_proxy(url: str) -> str | None:
    """The proxy that HTTP(S)_PROXY / NO_PROXY name for `url`, looked up once per session: aiohttp's own
    `trust_env` looks it up, and reads ~/.netrc, in a worker thread on every request."""
    parts = urlsplit(url)
    if parts.hostname and proxy_bypass_environment(parts.hostname):
        return None
    return getproxies_environment().get(parts.scheme)


def sample_seed(seed: int, sample_index: int) -> int:
    """The seed sent for one sample: the run seed for sample 0, a stable mix for the others, so repeated
    samples of a prompt differ on servers that honour `seed` and stay reproducible across reruns."""
    if sample_index == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def _error_message(data: dict) -> str | None:
    """OpenAI nests the message under "error"; vLLM and others put it at the top level."""
    error = data.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    message = error or data.get("message")
    return str(message) if message else None


def _names_a_model(response: _Reply, model: str) -> bool:
    """Whether a 404 is about the model (OpenAI: code model_not_found; others name it) rather than the path."""
    data = response.json_or_none()
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code == "model_not_found" or model in response.text


def _usage_tokens(usage: object) -> tuple[int, int]:
    if not isinstance(usage, dict):
        return 0, 0
    try:
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (TypeError, ValueError):
        return 0, 0


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    if math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"

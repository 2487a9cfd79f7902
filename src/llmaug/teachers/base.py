"""The teacher contract: chat requests in, text responses out.

A *backend* only knows how to talk to its model (`EmbeddedBackend`, `OpenAICompatibleBackend`, ...). The
`Teacher` wraps any backend with what every backend needs: the per-request cache, batching, usage accounting
and the budget. Methods only ever see `Teacher.generate`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Coroutine
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class GenerationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.8, ge=0.0, le=5.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(128, ge=1, le=32768)
    seed: int = 0
    stop: tuple[str, ...] = ()
    repetition_penalty: float = Field(1.0, gt=0.0)


class RequestTarget(BaseModel):
    """What a request asks the teacher to write, stated for backends that do not read prompts (the oracle
    `PoolBackend`): the label of the new example and the example it should resemble. It restates the prompt and
    never changes it, so it is left out of the cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str | None = None
    like: str | None = None  # the example the request is about (its first text for pairs)
    like_pair: str | None = None  # that example's second text, for sentence-pair tasks
    ask: Literal["similar", "diverse", "boundary"] = "similar"  # like it, unlike the data of its label, or near `confused_with`
    confused_with: str | None = None  # the label the student gave the example, or came closest to


class TeacherRequest(BaseModel):
    """One generation. `sample_index` tells repeated samples of one prompt apart (and keys them in the cache).

    `choices`, when set, asks for exactly one of these strings back: backends that can constrain decoding do
    so (the embedded backend scores each choice; llama.cpp uses a grammar; HTTP servers get their own kind of
    structured output, `teachers.structured`); others generate freely and the caller maps the text onto the
    choices (`structured.chosen`). `json_schema`, when set, asks for a JSON answer under this schema (several
    examples in one answer), which servers that support it enforce; the prompt asks for the same shape, so a
    backend that cannot enforce it still gets a readable answer. `target` optionally restates what the prompt
    asks for.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: tuple[Message, ...]
    params: GenerationParams = GenerationParams()
    sample_index: int = 0
    choices: tuple[str, ...] | None = None
    json_schema: dict | None = None
    target: RequestTarget | None = None

    @classmethod
    def chat(cls, messages: list[dict] | list[Message], **kwargs) -> "TeacherRequest":
        return cls(messages=tuple(m if isinstance(m, Message) else Message(**m) for m in messages), **kwargs)

    def cache_key(self, backend_identity: str) -> str:
        # A request without a schema keeps the key it had before the field existed (caches stay valid).
        leave_out = {"target"} if self.json_schema is not None else {"target", "json_schema"}
        payload = {"backend": backend_identity, **self.model_dump(mode="json", exclude=leave_out)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class TeacherResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    finish_reason: str = "stop"  # stop | length | choice | error
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None  # why a request failed (finish_reason "error"): what the run's stop message names


@runtime_checkable
class Backend(Protocol):
    """What a model backend implements. `identity` names backend + model for the cache key and provenance."""

    identity: str
    batch_size: int  # how many requests one `generate` call should carry (1 for per-request HTTP)
    max_concurrency: int  # how many `generate` calls may run at once

    async def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]: ...

    async def aclose(self) -> None: ...


T = TypeVar("T")


async def gather_or_cancel(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """The coroutines' results in order. When one fails (or the caller is cancelled) the others are cancelled and
    awaited before its error propagates (an `asyncio.TaskGroup`), so no request is left running, unseen, on the
    event loop; the first error is raised as it is, not wrapped in an exception group."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]

"""Token and call accounting, cost from an optional price table, and the run's budget."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Price(BaseModel):
    """US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid")

    prompt: float = Field(0.0, ge=0)
    completion: float = Field(0.0, ge=0)


class Usage(BaseModel):
    calls: int = 0  # requests sent to the backend (cache misses)
    cached: int = 0  # requests answered from the cache
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt + completion tokens of the answers that came from the cache (free)
    retries: int = 0  # attempts repeated after a transient failure
    retry_reasons: dict[str, int] = Field(default_factory=dict)  # what the repeated attempts met, e.g. "HTTP 503"
    rate_limited: int = 0  # 429 answers (each paused every request, then halved the requests in flight)
    backoff_seconds: float = 0.0  # time requests spent waiting before their retries, summed
    failures: int = 0  # requests that still failed after every retry (never cached; the run goes on)
    budget_skipped: int = 0  # requests not sent because the budget was spent
    cost_usd: float = 0.0

    def add(self, prompt_tokens: int, completion_tokens: int, price: Price | None) -> None:
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        if price is not None:
            self.cost_usd += (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1e6

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def minus(self, earlier: "Usage") -> "Usage":
        """The usage between a snapshot `earlier` and now (per-round figures)."""
        return Usage(**{name: _minus(getattr(self, name), getattr(earlier, name)) for name in Usage.model_fields})


def _minus(now, before):
    if isinstance(now, dict):
        return {key: now[key] - before.get(key, 0) for key in now if now[key] != before.get(key, 0)}
    return now - before


class Budget(BaseModel):
    """A run's teacher budget. It counts requests *answered*, from the cache or by a call, and their tokens, so a
    resumed or repeated run stops exactly where the first one did instead of buying a second budget's worth."""

    max_calls: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)

    def calls_left(self, usage: Usage) -> int | None:
        """How many more requests may be answered; None means unlimited."""
        limits = []
        if self.max_calls is not None:
            limits.append(self.max_calls - usage.calls - usage.cached)
        if not self.tokens_left(usage):
            limits.append(0)
        return max(0, min(limits)) if limits else None

    def tokens_left(self, usage: Usage) -> bool:
        return self.max_tokens is None or usage.total_tokens + usage.cached_tokens < self.max_tokens

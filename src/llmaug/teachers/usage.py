"""Token and call accounting, cost from an optional price, and the run's budget (requests, tokens, dollars)."""

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
    cached_cost_usd: float = 0.0  # what the answers that came from the cache cost when they were bought
    choice_answers: int = 0  # answers to requests that ask for one of a set of labels (relabelling, verification)
    unusable_choices: int = 0  # of those, answers that name none of the labels (or several)

    def add(self, prompt_tokens: int, completion_tokens: int, price: Price | None) -> None:
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost_usd += cost(prompt_tokens, completion_tokens, price)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def answered(self) -> int:
        """Requests answered, by a call or from the cache."""
        return self.calls + self.cached

    def minus(self, earlier: "Usage") -> "Usage":
        """The usage between a snapshot `earlier` and now (per-round figures)."""
        return Usage(**{name: _minus(getattr(self, name), getattr(earlier, name)) for name in Usage.model_fields})


def _minus(now, before):
    if isinstance(now, dict):
        return {key: now[key] - before.get(key, 0) for key in now if now[key] != before.get(key, 0)}
    return now - before


BUDGET_STOP = "teacher budget reached"  # the stop reason summary.json, the report and the review app show


def cost(prompt_tokens: int, completion_tokens: int, price: Price | None) -> float:
    return (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1e6 if price is not None else 0.0


class Budget(BaseModel):
    """A run's teacher budget. It counts requests *answered*, from the cache or by a call, and their tokens and
    cost, so a resumed or repeated run stops exactly where the first one did instead of buying a second budget's
    worth. Tokens and dollars are known only once an answer is back: those budgets stop the requests after the
    one that reached them."""

    max_calls: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)
    max_cost: float | None = Field(None, ge=0)  # US dollars; needs a price

    @property
    def limited(self) -> bool:
        return any(limit is not None for limit in (self.max_calls, self.max_tokens, self.max_cost))

    @property
    def spend_limited(self) -> bool:
        """Whether a limit is known only after the answers (tokens, dollars)."""
        return self.max_tokens is not None or self.max_cost is not None

    def calls_left(self, usage: Usage) -> int | None:
        """How many more requests may be answered; None means unlimited."""
        limits = []
        if self.max_calls is not None:
            limits.append(self.max_calls - usage.answered)
        if not self.spend_left(usage):
            limits.append(0)
        return max(0, min(limits)) if limits else None

    def spend_left(self, usage: Usage) -> bool:
        """Whether tokens and dollars are left."""
        tokens_left = self.max_tokens is None or usage.total_tokens + usage.cached_tokens < self.max_tokens
        dollars_left = self.max_cost is None or usage.cost_usd + usage.cached_cost_usd < self.max_cost
        return tokens_left and dollars_left

    def stop(self, usage: Usage) -> dict | None:
        """Why the budget stopped the run, in the shape summary.json and the review app use, or None if it did
        not: {"reason": "teacher budget reached", "detail": "N of M requests (LIMIT)"}, M being the requests asked."""
        if not usage.budget_skipped:
            return None
        limits = []
        if self.max_calls is not None:
            limits.append(f"max_teacher_calls {self.max_calls}")
        if self.max_tokens is not None:
            limits.append(f"max_tokens_budget {self.max_tokens:,}: {usage.total_tokens + usage.cached_tokens:,} used")
        if self.max_cost is not None:
            limits.append(f"max_cost ${self.max_cost:g}: ${usage.cost_usd + usage.cached_cost_usd:.4f} spent")
        asked = usage.answered + usage.budget_skipped
        return {"reason": BUDGET_STOP,
                "detail": f"{usage.answered} of {asked} requests" + (f" ({'; '.join(limits)})" if limits else "")}

"""`llmaug plan` (and `llmaug run --dry-run`): what a run will ask of its teacher, before anything is spent.

The method's own `algorithm` runs against a *planning context* that records every request instead of sending it
and answers with placeholders, so the plan can never drift from what the method really asks. No method has
planning code of its own. Counts that depend on the run's course are bounded by replaying it twice with every
seed judged wrong in every round: once with every answer usable (the most follow-up requests, e.g. PromptMix's
relabelling) and once with none (the most retries, e.g. LLM2LLM's `max_attempts`); per round and stage the larger
count is the bound. A stage whose count is the same when no seed is wrong and whatever the answers is exact.

Tokens: prompts are rendered for this seed set and counted with the teacher's own tokenizer where there is one
(the embedded model's; tiktoken for OpenAI models, when its encodings load), else estimated at 4 characters per
token (a `--probe` then calibrates the estimate against the server's own counts). Completion tokens are bounded
by each request's `max_tokens`. Cost comes from the price table (`teachers/prices.yaml`, the config's `price:` or
`price_file:`).

`--probe N` makes N real teacher calls spread over the stages and trains the student once on the seeds (its
held-out errors, as round 0 would find them). The *expected* figures then replay the run with those errors (the
same seeds assumed wrong in every round), the probe's share of usable examples per requested one, its completion
tokens per stage, and its latency for the wall time.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmaug.candidates import Ask, candidates
from llmaug.config import RunConfig
from llmaug.data.example import Example, Provenance
from llmaug.errors import UserError
from llmaug.evaluation import ErrorCase, Evaluation
from llmaug.evaluation.trainer import HeldOut
from llmaug.methods.base import Method, TaskInfo
from llmaug.students.metrics import score
from llmaug.teachers.base import TeacherRequest, TeacherResponse
from llmaug.teachers.usage import Price

CHARS_PER_TOKEN = 4.0
PLACEHOLDER = "planned"


class LocalWork(Exception):
    """The method went on to work of its own (MSP trains its generator): no more teacher requests follow."""


@dataclass
class Recorded:
    round: int
    stage: str
    request: TeacherRequest
    ask: Ask | None = None  # for requests that make examples


class PlanContext:
    """A `methods.base.Context` that records requests instead of sending them.

    `wrong(pool)` says which pool examples the student gets wrong; `yields(ask)` how many usable examples an ask's
    answer gives. Nothing is trained, filtered or written."""

    def __init__(self, task: TaskInfo, seed: int, teacher_identity: str, method_name: str,
                 wrong: Callable[[list[Example], list[Example]], list[Example]], yields: Callable[[Ask], int]):
        self.task = task
        self.seed = seed
        self.teacher_identity = teacher_identity
        self.method_name = method_name
        self.recorded: list[Recorded] = []
        self.local_work = False
        self._wrong = wrong
        self._yields = yields
        self._round = 0
        self._made = 0

    @property
    def out_of_budget(self) -> bool:
        return False

    @property
    def stalled(self) -> bool:
        return False

    def generate(self, requests: list[TeacherRequest], stage: str) -> list[TeacherResponse]:
        self.recorded += [Recorded(self._round, stage, request) for request in requests]
        return [_placeholder_answer(request) for request in requests]

    def generate_examples(self, asks: list[Ask], round: int, existing: list[Example], stage: str):
        self.recorded += [Recorded(self._round, stage, ask.request, ask) for ask in asks]
        return [example for ask in asks for example in self._examples(ask, round)], []

    def _examples(self, ask: Ask, round: int) -> list[Example]:
        made = []
        for item in range(self._yields(ask)):
            self._made += 1
            provenance = Provenance(origin="synthetic", method=self.method_name, round=round,
                                    parent_ids=[p.id for p in ask.parents], teacher=self.teacher_identity, prompt=ask.prompt,
                                    sample_index=ask.request.sample_index, item_index=item if ask.count > 1 else None)
            text = f"{PLACEHOLDER} {self._made}"
            pair = f"{PLACEHOLDER} pair {self._made}" if any(p.text_pair for p in ask.parents) else None
            answer = f"{PLACEHOLDER} #### 0" if ask.label is None else None
            made.append(Example.create(text, ask.label, text_pair=pair, answer=answer, provenance=provenance))
        return made

    def filter(self, candidates, existing, instructions=None):
        return list(candidates), []

    @contextlib.contextmanager
    def progress(self, stage: str, total: int | None):
        self.local_work = True
        raise LocalWork(stage)
        yield  # pragma: no cover

    def artifact_dir(self, name: str) -> Path | None:
        return None

    def train_and_evaluate(self, data, round, pool, held_out_errors=False) -> Evaluation:
        """The student's judgement as this pass assumes it: the seeds `wrong` names are wrong, held out too."""
        wrong = self._wrong(data, pool)
        cases = [ErrorCase(example, _another_label(example, self.task.labels)) for example in wrong]
        guesses = {case.example.id: case.predicted for case in cases}
        gold = [e.label or "" for e in pool]
        predicted = [guesses.get(e.id, e.label or "") for e in pool]
        seeds = [e for e in pool if e.is_seed and e.label is not None]
        held_out = HeldOut(predicted={e.id: guesses.get(e.id, e.label) for e in seeds},
                           correct={e.id: e.id not in guesses for e in seeds},
                           margin={e.id: -1.0 if e.id in guesses else 1.0 for e in seeds},
                           rival={e.id: _another_label(e, self.task.labels) for e in seeds})
        return Evaluation(round=round, train_size=len(data), pool=score(gold, predicted), errors=cases, held_out=held_out)

    def end_round(self, round, data, added, rejected, evaluation) -> None:
        self._round = round + 1

    def save_json(self, name: str, payload) -> None:
        pass

    def status(self, stage: str):
        return contextlib.nullcontext(lambda done: None)


def _placeholder_answer(request: TeacherRequest) -> TeacherResponse:
    if request.choices:
        return TeacherResponse(text=request.choices[0], finish_reason="choice")
    return TeacherResponse(text=f"1. {PLACEHOLDER} answer")


def _another_label(example: Example, labels: list[str]) -> str:
    return next((label for label in labels if label != example.label), "")


def replay(method: Method, seed: list[Example], task: TaskInfo, random_seed: int, teacher_identity: str,
           wrong, yields) -> PlanContext:
    """Run `method` against a planning context; a method that gives up on placeholder data (too few examples of
    some label) or turns to local work ends its replay there, with what it asked so far."""
    ctx = PlanContext(task, random_seed, teacher_identity, method.name, wrong, yields)
    with contextlib.suppress(LocalWork, UserError):
        method.algorithm(seed, ctx)
    return ctx


def all_seeds_wrong(data, pool) -> list[Example]:
    return [e for e in pool if e.is_seed]


def no_seed_wrong(data, pool) -> list[Example]:
    return []


def every_item(ask: Ask) -> int:
    return ask.count


def no_item(ask: Ask) -> int:
    return 0


# ------------------------------------------------------------------------------------------- counting


@dataclass
class StageRow:
    round: int
    stage: str
    requests: int
    exact: bool
    prompt_tokens: int
    completion_bound: int
    expected_requests: float | None = None
    expected_prompt_tokens: float | None = None
    expected_completion: float | None = None


@dataclass
class Plan:
    method: str
    teacher: str
    rows: list[StageRow]
    tokenizer: str
    price: Price | None
    price_source: str
    notes: list[str] = field(default_factory=list)
    probe: dict | None = None  # what the probe measured
    wall_seconds: float | None = None  # expected wall time of the teacher's requests

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.rows)

    @property
    def exact(self) -> bool:
        return all(r.exact for r in self.rows)

    @property
    def prompt_tokens(self) -> int:
        return sum(r.prompt_tokens for r in self.rows)

    @property
    def completion_bound(self) -> int:
        return sum(r.completion_bound for r in self.rows)

    def cost_bound(self) -> float | None:
        return _cost(self.prompt_tokens, self.completion_bound, self.price)

    def expected(self, name: str) -> float | None:
        values = [getattr(r, name) for r in self.rows]
        return sum(values) if values and all(v is not None for v in values) else None

    def expected_cost(self) -> float | None:
        prompt, completion = self.expected("expected_prompt_tokens"), self.expected("expected_completion")
        return _cost(prompt, completion, self.price) if prompt is not None and completion is not None else None

    def to_dict(self) -> dict:
        return {
            "method": self.method, "teacher": self.teacher, "tokenizer": self.tokenizer,
            "price": self.price.model_dump() if self.price else None, "price_source": self.price_source,
            "rows": [r.__dict__ for r in self.rows],
            "total": {"requests": self.requests, "exact": self.exact, "prompt_tokens": self.prompt_tokens,
                      "completion_bound": self.completion_bound, "cost_bound": self.cost_bound(),
                      "expected_requests": self.expected("expected_requests"),
                      "expected_prompt_tokens": self.expected("expected_prompt_tokens"),
                      "expected_completion": self.expected("expected_completion"), "expected_cost": self.expected_cost(),
                      "wall_seconds": self.wall_seconds},
            "probe": self.probe, "notes": self.notes,
        }


def _cost(prompt: float, completion: float, price: Price | None) -> float | None:
    return (prompt * price.prompt + completion * price.completion) / 1e6 if price is not None else None


def _by_stage(ctx: PlanContext) -> dict[tuple[int, str], list[Recorded]]:
    grouped: dict[tuple[int, str], list[Recorded]] = defaultdict(list)
    for recorded in ctx.recorded:
        grouped[(recorded.round, recorded.stage)].append(recorded)
    return grouped


def _stage_rows(passes: list[PlanContext], exactness: list[PlanContext], count: Callable[[TeacherRequest], int]) -> list[StageRow]:
    """Per (round, stage): the largest request count of the bounding passes; exact when every pass, the
    no-error one included, asks the same."""
    grouped = [_by_stage(ctx) for ctx in passes]
    others = [_by_stage(ctx) for ctx in exactness]
    keys = sorted({key for g in grouped for key in g}, key=lambda key: (key[0], _first_seen(passes, key)))
    rows = []
    for key in keys:
        biggest = max((g.get(key, []) for g in grouped), key=len)
        counts = {len(g.get(key, [])) for g in grouped + others}
        rows.append(StageRow(key[0], key[1], len(biggest), len(counts) == 1,
                             sum(count(r.request) for r in biggest), sum(r.request.params.max_tokens for r in biggest)))
    return rows


def _first_seen(passes: list[PlanContext], key: tuple[int, str]) -> int:
    return min((i for ctx in passes for i, r in enumerate(ctx.recorded) if (r.round, r.stage) == key), default=0)


# ------------------------------------------------------------------------------------------- tokens


class TokenCounter:
    """Prompt tokens of a request: the teacher's tokenizer where there is one, else characters / 4."""

    def __init__(self, teacher_kind: str, model: str, backend_options: dict):
        self.name = f"estimate: {CHARS_PER_TOKEN:g} characters per token"
        self.scale = 1.0  # a probe's measured tokens per estimated token
        self._count = self._estimate
        if teacher_kind == "embedded":
            self._use_embedded(model, backend_options)
        elif teacher_kind in ("openai", "openai-compatible"):
            self._use_tiktoken(model)
        elif teacher_kind == "pool":
            self.name, self._count = "whitespace words (the pool's own count)", _words

    def __call__(self, request: TeacherRequest) -> int:
        return round(self._count(request) * self.scale)

    @staticmethod
    def _estimate(request: TeacherRequest) -> int:
        return math.ceil(sum(len(m.content) for m in request.messages) / CHARS_PER_TOKEN)

    def _use_embedded(self, model: str, options: dict) -> None:
        from transformers import AutoTokenizer

        from llmaug.teachers.embedded import local_model_folder

        tokenizer = AutoTokenizer.from_pretrained(local_model_folder(model, options.get("model_cache_dir")))

        def count(request: TeacherRequest) -> int:  # as the embedded backend encodes its prompts
            if tokenizer.chat_template:
                chat = [m.model_dump() for m in request.messages]
                text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
                return len(tokenizer(text, add_special_tokens=False)["input_ids"])
            return len(tokenizer("\n\n".join(m.content for m in request.messages))["input_ids"])

        self.name, self._count = f"the teacher's own tokenizer ({model})", count

    def _use_tiktoken(self, model: str) -> None:
        try:
            import tiktoken

            encoding = tiktoken.encoding_for_model(model)
            encoding.encode("probe")
        except Exception:  # not installed, an unknown model, or its encoding cannot be downloaded here
            return

        def count(request: TeacherRequest) -> int:  # OpenAI's recipe: 3 tokens per message, 3 to prime the answer
            return 3 + sum(3 + len(encoding.encode(m.content)) for m in request.messages)

        self.name, self._count = f"tiktoken {encoding.name}", count


def _words(request: TeacherRequest) -> int:
    return sum(len(m.content.split()) for m in request.messages)


# ------------------------------------------------------------------------------------------- the plan


@dataclass
class ProbeResult:
    requests: list[Recorded]
    responses: list[TeacherResponse]
    seconds: float
    width: int  # requests the teacher works on at once
    wrong_ids: set[str] | None  # the seeds a student trained on the seeds gets wrong (None: not measured)
    yield_rate: float | None  # usable examples per example asked for


def make_plan(config: RunConfig, probe: int = 0, console=None) -> Plan:
    """The plan of a run with these settings; `probe` real calls for expected values. Writes nothing."""
    from llmaug.session import _teacher_options, build_method, load_run_data, task_info, teacher_pricing
    from llmaug.teachers.spec import parse_spec

    seed, _ = load_run_data(config)
    task = task_info(config, seed)
    spec = parse_spec(config.teacher)
    identity = str(spec) if spec.kind != "openai-compatible" else f"openai-compatible:{spec.base_url}@{spec.model}"
    counter = TokenCounter(spec.kind, spec.model, dict(config.teacher_options))

    def passes(wrong, yields_list):
        return [replay(build_method(config), seed, task, config.seed, identity, wrong, y) for y in yields_list]

    bounding = passes(all_seeds_wrong, [every_item, no_item])
    exactness = passes(no_seed_wrong, [every_item, no_item])
    measured = run_probe(config, bounding[0], seed, task, probe, _teacher_options(config)) if probe else None
    if measured is not None:
        _calibrate(counter, measured)
    found = teacher_pricing(config)
    plan = Plan(config.method, config.teacher, _stage_rows(bounding, exactness, counter), counter.name, found.price, found.source)
    if any(ctx.local_work for ctx in bounding):
        plan.notes.append("the method then works locally (e.g. MSP's generator): no teacher requests after that")
    if measured is not None:
        _expect(plan, measured, config, seed, task, identity, counter)
    _budget_notes(plan, config)
    return plan


def run_probe(config: RunConfig, planned: PlanContext, seed: list[Example], task: TaskInfo, n: int,
              backend_options: dict) -> ProbeResult:
    """`n` real calls, spread evenly over the planned requests (so every stage is met), and one k-fold training
    of the student on the seeds."""
    from llmaug.runner import default_quality
    from llmaug.session import build_teacher

    recorded = planned.recorded
    picks = sorted({round(i * (len(recorded) - 1) / max(1, n - 1)) for i in range(min(n, len(recorded)))}) if recorded else []
    chosen = [recorded[i] for i in picks]
    teacher = build_teacher(config.model_copy(update={"max_teacher_calls": None, "max_tokens_budget": None, "max_cost": None}),
                            None, backend_options)
    try:
        started = time.perf_counter()
        responses = teacher.generate([r.request for r in chosen]) if chosen else []
        seconds = time.perf_counter() - started
        width = max(1, teacher.backend.batch_size) * max(1, teacher.backend.max_concurrency)
        quality = default_quality(config.label_check, teacher).fit(seed)
    finally:
        teacher.close()
    asks = [(r.ask, response) for r, response in zip(chosen, responses) if r.ask is not None and response.finish_reason not in ("budget", "error")]
    return ProbeResult(chosen, responses, seconds, width, _seed_errors(config, seed), _yield_rate(asks, seed, task, quality, config))


def _yield_rate(asks: list[tuple[Ask, TeacherResponse]], seed, task: TaskInfo, quality, config: RunConfig) -> float | None:
    """Usable examples per example asked for, each answer counting for at most what its request asked (PromptMix
    asks for one prompt's worth and keeps one): what the shared filters keep of the probe's answers."""
    if not asks:
        return None
    made, _, instructions = candidates([a for a, _ in asks], [r for _, r in asks], method=config.method, round=0, teacher="probe")
    kept, _ = quality.apply(made, seed, task.labels or None, instructions)
    per_request = Counter((e.provenance.sample_index, tuple(e.provenance.parent_ids)) for e in kept)
    usable = sum(min(per_request[(a.request.sample_index, tuple(p.id for p in a.parents))], a.count) for a, _ in asks)
    return usable / sum(a.count for a, _ in asks)


def _seed_errors(config: RunConfig, seed: list[Example]) -> set[str] | None:
    """The seeds a student trained on the seeds gets wrong (held out, as the method would judge them)."""
    from llmaug.evaluation import Evaluator
    from llmaug.session import build_method, configured_student

    if any(e.label is None for e in seed):
        return None  # QA: judged by the trained student itself
    held_out = getattr(build_method(config), "error_source", "cross-val") == "cross-val"
    evaluator = Evaluator(configured_student(config), config.seed, None, folds=config.cv_folds,
                          fold_factory=configured_student(config, fold=True))
    return {case.example.id for case in evaluator.evaluate(seed, 0, seed, held_out_errors=held_out).errors}


def _answered(probe: ProbeResult) -> list[tuple[Recorded, TeacherResponse]]:
    return [(r, resp) for r, resp in zip(probe.requests, probe.responses) if resp.finish_reason not in ("budget", "error")]


def _calibrate(counter: TokenCounter, probe: ProbeResult) -> None:
    """An estimated token count, scaled to the server's own counts of the probed prompts."""
    answered = _answered(probe)
    estimated = sum(counter(r.request) for r, _ in answered)
    measured = sum(resp.prompt_tokens for _, resp in answered)
    if estimated and measured and counter.name.startswith("estimate"):
        counter.scale = measured / estimated
        counter.name += f", calibrated by the probe (x{counter.scale:.2f})"


def _expect(plan: Plan, probe: ProbeResult, config: RunConfig, seed, task, identity: str, counter: TokenCounter) -> None:
    """The expected figures: the run replayed with the probe's seed errors and share of usable examples."""
    from llmaug.session import build_method

    answered = _answered(probe)
    completion = _completion_per_stage(answered)
    wrong_ids, rate = probe.wrong_ids, probe.yield_rate if probe.yield_rate is not None else 1.0

    def wrong(data, pool):
        if wrong_ids is None:
            return all_seeds_wrong(data, pool)
        return [e for e in pool if e.is_seed and e.id in wrong_ids]

    carry = [0.0]

    def yields(ask: Ask) -> int:  # usable examples at the probe's rate, spread evenly over the asks
        carry[0] += ask.count * rate
        whole = min(int(carry[0]), ask.count)
        carry[0] -= whole
        return whole

    expected = _by_stage(replay(build_method(config), seed, task, config.seed, identity, wrong, yields))
    for row in plan.rows:
        asked = expected.get((row.round, row.stage), [])
        row.expected_requests = len(asked)
        row.expected_prompt_tokens = sum(counter(r.request) for r in asked)
        row.expected_completion = round(sum(completion(row.stage, r.request) for r in asked), 1)
    total = sum(row.expected_requests for row in plan.rows)
    waves = math.ceil(len(probe.requests) / probe.width) if probe.requests else 0
    plan.wall_seconds = round(math.ceil(total / probe.width) * probe.seconds / waves, 1) if waves else None
    plan.probe = {
        "requests": len(probe.requests), "answered": len(answered), "seconds": round(probe.seconds, 3),
        "width": probe.width, "seed_errors": len(wrong_ids) if wrong_ids is not None else None,
        "usable_per_example_asked": round(rate, 3) if probe.yield_rate is not None else None,
        "mean_completion_tokens": round(sum(resp.completion_tokens for _, resp in answered) / len(answered), 2) if answered else None,
    }
    if wrong_ids is not None:
        plan.notes.append(f"expected: the {len(wrong_ids)} seeds a student trained on the seeds gets wrong stay wrong in every round")
    plan.notes.append(f"wall time: the probe's {len(probe.requests)} requests took {probe.seconds:.1f} s at up to {probe.width} at once")


def _completion_per_stage(answered: list[tuple[Recorded, TeacherResponse]]) -> Callable[[str, TeacherRequest], float]:
    """Expected completion tokens of a request: the probe's mean for its kind of stage (the same step in every
    round: "round 0: generating" and "round 1: generating" pool); else the probe's mean share of max_tokens."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for recorded, response in answered:
        by_kind[_stage_kind(recorded.stage)].append(response.completion_tokens)
    shares = [resp.completion_tokens / r.request.params.max_tokens for r, resp in answered]
    share = sum(shares) / len(shares) if shares else 1.0

    def expected(stage: str, request: TeacherRequest) -> float:
        seen = by_kind.get(_stage_kind(stage))
        return sum(seen) / len(seen) if seen else share * request.params.max_tokens

    return expected


def _stage_kind(stage: str) -> str:
    return re.sub(r"\d+", "#", stage)


def _budget_notes(plan: Plan, config: RunConfig) -> None:
    if config.max_teacher_calls is not None and config.max_teacher_calls < plan.requests:
        plan.notes.append(f"max_teacher_calls {config.max_teacher_calls} stops the run before its last requests")
    bound = plan.cost_bound()
    if config.max_cost is not None and bound is not None and bound > config.max_cost:
        plan.notes.append(f"max_cost ${config.max_cost:g} may stop the run (the bound is ${bound:.4f})")
    if config.max_tokens_budget is not None and config.max_tokens_budget < plan.prompt_tokens + plan.completion_bound:
        plan.notes.append(f"max_tokens_budget {config.max_tokens_budget:,} may stop the run")


# ------------------------------------------------------------------------------------------- display


def plan_table(plan: Plan):
    """The plan as a rich table (a row per round and stage, then the total) and its notes."""
    from rich.table import Table

    expected = plan.probe is not None
    table = Table(title=f"plan: {plan.method} with {plan.teacher}", title_justify="left")
    columns = ["round", "stage", "requests", "prompt tokens", "completion tokens (max)", "cost (max)"]
    columns += ["expected requests", "expected completion", "expected cost"] if expected else []
    for column in columns:
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in plan.rows:
        cells = [str(row.round), row.stage, _count(row.requests, row.exact), _count(row.prompt_tokens, row.exact),
                 f"≤ {row.completion_bound:,}", _dollars(_cost(row.prompt_tokens, row.completion_bound, plan.price), row.exact)]
        if expected:
            cells += [f"{row.expected_requests:,}", f"{row.expected_completion:,.0f}",
                      _dollars(_cost(row.expected_prompt_tokens, row.expected_completion, plan.price), True)]
        table.add_row(*cells)
    totals = ["total", "", _count(plan.requests, plan.exact), _count(plan.prompt_tokens, plan.exact),
              f"≤ {plan.completion_bound:,}", _dollars(plan.cost_bound(), plan.exact)]
    if expected:
        totals += [f"{plan.expected('expected_requests'):,.0f}", f"{plan.expected('expected_completion'):,.0f}",
                   _dollars(plan.expected_cost(), True)]
    table.add_row(*totals, style="bold")
    notes = ["requests marked ≤ depend on the student's errors or the teacher's answers: an upper bound (every seed wrong in every round)",
             f"prompt tokens: {plan.tokenizer}", f"price: {plan.price_source}"]
    if plan.wall_seconds is not None:
        notes.append(f"expected teacher time: {_duration(plan.wall_seconds)}")
    elif not expected:
        notes.append("--probe N makes N real calls (and trains the student once) for expected tokens, cost and time")
    return table, notes + plan.notes


def _count(value: int, exact: bool) -> str:
    return f"{value:,}" if exact else f"≤ {value:,}"


def _dollars(value: float | None, exact: bool) -> str:
    if value is None:
        return "n/a"
    return f"${value:.4f}" if exact else f"≤ ${value:.4f}"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"

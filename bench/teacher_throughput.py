"""Embedded-teacher throughput: precision and batch size side by side, llmaug's `Teacher` against raw
transformers `generate`, a cached rerun, and the accepted-output rate per precision.

1. Settings: each `--settings` entry (dtype:batch, e.g. float32:8, the setting of every version before dtype
   auto) generates the same LLM2LLM prompts on TREC-6 seeds three ways: through llmaug's `Teacher` (its own
   decoding loop, in which a finished answer leaves the batch), through raw transformers `generate` (the path of
   every version before that loop), and through `generate` at a fixed length. Runs alternate between settings and
   paths, so that a change in machine load hits all alike; ratios are against the first setting through `generate`.
2. Cached rerun: cold against warm.
3. Quality: `--quality-prompts` LLM2LLM requests per dtype (TREC-6 seeds, a wrong label in the prompt, as a run
   sends them), read and filtered by the run's shared filters (embedding label check included); the accepted
   share with its 95% Wilson interval. Precision changes sampled outputs, so the rate must be compared.

    flock /work/bench.lock .venv/bin/python bench/teacher_throughput.py --runs 3
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

from llmaug.bench.results import write_page  # noqa: E402
from llmaug.candidates import candidates  # noqa: E402
from llmaug.config import validate_config  # noqa: E402
from llmaug.data import load_bundled, sample_fraction  # noqa: E402
from llmaug.device import cpu_threads, idle_cores  # noqa: E402
from llmaug.filters.quality import QualityFilter  # noqa: E402
from llmaug.methods import LLM2LLM  # noqa: E402
from llmaug.methods.llm2llm import Target  # noqa: E402
from llmaug.session import task_info  # noqa: E402
from llmaug.teachers import Teacher, TeacherRequest  # noqa: E402
from llmaug.teachers.embedded import EmbeddedBackend, batch_seed  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "teacher_throughput.md"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settings", nargs="+", default=["float32:8", "bfloat16:16", "auto:auto"],
                        help="dtype:batch_size pairs; the first is the baseline of the ratios")
    parser.add_argument("--prompts", type=int, default=64, help="prompts per throughput run")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--quality-prompts", type=int, default=192, help="prompts per dtype for the accepted rate")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the backend's choice)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def make_asks(count: int, max_tokens: int, offset: int = 0):
    """LLM2LLM's asks for `count` TREC-6 seeds (1% samples of successive seeds, as many as needed), each shown
    with a wrong label as the student's prediction; `offset` gives other sample indices, i.e. fresh samples."""
    train = load_bundled("trec6")
    seeds, sample = [], 0
    while len(seeds) < count:
        seeds += sample_fraction(train, 0.01, seed=sample)
        sample += 1
    seeds = seeds[:count]
    context = SimpleNamespace(task=task_info(validate_config({}), seeds))
    labels = sorted({e.label for e in seeds})
    rng = random.Random(0)
    method = LLM2LLM(max_tokens=max_tokens)
    wrong = [rng.choice([x for x in labels if x != e.label]) for e in seeds]
    return [method._ask(Target(e, label, label), seeds, context, 0, 0, offset, 1)
            for e, label in zip(seeds, wrong)], seeds


def make_requests(count: int, max_tokens: int) -> list[TeacherRequest]:
    return [ask.request for ask in make_asks(count, max_tokens)[0]]


def batches(requests: list[TeacherRequest], size: int) -> list[list[TeacherRequest]]:
    return [requests[start:start + size] for start in range(0, len(requests), size)]


def run_teacher(backend: EmbeddedBackend, requests: list[TeacherRequest], cache: Path | None = None):
    """Wall seconds, completion tokens and texts of one `Teacher.generate` over all requests."""
    teacher = Teacher(backend, cache=cache)
    start = time.perf_counter()
    responses = teacher.generate(requests)
    seconds = time.perf_counter() - start
    if teacher.cache is not None:
        teacher.cache.close()
    return seconds, teacher.usage.completion_tokens, [r.text for r in responses]


def run_raw(backend: EmbeddedBackend, requests: list[TeacherRequest], batch_size: int, fixed_length: bool = False):
    """The same generation written directly against transformers, on the backend's loaded model; with
    `fixed_length` every prompt gets max_tokens tokens (EOS ignored), the decode rate with no early stops."""
    model, tokenizer = backend._model, backend._tokenizer
    params = requests[0].params
    config = transformers.GenerationConfig(
        max_new_tokens=params.max_tokens, do_sample=True, temperature=params.temperature, top_p=params.top_p,
        top_k=0, repetition_penalty=params.repetition_penalty, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, min_new_tokens=params.max_tokens if fixed_length else 0,
    )
    tokens, texts = 0, []
    start = time.perf_counter()
    with cpu_threads(backend.threads or idle_cores()):  # the threads the backend would take
        for batch in batches(requests, batch_size):
            prompts = [tokenizer.apply_chat_template([m.model_dump() for m in r.messages], tokenize=False,
                                                     add_generation_prompt=True) for r in batch]
            encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(backend.device)
            torch.manual_seed(batch_seed([r.cache_key(backend.identity) for r in batch]))
            with torch.inference_mode():
                output = model.generate(**encoded, generation_config=config)
            for row in output[:, encoded["input_ids"].shape[1]:].tolist():
                length = len(row) if fixed_length or tokenizer.eos_token_id not in row else row.index(tokenizer.eos_token_id)
                tokens += length
                texts.append(tokenizer.decode(row[:length], skip_special_tokens=True))
    return time.perf_counter() - start, tokens, texts


def measure_settings(backends: dict[str, EmbeddedBackend], requests: list[TeacherRequest], runs: int) -> dict:
    """Median tokens/s of each setting over `runs` runs, the settings and paths alternating within every run:
    llmaug's `Teacher` (its own decoding: a finished answer leaves the batch), raw transformers `generate` (every
    row stays until the batch's longest answer ends: the path before llmaug's decoding), both counting each answer's
    tokens up to its end, and `generate` at a fixed length (every prompt max_tokens tokens, end-of-text ignored)."""
    measured: dict[str, dict[str, list[float]]] = {name: {"llmaug": [], "generate": [], "fixed": []} for name in backends}
    same: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(runs):
        for name, backend in backends.items():
            seconds, tokens, llmaug_texts = run_teacher(backend, requests)
            measured[name]["llmaug"].append(tokens / seconds)
            seconds, tokens, raw_texts = run_raw(backend, requests, backend.batch_size)
            measured[name]["generate"].append(tokens / seconds)
            same[name].append(sum(a == b for a, b in zip(llmaug_texts, raw_texts, strict=True)) / len(requests))
            seconds, tokens, _ = run_raw(backend, requests, backend.batch_size, fixed_length=True)
            measured[name]["fixed"].append(tokens / seconds)
    return {name: {path: statistics.median(values) for path, values in paths.items()} | {"same": statistics.mean(same[name])}
            for name, paths in measured.items()}


def measure_quality(backend: EmbeddedBackend, count: int, max_tokens: int) -> dict:
    """The share of LLM2LLM answers that the run's shared filters accept, and the commonest rejection reasons."""
    asks, seeds = make_asks(count, max_tokens)
    teacher = Teacher(backend)
    start = time.perf_counter()
    responses = teacher.generate([ask.request for ask in asks])
    seconds = time.perf_counter() - start
    made, unreadable, instructions = candidates(asks, responses, method="llm2llm", round=0, teacher=backend.identity)
    quality = QualityFilter(centroid_top=1).fit(seeds)
    kept, dropped = quality.apply(made, seeds, sorted({e.label for e in seeds}), instructions)
    reasons: dict[str, int] = {}
    for rejected in unreadable + dropped:
        reason = rejected.reason.split(" (")[0]
        reasons[reason] = reasons.get(reason, 0) + 1
    return {"accepted": len(kept), "asked": len(asks), "seconds": seconds,
            "tokens_per_s": teacher.usage.completion_tokens / seconds,
            "reasons": dict(sorted(reasons.items(), key=lambda item: -item[1])[:4])}


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    if not total:
        return 0.0, 0.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def measure_cached_rerun(backend: EmbeddedBackend, requests: list[TeacherRequest], runs: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "cache.sqlite"
        cold, _, _ = run_teacher(backend, requests, cache)
        warm = statistics.median(run_teacher(backend, requests, cache)[0] for _ in range(runs))
    return {"cold": cold, "warm": warm}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def make_backend(setting: str, args) -> EmbeddedBackend:
    dtype, _, batch = setting.partition(":")
    return EmbeddedBackend(args.model, dtype=dtype, batch_size=None if batch in ("", "auto") else int(batch),
                           threads=args.threads)


def report(args, backends: dict[str, EmbeddedBackend], rates: dict, cached: dict, quality: dict, load: str) -> str:
    baseline = next(iter(rates))
    today = rates[baseline]["generate"]  # float32 batch 8 through generate: the path before dtype auto and decode
    command = "python bench/teacher_throughput.py " + " ".join(sys.argv[1:])
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, Python {platform.python_version()}; load average before and after: {load}.",
        "",
        f"Model `{args.model}`; {args.prompts} LLM2LLM prompts on TREC-6 seeds, max_tokens {args.max_tokens}, "
        f"temperature 0.8; threads {args.threads or 'the backend default (idle cores)'}; median of {args.runs} "
        "runs, the settings and paths alternating within each run.",
        "",
        "Tokens/s count each answer's tokens up to its end. llmaug: the `Teacher` (cache off), whose decoding drops a "
        "finished answer from the batch; generate: raw transformers `generate` on the same model, where every row "
        f"stays until the batch's longest answer ends (the path of every version before); fixed length: `generate` "
        f"with every prompt given {args.max_tokens} tokens, end-of-text ignored (the decode rate with no early stops). "
        f"Ratios are against {baseline} through generate, the path before dtype auto.",
        "",
        "| setting (dtype:batch) | resolved | llmaug tokens/s | vs " + baseline + " generate | generate tokens/s "
        "| fixed length tokens/s | vs " + baseline + " | llmaug answers equal to generate's |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, rate in rates.items():
        backend = backends[name]
        resolved = f"{backend.options.dtype}, batch {backend.batch_size}"
        lines.append(f"| {name} | {resolved} | {rate['llmaug']:.1f} | {rate['llmaug'] / today:.2f}× "
                     f"| {rate['generate']:.1f} | {rate['fixed']:.1f} | {rate['fixed'] / rates[baseline]['fixed']:.2f}× "
                     f"| {rate['same']:.0%} |")
    lines += [
        "",
        "llmaug's answers equal generate's until the first answer of a batch ends (then the random draws fall "
        "differently); greedy answers are equal throughout (tests/teachers/test_decoding.py).",
        "",
        "| cached rerun | wall time |",
        "| --- | ---: |",
        f"| cold (empty cache) | {cached['cold']:.2f} s |",
        f"| warm (every request cached, median of {args.runs}) | {cached['warm'] * 1000:.1f} ms |",
        f"| speedup | {cached['cold'] / cached['warm']:,.0f}× (goal ≥ 50×) |",
        "",
        f"Accepted outputs: {args.quality_prompts} LLM2LLM requests per dtype (TREC-6 seeds of 1% samples 0, 1, ..., "
        "each shown with a wrong label), filtered by the run's shared filters with the embedding label check:",
        "",
        "| dtype, batch | accepted | share (95% interval) | tokens/s | commonest rejections |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for name, result in quality.items():
        low, high = wilson(result["accepted"], result["asked"])
        reasons = ", ".join(f"{reason} {count}" for reason, count in result["reasons"].items())
        lines.append(f"| {name} | {result['accepted']} / {result['asked']} | {result['accepted'] / result['asked']:.1%} "
                     f"({low:.1%}–{high:.1%}) | {result['tokens_per_s']:.1f} | {reasons} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    load = _load()
    backends = {setting: make_backend(setting, args) for setting in args.settings}
    requests = make_requests(args.prompts, args.max_tokens)
    for backend in backends.values():
        run_teacher(backend, requests[:1])  # loads the model; warms the first-call costs
    default = backends[args.settings[-1]]
    run_raw(default, requests[:1], default.batch_size)
    rates = measure_settings(backends, requests, args.runs)
    cached = measure_cached_rerun(default, requests, args.runs)
    quality = {}
    for setting in ("float32:8", args.settings[-1]):
        backend = backends.get(setting) or make_backend(setting, args)
        quality[f"{backend.options.dtype}, {backend.batch_size}"] = measure_quality(backend, args.quality_prompts, args.max_tokens)
    page = report(args, backends, rates, cached, quality, f"{load} / {_load()}")
    print(page)
    write_page(args.output, page, "Embedded teacher throughput")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()

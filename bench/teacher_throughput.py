"""Embedded-teacher throughput: llmaug's `Teacher` against raw transformers `generate`, side by side.

Both paths run the same loaded model on the same prompts, batch size, sampling params and per-batch seeds, so
they do the same work (the script checks that their outputs match); the difference is llmaug's overhead.
Runs alternate between the two paths and the medians are reported. A second table times a cached rerun.

    .venv/bin/python bench/teacher_throughput.py --runs 3 --batch-size 8 --prompts 16 --max-tokens 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

from llmaug.data.bundled import BUNDLED  # noqa: E402
from llmaug.teachers import GenerationParams, Teacher, TeacherRequest  # noqa: E402
from llmaug.teachers.embedded import EmbeddedBackend, batch_seed  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "teacher_throughput.md"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def make_requests(count: int, max_tokens: int) -> list[TeacherRequest]:
    lines = BUNDLED["trec6"].split("train").read_text().splitlines()[:count]
    params = GenerationParams(temperature=0.8, top_p=0.95, max_tokens=max_tokens, seed=0)
    questions = [json.loads(line)["text"] for line in lines]
    return [TeacherRequest.chat([{"role": "user", "content": f"Write one new question similar to: {question}"}],
                                params=params)
            for question in questions]


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


def run_raw(backend: EmbeddedBackend, requests: list[TeacherRequest], batch_size: int):
    """The same generation written directly against transformers, on the backend's loaded model."""
    model, tokenizer = backend._model, backend._tokenizer
    params = requests[0].params
    config = transformers.GenerationConfig(
        max_new_tokens=params.max_tokens, do_sample=True, temperature=params.temperature, top_p=params.top_p,
        top_k=0, repetition_penalty=params.repetition_penalty, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    tokens, texts = 0, []
    start = time.perf_counter()
    for batch in batches(requests, batch_size):
        prompts = [tokenizer.apply_chat_template([m.model_dump() for m in r.messages], tokenize=False,
                                                 add_generation_prompt=True) for r in batch]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(batch_seed([r.cache_key(backend.identity) for r in batch]))
        with torch.inference_mode():
            output = model.generate(**encoded, generation_config=config)
        for row in output[:, encoded["input_ids"].shape[1]:].tolist():
            length = row.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in row else len(row)
            tokens += length
            texts.append(tokenizer.decode(row[:length], skip_special_tokens=True))
    return time.perf_counter() - start, tokens, texts


def measure_throughput(backend: EmbeddedBackend, requests: list[TeacherRequest], args) -> dict:
    llmaug_rates, raw_rates, same_outputs = [], [], True
    for _ in range(args.runs):  # alternating, so that a change in machine load hits both paths alike
        seconds, tokens, llmaug_texts = run_teacher(backend, requests)
        llmaug_rates.append(tokens / seconds)
        seconds, tokens, raw_texts = run_raw(backend, requests, args.batch_size)
        raw_rates.append(tokens / seconds)
        same_outputs &= llmaug_texts == raw_texts
    return {"llmaug": statistics.median(llmaug_rates), "raw": statistics.median(raw_rates),
            "same_outputs": same_outputs}


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


def report(args, backend: EmbeddedBackend, throughput: dict, cached: dict, load: str) -> str:
    ratio = throughput["llmaug"] / throughput["raw"]
    speedup = cached["cold"] / cached["warm"]
    command = "python bench/teacher_throughput.py " + " ".join(sys.argv[1:])
    return "\n".join([
        "# Embedded teacher throughput",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} using {torch.get_num_threads()} "
        f"threads, transformers {transformers.__version__}, Python {platform.python_version()}; "
        f"load average before the run: {load}.",
        "",
        f"Model `{backend.identity}`; {args.prompts} prompts, batch size {args.batch_size}, max_tokens "
        f"{args.max_tokens}, temperature 0.8, top_p 0.95; median of {args.runs} alternating runs.",
        "",
        "| path | generated tokens/s |",
        "| --- | ---: |",
        f"| llmaug `Teacher` (cache off) | {throughput['llmaug']:.1f} |",
        f"| raw transformers `generate` | {throughput['raw']:.1f} |",
        f"| llmaug / raw | {ratio:.0%} (goal ≥ 80%) |",
        "",
        f"Both paths produced identical outputs: {'yes' if throughput['same_outputs'] else 'no'}.",
        "",
        "| cached rerun | wall time |",
        "| --- | ---: |",
        f"| cold (empty cache) | {cached['cold']:.2f} s |",
        f"| warm (every request cached, median of {args.runs}) | {cached['warm'] * 1000:.1f} ms |",
        f"| speedup | {speedup:,.0f}× (goal ≥ 50×) |",
        "",
    ])


def main() -> None:
    args = parse_args()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"
    backend = EmbeddedBackend(args.model, batch_size=args.batch_size, threads=args.threads)
    requests = make_requests(args.prompts, args.max_tokens)
    run_teacher(backend, requests[:1])  # loads the model; warms both paths' first-call costs
    run_raw(backend, requests[:1], args.batch_size)
    throughput = measure_throughput(backend, requests, args)
    cached = measure_cached_rerun(backend, requests, args.runs)
    table = report(args, backend, throughput, cached, load)
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table)


if __name__ == "__main__":
    main()

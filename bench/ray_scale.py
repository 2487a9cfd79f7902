"""Ray scale-out on this machine, each pair side by side in one run (alternating, medians), and the driver's limit.

    flock /work/bench.lock .venv/bin/python bench/ray_scale.py --runs 3

1. grid: a grid of tf-idf oracle cells (pool teacher, tf-idf student), sequential vs `--ray` with 2 workers
2. teacher: the embedded SmolLM2 teacher in-process, as 1 Ray replica (2 CPUs) and as 2 replicas (1 CPU each)
3. folds: one round's 5 held-out fold students (fine-tuned MiniLM, and tf-idf), sequential vs Ray tasks
4. cache: the driver's SQLite cache, rows written per second in transactions of the sizes the Teacher writes

Each pair also checks that both sides computed the same thing (tables, texts, predictions). The page goes to
bench/results/ray_scale.md (the generated part; notes around it are kept); docs/scale.md reads the numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import yaml  # noqa: E402

from llmaug.bench.machine import machine_facts  # noqa: E402
from llmaug.bench.results import read_rows, write_page  # noqa: E402
from llmaug.bench.run import run_bench  # noqa: E402
from llmaug.bench.table import machine_line  # noqa: E402
from llmaug.data import load_bundled  # noqa: E402
from llmaug.data.sampling import sample_fraction  # noqa: E402
from llmaug.distributed.grid import RayCellRunner  # noqa: E402
from llmaug.distributed.training import RayFitRunner  # noqa: E402
from llmaug.evaluation import FitJob, FoldTask, fit_sequentially, stratified_folds  # noqa: E402
from llmaug.students import make_student  # noqa: E402
from llmaug.teachers import GenerationParams, ResponseCache, Teacher, TeacherRequest, TeacherResponse  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "ray_scale.md"
GRID = {
    "name": "ray_scale", "defaults": {"student": "tfidf", "max_eval": 300}, "datasets": ["trec6", "sst2"],
    "settings": [{"name": "1%", "fraction": 0.01}], "seeds": [0, 1],
    "arms": [{"name": "none", "method": "none", "label_check": "none"},
             {"name": "oracle-llm2llm", "method": "llm2llm", "teacher": "pool:similar", "rounds": 3,
              "teacher_options": {"encoder": "tfidf"}},
             {"name": "oracle-random", "method": "paraphrase", "teacher": "pool:random",
              "match_added": "oracle-llm2llm"}],
}
VARYING = ("wall_seconds", "resumed", "run_dir")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", default="grid,teacher,folds,cache")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--cache-rows", type=int, default=20000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ----- 1. grid -----


def measure_grid(runs: int, scratch: Path) -> dict:
    grid = scratch / "grid.yaml"
    grid.write_text(yaml.safe_dump(GRID))
    sequential, on_ray, same = [], [], True
    for run in range(runs):
        for name, cells, seconds in (("sequential", None, sequential), ("ray", RayCellRunner(), on_ray)):
            folder = scratch / f"grid-{name}-{run}"
            started = time.perf_counter()
            outcome = run_bench(grid, results=folder, work=folder / "work", cells=cells)
            seconds.append(time.perf_counter() - started)
            assert not outcome.failed, outcome.failed
        same &= _rows(scratch / f"grid-sequential-{run}") == _rows(scratch / f"grid-ray-{run}")
    cells = len(read_rows(scratch / "grid-sequential-0" / "bench_ray_scale.csv"))
    return {"cells": cells, "sequential": statistics.median(sequential), "ray": statistics.median(on_ray),
            "same_tables": same}


def _rows(folder: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in VARYING} for row in read_rows(folder / "bench_ray_scale.csv")]


# ----- 2. teacher -----


def measure_teacher(runs: int, prompts: int, max_tokens: int) -> dict:
    """Each teacher in turn (the two Ray set-ups would not fit on 2 CPUs at once), its model loaded before timing."""
    texts = [row.text for row in load_bundled("trec6")[:prompts]]
    params = GenerationParams(temperature=0.8, max_tokens=max_tokens)
    requests = [TeacherRequest.chat([{"role": "user", "content": f"Write one new question similar to: {text}"}],
                                    params=params) for text in texts]
    warm_up = [TeacherRequest.chat([{"role": "user", "content": "Hello"}], params=params.model_copy(update={"max_tokens": 2}))]
    setups = {"in-process (torch on 2 threads)": ("embedded", {}),
              "ray: 1 replica, num_cpus 2": ("ray:embedded", {"replicas": 1, "num_cpus": 2}),
              "ray: 2 replicas, num_cpus 1 each": ("ray:embedded", {"replicas": 2, "num_cpus": 1})}
    rates: dict[str, list[float]] = {name: [] for name in setups}
    outputs: dict[str, list[str]] = {}
    for _ in range(runs):
        for name, (spec, options) in setups.items():
            with Teacher(spec, batch_size=8, **options) as teacher:
                teacher.generate(warm_up * 2)  # loads the model (in each actor: a 1-request batch each)
                before = teacher.usage.completion_tokens
                started = time.perf_counter()
                answers = teacher.generate(requests)
                seconds = time.perf_counter() - started
                rates[name].append((teacher.usage.completion_tokens - before) / seconds)
                outputs[name] = [answer.text for answer in answers]
    same = len({json.dumps(texts) for texts in outputs.values()}) == 1
    return {"rates": {name: statistics.median(values) for name, values in rates.items()}, "same_texts": same,
            "prompts": prompts, "max_tokens": max_tokens}


# ----- 3. folds -----


def measure_folds(runs: int) -> dict:
    seed = sample_fraction(load_bundled("trec6"), 0.01, seed=0)
    folds = stratified_folds(seed, 5, 0)
    jobs = [FitJob([e for i, e in enumerate(seed) if i not in held], [seed[i] for i in held]) for held in folds]
    results = {}
    for student in ("finetune", "tfidf"):
        fit = FoldTask(functools.partial(make_student, student), 0)
        sequential, on_ray, same = [], [], True
        for _ in range(runs):
            started = time.perf_counter()
            expected = fit_sequentially(fit, jobs)
            sequential.append(time.perf_counter() - started)
            started = time.perf_counter()
            got = RayFitRunner()(fit, jobs)
            on_ray.append(time.perf_counter() - started)
            same &= got == expected
        results[student] = {"sequential": statistics.median(sequential), "ray": statistics.median(on_ray),
                            "same_predictions": same}
    return {"rows": len(seed), "folds": len(jobs), "students": results}


# ----- 4. the driver's cache -----


def measure_cache(rows: int, scratch: Path) -> dict:
    """Rows/s that `ResponseCache.put_many` stores, in transactions of 1 (a slow backend's one batch per pass of
    the event loop), 8 (an embedded batch), 64 and 512 (many HTTP answers finishing in one pass)."""
    text = "What is the tallest mountain that a person can climb without oxygen in one day of walking ?"
    rates = {}
    for size in (1, 8, 64, 512):
        path = scratch / f"cache-{size}.sqlite"
        items = [(f"{size}-{i:08d}-{'k' * 40}", TeacherResponse(text=text, prompt_tokens=60, completion_tokens=20))
                 for i in range(rows if size > 1 else rows // 4)]
        with closing(ResponseCache(path)) as cache:
            started = time.perf_counter()
            for start in range(0, len(items), size):
                cache.put_many(items[start:start + size])
            rates[size] = len(items) / (time.perf_counter() - started)
        with closing(ResponseCache(path)) as cache:
            keys = [key for key, _ in items]
            started = time.perf_counter()
            cache.get_many(keys)
            rates[f"read {size}"] = len(keys) / (time.perf_counter() - started)
    return rates


# ----- the page -----


def page(args, results: dict, facts: dict, loads: tuple[str, str], ray_version: str, ray_start: float) -> str:
    lines = [f"Command: `flock /work/bench.lock .venv/bin/python bench/ray_scale.py {' '.join(sys.argv[1:])}`", "",
             f"Machine: {machine_line(facts)}; Ray {ray_version}, a local Ray with 2 CPUs (started in "
             f"{ray_start:.1f} s). Load average before {loads[0]}, after {loads[1]}. Medians of {args.runs} "
             "alternating runs.", ""]
    if "grid" in results:
        grid = results["grid"]
        lines += ["### A grid of tf-idf oracle cells", "",
                  f"{grid['cells']} cells (TREC-6 and SST-2 at 1%, seeds 0–1; no augmentation, LLM2LLM with the "
                  "oracle pool, 3 rounds, and the random oracle at equal rows; tf-idf student).", "",
                  "| bench | wall s | speed-up |", "|---|---:|---:|",
                  f"| sequential | {grid['sequential']:.1f} | 1.00× |",
                  f"| `--ray` (2 workers) | {grid['ray']:.1f} | {grid['sequential'] / grid['ray']:.2f}× |", "",
                  f"Same tables (modulo wall time): {'yes' if grid['same_tables'] else 'NO'}.", ""]
    if "teacher" in results:
        teacher = results["teacher"]
        base = next(iter(teacher["rates"].values()))
        lines += ["### The embedded teacher, 1 vs 2 replicas", "",
                  f"SmolLM2-135M-Instruct, {teacher['prompts']} prompts, batch size 8, max_tokens "
                  f"{teacher['max_tokens']}, temperature 0.8; models loaded before timing.", "",
                  "| teacher | completion tokens/s | vs in-process |", "|---|---:|---:|"]
        lines += [f"| {name} | {rate:.1f} | {rate / base:.2f}× |" for name, rate in teacher["rates"].items()]
        lines += ["", f"Same texts on every path: {'yes' if teacher['same_texts'] else 'NO'}.", ""]
    if "folds" in results:
        folds = results["folds"]
        lines += ["### One round's fold students", "",
                  f"{folds['folds']} held-out fold students on TREC-6 at 1% ({folds['rows']} rows), each trained "
                  "from scratch (fine-tuned MiniLM: default options; tf-idf).", "",
                  "| student | sequential s | Ray tasks s | speed-up | same predictions |", "|---|---:|---:|---:|---|"]
        for student, row in folds["students"].items():
            lines.append(f"| {student} | {row['sequential']:.1f} | {row['ray']:.1f} | "
                         f"{row['sequential'] / row['ray']:.2f}× | {'yes' if row['same_predictions'] else 'NO'} |")
        lines.append("")
    if "cache" in results:
        cache = results["cache"]
        lines += ["### The driver's SQLite cache", "",
                  "`ResponseCache.put_many` (WAL, synchronous=NORMAL), one transaction per call, as the Teacher "
                  "writes every batch that finished in one pass of its event loop; and one `get_many` of all keys.", "",
                  "| rows per transaction | rows written/s | rows read/s |", "|---:|---:|---:|"]
        lines += [f"| {size} | {cache[size]:,.0f} | {cache[f'read {size}']:,.0f} |" for size in (1, 8, 64, 512)]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    parts = set(args.parts.split(","))
    loads = [load()]
    facts = machine_facts(("torch", "transformers", "scikit-learn", "ray"))
    started = time.perf_counter()
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - started
    results: dict = {}
    scratch = Path(tempfile.mkdtemp(prefix="ray-scale-"))
    try:
        if "grid" in parts:
            results["grid"] = measure_grid(args.runs, scratch)
            print("grid", results["grid"], flush=True)
        if "teacher" in parts:
            results["teacher"] = measure_teacher(args.runs, args.prompts, args.max_tokens)
            print("teacher", results["teacher"], flush=True)
        if "folds" in parts:
            results["folds"] = measure_folds(args.runs)
            print("folds", results["folds"], flush=True)
        if "cache" in parts:
            results["cache"] = measure_cache(args.cache_rows, scratch)
            print("cache", results["cache"], flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        ray.shutdown()
    loads.append(load())
    write_page(args.output, page(args, results, facts, tuple(loads), ray.__version__, ray_start),
               "Scale out on Ray: measured on one 2-core machine")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

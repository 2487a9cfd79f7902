"""LLM2LLM quality benchmark: no augmentation vs LLM2LLM per round vs the one-shot ablation at equal teacher calls.

    python bench/llm2llm_quality.py --datasets trec6 sst2 --seeds 0 1 2 --student embed-lr --rounds 3

For each dataset and seed: a 1% stratified sample of train is the seed set, the full test split is the eval set.
"none" is LLM2LLM's round 0 (the student trained on the seed set alone, same seed). The one-shot arm gets a teacher
budget equal to the teacher requests the iterative run made. Rows go to a CSV (one per dataset/seed/arm/round), the
summary table to Markdown; runs already in the CSV are skipped, and each run keeps its own cache under --work.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from rich.console import Console  # noqa: E402

from llmaug.bench.results import write_page  # noqa: E402
from llmaug.data import load_bundled, sample_fraction  # noqa: E402
from llmaug.data.bundled import BUNDLED  # noqa: E402
from llmaug.filters.quality import QualityFilter  # noqa: E402
from llmaug.methods import LLM2LLM, TaskInfo  # noqa: E402
from llmaug.runner import run  # noqa: E402
from llmaug.students import make_student  # noqa: E402
from llmaug.teachers import Budget, Teacher  # noqa: E402

TITLE = "LLM2LLM with the embedded teacher: no augmentation vs LLM2LLM per round vs one-shot"
FIELDS = ["dataset", "seed", "arm", "round", "train_size", "added", "rejected", "seed_errors", "test_accuracy",
          "test_macro_f1", "teacher_requests", "seconds"]


def task_for(name: str, seed_rows) -> TaskInfo:
    info = BUNDLED[name]
    return TaskInfo(description=info.task, unit=info.unit, labels=sorted({e.label for e in seed_rows}),
                    label_descriptions=dict(info.label_descriptions))


def one_run(method: LLM2LLM, name: str, seed: int, student: str, work: Path, budget: int | None, quiet: Console, threads: int | None):
    train, test = load_bundled(name), load_bundled(name, "test")
    seed_rows = sample_fraction(train, 0.01, seed)
    out = work / f"{name}-s{seed}-{'oneshot' if method.one_shot else 'iterative'}"
    teacher = Teacher("embedded", cache=out / "cache.sqlite", budget=Budget(max_calls=budget), threads=threads)
    started = time.perf_counter()
    try:
        result = run(method, seed_rows, teacher=teacher, student=lambda: make_student(student), eval=test, out=out,
                     task=task_for(name, seed_rows), random_seed=seed, quality=QualityFilter(centroid_top=1), console=quiet)
    finally:
        teacher.close()
    return result, time.perf_counter() - started


def rows_for(name: str, seed: int, arm: str, result, seconds: float) -> list[dict]:
    return [
        {"dataset": name, "seed": seed, "arm": arm, "round": r.round, "train_size": r.train_size, "added": r.added,
         "rejected": r.rejected, "seed_errors": r.pool_errors, "test_accuracy": r.test_accuracy,
         "test_macro_f1": r.test_macro_f1, "teacher_requests": r.teacher_requests, "seconds": round(seconds, 1)}
        for r in result.rounds
    ]


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as file:
        return list(csv.DictReader(file))


def append_rows(path: Path, rows: list[dict]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def summary(rows: list[dict], command: str) -> str:
    def stat(values: list[float]) -> str:
        if not values:
            return "-"
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {spread:.3f}"

    lines = [f"Command: `{command}`", "", "| dataset | arm | round | train size | test accuracy | test macro-F1 | added (cum.) | rejected (cum.) | teacher requests (cum.) | seeds |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["dataset"], r["arm"], int(r["round"])) for r in rows}, key=lambda k: (k[0], k[1] != "none", k[1], k[2]))
    for dataset, arm, round_ in keys:
        group = [r for r in rows if (r["dataset"], r["arm"], int(r["round"])) == (dataset, arm, round_)]
        cumulative = {}
        for metric in ("added", "rejected", "teacher_requests"):
            per_seed = [sum(int(x[metric]) for x in rows if x["dataset"] == dataset and x["arm"] == arm and x["seed"] == g["seed"]
                            and int(x["round"]) <= round_) for g in group]
            cumulative[metric] = statistics.mean(per_seed)
        lines.append(
            f"| {dataset} | {arm} | {round_} | {statistics.mean(int(r['train_size']) for r in group):.0f} | "
            f"{stat([float(r['test_accuracy']) for r in group])} | {stat([float(r['test_macro_f1']) for r in group])} | "
            f"{cumulative['added']:.1f} | {cumulative['rejected']:.1f} | {cumulative['teacher_requests']:.1f} | {len(group)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["trec6", "sst2"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--student", default="embed-lr")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--teacher-threads", type=int, default=None, help="torch threads (1 on a busy machine)")
    parser.add_argument("--work", type=Path, default=Path("bench/results/work-llm2llm"))
    parser.add_argument("--csv", type=Path, default=Path("bench/results/llm2llm_quality.csv"))
    parser.add_argument("--markdown", type=Path, default=Path("bench/results/llm2llm_quality.md"))
    args = parser.parse_args()
    command = "python bench/llm2llm_quality.py " + " ".join(
        [f"--datasets {' '.join(args.datasets)}", f"--seeds {' '.join(map(str, args.seeds))}", f"--student {args.student}", f"--rounds {args.rounds}"])
    quiet = Console(stderr=True, quiet=True)
    done = {(r["dataset"], r["seed"], r["arm"]) for r in load_rows(args.csv)}
    for name in args.datasets:
        for seed in args.seeds:
            if (name, str(seed), "llm2llm") not in done:
                result, seconds = one_run(LLM2LLM(rounds=args.rounds), name, seed, args.student, args.work, None, quiet, args.teacher_threads)
                baseline = [{**rows_for(name, seed, "none", result, seconds)[0], "added": 0, "rejected": 0, "teacher_requests": 0}]
                append_rows(args.csv, baseline + rows_for(name, seed, "llm2llm", result, seconds))
                print(f"{name} seed {seed} llm2llm: " + ", ".join(f"{r.test_accuracy:.3f}" for r in result.rounds), flush=True)
            rows = [r for r in load_rows(args.csv) if r["dataset"] == name and r["seed"] == str(seed) and r["arm"] == "llm2llm"]
            calls = sum(int(r["teacher_requests"]) for r in rows)
            if (name, str(seed), "one-shot") not in done:
                method = LLM2LLM(rounds=args.rounds, one_shot=True, one_shot_examples=calls)
                result, seconds = one_run(method, name, seed, args.student, args.work, calls, quiet, args.teacher_threads)
                append_rows(args.csv, rows_for(name, seed, "one-shot", result, seconds))
                print(f"{name} seed {seed} one-shot ({calls} calls): " + ", ".join(f"{r.test_accuracy:.3f}" for r in result.rounds), flush=True)
    write_page(args.markdown, summary(load_rows(args.csv), command), TITLE)
    print(args.markdown.read_text())


if __name__ == "__main__":
    main()

"""The embedded default run (`llmaug run`, every default) timed whole, process start to exit, model loading
included, under `/usr/bin/time -v`: wall time, peak memory and test accuracy, for one or more checkouts of the
code side by side (e.g. the code before a change and after it), alternating within each seed so that a change in
machine load hits all of them alike.

    flock /work/bench.lock .venv/bin/python bench/default_run.py --seeds 0 1 2 \
        --code before=/path/to/old-checkout/src --code after=src

Each `--code LABEL=SRC` runs `python -m llmaug.cli run --seed S --out DIR` with `SRC` first on PYTHONPATH (this
interpreter, so the same packages). Rows go to bench/results/default_run.csv (a rerun replaces the rows of the same
label and seed) and the summary to bench/results/default_run.md. The run directories are temporary.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
COLUMNS = ("label", "seed", "wall_seconds", "peak_rss_mib", "final_accuracy", "round_accuracies", "seed_errors",
           "teacher_requests", "load_before", "load_after", "code")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--code", action="append", default=[], metavar="LABEL=SRC",
                        help="a checkout's src folder under a label; repeatable (default: after=src)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("run_args", nargs="*", help="extra `llmaug run` arguments, after --")
    return parser.parse_args()


def timed_run(label: str, src: Path, seed: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        env = {**os.environ, "PYTHONPATH": f"{src.resolve()}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        command = ["/usr/bin/time", "-v", sys.executable, "-m", "llmaug.cli", "run", "--seed", str(seed),
                   "--out", str(out), *extra]
        load_before = _load()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{label} seed {seed} failed:\n{done.stderr[-3000:]}")
        summary = _read_summary(out)
    stats = done.stderr
    rounds = summary["rounds"]
    return {
        "label": label, "seed": seed, "wall_seconds": round(_wall(stats), 1),
        "peak_rss_mib": round(int(_field(stats, "Maximum resident set size (kbytes)")) / 1024),
        "final_accuracy": summary["test"]["accuracy"],
        "round_accuracies": " ".join(f"{r['test_accuracy']:.3f}" for r in rounds),
        "seed_errors": " ".join(str(r["pool_errors"]) for r in rounds),
        "teacher_requests": sum(r["teacher_requests"] for r in rounds),
        "load_before": load_before, "load_after": _load(), "code": str(src),
    }


def _read_summary(out: Path) -> dict:
    import json

    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def _field(stats: str, name: str) -> str:
    match = re.search(rf"{re.escape(name)}: (.+)", stats)
    if match is None:
        raise SystemExit(f"/usr/bin/time printed no {name!r}")
    return match.group(1).strip()


def _wall(stats: str) -> float:
    parts = [float(part) for part in _field(stats, "Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
    return sum(part * 60 ** power for power, part in enumerate(reversed(parts)))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def render(rows: list[dict], command: str) -> str:
    labels = list(dict.fromkeys(r["label"] for r in rows))

    def values(label: str, key: str) -> list[float]:
        return [float(r[key]) for r in rows if r["label"] == label]

    base = statistics.median(values(labels[0], "wall_seconds"))
    lines = [
        f"Command: `{command}`",
        "",
        "Whole `llmaug run` processes (LLM2LLM, embedded teacher, fine-tuned MiniLM student, TREC-6 1%, 3 rounds), "
        "model loading included, timed by `/usr/bin/time -v`; the labels alternate within each seed.",
        "",
        "| code | seeds | wall time, median (min–max) | vs " + labels[0] + " | peak RSS, median (MiB) | "
        "final test accuracy, mean ± sd (per seed) |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for label in labels:
        walls, accuracies = values(label, "wall_seconds"), values(label, "final_accuracy")
        seeds = [r["seed"] for r in rows if r["label"] == label]
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        lines.append(
            f"| {label} | {', '.join(map(str, seeds))} | {_minutes(statistics.median(walls))} "
            f"({_minutes(min(walls))}–{_minutes(max(walls))}) | {statistics.median(walls) / base:.2f}× | "
            f"{statistics.median(values(label, 'peak_rss_mib')):.0f} | {statistics.mean(accuracies):.3f} ± {spread:.3f} "
            f"({', '.join(f'{a:.3f}' for a in accuracies)}) |")
    lines += ["", "| code | seed | wall (s) | peak RSS (MiB) | test accuracy per round | seed errors per round | "
              "teacher requests | load average before / after |", "| --- | ---: | ---: | ---: | --- | --- | ---: | --- |"]
    for r in sorted(rows, key=lambda r: (int(r["seed"]), labels.index(r["label"]))):
        lines.append(f"| {r['label']} | {r['seed']} | {r['wall_seconds']} | {r['peak_rss_mib']} | {r['round_accuracies']} | "
                     f"{r['seed_errors']} | {r['teacher_requests']} | {r['load_before']} / {r['load_after']} |")
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def main() -> None:
    args = parse_args()
    codes = [entry.partition("=")[::2] for entry in args.code] or [("after", "src")]
    command = "python bench/default_run.py " + shlex.join(sys.argv[1:])
    for seed in args.seeds:
        for label, src in codes:
            row = timed_run(label, Path(src), seed, args.run_args)
            print(row, flush=True)
            save(args.results, [row], command)  # after every run: an interrupted benchmark keeps what it did


def save(results: Path, rows: list[dict], command: str) -> None:
    from llmaug.bench.results import replace_rows, write_page

    rows = replace_rows(results / "default_run.csv", rows, COLUMNS, ("label", "seed"))
    write_page(results / "default_run.md", render(rows, command), "The embedded default run: time, memory, accuracy")


if __name__ == "__main__":
    main()

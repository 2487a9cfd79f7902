"""Targeting policies ranked on the oracle pool, and the round-selection rule measured on the same runs (issue #13).

    python bench/policies.py --data-root ../shared/data --students tfidf embed-lr   # runs the grids, then the page
    python bench/policies.py --students tfidf --report-only                          # the page from finished grids

Runs bench/policies.yaml once per student (grid `policies-<student>`: its own CSV, work folder and table page),
then writes bench/results/policies.md: per student, dataset and setting, each policy's Δ test accuracy against
`random` (rows of the same labels, at random, at equal added rows) with a bootstrap 95% interval paired over seeds
and eval rows, the mean over the whole grid, whether a policy meets the goal (≥ +3 points on average, never more
than 1 point below `random` on any dataset), a plot, and how the round-selection rule (best-cv) did against the
last round and against no augmentation.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from llmaug.bench.machine import machine_facts  # noqa: E402
from llmaug.bench.results import read_rows, write_page  # noqa: E402
from llmaug.bench.table import machine_line  # noqa: E402
from llmaug.evaluation.selection import choose_round  # noqa: E402
from llmaug.evaluation.verdict import grouped_interval  # noqa: E402

HERE = Path(__file__).resolve().parent
GRID = HERE / "policies.yaml"
RESULTS = HERE / "results"
PAGE = RESULTS / "policies.md"
TITLE = "Targeting policies on the oracle pool, and the round-selection rule"
BASELINE = "random"
GOAL_MEAN, GOAL_FLOOR = 3.0, -1.0  # points: mean gain over random, and the worst dataset allowed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--students", nargs="+", default=["tfidf"])
    parser.add_argument("--datasets", nargs="+", help="only these datasets of the grid")
    parser.add_argument("--arms", nargs="+", help="only these arms (with none and random, which the page needs)")
    parser.add_argument("--settings", nargs="+", help="only these settings of the grid")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--finished-only", action="store_true",
                        help="run no cell: rewrite each student's tables from the cells its work folder has finished "
                             "(after a grid was stopped part-way, its CSV holds only the cells it reached)")
    args = parser.parse_args()
    for student in args.students:
        if not args.report_only:
            run_grid(student, args)
    write_page(PAGE, page(args.students), TITLE)
    print(f"wrote {PAGE}")


def grid_for(student: str, args) -> Path:
    """bench/policies.yaml for one student, with the subsets asked for, as its own grid."""
    grid = yaml.safe_load(GRID.read_text(encoding="utf-8"))
    grid["name"] = f"policies-{student}"
    grid["title"] = f"{grid['title']} ({student} student)"
    grid["defaults"]["student"] = student
    if args.datasets:
        grid["datasets"] = [d for d in grid["datasets"] if (d if isinstance(d, str) else d["name"]) in args.datasets]
    if args.settings:
        grid["settings"] = [s for s in grid["settings"] if s["name"] in args.settings]
    if args.arms:
        grid["arms"] = [a for a in grid["arms"] if a["name"] in {"none", BASELINE, *args.arms}]
    path = RESULTS / f"grid_policies-{student}.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False), encoding="utf-8")
    return path


def grid_command(student: str, args) -> str:
    """The command that reruns this student's grid: the subsets asked for included, --finished-only not."""
    words = ["python", "bench/policies.py", "--data-root", str(args.data_root), "--students", student]
    for flag, values in (("--datasets", args.datasets), ("--settings", args.settings), ("--arms", args.arms)):
        if values:
            words += [flag, *values]
    return shlex.join(words)


def run_grid(student: str, args) -> None:
    from rich.console import Console

    from llmaug.bench.run import run_bench

    grid = grid_for(student, args)
    command = grid_command(student, args)
    cells = FinishedCellsOnly() if args.finished_only else None
    outcome = run_bench(grid, data_root=args.data_root, results=RESULTS, console=Console(stderr=True), command=command,
                        cells=cells)
    print(f"{student}: {len(outcome.ran)} cells run, {len(outcome.reused)} reused, {len(outcome.failed)} failed", file=sys.stderr)


class FinishedCellsOnly:
    """A cell runner that computes nothing: every cell not finished before is reported as not run."""

    running = 0

    def start(self, work: Path) -> None:
        return None

    def submit(self, job, done) -> None:
        from llmaug.errors import UserError

        done(job, UserError("not run (--finished-only)"))

    def wait(self) -> None:
        return None

    def close(self) -> None:
        return None


# ----- the page -----


def page(students: list[str]) -> str:
    lines = [f"Command: `python bench/policies.py --data-root ../shared/data --students {' '.join(students)}`", "",
             f"Machine: {machine_line(machine_facts())}.", ""]
    for student in students:
        rows = read_rows(RESULTS / f"bench_policies-{student}.csv")
        if not rows:
            lines += [f"## {student}: no finished cells yet", ""]
            continue
        lines += policy_section(student, rows) + selection_section(student, rows)
    return "\n".join(lines)


def policy_section(student: str, rows: list[dict]) -> list[str]:
    arms = [arm for arm in dict.fromkeys(r["arm"] for r in rows) if arm not in ("none", BASELINE)]
    groups = sorted({(r["dataset"], r["setting"]) for r in rows})
    if not arms:
        return [f"## {student} student: no policy cell finished yet (only `none` and `{BASELINE}`)", ""]
    image = plot(student, rows, arms, groups)
    lines = [f"## {student} student: Δ test accuracy (last round) against `{BASELINE}`, points", "",
             "| dataset | setting | " + " | ".join(arms) + " |", "|---|---|" + "---:|" * len(arms)]
    overall: dict[str, list[list[int]]] = defaultdict(list)
    by_dataset: dict[tuple[str, str], list[list[int]]] = defaultdict(list)
    for dataset, setting in groups:
        cells = []
        for arm in arms:
            differences = paired(rows, dataset, setting, arm, BASELINE)
            overall[arm] += differences
            by_dataset[(arm, dataset)] += differences
            cells.append(interval_text(differences))
        lines.append(f"| {dataset} | {setting} | " + " | ".join(cells) + " |")
    lines.append("| **all** | | " + " | ".join(f"**{interval_text(overall[arm])}**" for arm in arms) + " |")
    lines += ["", "Each cell: mean over seeds of the row-by-row difference in correctness on the same eval rows, with a "
              "bootstrap 95% interval resampling seeds and, within each, eval rows. The last round's student: the "
              "data each policy bought, whichever round the run kept.", ""]
    lines += [f"![{student}: Δ test accuracy against {BASELINE} per policy]({image.name})", ""]
    lines += goal_lines(arms, overall, by_dataset, sorted({d for d, _ in groups})) + [""]
    lines += ["Rows added (mean over seeds): " + "; ".join(
        f"{arm} {statistics.mean(float(r['added']) for r in rows if r['arm'] == arm):.0f}" for arm in [BASELINE, *arms]), ""]
    return lines


def goal_lines(arms: list[str], overall, by_dataset, datasets: list[str]) -> list[str]:
    lines = [f"Goal: a policy ≥ {GOAL_MEAN:+.0f} points over `{BASELINE}` on average and never below {GOAL_FLOOR:+.0f} "
             "on any dataset:", ""]
    for arm in arms:
        mean = 100 * _mean(overall[arm])
        worst = min((100 * _mean(by_dataset[(arm, d)]), d) for d in datasets if by_dataset[(arm, d)])
        met = mean >= GOAL_MEAN and worst[0] >= GOAL_FLOOR
        lines.append(f"- {arm}: mean {mean:+.1f}, worst dataset {worst[1]} {worst[0]:+.1f} → {'**met**' if met else 'not met'}")
    return lines


def selection_section(student: str, rows: list[dict]) -> list[str]:
    """The round-selection rule replayed on every LLM2LLM cell from its saved held-out judgements, for each signal
    it could compare rounds on: the test accuracy of the student each variant returns, against the last round's
    and against no augmentation's. (The rule never sees the test set; the test set only scores its choice.)"""
    none = {(r["dataset"], r["setting"], r["seed"]): float(r["test_accuracy"]) for r in rows if r["arm"] == "none"}
    cells = [(r, none[(r["dataset"], r["setting"], r["seed"])]) for r in rows
             if r["arm"] != "none" and r["last_accuracy"] and (r["dataset"], r["setting"], r["seed"]) in none]
    replays = [(replay(Path(r["run_dir"])), base) for r, base in cells]
    replays = [(rounds, base) for rounds, base in replays if rounds]
    if not replays:
        return []
    lines = [f"## {student} student: choosing the round without the test set, replayed on {len(replays)} LLM2LLM cells",
             "", "| student returned | mean test accuracy % | cells below none | worst vs none, points | "
             "cells below last | cells above last | kept round 0 |", "|---|---:|---:|---:|---:|---:|---:|"]
    variants = [("no augmentation (none)", None), ("last round (the paper)", "last")] + [
        (f"best-cv on {metric}, {margin:g} SE{', accuracy kept' if keep else ''}", (metric, margin, keep))
        for metric in METRICS for margin in (1.0, 2.0) for keep in (False, True)]
    for name, variant in variants:
        picked, zero = [], 0
        for (evaluations, accuracy), base in replays:
            if variant is None:
                picked.append((base, base, accuracy[max(accuracy)]))
                continue
            chosen = max(accuracy) if variant == "last" else choose_round(evaluations, "best-cv", *variant[1:2], variant[0], variant[2]).chosen_round
            zero += chosen == 0
            picked.append((accuracy[chosen], base, accuracy[max(accuracy)]))
        kept = [p for p, _, _ in picked]
        lines.append(
            f"| {name} | {100 * statistics.mean(kept):.2f} | {sum(p < b - TOLERANCE for p, b, _ in picked)} | "
            f"{100 * min(p - b for p, b, _ in picked):+.1f} | {sum(p < v - TOLERANCE for p, _, v in picked)} | "
            f"{sum(p > v + TOLERANCE for p, _, v in picked)} | {zero if variant not in (None, 'last') else '–'} |")
    return lines + ["", "Signals: margin = held-out probability of the gold label minus the next label's; gold-prob = "
                    "that probability; log-loss = its logarithm; accuracy = right or wrong. A round is kept only if it "
                    "beats round 0 on the mean paired difference by more than the given number of standard errors.", ""]


METRICS = ("margin", "gold-prob", "log-loss", "accuracy")
TOLERANCE = 1e-5  # the CSV keeps accuracies to 6 decimals


def replay(run_dir: Path) -> tuple[list, dict[int, float]] | None:
    """A cell's per-round evaluations (held-out judgements) and per-round test accuracy, from its run directory."""
    import json

    from llmaug.evaluation import Evaluation, HeldOut
    from llmaug.students.metrics import Metrics

    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        evaluations, accuracy = [], {}
        for record in summary["rounds"]:
            saved = json.loads((run_dir / "rounds" / f"{record['round']:03d}" / "evaluation.json").read_text(encoding="utf-8"))
            held_out = HeldOut(**saved["held_out"]) if saved.get("held_out") else None
            evaluations.append(Evaluation(record["round"], saved["train_size"], Metrics.model_validate(saved["pool"]), [],
                                          held_out=held_out))
            accuracy[record["round"]] = float(record["test_accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return evaluations, accuracy


def plot(student: str, rows: list[dict], arms: list[str], groups: list[tuple[str, str]]) -> Path:
    """Δ vs random per policy (bars) for each dataset and setting, with the intervals as whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = RESULTS / f"policies-{student}.png"
    figure, axis = plt.subplots(figsize=(max(8, 1.2 * len(groups) * len(arms) / 3), 4.5))
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        means, errors = [], [[], []]
        for dataset, setting in groups:
            differences = paired(rows, dataset, setting, arm, BASELINE)
            mean = 100 * _mean(differences)
            low, high = (100 * v for v in grouped_interval(differences)) if differences else (mean, mean)
            means.append(mean)
            errors[0].append(mean - low)
            errors[1].append(high - mean)
        positions = [g + (i - (len(arms) - 1) / 2) * width for g in range(len(groups))]
        axis.bar(positions, means, width, yerr=errors, capsize=2, label=arm)
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(groups)), [f"{d}\n{s}" for d, s in groups])
    axis.set_ylabel(f"Δ test accuracy vs {BASELINE}, points")
    axis.set_title(f"Targeting policies on the oracle pool ({student} student), 95% intervals")
    axis.legend(fontsize=8, ncol=min(4, len(arms)))
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def paired(rows: list[dict], dataset: str, setting: str, arm: str, baseline: str) -> list[list[int]]:
    """Per seed, the row-by-row difference in correctness of `arm`'s last-round student and `baseline`'s."""
    def bits(name: str) -> dict[str, str]:
        return {r["seed"]: r["last_correct"] for r in rows
                if (r["dataset"], r["setting"], r["arm"]) == (dataset, setting, name) and r["last_correct"]}

    mine, theirs = bits(arm), bits(baseline)
    return [[int(a) - int(b) for a, b in zip(mine[s], theirs[s])] for s in sorted(mine) if len(mine[s]) == len(theirs.get(s, ""))]


def interval_text(differences: list[list[int]]) -> str:
    if not differences:
        return "–"
    low, high = grouped_interval(differences)
    return f"{100 * _mean(differences):+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def _mean(differences: list[list[int]]) -> float:
    return statistics.mean(statistics.mean(group) for group in differences) if differences else 0.0


if __name__ == "__main__":
    main()

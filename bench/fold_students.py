"""Cheaper k-fold students: do they pick the same seed errors as the fine-tuned MiniLM folds, and how much faster?

LLM2LLM judges each seed by a student trained on the other folds (5 folds, the run's student by default) and asks
the teacher for examples like the seeds those students get wrong. For each 1% TREC-6 sample (`--seeds`) this trains
the reference folds (the run's fine-tuned MiniLM, default options), the same folds again with another training seed
(the noise floor: how much the error choice moves by chance alone), and every candidate (`--variants`), on the
same stratified folds, and reports per variant: the wall time of the 5 fold trainings, the held-out accuracy (CV
accuracy), and how its wrong seeds overlap the reference's (Jaccard of the error sets; share of seeds on which
both agree right/wrong).

    flock /work/bench.lock .venv/bin/python bench/fold_students.py --seeds 0 1 2 \
        --variants "finetune:epochs=5" "finetune:epochs=3" embed-lr tfidf

A variant is a student spec with options: `KIND[:KEY=VALUE,KEY=VALUE]`. Rows go to bench/results/fold_students.csv
(a rerun replaces the rows of the same seed and variant) and the summary to bench/results/fold_students.md.

With `--test`, each variant instead trains once on the whole 1% sample and is scored on the TREC-6 test split (as
the run's own student would be): fit time and test accuracy, in fold_students_test.csv and a second table.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import yaml  # noqa: E402

from llmaug.bench.machine import machine_facts  # noqa: E402
from llmaug.bench.results import read_rows, replace_rows, write_page  # noqa: E402
from llmaug.data import load_bundled, sample_fraction  # noqa: E402
from llmaug.data.example import Example  # noqa: E402
from llmaug.evaluation import stratified_folds  # noqa: E402
from llmaug.students import make_student  # noqa: E402

RESULTS = Path(__file__).parent / "results"
COMMAND = "python bench/fold_students.py " + shlex.join(sys.argv[1:])
REFERENCE = "finetune"
NOISE = "finetune (training seed + 1000)"
COLUMNS = ("seed", "variant", "fold_seconds", "cv_accuracy", "errors", "jaccard", "agreement", "load", "command")
TEST_COLUMNS = ("seed", "variant", "fit_seconds", "test_accuracy", "load", "command")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=["finetune:epochs=5", "embed-lr", "tfidf"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--test", action="store_true", help="test accuracy of one fit on the whole sample instead")
    return parser.parse_args()


def parse_variant(variant: str) -> tuple[str, dict]:
    kind, _, rest = variant.partition(":")
    options = {}
    for pair in filter(None, rest.split(",")):
        key, _, value = pair.partition("=")
        options[key.strip()] = yaml.safe_load(value)
    return kind, options


def held_out_wrong(seed_rows: list[Example], folds: list[list[int]], kind: str, options: dict,
                   training_seed: int) -> tuple[set[str], float]:
    """The ids of the seed rows that the fold students get wrong, and the seconds the folds took."""
    wrong: set[str] = set()
    start = time.perf_counter()
    for held in folds:
        held_ids = {seed_rows[i].id for i in held}
        train = [e for e in seed_rows if e.id not in held_ids]
        student = make_student(kind, **options).fit(train, seed=training_seed)
        rows = [seed_rows[i] for i in held]
        wrong.update(e.id for e, predicted in zip(rows, student.predict(rows)) if predicted != e.label)
    return wrong, time.perf_counter() - start


def compare(seed: int, args: argparse.Namespace) -> list[dict]:
    seed_rows = sample_fraction(load_bundled("trec6"), args.fraction, seed=seed)
    folds = stratified_folds(seed_rows, args.folds, seed)
    reference, reference_seconds = held_out_wrong(seed_rows, folds, REFERENCE, {}, seed)
    rows = [_row(seed, REFERENCE, reference_seconds, reference, reference, len(seed_rows))]
    noise, seconds = held_out_wrong(seed_rows, folds, REFERENCE, {}, seed + 1000)
    rows.append(_row(seed, NOISE, seconds, noise, reference, len(seed_rows)))
    for variant in args.variants:
        kind, options = parse_variant(variant)
        wrong, seconds = held_out_wrong(seed_rows, folds, kind, options, seed)
        rows.append(_row(seed, variant, seconds, wrong, reference, len(seed_rows)))
        print(rows[-1], flush=True)
    return rows


def score_on_test(seed: int, args: argparse.Namespace) -> list[dict]:
    seed_rows = sample_fraction(load_bundled("trec6"), args.fraction, seed=seed)
    test = load_bundled("trec6", "test")
    rows = []
    for variant in [REFERENCE, *args.variants]:
        kind, options = parse_variant(variant)
        start = time.perf_counter()
        student = make_student(kind, **options).fit(seed_rows, seed=seed)
        seconds = time.perf_counter() - start
        accuracy = sum(p == e.label for p, e in zip(student.predict(test), test)) / len(test)
        rows.append({"seed": seed, "variant": variant, "fit_seconds": round(seconds, 1),
                     "test_accuracy": round(accuracy, 4), "load": " ".join(f"{x:.2f}" for x in os.getloadavg())})
        print(rows[-1], flush=True)
    return rows


def _row(seed: int, variant: str, seconds: float, wrong: set[str], reference: set[str], total: int) -> dict:
    union = wrong | reference
    return {
        "seed": seed, "variant": variant, "fold_seconds": round(seconds, 1),
        "cv_accuracy": round(1 - len(wrong) / total, 4), "errors": len(wrong),
        "jaccard": round(len(wrong & reference) / len(union), 3) if union else 1.0,
        "agreement": round(1 - len(wrong ^ reference) / total, 3),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def render_test(rows: list[dict]) -> list[str]:
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    lines = ["", "One fit on the whole 1% sample, scored on the TREC-6 test split (500 questions), as the run's own "
             "student; median fit time, mean ± sd accuracy over the seeds: " + "; ".join(commands(rows)) + ".", "",
             "| student | seeds | fit (s) | test accuracy | per seed |", "| --- | --- | ---: | --- | --- |"]
    for variant in variants:
        mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: int(r["seed"]))
        accuracies = [float(r["test_accuracy"]) for r in mine]
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        lines.append(f"| `{variant}` | {', '.join(str(r['seed']) for r in mine)} | "
                     f"{statistics.median(float(r['fit_seconds']) for r in mine):.1f} | "
                     f"{statistics.mean(accuracies):.3f} ± {spread:.3f} | {', '.join(f'{a:.3f}' for a in accuracies)} |")
    return lines


def commands(rows: list[dict]) -> list[str]:
    return [f"`{command}`" for command in dict.fromkeys(r["command"] for r in rows)]


def render(rows: list[dict]) -> str:
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    seeds = sorted({int(r["seed"]) for r in rows})
    reference_time = statistics.median(float(r["fold_seconds"]) for r in rows if r["variant"] == REFERENCE)
    lines = [
        "Commands: " + "; ".join(commands(rows)),
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine_facts(("torch", "transformers")).items()) + ".",
        "",
        f"TREC-6, 1% samples (seeds {', '.join(map(str, seeds))}), round 0 (the seed set alone), 5 stratified folds; "
        "medians over the seeds. Jaccard and agreement compare each variant's wrong seeds with the reference's "
        f"(`{REFERENCE}` with its default options); `{NOISE}` is the reference again with another training seed, "
        "the noise floor.",
        "",
        "| fold student | 5 folds (s) | speed-up | CV accuracy | wrong seeds | Jaccard vs reference | agreement |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]

        def median(key: str) -> float:
            return statistics.median(float(r[key]) for r in mine)

        lines.append(f"| `{variant}` | {median('fold_seconds'):.1f} | {reference_time / median('fold_seconds'):.1f}× | "
                     f"{median('cv_accuracy'):.3f} | {median('errors'):.0f} | {median('jaccard'):.2f} | "
                     f"{median('agreement'):.2f} |")
    lines += ["", "Per seed (load average at the end of each row):", "",
              "| seed | fold student | s | CV accuracy | wrong | Jaccard | agreement | load |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in sorted(rows, key=lambda r: (int(r["seed"]), variants.index(r["variant"]))):
        lines.append(f"| {r['seed']} | `{r['variant']}` | {r['fold_seconds']} | {r['cv_accuracy']} | {r['errors']} | "
                     f"{r['jaccard']} | {r['agreement']} | {r['load']} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    fold_csv, test_csv = args.results / "fold_students.csv", args.results / "fold_students_test.csv"
    if args.test:
        fresh = [row for seed in args.seeds for row in score_on_test(seed, args)]
        replace_rows(test_csv, [{**row, "command": COMMAND} for row in fresh], TEST_COLUMNS, ("seed", "variant"))
    else:
        fresh = [row for seed in args.seeds for row in compare(seed, args)]
        replace_rows(fold_csv, [{**row, "command": COMMAND} for row in fresh], COLUMNS, ("seed", "variant"))
    page = render(read_rows(fold_csv))
    if test_csv.exists():
        page += "\n" + "\n".join(render_test(read_rows(test_csv)))
    write_page(args.results / "fold_students.md", page, "Cheaper k-fold students: speed and error choice")
    print(page)


if __name__ == "__main__":
    main()

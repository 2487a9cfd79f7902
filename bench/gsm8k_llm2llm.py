"""LLM2LLM as published on GSM8K, with the embedded teacher and the LoRA-tuned causal-LM student, on CPU.

    python bench/gsm8k_llm2llm.py gsm8k --seeds 16 --rounds 2 --test 40
    python bench/gsm8k_llm2llm.py trec6 --test 500

`gsm8k`: the seed set is 1% of GSM8K train drawn with a fixed RNG seed (74 rows; `--seeds N` keeps the first N
of them when CPU time forbids all 74), k = 1 new problem per wrong seed per round, the student retrained from
scratch every round and judged on its own training seeds (the published protocol). Round 0 is the no-augmentation
baseline. Test accuracy is exact numeric match of the final answer on a seeded sample of GSM8K test.
`trec6`: no augmentation, the 1% TREC-6 seed set (54 rows), the causal-LM student vs the fine-tuned MiniLM one.

Each command writes `bench/results/gsm8k_<name>.md` (table, wall time per round and per phase, samples) and
keeps its run directory, with every teacher response cached, under `--work`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402
from rich.console import Console  # noqa: E402

from llmaug.bench.results import write_page  # noqa: E402
from llmaug.data import load_bundled, load_examples, sample_fraction  # noqa: E402
from llmaug.filters.answers import extract_answer  # noqa: E402
from llmaug.methods import LLM2LLM  # noqa: E402
from llmaug.runner import run  # noqa: E402
from llmaug.students import evaluate, make_student  # noqa: E402
from llmaug.students.causal_lm import DEFAULT_EPOCHS, CausalLMStudent  # noqa: E402
from llmaug.teachers import Teacher  # noqa: E402
from llmaug.teachers.embedded import EmbeddedBackend  # noqa: E402

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"  # ../shared beside the repo
RESULTS = Path(__file__).parent / "results"
PHASES = defaultdict(float)  # seconds per phase, summed over the run


class TimedStudent(CausalLMStudent):
    """The causal-LM student, with the time spent training and generating added up per phase."""

    def fit(self, examples, seed=0):
        started = time.perf_counter()
        try:
            return super().fit(examples, seed)
        finally:
            PHASES["student training"] += time.perf_counter() - started

    def predict(self, examples):
        started = time.perf_counter()
        try:
            return super().predict(examples)
        finally:
            PHASES["student generation"] += time.perf_counter() - started


class TimedTeacher(Teacher):
    def generate(self, requests, **kwargs):
        started = time.perf_counter()
        try:
            return super().generate(requests, **kwargs)
        finally:
            PHASES["teacher generation"] += time.perf_counter() - started


class RoundClock(Console):
    """A console that notes when the runner reports each round's end ("round k: ...")."""

    def __init__(self):
        super().__init__(stderr=True)
        self.ends: list[float] = []

    def print(self, *objects, **kwargs):
        if objects and str(objects[0]).startswith("round "):
            self.ends.append(time.perf_counter())
        super().print(*objects, **kwargs)


def gsm8k(args) -> None:
    seeds = sample_fraction(load_examples(GSM8K / "train.jsonl"), 0.01, seed=args.seed)[: args.seeds]
    test_pool = load_examples(GSM8K / "test.jsonl")
    test = random.Random(args.seed).sample(test_pool, args.test)
    student_options = {"epochs": args.epochs, "max_new_tokens": args.max_new_tokens, "threads": args.threads}
    student_options = {k: v for k, v in student_options.items() if v is not None}
    # One folder per configuration: the runner reuses a folder's finished trainings, whatever the student options.
    epochs = args.epochs or DEFAULT_EPOCHS["qa"]
    out = args.work / (f"gsm8k-seed{args.seed}-n{args.seeds}-r{args.rounds}-t{args.test}-e{epochs}"
                       f"-m{args.max_new_tokens}-tt{args.teacher_max_tokens}")
    teacher = TimedTeacher(EmbeddedBackend(threads=args.threads), cache=out / "cache.sqlite")
    method = LLM2LLM(rounds=args.rounds, per_error=1, error_source="train", qa_max_tokens=args.teacher_max_tokens)
    clock = RoundClock()
    started = time.perf_counter()
    try:
        result = run(method, seeds, teacher=teacher, student=lambda: TimedStudent(**student_options), eval=test,
                     out=out, random_seed=args.seed, console=clock)
    finally:
        teacher.close()
    ends = [started] + clock.ends
    round_seconds = [b - a for a, b in zip(ends, ends[1:])]
    write_gsm8k_report(args, out, result, seeds, test, round_seconds, time.perf_counter() - started)


def write_gsm8k_report(args, out, result, seeds, test, round_seconds, total) -> None:
    lines = [
        "# LLM2LLM on GSM8K: embedded SmolLM2-135M-Instruct teacher, LoRA-tuned SmolLM2-135M-Instruct student",
        "",
        f"Command: `{command()}`  ",
        f"Machine: CPU only, {args.threads} torch thread(s), 2 cores shared with other jobs (wall times include "
        "waiting for a core). Total wall time "
        f"{total / 60:.1f} min.",
        "",
        f"- seeds: the first {len(seeds)} of the seeded 1% sample of GSM8K train (74 rows, RNG seed {args.seed})"
        + (" — all of it" if len(seeds) == 74 else " — a smaller slice, for CPU time"),
        f"- test: {len(test)} GSM8K test questions (seeded sample); accuracy = exact numeric match of the final answer",
        f"- student: `causal-lm` (LoRA r=16 on q/k/v/o, lr 5e-4, {args.epochs or DEFAULT_EPOCHS['qa']} epochs, "
        "batch 4), greedy, "
        f"max {args.max_new_tokens} new tokens; retrained from scratch each round",
        f"- teacher: embedded SmolLM2-135M-Instruct, T=0.8, at most {args.teacher_max_tokens} tokens, the `llm2llm-qa` "
        "prompt (system prompt, one-shot demo, the student's wrong answer); k = 1 per wrong seed per round, 2 attempts",
        "- round 0 is the no-augmentation baseline (the student trained on the seeds alone)",
        "",
        "| round | train size | seed errors | seed accuracy | added | rejected | test accuracy | round wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for record, seconds in zip(result.rounds, round_seconds):
        correct = round(record.test_accuracy * len(test))
        lines.append(
            f"| {record.round} | {record.train_size} | {record.pool_errors}/{len(seeds)} | {record.pool_accuracy:.3f} | "
            f"{record.added} | {record.rejected} | {record.test_accuracy:.3f} ({correct}/{len(test)}) | "
            f"{seconds / 60:.1f} min |"
        )
    reasons = Counter()
    for record in result.rounds:
        reasons.update(record.rejection_reasons)
    lines += ["", "Wall time by phase (whole run): " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in PHASES.items()), ""]
    lines += ["Rejected teacher outputs: " + (", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "none"), ""]
    lines += ["## Accepted teacher problems (all, up to 6)", ""]
    for example in result.added[:6]:
        lines += [f"- **Q:** {one_line(example.text)}  ", f"  **A:** {one_line(example.answer)}"]
    predictions = json.loads((out / "rounds" / f"{len(result.rounds) - 1:03d}" / "errors.jsonl")
                             .read_text().splitlines()[0]) if result.rounds[-1].pool_errors else None
    if predictions:
        lines += ["", "## A wrong student answer (last round, a seed)", "", f"- **Q:** {one_line(predictions['text'])}",
                  f"- **gold:** {extract_answer(predictions['answer'])}", f"- **student:** {one_line(predictions['predicted'])}"]
    write_page(RESULTS / f"gsm8k_llm2llm{args.suffix}.md", "\n".join(lines[1:]), lines[0].removeprefix("# "))
    print("\n".join(lines))


def trec6(args) -> None:
    seeds = sample_fraction(load_bundled("trec6"), 0.01, seed=args.seed)
    test = random.Random(args.seed).sample(load_bundled("trec6", "test"), args.test)
    rows = []
    for spec, options in (("finetune", {"threads": args.threads}),
                          ("causal-lm", {"epochs": args.epochs, "threads": args.threads})):
        options = {k: v for k, v in options.items() if v is not None}
        student = make_student(spec, **options)
        started = time.perf_counter()
        student.fit(seeds, seed=args.seed)
        trained = time.perf_counter()
        metrics, _ = evaluate(student, test)
        rows.append((spec, options, metrics, trained - started, time.perf_counter() - trained))
        print(spec, metrics.accuracy, metrics.macro_f1, trained - started, file=sys.stderr)
    lines = [
        "# TREC-6, no augmentation: the causal-LM student vs the fine-tuned MiniLM student",
        "",
        f"Command: `{command()}`  ",
        f"Seeds: the 1% stratified sample of TREC-6 train ({len(seeds)} rows, RNG seed {args.seed}); test: {len(test)} "
        f"questions of TREC-6 test. CPU only, {args.threads} torch thread(s) on 2 shared cores.",
        "",
        "| student | model and training | test accuracy | test macro-F1 | training wall time | prediction wall time |",
        "|---|---|---|---|---|---|",
    ]
    for spec, options, metrics, train_s, predict_s in rows:
        shown = (f"SmolLM2-135M-Instruct + LoRA r=16, {options.get('epochs', DEFAULT_EPOCHS['classification'])} "
                 "epochs, lr 5e-4" if spec == "causal-lm" else "all-MiniLM-L6-v2 fine-tuned, 10 epochs, lr 1e-4")
        lines.append(f"| `{spec}` | {shown} | {metrics.accuracy:.3f} | {metrics.macro_f1:.3f} | {train_s:.0f} s | "
                     f"{predict_s:.0f} s |")
    (RESULTS / f"gsm8k_trec6_causal_lm_vs_minilm{args.suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def one_line(text: str | None, width: int = 400) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def command() -> str:
    return "python bench/gsm8k_llm2llm.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=["gsm8k", "trec6"])
    parser.add_argument("--seeds", type=int, default=74, help="GSM8K: keep the first N of the 74 seeds")
    parser.add_argument("--rounds", type=int, default=2, help="GSM8K: LLM2LLM rounds after round 0")
    parser.add_argument("--test", type=int, default=40, help="test examples (a seeded sample)")
    parser.add_argument("--epochs", type=int, default=None, help="causal-LM student epochs (default: its own)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="causal-LM student generation limit")
    parser.add_argument("--teacher-max-tokens", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--suffix", default="", help="appended to the result file name")
    parser.add_argument("--work", type=Path, default=RESULTS / "work-gsm8k")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    {"gsm8k": gsm8k, "trec6": trec6}[args.benchmark](args)


if __name__ == "__main__":
    main()

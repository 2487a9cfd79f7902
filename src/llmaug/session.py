"""From a RunConfig to a finished run: load and sample data, build teacher, student and method, call the runner."""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import closing
from pathlib import Path
from typing import Any

from rich.console import Console

from llmaug.config import RunConfig, config_yaml, load_config
from llmaug.data import (
    BUNDLED, Columns, check_eval_labels, check_trainable, load_examples, resolve_dataset_folder,
    sample_fraction, sample_per_class,
)
from llmaug.data.example import Example, label_set
from llmaug.data.sampling import sample_n
from llmaug.errors import ConfigError, UserError
from llmaug.filters.quality import QualityFilter
from llmaug.methods import METHOD_CLASSES, Method, TaskInfo
from llmaug.rundir import claim_run_dir
from llmaug.runner import RunResult, run
from llmaug.teachers import Budget, ResponseCache, Teacher
from llmaug.teachers.base import Backend
from llmaug.teachers.spec import backend_from_spec

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONVENTIONAL_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")  # safe to print back: API keys do not look like this


def start_run(config_path: Path | None, overrides: dict[str, Any], resume: Path | None, console: Console) -> RunResult:
    if resume is not None:
        config = _resumed_config(resume, overrides)
    else:
        config = load_config(config_path, overrides)
    out = Path(config.out or f"runs/{config.method}-{Path(config.dataset or config.train).stem}-s{config.seed}")
    config = config.model_copy(update={"out": str(out)})
    _check_run_dir(out, config, resuming=resume is not None)
    # Everything that can be wrong with the input is checked before the run directory is made.
    seed, test = load_run_data(config)
    method = build_method(config)
    student = _student_factory(config)
    task, quality = task_info(config, seed), quality_filter(config)
    budget = Budget(max_calls=config.max_teacher_calls, max_tokens=config.max_tokens_budget)
    backend = _teacher_backend(config)
    created = not out.exists()
    with claim_run_dir(out):  # before the cache opens: a refused second process writes nothing
        teacher = Teacher(backend, cache=out / "cache.sqlite" if config.cache else None, budget=budget, price=config.price)
        try:
            return run(
                method, seed, teacher=teacher, student=student, eval=test, out=out,
                task=task, random_seed=config.seed, config_text=config_yaml(config),
                quality=quality,
                output_format=config.output_format, console=console,
            )
        except UserError:
            teacher.close()
            _remove_unused_run_dir(out, created)
            raise
        finally:
            teacher.close()


def _teacher_backend(config: RunConfig) -> Backend:
    try:
        return backend_from_spec(config.teacher, **_teacher_options(config))
    except TypeError as err:
        raise ConfigError(f"bad teacher option: {err}", "teacher_options") from None


def _teacher_options(config: RunConfig) -> dict[str, Any]:
    """The backend options, with `api_key_env` checked: keys live in the environment, never in a config."""
    options = dict(config.teacher_options)
    for name in options:
        if "key" in name.lower() or "token" in name.lower() or "secret" in name.lower():
            raise ConfigError("API keys are read from the environment only: export the key and set api_key_env to the "
                              "variable's name", f"teacher_options.{name}")
    if config.api_key_env is None:
        return options
    if not config.teacher.startswith(("openai:", "openai-compatible:")):
        raise ConfigError("applies to openai and openai-compatible teachers only", "api_key_env")
    if not ENV_NAME.match(config.api_key_env):
        # Never echo the value: a user who pasted the key itself here must not see it printed back.
        raise ConfigError("must name an environment variable (e.g. OPENAI_API_KEY), not hold the key itself", "api_key_env")
    if not os.environ.get(config.api_key_env):
        shown = config.api_key_env if CONVENTIONAL_ENV_NAME.match(config.api_key_env) else "it names"
        raise ConfigError(f"the environment variable {shown} is not set; export the API key in it", "api_key_env")
    options["api_key_env"] = config.api_key_env
    return options


def _remove_unused_run_dir(out: Path, created: bool) -> None:
    """After bad input (an unreachable teacher, a rejected key), drop the run directory this invocation made if
    it holds no teacher response: there is nothing to resume, and its config.yaml would block the corrected rerun."""
    if not created or not out.is_dir():
        return
    cache = out / "cache.sqlite"
    if cache.exists():
        with closing(ResponseCache(cache)) as opened:
            if len(opened):
                return
    shutil.rmtree(out, ignore_errors=True)


def _resumed_config(run_dir: Path, overrides: dict[str, Any]) -> RunConfig:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError("not a run directory (no config.yaml)", run_dir)
    given = {k: v for k, v in overrides.items() if v is not None and k not in ("out",)}
    if given:
        raise ConfigError(f"--resume takes the run's own settings; drop {', '.join('--' + k.replace('_', '-') for k in given)}", "--resume")
    # The folder may have been moved or copied since: it, not the `out` recorded inside, is the run directory.
    return load_config(path, {"out": str(run_dir)})


def _check_run_dir(out: Path, config: RunConfig, resuming: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError("exists and is not a folder; choose another --out", out)
    saved = out / "config.yaml"
    if resuming or not saved.exists():
        return
    previous = load_config(saved, {}).model_dump(mode="json")
    if _without_out(previous) != _without_out(config.model_dump(mode="json")):
        raise ConfigError("a run with different settings is already there; use --resume to continue it or another --out", out)


def _without_out(settings: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if key != "out"}


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

"""From settings to a finished run: resolve the config, load and sample the data, build the method, teacher and
student from the registry, and hand them to `llmaug.runner.run`, the one code path every run takes (the CLI's
and the Python API's)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from rich.console import Console

from llmaug import registry
from llmaug.config import RunConfig, load_config, teacher_kind_of
from llmaug.data import (
    BUNDLED, Columns, check_eval_labels, check_trainable, load_examples, resolve_dataset_folder,
    sample_fraction, sample_per_class,
)
from llmaug.data.example import Example, label_set
from llmaug.data.sampling import sample_n
from llmaug.device import check_device
from llmaug.errors import ConfigError, TeacherFailures, UserError
from llmaug.evaluation import FitRunner, fit_sequentially
from llmaug.methods import Method, TaskInfo
from llmaug.rundir import claim_run_dir, is_run_dir
from llmaug.runner import RunResult, StudentSpec, run
from llmaug.teachers import Budget, Price, ResponseCache, Teacher
from llmaug.teachers.prices import LOCAL_KINDS, Pricing, pricing
from llmaug.teachers.spec import parse_spec

CONVENTIONAL_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")  # safe to print back: API keys do not look like this
WHERE_SETTINGS = ("out", "ray")  # where a run lives and runs, never what it computes: a resume may change them


def resolve_run_config(config_path: Path | None, overrides: Mapping[str, Any], flags: Mapping[str, str],
                       resume: Path | None) -> RunConfig:
    """The fully resolved settings of a run: a resumed run's own, or the file's with the flags on top."""
    if resume is not None:
        config = _resumed_config(resume, overrides, flags)
    else:
        config = load_config(config_path, overrides, flags)
    return config.model_copy(update={"out": str(run_dir_of(config))})


def run_dir_of(config: RunConfig) -> Path:
    return Path(config.out or f"runs/{config.method}-{Path(config.dataset or config.train).stem}-s{config.seed}")


def start_run(config: RunConfig, console: Console, resuming: bool = False) -> RunResult:
    out = run_dir_of(config)
    _check_run_dir(out, config, resuming)
    # Everything that can be wrong with the input is checked before the run directory is made.
    seed, test = load_run_data(config)
    check_devices(config)
    method = build_method(config)
    task = task_info(config, seed)
    backend_options = _teacher_options(config)
    fit_runner = build_fit_runner(config)
    created = not out.exists()
    with claim_run_dir(out):  # before the cache opens: a refused second process writes nothing
        teacher = build_teacher(config, out, backend_options)
        try:
            return run(
                method, seed, teacher=teacher, student=configured_student(config), eval=test, out=out,
                task=task, random_seed=config.seed, label_check=config.label_check, select=config.select, select_margin=config.select_margin,
                patience=config.patience, folds=config.cv_folds, config=config, output_format=config.output_format,
                console=console, fit_runner=fit_runner, fold_student=configured_student(config, fold=True),
            )
        except UserError as err:
            teacher.close()
            if not isinstance(err, TeacherFailures):  # that run stopped part-way: --resume continues it
                _remove_unused_run_dir(out, created)
            raise
        finally:
            teacher.close()


def check_devices(config: RunConfig) -> None:
    """A device setting this machine cannot meet (cuda without a GPU) fails before any model loads."""
    check_device(config.device, "--device")
    for setting in ("method_options", "teacher_options", "student_options"):
        device = getattr(config, setting).get("device")
        if device is not None:
            check_device(device, f"{setting}.device")


def build_method(config: RunConfig) -> Method:
    options = dict(config.method_options)
    if config.match_budget is not None:
        if "total" not in registry.METHODS[config.method].options_model.model_fields:
            raise ConfigError(f"method {config.method!r} cannot match another run's budget; paraphrase and zerogen can",
                              "--match-budget")
        options["total"] = teacher_calls(Path(config.match_budget))
    return registry.METHODS[config.method].load()(**options)


def build_teacher(config: RunConfig, out: Path | None, backend_options: dict[str, Any] | None = None) -> Teacher:
    """The run's teacher; without `out`, one without a cache (the plan's probe)."""
    return Teacher(
        config.teacher, cache=out / "cache.sqlite" if config.cache and out is not None else None,
        budget=Budget(max_calls=config.max_teacher_calls, max_tokens=config.max_tokens_budget, max_cost=config.max_cost),
        price=run_price(config), **(backend_options if backend_options is not None else _teacher_options(config)),
    )


def build_fit_runner(config: RunConfig) -> FitRunner:
    """How the k-fold students train: one after the other, or with `ray` set as Ray tasks on that cluster (joined
    now, so that a wrong address fails before any work)."""
    if config.ray is None:
        return fit_sequentially
    from llmaug.distributed.cluster import connect
    from llmaug.distributed.training import RayFitRunner

    connect(config.ray)
    return RayFitRunner(config.ray)


def teacher_pricing(config: RunConfig) -> Pricing:
    """What the teacher's tokens cost: the config's price, a price file's, or the shipped table's (at the Batch
    API's discount with `batch`); local teachers cost nothing."""
    spec = parse_spec(config.teacher)
    return pricing(spec.kind, spec.model, config.price, config.price_file, bool(config.teacher_options.get("batch")))


def run_price(config: RunConfig) -> Price | None:
    """The price a run's usage is costed at (None: no cost column). `max_cost` needs one."""
    found = teacher_pricing(config)
    price = found.price if config.price is not None or parse_spec(config.teacher).kind not in LOCAL_KINDS else None
    if config.max_cost is not None and price is None and parse_spec(config.teacher).kind not in LOCAL_KINDS:
        raise ConfigError(f"needs a price for the teacher's tokens: {found.source}", "--max-cost")
    return price


def configured_student(config: RunConfig, fold: bool = False) -> StudentSpec:
    """The factory of the run's students (with `fold`: of its held-out fold students): fresh, untrained, with the
    config's options."""
    if fold:
        return StudentSpec(config.fold_student or config.student, tuple(sorted(config.fold_student_options.items())))
    return StudentSpec(config.student, tuple(sorted(config.student_options.items())))


def _teacher_options(config: RunConfig) -> dict[str, Any]:
    """The backend's options; a key is read from the environment variable `api_key_env` names, never a file. A
    variable other than the backend's default must be set (the default may be unset: servers without keys)."""
    options = dict(config.teacher_options)
    env = options.get("api_key_env")
    if env is not None and env != _default_key_env(config) and not os.environ.get(env):
        shown = env if CONVENTIONAL_ENV_NAME.match(env) else "it names"
        raise ConfigError(f"the environment variable {shown} is not set; export the API key in it", "api_key_env")
    return options


def _default_key_env(config: RunConfig) -> str | None:
    model = registry.TEACHERS[teacher_kind_of(config.teacher)].options_model
    return model.model_fields["api_key_env"].default


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


def _resumed_config(run_dir: Path, overrides: Mapping[str, Any], flags: Mapping[str, str]) -> RunConfig:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError("not a run directory (no config.yaml)", run_dir)
    given = [flags.get(key, key) for key, value in overrides.items() if value is not None and key not in WHERE_SETTINGS]
    if given:
        raise ConfigError(f"--resume takes the run's own settings; drop {', '.join(given)}", "--resume")
    # The folder may have been moved or copied since: it, not the `out` recorded inside, is the run directory.
    return load_config(path, {"out": str(run_dir), "ray": overrides.get("ray")})


def _check_run_dir(out: Path, config: RunConfig, resuming: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError("exists and is not a folder; choose another --out", out)
    if resuming or not out.exists():
        return
    if not is_run_dir(out) and any(out.iterdir()):
        raise ConfigError("is a folder with other files in it, not a run directory; choose an empty or new --out", out)
    saved = out / "config.yaml"
    if not saved.exists():
        return
    previous = load_config(saved, {}).model_dump(mode="json")
    if _without_where(previous) != _without_where(config.model_dump(mode="json")):
        raise ConfigError("a run with different settings is already there; use --resume to continue it or another --out", out)


def _without_where(settings: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if key not in WHERE_SETTINGS}


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

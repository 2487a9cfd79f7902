"""Run configuration: one pydantic model, loaded from YAML with CLI flags on top, and resolved against the
registry so that every component option is validated and filled in with its default.

    method: llm2llm
    method_options: {rounds: 3, per_error: 1}    # the method's own options (`llmaug methods` lists them)
    teacher: embedded
    teacher_options: {batch_size: 8}
    student: finetune
    student_options: {epochs: 10}

`rounds`, `per_error` and `one_shot` may also stand at the top of a file, as shorthands for their
`method_options` (and `api_key_env` for `teacher_options`); flags override the file, whichever way it spells them.
The resolved config (`config.yaml` in the run directory, `llmaug run --print-config`) lists every option.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmaug import registry
from llmaug.device import DEVICE
from llmaug.errors import ConfigError, UserError
from llmaug.options import OptionError
from llmaug.teachers.usage import Price

# Settings that may stand at the top level as a shorthand for a component option: name -> options dict.
# Where `--ray` runs: auto ($RAY_ADDRESS, else a local Ray), a Ray Client address or a cluster's GCS address.
RAY_ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9_.\-\[\]]+:\d+)$")
RAY_ADDRESS_FORMS = "auto, ray://HOST:PORT or HOST:PORT"
SHORTHANDS = {"rounds": "method_options", "per_error": "method_options", "one_shot": "method_options",
              "api_key_env": "teacher_options", "batch": "teacher_options"}


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field("llm2llm", description="the augmentation method (`llmaug methods`)")
    method_options: dict[str, Any] = Field(default_factory=dict, description="the method's options")
    dataset: str | None = Field("trec6", description="a bundled dataset name or a folder with train.jsonl/test.jsonl")
    train: str | None = Field(None, description="a seed file, used as it is (overrides the dataset's train split)")
    eval: str | None = Field(None, description="a test file for reporting (overrides the dataset's test split)")
    fraction: float | None = Field(0.01, gt=0, le=1, description="low-data sample of the train split (LLM2LLM's protocol)")
    per_class: int | None = Field(None, ge=1, description="or k examples per class (PromptMix's protocol); wins over fraction")
    max_eval: int | None = Field(None, ge=1, description="cap the eval set (stratified sample) for quick runs")
    text_col: str | None = Field(None, description="text column of the data files")
    label_col: str | None = Field(None, description="label column")
    pair_col: str | None = Field(None, description="second-text column for sentence-pair tasks")
    task: str | None = Field(None, description='what prompts call the task, e.g. "question classification"')
    unit: str | None = Field(None, description='what one example is, e.g. "question", "movie review"')
    label_descriptions: dict[str, str] = Field(default_factory=dict, description="label -> one line, for prompts")
    teacher: str = Field("embedded", description="the teacher spec (`llmaug teachers`)")
    teacher_options: dict[str, Any] = Field(default_factory=dict, description="the teacher backend's options")
    student: str = Field("finetune", description="the student spec (`llmaug students`)")
    student_options: dict[str, Any] = Field(default_factory=dict, description="the student's options")
    select: Literal["best-cv", "last"] = Field(
        "best-cv", description="the round a run returns: best held-out seed score (never the eval set), or the last (paper)")
    select_margin: float = Field(
        2.0, ge=0, description="best-cv keeps a later round only if it beats round 0 by this many standard errors")
    patience: int | None = Field(None, ge=1, description="stop after this many rounds without held-out improvement")
    cv_folds: int = Field(5, ge=2, le=50, description="k of the held-out students that judge the seed rows")
    fold_student: str | None = Field(
        None, description="the student of those k held-out students (round selection, LLM2LLM's errors); default: "
                          "the run's student, with its kind's cheaper fold settings")
    fold_student_options: dict[str, Any] = Field(
        default_factory=dict, description="the fold student's options (over the run's student_options when it is the same kind)")
    profile: Literal["default", "paper"] = Field(
        "default", description="paper: LLM2LLM's published rules (train-set errors, similar examples, last round)")
    match_budget: str | None = Field(None, description="paraphrase/zerogen: spend as many teacher calls as this finished run")
    label_check: Literal["auto", "none", "centroid"] = Field(
        "auto", description="embedding label check of new examples; auto: on for the weak embedded teacher")
    centroid_top: int = Field(1, ge=1, description="the label must be among this many nearest label centroids")
    seed: int = Field(0, description="random seed for sampling, training and generation")
    out: str | None = Field(None, description="the run directory (default runs/METHOD-DATASET-sSEED)")
    cache: bool = Field(True, description="read and write the teacher cache")
    max_teacher_calls: int | None = Field(None, ge=0, description="stop cleanly after this many teacher requests")
    max_tokens_budget: int | None = Field(None, ge=0, description="stop cleanly after this many teacher tokens")
    max_cost: float | None = Field(None, ge=0, description="stop cleanly once the teacher has cost this many US dollars")
    price: Price | None = Field(None, description="US dollars per million prompt/completion tokens, for the cost column")
    price_file: str | None = Field(None, description="a price table of your own (the shape of llmaug's teachers/prices.yaml)")
    output_format: Literal["jsonl", "csv", "parquet"] = Field("jsonl", description="format of the data files")
    device: DEVICE = Field("auto", description="where torch runs, for every component that has a device option "
                                               "unless its own options say otherwise: auto, cpu, cuda or cuda:N")
    ray: str | None = Field(None, description=(
        "train the k-fold students as Ray tasks on this cluster: auto ($RAY_ADDRESS, else a local Ray), "
        "ray://HOST:PORT or HOST:PORT; it changes where work runs, never the results"))

    @field_validator("ray")
    @classmethod
    def _ray_address(cls, value: str | None) -> str | None:
        if value is not None and not RAY_ADDRESS.match(value):
            raise ValueError(f"expected {RAY_ADDRESS_FORMS}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> "RunConfig":
        if self.dataset is None and self.train is None:
            raise ValueError("give a dataset or a train file")
        return self


SETTINGS = frozenset(RunConfig.model_fields) | frozenset(SHORTHANDS)  # every key a config file may hold


class Source:
    """Where each setting came from, for errors: a flag (`--rounds`), else the config file, else nowhere."""

    def __init__(self, file: str | Path | None = None, flags: Mapping[str, str] | None = None):
        self.file = file
        self.flags = dict(flags or {})  # dotted setting ("method_options.rounds") -> the flag that set it
        self.spelled: dict[str, str] = {}  # dotted setting -> how the file spelled it ("rounds")

    def where(self, key: str) -> str:
        for candidate in (key, key.split(".")[0]):
            if candidate in self.flags:
                return self.flags[candidate]
        key = self.spelled.get(key, key)
        return f"{self.file} ({key})" if self.file else f"setting {key!r}"


def load_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None,
                flags: Mapping[str, str] | None = None) -> RunConfig:
    """The YAML file's settings with `overrides` on top, resolved. `overrides` maps settings, or dotted component
    options ("method_options.rounds"), to values; None values are ignored. `flags` names the flag behind each
    override, for errors."""
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    source = Source(path, {_dotted(key): (flags or {}).get(key) or _flag(key) for key in given})
    values = _expand_shorthands(read_config_file(path), source) if path is not None else {}
    for key, value in given.items():
        _set(values, key, value)
    return resolve(values, source)


def read_config_file(path: str | Path) -> dict[str, Any]:
    loaded = read_yaml_file(path, "config file")
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError("config must be a mapping of settings", path)
    return loaded


def read_yaml_file(path: str | Path, kind: str) -> Any:
    """A YAML file's content; a missing file, bad YAML (with line and column) or non-UTF-8 text is a ConfigError."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{kind} not found", path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ConfigError(f"invalid YAML: {getattr(err, 'problem', err)}", where) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{kind} is not UTF-8 text", path) from None
    except IsADirectoryError:
        raise ConfigError(f"is a folder, not a {kind}", path) from None


def resolve(values: Mapping[str, Any], source: Source | None = None) -> RunConfig:
    """`values` as a RunConfig whose component options are validated against the registry and complete."""
    source = source or Source()
    values = _with_profile(_expand_shorthands(dict(values), source))
    try:
        config = RunConfig.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "config"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"unknown setting {key!r}"
        raise ConfigError(message, source.where(key)) from None
    return config.model_copy(update=_resolved_components(config, source))


# `profile: paper`: LLM2LLM's published rules, for the settings the user left unset.
PAPER_RULES = {"select": "last"}
PAPER_LLM2LLM = {"error_source": "train", "target": "errors", "ask": "similar"}


def _with_profile(values: dict[str, Any]) -> dict[str, Any]:
    if values.get("profile") != "paper":
        return values
    values = {**PAPER_RULES, **values}
    if values.get("method", "llm2llm") == "llm2llm":
        values["method_options"] = {**PAPER_LLM2LLM, **(values.get("method_options") or {})}
    return values


def validate_config(values: Mapping[str, Any], source: str | Path | None = None) -> RunConfig:
    """`values` (e.g. a bench grid's cell) as a resolved RunConfig; errors name `source`."""
    return resolve(values, Source(source))


def _resolved_components(config: RunConfig, source: Source) -> dict[str, Any]:
    method = registry.component("method", config.method, source.where("method"))
    student_kind, _, student_model = config.student.partition(":")
    student = registry.component("student", student_kind, source.where("student"))
    student_options = dict(config.student_options)
    if student_model:  # "finetune:/path" is the student's model option
        student_options["model"] = student_model
    resolved = {
        "method_options": _options(method, config.method_options, "method_options", source, config.device),
        "student": student_kind,
        "student_options": _options(student, student_options, "student_options", source, config.device),
    }
    resolved.update(_fold_student(config, student_options, source))
    teacher_kind = teacher_kind_of(config.teacher, source.where("teacher"))
    teacher = registry.component("teacher", teacher_kind, source.where("teacher"))
    resolved["teacher_options"] = _options(teacher, config.teacher_options, "teacher_options", source, config.device,
                                           config.teacher)
    return resolved


def _fold_student(config: RunConfig, student_options: dict[str, Any], source: Source) -> dict[str, Any]:
    """The k-fold student, complete: the run's student (with the options it sets apart from their defaults) unless
    another is named, under its kind's measured fold defaults and the given `fold_student_options`."""
    from llmaug.students.spec import fold_student_options

    spec = config.fold_student or config.student
    kind, _, model = spec.partition(":")
    component = registry.component("student", kind, source.where("fold_student"))
    same = config.fold_student in (None, config.student) and kind == config.student.partition(":")[0]
    defaults = component.defaults() if same else {}
    inherited = {key: value for key, value in student_options.items() if same and defaults.get(key, object()) != value}
    if model:
        inherited["model"] = model
    values = fold_student_options(kind, inherited, config.fold_student_options)
    return {"fold_student": kind,
            "fold_student_options": _options(component, values, "fold_student_options", source, config.device)}


def _options(component: registry.Component, values: dict[str, Any], setting: str, source: Source,
             device: str, spec: str | None = None) -> dict[str, Any]:
    """The component's options, complete; the run's `device` goes to a component that has the option and was not
    given its own."""
    try:
        if "device" in component.options_model_for(spec).model_fields:
            values = {"device": device, **values}
        return component.resolved(values, spec=spec).model_dump(mode="json")
    except OptionError as err:
        raise ConfigError(err.message, source.where(f"{setting}.{err.option}" if err.option else setting)) from None
    except UserError as err:  # a spec the component refuses (ray:openai:...)
        raise ConfigError(err.message, source.where(component.kind)) from None


def teacher_kind_of(spec: str, where: str | None = None) -> str:
    from llmaug.teachers.spec import parse_spec

    try:
        return parse_spec(spec).kind
    except UserError as err:
        raise ConfigError(err.message, where or "--teacher") from None


def _expand_shorthands(values: dict[str, Any], source: Source) -> dict[str, Any]:
    """Top-level `rounds: 5` and friends moved into their options dict; both spellings at once is an error."""
    for name, setting in SHORTHANDS.items():
        if name not in values:
            continue
        value = values.pop(name)
        source.spelled[f"{setting}.{name}"] = name
        options = dict(values.get(setting) or {})
        if name in options and options[name] != value and name not in _flagged(source, setting):
            raise ConfigError(f"{name} is set twice ({name}: {value!r} and {setting}.{name}: {options[name]!r}); keep one",
                              source.where(name))
        if value is not None:
            options[name] = value
        values[setting] = options
    return values


def _flagged(source: Source, setting: str) -> set[str]:
    return {key.split(".", 1)[1] for key in source.flags if key.startswith(f"{setting}.")}


def _dotted(key: str) -> str:
    return f"{SHORTHANDS[key]}.{key}" if key in SHORTHANDS else key


def _set(values: dict[str, Any], key: str, value: Any) -> None:
    """Set a setting, or a dotted component option, over what the file said (flags win)."""
    head, _, option = _dotted(key).partition(".")
    if option:
        values[head] = {**(values.get(head) or {}), option: value}
    else:
        values[head] = value


_FLAGS = {"output_format": "--format", "cache": "--no-cache", "method_options.one_shot": "--one-shot",
          "teacher_options.batch": "--batch"}


def _flag(key: str) -> str:
    """The flag that sets `key`: --rounds for method_options.rounds, --option NAME for other method options."""
    if key in _FLAGS:
        return _FLAGS[key]
    setting, _, option = key.partition(".")
    if not option:
        return f"--{key.replace('_', '-')}"
    if option in SHORTHANDS or setting == "method_options" and option in _METHOD_FLAGS:
        return f"--{option.replace('_', '-')}"
    kind = setting.removesuffix("_options").replace("_", "-")
    return f"--{kind}-option {option}" if kind != "method" else f"--option {option}"


_METHOD_FLAGS = ("rounds", "per_error", "one_shot")


def changed_settings(config: RunConfig) -> dict[str, Any]:
    """The settings that differ from their defaults, component options included (a new option with a default
    changes nothing here)."""
    changed = config.model_dump(mode="json", exclude_defaults=True)
    defaults = {"method_options": _component_defaults("method", config.method),
                "student_options": _component_defaults("student", config.student),
                "teacher_options": _component_defaults("teacher", teacher_kind_of(config.teacher), config.teacher),
                "fold_student_options": _default_fold(config).get("fold_student_options", {})}
    if config.fold_student == _default_fold(config).get("fold_student"):
        changed.pop("fold_student", None)
    for setting, default in defaults.items():
        options = {key: value for key, value in getattr(config, setting).items() if default.get(key, object()) != value}
        changed.pop(setting, None)
        if options:
            changed[setting] = options
    return changed


def _default_fold(config: RunConfig) -> dict[str, Any]:
    """The fold student this config's student gets when none is given."""
    try:
        return _fold_student(config.model_copy(update={"fold_student": None, "fold_student_options": {}}),
                             config.student_options, Source())
    except UserError:  # e.g. a python: student of an API run
        return {}


def _component_defaults(kind: registry.Kind, name: str, spec: str | None = None) -> dict[str, Any]:
    try:
        return registry.component(kind, name).defaults(spec)
    except UserError:  # e.g. a python: student of an API run
        return {}


def config_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)

"""Run configuration: one pydantic model, loadable from YAML, with CLI flags overriding the file."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmaug.errors import ConfigError
from llmaug.teachers.usage import Price

METHODS = ("llm2llm", "s3", "promptmix", "msp", "paraphrase", "zerogen", "none")


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = "llm2llm"
    dataset: str | None = "trec6"  # a bundled name or a folder with train.jsonl/test.jsonl
    train: str | None = None  # a seed file; overrides `dataset`'s train split
    eval: str | None = None  # a test file; overrides `dataset`'s test split
    fraction: float | None = Field(0.01, gt=0, le=1)  # low-data sample of train (LLM2LLM's protocol)
    per_class: int | None = Field(None, ge=1)  # or k per class (PromptMix's protocol); wins over fraction
    max_eval: int | None = Field(None, ge=1)  # cap the eval set (stratified sample) for quick runs
    text_col: str | None = None
    label_col: str | None = None
    pair_col: str | None = None
    task: str | None = None  # e.g. "question classification"; defaults from the dataset
    unit: str | None = None  # what one example is: "question", "movie review"
    label_descriptions: dict[str, str] = Field(default_factory=dict)
    teacher: str = "embedded"
    teacher_options: dict[str, Any] = Field(default_factory=dict)
    api_key_env: str | None = None  # name of the env var holding the key; the key itself is never stored
    student: str = "finetune"
    student_options: dict[str, Any] = Field(default_factory=dict)
    rounds: int | None = Field(None, ge=0, le=100)  # llm2llm and s3; None: the method's default (3 and 2)
    per_error: int = Field(1, ge=1, le=100)  # llm2llm and s3
    method_options: dict[str, Any] = Field(default_factory=dict)
    match_budget: str | None = None  # paraphrase/zerogen: a finished run dir whose teacher calls to spend
    label_check: Literal["auto", "none", "centroid"] = "auto"  # auto: centroid for the embedded (weak) teacher
    centroid_top: int = Field(1, ge=1)
    seed: int = 0
    out: str | None = None
    cache: bool = True
    max_teacher_calls: int | None = Field(None, ge=0)
    max_tokens_budget: int | None = Field(None, ge=0)
    price: Price | None = None  # US dollars per million prompt/completion tokens, for the cost column
    output_format: Literal["jsonl", "csv", "parquet"] = "jsonl"

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        return method

    @model_validator(mode="after")
    def _check(self) -> "RunConfig":
        if self.dataset is None and self.train is None:
            raise ValueError("give a dataset or a train file")
        return self


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> RunConfig:
    """The YAML file's settings with `overrides` (CLI flags that were given) on top."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError("config file not found", path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
            raise ConfigError(f"invalid YAML: {getattr(err, 'problem', err)}", where) from None
        except UnicodeDecodeError:
            raise ConfigError("config file is not UTF-8 text", path) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("config must be a mapping of settings", path)
        values.update(loaded)
    flags = {key for key, value in overrides.items() if value is not None}
    for key in flags:
        value = overrides[key]
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            value = {**values[key], **value}  # `--one-shot` adds to the file's method_options, not replaces them
        values[key] = value
    return validate_config(values, path, flags)


def validate_config(values: dict[str, Any], source: str | Path | None = None, flags: Collection[str] = ()) -> RunConfig:
    """`values` as a RunConfig; a bad one names the flag it came from (`flags`), else `source`, else the setting."""
    try:
        return RunConfig.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "config"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"unknown setting {key!r}"
        top = key.split(".")[0]
        if top in flags:
            where = _OPTIONS.get(top, f"--{top.replace('_', '-')}")
        else:
            where = f"{source} ({key})" if source else f"setting {key!r}"
        raise ConfigError(message, where) from None


_OPTIONS = {"output_format": "--format", "cache": "--no-cache", "method_options": "--one-shot"}  # other names


def config_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)

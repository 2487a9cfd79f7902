"""The benchmark grid file: methods ("arms") × datasets × low-data settings × seeds, and the papers' numbers.

    name: paper                      # results go to bench_<name>.csv / .md / _<dataset>.png
    title: Reproduction of the papers' protocols
    defaults: {student: finetune, teacher: embedded, max_eval: 500}     # any `llmaug run` setting
    datasets:
      - trec6                                     # a bundled name ...
      - {name: banking77, path: "{data_root}/banking77"}   # ... or a folder with train.jsonl/test.jsonl
    settings:
      - {name: 1%, fraction: 0.01}                # LLM2LLM's protocol
      - {name: 2/class, per_class: 2}             # PromptMix's protocol
    seeds: [0, 1, 2]
    arms:
      - {name: none, method: none}
      - {name: llm2llm, method: llm2llm, rounds: 3, settings: [1%]}
      - {name: paraphrase, method: paraphrase, match_calls: llm2llm}       # as many teacher calls as llm2llm
      - {name: oracle-llm2llm, method: llm2llm, teacher: "pool:similar"}   # real rows: an oracle arm
      - {name: oracle-random, method: paraphrase, teacher: "pool:random", match_added: oracle-llm2llm}
      - {name: full-data, method: none, fraction: 1.0, oracle: true}
    reported:
      - {dataset: rte, setting: full-real, arm: s3, accuracy: 76.17, source: "S3, Table 9 (MiniLM)"}
    resources: {cpus: 1, gpus: 0}    # what each cell reserves on a Ray cluster (`--ray`); an arm may set its own

An arm takes any `llmaug run` setting besides its name and method; `settings` and `datasets` restrict it to
some of them. `match_calls: ARM` caps its teacher at the requests that ARM made on the same dataset, setting and
seed (paraphrase and ZeroGen spread exactly that many); `match_added: ARM` does the same with the rows ARM added.
A teacher `pool`, `pool:similar` or `pool:random` is the oracle pool of the cell's own dataset, minus its seed
rows; such arms, and arms marked `oracle: true`, are oracle results. In any string, `{data_root}` stands for the
data root given on the command line and `{dataset_path}` for the cell's dataset folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmaug.config import SETTINGS, read_yaml_file
from llmaug.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.%@+=/-]*$")
# Set by the bench for every cell, never by a grid.
MANAGED = ("dataset", "seed", "out", "train", "eval", "match_budget")
SAMPLING = ("fraction", "per_class")
POOL_MODES = {"pool": "similar", "pool:similar": "similar", "pool:random": "random", "pool:prior": "prior"}


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    path: str | None = None  # a folder with train.jsonl/test.jsonl; default: the bundled dataset `name`

    @property
    def source(self) -> str:
        return self.path or self.name


class Setting(BaseModel):
    """A low-data setting: a stratified fraction of train, or k examples per class."""

    model_config = ConfigDict(extra="forbid")

    name: str
    fraction: float | None = Field(None, gt=0, le=1)
    per_class: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_sampling(self) -> Setting:
        if (self.fraction is None) == (self.per_class is None):
            raise ValueError(f"setting {self.name!r}: give exactly one of fraction or per_class")
        return self

    def sampling(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "per_class": self.per_class}


class Resources(BaseModel):
    """What one cell reserves on a Ray cluster (`llmaug bench --ray`); a bench on one machine ignores it."""

    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(1, ge=0)
    gpus: float = Field(0, ge=0)


class Arm(BaseModel):
    """One method configuration; extra keys are `llmaug run` settings (rounds, teacher, method_options, ...)."""

    model_config = ConfigDict(extra="allow")

    name: str
    method: str
    oracle: bool | None = None  # default: true for pool teachers
    settings: list[str] | None = None
    datasets: list[str] | None = None
    match_calls: str | None = None
    match_added: str | None = None
    resources: Resources | None = None  # default: the grid's

    @property
    def run_settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def pool_mode(self) -> str | None:
        return POOL_MODES.get(str(self.run_settings.get("teacher", "")))

    @property
    def is_oracle(self) -> bool:
        return self.oracle if self.oracle is not None else self.pool_mode is not None

    @property
    def matched(self) -> tuple[str, str] | None:
        """(arm name, "calls" or "added") this arm's teacher budget follows, if any."""
        if self.match_calls:
            return self.match_calls, "calls"
        if self.match_added:
            return self.match_added, "added"
        return None

    @model_validator(mode="after")
    def _check(self) -> Arm:
        if self.match_calls and self.match_added:
            raise ValueError(f"arm {self.name!r}: give match_calls or match_added, not both")
        unknown = [key for key in self.run_settings if key not in SETTINGS or key in MANAGED]
        if unknown:
            raise ValueError(f"arm {self.name!r}: {', '.join(map(repr, unknown))} is not an arm setting")
        teacher = str(self.run_settings.get("teacher", ""))
        if teacher.startswith("pool") and self.pool_mode is None:
            raise ValueError(f"arm {self.name!r}: a pool teacher is written pool, pool:similar, pool:random or pool:prior "
                             "(the pool is the cell's own dataset)")
        return self


class Reported(BaseModel):
    """A number a paper reports for a cell of this grid (accuracy and macro-F1 in percent)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    arm: str
    setting: str | None = None  # None: any setting
    accuracy: float | None = None
    macro_f1: float | None = None
    source: str


class Grid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    title: str | None = None
    description: str | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)
    datasets: list[DatasetSpec]
    settings: list[Setting]
    seeds: list[int] = Field(default_factory=lambda: [0])
    arms: list[Arm]
    reported: list[Reported] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    compare_to: list[str] = Field(default_factory=lambda: ["none"])  # arms every other arm gets a Δ column against
    resources: Resources = Field(default_factory=Resources)

    @field_validator("datasets", mode="before")
    @classmethod
    def _names_are_datasets(cls, value):
        return [{"name": item} if isinstance(item, str) else item for item in value or []]

    @model_validator(mode="after")
    def _check(self) -> Grid:
        for kind, names in (("dataset", [d.name for d in self.datasets]), ("setting", [s.name for s in self.settings]),
                            ("arm", [a.name for a in self.arms]), ("grid", [self.name])):
            for name in names:
                if not NAME.match(name):
                    raise ValueError(f"{kind} name {name!r}: use letters, digits and _ . % @ + = / - only")
            if len(set(names)) != len(names):
                raise ValueError(f"{kind} names must be distinct")
        bad = [key for key in self.defaults if key not in SETTINGS or key in MANAGED]
        if bad:
            raise ValueError(f"defaults: {', '.join(map(repr, bad))} is not a grid-wide setting")
        self._check_arms()
        return self

    def _check_arms(self) -> None:
        dataset_names = {d.name for d in self.datasets}
        setting_names = {s.name for s in self.settings}
        seen: set[str] = set()
        for arm in self.arms:
            for wanted, known, what in ((arm.settings, setting_names, "setting"), (arm.datasets, dataset_names, "dataset")):
                missing = sorted(set(wanted or []) - known)
                if missing:
                    raise ValueError(f"arm {arm.name!r}: unknown {what} {', '.join(map(repr, missing))}")
            if arm.matched and arm.matched[0] not in seen:
                raise ValueError(f"arm {arm.name!r} matches {arm.matched[0]!r}, which must be an arm listed before it")
            seen.add(arm.name)

    def cells(self) -> list[Cell]:
        """Every (dataset, setting, seed, arm) the grid asks for, matched arms after the arms they follow."""
        cells = []
        for dataset in self.datasets:
            for setting in self.settings:
                for seed in self.seeds:
                    for arm in self.arms:
                        if arm.datasets is not None and dataset.name not in arm.datasets:
                            continue
                        if arm.settings is not None and setting.name not in arm.settings:
                            continue
                        cells.append(Cell(dataset, setting, seed, arm))
        present = {cell.key for cell in cells}
        for cell in cells:
            if cell.arm.matched and cell.with_arm(cell.arm.matched[0]) not in present:
                raise ConfigError(f"arm {cell.arm.name!r} matches {cell.arm.matched[0]!r}, which does not run on "
                                  f"{cell.dataset.name} / {cell.setting.name}", "grid")
        return cells

    def reported_for(self, dataset: str, setting: str, arm: str) -> list[Reported]:
        return [r for r in self.reported if r.dataset == dataset and r.arm == arm and r.setting in (None, setting)]


@dataclass(frozen=True)
class Cell:
    dataset: DatasetSpec
    setting: Setting
    seed: int
    arm: Arm

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.dataset.name, self.setting.name, self.seed, self.arm.name)

    def with_arm(self, arm: str) -> tuple[str, str, int, str]:
        return (self.dataset.name, self.setting.name, self.seed, arm)

    def label(self) -> str:
        return f"{self.dataset.name} / {self.setting.name} / seed {self.seed} / {self.arm.name}"


def load_grid(path: str | Path, data_root: str | Path | None = None) -> Grid:
    """Read and check a grid file; `{data_root}` in its strings becomes `data_root`."""
    path = Path(path)
    raw = read_yaml_file(path, "grid file")
    if not isinstance(raw, dict):
        raise ConfigError("a grid file is a mapping with name, datasets, settings, seeds and arms", path)
    if "{data_root}" in yaml.safe_dump(raw) and data_root is None:
        raise ConfigError("the grid refers to {data_root}; give --data-root DIR (or set LLMAUG_DATA_ROOT)", path)
    values = substitute(raw, {"data_root": str(data_root)}) if data_root is not None else raw
    try:
        return Grid.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "grid"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"unknown key {where!r}"
        raise ConfigError(message, f"{path} ({where})") from None


def substitute(value, names: dict[str, str]):
    """`value` with `{name}` placeholders replaced in every string inside it (other braces are left alone)."""
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, dict):
        return {key: substitute(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, names) for item in value]
    return value

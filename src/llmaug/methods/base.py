"""What a method sees: a `Context` of services (teacher, student training, filters, round records), never
HTTP or torch. A method's `algorithm` reads like its paper's algorithm box and returns the final dataset.

A method is a pydantic model whose fields are its options (types, bounds, defaults, one-line descriptions):
`LLM2LLM(rounds=3)`, a YAML file's `method_options` and the CLI's flags all validate against it, and an unknown
or bad option is an error naming it. Run one with `llmaug.run(method, seed, teacher=..., student=...)`.

Resume comes for free: every teacher request is cached and every round's training result is memoised by the
runner, so re-running a method from the top after a crash replays finished work at no cost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from llmaug.candidates import Ask
from llmaug.data.example import Example
from llmaug.evaluation import Evaluation
from llmaug.filters.quality import Rejected
from llmaug.options import options_error
from llmaug.teachers.base import TeacherRequest, TeacherResponse


@dataclass
class TaskInfo:
    """What prompts say about the task."""

    description: str = "text classification"
    unit: str = "text"  # what one example is: "question", "movie review", ...
    labels: list[str] = field(default_factory=list)
    label_descriptions: dict[str, str] = field(default_factory=dict)
    kind: str = "classification"  # classification | pair | qa


class Context(Protocol):
    task: TaskInfo
    seed: int
    teacher_identity: str

    @property
    def out_of_budget(self) -> bool: ...

    @property
    def stalled(self) -> bool:
        """True when the run's `patience` rounds in a row brought no held-out improvement: time to stop."""

    def generate(self, requests: list[TeacherRequest], stage: str) -> list[TeacherResponse]:
        """The teacher's answers, in order (for requests that do not make examples: descriptions, labels)."""

    def generate_examples(
        self, asks: list[Ask], round: int, existing: list[Example], stage: str
    ) -> tuple[list[Example], list[Rejected]]:
        """Send the asks' requests and turn the answers into examples with provenance (joining the data in
        `round`), filtered against `existing`: the accepted examples, and the rejections with their reasons."""

    def filter(
        self, candidates: list[Example], existing: list[Example], instructions: dict[str, str] | None = None
    ) -> tuple[list[Example], list[Rejected]]:
        """The shared filters, for candidates a method made without the teacher (MSP's generator)."""

    def progress(self, stage: str, total: int | None) -> AbstractContextManager[Callable[[int], None]]:
        """A progress display for a long step of the method's own (e.g. training a generator); call the yielded
        function with the work done so far."""

    def artifact_dir(self, name: str) -> Path | None:
        """`name` in the run directory, for a method's own files (e.g. trained weights, reused on resume); None
        when the run keeps no directory."""

    def train_and_evaluate(
        self, data: list[Example], round: int, pool: list[Example], held_out_errors: bool = False
    ) -> Evaluation:
        """Train a fresh student on `data`, score it on `pool` and the test set, and judge the seed rows by students
        that saw neither them nor their synthetic children (k-fold). With `held_out_errors` the errors are those
        held-out judgements (a converged classifier gets every training row right), else the student's own."""

    def end_round(
        self, round: int, data: list[Example], added: list[Example], rejected: list[Rejected], evaluation: Evaluation | None
    ) -> None: ...

    def save_json(self, name: str, payload) -> None:
        """Keep a file for the user to review (e.g. `descriptions.json`) in the run directory, if there is one."""


class Method(BaseModel, ABC):
    """Base of every method: its fields are its options."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: ClassVar[str]

    def __init__(self, **options) -> None:
        try:
            super().__init__(**options)
        except ValidationError as err:
            raise options_error(err, type(self), f"method {self.name!r}") from None

    @abstractmethod
    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        """Augment `seed`; return the final dataset (seed rows first, then synthetic rows with provenance)."""

    def options(self) -> dict:
        """The settings that define this method's run, as config.yaml records them."""
        return self.model_dump(mode="json")


def shares(total: int, parts: int) -> list[int]:
    """`total` split over `parts` as evenly as possible, larger shares first."""
    base, extra = divmod(total, parts) if parts else (0, 0)
    return [base + (i < extra) for i in range(parts)]


def read_descriptions(path: str | Path | None, names: list[str], kind: str, name: str, where: str) -> dict[str, str]:
    """A user's YAML file mapping each `name` (a label, an attribute) to a one-line description; {} without one.
    `kind` and `where` word the errors: "class descriptions ...", "labels not in the label set"."""
    if path is None:
        return {}
    from llmaug.config import read_yaml_file
    from llmaug.errors import ConfigError

    path = Path(path)
    loaded = read_yaml_file(path, f"{kind} descriptions file")
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        raise ConfigError(f"{kind} descriptions must map each {name} to one line of text", path)
    unknown = sorted(set(map(str, loaded)) - set(names))
    if unknown:
        raise ConfigError(f"{name}s not in {where}: {', '.join(map(repr, unknown[:5]))}", path)
    return {str(key): text.strip() for key, text in loaded.items()}

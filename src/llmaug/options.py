"""Typed options: every method, teacher backend and student declares its settings as a pydantic model.

Flags, YAML and the Python API all validate against these models, so a setting is never silently dropped: an
unknown name, a wrong type or a value out of bounds is an error that names the option and the component.
No options model holds a secret: API keys are read from the environment variable that `api_key_env` names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticUndefined

from llmaug.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Options(BaseModel):
    """Base of the option models of teacher backends and students (methods are option models themselves)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def validate_options(model: type[M], values: Mapping[str, Any], component: str, where: str | None = None) -> M:
    """`values` as an instance of `model`; a bad one raises a ConfigError naming the option and `component`
    (e.g. "method 'llm2llm'"). `where` says where the values came from (a flag, a file), if known."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as err:
        raise options_error(err, model, component, where) from None


class OptionError(ConfigError):
    """A bad component option; `option` names it (None when the problem is not one option's)."""

    def __init__(self, message: str, where: str | None = None, option: str | None = None):
        super().__init__(message, where)
        self.option = option


def options_error(err: ValidationError, model: type[BaseModel], component: str, where: str | None = None) -> OptionError:
    """The first problem of `err` in one line: which option of which component, and what is wrong."""
    problem = err.errors()[0]
    name = ".".join(str(part) for part in problem["loc"][:1])
    if problem["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields) or "none"
        return OptionError(f"{component} has no option {name!r} (its options: {known})", where, name)
    message = problem["msg"].removeprefix("Value error, ")
    if name:
        return OptionError(f"option {name!r} of {component}: {message}", where, name)
    return OptionError(f"{component}: {message}", where)


@dataclass(frozen=True)
class OptionDoc:
    name: str
    type: str
    default: Any
    description: str


def describe_options(model: type[BaseModel]) -> list[OptionDoc]:
    """Each option of `model` with its type, default and one-line description (for `llmaug methods` and docs)."""
    docs = []
    for name, field in model.model_fields.items():
        if field.default is not PydanticUndefined:
            default = field.default
        elif field.default_factory is not None:
            default = field.default_factory()
        else:
            default = "(required)"
        docs.append(OptionDoc(name, _type_name(field.annotation), default, field.description or ""))
    return docs


def _type_name(annotation: Any) -> str:
    """A type as a user writes it: int, float | None, "seed" | "all"."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(arg) if isinstance(arg, str) else str(arg) for arg in args)
    if origin in (Union, UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not args:
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("collections.abc.", "")

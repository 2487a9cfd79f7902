"""Versioned prompt templates. The `name@version` of the template goes into every synthetic row's provenance.

Templates are Jinja2 rendered in a sandbox. Values (seed text, teacher output) are inserted as data, never
parsed as template syntax, so braces or `{{ }}` inside a dataset cannot break or inject into a prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from llmaug.teachers.base import Message

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    user: str
    system: str | None = None
    shots: tuple[tuple[str, str], ...] = field(default=())  # (user, assistant) demonstrations

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def render(self, **values) -> list[Message]:
        messages = []
        if self.system:
            messages.append(Message(role="system", content=_ENV.from_string(self.system).render(**values).strip()))
        for user, assistant in self.shots:
            messages.append(Message(role="user", content=user))
            messages.append(Message(role="assistant", content=assistant))
        messages.append(Message(role="user", content=_ENV.from_string(self.user).render(**values).strip()))
        return messages

"""Teacher spec strings, e.g. `embedded`, `embedded:gemma3-270m`, `openai:gpt-4o-mini`,
`openai-compatible:http://127.0.0.1:8000/v1@MODEL`, `llama-cpp:/path/model.gguf`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from llmaug import registry
from llmaug.errors import TeacherError
from llmaug.teachers.base import Backend

OPENAI_URL = "https://api.openai.com/v1"



@dataclass(frozen=True)
class TeacherSpec:
    kind: str
    model: str
    base_url: str | None = None

    def __str__(self) -> str:
        if self.kind == "openai-compatible":
            return f"{self.kind}:{self.base_url}@{self.model}"
        return f"{self.kind}:{self.model}"


def parse_spec(spec: str) -> TeacherSpec:
    spec = spec.strip()
    kind, _, rest = spec.partition(":")
    if kind not in registry.TEACHERS:
        raise TeacherError(f"unknown teacher {spec!r}; the spec starts with one of {', '.join(registry.TEACHERS)}", "--teacher")
    if kind == "embedded":
        return TeacherSpec(kind, rest or "smollm2")
    if kind == "openai":
        if not rest:
            raise TeacherError("openai teacher needs a model, e.g. openai:gpt-4o-mini", "--teacher")
        return TeacherSpec(kind, rest, OPENAI_URL)
    if kind == "openai-compatible":
        url, at, model = rest.rpartition("@")
        _check_url(url)
        if not at or not url.startswith(("http://", "https://")) or not model:
            raise TeacherError(f"expected openai-compatible:http(s)://HOST[:PORT]/v1@MODEL, got {spec!r}", "--teacher")
        return TeacherSpec(kind, model, url)
    if not rest:
        raise TeacherError(f"{kind} teacher needs a path or name, e.g. {registry.TEACHERS[kind].spec}", "--teacher")
    return TeacherSpec(kind, rest)


def _check_url(url: str) -> None:
    """Refuse user:password@ in the URL (a secret that would be saved in config.yaml, the cache and provenance) and
    ports that are not numbers ("http://user:KEY" with the host and model cut off). Never echo the URL."""
    parsed = urlsplit(url)
    try:
        parsed.port
    except ValueError:
        raise TeacherError("the teacher URL has a port that is not a number; expected "
                           "openai-compatible:http(s)://HOST[:PORT]/v1@MODEL", "--teacher") from None
    if parsed.password is not None:
        raise TeacherError("credentials do not belong in the teacher URL (it is saved with the run); export the "
                           "key in an environment variable and name it with api_key_env", "--teacher")


def backend_from_spec(spec: str | TeacherSpec, **options) -> Backend:
    """Build the backend a spec names; `options` are validated against its registered options model."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    backend = registry.TEACHERS[parsed.kind].load()
    if parsed.kind in ("openai", "openai-compatible"):
        return backend(parsed.base_url or OPENAI_URL, parsed.model, **options)
    return backend(parsed.model, **options)

"""Structured output over HTTP: what each kind of server needs in the request body to return exactly one of a set
of labels (choices) or JSON under a schema (several examples in one answer), and how to read the answer back.

| server      | choices                                            | JSON under a schema                                  |
|-------------|----------------------------------------------------|------------------------------------------------------|
| `openai`    | `response_format` json_schema, `{"label": enum}`   | `response_format` json_schema (strict)               |
| `vllm`      | `structured_outputs: {"choice": [...]}`            | `structured_outputs: {"json": schema}`               |
| `llama.cpp` | `grammar` (GBNF of the choices)                    | `response_format: {"type": "json_object", "schema"}` |
| `ollama`    | `response_format` json_schema (Ollama's `format`)  | `response_format` json_schema (Ollama's `format`)    |
| `generic`   | nothing: free text, the label read out of it       | nothing: the prompt asks for JSON, read tolerantly   |

vLLM's `guided_choice` / `guided_json` were replaced by `structured_outputs` in 0.10.2 and removed in 0.12; the
llama.cpp form is what both llama.cpp's own server and llama-cpp-python's accept; Ollama's OpenAI-compatible
endpoint turns `response_format` into its native `format`. A server kind is detected from `GET /v1/models` (and the
`Server` header) when the teacher option `server` is `auto`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from llmaug.filters.parsing import extract_label
from llmaug.teachers.base import TeacherResponse
from llmaug.teachers.llama_cpp import choices_grammar

ServerKind = Literal["openai", "vllm", "llama.cpp", "ollama", "generic"]
SERVER_KINDS: tuple[str, ...] = ("openai", "vllm", "llama.cpp", "ollama", "generic")
CHOICE_KEY = "label"  # the one property of a JSON choice answer
EXAMPLES_KEY = "examples"  # the array of a JSON examples answer
OLLAMA_PORT = 11434
NO_OUTPUT = ("budget", "error")


def choice_schema(choices: tuple[str, ...] | list[str]) -> dict:
    return {"type": "object", "properties": {CHOICE_KEY: {"type": "string", "enum": list(choices)}},
            "required": [CHOICE_KEY], "additionalProperties": False}


def examples_schema(count: int, fields: tuple[str, ...] = ("text",)) -> dict:
    """`count` examples as `{"examples": [...]}`: strings, or objects with these fields (a pair: text, text_pair)."""
    if fields == ("text",):
        item: dict = {"type": "string"}
    else:
        item = {"type": "object", "properties": {name: {"type": "string"} for name in fields},
                "required": list(fields), "additionalProperties": False}
    return {"type": "object",
            "properties": {EXAMPLES_KEY: {"type": "array", "items": item, "minItems": count, "maxItems": count}},
            "required": [EXAMPLES_KEY], "additionalProperties": False}


def choice_fields(kind: str, choices: tuple[str, ...]) -> dict:
    """The request-body fields that make a server of `kind` answer with one of `choices`."""
    if kind in ("openai", "ollama"):
        return _response_format("choice", choice_schema(choices))
    if kind == "vllm":
        return {"structured_outputs": {"choice": list(choices)}}
    if kind == "llama.cpp":
        return {"grammar": choices_grammar(choices)}
    return {}


def schema_fields(kind: str, schema: dict) -> dict:
    """The request-body fields that make a server of `kind` answer with JSON under `schema`."""
    if kind == "openai":  # strict mode takes no length bounds; the prompt states the count
        return _response_format("examples", _without_length_bounds(schema))
    if kind == "ollama":
        return _response_format("examples", schema)
    if kind == "vllm":
        return {"structured_outputs": {"json": schema}}
    if kind == "llama.cpp":
        return {"response_format": {"type": "json_object", "schema": schema}}
    return {}


def _response_format(name: str, schema: dict) -> dict:
    return {"response_format": {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}}


def _without_length_bounds(schema: dict) -> dict:
    schema = copy.deepcopy(schema)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            node.pop("minItems", None)
            node.pop("maxItems", None)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


def exact_choice(text: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The choice a constrained answer makes: exactly a choice, or exactly a JSON `{"label": choice}`."""
    answer = text.strip()
    if answer in choices:
        return answer
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    return parsed[CHOICE_KEY] if isinstance(parsed, dict) and parsed.get(CHOICE_KEY) in choices else None


def read_choice(text: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The choice an answer makes: an exact one (`exact_choice`), or in free text the one choice it names; None
    when it names none or several."""
    return exact_choice(text, choices) or extract_label(text.strip(), list(choices))


def chosen(response: TeacherResponse, choices: tuple[str, ...] | list[str]) -> str | None:
    """The label a response to a choice request picked, or None when it is unusable (or carries no output)."""
    if response.finish_reason in NO_OUTPUT:
        return None
    return read_choice(response.text, choices)


def json_items(text: str) -> list | None:
    """The examples of a JSON answer: the `examples` array of an object, or a bare array; None when the text holds
    no such JSON (a generic server that ignored the request for JSON)."""
    parsed = _json_value(text.strip())
    if isinstance(parsed, dict):
        parsed = parsed.get(EXAMPLES_KEY)
    return parsed if isinstance(parsed, list) else None


def _json_value(text: str):
    """The JSON value of `text`, or of its first {...} or [...] span (a fenced or chatty answer); None if none."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end:
            try:
                return json.loads(text[start : end + 1])
            except ValueError:
                continue
    return None


def detect_server(base_url: str, models: object, headers: Mapping[str, str]) -> str:
    """The kind of server behind `base_url`, from its `GET /models` body and response headers; generic when
    nothing tells. vLLM lists models as `owned_by: "vllm"`, llama.cpp's server as "llamacpp" (and says
    `Server: llama.cpp`), llama-cpp-python's as "me"; Ollama listens on port 11434 and names the namespace
    ("library")."""
    server = (headers.get("Server") or headers.get("server") or "").lower()
    owners = {str(entry.get("owned_by", "")).lower() for entry in _model_entries(models)}
    if "vllm" in owners:
        return "vllm"
    if "llama.cpp" in server or owners & {"llamacpp", "llama.cpp", "me"}:
        return "llama.cpp"
    if "ollama" in server or urlsplit(base_url).port == OLLAMA_PORT or owners & {"library", "ollama"}:
        return "ollama"
    if owners & {"openai", "system", "openai-internal"}:
        return "openai"
    return "generic"


def model_ids(models: object) -> list[str] | None:
    """The model names a `GET /models` body lists, or None when it lists none (the server does not say)."""
    ids = [str(entry["id"]) for entry in _model_entries(models) if entry.get("id")]
    return ids or None


def _model_entries(models: object) -> list[dict]:
    data = models.get("data") if isinstance(models, dict) else None
    return [entry for entry in data if isinstance(entry, dict)] if isinstance(data, list) else []

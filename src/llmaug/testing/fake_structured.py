"""How the loopback server (`fake_openai`) plays each kind of server's structured output: the request fields that
kind's API takes (anything else is refused with a 400 naming it, so a client that sends another server's fields
fails loudly here), and answers that keep to the constraint.

The shapes follow each server's documentation: OpenAI `response_format` json_schema (name, strict, schema; in
strict mode every object closed and every property required); vLLM `structured_outputs` with one of choice / json
/ regex / grammar (the `guided_*` fields were removed in 0.12); llama.cpp `grammar` (GBNF) or `response_format`
json_object with a `schema`; Ollama `response_format` json_schema, which it turns into its `format`.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable

STRUCTURE_FIELDS = ("response_format", "structured_outputs", "grammar", "json_schema", "format", "guided_choice",
                    "guided_json", "guided_regex", "guided_grammar", "guided_decoding_backend")
ACCEPTED = {
    "openai": {"response_format"},
    "vllm": {"structured_outputs", "response_format"},
    "llama.cpp": {"grammar", "response_format", "json_schema"},
    "ollama": {"response_format"},
    "generic": set(),
}
OWNERS = {"openai": "openai", "vllm": "vllm", "llama.cpp": "llamacpp", "ollama": "library", "generic": "fake"}
SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
GBNF_LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')
STRUCTURED_OUTPUT_KINDS = ("choice", "json", "regex", "grammar", "json_object", "structural_tag")


def model_owner(kind: str) -> str:
    return OWNERS[kind]


def server_header(kind: str) -> dict[str, str]:
    return {"Server": "llama.cpp"} if kind == "llama.cpp" else {}


def structured_problem(kind: str, body: dict) -> str | None:
    """Why a server of `kind` would refuse this body's structured-output fields; None when it takes them."""
    for field in STRUCTURE_FIELDS:
        if field in body and field not in ACCEPTED[kind]:
            return f"Unrecognized request argument supplied: {field} (a {kind} server)"
    if "response_format" in body:
        return _response_format_problem(kind, body["response_format"])
    if "structured_outputs" in body:
        given = body["structured_outputs"]
        kinds = [key for key in STRUCTURED_OUTPUT_KINDS if isinstance(given, dict) and given.get(key) is not None]
        if len(kinds) != 1:
            return "structured_outputs takes exactly one of choice, json, regex, grammar, json_object, structural_tag"
        if kinds == ["choice"] and not (isinstance(given["choice"], list) and all(isinstance(c, str) for c in given["choice"])):
            return "structured_outputs.choice must be a list of strings"
    if "grammar" in body and not (isinstance(body["grammar"], str) and body["grammar"].lstrip().startswith("root ::=")):
        return "grammar must be a GBNF grammar with a root rule"
    return None


def _response_format_problem(kind: str, given: object) -> str | None:
    if not isinstance(given, dict) or given.get("type") not in ("text", "json_object", "json_schema"):
        return "response_format.type must be text, json_object or json_schema"
    if given["type"] == "json_object":
        if kind == "openai" and "schema" in given:
            return "response_format json_object takes no schema on OpenAI; use json_schema"
        return None
    if given["type"] == "json_schema" and kind == "llama.cpp" and "schema" in given:
        return None
    spec = given.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        return "response_format.json_schema.schema must be a JSON schema object"
    if kind == "openai":
        if not SCHEMA_NAME.match(str(spec.get("name", ""))):
            return "response_format.json_schema.name must be 1-64 letters, digits, _ or -"
        if spec.get("strict"):
            return _strict_problem(spec["schema"])
    return None


def _strict_problem(schema: dict) -> str | None:
    """OpenAI's strict mode: the root an object, and every object closed with all its properties required."""
    if schema.get("type") != "object":
        return "strict schemas must have an object at the root"
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "object":
                properties = node.get("properties") or {}
                if node.get("additionalProperties") is not False:
                    return "strict schemas need additionalProperties: false on every object"
                if set(node.get("required") or []) != set(properties):
                    return "strict schemas need every property listed in required"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def structured_answer(kind: str, body: dict, responder: Callable[[dict], str], rng: random.Random) -> str | None:
    """An answer that keeps to the body's constraint (None when it has none): a choice drawn at random, bare or
    as {"label": ...}; or {"examples": [...]} with as many texts from `responder` as the schema or prompt asks."""
    choices, as_json = _choices(body)
    if choices:
        label = rng.choice(choices)
        return json.dumps({"label": label}) if as_json else label
    schema = _schema(body)
    if schema is None:
        return None
    examples = (schema.get("properties") or {}).get("examples") or {}
    count = examples.get("maxItems") or _count_in_prompt(body) or 1
    texts = [responder({**body, "seed": int(body.get("seed") or 0) + 7919 * i}) for i in range(count)]
    return json.dumps({"examples": texts})


def _choices(body: dict) -> tuple[list[str] | None, bool]:
    outputs = body.get("structured_outputs") or {}
    if isinstance(outputs.get("choice"), list):
        return outputs["choice"], False
    if isinstance(body.get("grammar"), str):
        return [bytes(m, "utf-8").decode("unicode_escape") for m in GBNF_LITERAL.findall(body["grammar"])], False
    schema = _schema(body) or {}
    enum = ((schema.get("properties") or {}).get("label") or {}).get("enum")
    return (enum, True) if isinstance(enum, list) else (None, False)


def _schema(body: dict) -> dict | None:
    given = body.get("response_format") or {}
    schema = (given.get("json_schema") or {}).get("schema") or given.get("schema")
    schema = schema or (body.get("structured_outputs") or {}).get("json") or body.get("json_schema")
    return schema if isinstance(schema, dict) else None


def _count_in_prompt(body: dict) -> int | None:
    messages = body.get("messages") or [{}]
    match = re.search(r"\bWrite (\d+)\b", str(messages[-1].get("content", "")))
    return int(match.group(1)) if match else None

"""The one list of components: methods, teacher backends and students, each with its typed options model.

The CLI (`--help`, `llmaug methods`, `llmaug teachers`, `llmaug students`), config validation and the README's
tables read this registry; nothing else lists component names. Classes are imported on first use, so listing
components costs no torch.

A method class is its own options model (a pydantic model whose fields are the method's settings); teacher
backends and students declare theirs as a nested `Options` class.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from llmaug.errors import ConfigError

Kind = Literal["method", "teacher", "student"]


@dataclass(frozen=True)
class Component:
    kind: Kind
    name: str
    target: str  # "module:attribute", imported on first use
    summary: str
    spec: str = ""  # how a spec string names it, e.g. "openai:MODEL"; the name itself when empty

    def load(self) -> type:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    @property
    def options_model(self) -> type[BaseModel]:
        cls = self.load()
        return getattr(cls, "Options", cls)

    def options_model_for(self, spec: str | None) -> type[BaseModel]:
        """The options a spec of this component takes: its own model, or, for a component that wraps another
        (`ray:embedded`), the one its class builds for the spec (`options_for_spec`)."""
        builder = getattr(self.load(), "options_for_spec", None)
        return builder(spec) if builder is not None and spec else self.options_model

    @property
    def label(self) -> str:
        """How errors name it: "method 'llm2llm'", "teacher 'openai'", "student 'finetune'"."""
        return f"{self.kind} {self.name!r}"

    def validate(self, values: Mapping[str, Any], where: str | None = None, spec: str | None = None) -> BaseModel:
        from llmaug.options import validate_options

        return validate_options(self.options_model_for(spec), values, self.label, where)

    def resolved(self, values: Mapping[str, Any], where: str | None = None, spec: str | None = None) -> BaseModel:
        """`validate`, then the machine's choices filled in where an option leaves them to it (e.g. `dtype: auto`
        on the embedded teacher), as a run records them: an options model may define `resolved()` for that."""
        options = self.validate(values, where, spec)
        return options.resolved() if callable(getattr(options, "resolved", None)) else options

    def defaults(self, spec: str | None = None) -> dict[str, Any]:
        """Every option with its default value, as config.yaml records it."""
        return self.resolved({}, spec=spec).model_dump(mode="json")


def _methods(*components: tuple[str, str, str]) -> dict[str, Component]:
    return {name: Component("method", name, target, summary) for name, target, summary in components}


METHODS = _methods(
    ("llm2llm", "llmaug.methods.llm2llm:LLM2LLM",
     "LLM2LLM (Lee et al., 2024): rounds of new examples like the seeds the student gets wrong"),
    ("s3", "llmaug.methods.s3:S3",
     "S3 (Wang et al., 2023): rationale-steered synthesis, then error-extrapolation rounds"),
    ("promptmix", "llmaug.methods.promptmix:PromptMix",
     "PromptMix (Sahu et al., 2023): borderline examples mixing two classes, relabelled by the teacher"),
    ("msp", "llmaug.methods.msp:MSP",
     "MSP (Chen et al., 2023): a frozen LM with trained soft prompts per attribute writes the data"),
    ("paraphrase", "llmaug.methods.baselines:Paraphrase", "baseline: every seed paraphrased (AugGPT-style)"),
    ("zerogen", "llmaug.methods.baselines:ZeroGen", "baseline: examples written from the label alone (ZeroGen)"),
    ("none", "llmaug.methods.baselines:NoAugmentation", "baseline: the student on the seed set alone"),
)

TEACHERS = {
    component.name: component for component in (
        Component("teacher", "embedded", "llmaug.teachers.embedded:EmbeddedBackend",
                  "a local model in-process via transformers: smollm2 (SmolLM2-135M-Instruct, the default; "
                  "no key, no server), gemma3-270m, a .gguf file or a Hugging Face folder",
                  "embedded[:smollm2|gemma3-270m|/path/model.gguf|/path/hf-dir]"),
        Component("teacher", "openai", "llmaug.teachers.openai_compat:OpenAICompatibleBackend",
                  "the OpenAI API; key from $OPENAI_API_KEY (or the variable api_key_env names)", "openai:MODEL"),
        Component("teacher", "openai-compatible", "llmaug.teachers.openai_compat:OpenAICompatibleBackend",
                  "any OpenAI-compatible server: vLLM, Ollama, llama.cpp server, LM Studio ...",
                  "openai-compatible:http(s)://HOST:PORT/v1@MODEL"),
        Component("teacher", "llama-cpp", "llmaug.teachers.llama_cpp:LlamaCppBackend",
                  "in-process llama.cpp with grammar-constrained choices (extra: llmaug[llama-cpp])",
                  "llama-cpp:/path/model.gguf"),
        Component("teacher", "pool", "llmaug.teachers.pool:PoolBackend",
                  "oracle for benchmarks: real unused rows of the requested label from a dataset, no LLM",
                  "pool:DATASET[:similar|:random]"),
        Component("teacher", "ray", "llmaug.distributed.teacher:RayBackend",
                  "an in-process backend in N Ray actors (replicas) on a Ray cluster; takes the wrapped backend's "
                  "options too (the ray extra)", "ray:embedded[:MODEL] | ray:llama-cpp:/path/model.gguf"),
    )
}

STUDENTS = {
    component.name: component for component in (
        Component("student", "finetune", "llmaug.students.finetune:FinetuneStudent",
                  "a fine-tuned transformer classifier, all-MiniLM-L6-v2 by default (the default student)",
                  "finetune[:/path/hf-model]"),
        Component("student", "embed-lr", "llmaug.students.embed_lr:EmbedLRStudent",
                  "frozen MiniLM sentence embeddings + logistic regression", "embed-lr"),
        Component("student", "tfidf", "llmaug.students.tfidf:TfidfStudent",
                  "TF-IDF + logistic regression (milliseconds; no torch)", "tfidf"),
        Component("student", "causal-lm", "llmaug.students.causal_lm:CausalLMStudent",
                  "LoRA-tuned SmolLM2-135M-Instruct, for classification as label choice and for QA (GSM8K)",
                  "causal-lm[:/path/hf-model]"),
    )
}

REGISTRY: dict[Kind, dict[str, Component]] = {"method": METHODS, "teacher": TEACHERS, "student": STUDENTS}


def component(kind: Kind, name: str, where: str | None = None) -> Component:
    """The registered component, or a ConfigError listing the known names."""
    known = REGISTRY[kind]
    if name not in known:
        raise ConfigError(f"unknown {kind} {name!r}; choose from {', '.join(known)}", where or f"--{kind}")
    return known[name]


def names(kind: Kind) -> list[str]:
    return list(REGISTRY[kind])

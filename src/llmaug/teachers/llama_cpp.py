"""llama.cpp teacher: any GGUF chat model through llama-cpp-python (the optional extra `llama-cpp`).

`choices` are enforced with a GBNF grammar, so the model can only write one of the allowed strings.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from pydantic import Field

from llmaug.errors import TeacherError
from llmaug.options import Options as OptionsModel
from llmaug.options import validate_options
from llmaug.teachers.base import TeacherRequest, TeacherResponse

INSTALL_HINT = "CMAKE_ARGS=-DGGML_NATIVE=OFF pip install --no-cache-dir 'llmaug[llama-cpp]'"
_GBNF_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def choices_grammar(choices: tuple[str, ...] | list[str]) -> str:
    """A GBNF grammar whose only sentences are the given choices, e.g. `root ::= "city" | "fruit"`."""
    return "root ::= " + " | ".join(_gbnf_literal(choice) for choice in choices) + "\n"


def _gbnf_literal(text: str) -> str:
    return '"' + "".join(_GBNF_ESCAPES.get(char, char) for char in text) + '"'


def import_llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        raise TeacherError(f"llama-cpp-python is not installed: {INSTALL_HINT}", "--teacher") from None
    return llama_cpp


class LlamaCppBackend:
    """One request at a time through `Llama.create_chat_completion`; the model loads on the first `generate`.

    Each request is seeded from its cache key, so a sampled output does not depend on what else was asked.
    """

    batch_size = 1
    max_concurrency = 1

    class Options(OptionsModel):
        n_ctx: int = Field(2048, ge=64, description="context window in tokens")
        threads: int | None = Field(None, ge=1, description="CPU threads (default: llama.cpp's)")

    def __init__(self, model_path: str | Path, **options):
        opts = validate_options(self.Options, options, "teacher 'llama-cpp'")
        n_ctx, threads = opts.n_ctx, opts.threads
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise TeacherError(f"no GGUF model file at {model_path}", "--teacher")
        self._llama_cpp = import_llama_cpp()
        self.model_path = path
        self.identity = f"llama-cpp:{path.stem}"
        self.n_ctx = n_ctx
        self.threads = threads
        self._lock = threading.Lock()
        self._llama = None

    async def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        return await asyncio.to_thread(self._generate_locked, requests)

    async def aclose(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def _generate_locked(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        with self._lock:
            if self._llama is None:
                self._llama = self._llama_cpp.Llama(model_path=str(self.model_path), n_ctx=self.n_ctx,
                                                    n_threads=self.threads, verbose=False)
            return [self._complete(request) for request in requests]

    def _complete(self, request: TeacherRequest) -> TeacherResponse:
        params = request.params
        options = {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "stop": list(params.stop),
            "repeat_penalty": params.repetition_penalty,
            "seed": int(request.cache_key(self.identity)[:8], 16),  # 32 bits of the request's hex sha256 key
        }
        if request.choices:
            # Greedy under the grammar, with room for the longest choice: the answer is a choice, not a sample.
            longest = max(len(self._llama.tokenize(choice.encode(), add_bos=False)) for choice in request.choices)
            grammar = self._llama_cpp.LlamaGrammar.from_string(choices_grammar(request.choices), verbose=False)
            options.update(temperature=0.0, max_tokens=longest + 1, stop=[], grammar=grammar)
        result = self._llama.create_chat_completion(
            messages=[message.model_dump() for message in request.messages], **options
        )
        choice, usage = result["choices"][0], result.get("usage") or {}
        text = choice["message"].get("content") or ""
        return TeacherResponse(
            text=text,
            finish_reason=_finish_reason(request, text, choice.get("finish_reason")),
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
        )


def _finish_reason(request: TeacherRequest, text: str, reported: str | None) -> str:
    if request.choices:
        return "choice" if text in request.choices else "error"
    return "length" if reported == "length" else "stop"


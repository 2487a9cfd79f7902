"""The one device and dtype resolution (llmaug.device), how the run-level `device` reaches every torch component,
and every torch component run on a device. CUDA is simulated where the logic only asks torch whether a GPU is
there; the component tests run on the CPU everywhere and again on CUDA, marked `gpu`, where torch sees a GPU
(`pytest -m gpu` on a GPU machine; they skip elsewhere)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from llmaug import device
from llmaug.config import load_config
from llmaug.errors import ConfigError
from llmaug.options import validate_options
from llmaug.session import check_devices
from llmaug.students import make_student
from llmaug.teachers.embedded import EmbeddedBackend


@pytest.fixture
def gpu(monkeypatch):
    """torch reports two CUDA GPUs (only the selection logic runs: nothing is put on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)


@pytest.fixture
def plain_cpu(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)


def test_auto_is_the_gpu_when_torch_sees_one(gpu):
    assert device.resolve_device("auto") == torch.device("cuda")
    assert device.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert device.resolve_device("cpu") == torch.device("cpu")


def test_auto_is_the_cpu_without_a_gpu(no_gpu):
    assert device.resolve_device("auto") == torch.device("cpu")


def test_a_gpu_this_machine_lacks_is_a_config_error_naming_the_setting(gpu):
    with pytest.raises(ConfigError, match="cuda:2 asked for, but torch sees 2 CUDA GPU") as err:
        device.resolve_device("cuda:2", "student_options.device")
    assert err.value.where == "student_options.device"


def test_cuda_without_any_gpu_is_a_config_error(no_gpu):
    with pytest.raises(ConfigError, match="torch sees no CUDA GPU here"):
        device.resolve_device("cuda")
    device.check_device("cpu")  # nothing to check
    device.check_device("auto")


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "CPU", "cuda:0:1", ""])
def test_a_malformed_device_setting_is_an_option_error(bad):
    with pytest.raises(ConfigError, match="option 'device' of teacher 'embedded': expected auto, cpu, cuda or cuda:N"):
        validate_options(EmbeddedBackend.Options, {"device": bad}, "teacher 'embedded'")


def test_dtype_auto_is_bf16_on_a_cpu_with_bf16_instructions_and_float32_elsewhere(no_gpu, bf16_cpu):
    assert device.dtype_choice("auto", "auto") == "bfloat16"
    assert device.dtype_choice("float32", "auto") == "float32"
    assert device.resolve_dtype("auto", "cpu") == torch.bfloat16


def test_dtype_auto_is_float32_on_a_cpu_without_them(no_gpu, plain_cpu):
    assert device.dtype_choice("auto", "cpu") == "float32"
    assert device.dtype_choice("bfloat16", "cpu") == "bfloat16"  # asked for: honoured (slowly) anyway


def test_dtype_auto_on_a_gpu_is_bf16_or_float16_where_bf16_is_missing(gpu, plain_cpu, monkeypatch):
    assert device.dtype_choice("auto", "auto") == "bfloat16"
    assert device.dtype_choice("auto", "cpu") == "float32"  # the CPU of a GPU machine, asked for
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert device.dtype_choice("auto", "cuda:1") == "float16"


def test_a_config_for_a_gpu_resolves_on_a_machine_without_one(no_gpu, plain_cpu):
    assert device.dtype_choice("auto", "cuda") == "bfloat16"


def test_bf16_detection_can_be_forced_by_the_environment(monkeypatch):
    device.cpu_has_bf16.cache_clear()
    try:
        monkeypatch.setenv("LLMAUG_CPU_BF16", "0")
        assert device.cpu_has_bf16() is False
        device.cpu_has_bf16.cache_clear()
        monkeypatch.setenv("LLMAUG_CPU_BF16", "1")
        assert device.cpu_has_bf16() is True
    finally:
        device.cpu_has_bf16.cache_clear()


def test_bf16_detection_asks_torch_about_amx_and_avx512_bf16(monkeypatch):
    monkeypatch.delenv("LLMAUG_CPU_BF16", raising=False)
    device.cpu_has_bf16.cache_clear()
    try:
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
        assert device.cpu_has_bf16() is True
        device.cpu_has_bf16.cache_clear()
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
        assert device.cpu_has_bf16() is False
    finally:
        device.cpu_has_bf16.cache_clear()


@pytest.mark.parametrize(("load", "cores", "threads"), [(0.0, 2, 2), (1.0, 2, 2), (1.4, 2, 2), (1.6, 2, 1), (2.0, 2, 1),
                                                       (6.0, 2, 1), (3.0, 8, 6), (1.0, 1, 1)])
def test_without_proc_stat_idle_cores_come_from_the_load_average(monkeypatch, load, cores, threads):
    monkeypatch.setattr(device, "_cpu_times", lambda: None)
    monkeypatch.setattr(device.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(device, "usable_cores", lambda: cores)
    assert device.idle_cores() == threads


@pytest.mark.parametrize(("idle_ticks", "threads"), [((10, 10), 2), ((10, 0), 1), ((0, 0), 1), ((6, 5), 1),
                                                     ((8, 8), 2), ((10, 3), 1)])
def test_idle_cores_count_each_cores_idle_share_over_the_sample(monkeypatch, idle_ticks, threads):
    samples = iter([{0: (100, 1000), 1: (200, 1000)},
                    {0: (100 + idle_ticks[0], 1010), 1: (200 + idle_ticks[1], 1010)}])
    monkeypatch.setattr(device, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    assert device.idle_cores() == threads


@pytest.mark.skipif(not Path("/proc/stat").is_file() or device.usable_cores() < 2, reason="needs /proc/stat and 2 cores")
def test_a_process_spinning_on_a_core_leaves_one_core_fewer_idle():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        busy = device.idle_cores()
    finally:
        spinner.kill()
        spinner.wait()
    assert busy <= device.usable_cores() - 1


def test_cpu_threads_are_set_for_the_block_and_restored():
    before = torch.get_num_threads()
    with device.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with device.cpu_threads(None):
        assert torch.get_num_threads() == before


# The run-level setting and the components -----------------------------------------------------------------------


def test_the_run_device_fills_every_torch_component_that_does_not_set_its_own(no_gpu, plain_cpu):
    config = load_config(None, {"device": "cpu", "student": "embed-lr", "method": "msp"})
    assert config.device == "cpu"
    assert config.teacher_options["device"] == "cpu"
    assert config.student_options["device"] == "cpu"
    assert config.method_options["device"] == "cpu"
    own = load_config(None, {"device": "cpu", "student_options.device": "auto", "teacher": "openai:m"})
    assert own.student_options["device"] == "auto"
    assert "device" not in own.teacher_options  # an HTTP teacher runs no torch


def test_the_resolved_config_records_the_dtype_and_batch_size_chosen_for_this_machine(no_gpu, monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    fast = load_config(None, {})
    assert (fast.teacher_options["dtype"], fast.teacher_options["batch_size"]) == ("bfloat16", 32)
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    plain = load_config(None, {})
    assert (plain.teacher_options["dtype"], plain.teacher_options["batch_size"]) == ("float32", 8)
    chosen = load_config(None, {"teacher_options.batch_size": 4, "method": "msp"})
    assert chosen.teacher_options["batch_size"] == 4
    assert chosen.method_options["dtype"] == "float32"


def test_a_cuda_run_on_a_machine_without_a_gpu_fails_before_any_model_loads(no_gpu):
    with pytest.raises(ConfigError) as err:
        check_devices(load_config(None, {"device": "cuda"}))
    assert err.value.where == "--device"
    with pytest.raises(ConfigError) as err:
        check_devices(load_config(None, {"student_options.device": "cuda:0"}))
    assert err.value.where == "student_options.device"


def test_students_take_the_device_option_and_a_saved_one_loads_anywhere(no_gpu, tmp_path, monkeypatch):
    from llmaug.data.example import Example

    with pytest.raises(ConfigError, match="no CUDA GPU"):
        make_student("finetune", device="cuda")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        make_student("embed-lr", device="cuda")
    rows = [Example.create(text, label) for text, label in (("good", "pos"), ("bad", "neg"), ("fine", "pos"))]
    student = make_student("tfidf").fit(rows)
    student.options["device"] = "cuda"  # as a student trained on a GPU machine records it
    folder = student.save(tmp_path / "student")
    assert type(student).load(folder).predict(rows) == student.predict(rows)


def test_the_embedded_teacher_names_dtype_and_device_in_its_identity(no_gpu):
    float32 = EmbeddedBackend(dtype="float32")
    bf16 = EmbeddedBackend(dtype="bfloat16")
    assert float32.identity == "embedded:SmolLM2-135M-Instruct.Q4_1"  # the cache key of every earlier version
    assert bf16.identity == "embedded:SmolLM2-135M-Instruct.Q4_1@bfloat16"
    from llmaug.teachers.embedded import embedded_identity

    assert embedded_identity("m", "bfloat16", "cuda") == "embedded:m@cuda-bfloat16"
    assert embedded_identity("m", "float32", "cuda") == "embedded:m@cuda-float32"


# Every torch component on a device: the CPU here, CUDA too where there is one ---------------------------------

ON_DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU")])]
ATTRIBUTES = {"LOC": "LOC: asks about a location", "NUM": "NUM: asks for a number"}


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from llmaug.generators.tiny import save_tiny_causal_lm

    return str(save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm")))


@pytest.fixture(scope="module")
def rows():
    from llmaug.data import load_bundled, sample_per_class

    return sample_per_class(load_bundled("trec6"), 2, seed=0)


def _on(module: torch.nn.Module, place: str) -> bool:
    return all(p.device.type == place for p in module.parameters())


@pytest.mark.parametrize("place", ON_DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_embedded_teacher_generates_and_scores_choices_on_the_device(tiny_lm, place, dtype):
    import asyncio

    from llmaug.teachers import GenerationParams, TeacherRequest

    backend = EmbeddedBackend(tiny_lm, device=place, dtype=dtype, threads=1)
    sampled = TeacherRequest.chat([{"role": "user", "content": "Where is Paris?"}],
                                  params=GenerationParams(temperature=0.8, max_tokens=6))
    choice = TeacherRequest.chat([{"role": "user", "content": "city or fruit?"}], choices=("city", "fruit"))
    first = asyncio.run(backend.generate([sampled, choice]))
    again = asyncio.run(backend.generate([sampled, choice]))
    assert _on(backend._model, place) and next(backend._model.parameters()).dtype == getattr(torch, dtype)
    assert first[0].completion_tokens > 0 and first[1].text in ("city", "fruit")
    assert [r.text for r in first] == [r.text for r in again]
    asyncio.run(backend.aclose())


@pytest.mark.parametrize("place", ON_DEVICES)
def test_msp_prompts_train_and_generate_on_the_device_in_bf16(tiny_lm, place):
    from llmaug.generators import Prompted
    from llmaug.generators.soft_prompts import SoftPromptGenerator
    from llmaug.teachers import GenerationParams

    generator = SoftPromptGenerator(tiny_lm, ATTRIBUTES, mixer="attention", instruction_tokens=4,
                                    attribute_tokens=3, device=place, dtype="bfloat16")
    items = [Prompted(("LOC",), "1) Where is Rome ?\n2)", " Where is Oslo ?\n"),
             Prompted(("LOC", "NUM"), "1)", " How far is Lima ?\n")]
    report = generator.train(items, epochs=2, lr=0.05, batch_size=2)
    texts = generator.generate(items, 2, GenerationParams(temperature=0.8, max_tokens=5, stop=("\n",)))
    assert _on(generator.embedding, place) and _on(generator.lm.model, place)
    assert generator.embedding.instruction.dtype == torch.float32  # trained in float32 over a bf16 model
    assert generator.lm.dtype == torch.bfloat16
    assert report.steps == 2 and len(texts) == 2 and all(len(t) == 2 for t in texts)


@pytest.mark.parametrize("place", ON_DEVICES)
def test_the_causal_lm_student_trains_and_scores_labels_on_the_device(tiny_lm, rows, place):
    student = make_student("causal-lm", model=tiny_lm, max_steps=2, batch_size=4, device=place, threads=1)
    student.fit(rows[:6], seed=0)
    probabilities = student.predict_proba(rows[:4])
    assert _on(student.model, place)
    assert probabilities.shape == (4, len(student.labels))
    assert probabilities.sum(axis=1) == pytest.approx([1.0] * 4)


@pytest.mark.slow
@pytest.mark.parametrize("place", ON_DEVICES)
def test_minilm_components_run_on_the_device(rows, place):
    """The fine-tune and embed-lr students, the label check, PromptMix's nearest classes and MSP's denoising."""
    from llmaug.embedding import shared_encoder
    from llmaug.filters.denoise import SimilarityDenoiser
    from llmaug.filters.quality import QualityFilter
    from llmaug.filters.similarity import ClassVectors

    finetune = make_student("finetune", epochs=1, device=place).fit(rows, seed=0)
    assert _on(finetune.model, place) and len(finetune.predict(rows)) == len(rows)
    embed_lr = make_student("embed-lr", device=place).fit(rows, seed=0)
    assert embed_lr.predict(rows) == [e.label for e in rows]  # a training set it fits exactly
    assert _on(shared_encoder(None, place).model, place)
    kept, rejected = QualityFilter(centroid_top=1, device=place).fit(rows).apply(rows[:3], [], None)
    assert len(kept) + len(rejected) == 3
    assert ClassVectors(rows, sorted({e.label for e in rows}), place).nearest([rows[0].text], 1)[0][0] == rows[0].label
    added, far, report = SimilarityDenoiser(rows, lambda e: (e.label,), keep_fraction=0.5, device=place).apply(rows)
    assert len(added) + len(far) == len(rows)

"""The causal-LM student on the real SmolLM2-135M-Instruct with tiny settings: a few examples, a few LoRA steps.

Trained students are shared per module; each fit loads the 135M base model (a few seconds) and takes 1-4 steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from llmaug.data.example import Example
from llmaug.errors import StudentError
from llmaug.students import Student, make_student
from llmaug.students.causal_lm import CausalLMStudent, through_final_line
from llmaug.students.finetune import torch_threads

from .toydata import saved_suffixes

TINY = {"batch_size": 2, "max_new_tokens": 24, "threads": 1}
QA_TOY = [
    Example.create("Tom has 3 apples and buys 2 more. How many apples does he have?", answer="3 + 2 = <<3+2=5>>5\n#### 5"),
    Example.create("Ann has 10 pens and gives 4 away. How many pens are left?", answer="10 - 4 = <<10-4=6>>6\n#### 6"),
]
LABELLED_TOY = [
    Example.create(f"the {word} {word} is here", label)
    for label, words in {"weather": ["rain", "snow"], "animal": ["cat", "dog"], "food": ["pizza", "bread"]}.items()
    for word in words
]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """The tests' own forward passes too: on a busy machine, extra OpenMP threads make them many times slower."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def qa_student() -> CausalLMStudent:
    return CausalLMStudent(epochs=4, **TINY).fit(QA_TOY, seed=0)


@pytest.fixture(scope="module")
def classifier() -> CausalLMStudent:
    return CausalLMStudent(epochs=2, **{**TINY, "batch_size": 3}).fit(LABELLED_TOY, seed=0)


def lora_weights(student: CausalLMStudent) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in student.model.named_parameters() if "lora_" in name}


# ------------------------------------------------------------------------------------------- training


def test_loss_decreases_while_memorising(qa_student):
    assert len(qa_student.losses) == 4
    assert qa_student.losses[-1] < 0.6 * qa_student.losses[0]


def test_only_the_fresh_lora_trains_and_the_base_weights_stay_as_on_disk(qa_student):
    trainable = [name for name, p in qa_student.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert any("q_proj" in name for name in trainable) and any("o_proj" in name for name in trainable)
    on_disk = load_file(str(qa_student.base_model_folder() / "model.safetensors"))
    layer = qa_student.model.get_base_model().model.layers[0]
    assert torch.equal(layer.self_attn.q_proj.base_layer.weight, on_disk["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(layer.mlp.up_proj.weight, on_disk["model.layers.0.mlp.up_proj.weight"])
    assert any(not torch.equal(w, torch.zeros_like(w)) for name, w in lora_weights(qa_student).items() if "lora_B" in name)


def test_fits_are_from_scratch_and_deterministic_given_the_seed():
    student = CausalLMStudent(epochs=1, **TINY)
    first = lora_weights(student.fit(QA_TOY, seed=3))
    again = lora_weights(student.fit(QA_TOY, seed=3))  # the same instance: a second fit starts over
    other_seed = lora_weights(CausalLMStudent(epochs=1, **TINY).fit(QA_TOY, seed=4))
    assert first.keys() == again.keys() == other_seed.keys()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert any(not torch.equal(first[name], other_seed[name]) for name in first)


def test_one_task_per_student():
    mixed = [*QA_TOY, LABELLED_TOY[0]]
    with pytest.raises(StudentError, match="mix labelled rows and unlabelled"):
        CausalLMStudent(**TINY).fit(mixed)
    with pytest.raises(StudentError, match="no answer"):
        CausalLMStudent(**TINY).fit([Example.create("What is 2 + 2?", answer="  ")])


def test_unknown_base_model_is_a_student_error(tmp_path):
    with pytest.raises(StudentError, match="causal-LM base model"):
        CausalLMStudent(model=str(tmp_path / "nowhere"), **TINY).fit(QA_TOY)


def test_spec_builds_the_causal_lm_student_with_options():
    student = make_student("causal-lm", max_new_tokens=32)
    assert isinstance(student, CausalLMStudent) and student.options["max_new_tokens"] == 32
    assert make_student("causal-lm:/some/model").options["model"] == "/some/model"


# ------------------------------------------------------------------------------------------- prediction


def test_classification_predicts_within_the_label_set_by_constrained_choice(classifier):
    predictions = classifier.predict(LABELLED_TOY)
    assert classifier.labels == ["animal", "food", "weather"]
    assert set(predictions) <= set(classifier.labels)
    probabilities = classifier.predict_proba(LABELLED_TOY)
    assert probabilities.shape == (6, 3) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert sum(p == e.label for p, e in zip(predictions, LABELLED_TOY)) >= 4  # learnt from 4 steps


def test_cached_label_scoring_equals_scoring_each_full_sequence(classifier):
    examples = LABELLED_TOY[:3] + [Example.create("a much longer text about the rain and the storm tonight", "weather")]
    cached = classifier.label_log_probs(examples)
    naive = np.zeros_like(cached)
    with torch.inference_mode():
        for row, example in enumerate(examples):
            prompt = classifier.prompt_ids(example)
            for column, label in enumerate(classifier.labels):
                continuation = classifier.continuation_ids(label)
                logits = classifier.model(input_ids=torch.tensor([prompt + continuation])).logits[0].double()
                log_probs = torch.log_softmax(logits, dim=-1)
                naive[row, column] = sum(float(log_probs[len(prompt) - 1 + i, token]) for i, token in enumerate(continuation))
    assert np.allclose(cached, naive, atol=1e-3)


def test_qa_generates_answers_and_judges_them_numerically(qa_student):
    answers = qa_student.predict(QA_TOY)
    assert len(answers) == 2 and all(isinstance(a, str) and a for a in answers)
    assert all(len(qa_student.tokenizer(a, add_special_tokens=False)["input_ids"]) <= TINY["max_new_tokens"] + 2
               for a in answers)  # re-encoding a decoded text can merge or split a token or two
    assert qa_student.is_correct(QA_TOY[0], "so 3 + 2 = 5 apples\n#### 5.0")
    assert not qa_student.is_correct(QA_TOY[0], "#### 6")
    with pytest.raises(StudentError, match="use predict"):
        qa_student.predict_proba(QA_TOY)


def test_a_solution_is_cut_after_its_final_line():
    assert through_final_line("3 + 2 = 5\n#### 5\nQuestion: more rambling") == "3 + 2 = 5\n#### 5"
    assert through_final_line("still thinking 3 + 2") == "still thinking 3 + 2"


def test_untrained_student_cannot_predict():
    with pytest.raises(StudentError, match="not trained"):
        CausalLMStudent(**TINY).predict(LABELLED_TOY)


# ------------------------------------------------------------------------------------------- persistence


def test_save_load_round_trip_gives_identical_greedy_answers(qa_student, tmp_path):
    qa_student.save(tmp_path / "qa")
    assert {".bin", ".pt", ".pkl", ".pickle"}.isdisjoint(saved_suffixes(tmp_path / "qa"))
    loaded = Student.load(tmp_path / "qa")
    assert isinstance(loaded, CausalLMStudent) and loaded.is_qa
    assert loaded.predict(QA_TOY) == qa_student.predict(QA_TOY)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft on transformers 5
def test_saved_classifier_is_a_peft_adapter_that_peft_loads(classifier, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = classifier.save(tmp_path / "cls")
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    loaded = Student.load(folder)
    assert loaded.labels == classifier.labels
    assert np.allclose(loaded.predict_proba(LABELLED_TOY), classifier.predict_proba(LABELLED_TOY), atol=1e-6)

    base = AutoModelForCausalLM.from_pretrained(classifier.base_model_folder(), local_files_only=True)
    model = PeftModel.from_pretrained(base, folder).eval()
    input_ids = torch.tensor([classifier.prompt_ids(LABELLED_TOY[0])])
    with torch.inference_mode():
        assert torch.allclose(model(input_ids=input_ids).logits, classifier.model(input_ids=input_ids).logits, atol=1e-4)


def test_loading_a_folder_without_an_adapter_is_a_student_error(classifier, tmp_path):
    folder = classifier.save(tmp_path / "cls")
    (folder / "adapter_config.json").unlink()
    with pytest.raises(StudentError, match="no adapter_config.json"):
        Student.load(folder)


def test_the_key_value_cache_goes_by_the_keyword_this_transformers_takes(tmp_path, monkeypatch):
    """transformers 5.24 renamed `past_key_values` to `cache` (the old name warns, and goes in 5.40); earlier
    versions know only the old one. Scoring, which feeds the cache back, must use neither wrongly nor warn."""
    import inspect
    import warnings

    import transformers
    from transformers.utils import generic

    from llmaug.generators.tiny import save_tiny_causal_lm
    from llmaug.teachers.decoding import cache_argument

    student = CausalLMStudent(model=str(save_tiny_causal_lm(tmp_path / "tiny")), max_steps=1, **TINY)
    student.fit(LABELLED_TOY, seed=0)
    takes_cache = "cache" in inspect.signature(transformers.LlamaForCausalLM.forward).parameters
    assert list(cache_argument(student.model, None)) == ["cache" if takes_cache else "past_key_values"]
    monkeypatch.setattr(generic.logger, "warning_once", lambda message, *args: pytest.fail(message))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        cached = student.label_log_probs(LABELLED_TOY[:3])
    full = [[student.model(input_ids=torch.tensor([student.prompt_ids(e) + student.continuation_ids(label)])).logits
             .log_softmax(-1)[0, len(student.prompt_ids(e)) - 1:-1]
             .gather(1, torch.tensor(student.continuation_ids(label)).unsqueeze(1)).sum().item()
             for label in student.labels] for e in LABELLED_TOY[:3]]
    assert cached == pytest.approx(np.array(full), abs=1e-4)

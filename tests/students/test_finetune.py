import json
import shutil

import numpy as np
import pytest
import torch

from llmaug.data.example import Example
from llmaug.errors import StudentError
from llmaug.students.base import MANIFEST, Student
from llmaug.students import finetune
from llmaug.students.finetune import FinetuneStudent, planned_steps, shuffled_batches

from .toydata import SAFE_SUFFIXES, assert_probabilities_follow_labels, saved_suffixes, toy_examples, train_accuracy

# Enough steps to fit the 12-example toy set; the defaults are tuned for ~50 real examples.
TOY_OPTIONS = {"epochs": 8, "lr": 5e-4, "batch_size": 4}
QUICK_OPTIONS = {"epochs": 1, "batch_size": 4}


@pytest.fixture(scope="module")
def trained() -> FinetuneStudent:
    return FinetuneStudent(**TOY_OPTIONS).fit(toy_examples(), seed=0)


@pytest.fixture(scope="module")
def saved_dir(trained, tmp_path_factory):
    return trained.save(tmp_path_factory.mktemp("finetuned"))


def test_learns_a_separable_set_with_columns_in_label_order(trained, toy):
    assert trained.model.config.id2label == dict(enumerate(["animal", "food", "weather"]))
    assert train_accuracy(trained, toy) == 1.0
    assert_probabilities_follow_labels(trained, toy)


def test_fit_is_deterministic_from_scratch_and_leaves_torch_state_alone(toy, trec_rows):
    threads, rng = torch.get_num_threads(), torch.random.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    pinned = {**QUICK_OPTIONS, "threads": 1}  # results change in the last digits with the thread count
    fresh = FinetuneStudent(**pinned).fit(toy, seed=0)
    reused = FinetuneStudent(**pinned).fit(trec_rows[:8], seed=1).fit(toy, seed=0)
    assert reused.labels == fresh.labels
    assert np.array_equal(reused.predict_proba(toy), fresh.predict_proba(toy))
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_save_load_round_trip_is_exact_and_pickle_free(trained, saved_dir, toy):
    loaded = Student.load(saved_dir)
    assert isinstance(loaded, FinetuneStudent)
    assert loaded.labels == trained.labels
    assert np.array_equal(loaded.predict_proba(toy), trained.predict_proba(toy))
    assert saved_suffixes(saved_dir) <= SAFE_SUFFIXES


def test_saved_folder_is_a_plain_hugging_face_classifier(trained, saved_dir, toy):
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(saved_dir), device="cpu")
    assert [result["label"] for result in classify([e.text for e in toy])] == trained.predict(toy)


def test_load_does_not_run_code_shipped_in_the_folder(saved_dir, tmp_path, toy):
    folder = shutil.copytree(saved_dir, tmp_path / "student")
    marker = tmp_path / "code-ran"
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    try:
        Student.load(folder).predict(toy)
    except StudentError:
        pass
    assert not marker.exists()


def test_load_refuses_pickled_weights(saved_dir, tmp_path):
    folder = shutil.copytree(saved_dir, tmp_path / "student")
    (folder / "model.safetensors").unlink()
    torch.save({}, folder / "pytorch_model.bin")
    with pytest.raises(StudentError, match="cannot load"):
        Student.load(folder)


def test_load_checks_labels_against_the_manifest(saved_dir, tmp_path):
    folder = shutil.copytree(saved_dir, tmp_path / "student")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["labels"] = list(reversed(manifest["labels"]))
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(StudentError, match="differ from the manifest"):
        Student.load(folder)


def test_pairs_are_encoded_as_sentence_pairs(pairs):
    student = FinetuneStudent(**QUICK_OPTIONS).fit(pairs, seed=0)
    batch = student._tokenize(pairs[:2])
    assert batch["token_type_ids"].max() == 1  # the second segment is marked as the pair's hypothesis
    probabilities = student.predict_proba(pairs)
    assert probabilities.shape == (len(pairs), 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    with pytest.raises(StudentError, match="mix single texts and sentence pairs"):
        student.predict(pairs + [Example.create("a single text")])


def test_training_steps_shrink_to_a_cap_as_data_grows():
    assert planned_steps(54, 4, epochs=10, max_steps=300) == 140  # low data: every epoch
    assert planned_steps(500, 4, epochs=10, max_steps=300) == 300  # capped: 2.4 epochs
    assert planned_steps(3000, 4, epochs=10, max_steps=300) == 750  # never less than one epoch


def test_batches_cover_every_example_once_per_epoch_in_a_seeded_order():
    batches = list(shuffled_batches(10, 4, total_steps=6, generator=torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2]
    assert sorted(sum(batches[:3], [])) == sorted(sum(batches[3:], [])) == list(range(10))
    assert batches[:3] != batches[3:]
    assert batches == list(shuffled_batches(10, 4, total_steps=6, generator=torch.Generator().manual_seed(0)))


def test_missing_base_model_is_a_student_error(toy, tmp_path):
    with pytest.raises(StudentError, match="no config.json"):
        FinetuneStudent(model=str(tmp_path)).fit(toy, seed=0)


# Frozen lower layers: the k-fold students' cheaper fit ----------------------------------------------------------


def test_frozen_layers_train_only_the_layers_above_and_leave_a_plain_model(toy):
    from safetensors.torch import load_file

    from llmaug.embedding import minilm_path

    student = FinetuneStudent(frozen_layers=4, **TOY_OPTIONS).fit(toy, seed=0)
    pretrained = load_file(str(minilm_path() / "model.safetensors"))
    weights = {name: tensor for name, tensor in student.model.state_dict().items()}

    def same_as_pretrained(name: str) -> bool:
        key = name.removeprefix("bert.")
        candidates = [key, f"bert.{key}", name]
        original = next(pretrained[c] for c in candidates if c in pretrained)
        return torch.equal(weights[name].cpu(), original)

    assert type(student.model.bert.embeddings).__name__ == "BertEmbeddings"  # put back after training
    assert len(student.model.bert.encoder.layer) == 6
    lower = [n for n in weights if n.startswith(("bert.embeddings.", *(f"bert.encoder.layer.{i}." for i in range(4))))]
    upper = [n for n in weights if n.startswith(("bert.encoder.layer.4.", "bert.encoder.layer.5."))]
    assert lower and all(same_as_pretrained(n) for n in lower)
    assert upper and not all(same_as_pretrained(n) for n in upper)
    assert train_accuracy(student, toy) == 1.0


def test_frozen_layers_fits_are_deterministic_and_share_the_frozen_outputs(toy, monkeypatch):
    from llmaug.students import finetune

    first = FinetuneStudent(frozen_layers=4, **QUICK_OPTIONS).fit(toy, seed=0)
    computed = []
    original = finetune.LowerMemo.put
    monkeypatch.setattr(finetune.LowerMemo, "put", lambda self, key, row: (computed.append(key), original(self, key, row)))
    second = FinetuneStudent(frozen_layers=4, **QUICK_OPTIONS).fit(toy, seed=0)
    assert computed == []  # every text's frozen part came from the first fit
    assert np.array_equal(first.predict_proba(toy), second.predict_proba(toy))
    third = FinetuneStudent(frozen_layers=3, **QUICK_OPTIONS).fit(toy, seed=0)  # another depth: its own memo
    assert len(computed) == len(toy)
    assert not np.array_equal(first.predict_proba(toy), third.predict_proba(toy))


def test_frozen_layers_memo_forgets_the_least_recently_used_rows():
    from llmaug.students.finetune import LowerMemo

    memo = LowerMemo(max_bytes=3 * 4 * 4)  # three rows of four floats
    for key in "abcd":
        memo.put(key, torch.zeros(4))
        memo.get("a")
    assert memo.get("b") is None and memo.get("a") is not None and memo.bytes == 48


def test_frozen_layers_cannot_freeze_the_whole_model(toy):
    with pytest.raises(StudentError, match="frozen_layers must be below the model's 6 layers"):
        FinetuneStudent(frozen_layers=6, **QUICK_OPTIONS).fit(toy, seed=0)


@pytest.mark.parametrize(("idle", "omp", "expected"), [(2, None, 2), (1, None, 1), (16, None, 4), (16, "1", 1),
                                                       (2, "3", 3), (2, "", 2), (2, "many", 2)])
def test_default_threads_use_the_idle_cores_up_to_four_unless_omp_num_threads_says(monkeypatch, idle, omp, expected):
    monkeypatch.setattr(finetune, "idle_cores", lambda: idle)
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    assert finetune.default_threads() == expected

import json
import shutil

import numpy as np
import pytest
import torch

from llmaug.data.example import Example
from llmaug.errors import StudentError
from llmaug.students.base import MANIFEST, Student
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
    fresh = FinetuneStudent(**QUICK_OPTIONS).fit(toy, seed=0)
    reused = FinetuneStudent(**QUICK_OPTIONS).fit(trec_rows[:8], seed=1).fit(toy, seed=0)
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

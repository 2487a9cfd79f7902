import numpy as np
import pytest

from llmaug.data.example import Example
from llmaug.embedding import shared_encoder
from llmaug.errors import StudentError
from llmaug.students.base import Student
from llmaug.students.embed_lr import EmbedLRStudent

from .toydata import SAFE_SUFFIXES, assert_probabilities_follow_labels, saved_suffixes, train_accuracy


def test_learns_a_separable_set_with_columns_in_label_order(toy):
    student = EmbedLRStudent().fit(toy, seed=0)
    assert train_accuracy(student, toy) == 1.0
    assert_probabilities_follow_labels(student, toy)


def test_fit_is_deterministic_and_from_scratch(toy, trec_rows):
    fresh = EmbedLRStudent().fit(toy, seed=0)
    reused = EmbedLRStudent().fit(trec_rows, seed=1).fit(toy, seed=0)
    assert reused.labels == fresh.labels
    assert np.array_equal(reused.predict_proba(trec_rows), fresh.predict_proba(trec_rows))


def test_save_load_round_trip_is_exact_and_pickle_free(trec_rows, tmp_path):
    student = EmbedLRStudent(C=5.0).fit(trec_rows, seed=0)
    student.save(tmp_path)
    loaded = Student.load(tmp_path)
    assert isinstance(loaded, EmbedLRStudent)
    assert loaded.options["C"] == 5.0
    assert np.array_equal(loaded.predict_proba(trec_rows), student.predict_proba(trec_rows))
    assert saved_suffixes(tmp_path) <= SAFE_SUFFIXES


def test_pairs_use_both_sentences(pairs):
    student = EmbedLRStudent().fit(pairs, seed=0)
    assert student.classifier.n_features_in_ == 4 * shared_encoder(None).model.config.hidden_size
    assert train_accuracy(student, pairs) == 1.0
    assert_probabilities_follow_labels(student, pairs)


def test_single_texts_and_pairs_do_not_mix(toy, pairs):
    with pytest.raises(StudentError, match="mix single texts and sentence pairs"):
        EmbedLRStudent().fit(toy + pairs, seed=0)
    pair_student = EmbedLRStudent().fit(pairs, seed=0)
    with pytest.raises(StudentError, match="not trained on single texts"):
        pair_student.predict(toy)


def test_missing_encoder_folder_is_a_student_error(tmp_path):
    with pytest.raises(StudentError, match="encoder model folder not found"):
        EmbedLRStudent(model=str(tmp_path / "nowhere"))


def test_rejects_unlabelled_training_rows(toy):
    with pytest.raises(StudentError, match="no label"):
        EmbedLRStudent().fit(toy + [Example.create("an unlabelled text")], seed=0)


def test_a_test_set_scored_every_round_is_encoded_once_and_comes_back_the_same(trec_rows, monkeypatch):
    """The encoder remembers the last few lists it encoded whole: the same list again needs no model pass."""
    encoder = shared_encoder(None)
    student = EmbedLRStudent().fit(trec_rows[:12], seed=0)
    first = student.predict_proba(trec_rows)
    monkeypatch.setattr(encoder, "_encode", lambda texts: pytest.fail("encoded the same list again"))
    again = student.predict_proba(trec_rows)
    assert np.array_equal(first, again)
    vectors = encoder.encode([e.text for e in trec_rows])
    vectors[:] = 0  # a caller's copy: the remembered vectors stay as they were
    assert np.array_equal(student.predict_proba(trec_rows), first)

import json

import numpy as np
import pytest

from llmaug.data.example import Example
from llmaug.errors import StudentError
from llmaug.students.base import MANIFEST, Student
from llmaug.students.tfidf import TfidfStudent

from .toydata import SAFE_SUFFIXES, assert_probabilities_follow_labels, saved_suffixes, train_accuracy


def test_learns_a_separable_set_with_columns_in_label_order(toy):
    student = TfidfStudent().fit(toy, seed=0)
    assert student.labels == ["animal", "food", "weather"]
    assert train_accuracy(student, toy) == 1.0
    assert_probabilities_follow_labels(student, toy)


def test_same_seed_gives_identical_probabilities(trec_rows):
    first = TfidfStudent().fit(trec_rows, seed=3).predict_proba(trec_rows)
    second = TfidfStudent().fit(trec_rows, seed=3).predict_proba(trec_rows)
    assert np.array_equal(first, second)


def test_refit_forgets_the_previous_fit(toy, trec_rows):
    reused = TfidfStudent().fit(trec_rows, seed=1).fit(toy, seed=0)
    fresh = TfidfStudent().fit(toy, seed=0)
    assert reused.labels == fresh.labels
    assert reused.vectorizer.vocabulary_ == fresh.vectorizer.vocabulary_
    assert np.array_equal(reused.predict_proba(toy + trec_rows), fresh.predict_proba(toy + trec_rows))


def test_save_load_round_trip_is_exact_and_pickle_free(trec_rows, tmp_path):
    student = TfidfStudent(max_features=50, ngram_range=(1, 3), C=3.0).fit(trec_rows, seed=0)
    student.save(tmp_path)
    loaded = Student.load(tmp_path)
    assert isinstance(loaded, TfidfStudent)
    assert loaded.options == {"max_features": 50, "ngram_range": [1, 3], "C": 3.0}
    assert loaded.labels == student.labels
    unseen = [Example.create("Who wrote the first dictionary of the English language ?")]
    assert np.array_equal(loaded.predict_proba(trec_rows + unseen), student.predict_proba(trec_rows + unseen))
    assert saved_suffixes(tmp_path) <= SAFE_SUFFIXES
    assert json.loads((tmp_path / MANIFEST).read_text())["kind"] == "tfidf"


def test_pairs_are_read_as_two_sentences(pairs):
    student = TfidfStudent().fit(pairs, seed=0)
    assert train_accuracy(student, pairs) == 1.0
    assert_probabilities_follow_labels(student, pairs)


def test_rejects_unusable_training_data(toy):
    with pytest.raises(StudentError, match="no label"):
        TfidfStudent().fit(toy + [Example.create("an unlabelled text")], seed=0)
    with pytest.raises(StudentError, match="at least two labels"):
        TfidfStudent().fit([e for e in toy if e.label == "food"], seed=0)
    with pytest.raises(StudentError, match="zero examples"):
        TfidfStudent().fit([], seed=0)


def test_predicting_or_saving_before_training_is_an_error(toy, tmp_path):
    with pytest.raises(StudentError, match="not trained"):
        TfidfStudent().predict(toy)
    with pytest.raises(StudentError, match="untrained"):
        TfidfStudent().save(tmp_path)


def test_empty_prediction_batch_has_one_column_per_label(toy):
    assert TfidfStudent().fit(toy, seed=0).predict_proba([]).shape == (0, 3)

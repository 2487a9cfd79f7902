"""Seeded low-data sampling: k per class and stratified fractions."""

import math
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmaug.data import Example, load_bundled, load_examples, sample_fraction, sample_per_class
from llmaug.data.sampling import sample_n
from llmaug.errors import ConfigError

GSM8K_TRAIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k" / "train.jsonl"  # ../shared beside the repo


def make_examples(sizes: dict[str, int]) -> list[Example]:
    return [Example.create(f"{label} {i}", label) for label, size in sizes.items() for i in range(size)]


@pytest.fixture(scope="module")
def trec_train():
    return load_bundled("trec6", "train")


def ids(examples):
    return [e.id for e in examples]


# ------------------------------------------------------------------------------------------- per class


def test_per_class_takes_k_of_every_label():
    chosen = sample_per_class(make_examples({"a": 10, "b": 8, "c": 20}), k=5, seed=1)
    assert Counter(e.label for e in chosen) == {"a": 5, "b": 5, "c": 5}


def test_per_class_takes_a_whole_class_smaller_than_k():
    data = make_examples({"big": 30, "tiny": 2})
    chosen = sample_per_class(data, k=10, seed=0)
    assert Counter(e.label for e in chosen) == {"big": 10, "tiny": 2}
    assert {e.id for e in data if e.label == "tiny"} <= set(ids(chosen))


def test_per_class_is_deterministic_for_a_seed_and_varies_across_seeds(trec_train):
    first = sample_per_class(trec_train, k=10, seed=7)
    assert ids(first) == ids(sample_per_class(trec_train, k=10, seed=7))
    assert set(ids(first)) != set(ids(sample_per_class(trec_train, k=10, seed=8)))


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "5", None])
def test_per_class_rejects_bad_k(k):
    with pytest.raises(ConfigError) as caught:
        sample_per_class(make_examples({"a": 3}), k=k, seed=0)
    assert str(caught.value).startswith("--per-class: per-class sample size must be a whole number >= 1")


def test_per_class_on_unlabelled_data_gives_k_in_all():
    qa = [Example.create(f"q{i}", answer=str(i)) for i in range(20)]
    assert len(sample_per_class(qa, k=6, seed=0)) == 6


# ------------------------------------------------------------------------------------------- fractions


def test_one_percent_of_trec6_has_every_class(trec_train):
    chosen = sample_fraction(trec_train, 0.01, seed=0)
    assert 54 <= len(chosen) <= 55
    assert set(Counter(e.label for e in chosen)) == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}


def test_fraction_shares_rows_in_proportion_to_class_size(trec_train):
    sizes = Counter(e.label for e in trec_train)
    counts = Counter(e.label for e in sample_fraction(trec_train, 0.1, seed=0))
    assert sum(counts.values()) == 545
    for label, size in sizes.items():
        assert abs(counts[label] - 0.1 * size) < 1


@pytest.mark.skipif(not GSM8K_TRAIN.exists(), reason="shared data not mounted")
def test_one_percent_of_gsm8k_is_74_rows_as_in_llm2llm():
    gsm8k = load_examples(GSM8K_TRAIN)
    chosen = sample_fraction(gsm8k, 0.01, seed=0)
    assert len(chosen) == 74
    assert len(set(ids(chosen))) == 74


def test_fraction_count_rounds_down_without_float_error():
    qa = [Example.create(f"q{i}", answer=str(i)) for i in range(100)]
    assert len(sample_fraction(qa, 0.29, seed=0)) == 29  # 0.29 * 100 == 28.999999999999996
    assert len(sample_fraction(qa, 0.07, seed=0)) == 7


def test_fraction_is_deterministic_for_a_seed_and_varies_across_seeds(trec_train):
    first = sample_fraction(trec_train, 0.02, seed=11)
    assert ids(first) == ids(sample_fraction(trec_train, 0.02, seed=11))
    assert set(ids(first)) != set(ids(sample_fraction(trec_train, 0.02, seed=12)))


def test_tiny_fraction_still_keeps_one_of_every_class(trec_train):
    chosen = sample_fraction(trec_train, 0.0001, seed=0)
    assert Counter(e.label for e in chosen) == {label: 1 for label in {e.label for e in trec_train}}


def test_whole_fraction_returns_everything(trec_train):
    assert sorted(ids(sample_fraction(trec_train, 1.0, seed=0))) == sorted(ids(trec_train))


def test_fraction_of_nothing_is_nothing():
    assert sample_fraction([], 0.5, seed=0) == []


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, math.nan, math.inf, "0.1", None, True])
def test_bad_fraction(fraction):
    with pytest.raises(ConfigError) as caught:
        sample_fraction(make_examples({"a": 3, "b": 3}), fraction, seed=0)
    assert str(caught.value).startswith("--fraction: fraction must be a number in (0, 1]")


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(1, 60), min_size=1),
    fraction=st.floats(0.001, 1.0),
    seed=st.integers(0, 2**32),
)
def test_fraction_size_and_coverage_property(sizes, fraction, seed):
    data = make_examples(sizes)
    chosen = sample_fraction(data, fraction, seed)
    expected = min(len(data), max(math.floor(fraction * len(data) + 1e-9), len(sizes), 1))
    assert len(chosen) == expected
    assert len(set(ids(chosen))) == len(chosen)
    counts = Counter(e.label for e in chosen)
    assert set(counts) == set(sizes)
    assert all(counts[label] <= size for label, size in sizes.items())


def test_sample_n_caps_an_eval_set_stratified(trec_train):
    chosen = sample_n(trec_train, 60, seed=0)
    assert len(chosen) == 60 and len(Counter(e.label for e in chosen)) == 6
    assert sample_n(trec_train, 0, seed=0) == []
    assert len(sample_n(trec_train[:10], 50, seed=0)) == 10

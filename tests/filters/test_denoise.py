"""MSP's data selection: inverse-frequency choice of attribute sets and the MiniLM similarity denoiser."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from llmaug.data.example import Example, Provenance
from llmaug.filters.denoise import (
    FAR, SimilarityDenoiser, inverse_frequency_sample, inverse_frequency_weights, keep_mask,
)


def test_rare_attributes_get_more_draws():
    sets = [("ENTY",)] * 8 + [("ABBR",)] * 2 + [("LOC",)] * 4
    counts = Counter(inverse_frequency_sample(sets, 70, random.Random(0)))
    assert sum(counts.values()) == 70
    assert counts[("ABBR",)] > counts[("LOC",)] > counts[("ENTY",)]
    assert counts == {("ABBR",): 40, ("LOC",): 20, ("ENTY",): 10}  # shares 1/2 : 1/4 : 1/8 of the weight


def test_balanced_sets_are_drawn_equally_and_leftovers_are_seeded():
    sets = [(label,) for label in "ABCDEF" for _ in range(2)]
    assert Counter(inverse_frequency_sample(sets, 12, random.Random(3))) == {(label,): 2 for label in "ABCDEF"}
    first = inverse_frequency_sample(sets, 9, random.Random(3))
    assert first == inverse_frequency_sample(sets, 9, random.Random(3))
    assert sorted(Counter(first).values()) == [1, 1, 1, 2, 2, 2]
    draws = Counter(s for seed in range(200) for s in inverse_frequency_sample(sets, 9, random.Random(seed)))
    assert min(draws.values()) > 0.8 * max(draws.values())  # which sets get the leftovers varies with the seed


def test_a_multi_attribute_set_weighs_the_mean_of_its_attributes():
    weights = inverse_frequency_weights([("a",), ("a",), ("a", "b"), ("b",)])
    assert weights[("a",)] == pytest.approx(1 / 3)
    assert weights[("b",)] == pytest.approx(1 / 2)
    assert weights[("a", "b")] == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_keep_mask_by_threshold_by_fraction_per_group_and_both():
    scores = [0.9, 0.1, 0.5, 0.4, 0.8, 0.2]
    groups = ["x", "x", "x", "y", "y", "y"]
    assert keep_mask(scores, groups) == [True] * 6
    assert keep_mask(scores, groups, threshold=0.45) == [True, False, True, False, True, False]
    assert keep_mask(scores, groups, keep_fraction=0.5) == [True, False, True, True, True, False]
    assert keep_mask(scores, groups, threshold=0.3, keep_fraction=0.5) == [True, False, False, False, True, False]


def _seed(text: str, label: str) -> Example:
    return Example.create(text, label)


def _generated(text: str, label: str, i: int) -> Example:
    provenance = Provenance(origin="synthetic", method="msp", round=0, sample_index=i, raw_output=text)
    return Example.create(text, label, provenance=provenance)


REAL = [
    _seed("What city is the capital of Peru ?", "LOC"), _seed("Where is the Golden Gate Bridge ?", "LOC"),
    _seed("How many people live in Tokyo ?", "NUM"), _seed("What year did World War II end ?", "NUM"),
]


def test_denoiser_drops_generations_far_from_the_real_examples_of_their_attributes():
    candidates = [
        _generated("Which country is the city of Lyon in ?", "LOC", 0),
        _generated("I love my grandmother's chocolate cake recipe .", "LOC", 1),
        _generated("How many days are there in a leap year ?", "NUM", 2),
        _generated("The cat slept on the warm sofa all afternoon .", "NUM", 3),
    ]
    denoiser = SimilarityDenoiser(REAL, lambda e: (e.label,), threshold=None, keep_fraction=0.5)
    kept, dropped, report = denoiser.apply(candidates)
    assert [e.text for e in kept] == [candidates[0].text, candidates[2].text]
    assert [r.text for r in dropped] == [candidates[1].text, candidates[3].text]
    assert all(r.reason.startswith(f"{FAR} (similarity ") and r.method == "msp" for r in dropped)
    assert report["scored"] == 4 and report["kept"] == 2
    loc = report["per_attribute_set"]["LOC"]
    assert loc["scored"] == 2 and loc["kept"] == 1 and loc["mean_similarity_kept"] > loc["mean_similarity_dropped"]


def test_denoiser_threshold_alone_keeps_every_close_generation():
    candidates = [_generated(text, "LOC", i) for i, text in enumerate(
        ["Where is the Eiffel Tower ?", "What city is the capital of Chile ?", "Please pass the salt and pepper ."])]
    kept, dropped, report = SimilarityDenoiser(REAL, lambda e: (e.label,), threshold=0.3, keep_fraction=None).apply(candidates)
    assert [e.text for e in kept] == [c.text for c in candidates[:2]]
    assert len(dropped) == 1 and report["kept"] == 2 and report["threshold"] == 0.3


def test_denoiser_with_nothing_to_score():
    kept, dropped, report = SimilarityDenoiser(REAL, lambda e: (e.label,)).apply([])
    assert kept == [] and dropped == [] and report["scored"] == 0

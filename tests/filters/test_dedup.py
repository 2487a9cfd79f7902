from llmaug.filters.dedup import NearDuplicateIndex, normalise, rouge_l


def test_normalise_ignores_case_spacing_and_punctuation():
    assert normalise("  What is   the capital of France? ") == normalise("what is the capital of france")


def test_near_duplicate_above_threshold_is_found_and_below_is_not():
    index = NearDuplicateIndex(0.95, ["how many legs does a spider have on its body today"])
    hit = index.match("how many legs does a spider have on its body today ?")
    assert hit is not None and hit[1] > 0.95
    assert index.match("how many wheels does a bicycle have") is None


def test_bound_skips_only_pairs_that_cannot_pass():
    texts = ["alpha beta gamma delta epsilon zeta eta theta iota kappa", "completely different words here"]
    index = NearDuplicateIndex(0.9, texts)
    candidate = "alpha beta gamma delta epsilon zeta eta theta iota lambda"
    assert rouge_l(texts[0], candidate) == 0.9
    assert index.match(candidate) is None  # 0.9 is not > 0.9
    assert NearDuplicateIndex(0.85, texts).match(candidate)[0] == texts[0]


def test_exact_lookup():
    index = NearDuplicateIndex(0.95, ["Where is Kyoto?"])
    assert index.exact("where is kyoto") == "Where is Kyoto?"
    assert index.exact("where is osaka") is None

"""`decode`: batched sampling in which a finished row leaves the batch, checked against transformers' `generate` on
a tiny random Llama (left-padded prompts of different lengths)."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from llmaug.generators.tiny import save_tiny_causal_lm
from llmaug.teachers.decoding import decode

PROMPTS = ["What is", "Name a city in the north of", "Why", "How many legs does a spider have and why"]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = save_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    encoded = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    return model, tokenizer, encoded


def generated(model, encoded, seed: int, **settings) -> list[list[int]]:
    """`generate`'s new tokens per row, cut at the first end token (which it follows with padding)."""
    end = settings.pop("end", None)
    config = GenerationConfig(pad_token_id=0, eos_token_id=end, **settings)
    torch.manual_seed(seed)
    with torch.inference_mode():
        output = model.generate(**encoded, generation_config=config)
    rows = output[:, encoded["input_ids"].shape[1]:].tolist()
    return [row[:row.index(end)] if end in row else row for row in rows]


def decoded(model, encoded, seed: int, end_ids: set[int], stopped=None, **settings) -> list[list[int]]:
    torch.manual_seed(seed)
    with torch.inference_mode():
        return decode(model, encoded["input_ids"], encoded["attention_mask"], end_ids=end_ids, stopped=stopped,
                      **settings)


def assert_greedy_matches_generate_as_rows_end(model, encoded, step: int) -> None:
    """Take as end token the one row 0 writes at `step` greedily: one row writes it early, another late or never,
    so rows leave the batch at different steps; `decode` must still give `generate`'s tokens."""
    end = generated(model, encoded, 0, max_new_tokens=12, do_sample=False)[0][step]
    expected = generated(model, encoded, 0, max_new_tokens=12, do_sample=False, end=end)
    assert len({len(row) for row in expected}) > 1
    settings = {"max_new_tokens": 12, "temperature": 0.0, "top_p": 1.0, "repetition_penalty": 1.0}
    assert decoded(model, encoded, 0, {end}, **settings) == expected


def test_greedy_gives_generates_tokens_while_rows_leave_the_batch(lm):
    model, _, encoded = lm
    assert_greedy_matches_generate_as_rows_end(model, encoded, step=2)


def test_greedy_with_a_repetition_penalty_matches_generate(lm):
    model, _, encoded = lm
    expected = generated(model, encoded, 0, max_new_tokens=10, do_sample=False, repetition_penalty=1.3)
    settings = {"max_new_tokens": 10, "temperature": 0.0, "top_p": 1.0, "repetition_penalty": 1.3}
    assert decoded(model, encoded, 0, set(), **settings) == expected


def test_sampling_draws_what_generate_draws_while_no_row_has_ended(lm, monkeypatch):
    model, _, encoded = lm
    monkeypatch.setattr(model.generation_config, "eos_token_id", None)  # no row ends: the batch never shrinks
    expected = generated(model, encoded, 7, max_new_tokens=10, do_sample=True, temperature=0.8, top_p=0.9, top_k=0,
                         repetition_penalty=1.1)
    settings = {"max_new_tokens": 10, "temperature": 0.8, "top_p": 0.9, "repetition_penalty": 1.1}
    assert decoded(model, encoded, 7, set(), **settings) == expected
    assert decoded(model, encoded, 7, set(), **settings) == expected  # the same seed, the same samples
    assert decoded(model, encoded, 8, set(), **settings) != expected


def test_finished_rows_leave_the_batch_and_the_forward_passes_shrink(lm):
    model, _, encoded = lm
    widths = []
    hook = model.register_forward_pre_hook(lambda module, args, kwargs: widths.append(kwargs["input_ids"].shape[0]),
                                           with_kwargs=True)
    try:
        stop_after = {0: 2, 1: 5}  # rows 0 and 1 say "stop" after 2 and 5 tokens; the others run to the limit
        completions = decoded(model, encoded, 0, set(), stopped=_stopper(stop_after), max_new_tokens=8,
                              temperature=0.0, top_p=1.0, repetition_penalty=1.0)
    finally:
        hook.remove()
    assert [len(row) for row in completions] == [2, 5, 8, 8]
    assert widths == [4, 4, 3, 3, 3, 2, 2, 2]


def test_a_batch_whose_rows_all_end_stops_early(lm):
    model, _, encoded = lm
    first = decoded(model, encoded, 0, set(), max_new_tokens=1, temperature=0.0, top_p=1.0, repetition_penalty=1.0)
    ends = {row[0] for row in first}  # every row's first greedy token ends it
    completions = decoded(model, encoded, 0, ends, max_new_tokens=8, temperature=0.0, top_p=1.0,
                          repetition_penalty=1.0)
    assert completions == [[], [], [], []]


def _stopper(stop_after: dict[int, int]):
    """A stop check that knows the rows by their token lists' identity, as `decode` passes each row's own list."""
    seen: dict[int, int] = {}

    def stopped(tokens: list[int]) -> bool:
        row = seen.setdefault(id(tokens), len(seen))
        return len(tokens) >= stop_after.get(row, 10**6)

    return stopped


def test_a_sliding_window_model_matches_generate_past_its_window():
    """Gemma 3 (the other embedded model) mixes sliding-window and full-attention layers in its cache."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=8, sliding_window=4,
                              max_position_embeddings=256, pad_token_id=0, eos_token_id=1, bos_token_id=2,
                              layer_types=["sliding_attention", "sliding_attention", "full_attention",
                                           "sliding_attention"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Gemma3ForCausalLM(config).eval()
    input_ids = torch.tensor([[0, 0, 0, 5, 6, 7], [0, 8, 9, 10, 11, 12], [13, 14, 15, 16, 17, 18]])
    encoded = {"input_ids": input_ids, "attention_mask": (input_ids != 0).long()}
    model.generation_config.eos_token_id = None
    assert_greedy_matches_generate_as_rows_end(model, encoded, step=3)

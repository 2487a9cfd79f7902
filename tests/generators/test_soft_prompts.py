"""The soft-prompt generator on a tiny random-init Llama (no download): mixer shapes, frozen LM, the shared
instruction prefix and middle padding against a plain forward pass, training, save/load."""

from __future__ import annotations

import pytest
import torch

from llmaug.errors import ConfigError
from llmaug.generators import MIXERS, Prompted
from llmaug.generators.mixers import AttributeEmbedding, CNNMixer, make_mixer
from llmaug.generators.soft_prompts import SoftPromptGenerator, load_frozen_lm
from llmaug.generators.tiny import save_tiny_causal_lm
from llmaug.teachers.base import GenerationParams

ATTRIBUTES = {"LOC": "LOC: asks about a location", "NUM": "NUM: asks for a number", "HUM": "HUM: asks about a person"}
ITEMS = [
    Prompted(("LOC",), "Task: questions.\n1) Where is Paris ?\n2)", " Where is Rome ?\n"),
    Prompted(("LOC", "NUM"), "1) How far is Lima ?\n2)", " How many miles to Oslo from here ?\n"),
    Prompted(("HUM", "LOC", "NUM"), "1)", " Who lives in 3 cities ?\n"),
]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    torch.set_num_threads(1)
    return load_frozen_lm(str(save_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))), dtype="float32")


def make_generator(lm, mixer="concat", **options) -> SoftPromptGenerator:
    return SoftPromptGenerator(lm, ATTRIBUTES, mixer=mixer, instruction_tokens=6, attribute_tokens=4, **options)


@pytest.mark.parametrize("mixer", MIXERS)
@pytest.mark.parametrize("count", [1, 3])
def test_each_mixer_gives_the_soft_tokens_the_lm_reads(mixer, count):
    stack, context = torch.randn(count, 4, 16), torch.randn(7, 16)
    mixed = make_mixer(mixer, 16, max_attributes=5, hidden=8)(stack, context)
    assert mixed.shape == ((count * 4, 16) if mixer == "concat" else (4, 16))


@pytest.mark.parametrize("mixer", MIXERS)
def test_with_one_attribute_every_mixer_starts_from_its_own_prompt(mixer):
    stack, context = torch.randn(1, 4, 16), torch.randn(7, 16)
    assert torch.allclose(make_mixer(mixer, 16, max_attributes=5, hidden=8)(stack, context), stack[0], atol=1e-6)


@pytest.mark.parametrize("mixer", ["attention", "bottleneck"])
def test_attention_weights_depend_on_the_hard_prompt(mixer):
    torch.manual_seed(0)
    module, stack = make_mixer(mixer, 16, hidden=8), torch.randn(3, 4, 16)
    first, second = module(stack, torch.randn(5, 16)), module(stack, torch.randn(5, 16))
    assert not torch.allclose(first, second)
    pooled_range = (stack.min(dim=0).values - 1e-5 <= first) & (first <= stack.max(dim=0).values + 1e-5)
    assert pooled_range.all()  # a convex combination of the attributes' prompts, position by position


def test_cnn_mixer_refuses_more_attributes_than_it_was_built_for():
    with pytest.raises(ValueError, match="at most 2"):
        CNNMixer(max_attributes=2)(torch.randn(3, 4, 16), torch.randn(5, 16))


def test_unknown_mixer_and_attribute_are_errors(lm):
    with pytest.raises(ConfigError, match="unknown mixer"):
        make_mixer("sum", 16)
    embedding = AttributeEmbedding(["LOC"], torch.zeros(2, 16), torch.zeros(1, 4, 16), make_mixer("concat", 16))
    with pytest.raises(ValueError, match="no soft prompt"):
        embedding.mixed(("ZZZ",), torch.zeros(3, 16))


def test_prompts_start_from_the_embeddings_of_their_texts(lm):
    generator = make_generator(lm)
    ids = lm.ids(ATTRIBUTES["NUM"])
    expected = lm.embed((ids * 4)[:4])
    assert torch.equal(generator.embedding.attributes[generator.embedding.index["NUM"]], expected)
    assert generator.embedding.instruction.shape == (6, lm.dim)


@pytest.mark.parametrize("mixer", MIXERS)
def test_gradients_reach_only_the_prompts_and_the_mixer(lm, mixer):
    generator = make_generator(lm, mixer, max_attributes=3, bottleneck_size=8)
    generator.loss(ITEMS).backward()
    assert all(not p.requires_grad and p.grad is None for p in lm.model.parameters())
    named = dict(generator.embedding.named_parameters())
    assert named and all(p.grad is not None for p in named.values())
    assert named["instruction"].grad.abs().sum() > 0 and named["attributes"].grad.abs().sum() > 0
    mixer_grads = [p.grad.abs().sum() for name, p in named.items() if name.startswith("mixer.")]
    assert (mixer in ("concat", "pooling")) == (not mixer_grads)
    assert not mixer_grads or sum(mixer_grads) > 0


@pytest.mark.parametrize("mixer", ["concat", "attention"])
def test_batched_loss_with_shared_prefix_and_padding_equals_plain_forward_passes(lm, mixer):
    generator = make_generator(lm, mixer)
    total, tokens = 0.0, 0
    for item in ITEMS:
        target = lm.ids(item.target)
        context = lm.embed(lm.ids(item.context))
        embeds = torch.cat([generator.embedding.instruction, generator.embedding.mixed(item.attributes, context),
                            context, lm.embed(target)]).unsqueeze(0)
        logits = lm.model(inputs_embeds=embeds).logits[0, -len(target) - 1 : -1]
        total += torch.nn.functional.cross_entropy(logits, torch.tensor(target), reduction="sum").item()
        tokens += len(target)
    assert generator.loss(ITEMS).item() == pytest.approx(total / tokens, abs=1e-4)


def test_greedy_generation_with_cache_equals_recomputing_from_scratch(lm):
    generator = make_generator(lm, "pooling")
    params = GenerationParams(temperature=0.0, max_tokens=6, stop=())
    outputs = generator.generate(ITEMS, 2, params, batch_size=3)
    for item, texts in zip(ITEMS, outputs):
        context = lm.embed(lm.ids(item.context))
        embeds = torch.cat([generator.embedding.instruction, generator.embedding.mixed(item.attributes, context), context])
        written = []
        with torch.no_grad():
            for _ in range(params.max_tokens):
                token = int(lm.model(inputs_embeds=embeds.unsqueeze(0)).logits[0, -1].argmax())
                if token in lm.end_ids():
                    break
                written.append(token)
                embeds = torch.cat([embeds, lm.embed([token])])
        assert texts == [lm.tokenizer.decode(written)] * 2


def test_with_one_attribute_per_item_every_mixer_but_cnn_trains_identically(lm):
    single = [item for item in ITEMS if len(item.attributes) == 1] + [Prompted(("NUM",), "1)", " How many legs ?\n")]
    trained = {mixer: make_generator(lm, mixer, bottleneck_size=8) for mixer in ("concat", "pooling", "attention", "bottleneck")}
    losses = {mixer: generator.train(single, epochs=2, lr=0.05, batch_size=2).epoch_losses for mixer, generator in trained.items()}
    assert len({tuple(values) for values in losses.values()}) == 1
    for generator in trained.values():
        assert torch.equal(generator.embedding.attributes, trained["concat"].embedding.attributes)
        assert torch.equal(generator.embedding.instruction, trained["concat"].embedding.instruction)


def test_sampling_is_reproducible_and_follows_the_seed(lm):
    generator = make_generator(lm)
    params = GenerationParams(temperature=1.0, max_tokens=8, seed=1)
    first = generator.generate(ITEMS, 3, params)
    assert [len(texts) for texts in first] == [3, 3, 3]
    assert generator.generate(ITEMS, 3, params) == first
    assert generator.generate(ITEMS, 3, params.model_copy(update={"seed": 2})) != first


def test_training_lowers_the_loss_and_reports_progress(lm):
    generator = make_generator(lm, "bottleneck", bottleneck_size=8)
    seen = []
    report = generator.train(ITEMS, epochs=8, lr=0.05, batch_size=2, progress=lambda done, total: seen.append((done, total)))
    assert report.steps == 16 and seen[-1] == (16, 16)
    assert report.epoch_losses[-1] < report.epoch_losses[0]
    assert report.trainable_parameters == sum(p.numel() for p in generator.trainable_parameters())


@pytest.mark.parametrize("mixer", MIXERS)
def test_save_and_load_give_identical_outputs(lm, tmp_path, mixer):
    generator = make_generator(lm, mixer, max_attributes=3, bottleneck_size=8)
    generator.train(ITEMS, epochs=1, lr=0.05, batch_size=3)
    generator.save(tmp_path / "prompts", fingerprint="abc")
    loaded = SoftPromptGenerator.load(tmp_path / "prompts", lm)
    for name, tensor in generator.embedding.state_dict().items():
        assert torch.equal(tensor, loaded.embedding.state_dict()[name])
    params = GenerationParams(temperature=1.0, max_tokens=6)
    assert loaded.generate(ITEMS, 2, params) == generator.generate(ITEMS, 2, params)
    assert loaded.loss(ITEMS).item() == generator.loss(ITEMS).item()
    assert loaded.training == generator.training and loaded.identity == generator.identity


def test_loading_prompts_for_another_model_is_refused(lm, tmp_path):
    make_generator(lm).save(tmp_path / "prompts")
    other = load_frozen_lm(str(save_tiny_causal_lm(tmp_path / "other-model", seed=1)))
    with pytest.raises(ConfigError, match="trained for"):
        SoftPromptGenerator.load(tmp_path / "prompts", other)
    with pytest.raises(ConfigError, match="no trained soft prompts"):
        SoftPromptGenerator.load(tmp_path / "nothing-here", lm)


def test_an_unknown_model_name_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown embedded model"):
        load_frozen_lm("no-such-model")


def test_generation_hands_the_cache_back_without_deprecated_keywords(lm, monkeypatch):
    """transformers 5.24 warns about `past_key_values` (removed in 5.40); generation feeds the cache back every
    step, by the keyword this transformers takes."""
    import warnings

    from transformers.utils import generic

    generator = make_generator(lm)
    monkeypatch.setattr(generic.logger, "warning_once", lambda message, *args: pytest.fail(message))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        texts = generator.generate(ITEMS[:2], 2, GenerationParams(temperature=0.8, max_tokens=4))
        generator.loss(ITEMS[:2]).backward()
    assert [len(t) for t in texts] == [2, 2]

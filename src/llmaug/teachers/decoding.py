"""Batched sampling in which a finished answer leaves the batch.

`transformers`' `generate` keeps every row of a batch in every forward pass until the longest answer ends, so a
batch of 32 LLM2LLM questions (most of them 15-40 tokens, a few running to the 64-token limit) spends a third of
its compute on rows that have ended. `decode` samples the same way (the same logits processors in the same order:
repetition penalty, temperature, top-p; the same `torch.multinomial` draw per step) but drops a row, with its rows
of the KV cache, as soon as it writes an end token or a stop string, so the later steps cost what the rows still
writing cost. While no row has ended its draws are `generate`'s draws; after one leaves, the random stream falls
differently, so the samples differ from `generate`'s from there on, reproducibly for the same batch and seed.
Greedy decoding gives `generate`'s tokens (tests/teachers/test_decoding.py).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def decode(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, max_new_tokens: int, temperature: float,
           top_p: float, repetition_penalty: float, end_ids: set[int],
           stopped: Callable[[list[int]], bool] | None = None) -> list[list[int]]:
    """Each row's new tokens (a left-padded batch), without the end token; `stopped(tokens)` says whether a row's
    tokens so far contain a stop string (the caller cuts the text there)."""
    import torch
    from transformers import DynamicCache

    completions: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    active = list(range(input_ids.shape[0]))  # the batch rows still writing, as indices into completions
    sequences, mask = input_ids, attention_mask
    padding = (mask == 0).sum(dim=1)  # left padding per row: the repetition penalty ignores it
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    processors = _processors(temperature, top_p, repetition_penalty, padding)
    step_ids = input_ids
    for _ in range(max_new_tokens):
        logits = model(input_ids=step_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                       logits_to_keep=1, **cache_argument(model, cache)).logits[:, -1, :].float()
        scores = processors(sequences, logits)
        if temperature > 0:
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = scores.argmax(dim=-1)
        keep = []
        for slot, token in enumerate(tokens.tolist()):
            row = active[slot]
            if token in end_ids:
                continue
            completions[row].append(token)
            if stopped is None or not stopped(completions[row]):
                keep.append(slot)
        if not keep:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep, device=input_ids.device)
            cache.batch_select_indices(index)
            tokens, sequences, mask, positions, padding = (tokens[index], sequences[index], mask[index],
                                                           positions[index], padding[index])
            processors = _processors(temperature, top_p, repetition_penalty, padding)  # the rows left
            active = [active[slot] for slot in keep]
        step_ids = tokens[:, None]
        sequences = torch.cat([sequences, step_ids], dim=1)
        mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
        positions = positions[:, -1:] + 1
    return completions


def _processors(temperature: float, top_p: float, repetition_penalty: float, padding: torch.Tensor):
    """`generate`'s logits processors for these settings, in its order."""
    from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                              TopPLogitsWarper)

    processors = LogitsProcessorList()
    if repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(repetition_penalty, prompt_ignore_length=padding))
    if temperature > 0:
        if temperature != 1.0:
            processors.append(TemperatureLogitsWarper(temperature))
        if top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=top_p))
    return processors


def cache_argument(model, cache) -> dict:
    """`cache` as the keyword argument `model`'s forward takes a key/value cache by: `cache` from transformers 5.24
    on, `past_key_values` before (5.24 still takes that with a deprecation warning, 5.40 no more).
    Shared by `decode`, the causal-LM student and MSP's generator, which run the model step by step themselves."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper passes it on
    return {_cache_keyword(type(base)): cache}


def returned_cache(output):
    """The key/value cache a forward pass returned (`cache` from transformers 5.24 on, `past_key_values` before)."""
    return output["cache"] if "cache" in output else output["past_key_values"]


@functools.cache
def _cache_keyword(model_class: type) -> str:
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"

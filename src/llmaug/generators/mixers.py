"""MSP's trainable parts (Chen et al., 2023): one instruction prompt, one prompt per attribute, and a mixer that
turns the prompts of an example's attributes into the soft tokens the frozen language model reads.

The five mixers of the paper, each mapping a stack of attribute prompts (n, L, d) and the embeddings of the hard
prompt that follows them (T, d) to soft tokens:

    concat      the n prompts one after another: n·L tokens
    pooling     their mean: L tokens
    attention   a weighted sum, per token position, with weights from a query built from the hard prompt
                (max-pooled, projected, layer-normed): L tokens
    bottleneck  the same with the query from a small MLP (d → hidden → d, SiLU): L tokens
    cnn         two 3×3 convolutions over the stack zero-padded to `max_attributes` channels, added to the mean
                (the last convolution starts at zero, so training starts from pooling): L tokens

Deviations from the official code (`components/soft_embedder.py`): its attention and bottleneck take the softmax
over the hidden dimension and then sum it away, so every weight is 1 and the "mixture" is the plain sum of the
prompts; here the softmax is over the attributes, as the paper describes. Its CNN pads with ones and ends in a
ReLU, which clips every soft token to non-negative values at the start of training; here it pads with zeros and
learns a residual on the mean. With a single attribute per example (single-label classification) the mixers
other than cnn all give that attribute's own prompt: there is nothing to mix.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from llmaug.errors import ConfigError
from llmaug.generators.base import MIXERS


class ConcatMixer(nn.Module):
    def forward(self, stack: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return stack.reshape(-1, stack.shape[-1])


class PoolingMixer(nn.Module):
    def forward(self, stack: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return stack.mean(dim=0)


class AttentionMixer(nn.Module):
    def __init__(self, dim: int, temperature: float = 1.0):
        super().__init__()
        self.project = nn.Linear(dim, dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.temperature = temperature

    def forward(self, stack: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        query = self.norm(self.project(context.max(dim=0).values))
        scores = stack @ query / (math.sqrt(stack.shape[-1]) * self.temperature)  # (n, L)
        weights = torch.softmax(scores, dim=0)
        return (weights.unsqueeze(-1) * stack).sum(dim=0)


class BottleneckMixer(AttentionMixer):
    def __init__(self, dim: int, hidden: int = 300, temperature: float = 1.0):
        super().__init__(dim, temperature)
        self.project = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.SiLU(), nn.Linear(hidden, dim, bias=False))


class CNNMixer(nn.Module):
    def __init__(self, max_attributes: int = 10):
        super().__init__()
        self.max_attributes = max_attributes
        middle = max(max_attributes // 2, 1)
        self.convolve = nn.Sequential(
            nn.Conv2d(max_attributes, middle, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(middle, 1, kernel_size=3, padding=1),
        )
        nn.init.zeros_(self.convolve[-1].weight)
        nn.init.zeros_(self.convolve[-1].bias)

    def forward(self, stack: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        count, length, dim = stack.shape
        if count > self.max_attributes:
            raise ValueError(f"{count} attributes, but the cnn mixer was built for at most {self.max_attributes}")
        padded = torch.cat([stack, stack.new_zeros(self.max_attributes - count, length, dim)])
        return stack.mean(dim=0) + self.convolve(padded.unsqueeze(0))[0, 0]


def make_mixer(name: str, dim: int, *, max_attributes: int = 10, hidden: int = 300, temperature: float = 1.0) -> nn.Module:
    if name == "concat":
        return ConcatMixer()
    if name == "pooling":
        return PoolingMixer()
    if name == "attention":
        return AttentionMixer(dim, temperature)
    if name == "bottleneck":
        return BottleneckMixer(dim, hidden, temperature)
    if name == "cnn":
        return CNNMixer(max_attributes)
    raise ConfigError(f"unknown mixer {name!r}; choose from {', '.join(MIXERS)}", "mixer")


class AttributeEmbedding(nn.Module):
    """The instruction prompt (P, d), one prompt per attribute (n, L, d) and the mixer: everything MSP trains."""

    def __init__(self, names: list[str], instruction: torch.Tensor, attributes: torch.Tensor, mixer: nn.Module):
        super().__init__()
        if len(names) != attributes.shape[0]:
            raise ValueError(f"{len(names)} attribute names for {attributes.shape[0]} attribute prompts")
        self.names = list(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.instruction = nn.Parameter(instruction.detach().clone())
        self.attributes = nn.Parameter(attributes.detach().clone())
        self.mixer = mixer

    def mixed(self, attribute_set: tuple[str, ...], context: torch.Tensor) -> torch.Tensor:
        """The soft tokens for one example's attributes, given its hard prompt's embeddings (T, d)."""
        unknown = [a for a in attribute_set if a not in self.index]
        if unknown or not attribute_set:
            raise ValueError(f"no soft prompt for attributes {unknown or attribute_set!r}; known: {', '.join(self.names)}")
        stack = self.attributes[[self.index[a] for a in attribute_set]]
        return self.mixer(stack, context)

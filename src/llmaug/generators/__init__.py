"""Trainable generators: a frozen language model whose *input* is learned, used by methods that train their
teacher (MSP). Methods use them through plain Python (`Prompted` items in, texts out) and never touch torch;
`SoftPromptGenerator` and its torch modules load on first use, so importing a method stays light."""

from llmaug.generators.base import MIXERS, Mixer, Prompted, TrainingReport, saved_settings

__all__ = ["MIXERS", "Mixer", "Prompted", "SoftPromptGenerator", "TrainingReport", "saved_settings"]


def __getattr__(name: str):
    if name == "SoftPromptGenerator":
        from llmaug.generators.soft_prompts import SoftPromptGenerator

        return SoftPromptGenerator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

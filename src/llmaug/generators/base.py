"""What goes in and out of a trainable generator, in plain Python."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

WEIGHTS_FILE = "soft_prompts.safetensors"
SETTINGS_FILE = "soft_prompts.json"
Mixer = Literal["concat", "pooling", "attention", "bottleneck", "cnn"]  # MSP's ways of mixing attribute prompts
MIXERS: tuple[str, ...] = get_args(Mixer)


@dataclass(frozen=True)
class Prompted:
    """One input: the attributes whose soft prompts are mixed in, the hard prompt that follows them, and (for
    training) the text the model should write after it."""

    attributes: tuple[str, ...]
    context: str
    target: str = ""


@dataclass
class TrainingReport:
    examples: int
    epochs: int
    steps: int
    seconds: float
    trainable_parameters: int
    epoch_losses: list[float] = field(default_factory=list)  # mean target-token cross-entropy per epoch


def saved_settings(folder: str | Path) -> dict | None:
    """The settings saved with trained soft prompts in `folder` (see `SoftPromptGenerator.save`), or None when
    the folder holds none."""
    folder = Path(folder)
    try:
        settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return settings if isinstance(settings, dict) and (folder / WEIGHTS_FILE).is_file() else None

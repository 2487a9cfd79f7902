"""llmaug: targeted LLM data augmentation for the low-data regime."""

from __future__ import annotations

__version__ = "0.1.0"

# Public surface, imported lazily so `llmaug --help` does not pay for torch.
_EXPORTS = {
    "Example": "llmaug.data",
    "Provenance": "llmaug.data",
    "load_examples": "llmaug.data",
    "save_examples": "llmaug.data",
    "load_bundled": "llmaug.data",
    "Teacher": "llmaug.teachers",
    "make_student": "llmaug.students",
    "Student": "llmaug.students",
    "LLM2LLM": "llmaug.methods",
    "NoAugmentation": "llmaug.methods",
    "TaskInfo": "llmaug.methods",
    "run": "llmaug.runner",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'llmaug' has no attribute {name!r}")

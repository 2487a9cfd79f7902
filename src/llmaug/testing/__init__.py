"""Test helpers shipped with the package: a loopback OpenAI-compatible server with fault injection.

    from llmaug.testing import FakeOpenAIServer, FaultPlan

The server needs aiohttp (the `dev` extra), so it is imported on first use, not with the package; that also
keeps `python -m llmaug.testing.fake_openai` free of a double import.
"""

from __future__ import annotations

import importlib

__all__ = ["FAULTS", "FakeOpenAIServer", "FaultPlan", "RequestRecord", "echo_responder", "whitespace_tokens"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("llmaug.testing.fake_openai"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Prompt templates, one module per method; each template has a name and a version for provenance."""

from llmaug.prompts.base import PromptTemplate

__all__ = ["PromptTemplate"]

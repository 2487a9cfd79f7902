"""Augmentation methods, each one file that reads like its paper's algorithm box."""

from llmaug.methods.base import Context, ErrorCase, Evaluation, Method, TaskInfo
from llmaug.methods.baselines import NoAugmentation
from llmaug.methods.llm2llm import LLM2LLM

METHOD_CLASSES: dict[str, type[Method]] = {
    LLM2LLM.name: LLM2LLM,
    NoAugmentation.name: NoAugmentation,
}

__all__ = ["LLM2LLM", "METHOD_CLASSES", "Context", "ErrorCase", "Evaluation", "Method", "NoAugmentation", "TaskInfo"]

"""Augmentation methods, each one file that reads like its paper's algorithm box."""

from llmaug.methods.base import Context, ErrorCase, Evaluation, Method, TaskInfo
from llmaug.methods.baselines import NoAugmentation
from llmaug.methods.llm2llm import LLM2LLM
from llmaug.methods.msp import MSP

METHOD_CLASSES: dict[str, type[Method]] = {
    LLM2LLM.name: LLM2LLM,
    MSP.name: MSP,
    NoAugmentation.name: NoAugmentation,
}

__all__ = ["LLM2LLM", "METHOD_CLASSES", "MSP", "Context", "ErrorCase", "Evaluation", "Method", "NoAugmentation", "TaskInfo"]

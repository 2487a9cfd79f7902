"""Augmentation methods, each one file that reads like its paper's algorithm box."""

from llmaug.methods.base import Context, ErrorCase, Evaluation, Method, TaskInfo
from llmaug.methods.baselines import NoAugmentation, Paraphrase, ZeroGen
from llmaug.methods.llm2llm import LLM2LLM
from llmaug.methods.msp import MSP
from llmaug.methods.promptmix import PromptMix
from llmaug.methods.s3 import S3

METHOD_CLASSES: dict[str, type[Method]] = {
    LLM2LLM.name: LLM2LLM,
    S3.name: S3,
    PromptMix.name: PromptMix,
    MSP.name: MSP,
    Paraphrase.name: Paraphrase,
    ZeroGen.name: ZeroGen,
    NoAugmentation.name: NoAugmentation,
}

__all__ = [
    "LLM2LLM", "METHOD_CLASSES", "MSP", "Context", "ErrorCase", "Evaluation", "Method", "NoAugmentation", "Paraphrase",
    "PromptMix", "S3", "TaskInfo", "ZeroGen",
]

"""Augmentation methods, each one file that reads like its paper's algorithm box (the names are the registry's)."""

from llmaug.methods.base import Context, Method, TaskInfo
from llmaug.methods.baselines import NoAugmentation, Paraphrase, ZeroGen
from llmaug.methods.llm2llm import LLM2LLM
from llmaug.methods.msp import MSP
from llmaug.methods.promptmix import PromptMix
from llmaug.methods.s3 import S3

__all__ = ["LLM2LLM", "MSP", "Context", "Method", "NoAugmentation", "Paraphrase", "PromptMix", "S3", "TaskInfo", "ZeroGen"]

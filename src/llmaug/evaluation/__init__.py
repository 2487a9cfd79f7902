"""Evaluation: students trained from scratch and scored, seed rows judged held out (k-fold), the round a run
keeps (`selection`) and whether augmentation helped (`verdict`), apart from the run directory that stores them."""

from llmaug.evaluation.trainer import (
    BASELINE, ErrorCase, Evaluation, EvaluationStore, Evaluator, FitJob, FitRunner, FoldTask, HeldOut, Judged,
    fit_sequentially, fold_plan, judge, stratified_folds,
)

__all__ = [
    "BASELINE", "ErrorCase", "Evaluation", "EvaluationStore", "Evaluator", "FitJob", "FitRunner", "FoldTask", "HeldOut",
    "Judged", "fit_sequentially", "fold_plan", "judge", "stratified_folds",
]

"""Evaluation: training students from scratch and scoring them, k-fold held-out predictions for the seed rows,
and memoised results, apart from the run directory that stores them."""

from llmaug.evaluation.trainer import (
    ErrorCase, Evaluation, EvaluationStore, Evaluator, FitJob, FitRunner, fit_sequentially, stratified_folds,
)

__all__ = [
    "ErrorCase", "Evaluation", "EvaluationStore", "Evaluator", "FitJob", "FitRunner", "fit_sequentially", "stratified_folds",
]

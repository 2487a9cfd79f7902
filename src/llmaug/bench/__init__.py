"""Benchmarks: `llmaug bench GRID.yaml` runs a grid of methods × datasets × low-data settings × seeds and writes
CSV, Markdown and plots; `python -m llmaug.bench.report` assembles BENCHMARKS.md from the results folder."""

from llmaug.bench.grid import Grid, load_grid
from llmaug.bench.run import BenchOutcome, run_bench

__all__ = ["BenchOutcome", "Grid", "load_grid", "run_bench"]

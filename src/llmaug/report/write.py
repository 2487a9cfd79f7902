"""report.md and report.html for a run directory, with PNG plots (embedded in the HTML)."""

from __future__ import annotations

from pathlib import Path

from llmaug.atomic import write_text_atomic
from llmaug.report.facts import ReportFacts, facts_from_result, facts_from_run_dir
from llmaug.report.plots import make_plots
from llmaug.report.render import markdown, review_lines, to_html


def write_report(result, method, teacher_identity: str) -> None:
    """The runner's report of a finished run (written before summary.json)."""
    _write(facts_from_result(result, method, teacher_identity))


def write_report_for_run_dir(run_dir: str | Path) -> None:
    """Rebuild the report of a finished run directory from its files (summary.json and the files beside it)."""
    _write(facts_from_run_dir(run_dir))


def write_review_report(run_dir: str | Path, evaluation: dict) -> None:
    """reviewed/report.md and .html: the run's final student against the one retrained on the curated data."""
    folder = Path(run_dir) / "reviewed"
    text = "\n".join(["# llmaug: after review", *review_lines(evaluation)]) + "\n"
    write_text_atomic(folder / "report.md", text)
    write_text_atomic(folder / "report.html", to_html(text, {}))


def _write(facts: ReportFacts) -> None:
    plots = make_plots(facts, facts.out / "plots")
    text = markdown(facts, plots)
    write_text_atomic(facts.out / "report.md", text)
    write_text_atomic(facts.out / "report.html", to_html(text, plots))

"""Run reports: Markdown and HTML with matplotlib plots."""

from llmaug.report.write import write_report, write_report_for_run_dir, write_review_report

__all__ = ["write_report", "write_report_for_run_dir", "write_review_report"]

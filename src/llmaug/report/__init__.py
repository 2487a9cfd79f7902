"""Run reports: Markdown and HTML with matplotlib plots."""

from llmaug.report.write import write_report

__all__ = ["write_report"]

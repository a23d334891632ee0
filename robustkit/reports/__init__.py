"""The HTML robustness report: figures, example images and the jinja2 template."""

from robustkit.reports.render import report_from_dirs, write_report

__all__ = ["report_from_dirs", "write_report"]

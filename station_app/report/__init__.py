"""Self-contained HTML reports of replay runs and of two runs compared."""

from station_app.report.comparison import render_comparison
from station_app.report.data import (CaptureImages, CaptureRow, ReportData, SkippedCapture,
                                     verdict_for)
from station_app.report.report import render_report

__all__ = ["CaptureImages", "CaptureRow", "ReportData", "SkippedCapture", "render_comparison",
           "render_report", "verdict_for"]

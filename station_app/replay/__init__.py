"""Offline replay: re-score a data set or the capture store and measure the run.

``source`` and ``store_source`` say which captures to replay, ``results`` keeps the append-only per-capture
log a run resumes from, ``predictions`` reads and writes ``capture_id,pred`` files,
``runner`` scores the captures, ``run_report`` turns a run folder into its report, and
``comparison`` sets two runs side by side.
"""

from station_app.replay.predictions import PredictionsError, read_predictions, write_predictions
from station_app.replay.results import ResultLog
from station_app.replay.runner import ReplayOptions, ReplaySummary, run_replay
from station_app.replay.source import DatasetSource, ReplayCapture, ReplaySource

__all__ = ["DatasetSource", "PredictionsError", "ReplayCapture", "ReplayOptions", "ReplaySource",
           "ReplaySummary", "ResultLog", "read_predictions", "run_replay", "write_predictions"]
